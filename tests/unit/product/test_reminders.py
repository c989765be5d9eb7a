"""PrePatchNotification's rules: which reminders a cycle wants, their names, and what it changes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tagpatch.classes import ReportClass
from tagpatch.desired import build_desired_state
from tagpatch.policy import load_policy, parse_policy
from tagpatch.reminders import (
    NAME_LIMIT,
    REMINDER_MARGIN,
    SNS_MESSAGE_LIMIT,
    ReminderTarget,
    UpcomingRun,
    WindowInstances,
    at_expression,
    desired_reminders,
    horizon,
    instances_by_window,
    is_owned,
    plan_reminders,
    schedule_name,
    schedule_request,
)
from tagpatch.targets import Target

from .builders import instance_line

REPO = Path(__file__).resolve().parents[3]
POLICY = load_policy(REPO / "policy" / "patch-policy.yaml")
SUNDAY = datetime(2026, 11, 29, 2, tzinfo=UTC)
TOPIC = "arn:aws:sns:us-east-1:123456789012:notifications"


def line(owner: str, group: str, window: str = "sun-0200", cls: ReportClass = "ready", name: str | None = None) -> Any:
    found = dict(instance_line(group=group, window=window, cls=cls))
    found["owner"] = owner
    found["name"] = name
    if cls == "excepted":
        found["tag_class"] = "ready"
    return found


def reminders(
    lines: list[Any], now: datetime, runs: list[datetime] | None = None, target: Target | None = None
) -> list[Any]:
    desired = build_desired_state(lines, POLICY)
    members = instances_by_window(lines, desired)
    windows = {w.name: w for w in desired.windows}
    upcoming = [UpcomingRun(name, "mw-0123456789abcdef0", start) for name in windows for start in runs or [SUNDAY]]
    locations = {name: ("bucket", f"runs/x/reminders/{name}.jsonl.gz") for name in windows}
    return desired_reminders(
        upcoming, windows, members, POLICY.notification_lead_hours, now, TOPIC, locations, target=target
    )


def test_one_reminder_per_run_and_lead_time_whose_send_time_is_still_ahead() -> None:
    lines = [line("team-a", "web"), line("team-b", "db")]
    early = reminders(lines, SUNDAY - timedelta(days=4))
    assert [(r.lead_hours, r.send_at) for r in early] == [
        (72, SUNDAY - timedelta(hours=72)),
        (24, SUNDAY - timedelta(hours=24)),
        (1, SUNDAY - timedelta(hours=1)),
    ]
    # Time is an input: two hours before the window only the 1-hour reminder is still to come.
    late = reminders(lines, SUNDAY - timedelta(hours=2))
    assert [r.lead_hours for r in late] == [1]
    assert reminders(lines, SUNDAY - timedelta(hours=1)) == []


def test_the_horizon_is_the_largest_lead_time_plus_the_cycle_interval() -> None:
    assert horizon(POLICY) == timedelta(hours=72 + 24)
    document = {"version": 1, "notifications": {"lead_hours": [2, 48], "cycle_interval_hours": 6}}
    assert horizon(parse_policy(document)) == timedelta(hours=54)


def test_names_are_deterministic_owned_and_at_most_64_characters() -> None:
    lines = [line("team-a", "web")]
    first = reminders(lines, SUNDAY - timedelta(days=4))
    again = reminders(lines, SUNDAY - timedelta(days=4, hours=-1))  # a later cycle, nothing changed
    assert [r.name for r in first] == [r.name for r in again]
    assert all(len(r.name) <= NAME_LIMIT and is_owned(r.name) for r in first)
    longest = schedule_name("w" * 100, SUNDAY, 720, "x" * 10_000)
    assert len(longest) <= NAME_LIMIT
    assert not is_owned("tagpatch-by-hand") and not is_owned("someone-elses-schedule")


def test_a_changed_window_membership_changes_the_name() -> None:
    before = reminders([line("team-a", "web"), line("team-b", "db")], SUNDAY - timedelta(days=4))
    after = reminders([line("team-a", "web")], SUNDAY - timedelta(days=4))
    assert {r.name for r in before}.isdisjoint({r.name for r in after})


def test_a_rerun_writes_nothing_and_stale_ones_are_deleted_and_foreign_ones_left_alone() -> None:
    wanted = reminders([line("team-a", "web")], SUNDAY - timedelta(days=4))
    existing = [r.name for r in wanted]
    rerun = plan_reminders(wanted, [*existing, "someone-elses-schedule"])
    assert rerun.create == () and rerun.delete == ()
    assert rerun.counts() == {"create": 0, "delete": 0, "unchanged": 3, "foreign": 1}
    moved = reminders([line("team-a", "web"), line("team-b", "db")], SUNDAY - timedelta(days=4))
    plan = plan_reminders(moved, [*existing, "someone-elses-schedule"])
    assert set(plan.delete) == set(existing)
    assert [r.name for r in plan.create] == [r.name for r in moved]
    assert "someone-elses-schedule" not in plan.delete


def test_the_message_counts_per_owner_and_patch_group_and_carries_filterable_attributes() -> None:
    lines = [line("team-a", "web", name="<b>web-1</b>"), line("team-a", "web"), line("team-b", "db")]
    (reminder, *_) = reminders(lines, SUNDAY - timedelta(days=4))
    request = reminder.publish
    assert request["MessageStructure"] == "json"
    attributes = request["MessageAttributes"]
    assert attributes["owner"] == {"DataType": "String.Array", "StringValue": '["team-a", "team-b"]'}
    assert attributes["patch_group"]["DataType"] == "String.Array"
    assert json.loads(attributes["patch_group"]["StringValue"]) == ["db", "web"]
    assert attributes["lead_hours"] == {"DataType": "Number", "StringValue": "72"}
    body = json.loads(request["Message"])
    text = body["default"]
    assert "2026-11-29T02:00:00Z (UTC)" in text and "Install, reboot option RebootIfNeeded" in text
    assert "team-a / web: 2" in text and "team-b / db: 1" in text
    assert "&lt;b&gt;web-1&lt;/b&gt;" in text and "<b>" not in text  # tag values are escaped
    structured = json.loads(body["sqs"])
    assert structured["counts"] == [
        {"owner": "team-a", "patch_group": "web", "instances": 2},
        {"owner": "team-b", "patch_group": "db", "instances": 1},
    ]
    assert structured["list_key"].endswith(".jsonl.gz")


@pytest.mark.parametrize(
    ("behaviour", "promise"),
    [
        ("CANCEL_TASK", "patching still running at the cutoff is cancelled"),
        ("CONTINUE_TASK", "patching already running goes on, even past the window's end"),
    ],
)
def test_the_message_says_what_happens_at_the_cutoff(behaviour: str, promise: str) -> None:
    document = yaml.safe_load((REPO / "policy" / "patch-policy.yaml").read_text(encoding="utf-8"))
    document["defaults"]["task"]["cutoff_behavior"] = behaviour
    policy = parse_policy(document)
    lines = [line("team-a", "web")]
    desired = build_desired_state(lines, policy)
    windows = {w.name: w for w in desired.windows}
    upcoming = [UpcomingRun(name, "mw-0123456789abcdef0", SUNDAY) for name in windows]
    locations = {name: ("bucket", f"runs/x/reminders/{name}.jsonl.gz") for name in windows}
    members = instances_by_window(lines, desired)
    (reminder, *_) = desired_reminders(
        upcoming, windows, members, policy.notification_lead_hours, SUNDAY - timedelta(days=4), TOPIC, locations
    )
    text = json.loads(reminder.publish["Message"])["default"]
    assert "no new patching starts in its last 1 hour(s)" in text and promise in text
    assert json.loads(json.loads(reminder.publish["Message"])["sqs"])["cutoff_behavior"] == behaviour


def test_the_window_time_zone_is_shown_beside_utc() -> None:
    (reminder, *_) = reminders(
        [line("team-a", "web", window="tue-2330")],
        datetime(2026, 12, 1, tzinfo=UTC),
        runs=[datetime(2026, 12, 10, 22, 30, tzinfo=UTC)],
    )
    text = json.loads(reminder.publish["Message"])["default"]
    assert "2026-12-10T22:30:00Z (UTC), 2026-12-10 23:30 CET (Europe/Berlin)" in text


def test_an_excepted_instance_is_listed_and_marked() -> None:
    lines = [line("team-a", "web"), line("team-a", "web", cls="excepted")]
    (reminder, *_) = reminders(lines, SUNDAY - timedelta(days=4))
    assert reminder.instances == 2
    assert json.loads(reminder.publish["Message"])["default"].count("[excepted:") == 1


def test_a_held_instance_is_marked_held_and_the_others_patched() -> None:
    held = line("team-a", "web", cls="excepted")
    held["held"] = True
    lines = [line("team-a", "web"), held, line("team-a", "web", cls="excepted")]
    (reminder, *_) = reminders(lines, SUNDAY - timedelta(days=4))
    text = json.loads(reminder.publish["Message"])["default"]
    assert reminder.instances == 3  # the held one is still in the window, for its Scan
    assert text.count("[held: a patch exception holds patching back; the window only scans it]") == 1
    assert text.count("[excepted: a patch exception covers it; it is patched") == 1


@pytest.mark.slow  # 100,000 instances
def test_a_window_of_100000_instances_stays_under_the_sns_limit() -> None:
    lines = [line(f"team-{i % 40}", f"group-{i % 30}") for i in range(100_000)]
    (reminder, *_) = reminders(lines, SUNDAY - timedelta(days=4))
    size = len(json.dumps(reminder.publish).encode())
    assert size < SNS_MESSAGE_LIMIT
    assert reminder.instances == 100_000
    text = json.loads(reminder.publish["Message"])["default"]
    assert "... and 99950 more." in text


def test_at_expressions_are_utc_seconds() -> None:
    assert at_expression(datetime(2026, 11, 28, 3, 0, 30, tzinfo=UTC)) == "at(2026-11-28T03:00:30)"


@pytest.mark.parametrize("lead", [[], [0], "72"])
def test_the_policy_rejects_bad_lead_hours(lead: object) -> None:
    from tagpatch.errors import InvalidPatchPolicy

    with pytest.raises(InvalidPatchPolicy, match=r"notifications\.lead_hours"):
        parse_policy({"version": 1, "notifications": {"lead_hours": lead}})


def test_the_message_says_how_to_move_an_instance_and_whom_to_ask() -> None:
    lines = [line("team-a", "web")]
    desired = build_desired_state(lines, POLICY)
    windows = {w.name: w for w in desired.windows}
    upcoming = [UpcomingRun(name, "mw-0123456789abcdef0", SUNDAY) for name in windows]
    locations = {name: ("bucket", f"runs/x/reminders/{name}.jsonl.gz") for name in windows}
    (reminder, *_) = desired_reminders(
        upcoming,
        windows,
        instances_by_window(lines, desired),
        POLICY.notification_lead_hours,
        SUNDAY - timedelta(days=4),
        TOPIC,
        locations,
        contact="<platform@example.com>",
    )
    text = json.loads(reminder.publish["Message"])["default"]
    assert "change its `Maintenance Window` tag" in text
    assert "Questions: &lt;platform@example.com&gt;." in text


@pytest.mark.parametrize("contact", ["", "   ", 7, "x" * 301])
def test_the_policy_rejects_a_bad_contact(contact: object) -> None:
    from tagpatch.errors import InvalidPatchPolicy

    with pytest.raises(InvalidPatchPolicy, match=r"notifications\.contact"):
        parse_policy({"version": 1, "notifications": {"contact": contact}})


def test_the_policy_reads_the_contact() -> None:
    policy = parse_policy({"version": 1, "notifications": {"contact": " #patching "}})
    assert policy.notification_contact == "#patching"
    assert "platform team" in POLICY.notification_contact


def sns_bytes(request: Mapping[str, Any]) -> int:
    """What SNS checks against 256 KiB: the body and every attribute's name, data type and value."""
    size = len(request["Message"].encode())
    for name, attribute in request["MessageAttributes"].items():
        size += len(name.encode()) + len(attribute["DataType"].encode()) + len(attribute["StringValue"].encode())
    return size


def largest_window(instances: int, name_length: int, groups: int) -> WindowInstances:
    """Every instance its own owner (owner tags are free text, up to 256 characters), non-ASCII."""
    items = [
        {
            "instance_id": f"i-{i:017x}",
            "name": "n" * 256,
            "owner": f"{i:06d}-{'ö' * (name_length - 7)}",
            "patch_group": f"{i % groups:04d}-{'g' * (name_length - 5)}",
            "excepted": False,
            "held": False,
        }
        for i in range(instances)
    ]
    return WindowInstances(tuple(sorted(items, key=lambda i: (i["owner"], i["patch_group"], i["instance_id"]))))


@pytest.mark.parametrize(
    ("instances", "name_length"),
    # Instances in the window: 100,000 take ~13 s alone and 5,000 ~2.3 s, so make unit runs 500.
    [pytest.param(100_000, 40, marks=pytest.mark.slow), pytest.param(5_000, 256, marks=pytest.mark.slow), (500, 256)],
)
def test_the_largest_window_s_reminders_each_fit_sns_and_scheduler_and_reach_every_owner(
    instances: int, name_length: int
) -> None:
    # 5,000 patch groups: SSM allows 100 targets per window and 50 values per target. Tag values are
    # at most 256 characters; the second case has every name at that length.
    found = largest_window(instances, name_length, groups=5_000)
    lines = [line("team-a", "web")]
    desired = build_desired_state(lines, POLICY)
    windows = {w.name: w for w in desired.windows}
    (name,) = windows
    upcoming = [UpcomingRun(name, "mw-0123456789abcdef0", SUNDAY)]
    target = ReminderTarget(TOPIC, "arn:aws:iam::123456789012:role/r", "arn:aws:sqs:us-east-1:1:dlq", "group")
    wanted = desired_reminders(
        upcoming, windows, {name: found}, [72], SUNDAY - timedelta(days=4), TOPIC, {name: ("b", "k")}
    )
    assert len({r.name for r in wanted}) == len(wanted) > 1
    owners: set[str] = set()
    counted = 0
    for reminder in wanted:
        request = reminder.publish
        assert len(request["MessageAttributes"]) <= 10
        assert sns_bytes(request) <= SNS_MESSAGE_LIMIT
        assert len(schedule_request(reminder, target)["Target"]["Input"].encode()) <= 256 * 1024
        owners |= set(json.loads(request["MessageAttributes"]["owner"]["StringValue"]))
        structured = json.loads(json.loads(request["Message"])["sqs"])
        counted += sum(count["instances"] for count in structured["counts"])
        assert structured["window_instances"] == instances
    # Every owner's filter policy matches a reminder, and every instance is counted exactly once.
    assert owners == {str(item["owner"]) for item in found.instances}
    assert counted == instances


def test_no_reminder_is_made_for_a_time_that_may_be_past_when_it_is_created() -> None:
    # PrePatchNotification runs minutes after the cycle's time, and Scheduler refuses an at() in the
    # past: a reminder due within REMINDER_MARGIN of the cycle's time is not made.
    lines = [line("team-a", "web")]
    soon = SUNDAY - timedelta(hours=1) - REMINDER_MARGIN + timedelta(minutes=1)
    assert reminders(lines, soon) == []
    in_time = SUNDAY - timedelta(hours=1) - REMINDER_MARGIN - timedelta(minutes=1)
    assert [r.lead_hours for r in reminders(lines, in_time)] == [1]
    early = SUNDAY - timedelta(days=4)
    assert all(r.send_at > early + REMINDER_MARGIN for r in reminders(lines, early))
