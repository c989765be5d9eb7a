"""report.html: one self-contained page (no scripts, fonts or images from elsewhere; inline SVG bars).

It shows the fleet's compliance at a glance, compliance by owner, patch group and OS (and by account
and by Region when the rows come from more than one), the slowest-to-patch groups
(tagpatch.report_slowest), the outcome of each instance's latest window run
(kept until a newer run replaces it), the instances that need action with their reasons and the fix,
and, apart from them, the instances whose last scan is stale or missing (with why compliance is
unknown), and a section per owner behind a stable anchor (`owner_anchor`) that an owner can be sent.
On a narrow screen each table row becomes a card, so a phone never scrolls sideways.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any, Final

from tagpatch.classes import EXCEPTED, behaviour_of
from tagpatch.export import compliance_percent, summarize
from tagpatch.outcomes import OUTCOME_BEHAVIOUR, outcome_behaviour
from tagpatch.report_slowest import DEFINITION as SLOWEST_DEFINITION
from tagpatch.report_slowest import GroupPace, group_paces
from tagpatch.report_trend import trend_section
from tagpatch.report_week import OLDEST_DAYS, WEEK_DAYS, WeekChanges, WeekUnreadable
from tagpatch.trend import TrendPoint

NO_VALUE: Final = "(none)"  # how a missing owner, patch group or OS is shown
OUTCOME_ORDER: Final = tuple(name for name, outcome in OUTCOME_BEHAVIOUR.items() if outcome.in_report_table)
# What to do, by what is wrong; the first that applies wins: the fix of the last outcome
# (tagpatch.outcomes), critical patches missing, the fix of the instance's class (tagpatch.classes),
# then the last two.
FIXES: Final = {
    "critical": "Install the missing critical patches: the next window does, or run AWS-RunPatchBaseline now.",
    "never": "No successful install yet: check its window and patch group.",
}


# The page's head, its styles included, shared by the rows page and the organization's summary page.
_HEAD: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>tagpatch compliance report</title>
<style>
body{font-family:system-ui,sans-serif;margin:24px;color:#111827;overflow-wrap:anywhere}
.tiles{display:flex;flex-wrap:wrap;gap:12px}
.tile{border:1px solid #d1d5db;border-radius:6px;padding:10px 16px;min-width:120px}
.big{font-size:28px;font-weight:700}
table{border-collapse:collapse;margin:8px 0}
td,th{border-bottom:1px solid #e5e7eb;padding:4px 8px;text-align:left;font-size:14px}
.n{text-align:right} .muted{color:#6b7280}
.owner{border-top:1px solid #d1d5db;margin-top:16px}
/* Wide: short values break only between words (or, past 24em, anywhere) and ids stay whole, so a long
reason beside them cannot squeeze them to a letter a line; the prose columns break anywhere. */
td{overflow-wrap:break-word;max-width:24em}
td[data-label="reasons"],td[data-label="what to do"],td[data-label="why unknown"]{overflow-wrap:anywhere}
td[data-label="instance"]{white-space:nowrap}
/* A phone: each row becomes a card, each cell labelled by its column's header, long ids wrapped. */
@media (max-width:640px){
body{margin:12px}
td{overflow-wrap:anywhere;max-width:none}
td[data-label="instance"]{white-space:normal}
.tile{min-width:0;flex:1 1 40%;box-sizing:border-box;padding:8px 10px}
table,thead,tbody,tr,td{display:block}
thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
tr{border:1px solid #d1d5db;border-radius:6px;margin:8px 0;padding:4px 8px}
td,td.n{border:0;padding:2px 0;text-align:left}
td[data-label]::before{content:attr(data-label) ": ";font-weight:600}
}
</style></head><body>"""


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


def owner_of(record: Mapping[str, Any]) -> str:
    """The owner a record is reported under; instances with no owner tag share one section."""
    return str(record.get("owner") or NO_VALUE)


def owner_anchor(owner: str) -> str:
    """The page's anchor for one owner's section (`report.html#owner-...`), stable across reports.

    A plain owner (lowercase letters, digits, single hyphens) keeps its name; any other gets its readable
    part, "--" (which a plain name never holds) and a hash of the exact string, so no two owners share one
    and the fragment needs no escaping.
    """
    readable = re.sub(r"[^a-z0-9]+", "-", owner.lower()).strip("-")[:40].strip("-")
    if readable and readable == owner:
        return f"owner-{owner}"
    digest = hashlib.sha256(owner.encode()).hexdigest()[:12]
    return f"owner-{readable}--{digest}" if readable else f"owner-{digest}"


def _group(records: Sequence[Mapping[str, Any]], field: str) -> list[tuple[str, int, int]]:
    """(value, compliant, known) per value of `field`, most instances first."""
    compliant: Counter[str] = Counter()
    known: Counter[str] = Counter()
    for record in records:
        if record.get("compliance") in {"COMPLIANT", "NON_COMPLIANT"}:
            value = str(record.get(field) or NO_VALUE)
            known[value] += 1
            compliant[value] += record.get("compliance") == "COMPLIANT"
    return [(value, compliant[value], count) for value, count in sorted(known.items(), key=lambda kv: (-kv[1], kv[0]))]


def place_of(record: Mapping[str, Any]) -> str:
    """`account/Region` of a record's target; empty for a row written before rows carried them."""
    account, region = record.get("account_id"), record.get("region")
    return f"{account}/{region}" if account or region else ""


def spans_places(records: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the rows come from more than one account or Region (a single target's report shows neither)."""
    return len({r.get("account_id") for r in records}) > 1 or len({r.get("region") for r in records}) > 1


def _state(record: Mapping[str, Any]) -> str:
    """The latest run's outcome (else the class), with the backup taken before that run: the image to
    roll back to, or that it failed."""
    state = str(record.get("last_outcome") or record.get("class") or "")
    if record.get("backup_id"):
        return f"{state} (backup {record['backup_id']})"
    if record.get("backup_outcome") in ("failed", "in_progress"):
        return f"{state} (backup {str(record['backup_outcome']).replace('_', ' ')})"
    return state


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


def _cards(
    headers: Sequence[str], rows: Iterable[Sequence[str]], *, table_id: str = "", numeric: frozenset[int] = frozenset()
) -> str:
    """A table whose rows become stacked cards on a narrow screen, each cell labelled by its header.

    Cells are HTML (escaped by the caller); `numeric` holds the indexes of right-aligned columns.
    """
    head = "".join(f"<th>{escape(header)}</th>" for header in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td data-label="{escape(header)}"{" class=n" if index in numeric else ""}>{cell}</td>'
            for index, (header, cell) in enumerate(zip(headers, row, strict=True))
        )
        + "</tr>"
        for row in rows
    )
    ident = f' id="{table_id}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _tiles(tiles: Iterable[tuple[str, object, str]]) -> str:
    """The headline figures: (id, value, label) each."""
    return "".join(
        f'<div class=tile><div class=big id="{key}">{value}</div><div>{escape(label)}</div></div>'
        for key, value, label in tiles
    )


def _table(
    title: str,
    rows: list[tuple[str, int, int]],
    limit: int = 50,
    *,
    link_owners: bool = False,
    non_compliant: bool = False,
    section_id: str = "",
) -> str:
    def label(value: str) -> str:
        return f'<a href="#{owner_anchor(value)}">{escape(value)}</a>' if link_owners else escape(value)

    # The non-compliant count beside the share, where a breakdown's readers act on it (accounts, Regions).
    extra = ("non-compliant",) if non_compliant else ()
    table = _cards(
        (title.rsplit(maxsplit=1)[-1], "compliant", "%", *extra, "share"),
        (
            (
                label(value),
                f"{ok}/{known}",
                f"{100.0 * ok / known:.1f}%",
                *((str(known - ok),) if non_compliant else ()),
                _bar(ok, known),
            )
            for value, ok, known in rows[:limit]
        ),
        numeric=frozenset({1, 2, 3}) if non_compliant else frozenset({1, 2}),
        table_id=section_id and f"{section_id}-table",
    )
    more = f"<p class=muted>{len(rows) - limit} more not shown.</p>" if len(rows) > limit else ""
    ident = f' id="{section_id}"' if section_id else ""
    return f"<section{ident}><h2>{escape(title)}</h2>{table}{more}</section>"


def places_section(records: Sequence[Mapping[str, Any]]) -> str:
    """Compliance by account and by Region, when the rows span more than one of either; else nothing."""
    if not spans_places(records):
        return ""
    return _table(
        "Compliance by account", _group(records, "account_id"), non_compliant=True, section_id="by-account"
    ) + _table("Compliance by Region", _group(records, "region"), non_compliant=True, section_id="by-region")


def _owner_sections(rows: Sequence[Mapping[str, Any]], limit: int) -> str:
    """One section per owner, behind its anchor, holding that owner's instances and nobody else's.

    Owners of one name in several accounts share a section (the Owner tag is all the page knows of them),
    so each instance there names its account and Region when the rows span more than one.
    """
    places = spans_places(rows)
    by_owner: dict[str, list[Mapping[str, Any]]] = {}
    for record in sorted(rows, key=lambda r: str(r["instance_id"])):
        by_owner.setdefault(owner_of(record), []).append(record)
    sections = []
    for owner in sorted(by_owner):
        mine = by_owner[owner]
        counts = summarize(mine)
        needing = sum(action_of(r) is not None for r in mine)
        place = ("account/Region",) if places else ()
        table = _cards(
            ("instance", *place, "name", "patch group", "compliance", "state", "what to do"),
            (
                (
                    escape(str(r["instance_id"])),
                    *((escape(place_of(r)),) if places else ()),
                    escape(str(r.get("name") or "")),
                    escape(str(r.get("patch_group") or "")),
                    escape(str(r.get("compliance") or "unknown")),
                    escape(_state(r)),
                    escape(action_of(r) or ""),
                )
                for r in mine[:limit]
            ),
        )
        more = f"<p class=muted>{len(mine) - limit} more in the snapshot.</p>" if len(mine) > limit else ""
        sections.append(
            f'<section class=owner id="{owner_anchor(owner)}"><h3>{escape(owner)}</h3>'
            f"<p class=muted>{len(mine)} instances: {counts['compliant']} compliant, "
            f"{counts['non_compliant']} non-compliant, {counts['unknown']} unknown; {needing} need action.</p>"
            f"{table}{more}</section>"
        )
    return "".join(sections)


def _week_list(title: str, table_id: str, rows: Sequence[Mapping[str, Any]], limit: int) -> str:
    if not rows:
        return f"<h3>{escape(title)}: none</h3>"
    table = _cards(
        ("instance", "name", "owner", "patch group"),
        (
            (
                escape(str(r["instance_id"])),
                escape(str(r.get("name") or "")),
                escape(str(r.get("owner") or "")),
                escape(str(r.get("patch_group") or "")),
            )
            for r in rows[:limit]
        ),
        table_id=table_id,
    )
    more = f"<p class=muted>{len(rows) - limit} more in the snapshot.</p>" if len(rows) > limit else ""
    return f"<h3>{escape(title)}: {len(rows)}</h3>{table}{more}"


def week_section(changes: WeekChanges | WeekUnreadable | None, limit: int = 500) -> str:
    """The "This week's changes" section, or a note that no snapshot is a week old yet or that it was unread."""
    if isinstance(changes, WeekUnreadable):
        return (
            '<section id="week"><h2>This week\'s changes</h2>'
            f"<p class=muted>The snapshot of {escape(changes.since)} could not be read ({escape(changes.reason)}).</p>"
            "</section>"
        )
    if changes is None:
        return (
            '<section id="week"><h2>This week\'s changes</h2>'
            f"<p class=muted>No snapshot a week old yet ({WEEK_DAYS} to {OLDEST_DAYS} days before this one).</p>"
            "</section>"
        )
    return (
        '<section id="week"><h2>This week\'s changes</h2>'
        f"<p class=muted>Against the snapshot of {escape(changes.since)}.</p>"
        f"{_week_list('Newly non-compliant', 'week-non-compliant', changes.newly_non_compliant, limit)}"
        f"{_week_list('Fixed (non-compliant then, compliant now)', 'week-fixed', changes.fixed, limit)}"
        f"{_week_list('New exceptions', 'week-exceptions', changes.new_exceptions, limit)}"
        "</section>"
    )


def _days(value: float | None) -> str:
    return "none on record" if value is None else f"{value:g}"


def slowest_section(paces: Sequence[GroupPace], limit: int = 20) -> str:
    """The "Slowest-to-patch groups" section, its measure stated above the table."""
    if not paces:
        return (
            '<section id="slowest"><h2>Slowest-to-patch groups</h2>'
            "<p class=muted>No instance with a patch group.</p></section>"
        )
    table = _cards(
        ("patch group", "instances", "non-compliant", "no install on record", "median days", "longest days"),
        (
            (
                escape(p.patch_group),
                str(p.instances),
                str(p.non_compliant),
                str(p.no_install),
                _days(p.median_days),
                _days(p.longest_days),
            )
            for p in paces[:limit]
        ),
        table_id="slowest-groups",
        numeric=frozenset({1, 2, 3, 4, 5}),
    )
    more = f"<p class=muted>{len(paces) - limit} more groups not shown.</p>" if len(paces) > limit else ""
    return (
        f'<section id="slowest"><h2>Slowest-to-patch groups</h2><p class=muted>{escape(SLOWEST_DEFINITION)}</p>'
        f"{table}{more}</section>"
    )


@dataclass(frozen=True)
class NotReported:
    """A target of an organization's page whose rows it lacks, and why (its cycle failed)."""

    target: str  # account/Region
    reason: str


@dataclass(frozen=True)
class OrgTargets:
    """Which targets an organization's page holds the rows of, and which it does not."""

    reported: tuple[str, ...]  # account/Region, as the alert names them
    not_reported: tuple[NotReported, ...]


def targets_section(targets: OrgTargets, reported_table: str = "") -> str:
    """An organization's page names every target: the ones whose rows it shows (or, on the summary page,
    `reported_table`: each one's counts and page), and each one it does not with why, so no target is
    missing without a word."""
    reported = ", ".join(escape(label) for label in targets.reported) or "none"
    held = reported_table or f"<p>Rows of {len(targets.reported)} targets: {reported}.</p>"
    missing = _cards(
        ("target", "not reported"),
        ((escape(item.target), escape(f"not reported: {item.reason}")) for item in targets.not_reported),
        table_id="not-reported",
    )
    return (
        '<section id="targets"><h2>Targets</h2>'
        f"{held}"
        f"<h3>Not reported: {len(targets.not_reported)}</h3>{missing if targets.not_reported else ''}"
        "<p class=muted>Each target's own report (report-&lt;account&gt;-&lt;Region&gt;.html beside this one) "
        "has its trend and its week's changes.</p></section>"
    )


def render(
    records: Iterable[Mapping[str, Any]],
    *,
    generated_at: str,
    trend: Sequence[TrendPoint] = (),
    week: WeekChanges | WeekUnreadable | None = None,
    action_limit: int = 500,
    targets: OrgTargets | None = None,
) -> str:
    """The page for one snapshot's records, with the compliance trend of the snapshots so far and the
    changes since the snapshot a week older (`week`, None when there is none). An organization's page
    (`targets` given) names its targets, each one not reported with why, instead of the week's changes,
    which each target's own page keeps."""
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
    tiles = _tiles(
        (
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
    outcome_table = _cards(
        ("outcome", "instances"),
        ((escape(name), str(outcomes.get(name, 0))) for name in OUTCOME_ORDER),
        table_id="outcomes",
        numeric=frozenset({1}),
    )
    action_table = _cards(
        ("instance", "name", "owner", "patch group", "state", "reasons", "what to do"),
        (
            (
                escape(str(r["instance_id"])),
                escape(str(r.get("name") or "")),
                escape(str(r.get("owner") or "")),
                escape(str(r.get("patch_group") or "")),
                escape(_state(r)),
                escape(_reasons(r)),
                escape(action),
            )
            for r, action in needing[:action_limit]
        ),
        table_id="actions",
    )
    more = (
        f"<p class=muted>{len(needing) - action_limit} more in the snapshot.</p>" if len(needing) > action_limit else ""
    )
    scan_table = _cards(
        ("instance", "name", "owner", "patch group", "scan", "last scan", "age (days)", "why unknown"),
        (
            (
                escape(str(r["instance_id"])),
                escape(str(r.get("name") or "")),
                escape(str(r.get("owner") or "")),
                escape(str(r.get("patch_group") or "")),
                escape(str(r.get("scan_status"))),
                escape(str(r.get("last_scan") or "never")),
                escape(str(r.get("scan_age_days") if r.get("scan_age_days") is not None else "")),
                escape(str(r.get("compliance_unknown_reason") or "")),
            )
            for r in unscanned[:action_limit]
        ),
        table_id="scans",
        numeric=frozenset({6}),
    )
    more_scans = (
        f"<p class=muted>{len(unscanned) - action_limit} more in the snapshot.</p>"
        if len(unscanned) > action_limit
        else ""
    )
    return f"""{_HEAD}
<h1>tagpatch compliance report</h1>
<p class=muted>Snapshot of {counts["instances"]} instances, generated {escape(generated_at)}.</p>
<div class=tiles>{tiles}</div>
{targets_section(targets) if targets is not None else ""}
{trend_section(trend) if targets is None or trend else ""}
{week_section(week, action_limit) if targets is None else ""}
{_table("Compliance by owner", _group(rows, "owner"), link_owners=True)}
{_table("Compliance by patch group", _group(rows, "patch_group"))}
{_table("Compliance by OS", _group(rows, "os"))}
{places_section(rows)}
{slowest_section(group_paces(rows))}
<section><h2>Outcomes of the last windows</h2>{outcome_table}</section>
<section><h2>Instances that need action</h2>{action_table}{more}</section>
<section><h2>Scans stale or missing</h2>
<p class=muted>Compliance read from a scan older than the policy's threshold, or from none.</p>
{scan_table}{more_scans}
</section>
<section id="owners"><h2>By owner</h2>
<p class=muted>Each owner's instances, at report.html#owner-&lt;name&gt; (a hash follows names that are not plain).</p>
{_owner_sections(rows, action_limit)}
</section>
</body></html>
"""


@dataclass(frozen=True)
class TargetCounts:
    """One reported target on an organization's summary page: the counts its ComplianceExport returned
    (None when it returned none) and the href of its own page from the organization's (None: it has no
    page apart, as home's page key is the organization's)."""

    account_id: str
    region: str
    counts: Mapping[str, int] | None
    page: str | None

    @property
    def label(self) -> str:
        return f"{self.account_id}/{self.region}"


def _summed(reported: Iterable[TargetCounts]) -> dict[str, int]:
    totals = {"instances": 0, "compliant": 0, "non_compliant": 0, "unknown": 0, "excepted": 0}
    for target in reported:
        for field in totals:
            totals[field] += int((target.counts or {}).get(field, 0))
    return totals


def _counts_by(reported: Sequence[TargetCounts], place: str) -> list[tuple[str, int, int]]:
    """(account or Region, compliant, known) as `_group` gives them from rows, from the targets' counts."""
    compliant: Counter[str] = Counter()
    known: Counter[str] = Counter()
    for target in reported:
        value = target.account_id if place == "account_id" else target.region
        counts = target.counts or {}
        compliant[value] += int(counts.get("compliant", 0))
        known[value] += int(counts.get("compliant", 0)) + int(counts.get("non_compliant", 0))
    # As from rows: a place none of whose instances has a known compliance is not listed.
    ordered = sorted(known.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(value, compliant[value], count) for value, count in ordered if count]


def _target_row(target: TargetCounts) -> tuple[str, ...]:
    page = (
        f'<a href="{escape(target.page)}">{escape(target.page)}</a>'
        if target.page is not None
        else "none apart: this page has its key; its rows are in its snapshot"
    )
    if target.counts is None:
        return (escape(target.account_id), escape(target.region), "", "", "", "", "counts not returned", page)
    counts = {
        field: int(target.counts.get(field, 0)) for field in ("instances", "compliant", "non_compliant", "unknown")
    }
    percent = compliance_percent(counts)
    return (
        escape(target.account_id),
        escape(target.region),
        *(str(counts[field]) for field in ("instances", "compliant", "non_compliant", "unknown")),
        f"{percent:.1f}%" if percent is not None else "n/a",
        page,
    )


def render_summary(
    reported: Sequence[TargetCounts],
    *,
    generated_at: str,
    trend: Sequence[TrendPoint],
    targets: OrgTargets,
    max_rows: int,
) -> str:
    """An organization's page too large to hold its rows: built from each reported target's counts alone,
    never an instance row, so its size follows the number of targets. The headline, the breakdowns by
    account and by Region, one line per target with its own page linked, the summed trend and each target
    not reported with why."""
    counts = _summed(reported)
    percent = compliance_percent(counts)
    why = (
        f"the organization has more instances than the {max_rows} this page reads"
        if all(target.counts is not None for target in reported)
        else "a target returned no count, so this page reads no rows"
    )
    tiles = _tiles(
        (
            (
                "compliance-percent",
                f"{percent:.1f}%" if percent is not None else "n/a",
                "compliant (of instances with a known state)",
            ),
            ("instances", counts["instances"], "instances"),
            ("compliant", counts["compliant"], "compliant"),
            ("non-compliant", counts["non_compliant"], "non-compliant"),
            ("unknown", counts["unknown"], "compliance unknown"),
            ("excepted", counts["excepted"], "excepted"),
        )
    )
    table = _cards(
        ("account", "Region", "instances", "compliant", "non-compliant", "unknown", "%", "page"),
        (_target_row(target) for target in reported),
        table_id="target-pages",
        numeric=frozenset({2, 3, 4, 5, 6}),
    )
    listing = f"<h3>Reported: {len(reported)}</h3>{table}"
    # Every account and Region: their number follows the targets', never the instances'.
    by_account, by_region = _counts_by(reported, "account_id"), _counts_by(reported, "region")
    return f"""{_HEAD}
<h1>tagpatch compliance report</h1>
<p class=muted>Summary of {counts["instances"]} instances in {len(reported)} targets, \
generated {escape(generated_at)}.</p>
<p id="rows-elsewhere">The instance rows are on each target's own page, linked below: {escape(why)}.</p>
<div class=tiles>{tiles}</div>
{targets_section(targets, listing)}
{trend_section(trend)}
{_table("Compliance by account", by_account, len(by_account), non_compliant=True, section_id="by-account")}
{_table("Compliance by Region", by_region, len(by_region), non_compliant=True, section_id="by-region")}
</body></html>
"""
