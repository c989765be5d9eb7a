"""Measure whole patch cycles on generated fleets in the simulated account.

    .venv/bin/python benchmarks/bench_cycle.py --sizes 1000 10000

For each size: seed a generated fleet, run two cycles back to back (the second one sees no change),
and record wall time, AWS calls by operation, write calls, the largest state payload and peak
memory. Results go to benchmarks/results/cycle-<N>.json and a Markdown table to stdout; the README
quotes them. These are measurements, not pass/fail tests.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import resource
import time
from pathlib import Path
from typing import Any

from tagpatch_local.fleet import GeneratorSpec, generate_fleet
from tagpatch_local.runner import CycleResult, SimulatedAccount

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def fleet_spec(count: int, patch_groups: int, schedules: int) -> GeneratorSpec:
    return GeneratorSpec(
        count=count,
        seed=7,
        patch_groups={f"app-{index:03d}": 1.0 for index in range(patch_groups)},
        schedules={
            f"cron({(index * 7) % 60} {index % 24} ? * {('SUN', 'TUE', 'THU')[index % 3]} *)": 1.0
            for index in range(schedules)
        },
        os={"AMAZON_LINUX_2023": 5, "WINDOWS": 2, "UBUNTU": 2, "REDHAT_ENTERPRISE_LINUX": 1},
        owners={"team-a": 1, "team-b": 1, "team-c": 1},
        patch_group_key={"Patch Group": 3, "PatchGroup": 1},
        bad_tag_share=0.05,
        stopped_share=0.03,
        unmanaged_share=0.03,
        connection_lost_share=0.02,
    )


def cycle_figures(result: CycleResult) -> dict[str, Any]:
    return {
        "status": result.status,
        "wall_seconds": round(result.wall_seconds, 2),
        "state_transitions": result.state_transitions,
        "max_payload_bytes": result.max_payload_bytes,
        "aws_calls": sum(result.calls.values()),
        "aws_calls_by_operation": dict(sorted(result.calls.items())),
        "write_calls": sum(result.write_calls.values()),
        "resource_write_calls": sum(result.resource_write_calls.values()),
    }


def measure(count: int, patch_groups: int, schedules: int) -> dict[str, Any]:
    fleet = generate_fleet(fleet_spec(count, patch_groups, schedules))
    with SimulatedAccount(ROOT / "template.yaml", log_stream=io.StringIO()) as account:
        started = time.monotonic()
        account.seed(fleet)
        seed_seconds = time.monotonic() - started
        first = account.run_cycle(name=f"bench-{count}-first")
        second = account.run_cycle(name=f"bench-{count}-second")
    return {
        "instances": count,
        "patch_groups": patch_groups,
        "schedules": schedules,
        "seed_seconds": round(seed_seconds, 2),
        "first_cycle": cycle_figures(first),
        "second_cycle": cycle_figures(second),
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
    print("| instances | cycle | wall s | AWS calls | writes (patching resources) | max payload B | transitions |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes:
        figures = measure(size, args.patch_groups, args.schedules)
        (RESULTS / f"cycle-{size}.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        for label in ("first_cycle", "second_cycle"):
            cycle = figures[label]
            print(
                f"| {size:,} | {label.split('_')[0]} | {cycle['wall_seconds']} | {cycle['aws_calls']} | "
                f"{cycle['write_calls']} ({cycle['resource_write_calls']}) | {cycle['max_payload_bytes']:,} | "
                f"{cycle['state_transitions']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
