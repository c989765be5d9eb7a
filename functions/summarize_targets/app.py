"""SummarizeTargets: what each target's patch cycle did, written to the artifact bucket, and one alert
naming every target that failed and why (tagpatch.org_summary). The org cycle then ends FAILED if any
target failed, so a target's failure is never silent."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.aws import client
from tagpatch.config import ArtifactConfig, NotificationConfig
from tagpatch.inventory import put_json
from tagpatch.observability import lambda_entry, logger, metrics
from tagpatch.org_summary import alert, summarize
from tagpatch.org_targets import org_artifact_prefix, org_run
from tagpatch.workflow import SummarizeTargetsResult

ARTIFACTS = ArtifactConfig.from_env()
NOTIFICATIONS = NotificationConfig.from_env()


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> SummarizeTargetsResult:
    org = org_run(event.get("org"))
    summary = summarize(org["execution_id"], event.get("results") or [], event.get("skipped") or [], event.get("error"))
    summary_key = f"{org_artifact_prefix(org)}summary.json"
    put_json(ARTIFACTS.bucket, summary_key, summary)
    counts = summary["counts"]
    message_id = None
    message = alert(summary, summary_key)
    if message is not None:
        subject, body = message
        message_id = client("sns").publish(TopicArn=NOTIFICATIONS.topic_arn, Subject=subject, Message=body)["MessageId"]
        logger.error("org cycle targets failed", extra={"counts": counts, "listing_error": summary["listing_error"]})
    metrics.add_metric(name="OrgTargetsFailed", unit=MetricUnit.Count, value=counts["failed"])
    metrics.add_metric(name="OrgTargetsSucceeded", unit=MetricUnit.Count, value=counts["succeeded"])
    return {
        "summary_key": summary_key,
        "targets": counts["targets"],
        "succeeded": counts["succeeded"],
        "failed": counts["failed"],
        "skipped": counts["skipped_accounts"],
        "alert_message_id": message_id,
    }
