"""Tag validation over the whole inventory: one report line per instance, and a summary."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tagpatch.cycle import Cycle
from tagpatch.inventory import InstanceReport, InventoryRecord
from tagpatch.policy import PatchPolicy
from tagpatch.tags import CLASS_PRECEDENCE, InstanceFacts, classify

OWNER_TAG_KEYS = ("Owner", "owner", "Team", "team")


def owner_of(tags: dict[str, str]) -> str | None:
    for key in OWNER_TAG_KEYS:
        value = tags.get(key, "").strip()
        if value:
            return value
    return None


def report_instance(record: InventoryRecord, policy: PatchPolicy, cycle: Cycle) -> InstanceReport:
    facts = InstanceFacts(
        instance_id=record["instance_id"],
        tags=record["tags"],
        state=record["state"],
        ssm_registered=record["ssm"]["registered"],
        ping_status=record["ssm"]["ping_status"],
        has_instance_profile=record["instance_profile_arn"] is not None,
    )
    result = classify(facts, policy.windows.keys())
    return {
        "instance_id": record["instance_id"],
        "name": record["name"],
        "owner": owner_of(record["tags"]),
        "class": result.instance_class,
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


@dataclass
class ValidationSummary:
    """Counts for the state's output, and problems grouped by owner for the report object."""

    total: int = 0
    in_scope: int = 0
    by_class: Counter[str] = field(default_factory=Counter)
    by_patch_group_key: Counter[str] = field(default_factory=Counter)
    problems_by_owner: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    def add(self, report: InstanceReport) -> None:
        self.total += 1
        self.in_scope += report["in_scope"]
        self.by_class[report["class"]] += 1
        if report["patch_group_key"]:
            self.by_patch_group_key[report["patch_group_key"]] += 1
        if report["class"] != "ready" or report["warnings"]:
            self.problems_by_owner[report["owner"] or "(no Owner tag)"].append(
                {
                    "instance_id": report["instance_id"],
                    "name": report["name"],
                    "class": report["class"],
                    "reasons": report["reasons"],
                    "warnings": report["warnings"],
                }
            )

    def counts_by_class(self) -> dict[str, int]:
        return {name: self.by_class.get(name, 0) for name in CLASS_PRECEDENCE}


def validate_inventory(
    records: Iterable[InventoryRecord], policy: PatchPolicy, cycle: Cycle, summary: ValidationSummary
) -> Iterator[InstanceReport]:
    for record in records:
        report = report_instance(record, policy, cycle)
        summary.add(report)
        yield report
