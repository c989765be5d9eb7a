"""Giving back what a cycle used, so a long scenario runs in bounded memory and time."""

from __future__ import annotations

import gc
from typing import Final

_EXECUTION_TAIL_SECONDS: Final = 10.0


def release_finished_threads() -> None:
    """Join the threads moto's Step Functions interpreter started and finished.

    It keeps every thread it starts (one per state with a timeout, one per Map iteration) in a module
    list and never joins them, so each cycle left about sixteen 8 MiB stacks mapped: a long scenario
    ran out of address space. Joining a finished thread returns its stack.
    """
    from moto.stepfunctions.parser import utils as sfn_parser  # noqa: PLC0415 - moto's own module
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker  # noqa: PLC0415

    threads = sfn_parser.TMP_THREADS
    for thread in list(threads):
        # An execution's status turns final before its worker thread publishes the AWS/States metrics
        # (and so raises the alarms): wait for that tail, or the next cycle or a torn-down account sees it.
        worker = getattr(getattr(thread, "_target", None), "__self__", None)
        execution = getattr(getattr(worker, "_execution_communication", None), "execution", None)
        if isinstance(worker, ExecutionWorker) and execution is not None and execution.stop_date is not None:
            thread.join(timeout=_EXECUTION_TAIL_SECONDS)
    finished = [thread for thread in threads if not thread.is_alive()]
    for thread in finished:
        thread.join()
    threads[:] = [thread for thread in threads if thread.is_alive()]


def settle_long_lived_objects() -> None:
    """Take what the simulated account holds out of the cyclic garbage collector's full passes.

    A seeded fleet is millions of long-lived moto objects, and every full collection walks them all:
    at 10,000 instances that was about a third of a cycle's wall time. Frozen objects are still freed
    by reference counting; `SimulatedAccount.__exit__` unfreezes them so cycles left behind are collected.
    """
    gc.collect()
    gc.freeze()
