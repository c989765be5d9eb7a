"""Window runs in the simulated account, read back through the SSM API as a caller would."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tagpatch_local.simulator import executions, register_managed_instance

ACCOUNT, REGION = "123456789012", "us-east-1"
START = datetime(2026, 11, 29, 2, tzinfo=UTC)


def launch(count: int, *, group: str = "web", state: str = "running", ping: str = "Online") -> list[str]:
    ec2 = boto3.client("ec2", region_name=REGION)
    reservation = ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=count,
        MaxCount=count,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Patch Group", "Value": group}]}],
    )
    ids = [i["InstanceId"] for i in reservation["Instances"]]
    if state == "stopped":
        ec2.stop_instances(InstanceIds=ids)
    for instance_id in ids:
        register_managed_instance(
            ACCOUNT,
            REGION,
            instance_id,
            ping_status=ping,  # type: ignore[arg-type]
            platform_type="Linux",
            platform_name="Amazon Linux",
            platform_version="2023",
        )
    return ids


def profile(instance_id: str, **settings: Any) -> None:
    executions.set_patch_profile(
        ACCOUNT, REGION, instance_id, executions.PatchProfile(operating_system="AMAZON_LINUX_2023", **settings)
    )


def window_with_task(
    ssm: Any,
    *,
    operation: str = "Install",
    reboot: str = "RebootIfNeeded",
    schedule: str = "cron(0 2 ? * SUN *)",
    cutoff_behavior: str = "CONTINUE_TASK",
    **limits: str,
) -> tuple[str, str]:
    window_id = ssm.create_maintenance_window(
        Name="night", Schedule=schedule, Duration=3, Cutoff=1, AllowUnassociatedTargets=False
    )["WindowId"]
    target_id = ssm.register_target_with_maintenance_window(
        WindowId=window_id, ResourceType="INSTANCE", Targets=[{"Key": "tag:Patch Group", "Values": ["web"]}]
    )["WindowTargetId"]
    ssm.register_task_with_maintenance_window(
        WindowId=window_id,
        TaskType="RUN_COMMAND",
        TaskArn="AWS-RunPatchBaseline",
        Targets=[{"Key": "WindowTargetIds", "Values": [target_id]}],
        TaskInvocationParameters={"RunCommand": {"Parameters": {"Operation": [operation], "RebootOption": [reboot]}}},
        MaxConcurrency=limits.get("concurrency", "10"),
        MaxErrors=limits.get("errors", "10"),
        CutoffBehavior=cutoff_behavior,
    )
    return window_id, target_id


def run_to_end(window_id: str, selected: Mapping[str, Iterable[str]]) -> executions.WindowExecution:
    """Start a run at START and move the clock past its end (a run takes simulated time)."""
    from tagpatch_local.simulator import clock

    clock.set_now(ACCOUNT, REGION, START)
    run = executions.run_window(ACCOUNT, REGION, window_id, START, selected)
    executions.advance_clock(ACCOUNT, REGION, run.ended + timedelta(minutes=1))
    return run


def invocation_statuses(ssm: Any, command_id: str) -> dict[str, tuple[str, str]]:
    found = ssm.list_command_invocations(CommandId=command_id)["CommandInvocations"]
    return {i["InstanceId"]: (i["Status"], i["StatusDetails"]) for i in found}


def the_command(ssm: Any, window_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    (execution,) = ssm.describe_maintenance_window_executions(WindowId=window_id)["WindowExecutions"]
    (task,) = ssm.describe_maintenance_window_execution_tasks(WindowExecutionId=execution["WindowExecutionId"])[
        "WindowExecutionTaskIdentities"
    ]
    (invocation,) = ssm.describe_maintenance_window_execution_task_invocations(
        WindowExecutionId=execution["WindowExecutionId"], TaskId=task["TaskExecutionId"]
    )["WindowExecutionTaskInvocationIdentities"]
    return execution, invocation


def test_each_node_s_outcome_follows_its_state_and_profile(ssm: Any) -> None:
    ok, failing, hanging = launch(3)
    (stopped,) = launch(1, state="stopped")
    (offline,) = launch(1, ping="ConnectionLost")
    profile(ok, missing=6, critical=2)
    profile(failing, missing=3, result="failed")
    profile(hanging, missing=1, result="timeout")
    window_id, target_id = window_with_task(ssm)
    run_to_end(window_id, {target_id: [ok, failing, hanging, stopped, offline]})

    execution, invocation = the_command(ssm, window_id)
    assert execution["Status"] == "FAILED"
    assert invocation["WindowTargetId"] == target_id
    assert invocation_statuses(ssm, invocation["ExecutionId"]) == {
        ok: ("Success", "Success"),
        failing: ("Failed", "Failed"),
        hanging: ("TimedOut", "Execution Timed Out"),
        stopped: ("TimedOut", "Delivery Timed Out"),
        offline: ("Failed", "Undeliverable"),
    }
    states = {
        s["InstanceId"]: s
        for s in ssm.describe_instance_patch_states(InstanceIds=[ok, failing, hanging, stopped])["InstancePatchStates"]
    }
    assert set(states) == {ok, failing}  # nothing reported where the operation never finished
    assert (states[ok]["InstalledCount"], states[ok]["MissingCount"], states[ok]["Operation"]) == (6, 0, "Install")
    assert (states[failing]["FailedCount"], states[failing]["PatchGroup"]) == (3, "web")
    compliance = {
        item["ResourceId"]: item["Status"]
        for item in ssm.list_resource_compliance_summaries(Filters=[{"Key": "ComplianceType", "Values": ["Patch"]}])[
            "ResourceComplianceSummaryItems"
        ]
    }
    assert compliance == {ok: "COMPLIANT", failing: "NON_COMPLIANT"}


def test_undelivered_nodes_do_not_count_toward_max_errors(ssm: Any) -> None:
    ok = launch(2)
    stopped = launch(3, state="stopped")
    window_id, target_id = window_with_task(ssm, errors="0")
    run_to_end(window_id, {target_id: ok + stopped})
    _, invocation = the_command(ssm, window_id)
    assert invocation["StatusDetails"] == "Incomplete"  # undelivered, but MaxErrors 0 was not passed
    assert [s for s, _ in invocation_statuses(ssm, invocation["ExecutionId"]).values()].count("Success") == 2


def test_passing_max_errors_stops_the_remaining_batches(ssm: Any) -> None:
    nodes = launch(4)
    for node in nodes:
        profile(node, missing=2, result="failed")
    window_id, target_id = window_with_task(ssm, concurrency="1", errors="0")
    run_to_end(window_id, {target_id: nodes})
    execution, invocation = the_command(ssm, window_id)
    statuses = sorted(invocation_statuses(ssm, invocation["ExecutionId"]).values())
    assert statuses == [("Cancelled", "Terminated")] * 3 + [("Failed", "Failed")]
    assert (execution["Status"], invocation["Status"]) == ("FAILED", "FAILED")


def test_scan_reports_and_no_reboot_installs_wait_for_a_reboot(ssm: Any) -> None:
    (node,) = launch(1)
    profile(node, missing=4, critical=1)
    scan_window, scan_target = window_with_task(ssm, operation="Scan")
    run_to_end(scan_window, {scan_target: [node]})
    (state,) = ssm.describe_instance_patch_states(InstanceIds=[node])["InstancePatchStates"]
    assert (state["Operation"], state["MissingCount"], state["CriticalNonCompliantCount"]) == ("Scan", 4, 1)

    ssm.delete_maintenance_window(WindowId=scan_window)
    install_window, install_target = window_with_task(ssm, reboot="NoReboot")
    executions.run_window(ACCOUNT, REGION, install_window, START.replace(hour=3), {install_target: [node]})
    executions.advance_clock(ACCOUNT, REGION, START.replace(hour=4))
    (state,) = ssm.describe_instance_patch_states(InstanceIds=[node])["InstancePatchStates"]
    assert (state["MissingCount"], state["InstalledPendingRebootCount"], state["RebootOption"]) == (0, 4, "NoReboot")
    (group_state,) = ssm.describe_instance_patch_states_for_patch_group(PatchGroup="web")["InstancePatchStates"]
    assert group_state["InstanceId"] == node
    (summary,) = ssm.list_compliance_summaries()["ComplianceSummaryItems"]
    assert summary["CompliantSummary"]["CompliantCount"] == 1


def test_get_operations_agree_with_the_listings(ssm: Any) -> None:
    (node,) = launch(1)
    window_id, target_id = window_with_task(ssm)
    run = run_to_end(window_id, {target_id: [node]})
    got = ssm.get_maintenance_window_execution(WindowExecutionId=run.window_execution_id)
    assert got["Status"] == "SUCCESS" and len(got["TaskIds"]) == 1
    task = ssm.get_maintenance_window_execution_task(
        WindowExecutionId=run.window_execution_id, TaskId=got["TaskIds"][0]
    )
    assert (task["TaskArn"], task["Type"], task["MaxErrors"]) == ("AWS-RunPatchBaseline", "RUN_COMMAND", "10")


def test_advancing_the_clock_runs_every_due_window_with_targets_resolved_at_each_run(ssm: Any) -> None:
    from tagpatch_local.simulator import clock

    clock.set_now(ACCOUNT, REGION, datetime(2026, 11, 28, tzinfo=UTC))  # a Saturday
    (early,) = launch(1)
    window_id, _ = window_with_task(ssm)  # Sundays 02:00 UTC
    paused_id = ssm.create_maintenance_window(
        Name="paused", Schedule="rate(1 day)", Duration=2, Cutoff=1, AllowUnassociatedTargets=False
    )["WindowId"]
    ssm.update_maintenance_window(WindowId=paused_id, Enabled=False)

    first = executions.advance_clock(ACCOUNT, REGION, datetime(2026, 11, 30, tzinfo=UTC))
    assert [(e.window_id, e.started) for e in first] == [(window_id, datetime(2026, 11, 29, 2, tzinfo=UTC))]
    (late,) = launch(1)  # tagged into the group between two runs
    second = executions.advance_clock(ACCOUNT, REGION, datetime(2026, 12, 14, tzinfo=UTC))
    assert [e.started.day for e in second] == [6, 13]
    (invocation,) = second[0].tasks[0].invocations
    assert set(invocation_statuses(ssm, invocation.command_id)) == {early, late}
    assert clock.now(ACCOUNT, REGION) == datetime(2026, 12, 14, tzinfo=UTC)
    assert len(ssm.describe_maintenance_window_executions(WindowId=window_id)["WindowExecutions"]) == 3


def test_a_run_emits_the_aws_ssm_events_that_rules_match(ssm: Any) -> None:
    sqs, events = boto3.client("sqs", region_name=REGION), boto3.client("events", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="failed-windows")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="failed-windows",
        EventPattern=json.dumps(
            {
                "source": ["aws.ssm"],
                "detail-type": ["Maintenance Window Execution State-change Notification"],
                "detail": {"status": ["FAILED", "TIMED_OUT"]},
            }
        ),
    )
    events.put_targets(Rule="failed-windows", Targets=[{"Id": "queue", "Arn": queue_arn}])
    (node,) = launch(1)
    profile(node, missing=1, result="failed")
    window_id, target_id = window_with_task(ssm)
    run_to_end(window_id, {target_id: [node]})
    (message,) = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    detail = json.loads(message["Body"])["detail"]
    assert (detail["window-id"], detail["status"]) == (window_id, "FAILED")


def test_a_rule_delivers_to_an_sns_topic_only_when_the_topic_policy_lets_eventbridge_publish(ssm: Any) -> None:
    from tagpatch_local.simulator.events import FAILED_DELIVERIES

    sns, sqs, events = (boto3.client(s, region_name=REGION) for s in ("sns", "sqs", "events"))
    topic_arn = sns.create_topic(Name="alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    events.put_rule(Name="to-topic", EventPattern=json.dumps({"source": ["aws.ssm"]}))
    events.put_targets(Rule="to-topic", Targets=[{"Id": "topic", "Arn": topic_arn}])
    entry = {"Source": "aws.ssm", "DetailType": "test", "Detail": json.dumps({"n": 1})}
    from moto.events.models import events_backends

    FAILED_DELIVERIES.clear()
    events_backends[ACCOUNT][REGION].put_events([entry])  # the default topic policy names the account only
    assert "Messages" not in sqs.receive_message(QueueUrl=queue_url)
    assert [d.rule for d in FAILED_DELIVERIES] == ["to-topic"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": topic_arn,
            }
        ],
    }
    sns.set_topic_attributes(TopicArn=topic_arn, AttributeName="Policy", AttributeValue=json.dumps(policy))
    events_backends[ACCOUNT][REGION].put_events([entry])
    (message,) = sqs.receive_message(QueueUrl=queue_url)["Messages"]
    assert json.loads(json.loads(message["Body"])["Message"])["detail"] == {"n": 1}


def test_get_command_invocation_answers_for_a_window_run_command(ssm: Any) -> None:
    reached, stopped = launch(1)[0], launch(1, state="stopped", ping="ConnectionLost")[0]
    profile(reached, missing=2, result="failed")
    window_id, target_id = window_with_task(ssm)
    run_to_end(window_id, {target_id: [reached, stopped]})
    _, invocation = the_command(ssm, window_id)
    command_id = invocation["ExecutionId"]
    failed = ssm.get_command_invocation(CommandId=command_id, InstanceId=reached)
    assert (failed["Status"], failed["StatusDetails"], failed["ResponseCode"]) == ("Failed", "Failed", 1)
    assert failed["ExecutionStartDateTime"].startswith(START.strftime("%Y-%m-%dT%H:%M"))
    unreached = ssm.get_command_invocation(CommandId=command_id, InstanceId=stopped)
    assert (unreached["StatusDetails"], unreached["ResponseCode"]) == ("Delivery Timed Out", -1)
    assert "ExecutionStartDateTime" not in unreached
    with pytest.raises(ClientError) as missing:
        ssm.get_command_invocation(CommandId=command_id, InstanceId="i-0123456789abcdef0")
    assert missing.value.response["Error"]["Code"] == "InvocationDoesNotExist"


def test_next_execution_time_follows_the_clock_and_the_window_state(ssm: Any) -> None:
    from tagpatch_local.simulator import clock

    clock.set_now(ACCOUNT, REGION, START)
    window_id, _ = window_with_task(ssm)
    got = ssm.get_maintenance_window(WindowId=window_id)
    listed = {w["WindowId"]: w for w in ssm.describe_maintenance_windows()["WindowIdentities"]}
    schedule = ssm.describe_maintenance_window_schedule(WindowId=window_id)["ScheduledWindowExecutions"]
    assert got["NextExecutionTime"] == listed[window_id]["NextExecutionTime"] == schedule[0]["ExecutionTime"]
    ssm.update_maintenance_window(WindowId=window_id, Enabled=False)
    assert "NextExecutionTime" not in ssm.get_maintenance_window(WindowId=window_id)


@pytest.mark.parametrize("behaviour", ["CONTINUE_TASK", "CANCEL_TASK"])
def test_the_cutoff_stops_new_tasks_and_cancels_a_cancel_task_command(ssm: Any, behaviour: str) -> None:
    nodes = launch(30)  # one at a time, five simulated minutes each: 150 minutes, past the 2-hour cutoff
    window_id, target_id = window_with_task(ssm, concurrency="1", cutoff_behavior=behaviour)
    ssm.register_task_with_maintenance_window(
        WindowId=window_id,
        TaskType="RUN_COMMAND",
        TaskArn="AWS-RunPatchBaseline",
        Targets=[{"Key": "WindowTargetIds", "Values": [target_id]}],
        TaskInvocationParameters={"RunCommand": {"Parameters": {"Operation": ["Scan"]}}},
        Priority=2,
        MaxConcurrency="10",
        MaxErrors="1",
    )
    run = run_to_end(window_id, {target_id: nodes})

    (execution,) = ssm.describe_maintenance_window_executions(WindowId=window_id)["WindowExecutions"]
    assert execution["Status"] == "TIMED_OUT" and "cutoff" in execution["StatusDetails"]
    (task,) = run.tasks  # the priority-2 Scan would start after the cutoff: it never starts
    statuses = [s for s, _ in invocation_statuses(ssm, task.invocations[0].command_id).values()]
    if behaviour == "CANCEL_TASK":
        assert (statuses.count("Success"), statuses.count("Cancelled")) == (24, 6)
        assert task.status == "TIMED_OUT"
    else:
        assert statuses.count("Success") == 30
        assert task.status == "SUCCESS"


def test_a_run_due_while_the_previous_one_runs_is_skipped_overlapping(ssm: Any) -> None:
    from tagpatch_local.simulator import clock

    clock.set_now(ACCOUNT, REGION, START)
    nodes = launch(13)  # one at a time: 65 simulated minutes, longer than the hourly schedule
    window_id, _ = window_with_task(ssm, schedule="rate(1 hour)", concurrency="1")
    runs = executions.advance_clock(ACCOUNT, REGION, START.replace(hour=5, minute=30))

    assert [r.status for r in runs] == ["SUCCESS", "SKIPPED_OVERLAPPING", "SUCCESS"]
    listed = ssm.describe_maintenance_window_executions(WindowId=window_id)["WindowExecutions"]
    # The 05:00 run takes 65 minutes: at 05:30 it is still under way.
    assert [e["Status"] for e in listed] == ["IN_PROGRESS", "SKIPPED_OVERLAPPING", "SUCCESS"]
    assert not runs[1].tasks and len(nodes) == 13


# --- a run takes simulated time ---------------------------------------------------------------------


def at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


def move_to(minutes: int) -> None:
    executions.advance_clock(ACCOUNT, REGION, at(minutes))


def start_run(window_id: str, selected: Mapping[str, Iterable[str]]) -> str:
    from tagpatch_local.simulator import clock

    clock.set_now(ACCOUNT, REGION, START)
    executions.run_window(ACCOUNT, REGION, window_id, START, selected)
    (execution,) = executions.run_state(ACCOUNT, REGION).executions.values()
    return execution.tasks[0].invocations[0].command_id


def test_a_run_shows_what_ssm_shows_at_each_simulated_minute(ssm: Any) -> None:
    def compliance() -> dict[str, str]:
        found = ssm.list_resource_compliance_summaries(Filters=[{"Key": "ComplianceType", "Values": ["Patch"]}])
        return {item["ResourceId"]: item["Status"] for item in found["ResourceComplianceSummaryItems"]}

    first, second, third = sorted(launch(3))  # a command reaches its nodes in id order
    for node in (first, second, third):
        profile(node, missing=2)
    window_id, target_id = window_with_task(ssm, concurrency="1")
    command_id = start_run(window_id, {target_id: [first, second, third]})

    move_to(1)
    execution, invocation = the_command(ssm, window_id)
    assert (execution["Status"], invocation["Status"]) == ("IN_PROGRESS", "IN_PROGRESS")
    assert "EndTime" not in execution and "EndTime" not in invocation
    assert invocation_statuses(ssm, command_id) == {
        first: ("InProgress", "InProgress"),
        second: ("Pending", "Pending"),
        third: ("Pending", "Pending"),
    }
    running = ssm.get_command_invocation(CommandId=command_id, InstanceId=first)
    assert (running["Status"], running["ResponseCode"]) == ("InProgress", -1)
    assert "ExecutionEndDateTime" not in running
    # Patch state and compliance change only when an instance's invocation ends.
    assert ssm.describe_instance_patch_states(InstanceIds=[first])["InstancePatchStates"] == []
    assert compliance() == {}

    move_to(6)
    assert invocation_statuses(ssm, command_id)[first] == ("Success", "Success")
    assert invocation_statuses(ssm, command_id)[second] == ("InProgress", "InProgress")
    (state,) = ssm.describe_instance_patch_states(InstanceIds=[first, second])["InstancePatchStates"]
    assert (state["InstanceId"], state["OperationEndTime"]) == (first, at(5))
    assert compliance() == {first: "COMPLIANT"}

    move_to(15)
    execution, invocation = the_command(ssm, window_id)
    assert (execution["Status"], execution["EndTime"]) == ("SUCCESS", at(15))
    assert ssm.get_command_invocation(CommandId=command_id, InstanceId=third)["ExecutionStartDateTime"].startswith(
        at(10).strftime("%Y-%m-%dT%H:%M")
    )


def test_max_concurrency_ramps_up_one_two_four_and_max_errors_stops_new_targets(ssm: Any) -> None:
    nodes = launch(10)
    window_id, target_id = window_with_task(ssm, concurrency="4")
    command_id = start_run(window_id, {target_id: nodes})
    move_to(60)
    started = sorted(
        ssm.get_command_invocation(CommandId=command_id, InstanceId=node)["ExecutionStartDateTime"][11:16]
        for node in nodes
    )
    # One node, then two, then four at a time (MaxConcurrency), each taking five minutes.
    assert started == ["02:00", "02:05", "02:05", "02:10", "02:10", "02:10", "02:10", "02:15", "02:15", "02:15"]

    ssm.delete_maintenance_window(WindowId=window_id)
    failing = launch(6)
    for node in failing:
        profile(node, missing=1, result="failed")
    window_id, target_id = window_with_task(ssm, concurrency="2", errors="1")
    executions.run_window(ACCOUNT, REGION, window_id, at(60), {target_id: failing})
    move_to(61)
    assert (
        sorted(s for s, _ in invocation_statuses(ssm, the_command(ssm, window_id)[1]["ExecutionId"]).values())
        == ["InProgress"] + ["Pending"] * 5
    )
    move_to(120)
    statuses = sorted(invocation_statuses(ssm, the_command(ssm, window_id)[1]["ExecutionId"]).values())
    # The first fails (1 error, not past MaxErrors 1); the next two run and fail: no new targets after.
    assert statuses == [("Cancelled", "Terminated")] * 3 + [("Failed", "Failed")] * 3


@pytest.mark.parametrize(("behaviour", "expected"), [("CANCEL_TASK", "Cancelled"), ("CONTINUE_TASK", "Success")])
def test_cancel_task_cancels_a_running_invocation_at_the_cutoff(ssm: Any, behaviour: str, expected: str) -> None:
    (node,) = launch(1)
    profile(node, missing=3, minutes=150)  # runs past the cutoff two hours in
    window_id, target_id = window_with_task(ssm, cutoff_behavior=behaviour)
    command_id = start_run(window_id, {target_id: [node]})
    move_to(119)
    assert invocation_statuses(ssm, command_id)[node] == ("InProgress", "InProgress")
    move_to(151)
    assert invocation_statuses(ssm, command_id)[node] == (expected, expected)
    execution, _ = the_command(ssm, window_id)
    states = ssm.describe_instance_patch_states(InstanceIds=[node])["InstancePatchStates"]
    if behaviour == "CANCEL_TASK":
        assert (execution["Status"], execution["EndTime"], states) == ("TIMED_OUT", at(120), [])
    else:
        assert (execution["Status"], execution["EndTime"], len(states)) == ("SUCCESS", at(150), 1)


def test_an_unreachable_node_waits_out_the_delivery_timeout(ssm: Any) -> None:
    (stopped,) = launch(1, state="stopped")
    (offline,) = launch(1, ping="ConnectionLost")
    window_id, target_id = window_with_task(ssm)
    command_id = start_run(window_id, {target_id: [stopped, offline]})
    move_to(9)
    assert invocation_statuses(ssm, command_id) == {
        stopped: ("Pending", "Pending"),
        offline: ("Delayed", "Delayed"),
    }
    move_to(10)
    assert invocation_statuses(ssm, command_id) == {
        stopped: ("TimedOut", "Delivery Timed Out"),
        offline: ("Failed", "Undeliverable"),
    }


def test_state_change_events_fire_when_the_changes_happen(ssm: Any) -> None:
    sqs, events = boto3.client("sqs", region_name=REGION), boto3.client("events", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="changes")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="changes", EventPattern=json.dumps({"source": ["aws.ssm"]}))
    events.put_targets(Rule="changes", Targets=[{"Id": "queue", "Arn": queue_arn}])
    nodes = launch(2)
    window_id, target_id = window_with_task(ssm, concurrency="1")
    start_run(window_id, {target_id: nodes})

    def received() -> list[tuple[str, str]]:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return sorted((json.loads(m["Body"])["detail-type"], json.loads(m["Body"])["time"]) for m in messages)

    move_to(4)
    assert received() == []
    move_to(6)
    assert received() == [("EC2 Command Invocation Status-change Notification", "2026-11-29T02:05:00Z")]
    move_to(10)
    assert [kind for kind, moment in received() if moment == "2026-11-29T02:10:00Z"] == [
        "EC2 Command Invocation Status-change Notification",
        "EC2 Command Status-change Notification",
        "Maintenance Window Execution State-change Notification",
        "Maintenance Window Task Execution State-change Notification",
        "Maintenance Window Task Target Invocation State-change Notification",
    ]


def test_a_scan_takes_less_simulated_time_than_an_install_unless_the_profile_says(ssm: Any) -> None:
    """So a daily Scan window (2 hours, cutoff 1) with 10% MaxConcurrency finishes before its cutoff:
    13 waves for 100 nodes (1, 2, 4, then 10 at a time) at 5 minutes each would be cut off at 60."""
    nodes = launch(100)
    window_id, target_id = window_with_task(ssm, operation="Scan", concurrency="10%", cutoff_behavior="CANCEL_TASK")
    run = run_to_end(window_id, {target_id: nodes})
    assert (run.status, run.ended - START) == ("SUCCESS", timedelta(minutes=13 * executions.RUN_MINUTES["Scan"]))
    ssm.delete_maintenance_window(WindowId=window_id)
    (slow,) = launch(1)
    profile(slow, minutes=7)
    window_id, target_id = window_with_task(ssm, operation="Scan")
    executions.run_window(ACCOUNT, REGION, window_id, at(180), {target_id: [slow]})
    assert executions.run_state(ACCOUNT, REGION).executions[
        next(reversed(executions.run_state(ACCOUNT, REGION).executions))
    ].ended == at(187)
