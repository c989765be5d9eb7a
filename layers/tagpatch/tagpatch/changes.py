"""Plans as run artifacts: every change (and every unchanged resource) as JSON Lines in S3, and what
applying them did."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

from tagpatch.cycle import Cycle
from tagpatch.desired import DesiredState, Hold, Problem, build_desired_state
from tagpatch.inventory import get_jsonl_gz, put_json, put_jsonl_gz
from tagpatch.policy import PatchPolicy
from tagpatch.reconcile import KINDS, PAST_TENSE, WRITE_ACTIONS, Change, Plan

# applied: SSM made the change now. already_done: it was made before (an earlier attempt whose answer
# was lost, or a crashed invocation); found, not repeated. failed: SSM refused it (or it outlived
# every retry). not_attempted: an earlier change of the same window failed first.
Outcome = Literal["applied", "already_done", "failed", "not_attempted"]
DONE: Final[frozenset[str]] = frozenset({"applied", "already_done"})


@dataclass(frozen=True)
class ChangeOutcome:
    kind: str
    action: str
    name: str
    window: str | None
    outcome: Outcome
    resource_id: str | None = None
    error: str | None = None  # SSM's code and message when failed

    @classmethod
    def of(
        cls, change: Change, outcome: Outcome, resource_id: str | None = None, error: str | None = None
    ) -> ChangeOutcome:
        return cls(change.kind, change.action, change.name, change.window, outcome, resource_id, error)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AppliedChanges:
    """What applying a list of changes did. Applying stops at the first failure that is worth retrying,
    so only the last failure can be the one that gave up after retries."""

    outcomes: tuple[ChangeOutcome, ...]
    retryable: bool = False  # stopped by throttling or a 5xx that outlived botocore's retries

    @property
    def failures(self) -> list[ChangeOutcome]:
        return [item for item in self.outcomes if item.outcome == "failed"]

    def describe_failures_of(self, subject: str) -> str:
        """Each failure with its cause as it was: refused by SSM, or given up on after retries."""
        failures = self.failures
        return "; ".join(
            f"{'gave up after retries on' if self.retryable and item is failures[-1] else 'SSM rejected'} "
            f"{item.action} of {subject} {item.name}: {item.error}"
            for item in failures
        )


def applied_counts(outcomes: Iterable[ChangeOutcome]) -> dict[str, dict[str, int]]:
    """kind -> {created, updated, deleted, not_applied}: what is now done in SSM, and what is not."""
    labels = ("created", "updated", "deleted", "not_applied")
    counts: dict[str, dict[str, int]] = {kind: dict.fromkeys(labels, 0) for kind in KINDS}
    for item in outcomes:
        label = PAST_TENSE[item.action] if item.outcome in DONE else "not_applied"
        counts[item.kind][label] += 1
    return counts


def applied_key(cycle: Cycle, name: str) -> str:
    """Where one apply step's outcomes go: `applied/<window>.json` or `applied/registrations.json`."""
    return cycle.artifact_key(f"applied/{name}.json")


def save_applied(bucket: str, cycle: Cycle, name: str, outcomes: Iterable[ChangeOutcome]) -> str:
    key = applied_key(cycle, name)
    put_json(bucket, key, [item.to_json() for item in outcomes])
    return key


def save_plan(
    bucket: str, cycle: Cycle, name: str, plan: Plan, extra: Mapping[str, Any] | None = None
) -> tuple[str, str]:
    """Write `<name>-changes.jsonl.gz` and `<name>-report.json` (with `extra`'s keys); return both keys."""
    changes_key = cycle.artifact_key(f"{name}-changes.jsonl.gz")
    report_key = cycle.artifact_key(f"{name}-report.json")
    put_jsonl_gz(bucket, changes_key, (change.to_json() for change in plan.changes))
    put_json(
        bucket,
        report_key,
        {
            "mode": cycle.mode,
            "counts": plan.counts(),
            "problems": [problem_json(p) for p in plan.problems],
            **(extra or {}),
        },
    )
    return changes_key, report_key


def desired_state_of_run(bucket: str, validation: Mapping[str, Any], policy: PatchPolicy) -> DesiredState:
    """What the run's validated instances (TagValidation's artifact) ask SSM for."""
    return build_desired_state(get_jsonl_gz(bucket, str(validation["instances_key"])), policy)


def instance_lines(bucket: str, validation: Mapping[str, Any]) -> list[dict[str, Any]]:
    """TagValidation's instance lines of the run, for a function that needs them besides the desired
    state: decode them once and pass them to `build_desired_state`."""
    return list(get_jsonl_gz(bucket, str(validation["instances_key"])))


def hold_json(hold: Hold) -> dict[str, Any]:
    """A hold as the window report shows it: which instances are scanned only, which installed by id."""
    return {
        "window": hold.window,
        "patch_group": hold.patch_group,
        "tag_key": hold.tag_key,
        "held": list(hold.held),
        "scan_task": hold.scan_task,
        "installed_by_id": list(hold.installed),
        "install_task": hold.task,
    }


def problem_json(problem: Problem) -> dict[str, str]:
    return {"kind": problem.kind, "name": problem.name, "reason": problem.reason}


def load_changes(bucket: str, key: str, window: str | None = None) -> Iterator[Change]:
    for line in get_jsonl_gz(bucket, key):
        if window is None or line.get("window") == window:
            yield Change.from_json(line)


def windows_with_writes(changes: Iterable[Change]) -> list[str]:
    return sorted({change.window for change in changes if change.window and change.action in WRITE_ACTIONS})
