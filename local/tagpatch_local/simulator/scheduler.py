"""EventBridge Scheduler in the simulated account: validation moto lacks, and one-time schedules that fire.

moto 5.2.5 stores schedules but never runs them, and its CreateSchedule accepts what Scheduler
refuses: it fails with an internal error when the group does not exist, and takes any expression.
From the Scheduler API reference and user guide:
- a name and a group name are 1-64 of `[0-9a-zA-Z-_.]`; the group must exist
  (ResourceNotFoundException);
- a one-time schedule is `at(yyyy-mm-ddThh:mm:ss)`, read in ScheduleExpressionTimezone (UTC by
  default); anything else that is not rate(...) or cron(...) is `Invalid Schedule Expression ...`
  (ValidationException);
- a one-time schedule whose time has passed is refused (the wording is the simulator's: see
  docs/simulator.md);
- a target Input over INPUT_LIMIT bytes is refused (ValidationException). The stored Scheduler quota
  page could not be read for its figure; the simulator takes 256 KiB, the SNS message the Input
  carries for tagpatch, so nothing the simulator accepts could fail at delivery for size (see
  docs/simulator.md).

As the simulated clock advances, every due one-time schedule that is ENABLED fires in time order:
Scheduler assumes the schedule's role and calls its target with that role's permissions (the
simulated IAM enforces them). The only target modelled is the universal target for SNS Publish
(`arn:aws:scheduler:::aws-sdk:sns:publish`), whose Input is the Publish request in the API's
member names. A delivery that fails goes to the target's dead-letter queue (again with the role);
with ActionAfterCompletion DELETE the schedule is deleted after it fired.
"""

from __future__ import annotations

import json
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import boto3
from botocore.exceptions import ClientError
from moto.scheduler.exceptions import ScheduleGroupNotFound, ValidationException
from moto.scheduler.models import Schedule, scheduler_backends
from moto.scheduler.responses import EventBridgeSchedulerResponse

from tagpatch_local.simulator import clock
from tagpatch_local.simulator.core import backend_state, correction

NAME: Final = re.compile(r"^[0-9a-zA-Z\-_.]{1,64}$")
AT: Final = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
RECURRING: Final = re.compile(r"^(rate|cron)\(.+\)$")
UNIVERSAL_SNS_PUBLISH: Final = "arn:aws:scheduler:::aws-sdk:sns:publish"
_FIRED_ATTR: Final = "tagpatch_fired"
INPUT_LIMIT: Final = 262_144  # bytes of a target's Input (assumed: see the module docstring)


def one_time_at(expression: str, timezone: str | None) -> datetime | None:
    """When an `at(...)` expression fires (UTC), or None for rate/cron; ValidationException otherwise."""
    found = AT.match(expression)
    if found is None:
        if RECURRING.match(expression):
            return None
        raise ValidationException(f"Invalid Schedule Expression {expression}.")
    try:
        local = datetime.fromisoformat(found.group(1))
        zone = zoneinfo.ZoneInfo(timezone or "UTC")
    except (ValueError, zoneinfo.ZoneInfoNotFoundError) as error:
        raise ValidationException(f"Invalid Schedule Expression {expression}.") from error
    return local.replace(tzinfo=zone).astimezone(UTC)


def _body(response: Any) -> dict[str, Any]:
    body = response.body
    if isinstance(body, bytes):
        body = body.decode()
    parsed = json.loads(body or "{}")
    return parsed if isinstance(parsed, dict) else {}


@correction(
    "CreateSchedule",
    service="scheduler",
    response_class=EventBridgeSchedulerResponse,
    why="moto fails with an internal error on a missing group and accepts any name, expression and "
    "Input, including an at() time that has passed",
)
def _create_schedule(response: Any) -> dict[str, Any]:
    params = _body(response)
    name = response.uri.split("?")[0].split("/")[-1]
    group = str(params.get("GroupName") or "default")
    for label, value in (("name", name), ("groupName", group)):
        if not NAME.match(value):
            raise ValidationException(
                f"1 validation error detected: Value '{value}' at '{label}' failed to satisfy constraint: "
                "Member must satisfy regular expression pattern: [0-9a-zA-Z-_.]+ and length 1-64"
            )
    backend = scheduler_backends[response.current_account][response.region]
    if group not in backend.schedule_groups:
        raise ScheduleGroupNotFound(group)
    target_input = str((params.get("Target") or {}).get("Input") or "")
    if len(target_input.encode()) > INPUT_LIMIT:
        raise ValidationException(
            f"Target Input is {len(target_input.encode())} bytes; the maximum is {INPUT_LIMIT} bytes."
        )
    expression = str(params.get("ScheduleExpression", ""))
    due = one_time_at(expression, params.get("ScheduleExpressionTimezone"))
    if due is not None and due <= clock.now(response.current_account, response.region):
        raise ValidationException(f"The schedule expression {expression} is in the past.")
    request: Any = params  # moto's signature types are narrower than what it accepts (None)
    schedule = backend.create_schedule(
        description=request.get("Description"),
        end_date=request.get("EndDate"),
        flexible_time_window=request.get("FlexibleTimeWindow"),
        group_name=group,
        kms_key_arn=request.get("KmsKeyArn"),
        name=name,
        schedule_expression=expression,
        schedule_expression_timezone=request.get("ScheduleExpressionTimezone"),
        start_date=request.get("StartDate"),
        state=request.get("State"),
        target=request.get("Target"),
        action_after_completion=request.get("ActionAfterCompletion"),
    )
    return {"ScheduleArn": schedule.arn}


# --- firing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One firing: what the schedule sent and what became of it."""

    schedule: str
    group: str
    fired_at: datetime
    delivered: bool
    error: str | None = None
    created: float = 0.0

    @property
    def key(self) -> tuple[str, str, float]:
        return (self.group, self.schedule, self.created)


def _key(schedule: Schedule) -> tuple[str, str, float]:
    return (schedule.group_name, schedule.name, float(schedule.creation_date))


def _fired(account_id: str, region: str) -> list[Delivery]:
    backend = scheduler_backends[account_id][region]
    return backend_state(backend, _FIRED_ATTR, list[Delivery])


def deliveries(account_id: str, region: str) -> list[Delivery]:
    """Every firing so far in this account and Region."""
    return list(_fired(account_id, region))


def _due(account_id: str, region: str, until: datetime) -> list[tuple[datetime, Schedule]]:
    backend = scheduler_backends[account_id][region]
    fired = {d.key for d in _fired(account_id, region)}
    due = []
    for group in backend.schedule_groups.values():
        for schedule in group.schedules.values():
            if schedule.state != "ENABLED" or _key(schedule) in fired:
                continue
            moment = one_time_at(schedule.schedule_expression, schedule.schedule_expression_timezone)
            if moment is not None and moment <= until:
                due.append((moment, schedule))
    return sorted(due, key=lambda item: (item[0], item[1].arn))


def _session(role_arn: str, region: str) -> boto3.session.Session:
    """Credentials of the schedule's role, as Scheduler assumes it."""
    sts = boto3.client("sts", region_name=region)
    credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName="scheduler")["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


def _publish(session: boto3.session.Session, target: Mapping[str, Any]) -> None:
    if target.get("Arn") != UNIVERSAL_SNS_PUBLISH:
        raise ClientError(
            {"Error": {"Code": "NotModelled", "Message": f"target {target.get('Arn')} is not simulated"}}, "Invoke"
        )
    request = json.loads(str(target.get("Input") or "{}"))
    session.client("sns").publish(**request)


def _dead_letter(session: boto3.session.Session, target: Mapping[str, Any], error: ClientError) -> None:
    arn = (target.get("DeadLetterConfig") or {}).get("Arn")
    if not arn:
        return
    _, _, _, region, account, queue = str(arn).split(":", 5)
    sqs = session.client("sqs", region_name=region)
    url = f"https://sqs.{region}.amazonaws.com/{account}/{queue}"  # Scheduler needs only sqs:SendMessage
    code = error.response.get("Error", {})
    sqs.send_message(
        QueueUrl=url,
        MessageBody=str(target.get("Input") or ""),
        MessageAttributes={
            "ERROR_CODE": {"DataType": "String", "StringValue": str(code.get("Code", "Unknown"))},
            "ERROR_MESSAGE": {"DataType": "String", "StringValue": str(code.get("Message", ""))[:1000] or "-"},
        },
    )


def fire_due(account_id: str, region: str, until: datetime) -> list[Delivery]:
    """Fire every due one-time schedule up to `until`, in time order, moving the clock to each."""
    backend = scheduler_backends[account_id][region]
    fired = []
    for moment, schedule in _due(account_id, region, until):
        if moment > clock.now(account_id, region):
            clock.set_now(account_id, region, moment)
        target = schedule.target
        session = _session(str(target["RoleArn"]), region)
        try:
            _publish(session, target)
            delivery = Delivery(schedule.name, schedule.group_name, moment, True, None, _key(schedule)[2])
        except ClientError as error:
            # Scheduler retries per RetryPolicy; the simulator's failures (denials, a missing topic)
            # do not heal by retrying, so it dead-letters at once.
            _dead_letter(session, target, error)
            delivery = Delivery(schedule.name, schedule.group_name, moment, False, str(error), _key(schedule)[2])
        _fired(account_id, region).append(delivery)
        fired.append(delivery)
        if schedule.action_after_completion == "DELETE":
            backend.delete_schedule(schedule.group_name, schedule.name)
    return fired
