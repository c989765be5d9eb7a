"""`backup: image` on a window's Install task registers an AUTOMATION task running the stack's runbook
(image, then patch, per instance): the patch runs only where the image was made, and a rerun writes nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from tagpatch.export import LATEST_REPORT_KEY, latest_key
from tagpatch.inventory import decode_jsonl_gz
from tagpatch.targets import Target
from tagpatch_local.report import patch_result_lines, problems
from tagpatch_local.runner import ACCOUNT_ID, SimulatedAccount
from tagpatch_local.scenario import command_document

from .support import changes, instance, run_ok, ssm_windows, topic_queue

REPO = Path(__file__).resolve().parents[2]


def test_a_backup_window_patches_only_where_the_image_was_made_and_a_rerun_writes_nothing(tmp_path: Path) -> None:
    document = yaml.safe_load((REPO / "policy" / "patch-policy.yaml").read_text())
    document["windows"]["sun-0200"]["task"] = {"backup": "image"}
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(document))
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.use_policy(path)
        imaged, also_imaged, lost = account.seed(
            [instance("web", "sun-0200", name=name) for name in ("imaged", "also-imaged", "lost")]
        )
        for instance_id in (imaged, also_imaged, lost):
            account.set_patch_behaviour(instance_id, {"missing": 2})
        account.set_patch_behaviour(lost, {"backup": "failed"})
        # Plan mode lists the backup task it would register, and writes nothing.
        planned = run_ok(account, {"mode": "plan"})
        (task_change,) = [c for c in changes(account, planned) if c["kind"] == "task"]
        assert (task_change["action"], task_change["name"]) == ("create", "tagpatch-install-reboot-backup-image-01")
        assert (task_change["after"]["task_type"], task_change["after"]["document"]) == (
            "AUTOMATION",
            account.physical_id("BackupThenPatchRunbook"),
        )
        assert planned.resource_write_calls == {}
        first = run_ok(account)
        assert [p for p in problems(account, first) if p["kind"] == "backup"] == []

        ssm = account.client("ssm")
        window_id = ssm_windows(account)["tagpatch-sun-0200"]["WindowId"]
        tasks = {
            task["Name"]: ssm.get_maintenance_window_task(WindowId=window_id, WindowTaskId=task["WindowTaskId"])
            for task in ssm.describe_maintenance_window_tasks(WindowId=window_id)["Tasks"]
        }
        (task,) = tasks.values()
        role_arn = account.client("iam").get_role(RoleName=account.physical_id("BackupAutomationRole"))["Role"]["Arn"]
        assert (task["TaskType"], task["TaskArn"]) == ("AUTOMATION", account.physical_id("BackupThenPatchRunbook"))
        parameters = task["TaskInvocationParameters"]["Automation"]["Parameters"]
        assert parameters["InstanceId"] == ["{{RESOURCE_ID}}"]
        assert parameters["AutomationAssumeRole"] == [role_arn]
        assert (parameters["Operation"], parameters["RebootOption"]) == (["Install"], ["RebootIfNeeded"])

        account.advance(timedelta(days=8))  # past a Sunday 02:00 run
        states = {
            state["InstanceId"]: state
            for state in ssm.describe_instance_patch_states(InstanceIds=[imaged, also_imaged, lost])[
                "InstancePatchStates"
            ]
        }
        # The daily scan may have reported since: the counts, not the last operation, say what was installed.
        counts = {i: (state["InstalledCount"], state["MissingCount"]) for i, state in states.items()}
        assert counts == {imaged: (2, 0), also_imaged: (2, 0), lost: (0, 2)}

        owners = topic_queue(account, "NotificationsTopic", queue="owners")
        rerun = run_ok(account)
        assert rerun.resource_write_calls == {}
        # Monitoring reads the patch command the runbook sent: the imaged instances' outcomes are their patch's.
        outcomes = {line["instance_id"]: line for line in patch_result_lines(account, rerun)}
        assert {i: outcomes[i]["outcome"] for i in (imaged, also_imaged, lost)} == {
            imaged: "patched",
            also_imaged: "patched",
            lost: "failed",
        }
        assert "its backup failed" in outcomes[lost]["reason"]
        assert_backups_beside_the_outcomes(account, outcomes, [imaged, also_imaged], lost)
        # Not silent: the instance's owners are told it was left unpatched, and why, as for a failed patch.
        messages = owners()
        assert any(lost in m["Message"] and "its backup failed" in m["Message"] for m in messages), messages


def assert_backups_beside_the_outcomes(
    account: SimulatedAccount, outcomes: dict[str, dict[str, Any]], imaged: list[str], lost: str
) -> None:
    """The patch results, the compliance snapshot and report.html carry each instance's backup."""
    # Beside each outcome, the backup's: the image the runbook made (as EC2 lists it), or that it failed.
    images = {
        image["ImageId"]: image
        for image in account.client("ec2").describe_images(Owners=["self"])["Images"]
        if image["State"] == "available"
    }
    backups = {i: (outcomes[i]["backup_outcome"], outcomes[i]["backup_id"]) for i in (*imaged, lost)}
    assert {i: outcome for i, (outcome, _) in backups.items()} == {
        **dict.fromkeys(imaged, "succeeded"),
        lost: "failed",
    }
    assert backups[lost][1] is None
    for instance_id in imaged:
        image_id = backups[instance_id][1]
        assert image_id in images, (image_id, sorted(images))
        assert instance_id in images[image_id]["Name"]
    # The compliance snapshot carries them, and report.html's actions table says the backup failed.
    bucket = account.client("s3")
    latest = bucket.get_object(Bucket=account.artifact_bucket, Key=latest_key(Target(ACCOUNT_ID, account.region)))
    snapshot = {record["instance_id"]: record for record in decode_jsonl_gz(latest["Body"].read())}
    assert {i: (snapshot[i]["backup_outcome"], snapshot[i]["backup_id"]) for i in backups} == backups
    page = bucket.get_object(Bucket=account.artifact_bucket, Key=LATEST_REPORT_KEY)["Body"].read().decode()
    actions = page.split('<table id="actions">', 1)[1].split("</table>", 1)[0]
    (lost_row,) = [row for row in actions.split("<tr>") if lost in row]
    assert "backup failed" in lost_row, lost_row


def test_a_backup_window_with_hooks_runs_them_through_the_runbook_and_tells_a_hook_failure_apart(
    tmp_path: Path,
) -> None:
    """The runbook's patch step runs AWS-RunPatchBaselineWithHooks with the task's hook documents: the
    post-install hook runs after the image and the patches, and its failure is reported as the hook's."""
    document = yaml.safe_load((REPO / "policy" / "patch-policy.yaml").read_text())
    document["windows"]["sun-0200"]["task"] = {"backup": "image", "hooks": {"post_install": "app-health"}}
    document["defaults"]["task"]["max_errors"] = "2"  # both instances are sent, whatever fails first
    document["scan"]["enabled"] = False  # the Install's patch state, not a later scan's, tells the hook apart
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(document))
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.client("ssm").create_document(
            Name="app-health", Content=json.dumps(command_document(["true"])), DocumentType="Command"
        )
        account.use_policy(path)
        healthy, unhealthy = account.seed([instance("web", "sun-0200", name=n) for n in ("healthy", "unhealthy")])
        for instance_id in (healthy, unhealthy):
            account.set_patch_behaviour(instance_id, {"missing": 2})
        account.set_patch_behaviour(unhealthy, {"failing_hook": "post_install"})
        run_ok(account)
        account.advance(timedelta(days=8))  # past a Sunday 02:00 run
        outcomes = {line["instance_id"]: line for line in patch_result_lines(account, run_ok(account))}
        assert (outcomes[healthy]["outcome"], outcomes[healthy]["hooks_ran"]) == (
            "patched",
            {"post_install": "app-health"},
        )
        assert outcomes[unhealthy]["outcome"] == "failed"
        assert (
            "failed in the post-install hook (app-health), after its patches installed"
            in (outcomes[unhealthy]["reason"])
        )
        # Both were imaged first: the hook failed after the backup and the patches.
        assert [outcomes[i]["backup_outcome"] for i in (healthy, unhealthy)] == ["succeeded", "succeeded"]
