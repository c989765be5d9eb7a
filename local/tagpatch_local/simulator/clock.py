"""The simulated account's clock: real time until a scenario sets it, then only what it is told.

Kept on moto's SSM backend like the rest of the simulated state, so a new `mock_aws` starts on real
time again. Advancing the clock is how later work runs the maintenance windows that fall due.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from moto.ssm.models import ssm_backends

from tagpatch_local.simulator.core import backend_state

_CLOCK_ATTR: Final = "tagpatch_clock"


@dataclass
class Clock:
    fixed: datetime | None = None  # None: follow real time

    def now(self) -> datetime:
        return self.fixed if self.fixed is not None else datetime.now(UTC)


def clock(account_id: str, region: str) -> Clock:
    backend = ssm_backends[account_id][region]
    return backend_state(backend, _CLOCK_ATTR, Clock)


def set_now(account_id: str, region: str, now: datetime) -> None:
    """Fix the clock at `now` (timezone-aware). Moving it backwards is refused: time only runs forward."""
    if now.tzinfo is None:
        raise ValueError("the simulated clock takes timezone-aware times")
    current = clock(account_id, region)
    if current.fixed is not None and now < current.fixed:
        raise ValueError(
            f"the simulated clock is at {current.fixed.isoformat()}; it cannot go back to {now.isoformat()}"
        )
    current.fixed = now.astimezone(UTC)


def now(account_id: str, region: str) -> datetime:
    return clock(account_id, region).now()
