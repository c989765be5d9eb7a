"""Pre-patch reminders through the real ASL: kept as Scheduler schedules, fired by the simulated clock,
delivered through SNS to the right team only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tagpatch_local.fleet import FleetInstance
from tagpatch_local.runner import ACCOUNT_ID, SimulatedAccount
from tagpatch_local.simulator import scheduler

from .support import REPO, run_ok

WEDNESDAY = datetime(2026, 11, 25, 12, tzinfo=UTC)
SUNDAY_2AM = datetime(2026, 11, 29, 2, tzinfo=UTC)
SCHEDULER_WRITES = {"scheduler:CreateSchedule", "scheduler:DeleteSchedule"}


def node(name: str, owner: str, group: str, window: str) -> FleetInstance:
    tags = {"Name": name, "Owner": owner, "Patch Group": group, "Maintenance Window": window}
    return FleetInstance(tags=MappingProxyType(tags), os="AMAZON_LINUX_2023")


@pytest.fixture
def account() -> Iterator[SimulatedAccount]:
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.set_clock(WEDNESDAY)
        account.seed(
            [
                node("web-1", "team-web", "web-prod", "sun-0200"),
                node("web-2", "team-web", "web-prod", "sun-0200"),
                node("db-1", "team-data", "db-prod", "cron(0 3 ? * SUN *)"),
            ]
        )
        yield account


def schedules(account: SimulatedAccount) -> dict[str, dict[str, Any]]:
    client, group = account.client("scheduler"), account.physical_id("ReminderScheduleGroup")
    names = [s["Name"] for s in client.list_schedules(GroupName=group)["Schedules"]]
    return {name: client.get_schedule(Name=name, GroupName=group) for name in names}


def output(result: Any) -> dict[str, Any]:
    """PrePatchNotification's part of the cycle's output."""
    assert result.output is not None
    reminders: dict[str, Any] = result.output["reminders"]
    return reminders


def scheduler_writes(result: Any) -> set[str]:
    return set(result.calls_by_function.get("PrePatchNotificationFunction", {})) & SCHEDULER_WRITES


def instance_id(account: SimulatedAccount, name: str) -> str:
    found = account.client("ec2").describe_instances(Filters=[{"Name": "tag:Name", "Values": [name]}])
    return str(found["Reservations"][0]["Instances"][0]["InstanceId"])


def test_reminders_are_kept_reconciled_and_delivered_to_their_team_only(account: SimulatedAccount) -> None:
    first = run_ok(account)
    assert output(first)["counts"] == {"create": 6, "delete": 0, "unchanged": 0, "foreign": 0}
    found = schedules(account)
    assert len(found) == 6
    web_72h = next(s for s in found.values() if "202611290200-72h" in s["Name"])
    assert web_72h["ScheduleExpression"] == "at(2026-11-26T02:00:00)"
    assert web_72h["ScheduleExpressionTimezone"] == "UTC"
    assert web_72h["ActionAfterCompletion"] == "DELETE"
    assert web_72h["FlexibleTimeWindow"] == {"Mode": "OFF"}
    target = web_72h["Target"]
    assert target["Arn"] == "arn:aws:scheduler:::aws-sdk:sns:publish"
    assert target["RoleArn"] == account._resolve("ReminderRole", "Arn")
    assert target["DeadLetterConfig"]["Arn"] == account._resolve("ReminderDeadLetterQueue", "Arn")
    publish = json.loads(target["Input"])
    assert publish["TopicArn"] == account.physical_id("NotificationsTopic")
    assert json.loads(publish["MessageAttributes"]["owner"]["StringValue"]) == ["team-web"]

    # A rerun with nothing changed writes no schedule.
    account.advance(timedelta(hours=1))
    rerun = run_ok(account)
    assert output(rerun)["counts"]["unchanged"] == 6
    assert scheduler_writes(rerun) == set()

    # Someone else's schedule in the group is never touched.
    account.client("scheduler").create_schedule(
        Name="someone-elses",
        GroupName=account.physical_id("ReminderScheduleGroup"),
        ScheduleExpression="at(2026-12-24T00:00:00)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": "arn:aws:scheduler:::aws-sdk:sns:publish", "RoleArn": target["RoleArn"], "Input": "{}"},
    )
    # A tag moves web-2 to the 03:00 window: both windows' reminders change. Plan mode lists it and writes none.
    account.client("ec2").create_tags(
        Resources=[instance_id(account, "web-2")], Tags=[{"Key": "Maintenance Window", "Value": "cron(0 3 ? * SUN *)"}]
    )
    planned = run_ok(account, {"mode": "plan"})
    assert output(planned)["counts"] == {"create": 6, "delete": 6, "unchanged": 0, "foreign": 1}
    assert scheduler_writes(planned) == set()
    assert len(schedules(account)) == 7
    moved = run_ok(account)
    assert output(moved)["counts"]["delete"] == 6
    assert "someone-elses" in schedules(account)
    assert len(schedules(account)) == 7

    # The clock fires the reminders due before Sunday 01:30; each team gets only those naming it:
    # team-web all of the 02:00 window's and, since web-2 moved, the 03:00 window's; team-data only the latter.
    account.advance(SUNDAY_2AM - account.now() - timedelta(minutes=30))
    delivered = account.drain_owner_notifications()
    assert {owner: len(messages) for owner, messages in delivered.items()} == {"team-data": 2, "team-web": 5}
    for owner, messages in delivered.items():
        for message in messages:
            assert owner in json.loads(message["attributes"]["owner"])
            assert owner in message["message"]["owners"]
    web_first = delivered["team-web"][0]["message"]
    assert (web_first["window_start"], web_first["lead_hours"], web_first["instances"]) == (
        "2026-11-29T02:00:00Z",
        72,
        1,
    )
    assert [m["message"]["instances"] for m in delivered["team-data"]] == [2, 2]
    # Delivered one-time schedules are deleted: left are the 03:00 window's 1-hour reminder and the foreign one.
    left = sorted(schedules(account))
    assert len(left) == 2 and left[0] == "someone-elses" and "-202611290300-1h-" in left[1]
    assert all(d.delivered for d in scheduler.deliveries(ACCOUNT_ID, account.region))


def test_a_reminder_the_role_may_not_publish_goes_to_the_dead_letter_queue(account: SimulatedAccount) -> None:
    run_ok(account)
    iam = account.client("iam")
    role = account.physical_id("ReminderRole")
    document = json.loads(
        json.dumps(iam.get_role_policy(RoleName=role, PolicyName="publish-reminders")["PolicyDocument"])
    )
    document["Statement"] = [s for s in document["Statement"] if s["Sid"] != "PublishReminders"]
    iam.put_role_policy(RoleName=role, PolicyName="publish-reminders", PolicyDocument=json.dumps(document))
    account.advance(timedelta(days=1))  # the two 72-hour reminders fall due
    failed = [d for d in scheduler.deliveries(ACCOUNT_ID, account.region) if not d.delivered]
    assert len(failed) == 2 and all("AuthorizationError" in str(d.error) for d in failed)
    sqs = account.client("sqs")
    url = account.physical_id("ReminderDeadLetterQueue")
    dead = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])["Messages"]
    assert len(dead) == 2
    assert dead[0]["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "AuthorizationError"
    assert account.drain_owner_notifications() == {"team-data": [], "team-web": []}


def test_a_reminder_whose_topic_key_does_not_admit_the_role_goes_to_the_dead_letter_queue(
    account: SimulatedAccount,
) -> None:
    # Scheduler publishes with the role's identity policy AND the topic key's policy: the role's own
    # kms:GenerateDataKey grant counts only while the key policy delegates to the account.
    run_ok(account)
    kms = account.client("kms")
    key = account.physical_id("AlertsKey")
    policy = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    (delegation,) = [s for s in policy["Statement"] if s["Sid"] == "AccountAdministers"]
    delegation["Principal"] = {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:role/key-administrator"}
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))
    sqs, sns = account.client("sqs"), account.client("sns")
    operators = sqs.create_queue(QueueName="operators")["QueueUrl"]
    operators_arn = sqs.get_queue_attributes(QueueUrl=operators, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=account.physical_id("AlertsTopic"), Protocol="sqs", Endpoint=operators_arn)
    account.advance(timedelta(days=1))  # the two 72-hour reminders fall due
    failed = [d for d in scheduler.deliveries(ACCOUNT_ID, account.region) if not d.delivered]
    assert len(failed) == 2 and all("KMSAccessDenied" in str(d.error) for d in failed)
    # The dead-letter queue's metric raises ReminderDeadLetterAlarm, which tells the operators (the
    # alerts topic's key still admits CloudWatch by its own statement).
    (alarm,) = sqs.receive_message(QueueUrl=operators, MaxNumberOfMessages=10)["Messages"]
    notification = json.loads(json.loads(alarm["Body"])["Message"])
    assert notification["AlarmName"] == account.physical_id("ReminderDeadLetterAlarm")
    dead = account.client("sqs").receive_message(
        QueueUrl=account.physical_id("ReminderDeadLetterQueue"), MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )["Messages"]
    assert [m["MessageAttributes"]["ERROR_CODE"]["StringValue"] for m in dead] == ["KMSAccessDenied"] * 2
    assert account.drain_owner_notifications() == {"team-data": [], "team-web": []}


def test_scheduler_refuses_what_aws_refuses(account: SimulatedAccount) -> None:
    client = account.client("scheduler")
    group = account.physical_id("ReminderScheduleGroup")
    target: dict[str, str] = {
        "Arn": "arn:aws:scheduler:::aws-sdk:sns:publish",
        "RoleArn": "arn:aws:iam::123456789012:role/r",
        "Input": "{}",
    }

    def create(**overrides: Any) -> None:
        request = {
            "Name": "r",
            "GroupName": group,
            "ScheduleExpression": "at(2026-12-01T00:00:00)",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": target,
            **overrides,
        }
        client.create_schedule(**request)

    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"GroupName": "no-such-group"}, "ResourceNotFoundException", "Schedule group no-such-group does not exist"),
        ({"ScheduleExpression": "at(2026-12-01 00:00)"}, "ValidationException", "Invalid Schedule Expression"),
        ({"ScheduleExpression": "at(2026-11-25T11:00:00)"}, "ValidationException", "is in the past"),
        ({"Name": "has space"}, "ValidationException", "failed to satisfy constraint"),
        # An Input over 256 KiB (see docs/simulator.md for what is known of Scheduler's limit).
        ({"Target": {**target, "Input": json.dumps({"Message": "x" * 262_144})}}, "ValidationException", "Input"),
    ]
    for overrides, code, words in cases:
        with pytest.raises(ClientError) as raised:
            create(**overrides)
        assert raised.value.response["Error"]["Code"] == code
        assert words in raised.value.response["Error"]["Message"]
    create()
    with pytest.raises(ClientError, match="ConflictException"):
        create()


def test_a_cycle_scoped_to_some_patch_groups_leaves_reminders_alone(account: SimulatedAccount) -> None:
    run_ok(account)
    before = set(schedules(account))
    account.client("ec2").create_tags(
        Resources=[instance_id(account, "web-2")], Tags=[{"Key": "Maintenance Window", "Value": "cron(0 3 ? * SUN *)"}]
    )
    scoped = run_ok(account, {"patch_groups": ["web-prod"]})
    assert output(scoped)["skipped"] and scheduler_writes(scoped) == set()
    assert set(schedules(account)) == before
