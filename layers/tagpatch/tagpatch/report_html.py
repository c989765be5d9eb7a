"""report.html: one self-contained page (no scripts, fonts or images from elsewhere; inline SVG bars).

It shows the fleet's compliance at a glance, compliance by owner, patch group and OS, the outcome of
each instance's latest window run (kept until a newer run replaces it), the instances that need
action with their reasons and the fix, and, apart from them, the instances whose last scan is stale or
missing (with why compliance is unknown).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any, Final

from tagpatch.classes import EXCEPTED, behaviour_of
from tagpatch.export import compliance_percent, summarize
from tagpatch.outcomes import OUTCOME_BEHAVIOUR, outcome_behaviour
from tagpatch.report_trend import trend_section
from tagpatch.trend import TrendPoint

OUTCOME_ORDER: Final = tuple(name for name, outcome in OUTCOME_BEHAVIOUR.items() if outcome.in_report_table)
# What to do, by what is wrong; the first that applies wins: the fix of the last outcome
# (tagpatch.outcomes), critical patches missing, the fix of the instance's class (tagpatch.classes),
# then the last two.
FIXES: Final = {
    "critical": "Install the missing critical patches: the next window does, or run AWS-RunPatchBaseline now.",
    "never": "No successful install yet: check its window and patch group.",
}


def action_of(record: Mapping[str, Any]) -> str | None:
    """What the instance's owner should do, or None when nothing is needed."""
    if record.get("class") == EXCEPTED:
        return None
    outcome = outcome_behaviour(record.get("last_outcome"))
    if outcome is not None and outcome.report_fix is not None:
        return outcome.report_fix
    if (record.get("critical_missing") or 0) > 0:
        return FIXES["critical"]
    behaviour = behaviour_of(record.get("class"))
    if behaviour is not None and behaviour.report_fix is not None:
        return behaviour.report_fix
    if record.get("compliance") == "NON_COMPLIANT":
        return FIXES["critical"] if record.get("critical_missing") else FIXES["never"]
    return None


def _group(records: Sequence[Mapping[str, Any]], field: str) -> list[tuple[str, int, int]]:
    """(value, compliant, known) per value of `field`, most instances first."""
    compliant: Counter[str] = Counter()
    known: Counter[str] = Counter()
    for record in records:
        if record.get("compliance") in {"COMPLIANT", "NON_COMPLIANT"}:
            value = str(record.get(field) or "(none)")
            known[value] += 1
            compliant[value] += record.get("compliance") == "COMPLIANT"
    return [(value, compliant[value], count) for value, count in sorted(known.items(), key=lambda kv: (-kv[1], kv[0]))]


def _reasons(record: Mapping[str, Any]) -> str:
    reasons = [str(reason) for reason in record.get("reasons") or []]
    if record.get("last_outcome_reason"):
        reasons.append(str(record["last_outcome_reason"]))
    return "; ".join(reasons)


def _bar(value: int, total: int, width: int = 160) -> str:
    filled = round(width * value / total) if total else 0
    return (
        f'<svg width="{width}" height="12" role="img" aria-label="{value} of {total}">'
        f'<rect width="{width}" height="12" fill="#e5e7eb"/><rect width="{filled}" height="12" fill="#15803d"/></svg>'
    )


def _table(title: str, rows: list[tuple[str, int, int]], limit: int = 50) -> str:
    body = "".join(
        f"<tr><td>{escape(value)}</td><td class=n>{ok}/{known}</td>"
        f"<td class=n>{100.0 * ok / known:.1f}%</td><td>{_bar(ok, known)}</td></tr>"
        for value, ok, known in rows[:limit]
    )
    more = f"<p class=muted>{len(rows) - limit} more not shown.</p>" if len(rows) > limit else ""
    return (
        f"<section><h2>{escape(title)}</h2><table><thead><tr><th>{escape(title.rsplit(maxsplit=1)[-1])}</th>"
        f"<th>compliant</th><th>%</th><th></th></tr></thead><tbody>{body}</tbody></table>{more}</section>"
    )


def render(
    records: Iterable[Mapping[str, Any]],
    *,
    generated_at: str,
    trend: Sequence[TrendPoint] = (),
    action_limit: int = 500,
) -> str:
    """The page for one snapshot's records, with the compliance trend of the snapshots so far."""
    rows = list(records)
    counts = summarize(rows)
    percent = compliance_percent(counts)
    # Each instance's latest window run; an instance no run has reached yet counts by its period.
    outcomes = Counter(str(shown) for r in rows if (shown := r.get("last_outcome") or r.get("period_outcome")))
    needing = [(r, action) for r in rows if (action := action_of(r))]
    # Stale or never scanned: a compliance that is old or missing, whatever it says (apart from its value).
    unscanned = [r for r in rows if r.get("scan_status") in ("stale", "never_scanned")]
    unscanned.sort(key=lambda r: (str(r.get("scan_status")), str(r.get("owner") or ""), str(r["instance_id"])))
    stale = sum(r.get("scan_status") == "stale" for r in unscanned)
    needing.sort(key=lambda pair: (str(pair[0].get("owner") or ""), str(pair[0]["instance_id"])))
    headline = f"{percent:.1f}%" if percent is not None else "n/a"
    tiles = "".join(
        f'<div class=tile><div class=big id="{key}">{value}</div><div>{escape(label)}</div></div>'
        for key, value, label in (
            ("compliance-percent", headline, "compliant (of instances with a known state)"),
            ("instances", counts["instances"], "instances"),
            ("compliant", counts["compliant"], "compliant"),
            ("non-compliant", counts["non_compliant"], "non-compliant"),
            ("unknown", counts["unknown"], "compliance unknown"),
            ("stale-scans", stale, "last scan stale"),
            ("never-scanned", len(unscanned) - stale, "never scanned"),
            ("excepted", counts["excepted"], "excepted"),
            ("needing-action", len(needing), "need action"),
        )
    )
    outcome_rows = "".join(
        f"<tr><td>{escape(name)}</td><td class=n>{outcomes.get(name, 0)}</td></tr>" for name in OUTCOME_ORDER
    )
    action_rows = "".join(
        "<tr>"
        f"<td>{escape(str(r['instance_id']))}</td><td>{escape(str(r.get('name') or ''))}</td>"
        f"<td>{escape(str(r.get('owner') or ''))}</td><td>{escape(str(r.get('patch_group') or ''))}</td>"
        f"<td>{escape(str(r.get('last_outcome') or r.get('class') or ''))}</td>"
        f"<td>{escape(_reasons(r))}</td>"
        f"<td>{escape(action)}</td></tr>"
        for r, action in needing[:action_limit]
    )
    more = (
        f"<p class=muted>{len(needing) - action_limit} more in the snapshot.</p>" if len(needing) > action_limit else ""
    )
    scan_rows = "".join(
        "<tr>"
        f"<td>{escape(str(r['instance_id']))}</td><td>{escape(str(r.get('name') or ''))}</td>"
        f"<td>{escape(str(r.get('owner') or ''))}</td><td>{escape(str(r.get('patch_group') or ''))}</td>"
        f"<td>{escape(str(r.get('scan_status')))}</td><td>{escape(str(r.get('last_scan') or 'never'))}</td>"
        f"<td class=n>{escape(str(r.get('scan_age_days') if r.get('scan_age_days') is not None else ''))}</td>"
        f"<td>{escape(str(r.get('compliance_unknown_reason') or ''))}</td></tr>"
        for r in unscanned[:action_limit]
    )
    more_scans = (
        f"<p class=muted>{len(unscanned) - action_limit} more in the snapshot.</p>"
        if len(unscanned) > action_limit
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tagpatch compliance report</title>
<style>
body{{font-family:system-ui,sans-serif;margin:24px;color:#111827}}
.tiles{{display:flex;flex-wrap:wrap;gap:12px}}
.tile{{border:1px solid #d1d5db;border-radius:6px;padding:10px 16px;min-width:120px}}
.big{{font-size:28px;font-weight:700}}
table{{border-collapse:collapse;margin:8px 0}}
td,th{{border-bottom:1px solid #e5e7eb;padding:4px 8px;text-align:left;font-size:14px}}
.n{{text-align:right}} .muted{{color:#6b7280}}
</style></head><body>
<h1>tagpatch compliance report</h1>
<p class=muted>Snapshot of {counts["instances"]} instances, generated {escape(generated_at)}.</p>
<div class=tiles>{tiles}</div>
{trend_section(trend)}
{_table("Compliance by owner", _group(rows, "owner"))}
{_table("Compliance by patch group", _group(rows, "patch_group"))}
{_table("Compliance by OS", _group(rows, "os"))}
<section><h2>Outcomes of the last windows</h2><table id="outcomes"><tbody>{outcome_rows}</tbody></table></section>
<section><h2>Instances that need action</h2>
<table id="actions"><thead><tr><th>instance</th><th>name</th><th>owner</th><th>patch group</th><th>state</th>
<th>reasons</th><th>what to do</th></tr></thead><tbody>{action_rows}</tbody></table>{more}</section>
<section><h2>Scans stale or missing</h2>
<p class=muted>Compliance read from a scan older than the policy's threshold, or from none.</p>
<table id="scans"><thead><tr><th>instance</th><th>name</th><th>owner</th><th>patch group</th><th>scan</th>
<th>last scan</th><th>age (days)</th><th>why unknown</th></tr></thead><tbody>{scan_rows}</tbody></table>{more_scans}
</section>
</body></html>
"""
