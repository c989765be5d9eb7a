"""The org cycle in the simulated account: ListTargets, one patch cycle per target as a child execution
(states:startExecution.sync:2) under the org cycle's role, each child's failure caught in its own
iteration, and SummarizeTargets' summary and one alert naming each failed target."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tagpatch_local.deploy import machine_role_name
from tagpatch_local.fleet import MemberAccount
from tagpatch_local.runner import ACCOUNT_ID, SimulatedAccount

from .support import REPO, instance, topic_queue

OTHER_ACCOUNT = "222233334444"


def policy_with_targets(folder: Path, targets: dict[str, Any]) -> Path:
    document = yaml.safe_load((REPO / "policy" / "patch-policy.yaml").read_text(encoding="utf-8"))
    document["targets"] = targets
    path = folder / "patch-policy.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def summary_of(account: SimulatedAccount, key: str) -> dict[str, Any]:
    body = account.client("s3").get_object(Bucket=account.artifact_bucket, Key=key)["Body"].read()
    document: dict[str, Any] = json.loads(body)
    return document


def summary_key(account: SimulatedAccount) -> str:
    listed = account.client("s3").list_objects_v2(Bucket=account.artifact_bucket, Prefix="org-runs/")
    (key,) = [item["Key"] for item in listed.get("Contents", []) if item["Key"].endswith("/summary.json")]
    return str(key)


def test_with_no_targets_the_org_cycle_runs_one_patch_cycle_home(account: SimulatedAccount) -> None:
    account.seed([instance("web", "sun-0200", name="a")])
    result = account.run_org_cycle({})
    assert result.status == "SUCCEEDED", (result.org.error, result.targets)
    home = f"{ACCOUNT_ID}/{account.region}"
    assert list(result.children) == [home]
    child = result.children[home]
    assert child.status == "SUCCEEDED"
    assert child.execution_name == result.org.execution_name  # as a single-account cycle's artifacts are named
    # Home is the single-account cycle: started without a target, so it acts with the functions' own roles.
    assert "target" not in json.loads(child.events[0]["executionStartedEventDetails"]["input"])
    assert "ssm:CreateMaintenanceWindow" in child.calls_by_function["ApplyWindowChangesFunction"]
    assert set(result.org.calls_by_function) == {"ListTargetsFunction", "SummarizeTargetsFunction"}
    assert "sns:Publish" not in result.org.calls_by_function["SummarizeTargetsFunction"]
    summary = summary_of(account, summary_key(account))
    assert summary["counts"] == {"targets": 1, "succeeded": 1, "failed": 0, "skipped_accounts": 0}
    (outcome,) = summary["targets"]
    assert outcome["target"] == {"account_id": ACCOUNT_ID, "region": account.region}
    assert outcome["status"] == "SUCCEEDED"
    assert outcome["compliance"]["counts"]


def test_a_failed_target_is_caught_named_in_one_alert_and_fails_the_org_cycle(
    account: SimulatedAccount, tmp_path: Path
) -> None:
    account.seed([instance("web", "sun-0200", name="a")])
    account.use_policy(
        policy_with_targets(
            tmp_path, {"accounts": [ACCOUNT_ID, OTHER_ACCOUNT], "regions": [account.region], "max_concurrency": 1}
        )
    )
    alerts = topic_queue(account)
    result = account.run_org_cycle({})
    assert result.status == "FAILED"
    assert result.org.error == "TargetsFailed"
    by_account = {item["target"]["account_id"]: item for item in result.targets}
    assert by_account[ACCOUNT_ID]["status"] == "SUCCEEDED"  # processed in full despite the other's failure
    assert by_account[OTHER_ACCOUNT]["status"] == "FAILED"
    assert result.children[f"{OTHER_ACCOUNT}/{account.region}"].status == "FAILED"
    messages = [m for m in alerts() if "org cycle" in m["Subject"]]
    assert len(messages) == 1
    (message,) = messages
    assert message["Subject"] == "tagpatch org cycle: 1 of 2 targets failed"
    assert f"- {OTHER_ACCOUNT}/{account.region}: its patch cycle ended FAILED" in message["Message"]
    assert f"{ACCOUNT_ID}/{account.region}" not in message["Message"]
    summary = summary_of(account, summary_key(account))
    assert summary["counts"] == {"targets": 2, "succeeded": 1, "failed": 1, "skipped_accounts": 0}


def test_an_org_cycle_role_that_may_not_start_the_patch_cycle_fails_each_target_loudly(
    account: SimulatedAccount,
) -> None:
    """states:StartExecution is checked under the org cycle's role, as AWS checks it."""
    iam = account.client("iam")
    role = machine_role_name("OrgCycleStateMachine")
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        kept = [s for s in document["Statement"] if s.get("Sid") != "StartTargetCycles"]
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps({**document, "Statement": kept}))
    alerts = topic_queue(account)
    result = account.run_org_cycle({})
    assert result.status == "FAILED"
    (outcome,) = result.targets
    assert outcome["failure"]["Error"] == "StepFunctions.AWSStepFunctionsException"
    assert "is not authorized to perform: states:StartExecution" in outcome["failure"]["Cause"]
    assert result.children == {}  # no patch cycle started
    (message,) = [m for m in alerts() if "org cycle" in m["Subject"]]
    assert "its patch cycle could not be started (StepFunctions.AWSStepFunctionsException)" in message["Message"]


def test_one_report_html_shows_every_reported_targets_rows_and_names_each_target_not_reported(
    account: SimulatedAccount, tmp_path: Path
) -> None:
    """The organization's report.html (SummarizeTargets): the rows of every target whose cycle succeeded,
    of several accounts and Regions, on the page a single-account stack publishes, and each failed target
    named as not reported, with why. Two accounts in two Regions: the hub has no spoke to assume in the
    member's Region, so that target fails; the member has no instances in the hub's Region."""
    member_region = "eu-west-1"
    payments = MemberAccount(
        "111111111111", "payments", (member_region,), instances=(instance("web", "sun-0200", name="pay-web-01"),)
    )
    account.seed([instance("web", "sun-0200", name="hub-web-01")])
    account.seed_accounts([payments])
    account.use_policy(
        policy_with_targets(
            tmp_path, {"accounts": [ACCOUNT_ID, payments.id], "regions": [account.region, member_region]}
        )
    )
    result = account.run_org_cycle({})
    status = {f"{item['target']['account_id']}/{item['target']['region']}": item["status"] for item in result.targets}
    reported = [f"{ACCOUNT_ID}/{account.region}", f"{payments.id}/{account.region}", f"{payments.id}/{member_region}"]
    failed = [f"{ACCOUNT_ID}/{member_region}"]
    assert status == {**dict.fromkeys(reported, "SUCCEEDED"), **dict.fromkeys(failed, "FAILED")}, result.targets
    report_key = (result.org.output or {})["summary"]["report_key"]
    assert report_key == f"compliance/reports/dt={account.now():%Y-%m-%d}/report.html"
    s3 = account.client("s3")
    page, latest = (
        s3.get_object(Bucket=account.artifact_bucket, Key=key)["Body"].read().decode()
        for key in (report_key, "compliance/reports/latest/report.html")
    )
    assert latest == page  # the organization's page is the latest report, where the digest links
    assert "Snapshot of 2 instances" in page
    assert 'id="trend"' in page and "No snapshots yet" not in page  # the targets' trends, summed
    assert f"Rows of 3 targets: {', '.join(reported)}." in page
    assert "hub-web-01" in page and "pay-web-01" in page
    # Each instance names its account and Region (the breakdowns count only a known compliance, and
    # these instances have had no scan yet).
    for label, name in ((reported[0], "hub-web-01"), (reported[2], "pay-web-01")):
        assert f'<td data-label="account/Region">{label}</td><td data-label="name">{name}</td>' in page
    assert "Not reported: 1" in page
    for label in failed:
        cells = f'<td data-label="target">{label}</td><td data-label="not reported">not reported: its patch cycle ended'
        assert cells in page
    assert "sts:AssumeRole" in page  # why: the target has no spoke to assume


def test_a_policy_whose_targets_cannot_be_listed_fails_the_org_cycle_with_one_alert_saying_why(
    account: SimulatedAccount, tmp_path: Path
) -> None:
    account.use_policy(policy_with_targets(tmp_path, {"regions": ["Frankfurt"]}))
    alerts = topic_queue(account)
    result = account.run_org_cycle({})
    assert (result.status, result.org.error) == ("FAILED", "ListTargetsFailed")
    assert result.targets == [] and result.children == {}
    (message,) = alerts()
    assert message["Subject"] == "tagpatch org cycle could not list its targets"
    assert "Why: InvalidPatchPolicy:" in message["Message"]
    assert "targets.regions[0]: must be a Region name like eu-west-1 (got 'Frankfurt')" in message["Message"]


def test_an_org_report_that_cannot_be_written_reaches_the_alerts_topic_and_fails_the_org_cycle(
    account: SimulatedAccount, tmp_path: Path
) -> None:
    """SummarizeTargets refused a target's snapshot: no silent gap in report.html, but an alert saying why."""
    iam = account.client("iam")
    role = account.role_arn("SummarizeTargetsFunction").rsplit("/", 1)[1]
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        kept = [s for s in document["Statement"] if s.get("Sid") != "ReadTargetSnapshots"]
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps({**document, "Statement": kept}))
    account.seed([instance("web", "sun-0200", name="a")])
    account.use_policy(
        policy_with_targets(tmp_path, {"accounts": [ACCOUNT_ID, OTHER_ACCOUNT], "regions": [account.region]})
    )
    alerts = topic_queue(account)
    result = account.run_org_cycle({})
    assert result.status == "FAILED"
    messages = {m["Subject"]: m["Message"] for m in alerts() if "org cycle" in m["Subject"]}
    assert set(messages) == {"tagpatch org cycle: 1 of 2 targets failed", "tagpatch org cycle: report.html not written"}
    body = messages["tagpatch org cycle: report.html not written"]
    assert "AccessDenied" in body and "compliance/snapshots/" in body
    assert "compliance/reports/latest/report.html" in body
