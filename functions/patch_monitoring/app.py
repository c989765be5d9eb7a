"""PatchMonitoring: one outcome per instance for the windows that ran since the last cycle; alert owners.

It only reads SSM. In apply mode it also alerts owners of failed and missed instances and moves its
watermark, so that no run is reported twice or skipped; a plan-mode cycle reports without either.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any, Final

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.changes import desired_state_of_run
from tagpatch.config import ArtifactConfig, ExceptionsConfig, OwnerNotificationConfig, PolicyConfig
from tagpatch.cycle import Cycle, iso_z, parse_time
from tagpatch.exceptions import due_notices, load_exceptions, prune_ledger
from tagpatch.inventory import get_bytes_if_exists, get_jsonl_gz, put_json, put_jsonl_gz
from tagpatch.monitoring import (
    OUTCOMES,
    alerts_for,
    expected_windows,
    instance_results,
    next_watermark,
    owned_window_ids,
    publish_alert,
    publish_notice,
    read_patch_states,
    read_window_runs,
)
from tagpatch.observability import lambda_entry, logger, metrics
from tagpatch.policy import load_policy

ARTIFACTS = ArtifactConfig.from_env()
POLICY = PolicyConfig.from_env()
NOTIFICATIONS = OwnerNotificationConfig.from_env()
EXCEPTIONS = ExceptionsConfig.from_env()
WATERMARK_KEY: Final = "state/monitoring-watermark.json"
NOTICE_LEDGER_KEY: Final = "state/exception-notices.json"  # notice key -> when it was sent
FIRST_LOOKBACK: Final = timedelta(days=7)  # a first cycle reports the last week's runs
DEFAULT_OWNER: Final = "unowned"


def read_watermark(bucket: str) -> datetime | None:
    """Where the last apply-mode cycle stopped reading; None on the first cycle (S3 lists no such key).

    A denied or failed read raises: it must never pass for a first cycle, which would report a week
    of runs again.
    """
    body = get_bytes_if_exists(bucket, WATERMARK_KEY)
    if body is None:
        return None
    return parse_time(str(json.loads(body)["read_until"]), WATERMARK_KEY)


def read_notice_ledger(bucket: str) -> dict[str, str]:
    """The exception notices already sent; empty only when S3 lists no ledger (a denied read raises)."""
    body = get_bytes_if_exists(bucket, NOTICE_LEDGER_KEY)
    if body is None:
        return {}
    return {str(k): str(v) for k, v in json.loads(body).get("sent", {}).items()}


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    cycle = Cycle.from_payload(event.get("cycle"))
    policy = load_policy(POLICY.policy_path)
    validation = event["validation"]
    desired = desired_state_of_run(ARTIFACTS.bucket, validation, policy)
    after = read_watermark(ARTIFACTS.bucket) or cycle.now - FIRST_LOOKBACK
    runs = read_window_runs(owned_window_ids(w.name for w in desired.windows), after, cycle.now)
    lines = [
        line for line in get_jsonl_gz(ARTIFACTS.bucket, str(validation["instances_key"])) if line.get("in_scope", True)
    ]
    states = read_patch_states(line["instance_id"] for line in lines)
    results = list(instance_results(lines, expected_windows(desired), runs, states))
    results_key = cycle.artifact_key("patch-results.jsonl.gz")
    put_jsonl_gz(ARTIFACTS.bucket, results_key, results)
    by_outcome = dict.fromkeys(OUTCOMES, 0) | Counter(str(r["outcome"]) for r in results)
    alerts = alerts_for(results, DEFAULT_OWNER)
    exceptions = load_exceptions(EXCEPTIONS.exceptions_path, cycle.now)
    ledger = read_notice_ledger(ARTIFACTS.bucket)
    notices = due_notices(lines, exceptions.notice_days, exceptions.governance_owner, DEFAULT_OWNER, ledger, cycle.now)
    sent = 0
    notices_sent = 0
    if cycle.mode == "apply":
        sent = sum(1 for alert in alerts if publish_alert(NOTIFICATIONS.topic_arn, alert))
        for notice in notices:
            publish_notice(NOTIFICATIONS.topic_arn, notice)
            # The ledger is written after the publishes: a failure part-way re-sends some (at least once,
            # like the alerts), never skips one.
            ledger[notice.key] = iso_z(cycle.now)
            notices_sent += 1
        kept = prune_ledger(ledger, cycle.now)
        if notices or kept != ledger:
            put_json(ARTIFACTS.bucket, NOTICE_LEDGER_KEY, {"sent": kept})
        watermark = next_watermark(runs, cycle.now)
        put_json(ARTIFACTS.bucket, WATERMARK_KEY, {"read_until": iso_z(watermark)})
    for outcome, count in by_outcome.items():
        metrics.add_metric(name=f"Outcome_{outcome}", unit=MetricUnit.Count, value=count)
    logger.info(
        "patching monitored",
        extra={
            "by_outcome": by_outcome,
            "window_runs": len(runs),
            "alerts": sent,
            "exception_notices": notices_sent,
            "since": after.isoformat(),
        },
    )
    return {
        "results_key": results_key,
        "by_outcome": by_outcome,
        "window_runs": len(runs),
        "alerts_sent": sent,
        "exception_notices": notices_sent if cycle.mode == "apply" else len(notices),
        "since": iso_z(after),
        "until": iso_z(cycle.now),
    }
