"""Step Functions executions start at the simulated clock's time.

A cycle takes its evaluation time from `$$.Execution.StartTime` (PrepareCycle), as it does in AWS.
moto stamps an execution with the host's wall clock; once a scenario has set the simulated clock,
the execution's start time is that clock's time instead, so a cycle sees the same "now" as the
maintenance windows that ran before it. While the clock follows real time, moto's stamp is kept.
"""

from __future__ import annotations

from typing import Any

from moto.stepfunctions.parser.backend.execution import Execution

from tagpatch_local.simulator import clock
from tagpatch_local.simulator.core import MARKER, moto_patch


@moto_patch
def _install_execution_clock() -> None:
    original = Execution.__init__
    if getattr(original, MARKER, None) is not None:
        return

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        fixed = clock.clock(self.account_id, self.region_name).fixed
        if fixed is not None:
            self.start_date = fixed

    setattr(__init__, MARKER, "stepfunctions: execution start time from the simulated clock")
    Execution.__init__ = __init__  # type: ignore[method-assign]
