"""points — a double-entry loyalty-points ledger with an embedded rules language.

The installed distribution is this one package; its parts, each a folder of the
repository mapped under it by pyproject.toml:

- `points.ledger`  accounts, kinds, entries, lots, the append-only SQLite journal, verify
- `points.dsl`     the rules language: grammar, parser, checker, compiler, evaluator
- `points.engine`  the run: calendar, settlement checkpoints, workflow, explain, replay
- `points.rules`   the bundled seed programs, reference tables and sample events
- `points.cli`     the `points` command line (click)
"""
