"""The org cycle in the simulated account: ListTargets, one patch cycle per target as a child execution
(states:startExecution.sync:2) under the org cycle's role, each child's failure caught in its own
iteration, and SummarizeTargets' summary and one alert naming each failed target."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
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


def without_statement(account: SimulatedAccount, role: str, sid: str) -> None:
    iam = account.client("iam")
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        kept = [s for s in document["Statement"] if s.get("Sid") != sid]
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps({**document, "Statement": kept}))


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


def run_with_a_target_without_spoke(account: SimulatedAccount, tmp_path: Path) -> tuple[Any, list[dict[str, Any]]]:
    """An org cycle over home and OTHER_ACCOUNT, which has no spoke, one target at a time: the org
    cycle's result and what reached the alerts topic."""
    account.seed([instance("web", "sun-0200", name="a")])
    account.use_policy(
        policy_with_targets(
            tmp_path, {"accounts": [ACCOUNT_ID, OTHER_ACCOUNT], "regions": [account.region], "max_concurrency": 1}
        )
    )
    alerts = topic_queue(account)
    result = account.run_org_cycle({})
    return result, alerts()


def test_a_failed_target_is_caught_named_in_one_alert_and_fails_the_org_cycle(
    account: SimulatedAccount, tmp_path: Path
) -> None:
    result, delivered = run_with_a_target_without_spoke(account, tmp_path)
    assert result.status == "FAILED"
    assert result.org.error == "TargetsFailed"
    by_account = {item["target"]["account_id"]: item for item in result.targets}
    assert by_account[ACCOUNT_ID]["status"] == "SUCCEEDED"  # processed in full despite the other's failure
    assert by_account[OTHER_ACCOUNT]["status"] == "FAILED"
    assert result.children[f"{OTHER_ACCOUNT}/{account.region}"].status == "FAILED"
    messages = [m for m in delivered if "org cycle" in m["Subject"]]
    assert len(messages) == 1
    (message,) = messages
    assert message["Subject"] == "tagpatch org cycle: 1 of 2 targets failed"
    assert f"- {OTHER_ACCOUNT}/{account.region}: its patch cycle ended FAILED" in message["Message"]
    assert f"{ACCOUNT_ID}/{account.region}" not in message["Message"]
    summary = summary_of(account, summary_key(account))
    assert summary["counts"] == {"targets": 2, "succeeded": 1, "failed": 1, "skipped_accounts": 0}


def cycle_alerts(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The alerts-topic messages a cycle sent, not CloudWatch alarms' notifications (which change state
    once and stay, and are not the cycle's alert)."""
    return [m for m in messages if not m["Subject"].startswith(("ALARM:", "OK:", "INSUFFICIENT_DATA:"))]


def failed_state_of(child: Any) -> str:
    """The state whose failure ended a patch cycle: the one its `<State>Failed` Pass state names."""
    (state,) = [
        event["stateExitedEventDetails"]["name"].removesuffix("Failed")
        for event in child.events
        if event["type"] == "PassStateExited"
        and event["stateExitedEventDetails"]["name"].endswith("Failed")
        and event["stateExitedEventDetails"]["name"] != "TargetFailed"
    ]
    return str(state)


def test_an_org_cycle_with_a_failed_target_alerts_once_with_the_child_s_failing_state_and_cause(
    account: SimulatedAccount, tmp_path: Path
) -> None:
    """The child leaves its alert to the org cycle's one, which says what the child's would have."""
    result, delivered = run_with_a_target_without_spoke(account, tmp_path)
    assert result.status == "FAILED"
    child = result.children[f"{OTHER_ACCOUNT}/{account.region}"]
    assert child.status == "FAILED"  # the child still ends FAILED
    messages = cycle_alerts(delivered)
    assert len(messages) == 1, [m["Subject"] for m in messages]
    (message,) = messages
    assert message["Subject"] == "tagpatch org cycle: 1 of 2 targets failed"
    state = failed_state_of(child)
    cause = json.loads(child.cause or "{}").get("errorMessage", child.cause)
    assert (
        f"- {OTHER_ACCOUNT}/{account.region}: its patch cycle ended FAILED in state {state}: {child.error}"
        in (message["Message"])
    )
    assert str(cause)[:200] in message["Message"]
    # The child still ran its ReportFailure (its metrics count the failure), which published nothing.
    assert any(run.function == "ReportFailureFunction" for run in child.function_runs)
    assert "sns:Publish" not in child.calls_by_function.get("ReportFailureFunction", {})


def test_a_patch_cycle_started_alone_still_sends_its_own_alert(account: SimulatedAccount) -> None:
    account.seed([instance("web", "sun-0200", name="a")])
    alerts = topic_queue(account)
    result = account.run_cycle({"target": {"account_id": OTHER_ACCOUNT, "region": account.region}})
    assert result.status == "FAILED"
    (message,) = cycle_alerts(alerts())
    assert message["Subject"].endswith("tagpatch cycle failed in Discovery")
    assert "sns:Publish" in result.calls_by_function["ReportFailureFunction"]


def test_an_org_cycle_role_that_may_not_start_the_patch_cycle_fails_each_target_loudly(
    account: SimulatedAccount,
) -> None:
    """states:StartExecution is checked under the org cycle's role, as AWS checks it."""
    without_statement(account, machine_role_name("OrgCycleStateMachine"), "StartTargetCycles")
    alerts = topic_queue(account)
    result = account.run_org_cycle({})
    assert result.status == "FAILED"
    (outcome,) = result.targets
    assert outcome["error"] == "StepFunctions.AWSStepFunctionsException"
    assert "is not authorized to perform: states:StartExecution" in outcome["reason"]
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
    without_statement(account, account.role_arn("SummarizeTargetsFunction").rsplit("/", 1)[1], "ReadTargetSnapshots")
    account.seed([instance("web", "sun-0200", name="a")])
    account.use_policy(
        policy_with_targets(tmp_path, {"accounts": [ACCOUNT_ID, OTHER_ACCOUNT], "regions": [account.region]})
    )
    alerts = topic_queue(account)
    result = account.run_org_cycle({})
    assert (result.status, result.org.error) == ("FAILED", "TargetsFailed")
    messages = {m["Subject"]: m["Message"] for m in alerts() if "org cycle" in m["Subject"]}
    assert set(messages) == {"tagpatch org cycle: 1 of 2 targets failed", "tagpatch org cycle: report.html not written"}
    body = messages["tagpatch org cycle: report.html not written"]
    assert "AccessDenied" in body and "compliance/snapshots/" in body
    assert "compliance/reports/latest/report.html" in body


def list_targets_app(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """functions/list_targets/app.py, for the cap it declares (its environment is read at import)."""
    monkeypatch.setenv("ARTIFACT_BUCKET", "tagpatch-artifacts")
    monkeypatch.setenv("PATCH_POLICY_PATH", str(REPO / "policy" / "patch-policy.yaml"))
    spec = importlib.util.spec_from_file_location("list_targets_app", REPO / "functions" / "list_targets" / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def failing_accounts(count: int) -> list[str]:
    """Account ids with no spoke: each target's cycle fails fast, at its first step that acts in it."""
    return [f"9{index:011d}" for index in range(count)]


def test_the_inline_target_cap_s_worst_case_fits_step_functions_payload_quota(
    account: SimulatedAccount, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two real org cycles that differ only in their number of targets, every target failing, under an
    80-character execution name (so each child's name is as long as it gets): the largest state's growth
    per target stays within the declared budget, and the cap's worst case fits the 256 KiB quota."""
    app = list_targets_app(monkeypatch)
    largest = {}
    for count in (1, 5):
        account.use_policy(
            policy_with_targets(
                tmp_path, {"accounts": failing_accounts(count), "regions": [account.region], "max_concurrency": 5}
            )
        )
        result = account.run_org_cycle({}, name=f"{count}" * 80)
        assert result.status == "FAILED" and result.org.error == "TargetsFailed"
        largest[count] = result.org.map_output_bytes
    per_target = (largest[5] - largest[1]) / 4
    assert 0 < per_target <= app.BYTES_PER_TARGET / 2, per_target  # the budget keeps room for the worst case
    rest = largest[1] - per_target  # this cycle's state beside its targets, with an empty org input
    assert rest <= app.ORG_STATE_BYTES
    worst = rest + app.MAX_ORG_INPUT_BYTES + app.MAX_INLINE_TARGETS * app.BYTES_PER_TARGET
    assert worst <= app.PAYLOAD_QUOTA_BYTES
    assert app.MAX_INLINE_TARGETS >= 200  # the design's 200 targets fit the inline Map


def test_many_targets_failing_with_long_causes_end_in_one_alert_not_a_data_limit(
    account: SimulatedAccount, tmp_path: Path
) -> None:
    """Every target failing at once (as when a spoke update breaks the roles), each child's description
    long with a 12 KiB input: the org cycle still ends FAILED with SummarizeTargets' one alert. Before the
    per-target state was bounded, each item and each caught cause copied the input, and this state passed
    Step Functions' 256 KiB (States.DataLimitExceeded, which no Catch takes: no alert at all)."""
    accounts = failing_accounts(24)
    account.use_policy(
        policy_with_targets(tmp_path, {"accounts": accounts, "regions": [account.region], "max_concurrency": 12})
    )
    alerts = topic_queue(account)
    long_input = {"mode": "plan", "patch_groups": [f"group-{index:03d}-" + "g" * 100 for index in range(110)]}
    assert 12 * 1024 < len(json.dumps(long_input)) < 16 * 1024
    result = account.run_org_cycle(long_input)
    assert (result.status, result.org.error) == ("FAILED", "TargetsFailed")
    assert result.org.map_output_bytes < 40 * 1024  # 24 targets' items and results beside the 12 KiB input
    (message,) = cycle_alerts(alerts())
    assert message["Subject"] == "tagpatch org cycle: 24 of 24 targets failed"
    for account_id in accounts:
        assert f"- {account_id}/{account.region}: its patch cycle ended FAILED in state Discovery" in message["Message"]


def test_accounts_skipped_under_the_policy_s_ous_do_not_grow_the_org_cycle_s_state(
    account: SimulatedAccount, tmp_path: Path
) -> None:
    """Closed accounts stay SUSPENDED in an organization for a while, and a policy naming the root lists
    every one: they are named in the summary and the alert from ListTargets' targets file, not carried in
    the org cycle's state, whose size the inline cap budgets per target only."""
    closed = [
        MemberAccount(
            f"8{index:011d}", f"closed-{index}", (account.region,), ou=("closed",), status="SUSPENDED", spoke=False
        )
        for index in range(40)
    ]
    organization = account.seed_accounts(closed)
    account.use_policy(
        policy_with_targets(
            tmp_path,
            {
                "accounts": failing_accounts(1),
                "organizational_units": [organization.root_id],
                "regions": [account.region],
            },
        )
    )
    alerts = topic_queue(account)
    result = account.run_org_cycle({})
    assert (result.status, result.org.error) == ("FAILED", "TargetsFailed")
    skipped_ids = {item.id for item in closed}
    state = json.dumps(result.org.output)
    assert not any(account_id in state for account_id in skipped_ids)  # not in the state the Fail state got
    assert result.org.map_output_bytes < 2 * 1024
    summary = summary_of(account, summary_key(account))
    assert {item["account_id"] for item in summary["skipped_accounts"]} == skipped_ids
    (message,) = cycle_alerts(alerts())
    assert all(f"{account_id} (SUSPENDED)" in message["Message"] for account_id in skipped_ids)


def test_a_summarize_targets_that_dies_is_told_to_the_alerts_topic_by_the_state_machine(
    account: SimulatedAccount,
) -> None:
    """A Lambda that dies (timeout, out of memory) cannot send its own alert: the org cycle's Catch
    publishes it from the state machine (sns:publish), under its role, to the encrypted alerts topic."""
    account.seed([instance("web", "sun-0200", name="a")])
    alerts = topic_queue(account)
    account.crash_after_writes("SummarizeTargetsFunction", 0, service="s3")
    result = account.run_org_cycle({})
    assert (result.status, result.org.error) == ("FAILED", "SummarizeTargetsFailed")
    (message,) = [m for m in alerts() if "org cycle" in m["Subject"]]
    assert message["Subject"] == "tagpatch org cycle: SummarizeTargets failed"
    assert result.org.execution_name in message["Message"]
    assert "SummarizeTargetsFunction died before s3:PutObject" in message["Message"]


def test_without_its_publish_grant_the_org_cycle_s_own_alert_is_refused(account: SimulatedAccount) -> None:
    """The org cycle's role needs sns:Publish on the alerts topic (and the key) for that alert: without
    it the task is refused as AWS refuses it, and nothing reaches the topic."""
    without_statement(account, machine_role_name("OrgCycleStateMachine"), "PublishAlerts")
    account.seed([instance("web", "sun-0200", name="a")])
    alerts = topic_queue(account)
    account.crash_after_writes("SummarizeTargetsFunction", 0, service="s3")
    result = account.run_org_cycle({})
    assert result.status == "FAILED"
    assert result.org.error == "SNS.AuthorizationErrorException"
    assert [m for m in alerts() if "org cycle" in m["Subject"]] == []


def test_an_org_report_not_written_while_every_target_succeeded_still_fails_the_org_cycle_with_one_alert(
    account: SimulatedAccount, tmp_path: Path
) -> None:
    """SummarizeTargets alerts that the page is missing and returns why; the org cycle then ends FAILED
    (OrgReportNotWritten) without the state machine's own alert for a SummarizeTargets that failed."""
    without_statement(account, account.role_arn("SummarizeTargetsFunction").rsplit("/", 1)[1], "ReadTargetSnapshots")
    payments = MemberAccount(
        "111111111111", "payments", (account.region,), instances=(instance("web", "sun-0200", name="pay-web-01"),)
    )
    account.seed([instance("web", "sun-0200", name="hub-web-01")])
    account.seed_accounts([payments])
    account.use_policy(policy_with_targets(tmp_path, {"accounts": [ACCOUNT_ID, payments.id]}))
    alerts = topic_queue(account)
    result = account.run_org_cycle({})
    assert [item["status"] for item in result.targets] == ["SUCCEEDED", "SUCCEEDED"]
    assert (result.status, result.org.error) == ("FAILED", "OrgReportNotWritten")
    (message,) = [m for m in alerts() if "org cycle" in m["Subject"]]
    assert message["Subject"] == "tagpatch org cycle: report.html not written"


def test_a_cycle_started_by_hand_with_an_org_child_s_input_alerts_itself(account: SimulatedAccount) -> None:
    """An operator re-running a failed target's cycle from the console copies its input, started-by key
    included; that org execution has ended and will send no alert, so this cycle sends its own."""
    account.seed([instance("web", "sun-0200", name="a")])
    org = account.run_org_cycle({})
    assert org.status == "SUCCEEDED"
    alerts = topic_queue(account)
    copied = {
        "target": {"account_id": OTHER_ACCOUNT, "region": account.region},
        "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": org.org.execution_arn,
    }
    result = account.run_cycle(copied)
    assert result.status == "FAILED"
    (message,) = cycle_alerts(alerts())
    assert message["Subject"].endswith("tagpatch cycle failed in Discovery")


def test_an_organization_past_its_row_limit_gets_the_summary_page_with_each_targets_own_page_linked(
    account: SimulatedAccount, tmp_path: Path
) -> None:
    """Past ORG_REPORT_MAX_ROWS instances (summed from the children's counts) SummarizeTargets writes the
    summary: each target's counts and a link to its own page, which its child wrote beside the
    organization's under both keys, and no instance row."""
    payments = MemberAccount(
        "111111111111",
        "payments",
        (account.region,),
        instances=(instance("web", "sun-0200", name="pay-web-01"), instance("web", "sun-0200", name="pay-web-02")),
    )
    account.seed([instance("web", "sun-0200", name="hub-web-01")])
    account.seed_accounts([payments])
    account.use_policy(policy_with_targets(tmp_path, {"accounts": [ACCOUNT_ID, payments.id]}))
    account.set_function_environment("SummarizeTargetsFunction", "ORG_REPORT_MAX_ROWS", "2")  # 3 instances
    result = account.run_org_cycle({})
    assert result.status == "SUCCEEDED", result.targets
    report_key = (result.org.output or {})["summary"]["report_key"]
    s3 = account.client("s3")
    # Home's child writes its page under a name of its own too, as its keys become the organization's.
    pages = {
        f"report-{payments.id}-{account.region}.html": ("pay-web-01", "pay-web-02"),
        f"report-{ACCOUNT_ID}-{account.region}.html": ("hub-web-01",),
    }
    for key in (report_key, "compliance/reports/latest/report.html"):
        page = s3.get_object(Bucket=account.artifact_bucket, Key=key)["Body"].read().decode()
        assert "Summary of 3 instances in 2 targets" in page
        assert "the organization has more instances than the 2 this page reads" in page
        assert "hub-web-01" not in page and "pay-web-01" not in page  # no instance row
        for name, instances in pages.items():
            assert f'<a href="{name}">{name}</a>' in page
            # The link resolves beside this key: the target's child wrote its own page there.
            linked = f"{key.rsplit('/', 1)[0]}/{name}"
            target_page = s3.get_object(Bucket=account.artifact_bucket, Key=linked)["Body"].read().decode()
            assert all(instance in target_page for instance in instances), name
