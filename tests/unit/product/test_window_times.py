"""Times SSM gives for a window's runs (DescribeMaintenanceWindowSchedule's ExecutionTime,
DescribeMaintenanceWindows' NextExecutionTime) in every form AWS documents or is seen to send."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tagpatch.errors import ScheduleTimeUnreadable
from tagpatch.ssm_windows import window_run_time


@pytest.mark.parametrize(
    ("value", "timezone", "expected"),
    [
        # The API reference's CLI example: minutes, Z.
        ("2020-02-19T16:00Z", None, datetime(2020, 2, 19, 16, tzinfo=UTC)),
        # GetMaintenanceWindow's example NextExecutionTime: seconds and milliseconds, Z.
        ("2020-02-25T00:08:15.099Z", None, datetime(2020, 2, 25, 0, 8, 15, 99000, tzinfo=UTC)),
        # A window with ScheduleTimezone America/Chicago: local time with its offset.
        ("2024-03-12T09:00-05:00", "America/Chicago", datetime(2024, 3, 12, 14, tzinfo=UTC)),
        ("2020-07-26T00:00+10:00", "Australia/Brisbane", datetime(2020, 7, 25, 14, tzinfo=UTC)),
        # ISO 8601's basic offset and seconds.
        ("2026-12-10T23:30:00+0100", "Europe/Berlin", datetime(2026, 12, 10, 22, 30, tzinfo=UTC)),
        # No zone: read in the window's ScheduleTimezone (winter in Berlin is UTC+1, summer UTC+2).
        ("2026-12-10T23:30", "Europe/Berlin", datetime(2026, 12, 10, 22, 30, tzinfo=UTC)),
        ("2026-07-09T23:30", "Europe/Berlin", datetime(2026, 7, 9, 21, 30, tzinfo=UTC)),
        # No zone and no ScheduleTimezone: the window's schedule is in UTC.
        ("2026-12-10T23:30", None, datetime(2026, 12, 10, 23, 30, tzinfo=UTC)),
    ],
)
def test_every_documented_form_is_read_as_an_instant(value: str, timezone: str | None, expected: datetime) -> None:
    parsed = window_run_time(value, timezone)
    assert parsed == expected
    assert parsed.utcoffset() is not None and parsed.tzinfo == UTC


@pytest.mark.parametrize("value", ["next Tuesday", "", "2026-13-40T25:00Z", 1733526000])
def test_a_form_tagpatch_cannot_read_is_a_typed_error_naming_the_value(value: Any) -> None:
    with pytest.raises(ScheduleTimeUnreadable, match=repr(value).replace("(", r"\(")):
        window_run_time(value, "UTC")


def test_an_unknown_schedule_timezone_is_a_typed_error_naming_it() -> None:
    with pytest.raises(ScheduleTimeUnreadable, match="Mars/Olympus"):
        window_run_time("2026-12-10T23:30", "Mars/Olympus")


def test_upcoming_runs_of_a_window_with_a_time_zone_are_read_as_utc_instants(ssm: Any) -> None:
    from tagpatch.reminders import read_upcoming_runs
    from tagpatch_local.simulator import clock

    clock.set_now("123456789012", "us-east-1", datetime(2026, 11, 1, tzinfo=UTC))
    window_id = ssm.create_maintenance_window(
        Name="berlin",
        Schedule="cron(30 23 ? * TUE#2 *)",
        ScheduleTimezone="Europe/Berlin",
        Duration=3,
        Cutoff=1,
        AllowUnassociatedTargets=False,
    )["WindowId"]
    runs = read_upcoming_runs(
        {"berlin": window_id},
        {"berlin": "Europe/Berlin"},
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 12, 31, tzinfo=UTC),
    )
    assert [run.start for run in runs] == [
        datetime(2026, 11, 10, 22, 30, tzinfo=UTC),
        datetime(2026, 12, 8, 22, 30, tzinfo=UTC),
    ]
