"""The organization's report.html: one page over the rows of every target the org cycle reached
(docs/decisions.md, "Many accounts and Regions").

Each target's ComplianceExport wrote its own snapshot and page; SummarizeTargets reads the snapshot of
each target whose cycle succeeded (by the key its cycle returned, so the rows never pass through the
state machine) and renders them as one page, naming each target it has no rows of and why, with the
compliance trend summed over those targets' own trends (each date: the targets with a point that day,
so a target that joined later adds to its dates only). An org
cycle whose only target is home writes no page of its own: home's page is the report, as a
single-account stack's is. A plan-mode org cycle writes none: each target's plan page is under its run.

The page holds its rows in memory, so past `max_rows` instances (summed from the counts each target's
ComplianceExport returned, before any row is read) it is a summary instead: each reported target's
counts and a link to its own page, built without reading a row (`org_pages`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from tagpatch.cycle import Mode
from tagpatch.export import LATEST_REPORT_KEY, ExportKeys, report_key
from tagpatch.org_summary import SUCCEEDED, TargetOutcome
from tagpatch.org_targets import target_label
from tagpatch.report_html import NotReported, OrgTargets, TargetCounts, render, render_summary
from tagpatch.targets import Target, TargetPayload
from tagpatch.trend import COUNT_FIELDS, TrendPoint

NO_SNAPSHOT = "its patch cycle succeeded but returned no snapshot key"
# The rows page held 100,000 rows in about 430 MiB above the baseline (docs/decisions.md, "One
# report.html over the targets"): some 4.4 KiB a row, growing with the rows.
MEASURED_BYTES_PER_ROW: Final = 430 * 2**20 // 100_000
SUMMARIZE_TARGETS_MEMORY_MB: Final = 1769  # its MemorySize in template.yaml (a test holds the two equal)
# Half the function's memory for the rows (MB read as the smaller 10**6 bytes), the rest for the runtime,
# the page's text and its encoding: 196,206 rows, about 9 s at the measured pace.
ORG_REPORT_MAX_ROWS: Final = SUMMARIZE_TARGETS_MEMORY_MB * 1_000_000 // 2 // MEASURED_BYTES_PER_ROW


@dataclass(frozen=True)
class OrgReportPlan:
    """The snapshots to read ((target label, key)), the reported targets' trends, and the targets the page
    names as not reported."""

    snapshots: tuple[tuple[str, str], ...]
    not_reported: tuple[NotReported, ...]
    trend_keys: tuple[str, ...] = ()
    reported: tuple[TargetCounts, ...] = ()  # each snapshot's target: its counts and its own page
    # Each reported target's own pages, by key: its day's (as its ComplianceExport wrote it; None when it
    # returned none) and its latest.
    pages: tuple[tuple[str | None, str], ...] = ()

    @property
    def targets(self) -> OrgTargets:
        return OrgTargets(tuple(label for label, _ in self.snapshots), self.not_reported)

    @property
    def instances(self) -> int | None:
        """The rows the snapshots hold, by their targets' counts; None when a target returned none."""
        counts = [target.counts for target in self.reported]
        if len(counts) != len(self.snapshots) or any(count is None for count in counts):
            return None
        return sum(int(count["instances"]) for count in counts if count is not None)


def _instance_counts(compliance: Mapping[str, Any]) -> dict[str, int] | None:
    counts = compliance.get("counts")
    if not isinstance(counts, Mapping) or not isinstance(counts.get("instances"), int):
        return None
    return {str(field): int(value) for field, value in counts.items() if isinstance(value, int)}


def home_only(outcomes: Sequence[TargetOutcome], home: TargetPayload) -> bool:
    """Whether the org cycle's one target is home: then home's own page is the report, left as it is."""
    return len(outcomes) == 1 and outcomes[0]["target"] == home


def plan_report(outcomes: Iterable[TargetOutcome], home: TargetPayload) -> OrgReportPlan:
    """Each succeeded target's snapshot (the key its ComplianceExport returned) and trend (where its
    ComplianceExport keeps it); every other target with why it has no rows on the page."""
    snapshots: list[tuple[str, str]] = []
    trends: list[str] = []
    missing: list[NotReported] = []
    reported: list[TargetCounts] = []
    pages: list[tuple[str | None, str]] = []
    for outcome in outcomes:
        label = target_label(outcome["target"])
        compliance = outcome["compliance"] or {}
        key = compliance.get("snapshot_key") if outcome["status"] == SUCCEEDED else None
        if isinstance(key, str) and key:
            snapshots.append((label, key))
            target = Target.from_payload(outcome["target"])
            keys = ExportKeys.of(target, Target.from_payload(home))
            trends.append(keys.trend)
            day = compliance.get("report_key")
            pages.append((keys.named(day) if isinstance(day, str) and day else None, keys.named_latest_report))
            page = posixpath.basename(keys.named_latest_report)  # beside the latest page; see org_pages
            reported.append(TargetCounts(target.account_id, target.region, _instance_counts(compliance), page))
        else:
            missing.append(NotReported(label, outcome["reason"] or NO_SNAPSHOT))
    return OrgReportPlan(tuple(snapshots), tuple(missing), tuple(trends), tuple(reported), tuple(pages))


def summed_trend(trends: Iterable[Sequence[TrendPoint]]) -> list[TrendPoint]:
    """The organization's trend: each date's counts summed over the targets with a point that day."""
    by_date: dict[str, dict[str, int]] = {}
    for points in trends:
        for point in points:
            totals = by_date.setdefault(point["date"], dict.fromkeys(COUNT_FIELDS, 0))
            for field in COUNT_FIELDS:
                totals[field] += int(point[field])
    return [
        TrendPoint(
            date=date,
            instances=totals["instances"],
            compliant=totals["compliant"],
            non_compliant=totals["non_compliant"],
            unknown=totals["unknown"],
            excepted=totals["excepted"],
        )
        for date, totals in sorted(by_date.items())
    ]


def org_rows(plan: OrgReportPlan, read: Callable[[str], Iterable[Mapping[str, Any]]]) -> Iterator[Mapping[str, Any]]:
    """Every reported target's rows, one snapshot after another, read as they are consumed."""
    for _, key in plan.snapshots:
        yield from read(key)


def org_report_keys(mode: Mode, now: datetime) -> list[str]:
    """Where the page goes: the report's own keys (the day's and latest, where a single-account stack's
    page is) in apply mode; none in plan mode, where each target's page sits under its own run."""
    if mode != "apply":
        return []
    return [report_key(now), LATEST_REPORT_KEY]


def _linked(plan: OrgReportPlan, key: str) -> tuple[TargetCounts, ...]:
    """The reported targets with each one's page linked from `key`: its latest from the latest page, its
    day's from a day's page (another day's folder when its cycle started after midnight)."""
    folder = posixpath.dirname(key)
    linked = []
    for target, (day, latest) in zip(plan.reported, plan.pages, strict=True):
        page = latest if key == LATEST_REPORT_KEY or day is None else day
        linked.append(replace(target, page=posixpath.relpath(page, folder)))
    return tuple(linked)


def org_pages(
    plan: OrgReportPlan,
    read: Callable[[str], Iterable[Mapping[str, Any]]],
    keys: Sequence[str],
    *,
    generated_at: str,
    trend: Sequence[TrendPoint],
    max_rows: int,
) -> dict[str, str]:
    """The organization's page for each of its keys: every reported target's rows (one page for all keys)
    when their counts sum to at most `max_rows`; past it (or when a target returned no count) the
    summary, for which no row is read, each key's linking the targets' pages from where it sits."""
    instances = plan.instances
    if instances is not None and instances <= max_rows:
        page = render(org_rows(plan, read), generated_at=generated_at, trend=trend, targets=plan.targets)
        return dict.fromkeys(keys, page)
    return {
        key: render_summary(
            _linked(plan, key), generated_at=generated_at, trend=trend, targets=plan.targets, max_rows=max_rows
        )
        for key in keys
    }


def org_page(
    plan: OrgReportPlan,
    read: Callable[[str], Iterable[Mapping[str, Any]]],
    *,
    generated_at: str,
    trend: Sequence[TrendPoint],
    max_rows: int,
) -> str:
    """The organization's latest page (`org_pages` for that key alone)."""
    pages = org_pages(plan, read, [LATEST_REPORT_KEY], generated_at=generated_at, trend=trend, max_rows=max_rows)
    return pages[LATEST_REPORT_KEY]
