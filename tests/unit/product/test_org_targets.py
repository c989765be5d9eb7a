"""The org cycle's pure parts: which targets a policy names, each target's cycle input, and the
summary and one alert SummarizeTargets makes of the Map's results."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tagpatch.errors import InvalidCycleInput
from tagpatch.org_summary import (
    MAX_ALERT_BODY_BYTES,
    MAX_LISTED,
    ChildFailure,
    alert,
    summarize,
    target_outcome,
    undescribed_outcome,
)
from tagpatch.org_targets import (
    SkippedAccount,
    TargetSettings,
    child_execution_arn,
    org_artifact_prefix,
    org_run,
    plan_targets,
    target_items,
)
from tagpatch.organization import accounts_under
from tagpatch.targets import TargetPayload

HOME = TargetPayload(account_id="111122223333", region="eu-west-1")
OTHER = TargetPayload(account_id="444455556666", region="eu-west-1")
ORG = {
    "execution_id": "arn:aws:states:eu-west-1:111122223333:execution:tagpatch-org-cycle:daily",
    "execution_name": "daily",
    "start_time": "2026-12-07T05:00:00.123Z",
}


def test_no_targets_is_home_alone_in_the_hubs_region() -> None:
    assert plan_targets(TargetSettings(), HOME) == [HOME]


def test_regions_without_accounts_are_the_hubs_account_in_each() -> None:
    assert plan_targets(TargetSettings(regions=("eu-west-1", "us-east-1")), HOME) == [
        HOME,
        TargetPayload(account_id=HOME["account_id"], region="us-east-1"),
    ]


def test_listed_accounts_then_the_ous_accounts_each_once_in_the_hubs_region() -> None:
    settings = TargetSettings(accounts=(OTHER["account_id"],), organizational_units=("ou-ab12-cd34ef56",))
    assert plan_targets(settings, HOME, [HOME["account_id"], OTHER["account_id"]]) == [OTHER, HOME]


def test_home_starts_its_cycle_without_a_target_and_others_with_theirs() -> None:
    """An item carries the target's own part of its cycle's input; the Map adds the org input."""
    items = target_items([HOME, OTHER], HOME, "daily")
    assert items == [
        {"target": HOME, "name": "daily", "input": {}},
        {"target": OTHER, "name": "daily-444455556666-eu-west-1", "input": {"target": OTHER}},
    ]


def test_a_child_execution_s_arn_is_its_state_machine_s_with_its_name() -> None:
    machine = "arn:aws:states:eu-west-1:111122223333:stateMachine:tagpatch-patch-cycle"
    assert child_execution_arn(machine, "daily-444455556666-eu-west-1") == (
        "arn:aws:states:eu-west-1:111122223333:execution:tagpatch-patch-cycle:daily-444455556666-eu-west-1"
    )


def test_a_child_execution_name_fits_step_functions_80_characters() -> None:
    name = target_items([OTHER], HOME, "x" * 80)[0]["name"]
    assert len(name) == 80
    assert name.endswith("x-444455556666-eu-west-1")


def test_the_org_runs_artifacts_are_dated_by_its_start() -> None:
    assert org_artifact_prefix(org_run(ORG)) == "org-runs/2026/12/07/daily/"
    with pytest.raises(InvalidCycleInput, match="no 'org' object"):
        org_run({"execution_id": "x"})


CHILD_ARN = "arn:aws:states:eu-west-1:111122223333:execution:tagpatch-patch-cycle:b2"


def described(status: str, **members: str) -> dict[str, Any]:
    """A child execution as DescribeExecution answers it."""
    return {"executionArn": CHILD_ARN, "name": "b2", "status": status, **members}


def failure_record(state: str, error: str, cause: str) -> ChildFailure:
    return ChildFailure(
        failed_state=state,
        error=error,
        cause=cause,
        subject=f"tagpatch cycle failed in {state}",
        body=f"The patch cycle b2 failed in state {state}.\nError: {error}\nCause: {cause}",
    )


def test_one_alert_names_each_failed_target_and_why_and_not_the_others() -> None:
    outcomes = [
        target_outcome(
            {"target": HOME, "name": "a", "status": "SUCCEEDED"},
            {**described("SUCCEEDED"), "output": json.dumps({"compliance": {"counts": {"compliant": 1}}})},
        ),
        target_outcome(
            {"target": OTHER, "name": "b2", "status": "FAILED", "error": "States.TaskFailed"},
            described("FAILED", error="TargetAccessDenied", cause="{}"),
            failure_record("Discovery", "TargetAccessDenied", "Discovery cannot act in account 444455556666"),
        ),
    ]
    assert outcomes[0]["compliance"] == {"counts": {"compliant": 1}}
    skipped = [SkippedAccount(account_id="777788889999", state="SUSPENDED", parent_id="ou-ab12-cd34ef56")]
    summary = summarize(ORG["execution_id"], outcomes, skipped)
    assert summary["counts"] == {"targets": 2, "succeeded": 1, "failed": 1, "skipped_accounts": 1}
    message = alert(summary, "org-runs/2026/12/07/daily/summary.json")
    assert message is not None
    subject, body = message
    assert subject == "tagpatch org cycle: 1 of 2 targets failed"
    assert (
        "- 444455556666/eu-west-1: its patch cycle ended FAILED in state Discovery: TargetAccessDenied: Discovery "
        f"cannot act in account 444455556666 (execution {CHILD_ARN})\n"
        "    The patch cycle b2 failed in state Discovery.\n"
    ) in body
    assert "111122223333/eu-west-1" not in body
    assert "Accounts skipped, not ACTIVE: 777788889999 (SUSPENDED)" in body


def test_a_failed_child_that_recorded_nothing_is_named_with_its_own_error_and_cause() -> None:
    outcome = target_outcome(
        {"target": OTHER, "name": "b2", "status": "FAILED", "error": "States.TaskFailed"},
        described("FAILED", error="CycleAlreadyRunning", cause=json.dumps({"errorMessage": "another cycle runs"})),
    )
    assert outcome["reason"] == "its patch cycle ended FAILED: CycleAlreadyRunning: another cycle runs"
    assert outcome["failed_state"] is None


def test_the_alert_stays_within_sns_s_limit_however_many_targets_fail_with_long_causes() -> None:
    long_cause = "x" * 30_000
    outcomes = [
        target_outcome(
            {
                "target": TargetPayload(account_id=f"{index:012d}", region="eu-west-1"),
                "name": f"c{index}",
                "status": "FAILED",
            },
            described("FAILED", error="Boom", cause=long_cause),
            ChildFailure(failed_state="Discovery", error="Boom", cause=long_cause, subject="s", body=long_cause),
        )
        for index in range(MAX_LISTED + 50)
    ]
    message = alert(summarize(ORG["execution_id"], outcomes, []), "k")
    assert message is not None
    assert len(message[1].encode()) <= MAX_ALERT_BODY_BYTES + 200
    assert message[1].count("\n- ") < len(outcomes)
    assert "more (see the summary)" in message[1]


def test_a_child_that_could_not_be_described_is_still_named_in_the_alert() -> None:
    failed = undescribed_outcome(
        {"target": OTHER, "name": "b2", "status": "FAILED", "error": "States.TaskFailed"}, f"{CHILD_ARN}: AccessDenied"
    )
    succeeded = undescribed_outcome({"target": HOME, "name": "a", "status": "SUCCEEDED"}, "AccessDenied")
    summary = summarize(ORG["execution_id"], [succeeded, failed], [])
    assert summary["counts"]["failed"] == 1
    message = alert(summary, "k")
    assert message is not None
    assert (
        f"- 444455556666/eu-west-1: its patch cycle ended FAILED; why could not be read: {CHILD_ARN}: AccessDenied"
        in (message[1])
    )


def test_a_target_whose_cycle_could_not_start_says_so() -> None:
    failure = {"Error": "StepFunctions.ExecutionLimitExceededException", "Cause": "Too many executions"}
    outcome = target_outcome({"target": OTHER, "name": "b2", "status": "FAILED", "failure": failure})
    summary = summarize(ORG["execution_id"], [outcome], [])
    (outcome,) = summary["targets"]
    assert outcome["reason"] == (
        "its patch cycle could not be started (StepFunctions.ExecutionLimitExceededException): Too many executions"
    )


def test_every_target_succeeding_sends_no_alert_and_a_listing_failure_does() -> None:
    ok = summarize(
        ORG["execution_id"],
        [target_outcome({"target": HOME, "name": "a", "status": "SUCCEEDED"}, described("SUCCEEDED"))],
        [],
    )
    assert alert(ok, "k") is None
    listing = {"Error": "InvalidPatchPolicy", "Cause": json.dumps({"errorMessage": "targets.regions[0]: bad"})}
    failed = summarize(ORG["execution_id"], [], [], listing)
    message = alert(failed, "k")
    assert message is not None
    assert message[0] == "tagpatch org cycle could not list its targets"
    assert "Why: InvalidPatchPolicy: targets.regions[0]: bad" in message[1]


@mock_aws
def test_the_ous_active_accounts_are_listed_nested_ous_followed_and_the_rest_skipped() -> None:
    organizations = boto3.client("organizations", region_name="us-east-1")
    organizations.create_organization(FeatureSet="ALL")
    root = organizations.list_roots()["Roots"][0]["Id"]
    prod = organizations.create_organizational_unit(ParentId=root, Name="prod")["OrganizationalUnit"]["Id"]
    nested = organizations.create_organizational_unit(ParentId=prod, Name="eu")["OrganizationalUnit"]["Id"]

    def account(name: str, parent: str) -> str:
        status = organizations.create_account(Email=f"{name}@example.com", AccountName=name)["CreateAccountStatus"]
        account_id = str(status["AccountId"])
        organizations.move_account(AccountId=account_id, SourceParentId=root, DestinationParentId=parent)
        return account_id

    direct, deeper, closed = account("direct", prod), account("deeper", nested), account("closed", nested)
    organizations.close_account(AccountId=closed)
    state = organizations.describe_account(AccountId=closed)["Account"]
    found = accounts_under([prod])
    assert found.active == [direct, deeper]
    assert found.skipped == [
        {"account_id": closed, "state": state.get("State") or state["Status"], "parent_id": nested}
    ]
    assert found.skipped[0]["state"] != "ACTIVE"
