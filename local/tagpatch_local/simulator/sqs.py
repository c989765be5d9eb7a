"""SQS: count a queue's messages against one reading of the clock, not one per message and property.

moto 5.2.5's SendMessage reads `queue.attributes` (for ContentBasedDeduplication), which counts the
queue's visible, delayed and in-flight messages; each message's `visible` and `delayed` read the clock
again (two datetimes each). A queue that holds a few hundred messages makes every send cost
milliseconds, and the simulated SNS fan-out of a cycle's owner alerts to the runner's owner queues grew
with the square of the queue. The counts here are moto's rules, from the same fields
(`visible_at`, `delayed_until`), at the one instant the property is read. The same property turns
each attribute's name into snake case with a regular expression on every read: a pure function of a
few fixed names, so its answers are remembered.
"""

from __future__ import annotations

import functools
from typing import Any

from moto.sqs import models as sqs_models
from moto.sqs.models import Message, Queue

from tagpatch_local.simulator.core import MARKER, moto_patch

# moto's module, whose names are looked up when called: a clock or a patch installed there applies.
MOTO_SQS: Any = sqs_models


def _visible(message: Message, now: float) -> bool:
    return bool(now > message.visible_at)  # moto's Message.visible


def _delayed(message: Message, now: float) -> bool:
    return bool(now < message.delayed_until)  # moto's Message.delayed


def messages(queue: Queue) -> list[Message]:
    now = MOTO_SQS.unix_time_millis()
    return [m for m in queue._messages if _visible(m, now) and not _delayed(m, now)]


def delayed_count(queue: Queue) -> int:
    now = MOTO_SQS.unix_time_millis()
    return sum(1 for m in queue._messages if _delayed(m, now))


def not_visible_count(queue: Queue) -> int:
    now = MOTO_SQS.unix_time_millis()
    return sum(1 for m in queue._messages if not _visible(m, now))


@moto_patch
def _install_one_clock_reading_per_count() -> None:
    if getattr(Queue.__dict__["messages"].fget, MARKER, None) is not None:
        return
    replacements: dict[str, Any] = {
        "messages": messages,
        "approximate_number_of_messages_delayed": delayed_count,
        "approximate_number_of_messages_not_visible": not_visible_count,
    }
    for name, replacement in replacements.items():
        original = Queue.__dict__[name]
        setattr(replacement, MARKER, "moto SQS: message counts against one reading of the clock")
        replacement.__wrapped__ = original.fget  # the tests compare both
        setattr(Queue, name, property(replacement))


@moto_patch
def _install_remembered_attribute_names() -> None:
    original = MOTO_SQS.camelcase_to_underscores
    if getattr(original, MARKER, None) is not None:
        return
    remembered = functools.lru_cache(maxsize=1024)(original)
    setattr(remembered, MARKER, "moto SQS: attribute names in snake case, remembered")
    MOTO_SQS.camelcase_to_underscores = remembered
