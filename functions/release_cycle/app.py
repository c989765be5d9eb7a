"""ReleaseCycle: give back the cycle lease PrepareCycle took, at the end of a cycle that succeeded or
failed, so the next cycle need not wait for the lease to expire (tagpatch.lease)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.aws import act_in, home_target
from tagpatch.config import ArtifactConfig
from tagpatch.cycle import Cycle
from tagpatch.lease import lease_key, release_lease
from tagpatch.observability import lambda_entry, logger, metrics
from tagpatch.workflow import ReleaseCycleResult

ARTIFACTS = ArtifactConfig.from_env()


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> ReleaseCycleResult:
    cycle = Cycle.from_payload(event.get("cycle"))
    act_in(cycle.target, "ReleaseCycle")
    released = release_lease(ARTIFACTS.bucket, cycle.execution_id, lease_key(cycle.target, home_target()))
    metrics.add_metric(name="CycleLeasesReleased", unit=MetricUnit.Count, value=1 if released else 0)
    if released:
        logger.info("cycle lease released")
    else:
        # Taken over after it expired (this cycle ran past the state machine's timeout), or never taken.
        logger.warning("cycle lease not held by this execution; nothing released")
    return {"released": released}
