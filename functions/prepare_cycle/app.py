"""PrepareCycle: validate the execution input, make sure no other cycle is running (ListExecutions,
then the cycle lease, which holds when the listing lags: tagpatch.lease), and fix the cycle's
evaluation time and artifact prefix."""

from __future__ import annotations

from typing import Any, Final

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.aws import client
from tagpatch.config import ArtifactConfig
from tagpatch.cycle import ensure_first_running, parse_time, start_cycle
from tagpatch.errors import CycleAlreadyRunning
from tagpatch.lease import take_lease
from tagpatch.observability import lambda_entry, logger, metrics
from tagpatch.workflow import PrepareCycleResult

EXECUTION_PAGE_SIZE: Final = 100
ARTIFACTS = ArtifactConfig.from_env()


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PrepareCycleResult:
    start_time = str(event.get("start_time", ""))
    cycle = start_cycle(
        event.get("input"),
        execution_id=str(event.get("execution_id", "")),
        execution_name=str(event.get("execution_name", "")),
        start_time=start_time,
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
        ensure_first_running(running, execution_arn=cycle.execution_id, start_time=start_time)
        # The listing may lag behind a start seconds ago; the lease's conditional write does not.
        take_lease(ARTIFACTS.bucket, cycle.execution_id, parse_time(start_time, "start_time"))
    except CycleAlreadyRunning:
        metrics.add_metric(name="CyclesRefused", unit=MetricUnit.Count, value=1)
        raise
    payload = cycle.to_payload()
    metrics.add_metric(name="CyclesStarted", unit=MetricUnit.Count, value=1)
    logger.info("cycle prepared", extra={"cycle": payload})
    return {"cycle": payload}
