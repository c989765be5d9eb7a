"""The organization's report.html: one page over the rows of every target the org cycle reached
(docs/decisions.md, "Many accounts and Regions").

Each target's ComplianceExport wrote its own snapshot and page; SummarizeTargets reads the snapshot of
each target whose cycle succeeded (by the key its cycle returned, so the rows never pass through the
state machine) and renders them as one page, naming each target it has no rows of and why, with the
compliance trend summed over those targets' own trends (each date: the targets with a point that day,
so a target that joined later adds to its dates only). An org
cycle whose only target is home writes no page of its own: home's page is the report, as a
single-account stack's is. A plan-mode org cycle writes none: each target's plan page is under its run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tagpatch.cycle import Mode
from tagpatch.export import LATEST_REPORT_KEY, ExportKeys, report_key
from tagpatch.org_summary import SUCCEEDED, TargetOutcome
from tagpatch.org_targets import target_label
from tagpatch.report_html import NotReported, OrgTargets
from tagpatch.targets import Target, TargetPayload
from tagpatch.trend import COUNT_FIELDS, TrendPoint

NO_SNAPSHOT = "its patch cycle succeeded but returned no snapshot key"


@dataclass(frozen=True)
class OrgReportPlan:
    """The snapshots to read ((target label, key)), the reported targets' trends, and the targets the page
    names as not reported."""

    snapshots: tuple[tuple[str, str], ...]
    not_reported: tuple[NotReported, ...]
    trend_keys: tuple[str, ...] = ()

    @property
    def targets(self) -> OrgTargets:
        return OrgTargets(tuple(label for label, _ in self.snapshots), self.not_reported)


def home_only(outcomes: Sequence[TargetOutcome], home: TargetPayload) -> bool:
    """Whether the org cycle's one target is home: then home's own page is the report, left as it is."""
    return len(outcomes) == 1 and outcomes[0]["target"] == home


def plan_report(outcomes: Iterable[TargetOutcome], home: TargetPayload) -> OrgReportPlan:
    """Each succeeded target's snapshot (the key its ComplianceExport returned) and trend (where its
    ComplianceExport keeps it); every other target with why it has no rows on the page."""
    snapshots: list[tuple[str, str]] = []
    trends: list[str] = []
    missing: list[NotReported] = []
    for outcome in outcomes:
        label = target_label(outcome["target"])
        key = (outcome["compliance"] or {}).get("snapshot_key") if outcome["status"] == SUCCEEDED else None
        if isinstance(key, str) and key:
            snapshots.append((label, key))
            target = Target.from_payload(outcome["target"])
            trends.append(ExportKeys.of(target, Target.from_payload(home)).trend)
        else:
            missing.append(NotReported(label, outcome["reason"] or NO_SNAPSHOT))
    return OrgReportPlan(tuple(snapshots), tuple(missing), tuple(trends))


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
