"""ssm:DescribeMaintenanceWindowSchedule: when a window will run, from `occurrences` and the clock.

From the API reference: WindowId (or Targets with ResourceType), Filters `ScheduledAfter` and
`ScheduledBefore` (ISO 8601), MaxResults at least 1, NextToken; each ScheduledWindowExecution is
WindowId, Name and ExecutionTime, spelled as SSM is seen to spell it (occurrences.spelled_run_time).
What the reference leaves open (the default page size, how far ahead an open-ended query reaches) is
in docs/simulator.md.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from moto.ssm.exceptions import ValidationException

from tagpatch_local.simulator.clock import now
from tagpatch_local.simulator.core import drop_none, filters_of, operation, page_of, request_params, ssm_backend
from tagpatch_local.simulator.occurrences import WindowTiming, occurrences, spelled_run_time
from tagpatch_local.simulator.windows import window_enabled, window_timing

DEFAULT_PAGE_SIZE: Final = 50
OPEN_ENDED_DAYS: Final = 366  # how far ahead a query without ScheduledBefore looks (not documented)


def _bound(filters: dict[str, frozenset[str]], key: str) -> datetime | None:
    values = filters.get(key)
    if not values:
        return None
    if len(values) > 1:
        raise ValidationException(f"Filter {key} takes exactly one value.")
    (text,) = values
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise ValidationException(f"Filter {key} value {text!r} is not an ISO 8601 timestamp.") from error
    if parsed.tzinfo is None:
        raise ValidationException(f"Filter {key} value {text!r} needs a UTC offset or Z.")
    return parsed


@operation("DescribeMaintenanceWindowSchedule")
def _describe_maintenance_window_schedule(response: Any) -> dict[str, Any]:
    params = request_params(response)
    if "WindowId" not in params:
        raise ValidationException(
            "The simulated account answers DescribeMaintenanceWindowSchedule by WindowId only "
            "(Targets is not modelled)."
        )
    window = ssm_backend(response).get_maintenance_window(params["WindowId"])  # moto: DoesNotExistException
    filters = filters_of(params, ("ScheduledAfter", "ScheduledBefore"))
    after = _bound(filters, "ScheduledAfter") or now(response.current_account, response.region)
    before = _bound(filters, "ScheduledBefore") or after + timedelta(days=OPEN_ENDED_DAYS)
    if not window_enabled(window):
        return {"ScheduledWindowExecutions": []}  # a disabled window does not run (see docs/simulator.md)
    timing: WindowTiming = window_timing(window)
    runs = [
        {"WindowId": window.id, "Name": window.name, "ExecutionTime": spelled_run_time(run, timing)}
        for run in occurrences(timing, after - timedelta(microseconds=1), before)
    ]
    page, token = page_of(
        "DescribeMaintenanceWindowSchedule", runs, {"MaxResults": DEFAULT_PAGE_SIZE, **params}, (1, 10**6)
    )
    return drop_none({"ScheduledWindowExecutions": page, "NextToken": token})
