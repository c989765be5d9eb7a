"""What Discovery and PatchMonitoring share as read loops: bounded invocations from a cursor.

Each invocation reads whole pages until it has read its share of items or used `TIME_SHARE` of its
remaining time (a slow Region or throttling backoff ends an invocation early, never in its timeout),
writes what it read as numbered parts under the run's prefix, and returns the next cursor; a token
that comes back unchanged would page forever, so it raises (`tagpatch.aws.next_token`).
docs/decisions.md, "Discovery in bounded invocations" and "PatchMonitoring in bounded invocations".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from tagpatch.cycle import Cycle
from tagpatch.errors import InvalidCycleInput
from tagpatch.inventory import get_jsonl_gz

# Stop reading once this share of the function's remaining time is gone.
TIME_SHARE: Final = 0.5


def seconds_to_read(remaining_millis: int) -> float:
    """How long an invocation with `remaining_millis` left (LambdaContext) may read."""
    return remaining_millis / 1000 * TIME_SHARE


@dataclass
class Budget:
    """How much more this invocation may read: items (deterministic) and time (a safety net)."""

    share: int  # items per invocation, as configured
    deadline: float  # a `clock()` value
    clock: Callable[[], float] = time.monotonic
    spent: int = 0
    requests: int = 0

    def page(self, items: int) -> None:
        """One request answered with `items` items; an empty page still counts as one."""
        self.requests += 1
        self.spent += max(items, 1)

    def request(self) -> None:
        """A request for more of an item already counted (a patch state's second sync object)."""
        self.requests += 1

    @property
    def left(self) -> bool:
        return self.spent < self.share and self.clock() < self.deadline


def part_key(cycle: Cycle, listing: str, part: int) -> str:
    return cycle.artifact_key(f"{listing}/part-{part:05d}.jsonl.gz")


def read_parts(bucket: str, cycle: Cycle, listing: str, parts: int) -> Iterator[Any]:
    """The records of a listing's parts, in the order the invocations wrote them."""
    for part in range(parts):
        yield from get_jsonl_gz(bucket, part_key(cycle, listing, part))


def read_cursor(
    payload: object, name: str, fields: Iterable[str], phases: tuple[str, ...], count_fields: Iterable[str]
) -> tuple[Mapping[str, Any], str, dict[str, int]]:
    """A loop's cursor as a state passed it: the object, its phase (default the first) and its counts.

    Unknown fields, a phase not in `phases` and a count that is not a non-negative integer are
    InvalidCycleInput naming the field, so a hand-edited console input fails clearly.
    """
    if not isinstance(payload, Mapping):
        raise InvalidCycleInput(f"{name} must be an object, got {type(payload).__name__}")
    unknown = set(payload) - set(fields)
    if unknown:
        raise InvalidCycleInput(f"{name} has unknown fields {sorted(unknown)}")
    phase = payload.get("phase", phases[0])
    if phase not in phases:
        raise InvalidCycleInput(f"{name}.phase must be one of {list(phases)}, got {phase!r}")
    counts = {}
    for field in count_fields:
        value = payload.get(field, 0)
        if type(value) is not int or value < 0:
            raise InvalidCycleInput(f"{name}.{field} must be a non-negative integer, got {value!r}")
        counts[field] = value
    return payload, str(phase), counts
