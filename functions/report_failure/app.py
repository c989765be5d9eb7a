"""ReportFailure: tell operators which state failed and why, then let the execution fail."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.aws import client
from tagpatch.config import NotificationConfig
from tagpatch.observability import lambda_entry, logger, metrics

NOTIFICATIONS = NotificationConfig.from_env()


def failure_message(event: dict[str, Any]) -> tuple[str, str]:
    cycle = event.get("cycle") or {}
    failed_state = str(event.get("failed_state", "unknown state"))
    error = event.get("error") or {}
    cause = str(error.get("Cause", ""))
    # Lambda errors carry a JSON cause; show its message, not the envelope.
    with contextlib.suppress(ValueError, AttributeError):
        cause = json.loads(cause).get("errorMessage", cause)
    subject = f"tagpatch cycle failed in {failed_state}"[:100]
    body = "\n".join(
        [
            f"The patch cycle {cycle.get('run_id', '?')} failed in state {failed_state}.",
            f"Error: {error.get('Error', 'unknown')}",
            f"Cause: {cause}",
            f"Execution: {cycle.get('execution_id', '?')}",
            "Steps that had finished kept their artifacts under "
            f"{cycle.get('artifact_prefix', '?')} in the artifact bucket.",
        ]
    )
    return subject, body


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    subject, body = failure_message(event)
    message_id = client("sns").publish(TopicArn=NOTIFICATIONS.topic_arn, Subject=subject, Message=body)["MessageId"]
    metrics.add_metric(name="CyclesFailed", unit=MetricUnit.Count, value=1)
    logger.error("cycle failed", extra={"failed_state": event.get("failed_state"), "error": event.get("error")})
    return {"message_id": message_id}
