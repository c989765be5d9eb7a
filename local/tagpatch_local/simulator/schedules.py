"""What SSM accepts as a maintenance window's schedule, time zone and timing settings.

Written from the SSM API reference (CreateMaintenanceWindow: Schedule 1-256 characters, Duration 1-24,
Cutoff 0-23, ScheduleOffset 1-6) and the Systems Manager User Guide, "Reference: Cron and rate
expressions for Systems Manager" and "Maintenance window scheduling and active period options":

- cron: six required fields, Minutes Hours Day-of-month Month Day-of-week Year; maintenance windows
  also take a seventh, leading Seconds field. Field values and wildcards as in the reference's table
  (the same table EventBridge documents): Minutes 0-59 and Hours 0-23 with `, - * /`; Day-of-month
  1-31 with `, - * ? / L W`; Month 1-12 or JAN-DEC with `, - * /`; Day-of-week 1-7 or SUN-SAT with
  `, - * ? L #`; Year 1970-2199 with `, - * /`. Either day-of-month or day-of-week is `?`, not both.
  A window cannot run more often than every 5 minutes.
- rate: `rate(value unit)`, unit minute(s), hour(s) or day(s); singular exactly when value is 1.
- at: `at(yyyy-mm-ddThh:mm:ss)`, a run at one date and time.

Never derived from tagpatch's own validator: this module is the oracle that validator is tested
against (tests/unit/simulator/test_schedule_differential.py). What the documents leave open is listed in
docs/simulator.md, and decided here on the strict side.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from moto.ssm.exceptions import ValidationException

SCHEDULE_MAX_LENGTH: Final = 256
MIN_MINUTES_BETWEEN_RUNS: Final = 5

_RATE: Final = re.compile(r"rate\(([0-9]+) ([a-z]+)\)")
_RATE_UNITS: Final = {"minute": "minutes", "hour": "hours", "day": "days"}
_AT: Final = re.compile(r"at\(([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})\)")
_CRON: Final = re.compile(r"cron\(([^()]*)\)")
_NUMBER: Final = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class _CronField:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names for low, low+1, ... (months, days)
    question: bool = False  # "?" allowed
    last: bool = False  # L allowed (day-of-month: L, LW; day-of-week: L, nL)
    weekday: bool = False  # nW allowed (day-of-month)
    nth: bool = False  # n#k allowed (day-of-week)


_SECONDS: Final = _CronField("Seconds", 0, 59)
_FIELDS: Final = (
    _CronField("Minutes", 0, 59),
    _CronField("Hours", 0, 23),
    _CronField("Day-of-month", 1, 31, question=True, last=True, weekday=True),
    _CronField(
        "Month", 1, 12, names=("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
    ),
    _CronField(
        "Day-of-week", 1, 7, names=("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), question=True, last=True, nth=True
    ),
    _CronField("Year", 1970, 2199),
)


class _Rejected(ValueError):
    pass


def _single(field: _CronField, token: str) -> int:
    """One value: a number in the field's range, or one of its names (as the reference spells them)."""
    if token in field.names:
        return field.low + field.names.index(token)
    if not _NUMBER.fullmatch(token):
        raise _Rejected(f"{field.name} value {token!r} is not valid")
    value = int(token)
    if not field.low <= value <= field.high:
        raise _Rejected(f"{field.name} value {value} is outside {field.low}-{field.high}")
    return value


def _item_values(field: _CronField, item: str) -> set[int]:
    """The values one comma-separated item stands for: *, a, a-b, with an optional /step."""
    base, has_step, step_text = item.partition("/")
    step = 1
    if has_step:
        if not _NUMBER.fullmatch(step_text) or int(step_text) == 0:
            raise _Rejected(f"{field.name} increment {step_text!r} is not a positive number")
        step = int(step_text)
    if base == "*":
        return set(range(field.low, field.high + 1, step))
    first_text, has_range, last_text = base.partition("-")
    first = _single(field, first_text)
    if not has_range:
        return set(range(first, field.high + 1, step)) if has_step else {first}
    last = _single(field, last_text)
    if last < first:
        raise _Rejected(f"{field.name} range {base!r} runs backwards")
    return set(range(first, last + 1, step))


def _special(field: _CronField, item: str) -> bool:
    """True for the day wildcards L, LW, nW, nL and n#k where the field allows them."""
    if field.last and field.weekday and item in ("L", "LW"):
        return True
    if field.weekday and item.endswith("W") and _NUMBER.fullmatch(item[:-1]):
        _single(field, item[:-1])
        return True
    if field.nth and "#" in item:
        day, _, occurrence = item.partition("#")
        _single(field, day)
        if not _NUMBER.fullmatch(occurrence) or not 1 <= int(occurrence) <= 5:
            raise _Rejected(f"{field.name} occurrence {occurrence!r} after # is not 1-5")
        return True
    if field.last and field.nth and item.endswith("L"):
        if item != "L":
            _single(field, item[:-1])
        return True
    return False


def _field_values(field: _CronField, text: str) -> set[int]:
    if text == "?":
        if not field.question:
            raise _Rejected(f"? is not allowed in {field.name}")
        return set()
    items = text.split(",")
    values: set[int] = set()
    for item in items:
        if _special(field, item):
            if len(items) > 1:
                raise _Rejected(f"{field.name} item {item!r} cannot be part of a list")
            continue
        values |= _item_values(field, item)
    return values


def _cron_problem(body: str) -> str | None:
    parts = body.split(" ")
    if any(part == "" for part in parts):
        return "cron() fields are separated by single spaces"
    if len(parts) == 7:
        # A leading Seconds field; the guide's maintenance-window note rules out 0 (and so every
        # wildcard, which would include 0 or run more often than every 5 minutes).
        seconds, parts = parts[0], parts[1:]
        if problem := _seconds_problem(seconds):
            return problem
    if len(parts) != 6:
        return f"cron() takes 6 or 7 fields (Seconds first), got {len(parts)}"
    try:
        values = [_field_values(field, text) for field, text in zip(_FIELDS, parts, strict=True)]
    except _Rejected as rejected:
        return str(rejected)
    day_of_month, day_of_week = parts[2], parts[4]
    if (day_of_month == "?") == (day_of_week == "?"):
        return "exactly one of Day-of-month and Day-of-week must be '?'"
    return _spacing_problem(minutes=values[0], hours=values[1])


def _seconds_problem(seconds: str) -> str | None:
    try:
        if _single(_SECONDS, seconds) == 0:
            return "a Seconds value of 0 is not supported"
    except _Rejected as rejected:
        return str(rejected)
    return None


def _spacing_problem(*, minutes: Iterable[int], hours: Iterable[int]) -> str | None:
    """Whether two of the day's start times are closer than a window may run."""
    starts = sorted(hour * 60 + minute for hour in hours for minute in minutes)
    if len(starts) > 1:
        # Around midnight too: consecutive days may both match.
        gaps = [b - a for a, b in zip(starts, [*starts[1:], starts[0] + 24 * 60], strict=True)]
        if min(gaps) < MIN_MINUTES_BETWEEN_RUNS:
            return f"runs {min(gaps)} minute(s) apart; a window runs at most every {MIN_MINUTES_BETWEEN_RUNS} minutes"
    return None


def schedule_problem(expression: str) -> str | None:
    """Why SSM rejects `expression` as a maintenance window Schedule, or None if it accepts it."""
    if not 1 <= len(expression) <= SCHEDULE_MAX_LENGTH:
        return f"a schedule is 1-{SCHEDULE_MAX_LENGTH} characters"
    if cron := _CRON.fullmatch(expression):
        return _cron_problem(cron.group(1))
    if rate := _RATE.fullmatch(expression):
        return _rate_problem(*rate.groups())
    if at := _AT.fullmatch(expression):
        try:
            datetime.strptime(at.group(1), "%Y-%m-%dT%H:%M:%S")  # wall-clock time, no zone
        except ValueError:
            return f"at() date {at.group(1)!r} is not a valid date and time"
        return None
    return "use cron(...), rate(...) or at(yyyy-mm-ddThh:mm:ss)"


def _rate_problem(value_text: str, unit: str) -> str | None:
    value = int(value_text)
    if value < 1 or value_text != str(value):
        return f"rate() value {value_text!r} is not a positive whole number"
    singular = unit.removesuffix("s")
    if singular not in _RATE_UNITS:
        return f"rate() unit {unit!r} is not one of minute(s), hour(s), day(s)"
    expected = singular if value == 1 else _RATE_UNITS[singular]
    if unit != expected:
        return f"rate({value_text} {unit}) must use the unit {expected!r}"
    if singular == "minute" and value < MIN_MINUTES_BETWEEN_RUNS:
        return f"a window runs at most every {MIN_MINUTES_BETWEEN_RUNS} minutes"
    return None


def _timezone_valid(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def check_window_settings(
    *,
    schedule: str | None,
    timezone: str | None,
    offset: int | None,
    duration: int | None,
    cutoff: int | None,
) -> None:
    """Rules across fields, on the values the window will have after the request."""
    if schedule is not None and (problem := schedule_problem(schedule)) is not None:
        raise ValidationException(f"Invalid schedule expression {schedule!r}: {problem}.")
    if timezone is not None and not _timezone_valid(timezone):
        raise ValidationException(
            f"Invalid ScheduleTimezone {timezone!r}: specify an IANA time zone such as Etc/UTC or America/Los_Angeles."
        )
    if offset is not None and schedule is not None and not schedule.startswith("cron("):
        raise ValidationException("ScheduleOffset can be specified only with a cron expression.")
    if duration is not None and cutoff is not None and cutoff >= duration:
        raise ValidationException(f"The Cutoff ({cutoff} hours) must be less than the Duration ({duration} hours).")
