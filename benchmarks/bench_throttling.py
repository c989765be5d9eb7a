"""Two cycles and a week of window runs with every handler request throttled at AWS's documented rates.

    .venv/bin/python -m benchmarks.bench_throttling --sizes 10000

For each size: seed bench_cycle's generated fleet at a fixed clock, turn on the simulator's token
buckets (simulator/throttling.py; rates and sources in docs/simulator.md), run a first cycle, let a week
of maintenance windows run, and run a second cycle, whose PatchMonitoring reads those runs. Records
each cycle's status and wall time, the requests each bucket refused, each bucket's busiest second
against its size + refill, and PatchMonitoring's counts. Results go to
benchmarks/results/throttling-<N>.json. A measurement, not a pass/fail test:
tests/integration/test_throttling.py is the test.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.bench_cycle import fleet_spec
from tagpatch_local.fleet import generate_fleet
from tagpatch_local.runner import CycleResult, SimulatedAccount
from tagpatch_local.simulator.throttling import Throttle

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MOMENT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def bucket_figures(throttle: Throttle) -> dict[str, Any]:
    busiest = throttle.busiest_second()
    return {
        key[2]: {
            "accepted": len(throttle.accepted.get(key, [])),
            "refused": throttle.throttled.get(key, 0),
            "busiest_second": busiest.get(key, 0),
            "allowed_per_second": throttle.rates[key].capacity + throttle.rates[key].refill,
            "documented": throttle.rates[key].documented,
        }
        for key in sorted(throttle.rates)
    }


def cycle_figures(result: CycleResult, throttle: Throttle) -> dict[str, Any]:
    monitoring = (result.output or {}).get("monitoring") or {}
    return {
        "status": result.status,
        "error": result.error,
        "wall_seconds": round(result.wall_seconds, 1),
        "refused": throttle.total_throttled(),
        # Task failures the state machine saw (each one a Retry or a Catch): 0 when botocore absorbed all.
        "task_failures": sum(1 for event in result.events if event["type"] == "TaskFailed"),
        "over_rate": {key[2]: list(value) for key, value in throttle.over_rate().items()},
        "buckets": bucket_figures(throttle),
        "monitoring": {key: value for key, value in monitoring.items() if key != "results_key"},
    }


def measure(count: int) -> dict[str, Any]:
    with SimulatedAccount(ROOT / "template.yaml", log_stream=io.StringIO()) as account:
        account.set_clock(MOMENT)
        account.seed(generate_fleet(fleet_spec(count, 200, 20)))
        throttle = account.throttle_at_documented_rates()
        first = cycle_figures(account.run_cycle(name=f"throttled-{count}-first"), throttle)
        account.clear_faults()
        started = time.monotonic()
        runs = account.advance(timedelta(days=7))
        advance_seconds = time.monotonic() - started
        throttle = account.throttle_at_documented_rates()
        second = cycle_figures(account.run_cycle(name=f"throttled-{count}-second"), throttle)
    return {
        "instances": count,
        "first_cycle": first,
        "window_runs": len(runs),
        "advance_seconds": round(advance_seconds, 1),
        "second_cycle": second,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for size in args.sizes:
        figures = measure(size)
        (args.out / f"throttling-{size}.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        for label in ("first_cycle", "second_cycle"):
            cycle = figures[label]
            refused = {name: b["refused"] for name, b in cycle["buckets"].items() if b["refused"]}
            print(
                f"{size:,} {label}: {cycle['status']} in {cycle['wall_seconds']} s, refused {refused}, "
                f"task failures {cycle['task_failures']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
