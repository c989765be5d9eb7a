"""Reminders and owner alerts from a member account's cycle name its account and Region (#26): in the
subject, the first line and the `account_id`/`region` attributes beside `owner`; home's are unchanged.
Owners of one name in two accounts are never merged: each target's reminders are its own schedules, and
an exception notice sent for one account's instances is still sent for the other's."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tagpatch.exceptions import due_notices
from tagpatch.monitoring import Alert, alert_entry, publish_gate_hold, publish_notice
from tagpatch.reminders import MAX_ATTRIBUTES, NAME_LIMIT, is_owned, plan_reminders
from tagpatch.target_messages import located_subject
from tagpatch.targets import Target

from .test_exceptions import GOOD, _lines, exceptions
from .test_reminders import SUNDAY, line, reminders

MEMBER = Target("222222222222", "eu-west-1")
OTHER = Target("333333333333", "eu-west-1")
EARLY = SUNDAY - timedelta(days=4)


def test_a_member_reminder_names_its_account_and_region_in_subject_first_line_and_attributes() -> None:
    (reminder, *_) = reminders([line("team-a", "web"), line("team-b", "db")], EARLY, target=MEMBER)
    request = reminder.publish
    assert request["Subject"].startswith("tagpatch [222222222222 eu-west-1]: ")
    text = json.loads(request["Message"])["default"]
    assert text.splitlines()[0] == "Account 222222222222, Region eu-west-1."
    attributes = request["MessageAttributes"]
    assert attributes["account_id"] == {"DataType": "String", "StringValue": "222222222222"}
    assert attributes["region"] == {"DataType": "String", "StringValue": "eu-west-1"}
    assert attributes["owner"]["StringValue"] == '["team-a", "team-b"]'
    assert len(attributes) <= MAX_ATTRIBUTES
    structured = json.loads(json.loads(request["Message"])["sqs"])
    assert (structured["account_id"], structured["region"]) == ("222222222222", "eu-west-1")


def test_home_reminders_are_unchanged() -> None:
    lines = [line("team-a", "web")]
    home = reminders(lines, EARLY)
    assert [r.name for r in home] == [r.name for r in reminders(lines, EARLY, target=None)]
    request = home[0].publish
    assert set(request["MessageAttributes"]) == {"owner", "patch_group", "window", "lead_hours"}
    assert request["Subject"].startswith("tagpatch: ")
    assert json.loads(request["Message"])["default"].startswith("In 72 hour(s), maintenance window")


def test_each_target_owns_only_its_own_reminders_in_the_shared_schedule_group() -> None:
    lines = [line("team-a", "web")]  # the same owner, window and instances in three targets
    home, member, other = (reminders(lines, EARLY, target=t) for t in (None, MEMBER, OTHER))
    names = [{r.name for r in found} for found in (home, member, other)]
    assert names[0].isdisjoint(names[1]) and names[1].isdisjoint(names[2]) and names[0].isdisjoint(names[2])
    assert all(len(name) <= NAME_LIMIT for found in names for name in found)
    group = sorted(set().union(*names))
    for target, wanted in ((None, home), (MEMBER, member), (OTHER, other)):
        rerun = plan_reminders(wanted, group, target)
        # Nothing to write for its own, and the other targets' reminders are foreign, never deleted.
        assert rerun.create == () and rerun.delete == ()
        assert rerun.counts()["foreign"] == len(group) - len(wanted)
    assert all(is_owned(name, MEMBER) and not is_owned(name) for name in names[1])
    # The member's team-a moves out: only the member's reminders go.
    gone = plan_reminders([], group, MEMBER)
    assert set(gone.delete) == names[1]


def _alert() -> Alert:
    return Alert("team-a", "web", "error", ({"instance_id": "i-0", "outcome": "failed", "reason": "r"},))


def test_a_member_alert_names_its_account_and_region_and_home_s_is_unchanged() -> None:
    entry = alert_entry(_alert(), "0", MEMBER)
    assert entry["Subject"] == "tagpatch [222222222222 eu-west-1]: 1 failed in patch group web"
    assert entry["Message"].splitlines()[0] == "Account 222222222222, Region eu-west-1."
    assert entry["MessageAttributes"]["account_id"]["StringValue"] == "222222222222"
    assert entry["MessageAttributes"]["region"]["StringValue"] == "eu-west-1"
    home = alert_entry(_alert(), "0")
    assert home["Subject"] == _alert().subject() and home["Message"] == _alert().body()
    assert set(home["MessageAttributes"]) == {"owner", "patch_group", "severity"}


def test_a_located_subject_stays_within_sns_s_100_characters() -> None:
    subject = located_subject("tagpatch: " + "x" * 95, MEMBER)
    assert len(subject) == 100 and subject.startswith("tagpatch [222222222222 eu-west-1]: ")


def test_an_owner_of_one_name_in_two_accounts_gets_each_account_s_exception_notice() -> None:
    found = exceptions(GOOD | {"name": "billing-1"})
    now = datetime(2026, 12, 14, tzinfo=UTC)
    lines = _lines(now, found)
    sent: dict[str, str] = {}
    first = due_notices(lines, found.notice_days, "governance", "unowned", sent, now, MEMBER)
    sent.update({notice.key: "x" for notice in first})
    second = due_notices(lines, found.notice_days, "governance", "unowned", sent, now, OTHER)
    assert {n.owner for n in first} == {n.owner for n in second} == {"governance", "web-team"}
    assert due_notices(lines, found.notice_days, "governance", "unowned", sent, now, MEMBER) == []
    # Home's ledger keys are the single-account ones.
    (home, *_) = due_notices(lines, found.notice_days, "governance", "unowned", {}, now)
    assert home.key.count("|") == 3


@pytest.fixture
def notifications(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A topic and a queue subscribed with raw delivery, so the attributes SNS delivered can be read."""
    import boto3
    from moto import mock_aws

    from tagpatch.aws import client
    from tagpatch_local import simulator

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        simulator.install()
        client.cache_clear()
        sns, sqs = boto3.client("sns", "us-east-1"), boto3.client("sqs", "us-east-1")
        topic = sns.create_topic(Name="notifications")["TopicArn"]
        url = sqs.create_queue(QueueName="team-a")["QueueUrl"]
        queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(
            TopicArn=topic,
            Protocol="sqs",
            Endpoint=queue,
            Attributes={"RawMessageDelivery": "true", "FilterPolicy": json.dumps({"account_id": ["222222222222"]})},
        )
        yield (
            topic,
            lambda: sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
                "Messages", []
            ),
        )
        client.cache_clear()


def test_notices_and_gate_holds_reach_a_subscription_filtering_on_the_account(notifications: Any) -> None:
    from tagpatch.gates import GateHold

    topic, received = notifications
    found = exceptions(GOOD | {"name": "billing-1"})
    now = datetime(2026, 12, 14, tzinfo=UTC)
    (notice, *_) = due_notices(_lines(now, found), found.notice_days, "governance", "unowned", {}, now, MEMBER)
    hold = GateHold("team-a", "web", {"wave": 2, "reason": "alarm in ALARM", "open": False}, ({"instance_id": "i-0"},))
    publish_notice(topic, notice)  # home's: not the member account's, so the filter drops it
    publish_notice(topic, notice, MEMBER)
    publish_gate_hold(topic, hold, MEMBER)
    messages = received()
    assert len(messages) == 2
    for message in messages:
        assert message["Body"].startswith("Account 222222222222, Region eu-west-1.\n")
        assert message["MessageAttributes"]["region"]["StringValue"] == "eu-west-1"
