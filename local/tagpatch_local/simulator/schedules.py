"""What SSM accepts as a maintenance window's schedule, time zone and timing settings.

Written from the SSM API reference (CreateMaintenanceWindow) and the Systems Manager User Guide
("Reference: Cron and rate expressions for Systems Manager"), never from tagpatch's own validator:
this module is the oracle tagpatch's validator is tested against.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime
from typing import Final

from moto.ssm.exceptions import ValidationException

# --------------------------------------------------------------------------------------------------
# Maintenance windows: what SSM validates and moto does not

_SCHEDULE_MAX_LENGTH: Final = 256
_RATE_RE: Final = re.compile(r"^rate\((\d+) ([a-z]+)\)$")
_RATE_UNITS: Final = {"minute": "minutes", "hour": "hours", "day": "days"}
_AT_RE: Final = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_CRON_RE: Final = re.compile(r"^cron\((.*)\)$")
_CRON_FIELD_RE: Final = re.compile(r"^[0-9A-Za-z*?,/#\-]+$")


def schedule_problem(expression: str) -> str | None:
    """Why SSM would reject a maintenance window Schedule, or None if it has the right structure.

    Deliberately independent of tagpatch.schedule (the simulator is an oracle for that code): a
    structural check of cron(6 or 7 fields, day-of-month or day-of-week '?'), rate(N unit, singular
    iff N is 1) and at(yyyy-mm-ddThh:mm:ss).
    """
    if not 1 <= len(expression) <= _SCHEDULE_MAX_LENGTH:
        return f"a schedule is 1-{_SCHEDULE_MAX_LENGTH} characters"
    if cron := _CRON_RE.match(expression):
        fields = cron.group(1).split()
        if len(fields) not in (6, 7):
            return f"cron() takes 6 or 7 fields, got {len(fields)}"
        if bad := [f for f in fields if not _CRON_FIELD_RE.match(f)]:
            return f"cron() field {bad[0]!r} is not valid"
        if "?" not in (fields[2], fields[4]):
            return "cron() needs '?' in the day-of-month or the day-of-week field"
        return None
    if rate := _RATE_RE.match(expression):
        value, unit = int(rate.group(1)), rate.group(2)
        singular = unit if unit in _RATE_UNITS else next((s for s, p in _RATE_UNITS.items() if p == unit), None)
        if singular is None:
            return f"rate() unit {unit!r} is not one of minute(s), hour(s), day(s)"
        if value < 1:
            return "rate() value must be a positive integer"
        expected = singular if value == 1 else _RATE_UNITS[singular]
        if unit != expected:
            return f"rate({value} {unit}) must use the unit {expected!r}"
        return None
    if at := _AT_RE.match(expression):
        try:
            datetime.strptime(at.group(1), "%Y-%m-%dT%H:%M:%S")  # wall-clock time, no zone
        except ValueError:
            return f"at() date {at.group(1)!r} is not a valid date and time"
        return None
    return "use cron(...), rate(...) or at(yyyy-mm-ddThh:mm:ss)"


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
