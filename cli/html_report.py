"""`points report html`: one self-contained page with every report and its charts.

The charts are drawn by matplotlib into inline SVG (text kept as text): the page
needs no script, no stylesheet and no font from anywhere, so it opens the same
offline, in a mail attachment or in an archive years later. Each chart sits beside
the table of the figures it draws. matplotlib is imported here only, so the other
commands do not pay for it.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import re
from typing import Iterable, Sequence

from points.cli.format import KIND_ORDER
from points.ledger import payouts as payouts_mod
from points.ledger import reports

TOP_MEMBERS = 25  # the page lists the members holding the most points, not all of them
DOTS_UP_TO = 500  # members per campaign drawn as dots in the distribution of awards
COLOURS = {"basic": "#1f77b4", "limited": "#ff7f0e", "charge_only": "#2ca02c"}

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccc}
.pair{display:grid;grid-template-columns:minmax(0,1fr) auto;gap:1.5rem;align-items:start}
figure.chart{margin:0}figure.chart svg{width:100%;max-width:760px;height:auto}
table{border-collapse:collapse;font-size:.85rem}th,td{padding:.15rem .5rem;border-bottom:1px solid #eee}
th{text-align:left;background:#f4f4f4}th,td{white-space:nowrap}div.t{overflow-x:auto}td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#2a7a2a;font-weight:bold}.bad{color:#b00;font-weight:bold}p.note{color:#666;font-size:.85rem}
"""


def render(conn, as_of: dt.date | None = None) -> str:
    """The whole page as text."""
    import matplotlib

    matplotlib.use("Agg")
    tb = reports.trial_balance(conn, as_of)
    bal = reports.member_balances(conn, as_of)
    li = reports.liability(conn, as_of)
    pay = payouts_mod.payouts(conn, as_of)
    burn = payouts_mod.budget_burn(conn, as_of)
    awards = payouts_mod.award_totals(conn, as_of)
    when = f"at the end of {as_of} (Asia/Tokyo)" if as_of else "all entries"
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>points report, {_e(when)}</title><style>{_CSS}</style></head><body>",
             f"<h1>points report, {_e(when)}</h1>"]
    parts += _trial_balance(tb)
    parts += _balances(bal)
    parts += _payouts(pay, burn)
    parts += _awards(awards)
    parts += _outstanding(li)
    parts += _flows(li)
    parts.append("</body></html>")
    return "\n".join(parts)


# ---------------------------------------------------------------- sections


def _trial_balance(tb: reports.TrialBalance) -> list[str]:
    rows = [[label, accounts, *(tb.classes[name][k] for k in KIND_ORDER)]
            for name, accounts, label in reports.CLASSES]
    rows.append(["total", "", *(tb.total[k] for k in KIND_ORDER)])
    verdict = ("<p class='ok'>sums to zero per kind: yes</p>" if tb.balanced else
               "<p class='bad'>sums to zero per kind: NO</p>")
    return ["<section id='trial-balance'><h2>Trial balance</h2>",
            _table("trial-balance", ["class", "accounts", *KIND_ORDER], rows), verdict, "</section>"]


def _balances(b: reports.Balances) -> list[str]:
    top = sorted(b.members, key=lambda m: (-sum(m.balances.values()), m.member))[:TOP_MEMBERS]
    rows = [[m.member, *(m.balances[k] for k in KIND_ORDER), m.owed_total] for m in top]
    rows.append([f"total ({len(b.members):,} members)", *(b.totals[k] for k in KIND_ORDER),
                 sum(b.owed.values())])
    return ["<section id='balances'><h2>Balances</h2>",
            f"<p class='note'>The {min(TOP_MEMBERS, len(b.members))} members holding the most points, "
            "and the totals of every member (`points balances` lists them all).</p>",
            _table("balances", ["member", *KIND_ORDER, "owed"], rows), "</section>"]


def _payouts(pay: list[payouts_mod.CampaignPayout], burn: dict) -> list[str]:
    rows = [[r.campaign, r.period, r.kind, r.gross, r.reversed, r.net, r.members, r.winners, r.budget_left]
            for c in pay for r in c.rows]
    table = _table("payouts", ["campaign", "period", "kind", "gross", "reversed", "net", "members",
                               "winners", "budget left"], rows)
    return ["<section id='payouts'><h2>Payouts and budget burn-down</h2><div class='pair'>",
            _figure("burn-down", _burn_chart(burn)), table, "</div></section>"]


def _awards(awards: dict[str, list[int]]) -> list[str]:
    rows = []
    for name, values in awards.items():
        rows.append([name, len(values), values[0], values[len(values) // 2], values[-1], sum(values)])
    table = _table("awards", ["campaign", "members", "smallest", "median", "largest", "total"], rows)
    return ["<section id='awards'><h2>Distribution of awards per campaign</h2><div class='pair'>",
            _figure("awards", _awards_chart(awards)), table, "</div></section>"]


def _outstanding(li: reports.Liability) -> list[str]:
    rows = [[m, k, n] for (k, m), n in li.outstanding.items()]
    total = li.outstanding_by_kind()
    rows.append(["total", "", sum(total.values())])
    table = _table("outstanding", ["expires", "kind", "points"], rows)
    owed = ", ".join(f"{v:,} {k}" for k, v in li.owed.items() if v)
    note = f"<p class='note'>Owed back by members (receivables): {owed}.</p>" if owed else ""
    return ["<section id='outstanding'><h2>Outstanding points by expiry month</h2><div class='pair'>",
            _figure("outstanding", _outstanding_chart(li)), f"<div>{table}{note}</div>", "</div></section>"]


def _flows(li: reports.Liability) -> list[str]:
    rows = [[f.month, f.kind, f.issued, f.reversed, f.redeemed, f.expired, f.net] for f in li.flows]
    table = _table("flows", ["month", "kind", "issued", "reversed", "redeemed", "expired", "net"], rows)
    return ["<section id='flows'><h2>Points issued, redeemed and expired per month</h2><div class='pair'>",
            _figure("flows", _flows_chart(li)), table, "</div></section>"]


# ---------------------------------------------------------------- charts


def _burn_chart(burn: dict[str, list[tuple[str, int]]]):
    fig, (ax,) = _fig()
    for name, points in sorted(burn.items()):
        days = [dt.date.fromisoformat(d) for d, _ in points]
        ax.step(days, [n for _, n in points], where="post", marker="o", markersize=3, label=name)
    _finish(ax, "budget left (points)", bool(burn), "no campaign has a budget")
    fig.autofmt_xdate()
    return fig


def _awards_chart(awards: dict[str, list[int]]):
    fig, (ax,) = _fig(height=0.8 + 0.5 * max(len(awards), 1))
    if awards:
        names = sorted(awards)
        # Whiskers at the 5th and 95th percentiles; every member as a dot only while the
        # campaign is small: a dot per member of a big campaign makes a page of megabytes.
        ax.boxplot([awards[n] for n in names], orientation="horizontal", tick_labels=names,
                   whis=(5, 95), showfliers=False)
        for i, n in enumerate(names, 1):
            if len(awards[n]) <= DOTS_UP_TO:
                ax.scatter(awards[n], [i] * len(awards[n]), s=6, alpha=0.4, color="#555")
        ax.set_xscale("log")
    _finish(ax, "net points per member (log scale)", bool(awards), "no awards", legend=False)
    return fig


def _outstanding_chart(li: reports.Liability):
    fig, (ax,) = _fig()
    months = sorted({m for (_, m) in li.outstanding})
    bottom = [0] * len(months)
    for kind in KIND_ORDER:
        values = [li.outstanding.get((kind, m), 0) for m in months]
        if any(values):
            ax.bar(months, values, bottom=bottom, label=kind, color=COLOURS[kind])
            bottom = [a + b for a, b in zip(bottom, values)]
    _finish(ax, "points expiring in the month", bool(months), "nothing outstanding")
    ax.tick_params(axis="x", labelrotation=45)
    return fig


def _flows_chart(li: reports.Liability):
    kinds = [k for k in KIND_ORDER if any(f.kind == k for f in li.flows)] or ["basic"]
    fig, axes = _fig(rows=len(kinds))
    months = sorted({f.month for f in li.flows})
    x = list(range(len(months)))
    for ax, kind in zip(axes, kinds):
        got = {f.month: f for f in li.flows if f.kind == kind}
        issued = [got[m].issued if m in got else 0 for m in months]
        gone = [[-(getattr(got[m], a) if m in got else 0) for m in months]
                for a in ("reversed", "redeemed", "expired")]
        ax.bar(x, issued, color="#1f77b4", label="issued")
        bottom = [0] * len(months)
        for values, label, colour in zip(gone, ("reversed", "redeemed", "expired"),
                                         ("#9467bd", "#2ca02c", "#d62728")):
            ax.bar(x, values, bottom=bottom, color=colour, label=label)
            bottom = [a + b for a, b in zip(bottom, values)]
        ax.axhline(0, color="#444", linewidth=0.6)
        ax.set_title(kind, fontsize=9, loc="left")
        _finish(ax, "points", bool(got), "no entries")
        ax.set_xticks(x[::max(1, len(x) // 12)], months[::max(1, len(x) // 12)], rotation=45, fontsize=7)
    return fig


def _fig(height: float = 3.2, rows: int = 1):
    """A figure with `rows` axes stacked (the list of them)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, height * rows), layout="constrained")
    axes = fig.subplots(rows, 1, squeeze=False)[:, 0]
    return fig, list(axes)


def _finish(ax, ylabel: str, has_data: bool, empty: str, legend: bool = True) -> None:
    from matplotlib.ticker import FuncFormatter

    if not has_data:
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes, color="#666")
        ax.set_xticks([])
        ax.set_yticks([])
        return
    ax.set_ylabel(ylabel if not ax.get_xscale() == "log" else "")
    if ax.get_xscale() == "log":
        ax.set_xlabel(ylabel)
    else:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.grid(True, linewidth=0.3, alpha=0.6)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def _figure(name: str, fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]  # drop the XML prolog and DOCTYPE (an external DTD address)
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    return f"<figure class='chart' id='chart-{name}'>{svg}</figure>"


def _table(name: str, header: Sequence[str], rows: Iterable[Sequence]) -> str:
    out = [f"<div class='t'><table id='table-{name}'><thead><tr>"]
    out += [f"<th>{_e(h)}</th>" for h in header]
    out.append("</tr></thead><tbody>")
    for r in rows:
        out.append("<tr>" + "".join(
            f"<td class='n'>{c:,}</td>" if isinstance(c, int) and not isinstance(c, bool)
            else f"<td>{_e('—' if c is None else str(c))}</td>" for c in r) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _e(text: str) -> str:
    return html.escape(text, quote=True)
