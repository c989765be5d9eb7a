"""Measure PatchMonitoring after a week of maintenance window runs, on generated fleets.

    .venv/bin/python -m benchmarks.bench_monitoring --sizes 1000 10000

For each size: seed a generated fleet (with a `patch:` distribution), run a cycle, advance the
simulated clock eight days so every weekly window runs once, and run the next cycle. Records the
window runs, PatchMonitoring's calls by operation and its wall time (Lambda task from TaskScheduled
to TaskSucceeded in the execution history), and compares the calls with what the design allows:
one listing per owned window, per window run its tasks and invocations, command invocations 50 a
page, and patch states 50 instances a call. Results go to benchmarks/results/monitoring-<N>.json.
These are measurements, not pass/fail tests.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import platform
import resource
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.bench_cycle import fleet_spec
from tagpatch_local.fleet import PatchDistribution, generate_fleet
from tagpatch_local.runner import SimulatedAccount

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
START = datetime(2026, 11, 27, 12, tzinfo=UTC)
PATCH = PatchDistribution(
    missing={0: 2.0, 4: 5.0, 12: 1.0},
    critical={0: 3.0, 1: 1.0},
    result={"success": 90.0, "failed": 7.0, "timeout": 3.0},
)


def state_seconds(events: Sequence[Mapping[str, Any]], *states: str) -> float:
    """Wall time of Task states, each TaskStateEntered to its TaskStateExited, summed over every visit
    (MonitoringReads loops: one visit per invocation)."""
    total, entered, visits = 0.0, None, 0
    for event in events:
        details = event.get("stateEnteredEventDetails") or event.get("stateExitedEventDetails") or {}
        if details.get("name") not in states:
            continue
        if event["type"] == "TaskStateEntered":
            entered = event["timestamp"]
        elif event["type"] == "TaskStateExited" and entered is not None:
            total += (event["timestamp"] - entered).total_seconds()
            entered, visits = None, visits + 1
    assert visits, f"{states} did not run"
    return total


def measure(count: int, patch_groups: int, schedules: int) -> dict[str, Any]:
    fleet = generate_fleet(replace(fleet_spec(count, patch_groups, schedules), patch=PATCH))
    with SimulatedAccount(ROOT / "template.yaml", log_stream=io.StringIO()) as account:
        account.set_clock(START)
        account.seed(fleet)
        first = account.run_cycle(name=f"monitoring-{count}-first")
        started = time.monotonic()
        runs = account.advance(timedelta(days=8))
        advance_seconds = time.monotonic() - started
        second = account.run_cycle(name=f"monitoring-{count}-second")
    calls = dict(sorted(second.calls_by_function.get("PatchMonitoringFunction", {}).items()))
    monitoring = (second.output or {})["monitoring"]
    in_scope = sum(monitoring["by_outcome"].values())
    windows = {run.window_id for run in runs}
    return {
        "instances": count,
        "patch_groups": patch_groups,
        "schedules": schedules,
        "first_cycle_status": first.status,
        "second_cycle_status": second.status,
        "window_runs": len(runs),
        "windows_that_ran": len(windows),
        "advance_seconds": round(advance_seconds, 2),
        "patch_monitoring_seconds": round(state_seconds(second.events, "MonitoringReads", "PatchMonitoring"), 2),
        "patch_monitoring_invocations": (second.output or {})["monitoring_reads"]["invocations"] + 1,
        "patch_monitoring_calls": calls,
        "patch_monitoring_call_total": sum(calls.values()),
        "instances_in_scope": in_scope,
        "patch_state_calls_bound": math.ceil(in_scope / 50),
        "by_outcome": monitoring["by_outcome"],
        "alerts_sent": monitoring["alerts_sent"],
        "second_cycle_wall_seconds": round(second.wall_seconds, 2),
        "max_payload_bytes": second.max_payload_bytes,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--patch-groups", type=int, default=200)
    parser.add_argument("--schedules", type=int, default=20)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    print(
        "| instances | window runs | PatchMonitoring s | calls | DescribeInstancePatchStates (bound n/50) "
        "| ListCommandInvocations | alerts |"
    )
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes:
        figures = measure(size, args.patch_groups, args.schedules)
        (RESULTS / f"monitoring-{size}.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        calls = figures["patch_monitoring_calls"]
        print(
            f"| {size:,} | {figures['window_runs']} | {figures['patch_monitoring_seconds']} | "
            f"{figures['patch_monitoring_call_total']} | {calls.get('ssm:DescribeInstancePatchStates', 0)} "
            f"({figures['patch_state_calls_bound']}) | {calls.get('ssm:ListCommandInvocations', 0)} | "
            f"{figures['alerts_sent']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
