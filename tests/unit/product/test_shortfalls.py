"""The operators' alert about what a plan leaves undone: a blocked window is named with its kind of
block and what to do; other shortfalls are listed; a plan that falls short of nothing sends nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from tagpatch.cycle import Cycle
from tagpatch.desired import Problem
from tagpatch.reconcile import BlockedWindow, Plan
from tagpatch.shortfalls import MAX_LISTED, shortfall_alert, shortfall_count

CYCLE = Cycle("run-1", "arn:exec", datetime(2026, 11, 27, 12, tzinfo=UTC), "apply", None, "runs/run-1/")
TAKEN = BlockedWindow("tagpatch-sun-0200", "name taken", "a maintenance window named tagpatch-sun-0200 exists (mw-1)")
LIMIT = "safety limit: this cycle would delete 4 of the 5 maintenance windows tagpatch owns"


def test_a_plan_that_falls_short_of_nothing_sends_no_alert() -> None:
    plan = Plan((), (Problem("tag", "i-1", "no Patch Group tag"), Problem("window", "w", "paused: disabled")))
    assert shortfall_alert(CYCLE, plan) is None
    assert shortfall_count(plan) == 0


def test_each_blocked_window_is_named_with_its_block_and_what_to_do() -> None:
    gone = tuple(BlockedWindow(f"tagpatch-gone-{index}", "safety limit", LIMIT) for index in range(2))
    hold = Problem("hold", "web-prod", "the hold does not fit: the window has 10 tasks")
    plan = Plan((), (hold,), (TAKEN, *gone))
    alert = shortfall_alert(CYCLE, plan)
    assert alert is not None
    subject, body = alert
    assert subject == "tagpatch cycle left work undone: 3 maintenance window(s) blocked, 1 other shortfall(s)"
    lines = body.splitlines()
    assert (
        "- tagpatch-sun-0200: name taken: its name is held by a maintenance window tagpatch does not own. "
        + (TAKEN.reason)
        in lines
    )
    assert "- tagpatch-gone-1: safety limit: its deletion is held back by the mass-deletion safety limit" in lines
    assert any(line.startswith("- name taken: rename or delete the window") for line in lines)
    assert any(
        line.startswith('- safety limit: if the deletions are intended, start a cycle with {"allow_mass')
        for line in lines
    )
    assert f"  ({LIMIT})" in lines  # the limit's figures, once
    assert f"- hold web-prod: {hold.reason}" in lines
    assert "runs/run-1/" in body and "arn:exec" in body
    assert shortfall_count(plan) == 4


def test_a_long_list_is_cut_with_the_count_kept() -> None:
    many = tuple(BlockedWindow(f"tagpatch-w-{index}", "safety limit", LIMIT) for index in range(MAX_LISTED + 7))
    alert = shortfall_alert(CYCLE, Plan((), (), many))
    assert alert is not None
    subject, body = alert
    assert len(subject) <= 100
    listed = [line for line in body.splitlines() if line.startswith("- tagpatch-w-")]
    assert len(listed) == MAX_LISTED
    assert "- and 7 more windows (see the run's window-report.json)" in body
