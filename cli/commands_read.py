"""Read commands about one member: balance, history, explain."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from points.cli.format import KIND_ORDER, kind_label, plural, pts, signed, table
from points.cli.options import (Finding, as_of_option, echo_json, json_option, load_rules, open_db,
                                require_member, rules_option)
from points.ledger.journal import Journal


# ---------------------------------------------------------------- balance


def balance_dict(conn, member: str, as_of: dt.date | None) -> dict:
    j = Journal(conn)
    bal = j.balance(member, as_of)
    recv = j.receivable(member, as_of)
    lots = j.lots(member, as_of)
    campaign_of = _campaigns_of(conn, {lot.entry for lot in lots})
    on = as_of or _today()
    return {
        "member": member,
        "as_of": as_of.isoformat() if as_of else None,
        "balances": {k: bal.get(k, 0) for k in KIND_ORDER},
        "display_names": {k: _display(k, on) for k in KIND_ORDER},
        "lots": [{"kind": lot.kind, "remaining": lot.remaining, "granted": lot.amount,
                  "expires": lot.expires.isoformat(), "entry": lot.entry,
                  "campaign": campaign_of.get(lot.entry)}
                 for lot in sorted(lots, key=lambda x: (x.expires, KIND_ORDER.index(x.kind), x.id))],
        "receivable": {k: v for k, v in sorted(recv.items()) if v},
    }


def _display(kind: str, on: dt.date) -> str:
    from points.ledger import kinds

    return kinds.display_name(kind, on)


def _today() -> dt.date:
    from points.cli.format import today

    return today()


def _campaigns_of(conn, seqs: set[int]) -> dict[int, str | None]:
    if not seqs:
        return {}
    rows = conn.execute("SELECT seq, campaign FROM entries WHERE seq IN (SELECT value FROM json_each(?))",
                        (json.dumps(sorted(seqs)),))
    return {seq: campaign for seq, campaign in rows}


@click.command("balance")
@click.argument("member")
@as_of_option
@json_option
def balance_cmd(member: str, as_of: dt.date | None, as_json: bool) -> None:
    """A member's points per kind, open lots with their expiry, and what they owe.

    A member with events but no entries has zero of every kind; a member no
    event and no entry names is an error (exit 1). Kinds are
    shown with the name they had on --as-of (or today): charge_only points
    were called "ICOCAポイント" until 2023-03-06.

    \b
    Example:
      points balance W0001
      points balance W0001 --as-of 2026-02-05 --json
    """
    conn = open_db(readonly=True)
    require_member(conn, member)
    data = balance_dict(conn, member, as_of)
    if as_json:
        echo_json(data)
        return
    when = f" at the end of {as_of}" if as_of else ""
    click.echo(f"{member}{when}")
    click.echo(table([[kind_label(k, as_of), pts(v)] for k, v in data["balances"].items()], right={1}))
    if data["lots"]:
        click.echo("open lots:")
        click.echo(table([[lot["kind"], pts(lot["remaining"]), f"expires {lot['expires']}",
                           f"from {lot['campaign'] or 'entry ' + str(lot['entry'])}"]
                          for lot in data["lots"]], right={1}))
    if data["receivable"]:
        click.echo("owes (receivable, paid first from later earnings):")
        click.echo(table([[k, pts(v)] for k, v in data["receivable"].items()], right={1}))


# ---------------------------------------------------------------- history


def history_list(conn, member: str) -> list[dict]:
    j = Journal(conn)
    mine = {f"member:{member}:{k}" for k in KIND_ORDER} | {f"receivable:{member}:{k}" for k in KIND_ORDER}
    out = []
    for e in j.entries(member=member):
        points = {}
        for p in e.postings:
            if p.account in mine:
                points[p.kind] = points.get(p.kind, 0) + p.amount
        out.append({
            "seq": e.seq, "effective": e.effective.isoformat(), "campaign": e.campaign,
            "key": e.key, "reason": _reason(e), "points": {k: points[k] for k in KIND_ORDER if k in points},
            "postings": [{"account": p.account, "kind": p.kind, "amount": p.amount,
                          "expires": p.expires.isoformat() if p.expires else None}
                         for p in e.postings if p.account in mine],
        })
    # Records without postings that concern the member: refused redemptions and awards.
    for e in _member_records(j, conn, member):
        out.append({"seq": e.seq, "effective": e.effective.isoformat(), "campaign": e.campaign,
                    "key": e.key, "reason": _reason(e), "points": {}, "postings": []})
    out.sort(key=lambda x: x["seq"])
    _running_balances(out)
    return out


def _running_balances(items: list[dict]) -> None:
    """Add to each history item (in seq order) its member and receivable postings per kind
    apart, and the running balance and amount owed per kind after it. An award that only
    paid off a debt moves `owed`, not `balance`."""
    balance = dict.fromkeys(KIND_ORDER, 0)
    owed = dict.fromkeys(KIND_ORDER, 0)
    for it in items:
        mine: dict[str, int] = {}
        recv: dict[str, int] = {}
        for p in it["postings"]:
            side = mine if p["account"].startswith("member:") else recv
            side[p["kind"]] = side.get(p["kind"], 0) + p["amount"]
        for k, v in mine.items():
            balance[k] += v
        for k, v in recv.items():
            owed[k] -= v
        it["member_points"] = {k: mine[k] for k in KIND_ORDER if k in mine}
        it["receivable_points"] = {k: recv[k] for k in KIND_ORDER if k in recv}
        it["balance"] = dict(balance)
        it["owed"] = dict(owed)


def _member_records(j: Journal, conn, member: str):
    rows = conn.execute(
        "SELECT seq FROM entries WHERE (key LIKE 'redeem:%' OR key LIKE 'refused:%')"
        " AND json_extract(memo, '$.refused') IS NOT NULL AND json_extract(memo, '$.member') = ?"
        " ORDER BY seq", (member,))
    for (seq,) in list(rows):
        e = j.entry(seq)
        if e is not None and not e.postings:
            yield e


def _reason(e) -> str:
    memo = e.memo if isinstance(e.memo, dict) else {}
    prefix = e.key.split(":", 1)[0]
    if prefix == "award":
        return f"award {memo.get('award', '')}: {memo.get('label') or memo.get('award', '')}".strip()
    if prefix == "reverse":
        return f"reversal of entry {e.reverses} (award {memo.get('award', '?')}, now {pts(memo.get('target'))})"
    if prefix == "refused":
        return f"award {memo.get('award', '')} refused: {memo.get('refused', '')}"
    if prefix == "redeem":
        if memo.get("refused"):
            return f"redemption refused ({memo.get('use', '?')}): {memo['refused']}"
        return f"redemption ({memo.get('use', '?')})"
    if prefix == "expire":
        return "expiry"
    return e.step or prefix


@click.command("history")
@click.argument("member")
@json_option
def history_cmd(member: str, as_json: bool) -> None:
    """Every journal entry touching a member, in order, with its reason.

    Awards (with their label), reversals of awards after a cancellation,
    redemptions (done or refused) and expiries: the points per kind that moved
    in the member's accounts, what moved in their receivable (an award that
    paid off a debt), and after each entry the running balance per kind and
    what the member still owes.

    \b
    Example:
      points history W0001
      points history W0001 --json
    """
    conn = open_db(readonly=True)
    require_member(conn, member)
    items = history_list(conn, member)
    if as_json:
        echo_json({"member": member, "entries": items})
        return
    if not items:
        click.echo(f"{member}: no entries")
        return
    click.echo(f"{member}: {plural(len(items), 'entry', 'entries')}")
    shown = [k for k in KIND_ORDER if any(k in it["balance"] and (it["member_points"].get(k)
                                                                  or it["receivable_points"].get(k))
                                          for it in items)] or ["basic"]
    rows = [["seq", "date", "campaign", *shown, "receivable", *(f"{k} balance" for k in shown),
             "owed", "reason"]]
    for it in items:
        rows.append([it["seq"], it["effective"], it["campaign"] or "—",
                     *(signed(it["member_points"][k]) if k in it["member_points"] else "" for k in shown),
                     ", ".join(f"{signed(v)} {k}" for k, v in it["receivable_points"].items()),
                     *(pts(it["balance"][k]) for k in shown),
                     ", ".join(f"{pts(v)} {k}" for k, v in it["owed"].items() if v) or "0",
                     it["reason"]])
    n = len(shown)
    click.echo(table(rows, right={0, *range(3, 3 + n), 3 + n, *range(4 + n, 5 + 2 * n)}))


# ---------------------------------------------------------------- explain


@click.command("explain")
@click.argument("member")
@click.argument("campaign")
@as_of_option
@rules_option
@json_option
def explain_cmd(member: str, campaign: str, as_of: dt.date | None, rules_dir: Path | None,
                as_json: bool) -> None:
    """Why a member got (or did not get) what they got from a campaign.

    Uses the rules the latest run recorded in the database (or --rules DIR)
    and shows: the rules file and table hashes; per period the member's
    events each stream counted, those it left out with the condition that
    left each out, and the counted events per day; the values computed from
    them, each award's condition and amount; the lottery draw in full (seed,
    candidate digest, draw position); what was computed when paid and today
    if different; the journal entries that paid or reversed it, a reversal
    with the cancel/refund/stopover events that caused it.

    \b
    Example:
      points explain W0001 yearend-2025
      points explain W0001 jwest-card --as-of 2026-01-31 --json
    """
    from points.engine import explain as explain_mod
    from points.engine.recorded import latest_recorded_rules

    conn = open_db(readonly=True)
    recorded = latest_recorded_rules(conn) if rules_dir is None else None
    if recorded is not None and recorded[0].campaign(campaign) is None:
        recorded = None  # a campaign no run has used yet: the rules folder's
    if recorded is not None:
        rules, marker = recorded
        origin = f"recorded by run entry {marker.seq}, rules set {marker.ruleset}"
    else:
        rules, origin = load_rules(rules_dir), None
    if rules.campaign(campaign) is None:
        names = ", ".join(c.name for c in rules.campaigns)
        raise Finding(f"unknown campaign {campaign!r}; campaigns are: {names}")
    require_member(conn, member)
    try:
        trace = explain_mod.explain(conn, rules, member, campaign, as_of=as_of, rules_origin=origin)
    except explain_mod.ExplainError as exc:
        names = ", ".join(c.name for c in rules.campaigns)
        raise Finding(f"{exc}; campaigns are: {names}") from None
    if as_json:
        echo_json(trace)
    else:
        click.echo(explain_mod.render(trace))


COMMANDS = (balance_cmd, history_cmd, explain_cmd)
