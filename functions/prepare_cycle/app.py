"""PrepareCycle: validate the execution input, make sure no other cycle of its target is running
(ListExecutions, then the target's cycle lease, which holds when the listing lags: tagpatch.lease), and
fix the cycle's target, evaluation time and artifact prefix."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.aws import client, home_target
from tagpatch.config import ArtifactConfig
from tagpatch.cycle import ensure_first_running, parse_time, start_cycle
from tagpatch.errors import CycleAlreadyRunning, InvalidCycleInput
from tagpatch.lease import lease_key, take_lease
from tagpatch.observability import lambda_entry, logger, metrics
from tagpatch.targets import Target
from tagpatch.workflow import PrepareCycleResult

EXECUTION_PAGE_SIZE: Final = 100
ARTIFACTS = ArtifactConfig.from_env()


def _target_of(execution: Mapping[str, Any], home: Target) -> Target | None:
    """The target another running execution acts in (from its input); None when its input is not
    readable, which that execution's own PrepareCycle refuses."""
    described = client("stepfunctions").describe_execution(executionArn=execution["executionArn"])
    try:
        execution_input = json.loads(described.get("input") or "{}")
        if isinstance(execution_input, Mapping) and "target" in execution_input:
            return Target.from_payload(execution_input["target"])
    except (ValueError, InvalidCycleInput):
        return None
    return home


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PrepareCycleResult:
    start_time = str(event.get("start_time", ""))
    home = home_target()
    cycle = start_cycle(
        event.get("input"),
        execution_id=str(event.get("execution_id", "")),
        execution_name=str(event.get("execution_name", "")),
        start_time=start_time,
        home=home,
    )
    logger.set_correlation_id(cycle.execution_id)
    # Step Functions pages with `nextToken`, so botocore's paginator rather than tagpatch.aws.paginate.
    pages = (
        client("stepfunctions")
        .get_paginator("list_executions")
        .paginate(
            stateMachineArn=str(event["state_machine_id"]),
            statusFilter="RUNNING",
            PaginationConfig={"PageSize": EXECUTION_PAGE_SIZE},
        )
    )
    running = [execution for page in pages for execution in page["executions"]]
    try:
        ensure_first_running(
            running,
            execution_arn=cycle.execution_id,
            start_time=start_time,
            # An unreadable input counts as the same target: excluding it for a moment is the safe side.
            of_same_target=lambda execution: _target_of(execution, home) in (cycle.target, None),
        )
        # The listing may lag behind a start seconds ago; the lease's conditional write does not.
        take_lease(
            ARTIFACTS.bucket,
            cycle.execution_id,
            parse_time(start_time, "start_time"),
            lease_key(cycle.target, home),
        )
    except CycleAlreadyRunning:
        metrics.add_metric(name="CyclesRefused", unit=MetricUnit.Count, value=1)
        raise
    payload = cycle.to_payload()
    metrics.add_metric(name="CyclesStarted", unit=MetricUnit.Count, value=1)
    logger.info("cycle prepared", extra={"cycle": payload})
    return {"cycle": payload}
