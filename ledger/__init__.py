"""The double-entry points ledger: events, journal, lots, balances, verify."""
