"""The execution history budget of a cycle: Step Functions ends a Standard execution whose history
passes 25,000 events, so the two read loops (Discovery, MonitoringReads) are held within it.

The arithmetic, stated once:
- one turn of a read loop is its Task state (TaskStateEntered, TaskScheduled, TaskStarted,
  TaskSucceeded, TaskStateExited) and its Choice (ChoiceStateEntered, ChoiceStateExited): 7 events,
  10 with one retry (TaskFailed, TaskScheduled, TaskStarted);
- everything else in a cycle (about 30 states, the ApplyWindowChanges Map over at most 50 windows,
  their retries, the failure path) stays within RESERVED_EVENTS;
- so each loop has TURNS_PER_LOOP = (25,000 - 5,000) / 10 / 2 = 1,000 turns;
- the design fleet, 100,000 instances, is at most 300,000 items a loop (Discovery: a managed node and an
  instance each; MonitoringReads: a task invocation, a command invocation and a patch state each, the
  window executions and tasks being few; a patch state read from the resource data sync is one item
  though it takes two objects, and each listing page of the sync one more), so a setting below 300
  could need more turns than that: template.yaml's MinValue refuses it at deploy
  (tests/unit/product/test_history.py ties the two);
- a larger fleet, or a slow Region whose invocations stop early for time, can still run out of turns:
  the loop then stops with HistoryBudgetExceeded, which names the setting to raise, instead of Step
  Functions failing the execution on its history limit.
"""

from __future__ import annotations

import math
from typing import Final

from tagpatch.errors import HistoryBudgetExceeded

HISTORY_LIMIT: Final = 25_000  # events in one Standard execution's history (Step Functions quota)
EVENTS_PER_TURN: Final = 10
RESERVED_EVENTS: Final = 5_000
TURNS_PER_LOOP: Final = (HISTORY_LIMIT - RESERVED_EVENTS) // EVENTS_PER_TURN // 2
DESIGN_FLEET: Final = 100_000
DESIGN_ITEMS_PER_LOOP: Final = 3 * DESIGN_FLEET
MIN_ITEMS_PER_INVOCATION: Final = math.ceil(DESIGN_ITEMS_PER_LOOP / TURNS_PER_LOOP)


def check_turns(loop: str, turns: int, setting: str, items_per_invocation: int) -> None:
    """Refuse another turn of `loop` once it has had TURNS_PER_LOOP (its share of the history)."""
    if turns >= TURNS_PER_LOOP:
        raise HistoryBudgetExceeded(
            f"{loop} has run {turns} invocations, its share of the execution's {HISTORY_LIMIT:,} history "
            f"events ({TURNS_PER_LOOP} turns of {EVENTS_PER_TURN} events; tagpatch.history). Raise the "
            f"template parameter {setting} (now {items_per_invocation}) so fewer, larger invocations "
            "read the fleet"
        )
