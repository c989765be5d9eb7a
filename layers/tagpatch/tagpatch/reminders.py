"""PrePatchNotification: one reminder per upcoming window run and lead time, as one-time Scheduler schedules.

Upcoming runs come from SSM (DescribeMaintenanceWindowSchedule), so SSM's own evaluation of time
zone, offset, start and end dates is the truth: tagpatch keeps no second schedule evaluator.

Each reminder is an EventBridge Scheduler schedule in tagpatch's schedule group, `at(...)` in UTC,
deleted by Scheduler after it fires, that publishes to the notifications topic through the universal
SNS Publish target with message attributes `owner` and `patch_group` (String.Array), `window` and
`lead_hours` (Number). Its name is deterministic and carries a digest of its content, so that:
- a rerun with nothing changed finds every name and writes nothing;
- a changed message (a tag moved an instance, the policy changed the window) is a new name: the
  old schedule is deleted, the new one created;
- a schedule whose name tagpatch would never make is not tagpatch's and is never touched.

Every target's cycle keeps its reminders in the hub's one schedule group, so a member account's names
carry a digest of its account and Region (`tagpatch-<target 8>-...`): each target's cycle owns only its
own, and never deletes another target's as stale. Home keeps the single-account names. A member
account's messages name its account and Region (tagpatch.target_messages).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import zoneinfo
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from typing import Any, Final

from tagpatch.aws import client, paginate
from tagpatch.classes import EXCEPTED
from tagpatch.cycle import iso_z
from tagpatch.desired import DesiredState, DesiredWindow
from tagpatch.monitoring import expected_windows, hold_applied, window_of
from tagpatch.observability import tracer
from tagpatch.policy import PatchPolicy, TaskSettings
from tagpatch.ssm_windows import window_run_time
from tagpatch.target_messages import located_attributes, located_body, located_subject
from tagpatch.targets import Target

NAME_PREFIX: Final = "tagpatch-"
# tagpatch-<window digest 8>-<window start yyyymmddHHMM>-<lead>h-<content digest 8>: at most 46 characters;
# a member target's names put tagpatch-<target digest 8>- in front: at most 55.
OWNED_TAIL: Final = r"[0-9a-f]{8}-\d{12}-\d{1,3}h-[0-9a-f]{8}$"
NAME_LIMIT: Final = 64  # Scheduler's schedule name: 1-64 of [0-9a-zA-Z-_.]
# Every reminder fits both limits by construction (publish_request checks each, reminder_parts splits):
# SNS checks the message body and its attributes together against the topic's 256 KiB; Scheduler
# carries the whole Publish request as the schedule's Input, whose own limit the stored Scheduler
# quotas page does not state, so it is held to the same 256 KiB (docs/decisions.md, "Reminders").
SNS_MESSAGE_LIMIT: Final = 256 * 1024  # bytes, message and attributes together
SCHEDULER_INPUT_LIMIT: Final = 256 * 1024  # bytes of the schedule target's Input (assumed)
# SNS delivers at most 10 attributes to a raw-delivery SQS subscription (it discards the message).
MAX_ATTRIBUTES: Final = 10
# A part of a window's reminder holds owner and patch group pairs until one of these JSON sizes is
# reached; a part that still does not fit is halved (the budgets only keep first attempts small).
PART_OWNERS_BUDGET: Final = 4 * 1024
PART_GROUPS_BUDGET: Final = 4 * 1024
PART_COUNTS_BUDGET: Final = 8 * 1024
LISTED: Final = 50  # instances listed in a message; the rest are in the full list in S3
# PrePatchNotification runs minutes after the cycle's evaluation time, and Scheduler refuses a one-time
# schedule whose time has passed: a reminder due sooner than this after the cycle's time is not made.
REMINDER_MARGIN: Final = timedelta(minutes=15)
PAGE_SIZE: Final = 100
DEFAULT_OWNER: Final = "unowned"
MACHINE_PROTOCOLS: Final = ("sqs", "lambda", "https", "http", "firehose")


class ReminderError(Exception):
    """A reminder that cannot be built as asked (a developer error, not bad input)."""


@dataclass(frozen=True)
class UpcomingRun:
    window: str
    window_id: str
    start: datetime


@dataclass(frozen=True)
class ReminderTarget:
    """Where reminders go and how Scheduler delivers them (from the stack)."""

    topic_arn: str
    role_arn: str
    dead_letter_arn: str
    group: str


@dataclass(frozen=True)
class Reminder:
    name: str
    window: str
    window_start: datetime
    lead_hours: int
    send_at: datetime
    owners: tuple[str, ...]
    patch_groups: tuple[str, ...]
    instances: int
    publish: Mapping[str, Any]  # the SNS Publish request the schedule sends

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "window": self.window,
            "window_start": iso_z(self.window_start),
            "lead_hours": self.lead_hours,
            "send_at": iso_z(self.send_at),
            "patch_groups": list(self.patch_groups),
            "owners": list(self.owners),
            "instances": self.instances,
        }


@dataclass(frozen=True)
class ReminderPlan:
    create: tuple[Reminder, ...]
    delete: tuple[str, ...]  # names of tagpatch's schedules no longer wanted
    unchanged: tuple[Reminder, ...]
    foreign: int  # schedules in the group that tagpatch does not own (left alone)

    def counts(self) -> dict[str, int]:
        return {
            "create": len(self.create),
            "delete": len(self.delete),
            "unchanged": len(self.unchanged),
            "foreign": self.foreign,
        }


def universal_sns_publish(topic_arn: str) -> str:
    """Scheduler's universal target for SNS Publish, in the topic's partition (aws, aws-cn, aws-us-gov)."""
    return f"arn:{topic_arn.split(':')[1]}:scheduler:::aws-sdk:sns:publish"


def horizon(policy: PatchPolicy) -> timedelta:
    """How far ahead reminders are kept: the largest lead time plus the time to the next cycle."""
    return timedelta(hours=max(policy.notification_lead_hours) + policy.notification_cycle_interval_hours)


def at_expression(moment: datetime) -> str:
    """Scheduler's one-time expression, `at(yyyy-mm-ddThh:mm:ss)`, read in ScheduleExpressionTimezone (UTC)."""
    return f"at({moment.astimezone(zoneinfo.ZoneInfo('UTC')).strftime('%Y-%m-%dT%H:%M:%S')})"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _name_prefix(target: Target | None) -> str:
    """`tagpatch-` at home; `tagpatch-<digest of account/Region>-` for a member target."""
    return NAME_PREFIX if target is None else f"{NAME_PREFIX}{_digest(target.label)}-"


def schedule_name(window: str, start: datetime, lead_hours: int, content: str, target: Target | None = None) -> str:
    name = f"{_name_prefix(target)}{_digest(window)}-{start.strftime('%Y%m%d%H%M')}-{lead_hours}h-{_digest(content)}"
    if len(name) > NAME_LIMIT or not is_owned(name, target):
        raise ReminderError(f"reminder name {name!r} is not a valid schedule name")
    return name


def is_owned(name: str, target: Target | None = None) -> bool:
    """Whether the cycle of `target` (None: home) made this schedule: another target's are not its own."""
    return re.fullmatch(f"{re.escape(_name_prefix(target))}{OWNED_TAIL}", name) is not None


# --- which instances a window patches ---------------------------------------------------------


@dataclass(frozen=True)
class WindowInstances:
    """A window's instances, as its reminders describe them."""

    instances: tuple[Mapping[str, Any], ...]  # sorted by owner, patch group, instance id

    @property
    def owners(self) -> tuple[str, ...]:
        return tuple(sorted({str(i["owner"]) for i in self.instances}))

    @property
    def patch_groups(self) -> tuple[str, ...]:
        return tuple(sorted({str(i["patch_group"]) for i in self.instances}))

    def counts(self) -> list[dict[str, Any]]:
        counted = Counter((str(i["owner"]), str(i["patch_group"])) for i in self.instances)
        return [{"owner": o, "patch_group": g, "instances": n} for (o, g), n in sorted(counted.items())]

    def pairs(self) -> list[tuple[Mapping[str, Any], ...]]:
        """The instances of each owner and patch group, in the instances' order."""
        grouped: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        for item in self.instances:
            grouped.setdefault((str(item["owner"]), str(item["patch_group"])), []).append(item)
        return [tuple(items) for items in grouped.values()]


def _json_bytes(value: object) -> int:
    return len(json.dumps(value).encode())


def reminder_parts(found: WindowInstances) -> list[WindowInstances]:
    """A window's instances in parts whose owners, patch groups and counts stay within the budgets.

    An owner and patch group pair is never split, so each owner's filter policy matches exactly the
    parts that hold its instances, and each instance is counted in exactly one part.
    """
    parts: list[WindowInstances] = []
    current: list[Mapping[str, Any]] = []
    owners: set[str] = set()
    groups: set[str] = set()
    sizes = [0, 0, 0]  # owners, patch groups, counts
    for pair in found.pairs():
        owner, group = str(pair[0]["owner"]), str(pair[0]["patch_group"])
        grown = [
            sizes[0] + (0 if owner in owners else _json_bytes(owner) + 2),
            sizes[1] + (0 if group in groups else _json_bytes(group) + 2),
            sizes[2] + _json_bytes({"owner": owner, "patch_group": group, "instances": len(pair)}) + 2,
        ]
        over = grown[0] > PART_OWNERS_BUDGET or grown[1] > PART_GROUPS_BUDGET or grown[2] > PART_COUNTS_BUDGET
        if current and over:
            parts.append(WindowInstances(tuple(current)))
            current, owners, groups = [], set(), set()
            grown = [_json_bytes(owner) + 2, _json_bytes(group) + 2, grown[2] - sizes[2]]
        current.extend(pair)
        owners.add(owner)
        groups.add(group)
        sizes = grown
    if current:
        parts.append(WindowInstances(tuple(current)))
    return parts


def _halves(part: WindowInstances) -> list[WindowInstances]:
    pairs = part.pairs()
    middle = len(pairs) // 2
    return [
        WindowInstances(tuple(item for pair in pairs[:middle] for item in pair)),
        WindowInstances(tuple(item for pair in pairs[middle:] for item in pair)),
    ]


def instances_by_window(lines: Iterable[Mapping[str, Any]], desired: DesiredState) -> dict[str, WindowInstances]:
    """window name -> the in-scope instances whose tags put them in it (excepted ones included, marked)."""
    expected = expected_windows(desired)
    found: dict[str, list[Mapping[str, Any]]] = {}
    for line in lines:
        if not line.get("in_scope", True):
            continue
        window = window_of(line, expected)
        if window is None:
            continue
        found.setdefault(window, []).append(
            {
                "instance_id": str(line["instance_id"]),
                "name": line.get("name"),
                "owner": str(line.get("owner") or DEFAULT_OWNER),
                "patch_group": str(line["patch_group"]),
                "excepted": line.get("class") == EXCEPTED,
                # Held only where its window's Scan task selects it (the hold fitted).
                "held": bool(line.get("held")) and hold_applied(line, expected),
                "gate": _held_by(line),
            }
        )
    return {
        window: WindowInstances(tuple(sorted(items, key=lambda i: (i["owner"], i["patch_group"], i["instance_id"]))))
        for window, items in found.items()
    }


# --- the message ------------------------------------------------------------------------------------


def _held_by(line: Mapping[str, Any]) -> str | None:
    """Which rollout gate holds the instance, and why; None when no closed gate does."""
    gate = line.get("gate")
    if not isinstance(gate, Mapping) or gate.get("open"):
        return None
    return f"rollout wave {gate.get('wave')} {gate.get('reason')}"


def _instance_line(item: Mapping[str, Any]) -> str:
    name = escape(str(item.get("name") or "no Name tag"), quote=False)
    excepted = ""
    if item.get("held") and item.get("gate"):
        excepted = f" [held: {escape(str(item['gate']), quote=False)}; the window only scans it]"
    elif item.get("held"):
        excepted = " [held: a patch exception holds patching back; the window only scans it]"
    elif item.get("excepted"):
        # Without hold an exception changes reports, not the window: the instance is patched as usual.
        excepted = " [excepted: a patch exception covers it; it is patched, but a failure is not alerted]"
    return (
        f"- {item['instance_id']} ({name}), owner {escape(str(item['owner']), quote=False)}, "
        f"patch group {escape(str(item['patch_group']), quote=False)}{excepted}"
    )


def cutoff_text(cutoff_hours: int, behaviour: str) -> str:
    """What the window's cutoff means for the instances, as the patch task is registered."""
    starts = f"no new patching starts in its last {cutoff_hours} hour(s)"
    if behaviour == "CANCEL_TASK":
        return f"{starts}; patching still running at the cutoff is cancelled"
    return f"{starts}; patching already running goes on, even past the window's end"


def message_text(facts: Mapping[str, Any], listed: Sequence[Mapping[str, Any]]) -> str:
    """The e-mail readable body. Every name and value from a tag is escaped."""
    window = escape(str(facts["window"]), quote=False)
    instances = f"{facts['instances']}"
    if facts["instances"] != facts["window_instances"]:
        instances += (
            f" of the window's {facts['window_instances']}: this reminder comes in several messages, "
            "each for some of the owners and patch groups; this one is for those below"
        )
    lines = [
        f"In {facts['lead_hours']} hour(s), maintenance window {window} patches the instances below.",
        "",
        f"Starts:    {facts['window_start']} (UTC), {facts['window_start_local']} ({facts['timezone']})",
        f"Duration:  {facts['duration_hours']} hours ({cutoff_text(facts['cutoff_hours'], facts['cutoff_behavior'])})",
        f"Operation: {facts['operation']}, reboot option {facts['reboot_option']}",
        f"Instances: {instances}",
        "",
        "Per owner and patch group:",
        *(
            f"- {escape(c['owner'], quote=False)} / {escape(c['patch_group'], quote=False)}: {c['instances']}"
            for c in facts["counts"]
        ),
        "",
        f"Instances ({len(listed)} of {facts['instances']} listed):",
        *(_instance_line(item) for item in listed),
    ]
    if len(listed) < int(facts["instances"]):
        lines.append(f"... and {int(facts['instances']) - len(listed)} more.")
    lines += [
        f"The full list: s3://{facts['list_bucket']}/{facts['list_key']}",
        "",
        "What you can do: to move an instance to another window, change its `Maintenance Window` tag",
        "(a window name from the patch policy or a cron expression); the next tagpatch cycle moves it and",
        "its reminders. To keep it from being patched, ask security operations for a patch exception.",
        f"Questions: {escape(str(facts.get('contact') or 'your platform team'), quote=False)}.",
    ]
    return "\n".join(lines)


def sns_bytes(request: Mapping[str, Any]) -> int:
    """What SNS checks against the topic's limit: the body, and each attribute's name, type and value."""
    size = len(str(request["Message"]).encode())
    for name, attribute in request["MessageAttributes"].items():
        size += len(name.encode()) + len(attribute["DataType"].encode()) + len(attribute["StringValue"].encode())
    return size


def scheduler_input(request: Mapping[str, Any]) -> str:
    """The schedule target's Input: the Publish request in the API's member names."""
    return json.dumps(request, sort_keys=True)


def fits(request: Mapping[str, Any]) -> bool:
    return (
        len(request["MessageAttributes"]) <= MAX_ATTRIBUTES
        and sns_bytes(request) <= SNS_MESSAGE_LIMIT
        and len(scheduler_input(request).encode()) <= SCHEDULER_INPUT_LIMIT
    )


def publish_request(
    facts: Mapping[str, Any],
    instances: Sequence[Mapping[str, Any]],
    topic_arn: str,
    limit: int = LISTED,
    target: Target | None = None,
) -> dict[str, Any] | None:
    """The SNS Publish request: JSON message structure, text for e-mail, JSON for machine subscribers.

    The listed instances shrink until the request fits SNS's and Scheduler's limits; None when it does
    not fit even with none listed (the caller then splits the part).
    """
    listed = list(instances[:limit])
    hours = "1 hour" if facts["lead_hours"] == 1 else f"{facts['lead_hours']} hours"
    subject = located_subject(
        f"tagpatch: {facts['window']} patches {facts['instances']} instance(s) in {hours}", target
    )
    while True:
        structured = json.dumps({**facts, "listed": listed}, sort_keys=True)
        text = located_body(message_text(facts, listed), target)
        body = {"default": text, **dict.fromkeys(MACHINE_PROTOCOLS, structured)}
        request = {
            "TopicArn": topic_arn,
            "Subject": re.sub(r"[^\x20-\x7e]", "?", subject)[:100],  # SNS: ASCII, no line breaks, at most 100
            "MessageStructure": "json",
            "Message": json.dumps(body, sort_keys=True),
            "MessageAttributes": located_attributes(
                {
                    "owner": {"DataType": "String.Array", "StringValue": json.dumps(list(facts["owners"]))},
                    "patch_group": {
                        "DataType": "String.Array",
                        "StringValue": json.dumps(list(facts["patch_groups"])),
                    },
                    "window": {"DataType": "String", "StringValue": str(facts["window"])},
                    "lead_hours": {"DataType": "Number", "StringValue": str(facts["lead_hours"])},
                },
                target,
            ),
        }
        if fits(request):
            return request
        if not listed:
            return None
        listed = listed[: len(listed) // 2]


# --- desired reminders ------------------------------------------------------------------------------


def desired_reminders(
    runs: Iterable[UpcomingRun],
    windows: Mapping[str, DesiredWindow],
    members: Mapping[str, WindowInstances],
    lead_hours: Iterable[int],
    now: datetime,
    topic_arn: str,
    list_location: Mapping[str, tuple[str, str]],
    contact: str = "your platform team (the owner of the tagpatch stack)",
    target: Target | None = None,
) -> list[Reminder]:
    """One reminder per (run, lead time) whose send time is more than REMINDER_MARGIN after `now`, for
    windows with instances.

    list_location: window -> (bucket, key) of the full instance list.
    target: the member account and Region the cycle acts in; None at home.
    """
    reminders = []
    parts_of: dict[str, list[WindowInstances]] = {}
    for run in runs:
        window = windows.get(run.window)
        found = members.get(run.window)
        if window is None or found is None or not found.instances:
            continue
        if run.window not in parts_of:
            parts_of[run.window] = reminder_parts(found)
        task = window.tasks[0].settings if window.tasks else None
        local = run.start.astimezone(zoneinfo.ZoneInfo(window.settings.timezone))
        for lead in sorted(set(lead_hours), reverse=True):
            send_at = run.start - timedelta(hours=lead)
            if send_at <= now + REMINDER_MARGIN:
                continue
            bucket, key = list_location[run.window]
            common = {
                "window": run.window,
                "window_id": run.window_id,
                "window_start": iso_z(run.start),
                "window_start_local": local.strftime("%Y-%m-%d %H:%M %Z"),
                "timezone": window.settings.timezone,
                "duration_hours": window.settings.duration_hours,
                "cutoff_hours": window.settings.cutoff_hours,
                "operation": task.operation if task else "Install",
                "reboot_option": task.reboot_option if task else "RebootIfNeeded",
                "cutoff_behavior": (task or TaskSettings()).cutoff_behavior,
                "lead_hours": lead,
                "window_instances": len(found.instances),
                "list_bucket": bucket,
                "list_key": key,
                "contact": contact,
                **({"account_id": target.account_id, "region": target.region} if target is not None else {}),
            }
            pending = list(parts_of[run.window])
            while pending:
                part = pending.pop(0)
                facts = {
                    **common,
                    "instances": len(part.instances),
                    "counts": part.counts(),
                    "owners": list(part.owners),
                    "patch_groups": list(part.patch_groups),
                }
                request = publish_request(facts, part.instances, topic_arn, target=target)
                if request is None:
                    if len(part.pairs()) == 1:
                        raise ReminderError(f"one owner and patch group of window {run.window} cannot fit a message")
                    pending[:0] = _halves(part)
                    continue
                # The name digests the message without the list's key (a new key every cycle).
                content = json.dumps(
                    {k: v for k, v in facts.items() if k not in ("list_key", "list_bucket")}
                    | {"listed": [i["instance_id"] for i in part.instances]},
                    sort_keys=True,
                )
                reminders.append(
                    Reminder(
                        name=schedule_name(run.window, run.start, lead, content, target),
                        window=run.window,
                        window_start=run.start,
                        lead_hours=lead,
                        send_at=send_at,
                        owners=part.owners,
                        patch_groups=part.patch_groups,
                        instances=len(part.instances),
                        publish=request,
                    )
                )
    return sorted(reminders, key=lambda r: (r.send_at, r.window, r.name))


def plan_reminders(desired: Sequence[Reminder], existing: Iterable[str], target: Target | None = None) -> ReminderPlan:
    """What to create and delete, given the names of the schedules now in the group; other targets'
    reminders count as foreign (left alone)."""
    names = list(existing)
    owned = {name for name in names if is_owned(name, target)}
    wanted = {reminder.name for reminder in desired}
    return ReminderPlan(
        create=tuple(r for r in desired if r.name not in owned),
        delete=tuple(sorted(owned - wanted)),
        unchanged=tuple(r for r in desired if r.name in owned),
        foreign=len(names) - len(owned),
    )


# --- reading and writing AWS ------------------------------------------------------------------------


@tracer.capture_method
def read_upcoming_runs(
    windows: Mapping[str, str], timezones: Mapping[str, str], after: datetime, before: datetime
) -> list[UpcomingRun]:
    """Runs of `windows` (name -> id) scheduled in (after, before], from SSM.

    timezones: name -> the window's ScheduleTimezone, to read a run time SSM gives without a zone.
    """
    ssm = client("ssm")
    runs = []
    for name, window_id in sorted(windows.items()):
        for item in paginate(
            ssm.describe_maintenance_window_schedule,
            "ScheduledWindowExecutions",
            WindowId=window_id,
            MaxResults=PAGE_SIZE,
            Filters=[
                {"Key": "ScheduledAfter", "Values": [iso_z(after)]},
                {"Key": "ScheduledBefore", "Values": [iso_z(before)]},
            ],
        ):
            start = window_run_time(item.get("ExecutionTime"), timezones.get(name))
            if after < start <= before:
                runs.append(UpcomingRun(name, window_id, start))
    return sorted(runs, key=lambda run: (run.start, run.window))


@tracer.capture_method
def existing_schedules(group: str) -> list[str]:
    """Names of every schedule in the group (tagpatch's and anyone else's)."""
    return [
        str(item["Name"])
        for item in paginate(client("scheduler").list_schedules, "Schedules", GroupName=group, MaxResults=PAGE_SIZE)
    ]


def schedule_request(reminder: Reminder, target: ReminderTarget) -> dict[str, Any]:
    return {
        "Name": reminder.name,
        "GroupName": target.group,
        "Description": (
            f"tagpatch reminder: window {reminder.window} at {iso_z(reminder.window_start)}, {reminder.lead_hours}h"
        )[:512],
        "ScheduleExpression": at_expression(reminder.send_at),
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "ActionAfterCompletion": "DELETE",
        "State": "ENABLED",
        "Target": {
            "Arn": universal_sns_publish(target.topic_arn),
            "RoleArn": target.role_arn,
            "Input": scheduler_input(reminder.publish),
            "DeadLetterConfig": {"Arn": target.dead_letter_arn},
            # A reminder an hour late is still useful; one a day late is not.
            "RetryPolicy": {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 10},
        },
    }


def apply_reminders(plan: ReminderPlan, target: ReminderTarget) -> tuple[int, int]:
    """Create and delete; a schedule already made or already gone counts as done (a retried cycle)."""
    scheduler = client("scheduler")
    created = deleted = 0
    for name in plan.delete:
        # Already gone: fired and deleted by Scheduler, or deleted by an earlier attempt.
        with contextlib.suppress(scheduler.exceptions.ResourceNotFoundException):
            scheduler.delete_schedule(Name=name, GroupName=target.group)
        deleted += 1
    for reminder in plan.create:
        # Already there: made by an earlier attempt whose answer was lost (same name, same content).
        with contextlib.suppress(scheduler.exceptions.ConflictException):
            scheduler.create_schedule(**schedule_request(reminder, target))
        created += 1
    return created, deleted
