"""Workflow-level safety through the real state machine: one cycle at a time, no silent success,
ownership inside a window, an operator's pause, and the safety limit for registrations."""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tagpatch.lease import LEASE_KEY, LEASE_SECONDS
from tagpatch_local import simulator
from tagpatch_local.report import summary_document
from tagpatch_local.runner import SimulatedAccount, execution_history, state_at_failure

from .support import instance, registrations, reported, run_ok, ssm_windows, topic_queue, window_targets

REPO = Path(__file__).resolve().parents[2]
SSM_WRITES = ("ssm:Create", "ssm:Update", "ssm:Delete", "ssm:Register", "ssm:Deregister", "ssm:AddTags")


def metric_values(log: str, name: str) -> list[float]:
    """Values of one metric in the Embedded Metric Format lines the handlers printed."""
    values: list[float] = []
    for line in log.splitlines():
        if '"_aws"' not in line:
            continue
        document = json.loads(line)
        value = document.get(name)
        if value is not None:
            values.extend(float(item) for item in (value if isinstance(value, list) else [value]))
    return values


def ssm_write_count(account: SimulatedAccount, before: dict[str, Counter[str]]) -> int:
    after = account.recorder.snapshot()
    return sum(
        count - before.get(function, Counter())[call]
        for function, calls in after.items()
        for call, count in calls.items()
        if call.startswith(SSM_WRITES)
    )


# --- one cycle at a time ---------------------------------------------------------------------------------


def test_two_executions_started_at_once_reconcile_once(account: SimulatedAccount) -> None:
    account.seed([instance("web", "sun-0200"), instance("db", "tue-2330", os="UBUNTU"), instance("app", "scan-daily")])
    sfn = account.client("stepfunctions")
    arns = [
        sfn.start_execution(stateMachineArn=account.state_machine_arn, name=name, input="{}")["executionArn"]
        for name in ("scheduled", "manual")
    ]
    deadline = time.monotonic() + 600
    while any(sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" for arn in arns):
        assert time.monotonic() < deadline, "executions still running"
        time.sleep(0.05)
    ended = {arn: sfn.describe_execution(executionArn=arn) for arn in arns}
    assert sorted(description["status"] for description in ended.values()) == ["FAILED", "SUCCEEDED"]
    (loser,) = [description for description in ended.values() if description["status"] == "FAILED"]
    (winner,) = [description for description in ended.values() if description["status"] == "SUCCEEDED"]
    assert loser["error"] == "CycleAlreadyRunning"
    assert winner["name"] in loser["cause"]
    # The loser stopped in PrepareCycle, before it read or wrote anything.
    entered = [
        event["stateEnteredEventDetails"]["name"]
        for event in execution_history(sfn, loser["executionArn"])
        if event["type"].endswith("StateEntered")
    ]
    assert entered == ["PrepareCycle"]
    # Nothing duplicated: one window per name, one target per tag key, one task each.
    names = [w["Name"] for w in account.client("ssm").describe_maintenance_windows()["WindowIdentities"]]
    assert sorted(names) == sorted(set(names)) and len(names) == 3
    for window in ssm_windows(account).values():
        targets = window_targets(account, window["WindowId"])
        assert len(targets) == len({t["Name"] for t in targets}) == 1
        tasks = account.client("ssm").describe_maintenance_window_tasks(WindowId=window["WindowId"])["Tasks"]
        assert len(tasks) == 1
    assert len(registrations(account)) == 3
    # And the winner left the account as a clean run does: a rerun writes nothing.
    before = account.recorder.snapshot()
    run_ok(account)
    assert ssm_write_count(account, before) == 0


def _run_together(account: SimulatedAccount, names: tuple[str, ...]) -> dict[str, Any]:
    sfn = account.client("stepfunctions")
    arns = [
        sfn.start_execution(stateMachineArn=account.state_machine_arn, name=name, input="{}")["executionArn"]
        for name in names
    ]
    deadline = time.monotonic() + 600
    while any(sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" for arn in arns):
        assert time.monotonic() < deadline, "executions still running"
        time.sleep(0.05)
    return {arn: sfn.describe_execution(executionArn=arn) for arn in arns}


def test_two_starts_whose_listings_lag_still_let_exactly_one_cycle_through(account: SimulatedAccount) -> None:
    # ListExecutions is eventually consistent: the schedule's retry can start a second execution that
    # neither lists the first nor is listed by it. The cycle lease in S3 still lets only one through.
    account.seed([instance("web", "sun-0200"), instance("db", "tue-2330", os="UBUNTU")])
    account.lag_execution_listings(3600)
    ended = _run_together(account, ("scheduled", "scheduled-retry"))
    assert sorted(description["status"] for description in ended.values()) == ["FAILED", "SUCCEEDED"]
    (loser,) = [description for description in ended.values() if description["status"] == "FAILED"]
    (winner,) = [description for description in ended.values() if description["status"] == "SUCCEEDED"]
    assert loser["error"] == "CycleAlreadyRunning"
    assert winner["name"] in loser["cause"]
    entered = [
        event["stateEnteredEventDetails"]["name"]
        for event in execution_history(account.client("stepfunctions"), loser["executionArn"])
        if event["type"].endswith("StateEntered")
    ]
    assert entered == ["PrepareCycle"]
    names = [w["Name"] for w in account.client("ssm").describe_maintenance_windows()["WindowIdentities"]]
    assert sorted(names) == sorted(set(names)) and len(names) == 2
    # The winner released the lease at its end, so the next cycle runs (and writes nothing).
    before = account.recorder.snapshot()
    run_ok(account)
    assert ssm_write_count(account, before) == 0


def test_a_failed_cycle_releases_the_lease(account: SimulatedAccount) -> None:
    account.seed([instance("web", "sun-0200")])
    account.fail_next("ec2", "DescribeInstances", code="UnauthorizedOperation", status=403, times=1)
    failed = account.run_cycle()
    assert failed.status == "FAILED" and failed.error != "CycleAlreadyRunning"
    account.clear_faults()
    run_ok(account)


def test_an_execution_started_after_the_first_one_ended_runs(account: SimulatedAccount) -> None:
    account.seed([instance("web", "sun-0200")])
    run_ok(account)
    run_ok(account)  # the first one is no longer RUNNING, so it does not block


def test_owned_windows_that_share_a_name_are_reduced_to_one_and_reported(account: SimulatedAccount) -> None:
    account.seed([instance("web", "sun-0200")])
    run_ok(account)
    ssm = account.client("ssm")
    (kept,) = ssm_windows(account).values()
    # What a past race leaves: a second owned window of the same name, with its own target and task.
    duplicate = ssm.create_maintenance_window(
        Name="tagpatch-sun-0200",
        Schedule="cron(0 2 ? * SUN *)",
        Duration=3,
        Cutoff=1,
        AllowUnassociatedTargets=False,
        Tags=[{"Key": "tagpatch:managed", "Value": "true"}],
    )["WindowId"]
    result = run_ok(account)
    remaining = [w for w in ssm.describe_maintenance_windows()["WindowIdentities"] if w["Name"] == "tagpatch-sun-0200"]
    survivor = min(kept["WindowId"], duplicate)
    assert [w["WindowId"] for w in remaining] == [survivor]
    (problem,) = [p for p in reported(account, result) if p["reason"].startswith("duplicate:")]
    assert max(kept["WindowId"], duplicate) in problem["reason"]


# --- no silent success -------------------------------------------------------------------------------------


def test_a_window_ssm_rejects_ends_the_cycle_failed_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    log = io.StringIO()
    with SimulatedAccount(REPO / "template.yaml", log_stream=log) as account:
        drain = topic_queue(account)
        monkeypatch.setattr(simulator.quotas, "MAX_TARGETS_PER_WINDOW", 1)
        # sun-0200 needs two targets (both tag keys), which SSM now refuses; tue-2330 needs one.
        account.seed(
            [instance("web", "sun-0200"), instance("web", "sun-0200", key="PatchGroup"), instance("db", "tue-2330")]
        )
        result = account.run_cycle()
        assert (result.status, result.error) == ("FAILED", "WindowChangesRejected")
        # Everything else was applied: the other window, and the registrations after the Map.
        tue = ssm_windows(account)["tagpatch-tue-2330"]
        assert len(window_targets(account, tue["WindowId"])) == 1
        assert len(registrations(account)) == 2
        # The alert names the window and SSM's reason; the alarms on the metrics the failed cycle
        # emitted (ChangesRejected, AWS/States ExecutionsFailed) notify the same topic.
        messages = drain()
        (alert,) = [m for m in messages if not m["Subject"].startswith("ALARM")]
        raised = sorted(json.loads(m["Message"])["AlarmName"] for m in messages if m["Subject"].startswith("ALARM"))
        assert raised == ["tagpatch-local-ChangesRejectedAlarm", "tagpatch-local-CycleFailedAlarm"]
        assert alert["Subject"] == "tagpatch cycle failed in ApplyWindowChanges"
        assert "Error: WindowChangesRejected" in alert["Message"]
        rejected = [line for line in alert["Message"].splitlines() if line.startswith("- tagpatch-sun-0200: ")]
        assert len(rejected) == 1 and "ResourceLimitExceededException" in rejected[0]
        # The metric the ChangesRejectedAlarm watches.
        assert metric_values(log.getvalue(), "ChangesRejected") == [1.0]
        # The run's report keeps what was done and names what was not.
        summary = summary_document(account, result, [])
        assert summary["execution"]["status"] == "FAILED"
        windows = [f for f in summary["failures"] if f["kind"] == "window"]
        assert [(f["name"], f["error"]) for f in windows] == [("tagpatch-sun-0200", "WindowChangeRejected")]
        assert "ResourceLimitExceededException" in windows[0]["reason"]
        assert summary["changes"]["registration"]["created"] == 2


def test_a_clean_cycle_publishes_nothing_and_counts_no_rejection() -> None:
    log = io.StringIO()
    with SimulatedAccount(REPO / "template.yaml", log_stream=log) as account:
        drain = topic_queue(account)
        account.seed([instance("web", "sun-0200")])
        result = run_ok(account)
        assert drain() == []
        assert metric_values(log.getvalue(), "ChangesRejected") == []
        assert summary_document(account, result, [])["failures"] == []


def test_state_at_failure_is_what_the_fail_state_received() -> None:
    events = [
        {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "A", "input": "{}"}},
        {"type": "FailStateEntered", "stateEnteredEventDetails": {"name": "F", "input": '{"x": 1}'}},
    ]
    assert state_at_failure(events) == {"x": 1}
    assert state_at_failure(events[:1]) is None


# --- ownership inside a window, pause, safety limit for registrations --------------------------------------


def test_a_window_holding_someone_elses_members_is_kept_and_only_tagpatchs_are_removed(
    account: SimulatedAccount,
) -> None:
    account.seed([instance("web", "sun-0200", name="a"), instance("db", "tue-2330", name="b")])
    run_ok(account)
    ssm = account.client("ssm")
    tue = ssm_windows(account)["tagpatch-tue-2330"]
    theirs = ssm.register_target_with_maintenance_window(
        WindowId=tue["WindowId"], ResourceType="INSTANCE", Targets=[{"Key": "InstanceIds", "Values": ["i-0abc"]}]
    )["WindowTargetId"]
    ec2 = account.client("ec2")
    (reservation,) = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["b"]}])["Reservations"]
    ec2.terminate_instances(InstanceIds=[reservation["Instances"][0]["InstanceId"]])

    result = run_ok(account)
    assert "tagpatch-tue-2330" in ssm_windows(account)
    assert [t["WindowTargetId"] for t in window_targets(account, tue["WindowId"])] == [theirs]
    assert ssm.describe_maintenance_window_tasks(WindowId=tue["WindowId"])["Tasks"] == []
    (problem,) = [p for p in reported(account, result) if p["name"] == "tagpatch-tue-2330"]
    assert "which tagpatch did not register" in problem["reason"]


def test_a_window_an_operator_paused_stays_paused(account: SimulatedAccount, tmp_path: Path) -> None:
    account.seed([instance("web", "sun-0200")])
    run_ok(account)
    ssm = account.client("ssm")
    window_id = ssm_windows(account)["tagpatch-sun-0200"]["WindowId"]
    ssm.update_maintenance_window(WindowId=window_id, Enabled=False)
    # A policy edit that updates the window must not enable it again.
    policy = (REPO / "policy" / "patch-policy.yaml").read_text()
    edited = tmp_path / "policy.yaml"
    edited.write_text(
        policy.replace(
            "    duration_hours: 3\n    cutoff_hours: 1\n", "    duration_hours: 4\n    cutoff_hours: 1\n", 1
        )
    )
    account.use_policy(edited)

    result = run_ok(account)
    window = ssm.get_maintenance_window(WindowId=window_id)
    assert (window["Duration"], window["Enabled"]) == (4, False)
    assert any(p["reason"].startswith("paused: ") for p in reported(account, result))


def test_a_mass_untag_does_not_deregister_every_patch_group(account: SimulatedAccount) -> None:
    groups = [f"g{i}" for i in range(4)]
    account.seed([instance(group, "sun-0200", name=group) for group in groups])
    run_ok(account)
    assert len(registrations(account)) == 4
    ec2 = account.client("ec2")
    for group in groups:
        (reservation,) = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": [group]}])["Reservations"]
        ec2.delete_tags(Resources=[reservation["Instances"][0]["InstanceId"]], Tags=[{"Key": "Patch Group"}])

    blocked = run_ok(account)
    assert len(registrations(account)) == 4
    assert any(p["kind"] == "registration" and "safety limit" in p["reason"] for p in reported(account, blocked))
    run_ok(account, {"allow_mass_deletion": True})
    assert registrations(account) == {}


# --- a blocked window is never silent (issue #21) -------------------------------------------------------


def test_a_window_whose_name_is_taken_by_someone_else_is_a_counted_shortfall_named_in_the_summary() -> None:
    log = io.StringIO()
    with SimulatedAccount(REPO / "template.yaml", log_stream=log) as account:
        account.client("ssm").create_maintenance_window(
            Name="tagpatch-sun-0200",
            Schedule="cron(0 2 ? * SUN *)",
            Duration=2,
            Cutoff=1,
            AllowUnassociatedTargets=True,
        )
        account.seed([instance("web", "sun-0200", name="a"), instance("db", "tue-2330", name="b")])
        drain = topic_queue(account)
        result = run_ok(account)
        assert metric_values(log.getvalue(), "PlanShortfalls") == [1.0]
        # The alarm reaches the alerts topic, saying what kind of block it counts.
        (alarm,) = [json.loads(message["Message"]) for message in drain() if "PlanShortfalls" in message["Message"]]
        assert (
            alarm["NewStateValue"] == "ALARM"
            and "a window tagpatch does not own holds its name" in (alarm["AlarmDescription"])
        )
        assert result.output is not None and result.output["windows"]["blocked_windows"] == 1
        summary = summary_document(account, result, [])
        (blocked,) = summary["blocked_windows"]
        assert blocked["name"] == "tagpatch-sun-0200" and "not tagged tagpatch:managed=true" in blocked["reason"]


def shortfall_alerts(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """WindowUpsert's alerts among the alerts topic's messages (not the alarms' notifications)."""
    return [message for message in messages if message.get("Subject", "").startswith("tagpatch cycle left work undone")]


def test_a_blocked_window_is_named_in_an_alert_each_cycle_until_it_is_resolved() -> None:
    with SimulatedAccount(REPO / "template.yaml") as account:
        ssm = account.client("ssm")
        taken = ssm.create_maintenance_window(
            Name="tagpatch-sun-0200",
            Schedule="cron(0 2 ? * SUN *)",
            Duration=2,
            Cutoff=1,
            AllowUnassociatedTargets=True,
        )["WindowId"]
        account.seed([instance("web", "sun-0200", name="a"), instance("db", "tue-2330", name="b")])
        drain = topic_queue(account)
        for _ in range(2):  # the block persists, and so does the alert: once per cycle
            run_ok(account)
            (alert,) = shortfall_alerts(drain())
            assert alert["Subject"] == "tagpatch cycle left work undone: 1 maintenance window(s) blocked"
            (line,) = [line for line in alert["Message"].splitlines() if line.startswith("- tagpatch-sun-0200: ")]
            assert "name taken" in line and taken in line and "not tagged tagpatch:managed=true" in line
            assert "rename or delete the window that holds the name" in alert["Message"]
            assert "tagpatch-tue-2330" not in alert["Message"]  # created as asked: nothing to say
        ssm.delete_maintenance_window(WindowId=taken)
        run_ok(account)  # the name is free: the window is created, and the cycle falls short of nothing
        assert shortfall_alerts(drain()) == []
        assert "tagpatch-sun-0200" in ssm_windows(account)


def test_windows_the_safety_limit_keeps_are_each_a_counted_shortfall(account: SimulatedAccount) -> None:
    keep = instance("web", "sun-0200")
    others = [instance(f"g{i}", f"cron(0 {i} ? * MON *)", name=f"gone-{i}") for i in range(4)]
    account.seed([keep, *others])
    drain = topic_queue(account)
    run_ok(account)
    ec2 = account.client("ec2")
    names = {f"gone-{i}" for i in range(4)}
    gone = [
        item["InstanceId"]
        for reservation in ec2.describe_instances()["Reservations"]
        for item in reservation["Instances"]
        if {tag["Key"]: tag["Value"] for tag in item.get("Tags", [])}.get("Name") in names
    ]
    ec2.terminate_instances(InstanceIds=gone)
    blocked = run_ok(account)
    assert blocked.output is not None and blocked.output["windows"]["blocked_windows"] == 4
    summary = summary_document(account, blocked, [])
    assert len(summary["blocked_windows"]) == 4
    assert all("safety limit" in item["reason"] for item in summary["blocked_windows"])
    # The alert names each window held back and says how to let the deletions go ahead.
    (alert,) = shortfall_alerts(drain())
    held = {item["name"] for item in summary["blocked_windows"]}
    listed = {line.split(":")[0].removeprefix("- ") for line in alert["Message"].splitlines() if line.startswith("- ")}
    assert held <= listed and len(held) == 4
    assert all(f"- {name}: safety limit: its deletion is held back" in alert["Message"] for name in held)
    assert '{"allow_mass_deletion": true}' in alert["Message"]
    run_ok(account, {"allow_mass_deletion": True})
    assert shortfall_alerts(drain()) == []


def test_an_operators_tagpatch_backup_task_survives_in_an_owned_window(account: SimulatedAccount) -> None:
    account.seed([instance("web", "sun-0200", name="a")])
    run_ok(account)
    ssm = account.client("ssm")
    window_id = ssm_windows(account)["tagpatch-sun-0200"]["WindowId"]
    (target,) = window_targets(account, window_id)
    backup = ssm.register_task_with_maintenance_window(
        WindowId=window_id,
        Name="tagpatch-backup",
        Description="tagpatch backup of /data",
        TaskArn="AWS-RunShellScript",
        TaskType="RUN_COMMAND",
        Targets=[{"Key": "WindowTargetIds", "Values": [target["WindowTargetId"]]}],
        TaskInvocationParameters={"RunCommand": {"Parameters": {"commands": ["backup /data"]}}},
        MaxConcurrency="1",
        MaxErrors="1",
    )["WindowTaskId"]
    rerun = run_ok(account)
    tasks = {t["WindowTaskId"]: t["Name"] for t in ssm.describe_maintenance_window_tasks(WindowId=window_id)["Tasks"]}
    assert tasks[backup] == "tagpatch-backup"
    assert [call for call in rerun.write_calls if call.startswith(SSM_WRITES)] == []  # and nothing else changed


def test_a_crashed_cycle_s_lease_blocks_until_it_expires_then_is_taken_over(account: SimulatedAccount) -> None:
    # An execution that ended without releasing (stopped, timed out) leaves its lease; the next cycles
    # are refused until the lease expires at that execution's start plus the state machine's timeout.
    account.seed([instance("web", "sun-0200")])
    crashed_at = account.now()
    lease = {
        "execution_id": f"{account.state_machine_arn.replace(':stateMachine:', ':execution:')}:crashed",
        "taken": crashed_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "expires": (crashed_at + timedelta(seconds=LEASE_SECONDS)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    account.client("s3").put_object(Bucket=account.artifact_bucket, Key=LEASE_KEY, Body=json.dumps(lease))
    account.set_clock(crashed_at + timedelta(hours=1))
    refused = account.run_cycle()
    assert (refused.status, refused.error) == ("FAILED", "CycleAlreadyRunning")
    assert "crashed" in (refused.cause or "")
    account.set_clock(crashed_at + timedelta(seconds=LEASE_SECONDS, minutes=1))
    run_ok(account)  # takes the expired lease over, and releases it at its end
    run_ok(account)
