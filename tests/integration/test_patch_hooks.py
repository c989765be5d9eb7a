"""Patch task hooks in the simulated account: a policy hook makes the window's task run
AWS-RunPatchBaselineWithHooks with it, a rerun writes nothing, and a hook document that does not exist
stops WindowUpsert, naming the policy key, before anything is written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

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
    path = folder / f"policy-{len(list(folder.iterdir()))}.yaml"
    path.write_text(yaml.safe_dump(document))
    account.use_policy(path)


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
