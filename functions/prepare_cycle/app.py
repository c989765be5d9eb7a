"""PrepareCycle: validate the execution input and fix the cycle's evaluation time and artifact prefix."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.cycle import start_cycle
from tagpatch.observability import lambda_entry, logger, metrics


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    cycle = start_cycle(
        event.get("input"),
        execution_id=str(event.get("execution_id", "")),
        execution_name=str(event.get("execution_name", "")),
        start_time=str(event.get("start_time", "")),
    )
    logger.set_correlation_id(cycle.execution_id)
    payload = cycle.to_payload()
    metrics.add_metric(name="CyclesStarted", unit=MetricUnit.Count, value=1)
    logger.info("cycle prepared", extra={"cycle": payload})
    return {"cycle": payload}
