"""Run many consecutive cycles in one process and record what the process holds as they go.

    nice -n 10 prlimit --as=6442450944 .venv/bin/python -m benchmarks.bench_long_run --cycles 500 --every 10

Seeds the demo fleet (or --fleet) in one simulated account at a fixed clock, then repeats: run a cycle,
move the simulated clock on a day (the maintenance windows that fall due run and patch their
instances). Every --every cycles, and after the last, it samples the process: peak RSS (ru_maxrss), the
address space it maps now (VmSize, what an address-space cap such as `prlimit --as` limits) and its
threads. The results file is rewritten at each sample, so a run that is stopped or runs out of memory
leaves what it measured up to then; `completed_cycles` and `stopped` say how far it got. --minutes
stops a run at a time budget and records that it did. Results go to benchmarks/results/long-run-<fleet>.json;
`bench_cycle.py --page` puts them in docs/performance.md. A measurement, not a pass/fail test:
tests/integration/test_runner_releases.py is the test. Change nothing in the checkout while it runs: the
handlers keep the code they loaded at the first cycle but read the policy file at every cycle.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import resource
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tagpatch_local.fleet import load_fleet
from tagpatch_local.runner import SimulatedAccount

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
START = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ONE_DAY = timedelta(days=1)


def process_status() -> dict[str, int]:
    """VmSize, VmRSS (KiB) and Threads from /proc/self/status."""
    wanted = {"VmSize", "VmRSS", "Threads"}
    found: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition(":")
        if key in wanted:
            found[key] = int(value.split()[0])
    return found


def address_space_cap() -> str:
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return "unlimited" if soft == resource.RLIM_INFINITY else f"{soft / 2**30:g} GiB"


def sample(cycle: int, started: float, last_cycle_seconds: float) -> dict[str, Any]:
    status = process_status()
    return {
        "cycle": cycle,
        "elapsed_seconds": round(time.monotonic() - started, 1),
        "last_cycle_wall_seconds": round(last_cycle_seconds, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_mib": round(status["VmRSS"] / 1024, 1),
        "address_space_mib": round(status["VmSize"] / 1024, 1),
        "threads": status["Threads"],
        "python_threads": threading.active_count(),
    }


def long_run(
    fleet_path: Path, cycles: int, every: int, out: Path, minutes: float | None, command: str
) -> dict[str, Any]:
    """Run the cycles, writing out/long-run-<fleet>.json at each sample; returns its figures."""
    fleet = load_fleet(fleet_path)
    path = out / f"long-run-{fleet_path.stem}.json"
    out.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {
        "command": command,
        "fleet": fleet_path.resolve().relative_to(ROOT).as_posix(),
        "instances": len(fleet),
        "cycles_requested": cycles,
        "sample_every": every,
        "clock_advance_per_cycle": "1 day",
        "address_space_cap": address_space_cap(),
        "minutes_budget": minutes,
        "completed_cycles": 0,
        "statuses": {},
        "failures": {},  # error -> how many, the first and last cycle, the first cause
        "window_runs": 0,
        "stopped": "running",
        "samples": [],
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    statuses: Counter[str] = Counter()

    def save() -> None:
        figures["statuses"] = dict(sorted(statuses.items()))
        path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")

    started = time.monotonic()
    try:
        with SimulatedAccount(ROOT / "template.yaml", log_stream=io.StringIO()) as account:
            account.set_clock(START)
            account.seed(fleet)
            figures["samples"].append(sample(0, started, 0.0))
            save()
            for cycle in range(1, cycles + 1):
                result = account.run_cycle(name=f"long-run-{cycle:04d}")
                statuses[result.status] += 1
                if result.status != "SUCCEEDED":
                    failure = figures["failures"].setdefault(
                        result.error or result.status,
                        {"cycles": 0, "first_cycle": cycle, "cause": (result.cause or "")[:500]},
                    )
                    failure["cycles"] += 1
                    failure["last_cycle"] = cycle
                figures["window_runs"] += len(account.advance(ONE_DAY))
                figures["completed_cycles"] = cycle
                out_of_time = minutes is not None and time.monotonic() - started > minutes * 60
                if cycle % every == 0 or cycle == cycles or out_of_time:
                    figures["samples"].append(sample(cycle, started, result.wall_seconds))
                    save()
                    print(json.dumps(figures["samples"][-1]), flush=True)
                if out_of_time:
                    figures["stopped"] = f"time budget of {minutes:g} minutes reached after cycle {cycle}"
                    break
            else:
                figures["stopped"] = "finished"
    except MemoryError:
        figures["stopped"] = f"MemoryError after cycle {figures['completed_cycles']}"
        raise
    finally:
        if figures["stopped"] == "running":
            figures["stopped"] = f"interrupted after cycle {figures['completed_cycles']}"
        figures["elapsed_seconds"] = round(time.monotonic() - started, 1)
        save()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=500)
    parser.add_argument("--every", type=int, default=10, help="sample the process every this many cycles")
    parser.add_argument("--fleet", type=Path, default=ROOT / "fleets" / "demo.yaml")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this many minutes of cycles")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where long-run-<fleet>.json goes")
    args = parser.parse_args()
    command = " ".join(["benchmarks/bench_long_run.py", *sys.argv[1:]])
    long_run(args.fleet, args.cycles, args.every, args.out, args.minutes, command)


if __name__ == "__main__":
    main()
