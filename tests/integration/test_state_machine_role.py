"""The state machine invokes each function under its own role, deployed from template.yaml's Policies
(SAM's LambdaInvokePolicy templates): a state whose invoke permission is missing fails as in AWS."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

from tagpatch_local.runner import SimulatedAccount

from .support import instance, run_ok

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def state_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The state machine's Retry waits, recorded instead of slept."""
    waits: list[float] = []
    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=waits.append))
    return waits


def invoke_grants(account: SimulatedAccount) -> dict[str, str]:
    """The state machine role's policy names, by the function each lets it invoke."""
    iam = account.client("iam")
    role = account.state_machine_role_name
    found = {}
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        for statement in iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]["Statement"]:
            if statement["Action"] == ["lambda:InvokeFunction"]:
                found[str(statement["Resource"]).rsplit(":function:", 1)[1].removesuffix("*")] = name
    return found


def task_failures(result: Any, state: str) -> list[dict[str, Any]]:
    failures, current = [], None
    for event in result.events:
        if "stateEnteredEventDetails" in event:
            current = event["stateEnteredEventDetails"]["name"]
        if event["type"] == "TaskFailed" and current == state:
            failures.append(event["taskFailedEventDetails"])
    return failures


def test_the_role_may_invoke_each_function_the_workflow_uses_and_a_cycle_succeeds() -> None:
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.seed([instance("web", "sun-0200")])
        grants = invoke_grants(account)
        invoked = {run.function for run in run_ok(account).function_runs}
        assert {f"tagpatch-local-{function}" for function in invoked} <= set(grants)


def test_a_state_without_its_invoke_permission_fails_the_cycle_at_that_state(state_waits: list[float]) -> None:
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.seed([instance("web", "sun-0200")])
        function = "tagpatch-local-ComplianceExportFunction"
        account.client("iam").delete_role_policy(
            RoleName=account.state_machine_role_name, PolicyName=invoke_grants(account)[function]
        )
        result = account.run_cycle()
        assert result.status == "FAILED"
        assert result.output is not None and result.output["failed_state"] == "ComplianceExport"
        failures = task_failures(result, "ComplianceExport")
        # AWS names Lambda's AccessDeniedException Lambda.AWSLambdaException, which the state retries.
        assert {f["error"] for f in failures} == {"Lambda.AWSLambdaException"}
        assert len(failures) == 7 and len(state_waits) == 6  # the first attempt and MaxAttempts 6
        cause = failures[0]["cause"]
        assert "is not authorized to perform: lambda:InvokeFunction on resource: " in cause
        assert f":function:{function} because no identity-based policy allows" in cause
        assert "Status Code: 403; Error Code: AccessDeniedException" in cause
        # The function never ran; the states before it did, and ReportFailure still could.
        ran = {run.function for run in result.function_runs}
        assert "ComplianceExportFunction" not in ran
        assert {"PatchMonitoringFunction", "ReportFailureFunction"} <= ran
