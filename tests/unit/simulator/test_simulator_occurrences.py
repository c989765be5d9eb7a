"""When the simulated SSM runs a window: dates worked out by hand from a calendar, not by the code."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tagpatch_local.simulator.occurrences import WindowTiming, next_run, occurrences

CREATED = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)  # a Sunday


def runs(schedule: str, after: datetime, before: datetime, **settings: object) -> list[datetime]:
    timing = WindowTiming(schedule=schedule, created=settings.pop("created", CREATED), **settings)  # type: ignore[arg-type]
    return list(occurrences(timing, after, before))


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[arg-type,misc]


def test_weekly_cron_runs_every_sunday_in_utc() -> None:
    assert runs("cron(0 2 ? * SUN *)", utc(2026, 11, 1), utc(2026, 11, 30)) == [
        utc(2026, 11, 1, 2),
        utc(2026, 11, 8, 2),
        utc(2026, 11, 15, 2),
        utc(2026, 11, 22, 2),
        utc(2026, 11, 29, 2),
    ]


def test_the_window_s_time_zone_and_offset() -> None:
    # Second Tuesday of December 2026 is the 8th; two days later, 23:30 in Berlin (UTC+1).
    assert runs(
        "cron(30 23 ? * TUE#2 *)", utc(2026, 12, 1), utc(2026, 12, 31), timezone="Europe/Berlin", offset_days=2
    ) == [utc(2026, 12, 10, 22, 30)]


def test_a_cron_date_before_creation_does_not_run_even_if_its_offset_date_is_ahead() -> None:
    # Created on 9 December: the cron date (8th) has passed, so the 10th does not run; January does.
    created = utc(2026, 12, 9)
    found = runs("cron(30 23 ? * TUE#2 *)", created, utc(2027, 1, 31), offset_days=2, created=created)
    assert found == [utc(2027, 1, 14, 23, 30)]  # second Tuesday of January 2027 is the 12th


@pytest.mark.parametrize(
    ("day_fields", "expected_day"),
    [
        ("L * ?", utc(2027, 1, 31, 2)),  # the last day of January 2027 (a Sunday)
        ("LW * ?", utc(2027, 1, 29, 2)),  # its last weekday, Friday the 29th
        ("? * 6L", utc(2027, 1, 29, 2)),  # the last Friday
        ("? * FRI#5", utc(2027, 1, 29, 2)),  # the fifth Friday
        ("? * L", utc(2027, 1, 30, 2)),  # L alone in day-of-week: the last day of the week, Saturday
    ],
)
def test_last_and_nth_day_wildcards(day_fields: str, expected_day: datetime) -> None:
    dom, month, dow = day_fields.split()
    schedule = f"cron(0 2 {dom} {month} {dow} 2027)"
    assert runs(schedule, utc(2027, 1, 1), utc(2027, 1, 31, 23))[-1] == expected_day


def test_nearest_weekday_never_leaves_the_month() -> None:
    # 1 August 2026 is a Saturday: 1W is Monday the 3rd, not Friday 31 July. 15 August is a Saturday too.
    created = utc(2026, 7, 1)
    assert runs("cron(0 2 1W * ? *)", utc(2026, 8, 1), utc(2026, 8, 31), created=created) == [utc(2026, 8, 3, 2)]
    assert runs("cron(0 2 15W * ? *)", utc(2026, 8, 1), utc(2026, 8, 31), created=created) == [utc(2026, 8, 14, 2)]


def test_a_month_without_a_fifth_friday_has_no_run() -> None:
    assert runs("cron(0 2 ? * FRI#5 *)", utc(2026, 12, 1), utc(2026, 12, 31)) == []


def test_start_and_end_dates_bound_the_runs() -> None:
    found = runs(
        "cron(0 2 ? * * *)",
        utc(2026, 11, 1),
        utc(2026, 11, 30),
        start_date="2026-11-10T00:00:00Z",
        end_date="2026-11-12T12:00:00+00:00",
    )
    assert found == [utc(2026, 11, 10, 2), utc(2026, 11, 11, 2), utc(2026, 11, 12, 2)]


def test_rate_runs_from_creation_and_at_runs_once_in_the_window_s_zone() -> None:
    created = utc(2026, 11, 1, 9, 30)
    assert runs("rate(2 days)", created, utc(2026, 11, 6), created=created) == [
        utc(2026, 11, 3, 9, 30),
        utc(2026, 11, 5, 9, 30),
    ]
    assert runs("at(2026-12-24T22:00:00)", utc(2026, 12, 1), utc(2026, 12, 31), timezone="America/New_York") == [
        utc(2026, 12, 25, 3)
    ]


def test_next_run_is_none_once_the_end_date_has_passed() -> None:
    timing = WindowTiming("cron(0 2 ? * SUN *)", CREATED, end_date="2026-11-05T00:00:00Z")
    assert next_run(timing, utc(2026, 11, 2)) is None
    assert next_run(WindowTiming("cron(0 2 ? * SUN *)", CREATED), utc(2026, 11, 2)) == utc(2026, 11, 8, 2)


def test_describe_maintenance_window_schedule_answers_from_the_simulated_clock(ssm: Any) -> None:
    from tagpatch_local.simulator import clock

    clock.set_now("123456789012", "us-east-1", utc(2026, 11, 1))
    window_id = ssm.create_maintenance_window(
        Name="weekly",
        Schedule="cron(30 23 ? * TUE#2 *)",
        ScheduleTimezone="Europe/Berlin",
        ScheduleOffset=2,
        Duration=3,
        Cutoff=1,
        AllowUnassociatedTargets=False,
    )["WindowId"]
    answer = ssm.describe_maintenance_window_schedule(
        WindowId=window_id, Filters=[{"Key": "ScheduledBefore", "Values": ["2027-01-31T00:00:00Z"]}]
    )
    # A window with a ScheduleTimezone is answered in its local time with the offset, as SSM does
    # (NextExecutionTime "2024-03-12T09:00-05:00" for America/Chicago; see docs/simulator.md).
    assert [run["ExecutionTime"] for run in answer["ScheduledWindowExecutions"]] == [
        "2026-11-12T23:30+01:00",  # second Tuesday of November is the 10th
        "2026-12-10T23:30+01:00",
        "2027-01-14T23:30+01:00",
    ]
    assert ssm.get_maintenance_window(WindowId=window_id)["NextExecutionTime"] == "2026-11-12T23:30+01:00"
    first_page = ssm.describe_maintenance_window_schedule(WindowId=window_id, MaxResults=2)
    assert len(first_page["ScheduledWindowExecutions"]) == 2 and "NextToken" in first_page
    ssm.update_maintenance_window(WindowId=window_id, Enabled=False)
    assert ssm.describe_maintenance_window_schedule(WindowId=window_id)["ScheduledWindowExecutions"] == []


def test_a_utc_window_and_a_window_without_a_time_zone_are_answered_with_z(ssm: Any) -> None:
    from tagpatch_local.simulator import clock

    clock.set_now("123456789012", "us-east-1", utc(2026, 11, 1))
    common = {"Schedule": "cron(0 2 ? * SUN *)", "Duration": 3, "Cutoff": 1, "AllowUnassociatedTargets": False}
    for name, zone in (
        ("plain", {}),
        ("utc", {"ScheduleTimezone": "UTC"}),
        ("london", {"ScheduleTimezone": "Europe/London"}),
    ):
        window_id = ssm.create_maintenance_window(Name=name, **common, **zone)["WindowId"]
        (first, *_) = ssm.describe_maintenance_window_schedule(WindowId=window_id)["ScheduledWindowExecutions"]
        assert first["ExecutionTime"] == "2026-11-01T02:00Z", name  # London is on UTC in November
