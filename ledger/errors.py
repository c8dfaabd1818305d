"""Errors raised by the ledger. Every one is a `LedgerError`."""

from __future__ import annotations


class LedgerError(Exception):
    """Base class: the ledger refused an operation; nothing was written."""


class InvalidAccount(LedgerError, ValueError):
    """An account name does not follow the scheme in docs/architecture.md."""


class InvalidEntry(LedgerError, ValueError):
    """An entry or posting is malformed (missing expires/lot, bad lot, bad kind...)."""


class UnbalancedEntry(InvalidEntry):
    """An entry's postings do not sum to zero for some kind."""


class IdempotencyConflict(LedgerError):
    """An entry with the same idempotency key but different content already exists."""


class InsufficientPoints(LedgerError):
    """A redemption (or lot debit) asks for more points than are spendable."""


class BudgetExceeded(LedgerError):
    """A campaign budget would go below zero."""
