"""PrePatchNotification: reminders before every window run, to the teams whose instances it patches.

Reads the windows' upcoming runs from SSM, and keeps one EventBridge Scheduler schedule per run and
lead time in tagpatch's schedule group: it creates missing ones and deletes stale ones; a rerun with
nothing changed writes nothing. A plan-mode cycle lists the changes and writes no schedule. A cycle
scoped to some patch groups leaves reminders alone: it does not see every instance of a window.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.aws import act_in, member_target
from tagpatch.changes import instance_lines
from tagpatch.config import ArtifactConfig, OwnerNotificationConfig, PolicyConfig, ReminderConfig
from tagpatch.cycle import Cycle
from tagpatch.desired import build_desired_state
from tagpatch.inventory import put_jsonl_gz
from tagpatch.monitoring import owned_window_ids
from tagpatch.observability import lambda_entry, logger, metrics
from tagpatch.policy import load_policy
from tagpatch.reminders import (
    ReminderTarget,
    apply_reminders,
    desired_reminders,
    existing_schedules,
    horizon,
    instances_by_window,
    plan_reminders,
    read_upcoming_runs,
)
from tagpatch.workflow import PrePatchNotificationResult

ARTIFACTS = ArtifactConfig.from_env()
POLICY = PolicyConfig.from_env()
NOTIFICATIONS = OwnerNotificationConfig.from_env()
REMINDERS = ReminderConfig.from_env()


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PrePatchNotificationResult:
    cycle = Cycle.from_payload(event.get("cycle"))
    act_in(cycle.target, "PrePatchNotification")
    target = member_target()  # a member account's reminders name it, and are kept apart from home's
    reminders_key = cycle.artifact_key("reminders.jsonl.gz")
    if cycle.patch_groups is not None:
        logger.info("reminders left alone: the cycle is scoped to some patch groups")
        put_jsonl_gz(ARTIFACTS.bucket, reminders_key, [])
        return {
            "reminders_key": reminders_key,
            "counts": {"create": 0, "delete": 0, "unchanged": 0, "foreign": 0},
            "pending": None,
            "skipped": "the cycle is scoped to some patch groups; reminders are kept by unscoped cycles",
        }
    policy = load_policy(POLICY.policy_path)
    validation = event["validation"]
    lines = instance_lines(ARTIFACTS.bucket, validation)
    desired = build_desired_state(lines, policy)
    members = instances_by_window(lines, desired)
    windows = {w.name: w for w in desired.windows}
    ids = owned_window_ids(windows)
    timezones = {name: window.settings.timezone for name, window in windows.items()}
    runs = read_upcoming_runs(ids, timezones, cycle.now, cycle.now + horizon(policy))
    locations: dict[str, tuple[str, str]] = {}
    for name in sorted({run.window for run in runs} & set(members)):
        key = cycle.artifact_key(f"reminders/{name}-instances.jsonl.gz")
        put_jsonl_gz(ARTIFACTS.bucket, key, members[name].instances)
        locations[name] = (ARTIFACTS.bucket, key)
    wanted = desired_reminders(
        runs,
        windows,
        members,
        policy.notification_lead_hours,
        cycle.now,
        NOTIFICATIONS.topic_arn,
        locations,
        contact=policy.notification_contact,
        target=target,
    )
    plan = plan_reminders(wanted, existing_schedules(REMINDERS.schedule_group), target)
    created = deleted = 0
    if cycle.mode == "apply":
        delivery = ReminderTarget(
            NOTIFICATIONS.topic_arn, REMINDERS.role_arn, REMINDERS.dead_letter_arn, REMINDERS.schedule_group
        )
        created, deleted = apply_reminders(plan, delivery)
    summary = [
        *({"change": "create", **r.summary()} for r in plan.create),
        *({"change": "unchanged", **r.summary()} for r in plan.unchanged),
        *({"change": "delete", "name": name} for name in plan.delete),
    ]
    put_jsonl_gz(ARTIFACTS.bucket, reminders_key, summary)
    counts = plan.counts()
    for label in ("create", "delete", "unchanged"):
        metrics.add_metric(name=f"Reminders_{label}", unit=MetricUnit.Count, value=counts[label])
    logger.info(
        "reminders reconciled",
        extra={
            "mode": cycle.mode,
            "counts": counts,
            "schedules_created": created,
            "schedules_deleted": deleted,
            "window_runs": len(runs),
        },
    )
    return {"reminders_key": reminders_key, "counts": counts, "pending": len(wanted), "skipped": None}
