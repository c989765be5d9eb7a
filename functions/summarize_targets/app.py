"""SummarizeTargets: what each target's patch cycle did (each child described, and a failed one's
recorded failure read), written to the artifact bucket, one alert naming every target that failed, in
which state and why (tagpatch.org_summary), and the organization's report.html over every reported
target's rows, naming each target it lacks (tagpatch.org_report). The org cycle then ends FAILED if any
target failed or the page could not be written, so neither is silent."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from tagpatch.aws import client, error_code, home_target
from tagpatch.config import ArtifactConfig, NotificationConfig, OrgReportConfig
from tagpatch.cycle import iso_z, start_cycle
from tagpatch.errors import ArtifactError, InvalidCycleInput
from tagpatch.export import LATEST_REPORT_KEY
from tagpatch.inventory import get_bytes, get_bytes_if_exists, get_jsonl_gz, put_bytes, put_json
from tagpatch.observability import lambda_entry, logger, metrics
from tagpatch.org_report import home_only, org_pages, org_report_keys, plan_report, summed_trend
from tagpatch.org_summary import (
    SUCCEEDED,
    ChildFailure,
    OrgSummary,
    TargetOutcome,
    alert,
    summarize,
    target_outcome,
    undescribed_outcome,
)
from tagpatch.org_targets import OrgRun, SkippedAccount, child_execution_arn, org_artifact_prefix, org_run
from tagpatch.trend import decode_trend
from tagpatch.workflow import SummarizeTargetsResult

ARTIFACTS = ArtifactConfig.from_env()
NOTIFICATIONS = NotificationConfig.from_env()
ORG_REPORT = OrgReportConfig.from_env()


def _snapshot_rows(key: str) -> Iterator[Any]:
    try:
        return get_jsonl_gz(ARTIFACTS.bucket, key)
    except ClientError as error:
        raise ArtifactError(f"s3://{ARTIFACTS.bucket}/{key} could not be read ({error_code(error)})") from error


def _described(arn: str) -> dict[str, Any] | None:
    """The child execution as DescribeExecution answers; None when it does not exist (never started)."""
    try:
        described: dict[str, Any] = client("stepfunctions").describe_execution(executionArn=arn)
    except ClientError as error:
        if error_code(error) == "ExecutionDoesNotExist":
            return None
        raise
    return described


def _recorded_failure(described: Mapping[str, Any]) -> ChildFailure | None:
    """The failure a child recorded in place of its alert, under its run's artifacts; None when it
    recorded none (it failed before its first step, or ended without ReportFailure)."""
    started = described["startDate"]
    try:
        # The child's own PrepareCycle placed its artifacts from the same input, name and start time.
        cycle = start_cycle(
            json.loads(described.get("input") or "{}"),
            execution_id=str(described["executionArn"]),
            execution_name=str(described["name"]),
            start_time=started if isinstance(started, str) else iso_z(started),
        )
    except (InvalidCycleInput, ValueError):
        return None  # the child refused its input, so it failed in PrepareCycle and recorded nothing
    body = get_bytes_if_exists(ARTIFACTS.bucket, cycle.failure_key)
    if body is None:
        return None
    recorded: ChildFailure = json.loads(body)
    return recorded


def _outcome(result: Mapping[str, Any], patch_cycle_arn: str) -> TargetOutcome:
    """One target: its iteration's result, with what its child says for itself."""
    if "failure" in result or not result.get("name"):
        return target_outcome(result)  # not started: the iteration alone knows why
    arn = child_execution_arn(patch_cycle_arn, str(result["name"]))
    try:
        described = _described(arn)
        recorded = None
        if described is not None and result.get("status") != SUCCEEDED:
            recorded = _recorded_failure(described)
    except ClientError as error:
        # The alert must still go out: name the target with what could not be read.
        logger.error("target cycle not described", extra={"execution": arn, "error": error_code(error)})
        return undescribed_outcome(result, f"{arn}: {error_code(error)}")
    return target_outcome(result, described, recorded)


def _skipped_accounts(targets_key: object) -> list[SkippedAccount]:
    """The accounts ListTargets skipped, from its targets file (not the state: there may be many)."""
    if not isinstance(targets_key, str) or not targets_key:
        return []  # ListTargets failed: it listed none
    listed = json.loads(get_bytes(ARTIFACTS.bucket, targets_key))
    skipped: list[SkippedAccount] = listed.get("skipped") or []
    return skipped


def _report_not_written(org: OrgRun, error: Exception) -> None:
    """A page that lacks a target's rows would be a silent gap, so none is written, and the operators
    are told why before the org cycle fails."""
    client("sns").publish(
        TopicArn=NOTIFICATIONS.topic_arn,
        Subject="tagpatch org cycle: report.html not written",
        Message=(
            f"The org cycle {org['execution_id']} could not write the organization's report.html "
            f"({LATEST_REPORT_KEY} and the day's): {error}\n"
            "Each target's cycle wrote its own page and snapshot; the next org cycle writes the organization's."
        ),
    )


def _org_report(org: OrgRun, summary: OrgSummary, org_input: object) -> str | None:
    """Write the organization's report.html; returns its first key, or None when there is none to write:
    ListTargets failed, home is the only target (its own page is the report), or the cycles only planned."""
    if summary["listing_error"] is not None or home_only(summary["targets"], home_target().to_payload()):
        return None
    try:
        # The targets' cycles ran with this input, so the page is dated and placed as theirs are.
        run = start_cycle(
            org_input,
            execution_id=org["execution_id"],
            execution_name=org["execution_name"],
            start_time=org["start_time"],
        )
    except InvalidCycleInput as error:
        # Every target's cycle refused the same input, and the alert already names each with why.
        logger.error("no org report: the org cycle's input is not valid", extra={"error": str(error)})
        return None
    keys = org_report_keys(run.mode, run.now)
    if not keys:
        return None
    plan = plan_report(summary["targets"], home_target().to_payload())
    # Each reported target's ComplianceExport has just written its trend, so each exists.
    trend = summed_trend(decode_trend(get_bytes(ARTIFACTS.bucket, key)) for key in plan.trend_keys)
    pages = org_pages(
        plan, _snapshot_rows, keys, generated_at=iso_z(run.now), trend=trend, max_rows=ORG_REPORT.max_rows
    )
    for key, page in pages.items():
        put_bytes(ARTIFACTS.bucket, key, page.encode(), "text/html; charset=utf-8")
    logger.info("org report written", extra={"keys": keys, "reported": len(plan.snapshots)})
    return keys[0]


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> SummarizeTargetsResult:
    org = org_run(event.get("org"))
    patch_cycle_arn = event.get("patch_cycle_state_machine")
    if not isinstance(patch_cycle_arn, str) or not patch_cycle_arn:
        raise InvalidCycleInput(
            "the task payload has no 'patch_cycle_state_machine'; the org state machine must pass it"
        )
    outcomes = [_outcome(result, patch_cycle_arn) for result in event.get("results") or []]
    summary = summarize(org["execution_id"], outcomes, _skipped_accounts(event.get("targets_key")), event.get("error"))
    summary_key = f"{org_artifact_prefix(org)}summary.json"
    put_json(ARTIFACTS.bucket, summary_key, summary)
    counts = summary["counts"]
    message_id = None
    message = alert(summary, summary_key)
    if message is not None:
        subject, body = message
        message_id = client("sns").publish(TopicArn=NOTIFICATIONS.topic_arn, Subject=subject, Message=body)["MessageId"]
        logger.error("org cycle targets failed", extra={"counts": counts, "listing_error": summary["listing_error"]})
    # After the alert: a failure reading a target's snapshot must not keep the failed targets unnamed.
    report_error = None
    try:
        report_key = _org_report(org, summary, event.get("input"))
    except (ArtifactError, ClientError) as error:
        # Told once, here; the org cycle then fails on report_error (OrgReportNotWritten), so the state
        # machine's own alert for a SummarizeTargets that failed is not sent beside it.
        _report_not_written(org, error)
        logger.error("org report not written", extra={"error": str(error)})
        report_key, report_error = None, str(error)
    metrics.add_metric(name="OrgTargetsFailed", unit=MetricUnit.Count, value=counts["failed"])
    metrics.add_metric(name="OrgTargetsSucceeded", unit=MetricUnit.Count, value=counts["succeeded"])
    return {
        "summary_key": summary_key,
        "targets": counts["targets"],
        "succeeded": counts["succeeded"],
        "failed": counts["failed"],
        "skipped": counts["skipped_accounts"],
        "alert_message_id": message_id,
        "report_key": report_key,
        "report_error": report_error,
    }
