"""ApplyWindowChanges: apply the planned changes of one maintenance window (one Map iteration)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from tagpatch.aws import TRANSIENT_ERROR_CODES, error_code
from tagpatch.changes import load_changes
from tagpatch.config import ArtifactConfig
from tagpatch.cycle import Cycle
from tagpatch.errors import InvalidCycleInput, WindowChangeRejected
from tagpatch.observability import lambda_entry, logger, metrics
from tagpatch.reconcile import write_counts
from tagpatch.ssm_windows import apply_window

ARTIFACTS = ArtifactConfig.from_env()


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    cycle = Cycle.from_payload(event.get("cycle"))
    if cycle.mode != "apply":
        raise InvalidCycleInput(f"ApplyWindowChanges was called in {cycle.mode} mode; it only runs in apply mode")
    window = str(event["window"])
    changes = list(load_changes(ARTIFACTS.bucket, str(event["changes_key"]), window))
    try:
        apply_window(changes, cycle.run_id)
    except ClientError as error:
        if error_code(error) in TRANSIENT_ERROR_CODES:
            raise
        raise WindowChangeRejected(
            f"SSM rejected a change to maintenance window {window}: {error_code(error)}: "
            f"{error.response.get('Error', {}).get('Message', error)}"
        ) from error
    applied = write_counts(changes)
    metrics.add_metric(name="WindowChangesApplied", unit=MetricUnit.Count, value=sum(applied.values()))
    # Not **counts: "created" is a reserved LogRecord attribute.
    logger.info("window applied", extra={"window": window, "applied": applied})
    return {"window": window, **applied}
