"""Tag validation over the whole inventory: one report line per instance, and a summary."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tagpatch.classes import CLASS_PRECEDENCE, EXCEPTED, ReportClass
from tagpatch.cycle import Cycle
from tagpatch.exceptions import ExceptionSet
from tagpatch.gates import GateDecision
from tagpatch.inventory import InstanceReport, InventoryRecord
from tagpatch.policy import PatchPolicy
from tagpatch.tags import InstanceFacts, classify

OWNER_TAG_KEYS = ("Owner", "owner", "Team", "team")
# The report's classes: the tag classes, and `excepted` for an instance under a live patch exception.
REPORT_CLASSES: tuple[ReportClass, ...] = (*CLASS_PRECEDENCE, EXCEPTED)


def owner_of(tags: dict[str, str]) -> str | None:
    for key in OWNER_TAG_KEYS:
        value = tags.get(key, "").strip()
        if value:
            return value
    return None


def report_instance(
    record: InventoryRecord,
    policy: PatchPolicy,
    cycle: Cycle,
    exceptions: ExceptionSet | None = None,
    gates: Mapping[str, GateDecision] | None = None,
) -> InstanceReport:
    facts = InstanceFacts(
        instance_id=record["instance_id"],
        tags=record["tags"],
        state=record["state"],
        ssm_registered=record["ssm"]["registered"],
        ping_status=record["ssm"]["ping_status"],
        has_instance_profile=record["instance_profile_arn"] is not None,
    )
    result = classify(facts, policy.windows.keys(), now=cycle.now, timezone=policy.default_window.timezone)
    match = (exceptions or ExceptionSet()).match(record["instance_id"], record["tags"], cycle.now)
    report: InstanceReport = {
        "instance_id": record["instance_id"],
        "name": record["name"],
        "owner": owner_of(record["tags"]),
        "class": EXCEPTED if match.live is not None else result.instance_class,
        "tag_class": result.instance_class,
        "reasons": list(result.reasons),
        "warnings": list(result.warnings),
        "patch_group": result.patch_group,
        "patch_group_key": result.patch_group_key,
        "maintenance_window": result.maintenance_window,
        "window_key": result.window_key,
        "window_kind": result.window_kind,
        "os": record["os"],
        "state": record["state"],
        "ping_status": record["ssm"]["ping_status"],
        "in_scope": cycle.in_scope(result.patch_group),
        "targeting_tags": dict(result.targeting_tags),
    }
    if match.live is not None:
        report["exception"] = match.live.summary()
        if match.live.hold:
            # WindowUpsert reads this: the instance's window scans it instead of installing.
            report["held"] = True
    elif match.expired is not None:
        report["expired_exception"] = match.expired.summary()
    wave = policy.rollout.wave_of(result.patch_group)
    decision = (gates or {}).get(wave.name) if wave is not None else None
    if decision is not None:
        report["gate"] = decision.to_json()
        if not decision.open:
            # Held as a `hold: true` exception holds: WindowUpsert scans the wave's instances, installs nothing.
            report["held"] = True
    return report


@dataclass
class ValidationSummary:
    """Counts for the state's output, and problems grouped by owner for the report object."""

    total: int = 0
    in_scope: int = 0
    by_class: Counter[str] = field(default_factory=Counter)
    by_patch_group_key: Counter[str] = field(default_factory=Counter)
    problems_by_owner: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    expired_exceptions: int = 0  # instances whose exception has expired (held to the rules again)

    def add(self, report: InstanceReport) -> None:
        self.total += 1
        self.in_scope += report["in_scope"]
        self.by_class[report["class"]] += 1
        if report["patch_group_key"]:
            self.by_patch_group_key[report["patch_group_key"]] += 1
        if report.get("expired_exception"):
            self.expired_exceptions += 1
        if report["class"] != "ready" or report["warnings"]:
            self.problems_by_owner[report["owner"] or "(no Owner tag)"].append(
                {
                    "instance_id": report["instance_id"],
                    "name": report["name"],
                    "class": report["class"],
                    "tag_class": report.get("tag_class", report["class"]),
                    "exception": report.get("exception"),
                    "reasons": report["reasons"],
                    "warnings": report["warnings"],
                }
            )

    def counts_by_class(self) -> dict[str, int]:
        return {name: self.by_class.get(name, 0) for name in REPORT_CLASSES}


def validate_inventory(
    records: Iterable[InventoryRecord],
    policy: PatchPolicy,
    cycle: Cycle,
    summary: ValidationSummary,
    exceptions: ExceptionSet | None = None,
    gates: Mapping[str, GateDecision] | None = None,
) -> Iterator[InstanceReport]:
    for record in records:
        report = report_instance(record, policy, cycle, exceptions, gates)
        summary.add(report)
        yield report
