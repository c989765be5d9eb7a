"""The one way the simulator hangs its own state on a moto object (simulator.core.backend_state)."""

from __future__ import annotations

import threading
import time

from tagpatch_local.simulator.core import backend_state


class _Backend:
    """Stands in for a moto backend: any object with a __dict__."""


def test_the_state_is_created_once_and_then_found() -> None:
    backend = _Backend()
    made: list[dict[str, int]] = []

    def factory() -> dict[str, int]:
        made.append({})
        return made[-1]

    first = backend_state(backend, "tagpatch_test", factory)
    first["calls"] = 1
    again = backend_state(backend, "tagpatch_test", factory)

    assert again is first
    assert again == {"calls": 1}
    assert len(made) == 1


def test_each_owner_and_key_has_its_own_state() -> None:
    one, other = _Backend(), _Backend()

    assert backend_state(one, "tagpatch_a", list) is not backend_state(other, "tagpatch_a", list)
    assert backend_state(one, "tagpatch_a", list) is not backend_state(one, "tagpatch_b", list)


def test_threads_asking_first_at_once_share_one_state() -> None:
    # Without the lock each thread would find nothing, build its own state and keep it: the writes
    # of all but the last would be lost.
    backend = _Backend()
    threads_count = 8
    barrier = threading.Barrier(threads_count)
    made: list[list[int]] = []
    seen: list[list[int]] = []

    def slow_factory() -> list[int]:
        time.sleep(0.02)  # widens the gap between looking and hanging the state on the backend
        made.append([])
        return made[-1]

    def ask() -> None:
        barrier.wait()
        seen.append(backend_state(backend, "tagpatch_race", slow_factory))

    threads = [threading.Thread(target=ask) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(made) == 1
    assert len(seen) == threads_count
    assert all(state is made[0] for state in seen)
