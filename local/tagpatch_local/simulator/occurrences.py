"""When a maintenance window runs: the start times SSM derives from its schedule and settings.

Written from the Systems Manager User Guide ("Reference: Cron and rate expressions for Systems
Manager", "Maintenance window scheduling and active period options") and the CreateMaintenanceWindow
API reference, for the simulated clock, DescribeMaintenanceWindowSchedule and NextExecutionTime:

- cron fields as documented (L, LW, nW in day-of-month; L, nL and n#k in day-of-week), evaluated in
  the window's ScheduleTimezone (UTC when none is set);
- ScheduleOffset: the window runs that many days after each cron date, at the same local time. A cron
  date that has passed when the window is created does not run, even if its offset date is ahead;
- StartDate and EndDate bound when runs may start; they carry their own UTC offset;
- rate(): at that interval, starting from StartDate or else from the window's creation;
- at(): once, at that local time in the window's time zone.

Never imports tagpatch: this is the clock tagpatch's windows are judged by. Open questions (DST gaps,
the anchor of rate() windows) are listed in docs/simulator.md.
"""

from __future__ import annotations

import calendar
import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

_MONTH_NAMES: Final = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAY_NAMES: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_RATE: Final = re.compile(r"rate\(([0-9]+) (minute|hour|day)s?\)")
_AT: Final = re.compile(r"at\(([0-9T:\-]+)\)")
_CRON: Final = re.compile(r"cron\(([^()]*)\)")
_UNIT_MINUTES: Final = {"minute": 1, "hour": 60, "day": 24 * 60}


@dataclass(frozen=True)
class WindowTiming:
    """The settings of one window that decide when it runs."""

    schedule: str
    created: datetime  # UTC
    timezone: str | None = None
    offset_days: int | None = None
    start_date: str | None = None  # ISO 8601 with a UTC offset, as CreateMaintenanceWindow takes it
    end_date: str | None = None


def _values(text: str, low: int, high: int, names: tuple[str, ...] = ()) -> frozenset[int]:
    """Plain items only (*, a, a-b, with /step); day wildcards are matched separately."""
    result: set[int] = set()

    def single(token: str) -> int:
        return low + names.index(token) if token in names else int(token)

    for item in text.split(","):
        base, has_step, step_text = item.partition("/")
        step = int(step_text) if has_step else 1
        if base in ("*", "?"):
            first, last = low, high
        else:
            first_text, has_range, last_text = base.partition("-")
            first = single(first_text)
            last = single(last_text) if has_range else (high if has_step else first)
        result.update(range(first, last + 1, step))
    return frozenset(result)


def _sunday_first_weekday(day: date) -> int:
    return (day.weekday() + 1) % 7 + 1  # 1 = SUN ... 7 = SAT, as cron counts


def _nearest_weekday(year: int, month: int, wanted: int) -> int:
    """nW: the weekday nearest day n, never leaving the month."""
    last = calendar.monthrange(year, month)[1]
    day = min(wanted, last)
    weekday = date(year, month, day).weekday()  # 0 = Monday
    if weekday == 5:
        return day - 1 if day > 1 else day + 2
    if weekday == 6:
        return day + 1 if day < last else day - 2
    return day


@dataclass(frozen=True)
class _Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    day_of_month: str
    months: frozenset[int]
    day_of_week: str
    years: frozenset[int]
    second: int

    @classmethod
    def parse(cls, body: str) -> _Cron:
        parts = body.split()
        second = 0
        if len(parts) == 7:
            second, parts = int(parts[0]), parts[1:]
        minutes, hours, dom, month, dow, year = parts
        return cls(
            _values(minutes, 0, 59),
            _values(hours, 0, 23),
            dom,
            _values(month, 1, 12, _MONTH_NAMES),
            dow,
            _values(year, 1970, 2199),
            second,
        )

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months or day.year not in self.years:
            return False
        if self.day_of_month != "?":
            return self._day_of_month_matches(day)
        return self._day_of_week_matches(day)

    def _day_of_month_matches(self, day: date) -> bool:
        text = self.day_of_month
        last = calendar.monthrange(day.year, day.month)[1]
        if text == "L":
            return day.day == last
        if text == "LW":
            return day.day == _nearest_weekday(day.year, day.month, last)
        if text.endswith("W"):
            return day.day == _nearest_weekday(day.year, day.month, int(text[:-1]))
        return day.day in _values(text, 1, 31)

    def _day_of_week_matches(self, day: date) -> bool:
        text = self.day_of_week
        weekday = _sunday_first_weekday(day)
        if text == "L":
            return weekday == 7
        if "#" in text:
            name, _, nth = text.partition("#")
            wanted = _values(name, 1, 7, _DAY_NAMES)
            return weekday in wanted and (day.day - 1) // 7 + 1 == int(nth)
        if text.endswith("L"):
            wanted = _values(text[:-1], 1, 7, _DAY_NAMES)
            return weekday in wanted and day.day + 7 > calendar.monthrange(day.year, day.month)[1]
        return weekday in _values(text, 1, 7, _DAY_NAMES)

    def times(self) -> list[time]:
        return [time(h, m, self.second) for h in sorted(self.hours) for m in sorted(self.minutes)]


def _parse_bound(text: str | None) -> datetime | None:
    if not text:
        return None
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _zone(timing: WindowTiming) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(timing.timezone or "UTC")


def _cron_times(cron: _Cron, zone: zoneinfo.ZoneInfo, first_day: date, last_day: date) -> Iterator[datetime]:
    times = cron.times()
    day = first_day
    while day <= last_day:
        if cron.matches_day(day):
            for clock in times:
                yield datetime.combine(day, clock, tzinfo=zone)
        day += timedelta(days=1)


def occurrences(timing: WindowTiming, after: datetime, before: datetime) -> Iterator[datetime]:
    """Start times (UTC) in (after, before], in order, within StartDate and EndDate."""
    start_bound, end_bound = _parse_bound(timing.start_date), _parse_bound(timing.end_date)
    not_before = max(after, start_bound) if start_bound is not None else after
    not_after = min(before, end_bound) if end_bound is not None else before
    if not_after <= not_before:
        return
    zone = _zone(timing)
    schedule = timing.schedule
    if cron_match := _CRON.fullmatch(schedule):
        cron = _Cron.parse(cron_match.group(1))
        offset = timedelta(days=timing.offset_days or 0)
        # A cron date counts only once the window exists (and is active): see the module docstring.
        anchor = max(timing.created, start_bound) if start_bound is not None else timing.created
        first_day = (not_before - offset).astimezone(zone).date() - timedelta(days=1)
        last_day = not_after.astimezone(zone).date() + timedelta(days=1)
        for local in _cron_times(cron, zone, first_day, last_day):
            base = local.astimezone(UTC)
            run = (local + offset).astimezone(UTC)
            if base <= anchor:
                continue
            if run <= not_before:
                continue
            if run > not_after:
                return
            yield run
        return
    if rate_match := _RATE.fullmatch(schedule):
        step = timedelta(minutes=int(rate_match.group(1)) * _UNIT_MINUTES[rate_match.group(2)])
        anchor = start_bound or timing.created
        count = max(0, (not_before - anchor) // step)
        run = anchor + count * step
        while run <= not_after:
            if run > not_before:
                yield run.astimezone(UTC)
            run += step
        return
    if at_match := _AT.fullmatch(schedule):
        run = datetime.fromisoformat(at_match.group(1)).replace(tzinfo=zone).astimezone(UTC)
        if not_before < run <= not_after and run > timing.created:
            yield run
        return
    raise ValueError(f"not a schedule expression: {schedule!r}")


def next_run(timing: WindowTiming, now: datetime, *, horizon_days: int = 400) -> datetime | None:
    """The first start after `now`, or None if there is none within the horizon (or EndDate passed)."""
    return next(occurrences(timing, now, now + timedelta(days=horizon_days)), None)


def spelled_run_time(run: datetime, timing: WindowTiming) -> str:
    """A run's time as SSM answers it (ExecutionTime, NextExecutionTime): minutes, in the window's time
    zone with its offset (`2024-03-12T09:00-05:00` for America/Chicago), `Z` where the offset is zero
    (`2020-02-19T16:00Z`, the API reference's example). See docs/simulator.md for what is inferred."""
    local = run.astimezone(_zone(timing))
    offset = local.utcoffset()
    if not offset:
        return local.strftime("%Y-%m-%dT%H:%MZ")
    zone = local.strftime("%z")  # +hhmm
    return f"{local:%Y-%m-%dT%H:%M}{zone[:3]}:{zone[3:]}"
