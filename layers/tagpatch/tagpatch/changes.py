"""Plans as run artifacts: every change (and every unchanged resource) as JSON Lines in S3."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from tagpatch.cycle import Cycle
from tagpatch.desired import DesiredState, Problem, build_desired_state
from tagpatch.inventory import get_jsonl_gz, put_json, put_jsonl_gz
from tagpatch.policy import PatchPolicy
from tagpatch.reconcile import WRITE_ACTIONS, Change, Plan


def save_plan(bucket: str, cycle: Cycle, name: str, plan: Plan) -> tuple[str, str]:
    """Write `<name>-changes.jsonl.gz` and `<name>-report.json`; return both keys."""
    changes_key = cycle.artifact_key(f"{name}-changes.jsonl.gz")
    report_key = cycle.artifact_key(f"{name}-report.json")
    put_jsonl_gz(bucket, changes_key, (change.to_json() for change in plan.changes))
    put_json(
        bucket,
        report_key,
        {"mode": cycle.mode, "counts": plan.counts(), "problems": [problem_json(p) for p in plan.problems]},
    )
    return changes_key, report_key


def desired_state_of_run(bucket: str, validation: Mapping[str, Any], policy: PatchPolicy) -> DesiredState:
    """What the run's validated instances (TagValidation's artifact) ask SSM for."""
    return build_desired_state(get_jsonl_gz(bucket, str(validation["instances_key"])), policy)


def problem_json(problem: Problem) -> dict[str, str]:
    return {"kind": problem.kind, "name": problem.name, "reason": problem.reason}


def load_changes(bucket: str, key: str, window: str | None = None) -> Iterator[Change]:
    for line in get_jsonl_gz(bucket, key):
        if window is None or line.get("window") == window:
            yield Change.from_json(line)


def windows_with_writes(changes: Iterable[Change]) -> list[str]:
    return sorted({change.window for change in changes if change.window and change.action in WRITE_ACTIONS})
