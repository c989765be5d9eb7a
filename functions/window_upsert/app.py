"""WindowUpsert: plan the maintenance windows, targets and tasks the tags ask for (no writes to SSM here).

The plan is saved to S3; in apply mode the workflow's Map applies it one window at a time. When the plan
falls short (a window left alone, a quota, a hold that does not fit), the operators' alerts topic is
told which and why, every cycle it happens: the alarm on PlanShortfalls names only the count.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.aws import act_in, acting_member, client
from tagpatch.changes import desired_state_of_run, hold_json, save_plan, windows_with_writes
from tagpatch.config import ArtifactConfig, BackupConfig, NotificationConfig, PolicyConfig, TaskRoleConfig
from tagpatch.cycle import Cycle
from tagpatch.desired import MAX_WINDOWS_PER_ACCOUNT, fit_to_quota, unpassable_roles
from tagpatch.hooks import check_hook_documents
from tagpatch.inventory import get_bytes
from tagpatch.observability import lambda_entry, logger, metrics
from tagpatch.policy import load_policy
from tagpatch.reconcile import BackupRunbook, plan_windows
from tagpatch.shortfalls import shortfall_alert, shortfall_count
from tagpatch.ssm_windows import read_windows
from tagpatch.workflow import WindowUpsertResult

ARTIFACTS = ArtifactConfig.from_env()
NOTIFICATIONS = NotificationConfig.from_env()
POLICY = PolicyConfig.from_env()
TASK_ROLE = TaskRoleConfig.from_env()
BACKUP = BackupConfig.from_env()


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> WindowUpsertResult:
    cycle = Cycle.from_payload(event.get("cycle"))
    act_in(cycle.target, "WindowUpsert")
    policy = load_policy(POLICY.policy_path)
    # A hook document that does not exist is the policy's error, found before anything is planned or written.
    check_hook_documents(policy)
    desired = desired_state_of_run(ARTIFACTS.bucket, event["validation"], policy)
    member = acting_member()  # a member account runs its own copy of the backup runbook (spoke/template.yaml)
    backup = BACKUP if member is None else BackupConfig.in_member(member)
    account = read_windows()
    windows, quota_problems = fit_to_quota(desired.windows, MAX_WINDOWS_PER_ACCOUNT - account.unowned_count)
    quota_problems += unpassable_roles(windows, TASK_ROLE.passable_role_arn)
    plan = plan_windows(
        replace(desired, windows=windows, problems=desired.problems + quota_problems),
        account.windows,
        max_deletion_share=policy.max_window_deletion_share,
        allow_mass_deletion=cycle.allow_mass_deletion,
        backup_runbook=BackupRunbook(backup.runbook_name, backup.automation_role_arn, backup.snapshot_runbook_name),
    )
    kept = {window.name for window in windows}
    # What is held back (scanned, not installed) and what is patched by id instead, in plan mode too.
    holds = [hold_json(hold) for hold in desired.holds if hold.window in kept]
    blocked = [item.to_json() for item in plan.blocked_windows]
    # Which rollout gates hold their waves and which opened (TagValidation decided), beside the holds.
    gates = json.loads(get_bytes(ARTIFACTS.bucket, str(event["validation"]["report_key"]))).get("rollout_gates", [])
    changes_key, report_key = save_plan(
        ARTIFACTS.bucket, cycle, "window", plan, {"holds": holds, "blocked_windows": blocked, "rollout_gates": gates}
    )
    counts = {kind: plan.counts()[kind] for kind in ("window", "target", "task")}
    to_apply = windows_with_writes(plan.changes) if cycle.mode == "apply" else []
    metrics.add_metric(name="WindowChangesPlanned", unit=MetricUnit.Count, value=len(plan.writes()))
    shortfalls = shortfall_count(plan)
    metrics.add_metric(name="PlanShortfalls", unit=MetricUnit.Count, value=shortfalls)
    alert = shortfall_alert(cycle, plan)
    if alert is not None:
        # The step's last AWS call: a retry after an earlier call failed has not alerted yet.
        subject, body = alert
        client("sns").publish(TopicArn=NOTIFICATIONS.topic_arn, Subject=subject, Message=body)
    logger.info(
        "windows planned",
        extra={
            "counts": counts,
            "windows_to_apply": len(to_apply),
            "problems": len(plan.problems),
            "shortfalls": shortfalls,
            "holds": len(holds),
            "blocked_windows": [item["name"] for item in blocked],
        },
    )
    return {
        "changes_key": changes_key,
        "report_key": report_key,
        "counts": counts,
        "windows_to_apply": to_apply,
        "problems": len(plan.problems),
        "held_instances": sum(len(hold["held"]) for hold in holds),
        "blocked_windows": len(blocked),
    }
