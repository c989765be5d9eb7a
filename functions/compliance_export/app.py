"""ComplianceExport: one snapshot record per instance, for Athena and QuickSight, report.html, and the
weekly owner digest.

In apply mode it writes the target's partition of the day (`compliance/snapshots/dt=YYYY-MM-DD/
account_id=<account>/region=<Region>/`) and of "latest", registers them and its resource data sync
partitions in the Glue catalog (tagpatch.partitions), writes the compliance trend's summary of each
snapshot (tagpatch.trend) and report.html beside them, and, once
a week when the policy names a `notifications.digest_day`, sends each owner with instances that need
action one message (tagpatch.digest); in plan mode it writes the snapshot and report.html under the
run's artifacts only and sends nothing.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from tagpatch.aws import act_in, client, error_code, home_target, member_target
from tagpatch.backup_retention import (
    RECORD_NAME,
    RetentionOutcome,
    delete_backups,
    list_backups,
    plan_retention,
    refusal_message,
    retention_record,
)
from tagpatch.config import ArtifactConfig, ComplianceExportConfig, OwnerNotificationConfig, PolicyConfig
from tagpatch.cycle import Cycle, iso_z
from tagpatch.digest import DigestMarker, already_sent, digest_week, marker_key, owner_digests, publish_digests
from tagpatch.errors import ArtifactError, BackupDeletionRefused, CatalogRegistrationRefused
from tagpatch.export import (
    LATEST_REPORT_KEY,
    ExportKeys,
    compliance_percent,
    next_window_starts,
    snapshot_records,
    summarize,
)
from tagpatch.inventory import (
    decode_jsonl_gz,
    encode_jsonl_gz,
    get_bytes,
    get_bytes_if_exists,
    get_jsonl_gz,
    put_bytes,
)
from tagpatch.observability import lambda_entry, logger, metrics
from tagpatch.partitions import refusal_message as catalog_refusal_message
from tagpatch.partitions import register_partitions
from tagpatch.policy import PatchPolicy, load_policy
from tagpatch.report_html import render
from tagpatch.report_week import PastSnapshot, WeekChanges, WeekUnreadable, week_changes, week_old_date
from tagpatch.targets import Target
from tagpatch.trend import TrendPoint, decode_trend, encode_trend, trend_point, with_point
from tagpatch.workflow import BackupRetentionResult, ComplianceExportResult

ARTIFACTS = ArtifactConfig.from_env()
POLICY = PolicyConfig.from_env()
EXPORTS = ComplianceExportConfig.from_env()
NOTIFICATIONS = OwnerNotificationConfig.from_env()


def _week(
    trend: list[TrendPoint], records: list[dict[str, Any]], cycle: Cycle, keys: ExportKeys
) -> WeekChanges | WeekUnreadable | None:
    """The changes since the snapshot a week older. The trend holds a point per dated snapshot, so the one
    week-old key is known and read with a GetObject alone (no listing)."""
    day = week_old_date(cycle.now.date(), (point["date"] for point in trend), kept_days=EXPORTS.retention_days)
    if day is None:
        return None
    try:
        body = _dated_snapshot(keys, datetime.fromisoformat(day))
    except (ArtifactError, ClientError) as error:
        # Not shown as "no changes": the report says so, and the handler fails the cycle once it has written.
        return WeekUnreadable(since=day, reason=error_code(error) if isinstance(error, ClientError) else str(error))
    return week_changes(PastSnapshot.of(day, decode_jsonl_gz(body)), records)


def _dated_snapshot(keys: ExportKeys, day: datetime) -> bytes:
    try:
        return get_bytes(ARTIFACTS.bucket, keys.snapshot(day))
    except (ArtifactError, ClientError):
        # A day written before the snapshots were partitioned by account and Region; if that fails too,
        # its error is the one reported.
        return get_bytes(ARTIFACTS.bucket, keys.legacy_snapshot(day))


def _previous_snapshot(keys: ExportKeys) -> bytes | None:
    body = get_bytes_if_exists(ARTIFACTS.bucket, keys.latest)
    # The target's first cycle since the partitions by account and Region: its latest at the old key.
    return body if body is not None else get_bytes_if_exists(ARTIFACTS.bucket, keys.legacy_latest)


def _register_partitions(cycle: Cycle, target: Target) -> list[str]:
    """Register the target's partitions of the compliance tables (apply mode); returns Glue's refusals."""
    if cycle.mode != "apply":
        return []  # a plan writes under its run only: the Athena tables never see it
    registration = register_partitions(EXPORTS.tables, target, cycle.now.date(), EXPORTS.retention_days)
    metrics.add_metric(name="PartitionsRegistered", unit=MetricUnit.Count, value=registration.created)
    logger.info(
        "compliance partitions",
        extra={"registered": registration.created, "dropped": registration.deleted, "refused": registration.refused},
    )
    return registration.refused


def _owner_digest(records: list[dict[str, Any]], cycle: Cycle, policy: PatchPolicy) -> int:
    """Send the week's owner digest if it is due; returns how many owners this run reached.

    The marker is written once the week's digest is done (even when no owner needed action), or, when
    SNS refused some, with the owners it did reach, before the refusal fails the cycle: a retry sends
    only the rest, and a rerun the same week nothing.
    """
    if policy.digest_day is None:
        return 0
    week = digest_week(cycle.now, policy.digest_day)
    target = member_target()  # a member account's digest names it, and keeps its own marker
    key = marker_key(target)
    stored = get_bytes_if_exists(ARTIFACTS.bucket, key)
    skip = already_sent(week, cycle.now.date(), DigestMarker.from_json(stored, key) if stored is not None else None)
    if skip is None:
        return 0
    report_url = policy.report_url or f"s3://{ARTIFACTS.bucket}/{LATEST_REPORT_KEY}"
    digests = owner_digests(records, skip)
    sent = publish_digests(NOTIFICATIONS.topic_arn, digests, report_url, f"{cycle.now:%Y-%m-%d}", target)
    marker = DigestMarker(week.isoformat(), skip | sent.sent, complete=sent.error is None)
    put_bytes(ARTIFACTS.bucket, key, marker.to_json(), "application/json")
    if sent.error is not None:
        raise sent.error
    logger.info("owner digest sent", extra={"week": week.isoformat(), "owners": len(sent.sent)})
    return len(sent.sent)


def _retain_backups(cycle: Cycle, policy: PatchPolicy) -> tuple[BackupRetentionResult, list[str]]:
    """Delete tagpatch's backups past the policy's retention in the target (in plan mode, only say which);
    returns the result and each deletion EC2 refused."""
    ec2 = client("ec2")
    plan = plan_retention(list_backups(ec2), cycle.now, policy.backup_retention)
    outcome = delete_backups(ec2, plan.expired) if cycle.mode == "apply" else RetentionOutcome()
    key = cycle.artifact_key(RECORD_NAME)
    record = retention_record(policy.backup_retention, plan, outcome, cycle.mode)
    put_bytes(ARTIFACTS.bucket, key, json.dumps(record, indent=1).encode(), "application/json")
    logger.info("backup retention", extra={"deleted": outcome.deleted, "refused": outcome.refused})
    result: BackupRetentionResult = {
        "key": key,
        "deleted": len(outcome.deleted),
        "would_delete": len(plan.expired),
        "refused": len(outcome.refused),
        "kept": plan.kept,
        "deferred": plan.deferred,
    }
    return result, outcome.refused


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> ComplianceExportResult:  # noqa: PLR0915 - its writes and sends, in the order each failure must come after
    cycle = Cycle.from_payload(event.get("cycle"))
    act_in(cycle.target, "ComplianceExport")
    target = cycle.target or home_target()
    export_keys = ExportKeys.of(target, home_target())
    validation = event["validation"]
    monitoring = event["monitoring"]
    results = {str(r["instance_id"]): r for r in get_jsonl_gz(ARTIFACTS.bucket, str(monitoring["results_key"]))}
    previous_body = _previous_snapshot(export_keys)
    previous = {str(r["instance_id"]): r for r in decode_jsonl_gz(previous_body)} if previous_body else {}
    next_starts = next_window_starts({str(r["window"]) for r in results.values() if r.get("window")})
    lines = get_jsonl_gz(ARTIFACTS.bucket, str(validation["instances_key"]))
    policy = load_policy(POLICY.policy_path)
    records = list(
        snapshot_records(
            lines,
            results,
            next_starts,
            previous,
            cycle.now,
            stale_after_days=policy.scan.stale_after_days,
            target=target,
        )
    )
    body = encode_jsonl_gz(records)
    counts = summarize(records)
    # The trend keeps each snapshot's counts, so the report draws the past without reading it.
    stored_trend = get_bytes_if_exists(ARTIFACTS.bucket, export_keys.trend)
    point = trend_point(counts, cycle.now)
    damaged: ArtifactError | None = None
    try:
        trend = with_point(decode_trend(stored_trend), point)
    except ArtifactError as error:
        # tagpatch's own file, so not repaired silently: the day's snapshot and report are written with
        # today's point alone, then the cycle fails on the damage (below), and the file is left as it is.
        trend, damaged = [point], error
    trend_body = encode_trend(trend)
    week = _week(trend, records, cycle, export_keys)
    page = render(records, generated_at=iso_z(cycle.now), trend=trend, week=week).encode()
    if cycle.mode == "apply":
        keys = {"snapshot_key": export_keys.snapshot(cycle.now), "latest_key": export_keys.latest}
        report_keys = [export_keys.report(cycle.now), export_keys.latest_report]
        if not cycle.alerts_alone and export_keys.member is None:
            # Home in an org cycle: its keys become the organization's page, which links this one.
            report_keys += [export_keys.named_report(cycle.now), export_keys.named_latest_report]
    else:
        keys = {"snapshot_key": cycle.artifact_key("compliance-snapshot.jsonl.gz")}
        report_keys = [cycle.artifact_key("report.html")]
    for key in keys.values():
        put_bytes(ARTIFACTS.bucket, key, body, "application/x-ndjson")
    for key in report_keys:
        put_bytes(ARTIFACTS.bucket, key, page, "text/html; charset=utf-8")
    catalog_refused = _register_partitions(cycle, target)  # once the files they point at are written
    # After report.html, which the digest links to, and before any failure below: the records are sound.
    digests_sent = _owner_digest(records, cycle, policy) if cycle.mode == "apply" else 0
    retention, refused = _retain_backups(cycle, policy)
    if damaged is not None:
        raise ArtifactError(
            f"{damaged}; the snapshot and report.html were written, the trend was not: restore a previous "
            f"version of {export_keys.trend} (the bucket is versioned) or delete it to start a new trend"
        ) from damaged
    if cycle.mode == "apply" and trend_body != stored_trend:  # a rerun the same day with the same counts writes none
        put_bytes(ARTIFACTS.bucket, export_keys.trend, trend_body, "application/json")
    if isinstance(week, WeekUnreadable):
        raise ArtifactError(
            f"{export_keys.snapshot(datetime.fromisoformat(week.since))} ({week.reason}), listed in "
            f"{export_keys.trend}, could not be read for report.html's week's changes; the snapshot, report.html "
            "and the trend were written"
        )
    if refused:
        # After everything else was written and sent: the cycle fails, so the alert names each refusal.
        raise BackupDeletionRefused(refusal_message(refused))
    if catalog_refused:
        raise CatalogRegistrationRefused(catalog_refusal_message(catalog_refused))
    percent = compliance_percent(counts)
    metrics.add_metric(name="InstancesCompliant", unit=MetricUnit.Count, value=counts["compliant"])
    metrics.add_metric(name="InstancesNonCompliant", unit=MetricUnit.Count, value=counts["non_compliant"])
    metrics.add_metric(name="OwnerDigestsSent", unit=MetricUnit.Count, value=digests_sent)
    logger.info("compliance exported", extra={"counts": counts, "bytes": len(body), "keys": keys})
    result: ComplianceExportResult = {
        "snapshot_key": keys["snapshot_key"],
        "report_key": report_keys[0],
        "counts": counts,
        "compliance_percent": percent,
        "bytes": len(body),
        "owner_digests_sent": digests_sent,
        "backup_retention": retention,
    }
    if "latest_key" in keys:
        result["latest_key"] = keys["latest_key"]
    return result
