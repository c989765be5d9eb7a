"""Measure the AWS Config tag rule in the simulated account: every instance's first evaluation (one
invocation per configuration item, as Config sends them) and one periodic run (every instance, 100
evaluations per PutEvaluations).

    .venv/bin/python benchmarks/bench_config.py --sizes 1000

Results go to benchmarks/results/config-<N>.json and a Markdown table to stdout; docs/performance.md's
tables are generated from them (bench_cycle.py --page). These are measurements, not pass/fail tests.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import platform
import resource
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.bench_cycle import fleet_spec
from tagpatch_local.fleet import generate_fleet
from tagpatch_local.runner import ACCOUNT_ID, SimulatedAccount
from tagpatch_local.simulator import config

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
START = datetime(2026, 11, 27, 12, tzinfo=UTC)
RULE = "tagpatch-local-patch-tags"


def measure(count: int, periodic_only: bool = False) -> dict[str, Any]:
    fleet = generate_fleet(fleet_spec(count, 200, 20))
    with SimulatedAccount(ROOT / "template.yaml", log_stream=io.StringIO(), config_recorder=True) as account:
        account.set_clock(START)
        state = config.state(ACCOUNT_ID, account.region)
        if periodic_only:
            # Only the daily run: no first invocation per instance (100,000 of them take hours here), so
            # the recorder stays off and the rule's periodic evaluation is started directly.
            state.recording = False
        started = time.monotonic()
        account.seed(fleet)
        first_seconds = time.monotonic() - started
        first_calls = account.recorder.snapshot().get("ConfigTagRuleFunction", Counter())
        first_puts = len(state.put_calls)
        state.put_calls.clear()
        started = time.monotonic()
        if periodic_only:
            config.run_periodic_now(ACCOUNT_ID, account.region, RULE)
        else:
            account.advance(timedelta(days=1))
        periodic_seconds = time.monotonic() - started
        # The daily run's handler alone, as Lambda would bill and time it out (ConfigTagRule: 300 s).
        handler_runs = [run.seconds for run in account.dispatcher.runs if run.function == "ConfigTagRuleFunction"]
        periodic_puts = [call.evaluations for call in state.put_calls]
        verdicts = Counter(r.compliance for key, r in state.results.items() if key[0] == RULE)
        all_calls = account.recorder.snapshot().get("ConfigTagRuleFunction", Counter())
    periodic_calls = all_calls - first_calls
    return {
        "instances": count,
        "periodic_only": periodic_only,
        "first_evaluation_seconds_with_seeding": round(first_seconds, 2),
        "first_invocations": first_puts,
        "first_calls": dict(sorted(first_calls.items())),
        "periodic_seconds": round(periodic_seconds, 2),
        "periodic_handler_seconds": round(handler_runs[-1], 2) if handler_runs else None,
        "periodic_put_evaluations": len(periodic_puts),
        "periodic_put_evaluations_bound": math.ceil(count / 100),
        "largest_batch": max(periodic_puts, default=0),
        "periodic_calls": dict(sorted(periodic_calls.items())),
        "verdicts": dict(sorted(verdicts.items())),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000])
    parser.add_argument(
        "--periodic-only",
        action="store_true",
        help="skip each instance's first evaluation (100,000 invocations take hours here); time the daily run",
    )
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    columns = (
        "instances",
        "first evaluation s (with seeding)",
        "invocations",
        "periodic run s",
        "PutEvaluations (n/100)",
    )
    print("| " + " | ".join(columns) + " |")
    print("|---|---|---|---|---|")
    for size in args.sizes:
        figures = measure(size, args.periodic_only)
        name = f"config-periodic-{size}.json" if args.periodic_only else f"config-{size}.json"
        (RESULTS / name).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        print(
            f"| {size:,} | {figures['first_evaluation_seconds_with_seeding']} | {figures['first_invocations']} | "
            f"{figures['periodic_seconds']} | {figures['periodic_put_evaluations']} "
            f"({figures['periodic_put_evaluations_bound']}) |",
            flush=True,
        )


if __name__ == "__main__":
    main()
