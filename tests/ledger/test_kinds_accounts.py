import datetime as dt

import attrs
import pytest

from points.ledger import accounts, kinds
from points.ledger.errors import InvalidAccount


def test_kinds_for_use_most_restricted_first():
    assert kinds.kinds_for_use("fare") == ("limited", "basic")
    assert kinds.kinds_for_use("charge") == ("charge_only", "basic")
    assert kinds.kinds_for_use("shopping") == ("limited", "basic")
    assert kinds.kinds_for_use("wesmo") == ("limited", "basic")
    with pytest.raises(ValueError):
        kinds.kinds_for_use("coffee")


def test_uses_per_kind():
    assert kinds.BASIC.uses == {"fare", "charge", "shopping", "wesmo"}
    assert kinds.LIMITED.uses == {"fare", "shopping", "wesmo"}
    assert kinds.CHARGE_ONLY.uses == {"charge"}
    assert not kinds.CHARGE_ONLY.pays_for("fare")


def test_display_name_alias_by_date():
    assert kinds.display_name("charge_only", dt.date(2023, 3, 6)) == "ICOCAポイント"
    assert kinds.display_name("charge_only", dt.date(2023, 3, 7)) == "WESTERポイント（チャージ専用）"


def test_with_alias_returns_new_kind_and_is_immutable():
    k = kinds.with_alias(kinds.BASIC, "旧ポイント", until=dt.date(2020, 12, 31))
    assert k is not kinds.BASIC and k.name == "basic"
    assert kinds.display_name(k, dt.date(2020, 12, 31)) == "旧ポイント"
    assert kinds.display_name(k, dt.date(2021, 1, 1)) == kinds.BASIC.display
    assert kinds.display_name("basic", dt.date(2020, 1, 1)) == kinds.BASIC.display
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        k.display = "x"


@pytest.mark.parametrize("name", [
    "member:W0001:basic", "receivable:W0001:limited", "campaign:yearend-2025:budget",
    "system:funding", "system:redeemed", "system:expired",
])
def test_parse_valid_accounts(name):
    assert accounts.parse_account(name).name == name


@pytest.mark.parametrize("name", [
    "member:W0001", "member:W0001:gold", "member::basic", "member:W 1:basic",
    "campaign:x:pot", "system:bank", "user:W1:basic", "member:" + "x" * 65 + ":basic", "",
])
def test_parse_invalid_accounts(name):
    with pytest.raises(InvalidAccount):
        accounts.parse_account(name)


def test_constructors():
    assert accounts.member_account("W1", "basic") == "member:W1:basic"
    assert accounts.receivable_account("W1", "limited") == "receivable:W1:limited"
    assert accounts.budget_account("c1") == "campaign:c1:budget"
    assert (accounts.FUNDING, accounts.REDEEMED, accounts.EXPIRED) == (
        "system:funding", "system:redeemed", "system:expired")
    with pytest.raises(InvalidAccount, match="member id"):
        accounts.member_account("a:b", "basic")
