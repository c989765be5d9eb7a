"""Patch task hooks in the simulated account: a policy hook makes the window's task run
AWS-RunPatchBaselineWithHooks with it, a rerun writes nothing, and a hook document that does not exist
stops WindowUpsert, naming the policy key, before anything is written."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from tagpatch_local.report import patch_result_lines
from tagpatch_local.runner import SimulatedAccount

from .support import instance, run_ok, ssm_windows

REPO = Path(__file__).resolve().parents[2]
HEALTH_CHECK = {
    "schemaVersion": "2.2",
    "description": "Checks the application after patching",
    "mainSteps": [{"action": "aws:runShellScript", "name": "check", "inputs": {"runCommand": ["true"]}}],
}


def use_hooks(account: SimulatedAccount, folder: Path, hooks: dict[str, str]) -> None:
    document = yaml.safe_load((REPO / "policy" / "patch-policy.yaml").read_text())
    document["defaults"]["task"]["hooks"] = hooks
    document["defaults"]["task"]["max_errors"] = "3"  # every instance is sent, whatever fails first
    # No daily patch scan: its later report would replace the Install's, which these tests read to tell
    # the hooks apart (test_hooks covers the reasons given after a scan).
    document["scan"]["enabled"] = False
    path = folder / f"policy-{len(list(folder.iterdir()))}.yaml"
    path.write_text(yaml.safe_dump(document))
    account.use_policy(path)


def instance_id(account: SimulatedAccount, name: str) -> str:
    found = account.client("ec2").describe_instances(Filters=[{"Name": "tag:Name", "Values": [name]}])
    return str(found["Reservations"][0]["Instances"][0]["InstanceId"])


def patch_task(account: SimulatedAccount) -> dict[str, Any]:
    ssm = account.client("ssm")
    window = ssm_windows(account)["tagpatch-sun-0200"]
    (summary,) = ssm.describe_maintenance_window_tasks(WindowId=window["WindowId"])["Tasks"]
    return dict(ssm.get_maintenance_window_task(WindowId=window["WindowId"], WindowTaskId=summary["WindowTaskId"]))


def test_a_hooked_task_runs_the_hooks_document_and_a_missing_hook_stops_the_plan(tmp_path: Path) -> None:
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.client("ssm").create_document(
            Name="app-health", Content=json.dumps(HEALTH_CHECK), DocumentType="Command", DocumentFormat="JSON"
        )
        use_hooks(account, tmp_path, {"post_install": "app-health"})
        account.seed([instance("web", "sun-0200", name="web-1")])
        run_ok(account)
        task = patch_task(account)
        assert task["TaskArn"] == "AWS-RunPatchBaselineWithHooks"
        parameters = task["TaskInvocationParameters"]["RunCommand"]["Parameters"]
        assert parameters["PostInstallHookDocName"] == ["app-health"]
        assert parameters["Operation"] == ["Install"]
        assert run_ok(account).resource_write_calls == {}  # reconciled: a rerun writes nothing

        use_hooks(account, tmp_path, {"post_install": "app-health", "pre_install": "app-drain"})
        refused = account.run_cycle({})
        assert (refused.status, refused.error) == ("FAILED", "InvalidPatchPolicy")
        assert "defaults.task.hooks.pre_install: SSM document 'app-drain' does not exist" in (refused.cause or "")
        assert refused.resource_write_calls == {}
        assert patch_task(account)["TaskInvocationParameters"]["RunCommand"]["Parameters"] == parameters


def test_a_hook_failure_is_its_own_outcome_reason_told_apart_from_a_patch_failure(tmp_path: Path) -> None:
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.client("ssm").create_document(
            Name="app-health", Content=json.dumps(HEALTH_CHECK), DocumentType="Command", DocumentFormat="JSON"
        )
        use_hooks(account, tmp_path, {"post_install": "app-health", "pre_install": "app-drain-check"})
        account.client("ssm").create_document(
            Name="app-drain-check", Content=json.dumps(HEALTH_CHECK), DocumentType="Command", DocumentFormat="JSON"
        )
        names = ("healthy", "post-fails", "pre-fails", "patch-fails")
        account.seed([instance("web", "sun-0200", name=name) for name in names])
        behaviours: dict[str, dict[str, Any]] = {
            "healthy": {"missing": 2},
            "post-fails": {"missing": 2, "failing_hook": "post_install"},
            "pre-fails": {"missing": 2, "failing_hook": "pre_install"},
            "patch-fails": {"missing": 2, "result": "failed"},
        }
        for name, behaviour in behaviours.items():
            account.set_patch_behaviour(instance_id(account, name), behaviour)
        run_ok(account)
        account.advance(timedelta(days=8))  # past a Sunday 02:00 run
        results = {line["name"]: line for line in patch_result_lines(account, run_ok(account))}
        assert (results["healthy"]["outcome"], results["healthy"]["missing"]) == ("patched", 0)
        post = results["post-fails"]
        assert (post["outcome"], post["missing"], post["installed"]) == ("failed", 0, 2)
        assert post["reason"].endswith("failed in the post-install hook (app-health), after its patches installed")
        pre = results["pre-fails"]
        assert (pre["outcome"], pre["installed"]) == ("failed", None)  # it never reported an Install
        assert pre["reason"].endswith("failed in the pre-install hook (app-drain-check), nothing installed")
        patch_failure = results["patch-fails"]
        assert patch_failure["outcome"] == "failed" and "hook" not in patch_failure["reason"]
