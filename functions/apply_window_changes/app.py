"""ApplyWindowChanges: apply the planned changes of one maintenance window (one Map iteration)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.aws import act_in
from tagpatch.changes import applied_counts, load_changes, save_applied
from tagpatch.config import ArtifactConfig
from tagpatch.cycle import Cycle
from tagpatch.errors import InvalidCycleInput, TransientAwsError, WindowChangeRejected
from tagpatch.observability import lambda_entry, logger, metrics
from tagpatch.ssm_windows import apply_window
from tagpatch.workflow import ApplyWindowResult

ARTIFACTS = ArtifactConfig.from_env()


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> ApplyWindowResult:
    cycle = Cycle.from_payload(event.get("cycle"))
    act_in(cycle.target, "ApplyWindowChanges")
    if cycle.mode != "apply":
        raise InvalidCycleInput(f"ApplyWindowChanges was called in {cycle.mode} mode; it only runs in apply mode")
    window = str(event["window"])
    changes = list(load_changes(ARTIFACTS.bucket, str(event["changes_key"]), window))
    result = apply_window(changes, cycle.run_id)
    # Saved before any failure is raised, so the report can tell what was written and what was not.
    applied_key = save_applied(ARTIFACTS.bucket, cycle, window, result.outcomes)
    by_kind = applied_counts(result.outcomes)
    totals = {label: sum(counts[label] for counts in by_kind.values()) for label in next(iter(by_kind.values()))}
    metrics.add_metric(
        name="WindowChangesApplied",
        unit=MetricUnit.Count,
        value=totals["created"] + totals["updated"] + totals["deleted"],
    )
    if result.failure is not None:
        message = f"{result.describe_failure()} (outcomes: s3://{ARTIFACTS.bucket}/{applied_key})"
        if result.retryable:
            raise TransientAwsError(message)
        raise WindowChangeRejected(message)
    # Not **counts: "created" is a reserved LogRecord attribute.
    logger.info("window applied", extra={"window": window, "applied": totals})
    return {
        "window": window,
        "created": totals["created"],
        "updated": totals["updated"],
        "deleted": totals["deleted"],
        "not_applied": totals["not_applied"],
        "applied": by_kind,
        "applied_key": applied_key,
    }
