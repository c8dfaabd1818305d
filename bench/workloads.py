"""Seeded event generators for the benchmarks, streamed (constant memory at any size).

Every generator yields event dicts in the JSONL contract of docs/DESIGN ("Events"),
in time order inside each program, with unique ids and refs that name an
earlier event of the same file. Same arguments, same seed -> the same bytes.

- `card_cycle`: one 16th-15th cycle of the jwest-card program: `card_payment`
  events over N members, merchants drawn from rules/data/jwest_merchants.csv
  (plus unknown merchant codes, which count 1x), 20% OSAKA STATION CITY cards,
  2% returns (negative amounts), about 1% cash-backs and 0.2% refunds naming an
  earlier payment of the cycle.
- `yearend`: `ex_booking` events around the 2025/26 year-end riding period, with
  cancellations / refunds / stopovers (some after the 2026-02-05 payment, so the
  run posts reversals).
- `mixed`: every program at once (card cycles over 2025, both year-end
  campaigns, the Wesmo! rally, Mynapoint ICOCA, redemptions, withdrawals).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from pathlib import Path
from typing import Iterable, Iterator

from points.ledger.event_schema import ALL_FIELDS

ROOT = Path(__file__).resolve().parent.parent
MERCHANT_TABLE = ROOT / "rules" / "data" / "jwest_merchants.csv"

CARD_START = dt.date(2025, 1, 16)
CARD_END = dt.date(2025, 2, 15)
CARD_PAY = dt.date(2025, 2, 26)  # `pay on day 26 after period end`

YEAREND_RIDE = (dt.date(2025, 12, 26), dt.date(2026, 1, 4))
YEAREND_PAY = dt.date(2026, 2, 5)
YEAREND_EXPIRY = dt.date(2027, 3, 31)


def merchants() -> list[str]:
    with open(MERCHANT_TABLE, encoding="utf-8", newline="") as f:
        return [row["merchant"] for row in csv.DictReader(f)]


def _at(rng: random.Random, start: dt.date, days: int) -> str:
    d = start + dt.timedelta(days=rng.randrange(days))
    s = rng.randrange(86400)
    return f"{d.isoformat()}T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def member_id(i: int) -> str:
    return f"W{i:08d}"


def card_cycle(n: int, members: int, seed: int = 3, start: dt.date = CARD_START,
               end: dt.date = CARD_END, prefix: str = "C") -> Iterator[dict]:
    """`n` events of one jwest-card cycle [start, end] over `members` members."""
    rng = random.Random(seed)
    table = merchants()
    # Half the payments at a merchant of the table, half at merchants it does not
    # list (1x), as on a real card statement.
    unknown = [f"shop{i:04d}" for i in range(500)]
    days = (end - start).days + 1
    # A member's card type is fixed: 20% OSC, 10% gold, the rest standard.
    cards = ("osc",) * 2 + ("gold",) + ("standard",) * 7
    recent: list[tuple[str, str]] = []  # (id, member) of recent payments, for refunds
    for i in range(n):
        mi = rng.randrange(members)
        member = member_id(mi)
        id_ = f"{prefix}{i:09d}"
        at = _at(rng, start, days)
        r = rng.random()
        if r < 0.002 and recent:
            ref, member = recent[rng.randrange(len(recent))]
            yield {"id": id_, "type": "refund", "member": member, "at": at, "ref": ref}
            continue
        if r < 0.012:
            yield {"id": id_, "type": "card_cashback", "member": member, "at": at,
                   "amount": -rng.randrange(100, 3000)}
            continue
        amount = rng.choice((rng.randrange(100, 5000), rng.randrange(1000, 30000),
                             rng.randrange(100, 120000)))
        if r < 0.032:  # 2% returns
            amount = -amount
        merchant = table[rng.randrange(len(table))] if rng.random() < 0.5 else unknown[rng.randrange(500)]
        ev = {"id": id_, "type": "card_payment", "member": member, "at": at, "amount": amount,
              "merchant": merchant, "card": cards[mi * 7919 % 10]}
        if amount > 0:
            if len(recent) < 1000:
                recent.append((id_, member))
            else:
                recent[rng.randrange(1000)] = (id_, member)
        yield ev


def yearend(n: int, members: int, seed: int = 2025, prefix: str = "Y") -> Iterator[dict]:
    """`n` events for yearend-2025: bookings ridden around the riding period, ~4% undone."""
    rng = random.Random(seed)
    ride_lo = YEAREND_RIDE[0] - dt.timedelta(days=5)
    segs = ("tokaido", "sanyo", "kyushu", "hokuriku", "jrwest_local", "other")
    recent: list[tuple[str, str]] = []
    for i in range(n):
        id_ = f"{prefix}{i:09d}"
        r = rng.random()
        if r < 0.04 and recent:
            ref, member = recent[rng.randrange(len(recent))]
            # a third of the undos arrive after the payment date: reversals
            at = _at(rng, dt.date(2026, 3, 1), 60) if rng.random() < 0.33 else _at(rng, dt.date(2026, 1, 5), 25)
            yield {"id": id_, "type": rng.choice(("cancel", "cancel", "refund", "stopover")),
                   "member": member, "at": at, "ref": ref}
            continue
        member = member_id(rng.randrange(members))
        ride = ride_lo + dt.timedelta(days=rng.randrange(16))
        booked = ride - dt.timedelta(days=rng.randrange(1, 40))
        ev = {"id": id_, "type": "ex_booking", "member": member, "at": _at(rng, booked, 1),
              "amount": rng.randrange(1500, 40000, 10),
              "service": "ex" if rng.random() < 0.85 else "e5489",
              "ride_date": ride.isoformat(),
              "segments": rng.sample(segs, rng.randint(1, 2)) if rng.random() < 0.4 else ["tokaido", "sanyo"],
              "ticketless": rng.random() < 0.5}
        if rng.random() < 0.05:
            ev["product"] = "EX旅パック"
        if rng.random() < 0.05:
            ev["payment"] = "station"
        if len(recent) < 2000:
            recent.append((id_, member))
        else:
            recent[rng.randrange(2000)] = (id_, member)
        yield ev


def mixed(n: int, members: int, seed: int = 10) -> Iterator[dict]:
    """`n` events across every program: 45% card (12 cycles of 2025), 30% year-end
    bookings, 12% Wesmo! rally, 8% Mynapoint ICOCA, the rest redemptions and
    withdrawals. Members are shared between programs."""
    rng = random.Random(seed)
    shares = (("card", 0.45), ("yearend", 0.30), ("wesmo", 0.12), ("myna", 0.08), ("redeem", 0.05))
    counts = {k: int(n * s) for k, s in shares}
    counts["card"] += n - sum(counts.values())
    per_cycle = counts["card"] // 12
    for c in range(12):
        end = dt.date(2025, c + 1, 15)
        start = (end.replace(day=1) - dt.timedelta(days=1)).replace(day=16)
        k = per_cycle if c < 11 else counts["card"] - 11 * per_cycle
        yield from card_cycle(k, members, seed + c, start, end, prefix=f"C{c:02d}-")
    yield from yearend(counts["yearend"], members, seed + 100, prefix="Y")
    wesmo_start = dt.date(2026, 3, 2)
    for i in range(counts["wesmo"]):
        member = member_id(rng.randrange(members))
        at = _at(rng, wesmo_start, 30)
        r = rng.random()
        id_ = f"R{i:09d}"
        if r < 0.1:
            yield {"id": id_, "type": "campaign_entry", "member": member, "at": at,
                   "campaign": "wesmo-stamp-rally-2026"}
        elif r < 0.3:
            yield {"id": id_, "type": "wesmo_charge", "member": member, "at": at,
                   "amount": rng.choice((1000, 3000, 10000, 50000, 100000)),
                   "source": rng.choice(("jwest_card", "credit_card", "bank", "point_charge"))}
        elif r < 0.4:
            yield {"id": id_, "type": "video_view", "member": member, "at": at, "video": f"v{rng.randrange(3)}"}
        else:
            yield {"id": id_, "type": "wesmo_payment", "member": member, "at": at,
                   "amount": rng.randrange(100, 12000), "merchant": "other",
                   "paid_with_points": rng.random() < 0.05}
    myna_start = dt.date(2022, 1, 1)
    for i in range(counts["myna"]):
        member = member_id(rng.randrange(members))
        at = _at(rng, myna_start, 500)
        r = rng.random()
        id_ = f"M{i:09d}"
        if r < 0.15:
            yield {"id": id_, "type": "mynapoint_application", "member": member, "at": at}
        elif r < 0.2:
            yield {"id": id_, "type": rng.choice(("health_insurance_registration", "public_account_registration")),
                   "member": member, "at": at}
        else:
            yield {"id": id_, "type": "icoca_charge", "member": member, "at": at,
                   "amount": rng.choice((1000, 2000, 5000, 10000)),
                   "source": rng.choice(("jwest_card", "credit_card", "cash", "gas_station"))}
    for i in range(counts["redeem"]):
        member = member_id(rng.randrange(members))
        id_ = f"X{i:09d}"
        if rng.random() < 0.02:
            yield {"id": id_, "type": "member_withdrawn", "member": member, "at": _at(rng, dt.date(2026, 6, 1), 30)}
        else:
            yield {"id": id_, "type": "redemption", "member": member, "at": _at(rng, dt.date(2026, 6, 1), 30),
                   "points": rng.choice((100, 500, 1000, 3000)),
                   "use": rng.choice(("fare", "charge", "shopping", "wesmo"))}


# ---------------------------------------------------------------- files


def write_jsonl(events: Iterable[dict], path: str | Path) -> int:
    n = 0
    dumps = json.dumps
    with open(path, "w", encoding="utf-8") as f:
        for ev in events:
            f.write(dumps(ev, ensure_ascii=False))
            f.write("\n")
            n += 1
    return n


def write_csv(events: Iterable[dict], path: str | Path) -> int:
    n = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(ALL_FIELDS)
        for ev in events:
            row = []
            for name in ALL_FIELDS:
                v = ev.get(name)
                if v is None:
                    row.append("")
                elif isinstance(v, bool):
                    row.append("true" if v else "false")
                elif isinstance(v, list):
                    row.append(";".join(v))
                else:
                    row.append(v)
            w.writerow(row)
            n += 1
    return n
