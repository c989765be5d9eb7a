"""Validation of SSM maintenance-window schedule expressions: cron(...), rate(...) and at(...).

moto accepts any schedule and SSM's own error messages are terse, so tagpatch checks a schedule
before it ever reaches CreateMaintenanceWindow and says exactly what to fix. Rules follow the
"Reference: Cron and rate expressions for Systems Manager" page of the SSM User Guide:

- cron: six required fields (Minutes Hours Day-of-month Month Day-of-week Year); a seventh, leading
  Seconds field is optional for maintenance windows (and may not be 0). One of day-of-month and
  day-of-week must be "?". Schedules faster than every 5 minutes are not supported.
- rate: "rate(value unit)" with unit minute(s), hour(s) or day(s); singular iff value is 1.
- at: "at(yyyy-mm-ddThh:mm:ss)", a single run (UTC unless the window has a time zone).

Pure: no I/O and no clock reads, so "at" cannot (and does not) check that the time is in the future.
"""

from __future__ import annotations

import itertools
import json
import re
import unicodedata
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

ScheduleKind = Literal["cron", "rate", "at"]

MAX_LENGTH: Final = 256
MIN_INTERVAL_MINUTES: Final = 5
ASSOCIATION_MIN_INTERVAL_MINUTES: Final = 30
EXAMPLE_CRON: Final = "cron(0 2 ? * SUN *)"

_PREFIXES: Final[tuple[tuple[str, ScheduleKind], ...]] = (("cron(", "cron"), ("rate(", "rate"), ("at(", "at"))
_DIGITS: Final = re.compile(r"[0-9]+")  # not \d: it also matches non-ASCII digits int() may reject
_AT: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})")
_RATE_UNITS: Final[Mapping[str, tuple[str, str]]] = {
    # unit as written -> (singular, plural)
    "minute": ("minute", "minutes"),
    "minutes": ("minute", "minutes"),
    "hour": ("hour", "hours"),
    "hours": ("hour", "hours"),
    "day": ("day", "days"),
    "days": ("day", "days"),
}
_RATE_SINGULAR: Final = frozenset({"minute", "hour", "day"})

_MONTHS: Final[Mapping[str, int]] = {
    name: i + 1
    for i, name in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))
}
_DAYS: Final[Mapping[str, int]] = {
    name: i + 1 for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))
}


class InvalidSchedule(ValueError):
    """A schedule SSM would reject; str(exc) says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Schedule:
    expression: str  # normalised expression, exactly as it should be sent to SSM
    kind: ScheduleKind


def _quote(value: str, limit: int = 60) -> str:
    """Quote a user value for a message: escaped control characters, cut to a readable length."""
    if len(value) > limit:
        value = value[:limit] + "..."
    return json.dumps(value, ensure_ascii=False)


def is_schedule_expression(value: str) -> bool:
    """True if value is meant as a schedule (cron(/rate(/at(), as opposed to a policy window name."""
    text: object = value  # callers outside mypy's reach may pass None
    if not isinstance(text, str):
        return False
    return _kind_of(text.strip()) is not None


def _kind_of(text: str) -> ScheduleKind | None:
    lowered = text.lower()
    for prefix, kind in _PREFIXES:
        if lowered.startswith(prefix):
            return kind
    return None


def parse_schedule(expression: str) -> Schedule:
    """Validate a maintenance-window schedule; raise InvalidSchedule with a specific reason."""
    given: object = expression  # callers outside mypy's reach may pass None
    if not isinstance(given, str):
        raise InvalidSchedule(f"schedule must be text, got {type(given).__name__}")
    text = given.strip()
    if not text:
        raise InvalidSchedule(f"schedule expression is empty; use e.g. {EXAMPLE_CRON}")
    if len(text) > MAX_LENGTH:
        raise InvalidSchedule(f"schedule expression is {len(text)} characters long; SSM allows at most {MAX_LENGTH}")
    kind = _kind_of(text)
    if kind is None:
        raise InvalidSchedule(
            f"schedule {_quote(text)} must be cron(...), rate(...) or at(...); e.g. {EXAMPLE_CRON}, "
            "rate(7 days) or at(2020-07-07T15:55:00)"
        )
    if not text.endswith(")"):
        raise InvalidSchedule(f'{kind}(...) expression {_quote(text)} must end with ")"')
    _reject_non_ascii(text, kind)
    inner = text[len(kind) + 1 : -1]
    if "(" in inner or ")" in inner:
        raise InvalidSchedule(f"{kind}(...) expression {_quote(text)} has unbalanced or nested parentheses")
    if kind == "cron":
        return Schedule(_parse_cron(inner), "cron")
    if kind == "rate":
        return Schedule(_parse_rate(inner), "rate")
    return Schedule(_parse_at(inner), "at")


def _reject_non_ascii(text: str, kind: str) -> None:
    # Copy-pasted schedules often carry a no-break space or a typographic dash that looks right
    # but that SSM rejects; name the character so it can be found.
    for ch in text:
        if not (ch.isascii() and ch.isprintable()):
            name = unicodedata.name(ch, "unnamed character")
            raise InvalidSchedule(
                f"{kind}(...) expression {_quote(text)} contains U+{ord(ch):04X} ({name}); "
                "retype it using plain ASCII characters and spaces"
            )


def parse_association_schedule(expression: str) -> Schedule:
    """Validate the schedule of a State Manager association (tagpatch's patch scan).

    The same cron and rate forms as a window, with the association rules of the SSM guide's cron and
    rate reference: runs at least 30 minutes apart and no Seconds field. A one-off at() is refused: a
    scan that runs once leaves every later compliance record stale.
    """
    schedule = parse_schedule(expression)
    if schedule.kind == "at":
        raise InvalidSchedule(
            f"{schedule.expression} runs once; the scan must repeat: use e.g. rate(1 day) or cron(0 4 ? * * *)"
        )
    if schedule.kind == "rate":
        value, unit = schedule.expression[len("rate(") : -1].split()
        if unit.startswith("minute") and int(value) < ASSOCIATION_MIN_INTERVAL_MINUTES:
            raise InvalidSchedule(
                f"{schedule.expression} runs more often than every {ASSOCIATION_MIN_INTERVAL_MINUTES} minutes, "
                f"which associations do not support; use rate({ASSOCIATION_MIN_INTERVAL_MINUTES} minutes) or longer"
            )
        return schedule
    fields = schedule.expression[len("cron(") : -1].split()
    if len(fields) == 7:
        raise InvalidSchedule(
            f"{schedule.expression} has a Seconds field, which only maintenance windows take; drop it (6 fields)"
        )
    too_fast = _too_frequent(
        _parse_field(_MINUTES, fields[0]), _parse_field(_HOURS, fields[1]), ASSOCIATION_MIN_INTERVAL_MINUTES
    )
    if too_fast is not None:
        raise InvalidSchedule(
            f"{schedule.expression} starts runs only {too_fast}; associations can't run more often than every "
            f"{ASSOCIATION_MIN_INTERVAL_MINUTES} minutes"
        )
    return schedule


# --- rate -------------------------------------------------------------------------------------


def _parse_rate(inner: str) -> str:
    parts = inner.split()
    if len(parts) != 2:
        raise InvalidSchedule(
            f"rate({inner}) needs a value and a unit separated by a space, e.g. rate(7 days) or rate(1 hour)"
        )
    value_text, unit_text = parts
    unit = unit_text.lower()
    if not _DIGITS.fullmatch(value_text):
        raise InvalidSchedule(
            f"rate({inner}): value {_quote(value_text)} is not a positive whole number; e.g. rate(7 days)"
        )
    if value_text.startswith("0"):
        if int(value_text) == 0:
            raise InvalidSchedule(f"rate({inner}): the value must be 1 or more, e.g. rate(1 day)")
        raise InvalidSchedule(
            f"rate({inner}): value {_quote(value_text)} has a leading zero; write rate({int(value_text)} {unit})"
        )
    if unit not in _RATE_UNITS:
        raise InvalidSchedule(
            f"rate({inner}): unit {_quote(unit_text)} is not supported; use minute(s), hour(s) or day(s), "
            "e.g. rate(7 days)"
        )
    value = int(value_text)
    singular, plural = _RATE_UNITS[unit]
    if value == 1 and unit != singular:
        raise InvalidSchedule(f"rate({inner}): the unit must be singular when the value is 1; use rate(1 {singular})")
    if value > 1 and unit in _RATE_SINGULAR:
        raise InvalidSchedule(
            f"rate({inner}): the unit must be plural when the value is more than 1; use rate({value} {plural})"
        )
    if singular == "minute" and value < MIN_INTERVAL_MINUTES:
        raise InvalidSchedule(
            f"rate({inner}) runs more often than every {MIN_INTERVAL_MINUTES} minutes, which maintenance "
            f"windows do not support; use rate({MIN_INTERVAL_MINUTES} minutes) or longer"
        )
    return f"rate({value} {unit})"


# --- at ---------------------------------------------------------------------------------------


def _parse_at(inner: str) -> str:
    stamp = inner.strip()
    match = _AT.fullmatch(stamp)
    if match is None:
        raise InvalidSchedule(
            f"at({inner}) needs a timestamp as yyyy-mm-ddThh:mm:ss without a time zone, e.g. at(2020-07-07T15:55:00)"
        )
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    try:
        datetime(year, month, day, hour, minute, second)  # only to check the date is real
    except ValueError as exc:
        raise InvalidSchedule(f"at({inner}) is not a real date and time ({exc})") from None
    return f"at({stamp.upper()})"


def one_off_start(schedule: Schedule, timezone: str) -> datetime | None:
    """When an at() window runs, as a UTC instant: SSM reads its time in the window's time zone."""
    if schedule.kind != "at":
        return None
    local = datetime.fromisoformat(schedule.expression[len("at(") : -1])
    return local.replace(tzinfo=zoneinfo.ZoneInfo(timezone)).astimezone(UTC)


# --- cron -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: Mapping[str, int]
    kind_of_value: str  # "a valid day", "a valid month", "a number"
    hint: str  # what would fix an out-of-range or unknown value


_FIELDS: Final[tuple[_Field, ...]] = (
    _Field("minutes", 0, 59, {}, "a number", "use 0-59"),
    _Field("hours", 0, 23, {}, "a number", "use 0-23"),
    _Field("day-of-month", 1, 31, {}, "a valid day of the month", "use 1-31"),
    _Field("month", 1, 12, _MONTHS, "a valid month", "use 1-12 or JAN-DEC"),
    _Field("day-of-week", 1, 7, _DAYS, "a valid day", "use 1-7 or SUN-SAT"),
    _Field("year", 1970, 2199, {}, "a valid year", "use 1970-2199"),
)
_MINUTES, _HOURS, _DOM, _MONTH, _DOW, _YEAR = _FIELDS


class _FieldError(Exception):
    pass


def _parse_cron(inner: str) -> str:
    fields = inner.split()
    count = len(fields)
    if count == 7:
        seconds, fields = fields[0], fields[1:]
        _check_seconds(seconds)
    elif count != 6:
        hint = ' (the Year field is required: add " *" at the end)' if count == 5 else ""
        raise InvalidSchedule(
            f"cron({inner}): expected 6 fields (Minutes Hours Day-of-month Month Day-of-week Year), "
            f"or 7 with a leading Seconds field, got {count}{hint}; e.g. {EXAMPLE_CRON}"
        )
    else:
        seconds = None
    fields = [f.upper() for f in fields]  # names are case-insensitive; SSM documents them in capitals

    errors: list[str] = []
    values: dict[str, frozenset[int]] = {}
    for spec, raw in zip(_FIELDS, fields, strict=True):
        try:
            values[spec.name] = _parse_field(spec, raw)
        except _FieldError as exc:
            errors.append(str(exc))

    dom, dow = fields[2], fields[4]
    if dom != "?" and dow != "?":
        example = _with(fields, 2, "?") if dow != "*" else _with(fields, 4, "?")
        errors.append(
            f'cron expression needs "?" in either day-of-month or day-of-week (got {_quote(dom)} and '
            f"{_quote(dow)}); e.g. {example}"
        )
    elif dom == "?" and dow == "?":
        errors.append(
            'cron expression can\'t have "?" in both day-of-month and day-of-week; put "*" or a value in '
            f"one of them, e.g. {_with(fields, 2, '*')}"
        )

    if _MINUTES.name in values and _HOURS.name in values:
        too_fast = _too_frequent(values[_MINUTES.name], values[_HOURS.name])
        if too_fast is not None:
            errors.append(
                f"minutes field {_quote(fields[0])} with hours field {_quote(fields[1])} starts runs only "
                f"{too_fast}; maintenance "
                f"windows can't run more often than every {MIN_INTERVAL_MINUTES} minutes: space the minutes "
                'at least 5 apart, e.g. "0/5", or use a single minute such as "0"'
            )

    if errors:
        raise InvalidSchedule("; ".join(errors))
    prefix = [seconds] if seconds is not None else []
    return "cron(" + " ".join([*prefix, *fields]) + ")"


def _with(fields: list[str], index: int, value: str) -> str:
    changed = list(fields)
    changed[index] = value
    return "cron(" + " ".join(changed) + ")"


def _check_seconds(raw: str) -> None:
    # The SSM guide allows a Seconds value for maintenance windows but says 0 is not supported;
    # a plain number is all that makes sense (any list or step would run more often than 5 minutes).
    if not _DIGITS.fullmatch(raw):
        raise InvalidSchedule(
            f"seconds field {_quote(raw)} must be a single number 1-59 (lists, ranges and wildcards would "
            "run more often than every 5 minutes); or drop the seconds field and use 6 fields"
        )
    value = int(raw)
    if value == 0:
        raise InvalidSchedule(
            'seconds field "0" is not supported for maintenance windows; drop the seconds field '
            "(the 6-field form already runs at second 0)"
        )
    if value > 59:
        raise InvalidSchedule(f"seconds field {_quote(raw)} is out of range; use 1-59, or drop the seconds field")


def _too_frequent(minutes: frozenset[int], hours: frozenset[int], minimum: int = MIN_INTERVAL_MINUTES) -> str | None:
    """Describe the shortest gap between two runs in a day if it is under `minimum` minutes, else None."""
    times = sorted(h * 60 + m for h in hours for m in minutes)
    if len(times) < 2:
        return None
    # Wrap past midnight too (23:58 then 00:01): conservative, as days may be consecutive.
    pairs = [*itertools.pairwise(times), (times[-1], times[0] + 24 * 60)]
    first, second = min(pairs, key=lambda p: p[1] - p[0])
    gap = second - first
    if gap >= minimum:
        return None

    def hhmm(t: int) -> str:
        t %= 24 * 60
        return f"{t // 60:02d}:{t % 60:02d}"

    unit = "minute" if gap == 1 else "minutes"
    return f"{gap} {unit} apart (e.g. at {hhmm(first)} and {hhmm(second)})"


def _parse_field(spec: _Field, raw: str) -> frozenset[int]:
    """Values the field allows. Items with L, W or # contribute no values: only minutes and hours
    are used afterwards (for the 5-minute rule), and those fields cannot hold such items."""

    def fail(item: str, problem: str) -> _FieldError:
        where = f"{spec.name} field {_quote(raw)}"
        if item != raw:
            where += f": {_quote(item)}"
        return _FieldError(f"{where} {problem}")

    if raw == "?":
        if spec not in (_DOM, _DOW):
            raise fail(raw, 'is not allowed; "?" is only for day-of-month or day-of-week')
        return frozenset()
    items = raw.split(",")
    special = _special_parser(spec)
    values: set[int] = set()
    for item in items:
        if item == "":
            raise fail(item, "has an empty item; remove the extra comma")
        if item == "?":
            raise fail(item, 'can\'t be combined with other values; use "?" on its own')
        handled = special(item, fail) if special is not None else False
        if handled:
            if len(items) > 1:
                raise fail(item, f"can't be combined with other values; use {_quote(item)} on its own")
            continue
        values.update(_parse_plain(spec, item, fail))
    return frozenset(values)


_Fail = Callable[[str, str], _FieldError]


def _special_parser(spec: _Field) -> Callable[[str, _Fail], bool] | None:
    if spec is _DOM:
        return _dom_special
    if spec is _DOW:
        return _dow_special
    return None


def _dom_special(item: str, fail: _Fail) -> bool:
    """L (last day), LW (last weekday) and nW (weekday nearest day n). True if item is one of them."""
    if item in ("L", "LW"):
        return True
    if item.endswith("W"):
        day = item[:-1]
        if not _DIGITS.fullmatch(day):
            raise fail(item, 'is not valid; "W" follows a day number, e.g. "15W" (weekday nearest the 15th)')
        if not 1 <= int(day) <= 31:
            raise fail(item, "has a day out of range; use 1-31 before W")
        return True
    if "L" in item:
        raise fail(item, 'is not valid; in day-of-month use "L" on its own (last day) or "LW"')
    if "#" in item:
        raise fail(item, 'uses "#", which is only allowed in day-of-week, e.g. "TUE#2"')
    return False


def _dow_special(item: str, fail: _Fail) -> bool:
    """L (last day of the week), nL (last such day of the month) and n#k (k-th such day)."""
    if item == "L":
        return True
    if "#" in item:
        day, _, nth = item.partition("#")
        _day_value(day, item, fail)
        if not _DIGITS.fullmatch(nth) or not 1 <= int(nth) <= 5:
            raise fail(item, 'has an invalid occurrence after "#"; use 1-5, e.g. "TUE#2" for the second Tuesday')
        return True
    if item.endswith("L"):
        _day_value(item[:-1], item, fail)
        return True
    return False


def _day_value(token: str, item: str, fail: _Fail) -> int:
    if token in _DAYS:
        return _DAYS[token]
    if _DIGITS.fullmatch(token) and 1 <= int(token) <= 7:
        return int(token)
    raise fail(item, f"has {_quote(token)}, which is not a valid day; use 1-7 or SUN-SAT")


def _parse_plain(spec: _Field, item: str, fail: _Fail) -> range:
    """*, */s, v, v/s, v-w and v-w/s, where v and w are numbers or names."""
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not _DIGITS.fullmatch(step_text):
            raise fail(item, 'has a step that is not a whole number; write e.g. "0/15"')
        step = int(step_text)
        if step < 1:
            raise fail(item, f'has step {step}; the step after "/" must be 1 or more')
    if base == "*":
        return range(spec.low, spec.high + 1, step)
    start_text, dash, end_text = base.partition("-")
    start = _value(spec, start_text, item, fail)
    if not dash:
        # "v/s" means from v to the end of the field's range, every s.
        return range(start, spec.high + 1, step) if slash else range(start, start + 1)
    end = _value(spec, end_text, item, fail)
    if end < start:
        raise fail(item, f'is a descending range; write it low-high, e.g. "{end_text}-{start_text}"')
    return range(start, end + 1, step)


def _value(spec: _Field, token: str, item: str, fail: _Fail) -> int:
    if token in spec.names:
        return spec.names[token]
    if not _DIGITS.fullmatch(token):
        if token in ("L", "W") or "#" in token:
            raise fail(item, f"uses {_quote(token)}, which is not allowed in the {spec.name} field")
        subject = "is" if token == item else f"has {_quote(token)}, which is"
        raise fail(item, f"{subject} not {spec.kind_of_value}; {spec.hint}")
    number = int(token)
    if not spec.low <= number <= spec.high:
        subject = "is" if token == item else f"has {number}, which is"
        raise fail(item, f"{subject} out of range; {spec.hint}")
    return number
