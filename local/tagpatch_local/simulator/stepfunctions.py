"""Step Functions executions start at the simulated clock's time, and ListExecutions may lag.

A cycle takes its evaluation time from `$$.Execution.StartTime` (PrepareCycle), as it does in AWS.
moto stamps an execution with the host's wall clock; once a scenario has set the simulated clock,
the execution's start time is that clock's time instead, so a cycle sees the same "now" as the
maintenance windows that ran before it. While the clock follows real time, moto's stamp is kept.

ListExecutions is eventually consistent: the API reference says results "may not reflect" executions
started or changed very recently. moto answers from its live list; `set_listing_lag` makes it leave out
executions started less than that many (wall-clock) seconds ago, so two executions that start
together can each list none of the other, as they can in AWS.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Final

from moto.stepfunctions.models import StepFunctionBackend
from moto.stepfunctions.parser.backend.execution import Execution

from tagpatch_local.simulator import clock
from tagpatch_local.simulator.core import MARKER, moto_patch

# (account, region) -> seconds an execution stays out of ListExecutions after it starts.
_LISTING_LAG: dict[tuple[str, str], float] = {}
_LAG_LOCK: Final = threading.Lock()
_STARTED_AT: Final = "_tagpatch_started_monotonic"


def set_listing_lag(account_id: str, region: str, seconds: float) -> None:
    """ListExecutions leaves out executions started less than `seconds` ago (0: no lag)."""
    with _LAG_LOCK:
        if seconds > 0:
            _LISTING_LAG[(account_id, region)] = seconds
        else:
            _LISTING_LAG.pop((account_id, region), None)


def _listing_lag(account_id: str, region: str) -> float:
    with _LAG_LOCK:
        return _LISTING_LAG.get((account_id, region), 0.0)


@moto_patch
def _install_execution_clock() -> None:
    original = Execution.__init__
    if getattr(original, MARKER, None) is not None:
        return

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        setattr(self, _STARTED_AT, time.monotonic())
        fixed = clock.clock(self.account_id, self.region_name).fixed
        if fixed is not None:
            self.start_date = fixed

    setattr(__init__, MARKER, "stepfunctions: execution start time from the simulated clock")
    Execution.__init__ = __init__  # type: ignore[method-assign]


@moto_patch
def _install_listing_lag() -> None:
    original = StepFunctionBackend.list_executions
    if getattr(original, MARKER, None) is not None:
        return

    def list_executions(self: Any, state_machine_arn: str, **kwargs: Any) -> Any:
        results, token = original(self, state_machine_arn, **kwargs)
        lag = _listing_lag(self.account_id, self.region_name)
        if lag:
            seen_before = time.monotonic() - lag
            results = [e for e in results if getattr(e, _STARTED_AT, float("-inf")) <= seen_before]
        return results, token

    setattr(list_executions, MARKER, "stepfunctions: ListExecutions may lag behind StartExecution")
    StepFunctionBackend.list_executions = list_executions  # type: ignore[method-assign,assignment]
