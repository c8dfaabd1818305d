"""The `points` command line (click)."""
