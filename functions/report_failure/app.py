"""ReportFailure: tell operators which state failed and why, then let the execution fail.

A cycle the org cycle started records the same message under its run's artifacts instead of sending
it: the org cycle sends one alert naming every failed target with it (docs/decisions.md, "Many
accounts and Regions"). Its metrics and its FAILED end are the same either way.

It receives the execution's whole state (keys and counts only), so a cycle that ends because some
windows' changes did not all land names each of those windows with what happened: rejected by SSM
(with SSM's reason), a function that crashed, or retries that gave up.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from tagpatch.aws import client, error_code, home_if_known
from tagpatch.config import ArtifactConfig, NotificationConfig
from tagpatch.cycle import Cycle
from tagpatch.errors import InvalidCycleInput, failure_cause
from tagpatch.inventory import put_json
from tagpatch.observability import lambda_entry, logger, metrics
from tagpatch.org_summary import ChildFailure
from tagpatch.target_messages import located_body, located_subject, member_of
from tagpatch.targets import Target
from tagpatch.workflow import ReportFailureResult

NOTIFICATIONS = NotificationConfig.from_env()
ARTIFACTS = ArtifactConfig.from_env()
# SNS caps a message at 256 KB; a long list of rejected windows is cut, with the count kept.
MAX_LISTED_WINDOWS = 50
# An org execution waiting for this cycle (DescribeExecution's status while it runs).
RUNNING = "RUNNING"
# A failed BaselineAssociation means patch group registrations were not (all) made.
REGISTRATION_STATE = "BaselineAssociation"


def _message_of(cause: str) -> str:
    # Lambda errors carry a JSON cause; show its message, not the envelope.
    with contextlib.suppress(ValueError, AttributeError):
        return str(json.loads(cause).get("errorMessage", cause))
    return cause


def rejected_windows(event: dict[str, Any]) -> list[dict[str, str]]:
    """The ApplyWindowChanges iterations that failed: window, error and SSM's reason."""
    results = event.get("window_results") or []
    return [
        {
            "window": str(item.get("window", "?")),
            "error": str(item.get("error", "")),
            "reason": _message_of(str(item.get("cause", ""))),
        }
        for item in results
        if isinstance(item, dict) and "error" in item
    ]


def failure_message(event: dict[str, Any], home: Target | None = None) -> tuple[str, str]:
    """Subject and body; a member target's name its account and Region (an organization's cycles fail
    one target at a time)."""
    cycle = event.get("cycle") or {}
    failed_state = str(event.get("failed_state", "unknown state"))
    error = event.get("error") or {}
    cause = _message_of(str(error.get("Cause", "")))
    subject = f"tagpatch cycle failed in {failed_state}"[:100]
    lines = [
        f"The patch cycle {cycle.get('run_id', '?')} failed in state {failed_state}.",
        f"Error: {error.get('Error', 'unknown')}",
        f"Cause: {cause}",
    ]
    rejected = rejected_windows(event)
    if rejected:
        lines.append(f"Maintenance windows whose changes did not all land ({len(rejected)}):")
        lines.extend(
            f"- {item['window']}: {failure_cause(item['error'])} ({item['error']}): {item['reason']}"
            for item in rejected[:MAX_LISTED_WINDOWS]
        )
        if len(rejected) > MAX_LISTED_WINDOWS:
            lines.append(f"- and {len(rejected) - MAX_LISTED_WINDOWS} more (see the execution's window_results)")
    lines += [
        f"Execution: {cycle.get('execution_id', '?')}",
        "Steps that had finished kept their artifacts under "
        f"{cycle.get('artifact_prefix', '?')} in the artifact bucket.",
    ]
    member = member_of(cycle, home)
    return located_subject(subject, member), located_body("\n".join(lines), member)


def changes_rejected(event: dict[str, Any]) -> int:
    """What the ChangesRejected metric counts: rejected windows, plus a failed registration step."""
    return len(rejected_windows(event)) + (1 if event.get("failed_state") == REGISTRATION_STATE else 0)


def started_by_org(event: dict[str, Any]) -> Cycle | None:
    """The cycle, when a running org cycle started it and waits for it (its alert is then the org
    cycle's); None otherwise, alerting being the safe side: the cycle object cannot be read, or the
    execution it names has ended or cannot be described (an operator who re-runs a target's cycle from
    the console copies its input, started-by key and all, long after that org cycle ended)."""
    try:
        cycle = Cycle.from_payload(event.get("cycle"))
    except InvalidCycleInput:
        return None
    if cycle.started_by is None:
        return None
    try:
        status = client("stepfunctions").describe_execution(executionArn=cycle.started_by)["status"]
    except ClientError as error:
        logger.warning("starting execution not described", extra={"error": error_code(error)})
        return None
    return cycle if status == RUNNING else None


def child_failure(event: dict[str, Any], subject: str, body: str) -> ChildFailure:
    error = event.get("error") or {}
    return ChildFailure(
        failed_state=str(event.get("failed_state", "unknown state")),
        error=str(error.get("Error", "unknown")),
        cause=_message_of(str(error.get("Cause", ""))),
        subject=subject,
        body=body,
    )


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> ReportFailureResult:
    subject, body = failure_message(event, home_if_known())
    org_started = started_by_org(event)
    message_id = None
    if org_started is not None:
        put_json(ARTIFACTS.bucket, org_started.failure_key, child_failure(event, subject, body))
        logger.info("failure recorded for the org cycle's alert", extra={"key": org_started.failure_key})
    else:
        message_id = client("sns").publish(TopicArn=NOTIFICATIONS.topic_arn, Subject=subject, Message=body)["MessageId"]
    metrics.add_metric(name="CyclesFailed", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ChangesRejected", unit=MetricUnit.Count, value=changes_rejected(event))
    logger.error(
        "cycle failed",
        extra={
            "failed_state": event.get("failed_state"),
            "error": event.get("error"),
            "rejected_windows": rejected_windows(event),
        },
    )
    return {"message_id": message_id}
