"""The account naming scheme (see docs/architecture.md).

    member:<member>:<kind>       what the issuer owes a member, per kind (lots)
    receivable:<member>:<kind>   what a member owes back (negative while owed)
    campaign:<name>:budget       a campaign budget, never below zero
    system:funding | system:redeemed | system:expired
"""

from __future__ import annotations

import functools
import re

import attrs

from points.ledger.errors import InvalidAccount
from points.ledger.kinds import KIND_NAMES

FUNDING = "system:funding"
REDEEMED = "system:redeemed"
EXPIRED = "system:expired"
SYSTEM_ACCOUNTS = (FUNDING, REDEEMED, EXPIRED)

_ID = re.compile(r"[^\s:]{1,64}")


@attrs.frozen
class Account:
    """A parsed account name. `type` is member, receivable, campaign or system."""

    name: str
    type: str
    owner: str  # member id, campaign name or system account name
    kind: str | None = None  # member/receivable only

    @property
    def is_member(self) -> bool:
        return self.type == "member"

    @property
    def is_budget(self) -> bool:
        return self.type == "campaign"

    @property
    def is_receivable(self) -> bool:
        return self.type == "receivable"


def valid_id(value: object) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def _check_id(what: str, value: object, account: object = None) -> str:
    if not valid_id(value):
        where = f" in account {account!r}" if account is not None else ""
        raise InvalidAccount(
            f"invalid {what} {value!r}{where}: must be 1-64 characters without whitespace or ':'"
        )
    return value  # type: ignore[return-value]


def _check_kind(kind: object, account: object = None) -> str:
    if kind not in KIND_NAMES:
        where = f" in account {account!r}" if account is not None else ""
        raise InvalidAccount(f"unknown point kind {kind!r}{where}; kinds are {', '.join(KIND_NAMES)}")
    return kind  # type: ignore[return-value]


@functools.lru_cache(maxsize=65536)
def parse_account(name: str) -> Account:
    """Parse and validate an account name; raises InvalidAccount with the reason."""
    if not isinstance(name, str):
        raise InvalidAccount(f"account must be a string, not {type(name).__name__}")
    parts = name.split(":")
    head = parts[0]
    if head in ("member", "receivable"):
        if len(parts) != 3:
            raise InvalidAccount(f"invalid account {name!r}: expected {head}:<member>:<kind>")
        _check_id("member id", parts[1], name)
        _check_kind(parts[2], name)
        return Account(name, head, parts[1], parts[2])
    if head == "campaign":
        if len(parts) != 3 or parts[2] != "budget":
            raise InvalidAccount(f"invalid account {name!r}: expected campaign:<name>:budget")
        _check_id("campaign name", parts[1], name)
        return Account(name, "campaign", parts[1])
    if head == "system":
        if name not in SYSTEM_ACCOUNTS:
            raise InvalidAccount(
                f"invalid account {name!r}: system accounts are {', '.join(SYSTEM_ACCOUNTS)}"
            )
        return Account(name, "system", parts[1])
    raise InvalidAccount(
        f"invalid account {name!r}: must start with member:, receivable:, campaign: or system:"
    )


def member_account(member: str, kind: str) -> str:
    _check_id("member id", member)
    _check_kind(kind)
    return f"member:{member}:{kind}"


def receivable_account(member: str, kind: str) -> str:
    _check_id("member id", member)
    _check_kind(kind)
    return f"receivable:{member}:{kind}"


def budget_account(campaign: str) -> str:
    _check_id("campaign name", campaign)
    return f"campaign:{campaign}:budget"


def is_budget(name: str) -> bool:
    return name.startswith("campaign:") and parse_account(name).type == "campaign"


def is_member(name: str) -> bool:
    return name.startswith("member:")
