"""The org cycle's pure parts: which targets a policy names, each target's cycle input, and the
summary and one alert SummarizeTargets makes of the Map's results."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from tagpatch.errors import InvalidCycleInput
from tagpatch.org_summary import alert, summarize
from tagpatch.org_targets import (
    SkippedAccount,
    TargetSettings,
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
    items = target_items({"mode": "plan"}, [HOME, OTHER], HOME, "daily")
    assert items == [
        {"target": HOME, "name": "daily", "input": {"mode": "plan"}},
        {"target": OTHER, "name": "daily-444455556666-eu-west-1", "input": {"mode": "plan", "target": OTHER}},
    ]


def test_a_child_execution_name_fits_step_functions_80_characters() -> None:
    name = target_items({}, [OTHER], HOME, "x" * 80)[0]["name"]
    assert len(name) == 80
    assert name.endswith("x-444455556666-eu-west-1")


def test_the_org_runs_artifacts_are_dated_by_its_start() -> None:
    assert org_artifact_prefix(org_run(ORG)) == "org-runs/2026/12/07/daily/"
    with pytest.raises(InvalidCycleInput, match="no 'org' object"):
        org_run({"execution_id": "x"})


def failed_child(status: str, error: str, cause: str) -> dict[str, object]:
    described = {
        "ExecutionArn": "arn:aws:states:eu-west-1:111122223333:execution:tagpatch-patch-cycle:b2",
        "Status": status,
        "Error": error,
        "Cause": cause,
    }
    return {"Error": "States.TaskFailed", "Cause": json.dumps(described)}


def test_one_alert_names_each_failed_target_and_why_and_not_the_others() -> None:
    results = [
        {"target": HOME, "status": "SUCCEEDED", "execution_arn": "arn:a", "compliance": {"counts": {"compliant": 1}}},
        {
            "target": OTHER,
            "status": "FAILED",
            "failure": failed_child("FAILED", "TargetAccessDenied", "Discovery cannot act in account 444455556666"),
        },
    ]
    skipped = [SkippedAccount(account_id="777788889999", state="SUSPENDED", parent_id="ou-ab12-cd34ef56")]
    summary = summarize(ORG["execution_id"], results, skipped)
    assert summary["counts"] == {"targets": 2, "succeeded": 1, "failed": 1, "skipped_accounts": 1}
    message = alert(summary, "org-runs/2026/12/07/daily/summary.json")
    assert message is not None
    subject, body = message
    assert subject == "tagpatch org cycle: 1 of 2 targets failed"
    assert (
        "- 444455556666/eu-west-1: its patch cycle ended FAILED: TargetAccessDenied: Discovery cannot act in "
        "account 444455556666 (execution arn:aws:states:eu-west-1:111122223333:execution:tagpatch-patch-cycle:b2)"
    ) in body
    assert "111122223333/eu-west-1" not in body
    assert "Accounts skipped, not ACTIVE: 777788889999 (SUSPENDED)" in body


def test_a_target_whose_cycle_could_not_start_says_so() -> None:
    failure = {"Error": "StepFunctions.ExecutionLimitExceededException", "Cause": "Too many executions"}
    summary = summarize(ORG["execution_id"], [{"target": OTHER, "status": "FAILED", "failure": failure}], [])
    (outcome,) = summary["targets"]
    assert outcome["reason"] == (
        "its patch cycle could not be started (StepFunctions.ExecutionLimitExceededException): Too many executions"
    )


def test_every_target_succeeding_sends_no_alert_and_a_listing_failure_does() -> None:
    ok = summarize(ORG["execution_id"], [{"target": HOME, "status": "SUCCEEDED", "execution_arn": "arn:a"}], [])
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
