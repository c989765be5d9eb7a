"""PatchMonitoring: one outcome per instance for the windows that ran since the last cycle; alert owners.

The workflow invokes it in two roles, by the cursor's phase (tagpatch.monitoring_reads). Until the
phase is `done` it reads a bounded share of SSM from the cursor, writes it as parts and returns the
next cursor; the first of these invocations fixes the read window (from the watermark) and the owned
windows. With the phase `done` it composes: it reads the parts back, gives every instance one outcome
and writes patch-results. It only reads SSM. In apply mode the composing invocation also alerts owners
of failed and missed instances and moves the watermark, so that no run is reported twice or skipped;
a plan-mode cycle reports without either.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from typing import Any, Final

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.aws import act_in, member_target, target_state_key
from tagpatch.changes import instance_lines
from tagpatch.config import ArtifactConfig, ExceptionsConfig, MonitoringConfig, OwnerNotificationConfig, PolicyConfig
from tagpatch.cycle import Cycle, iso_z
from tagpatch.desired import build_desired_state
from tagpatch.exceptions import due_notices, load_exceptions, prune_ledger
from tagpatch.gates import GateHold, gate_holds, record_wave_runs, told_causes
from tagpatch.inventory import get_bytes_if_exists, put_json, put_jsonl_gz
from tagpatch.monitoring import (
    DEFAULT_OWNER,
    Watermark,
    alerts_for,
    expected_windows,
    instance_results,
    next_watermark,
    owned_window_ids,
    publish_alerts,
    publish_gate_hold,
    publish_notice,
    window_of,
)
from tagpatch.monitoring_reads import MonitoringCursor, begin, in_scope_ids, patch_states, read_some, window_runs
from tagpatch.observability import lambda_entry, logger, metrics
from tagpatch.outcomes import OUTCOMES
from tagpatch.policy import load_policy
from tagpatch.read_loop import seconds_to_read
from tagpatch.rollout_state import RolloutState, read_rollout_state, write_rollout_state
from tagpatch.sync_reads import find_sync
from tagpatch.workflow import PatchMonitoringResult

ARTIFACTS = ArtifactConfig.from_env()
POLICY = PolicyConfig.from_env()
NOTIFICATIONS = OwnerNotificationConfig.from_env()
EXCEPTIONS = ExceptionsConfig.from_env()
MONITORING = MonitoringConfig.from_env()
WATERMARK_KEY: Final = "state/monitoring-watermark.json"
NOTICE_LEDGER_KEY: Final = "state/exception-notices.json"  # notice key -> when it was sent
FIRST_LOOKBACK: Final = timedelta(days=7)  # a first cycle reports the last week's runs


def read_watermark(bucket: str) -> Watermark | None:
    """Where the last apply-mode cycle stopped reading; None on the first cycle (S3 lists no such key).

    A denied or failed read raises: it must never pass for a first cycle, which would report a week
    of runs again.
    """
    body = get_bytes_if_exists(bucket, target_state_key(WATERMARK_KEY))
    if body is None:
        return None
    return Watermark.from_json(json.loads(body), target_state_key(WATERMARK_KEY))


def read_notice_ledger(bucket: str) -> dict[str, str]:
    """The exception notices already sent; empty only when S3 lists no ledger (a denied read raises)."""
    body = get_bytes_if_exists(bucket, target_state_key(NOTICE_LEDGER_KEY))
    if body is None:
        return {}
    return {str(k): str(v) for k, v in json.loads(body).get("sent", {}).items()}


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PatchMonitoringResult | dict[str, Any]:
    cycle = Cycle.from_payload(event.get("cycle"))
    act_in(cycle.target, "PatchMonitoring")
    cursor = MonitoringCursor.from_payload(event.get("monitoring_reads"))
    if cursor.phase == "done":
        return compose(cycle, event["validation"], cursor)
    return read(cycle, event["validation"], cursor, context)


def read(cycle: Cycle, validation: dict[str, Any], before: MonitoringCursor, context: LambdaContext) -> dict[str, Any]:
    """A bounded share of the reads from the cursor; the first invocation fixes what every one reads."""
    cursor = before
    if not cursor.started:
        lines = instance_lines(ARTIFACTS.bucket, validation)
        desired = build_desired_state(lines, load_policy(POLICY.policy_path))
        watermark = read_watermark(ARTIFACTS.bucket) or Watermark(cycle.now - FIRST_LOOKBACK)
        owned = owned_window_ids(w.name for w in desired.windows)
        sync, source = find_sync(MONITORING.resource_data_sync, MONITORING.account_id)
        logger.info("patch states source", extra={"source": source if sync else f"the API: {source}"})
        cursor = begin(
            cursor,
            cycle,
            ARTIFACTS.bucket,
            watermark.read_until,
            cycle.now,
            owned,
            in_scope_ids(lines),
            watermark.read_again,
            sync,
        )
    cursor = read_some(
        cursor,
        cycle,
        ARTIFACTS.bucket,
        items=MONITORING.items_per_invocation,
        seconds=seconds_to_read(context.get_remaining_time_in_millis()),
    )
    logger.info(
        "patching read" if cursor.phase == "done" else "part of patching read",
        extra={
            "phase": cursor.phase,
            "invocation": cursor.invocations,
            "requests": cursor.requests - before.requests,
            "since": cursor.since,
            "windows": cursor.windows,
            "window_runs": cursor.window_runs,
            "commands": cursor.commands,
            "instances": cursor.instances,
        },
    )
    return cursor.to_payload()


def compose(cycle: Cycle, validation: dict[str, Any], cursor: MonitoringCursor) -> PatchMonitoringResult:
    """One outcome per instance from the parts the reads wrote; alerts, notices and watermark in apply mode."""
    every_line = instance_lines(ARTIFACTS.bucket, validation)
    policy = load_policy(POLICY.policy_path)
    desired = build_desired_state(every_line, policy)
    after, until = cursor.read_window()
    runs = window_runs(ARTIFACTS.bucket, cycle, cursor)
    lines = [line for line in every_line if line.get("in_scope", True)]
    states = patch_states(ARTIFACTS.bucket, cycle, cursor)
    expected = expected_windows(desired)
    results = list(
        instance_results(lines, expected, runs, states, now=cycle.now, stale_after_days=policy.scan.stale_after_days)
    )
    results_key = cycle.artifact_key("patch-results.jsonl.gz")
    put_jsonl_gz(ARTIFACTS.bucket, results_key, results)
    by_outcome = dict.fromkeys(OUTCOMES, 0) | Counter(str(r["outcome"]) for r in results)
    alerts = alerts_for(results, DEFAULT_OWNER)
    exceptions = load_exceptions(EXCEPTIONS.exceptions_path, cycle.now)
    ledger = read_notice_ledger(ARTIFACTS.bucket)
    target = member_target()  # a member account's alerts and notices name it
    notices = due_notices(
        lines, exceptions.notice_days, exceptions.governance_owner, DEFAULT_OWNER, ledger, cycle.now, target
    )
    rollout_before = read_rollout_state(ARTIFACTS.bucket) if policy.rollout.waves else RolloutState()
    # The gates of the next cycle judge each wave's latest Install run, kept per window (every line:
    # a scoped cycle must not forget the other waves' runs).
    rollout_after = RolloutState(
        record_wave_runs(policy.rollout, every_line, lambda line: window_of(line, expected), runs, rollout_before.runs),
        told_causes(every_line),
    )
    holds: list[GateHold] = gate_holds(lines, DEFAULT_OWNER, rollout_before.told)
    sent = 0
    notices_sent = 0
    if cycle.mode == "apply":
        sent = publish_alerts(NOTIFICATIONS.topic_arn, alerts, target)
        for notice in notices:
            publish_notice(NOTIFICATIONS.topic_arn, notice, target)
            # The ledger is written after the publishes: a failure part-way re-sends some (at least once,
            # like the alerts), never skips one.
            ledger[notice.key] = iso_z(cycle.now)
            notices_sent += 1
        kept = prune_ledger(ledger, cycle.now)
        if notices or kept != ledger:
            put_json(ARTIFACTS.bucket, target_state_key(NOTICE_LEDGER_KEY), {"sent": kept})
        for hold in holds:
            # Told once per cause: a wave held for the same reason on the same runs is not told again.
            publish_gate_hold(NOTIFICATIONS.topic_arn, hold, target)
        if rollout_after != rollout_before:
            write_rollout_state(ARTIFACTS.bucket, rollout_after)
        # A window whose run is still going is read again from before that run next cycle.
        put_json(ARTIFACTS.bucket, target_state_key(WATERMARK_KEY), next_watermark(runs, until).to_json())
    for outcome, count in by_outcome.items():
        metrics.add_metric(name=f"Outcome_{outcome}", unit=MetricUnit.Count, value=count)
    logger.info(
        "patching monitored",
        extra={
            "by_outcome": by_outcome,
            "window_runs": len(runs),
            "alerts": sent,
            "exception_notices": notices_sent,
            "gate_holds": [hold.subject() for hold in holds],
            "since": after.isoformat(),
            "read_invocations": cursor.invocations,
            "read_requests": cursor.requests,
        },
    )
    return {
        "results_key": results_key,
        "by_outcome": by_outcome,
        "window_runs": len(runs),
        "alerts_sent": sent,
        "exception_notices": notices_sent if cycle.mode == "apply" else len(notices),
        "since": iso_z(after),
        "until": iso_z(until),
    }
