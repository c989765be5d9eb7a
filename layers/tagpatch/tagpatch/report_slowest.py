"""report.html's slowest-to-patch groups, from the snapshot's records alone (pure; report_html draws them).

The measure is each instance's days since its last successful install (`days_since_last_success`: an
Install run that failed no patch, as PatchMonitoring read it; carried from snapshot to snapshot), per
patch group: the median and the longest. It is the snapshot's own column, so the page agrees with
Athena and QuickSight, and it grows every day an instance goes without a successful install, whether
its window failed, was missed or never ran. An instance with no successful install on record (new,
or never patched since tagpatch began exporting) has no age: it is counted apart, not guessed, and
its group ranks before every group whose instances all have one, as it has waited its whole record.
Excepted instances are left out: their owners chose not to patch them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from statistics import median
from typing import Any, Final

from tagpatch.classes import EXCEPTED

DEFINITION: Final = (
    "Per patch group, the days since each instance's last successful install (an Install run that failed "
    "no patch): the median and the longest. Instances with no successful install on record are counted apart, "
    "and their groups come first (most such instances first), then the longest wait; excepted instances are "
    "left out."
)


@dataclass(frozen=True)
class GroupPace:
    """How long one patch group's instances have gone without a successful install."""

    patch_group: str
    instances: int
    non_compliant: int
    no_install: int  # instances with no successful install on record
    median_days: float | None  # None when no instance has one
    longest_days: int | None


def group_paces(records: Iterable[Mapping[str, Any]]) -> list[GroupPace]:
    """Every patch group's pace, slowest first: groups with instances that have no successful install on
    record (the most such first), then the longest wait, then the name."""
    days: dict[str, list[int]] = {}
    counts: dict[str, list[int]] = {}  # group -> [instances, non-compliant, no install]
    for record in records:
        group = record.get("patch_group")
        if not group or record.get("class") == EXCEPTED:
            continue
        count = counts.setdefault(str(group), [0, 0, 0])
        count[0] += 1
        count[1] += record.get("compliance") == "NON_COMPLIANT"
        waited = record.get("days_since_last_success")
        if waited is None:
            count[2] += 1
        else:
            days.setdefault(str(group), []).append(int(waited))
    paces = [
        GroupPace(
            group,
            instances,
            non_compliant,
            no_install,
            float(median(days[group])) if group in days else None,
            max(days[group]) if group in days else None,
        )
        for group, (instances, non_compliant, no_install) in counts.items()
    ]
    return sorted(
        paces,
        key=lambda p: (-p.no_install, -(p.longest_days if p.longest_days is not None else -1), p.patch_group),
    )
