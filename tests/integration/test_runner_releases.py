"""The local runner releases what each cycle used: a long scenario must not run out of memory.

moto's Step Functions interpreter starts a thread per state with a timeout and per Map iteration, and
keeps every one in a module-level list, so none was ever joined: each cycle left about sixteen 8 MiB
thread stacks mapped (a 500-cycle scenario died at cycle 44 under a 6 GiB address-space cap). Counted,
not timed: the thread objects still held, and the address space the process maps.
"""

from __future__ import annotations

from pathlib import Path

from moto.stepfunctions.parser import utils as sfn_parser

from tagpatch_local.runner import SimulatedAccount

from .support import instance, run_ok

REPO = Path(__file__).resolve().parents[2]
THREAD_STACK_KIB = 8192  # glibc's default stack: ulimit -s


def mapped_kib() -> int:
    """The process's address space (VmSize), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1])
    raise AssertionError("no VmSize in /proc/self/status")


def thread_stacks() -> int:
    """Mappings the size of a thread stack: the stacks of threads started and never released."""
    count = 0
    for line in Path("/proc/self/maps").read_text().splitlines():
        low, high = (int(part, 16) for part in line.split()[0].split("-"))
        count += (high - low) // 1024 == THREAD_STACK_KIB
    return count


def test_many_short_cycles_hold_no_finished_threads_and_no_growing_address_space() -> None:
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.seed([instance("web", "sun-0200"), instance("db", "tue-2330")])
        run_ok(account)  # the first cycle sets up what every cycle shares
        stacks, mapped = thread_stacks(), mapped_kib()
        for _ in range(6):
            run_ok(account)
            assert [thread for thread in sfn_parser.TMP_THREADS if not thread.is_alive()] == []
        # Six leaking cycles mapped about 6 x 16 stacks (768 MiB); a stack or two may stay cached.
        assert thread_stacks() - stacks <= 2
        assert mapped_kib() - mapped < 4 * THREAD_STACK_KIB
