"""The execution history budget: the two read loops' items-per-invocation settings can never let a
cycle's history pass Step Functions' 25,000 events, refused at deploy and at run time."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tagpatch.cycle import start_cycle
from tagpatch.discovery import DiscoveryCursor, discover_some
from tagpatch.errors import HistoryBudgetExceeded
from tagpatch.history import (
    DESIGN_ITEMS_PER_LOOP,
    EVENTS_PER_TURN,
    HISTORY_LIMIT,
    MIN_ITEMS_PER_INVOCATION,
    RESERVED_EVENTS,
    TURNS_PER_LOOP,
)
from tagpatch.monitoring_reads import MonitoringCursor, read_some
from tagpatch_local.template import Template

REPO = Path(__file__).resolve().parents[3]
CYCLE = start_cycle(
    {},
    execution_id="arn:aws:states:us-east-1:123456789012:execution:m:c",
    execution_name="c",
    start_time="2026-11-29T02:00:00Z",
)


def test_two_loops_at_their_turn_budget_and_the_rest_stay_under_the_history_limit() -> None:
    assert 2 * TURNS_PER_LOOP * EVENTS_PER_TURN + RESERVED_EVENTS <= HISTORY_LIMIT == 25_000
    # The smallest setting still reads the design fleet's items in the turns a loop has.
    assert MIN_ITEMS_PER_INVOCATION * TURNS_PER_LOOP >= DESIGN_ITEMS_PER_LOOP


@pytest.mark.parametrize("parameter", ["DiscoveryItemsPerInvocation", "MonitoringItemsPerInvocation"])
def test_the_template_refuses_a_setting_below_the_minimum_at_deploy(parameter: str) -> None:
    parameters = Template.load(REPO / "template.yaml").document["Parameters"]
    assert parameters[parameter]["MinValue"] == MIN_ITEMS_PER_INVOCATION


def test_discovery_past_its_turns_stops_with_a_clear_error_before_reading() -> None:
    cursor = DiscoveryCursor(invocations=TURNS_PER_LOOP)
    with pytest.raises(HistoryBudgetExceeded, match="DiscoveryItemsPerInvocation"):
        discover_some(cursor, CYCLE, "no-bucket", items=50, seconds=1.0)


def test_monitoring_reads_past_their_turns_stop_with_a_clear_error_before_reading() -> None:
    now = datetime(2026, 11, 29, tzinfo=UTC).isoformat()
    cursor = MonitoringCursor(since=now, until=now, invocations=TURNS_PER_LOOP)
    with pytest.raises(HistoryBudgetExceeded, match="MonitoringItemsPerInvocation"):
        read_some(cursor, CYCLE, "no-bucket", items=50, seconds=1.0)
