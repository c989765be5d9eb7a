"""Measure whole patch cycles on generated fleets in the simulated account.

    .venv/bin/python benchmarks/bench_cycle.py --sizes 1000 10000

For each size: seed a generated fleet, run a first cycle, move the simulated clock on eight days so
every window runs once (the window runs patch the fleet in the simulator), run the daily cycle that
follows (PatchMonitoring then reads every run's results), and rerun it at once (it sees no change).
For each cycle it records wall time, AWS calls by operation, write calls, the largest state payload, state
transitions, each function's duration and peak Python allocations (a second pass under
tracemalloc, which slows handlers, so durations come from the first pass), and the AWS cost of each
cycle from those measurements and the published prices in PRICES. Results go to
benchmarks/results/cycle-<N>.json and a Markdown table to stdout. `--page` rewrites the tables of
docs/performance.md from every file in benchmarks/results/ (the one place the figures are quoted).
These are measurements, not pass/fail tests.

Local handler durations include the in-process simulated AWS answering each call (no network), so the
Lambda cost below prices that time, not AWS's latency.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import resource
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tagpatch_local.fleet import GeneratorSpec, generate_fleet
from tagpatch_local.runner import CycleResult, FunctionRun, SimulatedAccount
from tagpatch_local.template import Template

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


# Published on-demand prices, US East (N. Virginia), USD, as read on 2026-11-29. Systems Manager and EC2
# charge nothing per Describe/Register/Get API request (neither pricing page lists one).
PRICES: dict[str, Any] = {
    "source": {
        "step_functions": "https://aws.amazon.com/step-functions/pricing/ (Standard: $0.025 per 1,000 transitions)",
        "lambda": "https://aws.amazon.com/lambda/pricing/ (Arm: $0.0000133334 per GB-second; $0.20 per 1M requests)",
        "s3": "https://aws.amazon.com/s3/pricing/ (Standard: PUT/COPY/POST/LIST $0.005, GET $0.0004 per 1,000)",
        "sns": "https://aws.amazon.com/sns/pricing/ (standard topics: $0.50 per 1M requests after the free tier; "
        "each 64 KB chunk of published data is billed as one request)",
    },
    "state_transition": 0.025 / 1000,
    "lambda_gb_second_arm64": 0.0000133334,
    "lambda_request": 0.20 / 1_000_000,
    "s3_write_request": 0.005 / 1000,
    "s3_read_request": 0.0004 / 1000,
    "sns_publish": 0.50 / 1_000_000,
}
S3_WRITES = ("s3:PutObject", "s3:CopyObject", "s3:ListObjectsV2", "s3:ListObjects", "s3:CreateMultipartUpload")
S3_READS = ("s3:GetObject", "s3:HeadObject")
# A PublishBatch carries at most 256 KiB, billed per 64 KB chunk: at most 4 requests. The benchmark
# records calls, not their sizes, so each batch is priced at that bound.
SNS_REQUESTS_PER_BATCH_BOUND = 4


def function_figures(runs: list[FunctionRun]) -> dict[str, dict[str, Any]]:
    figures: dict[str, dict[str, Any]] = {}
    for run in runs:
        entry = figures.setdefault(
            run.function, {"invocations": 0, "seconds": 0.0, "max_seconds": 0.0, "memory_mb": run.memory_mb}
        )
        entry["invocations"] += 1
        entry["seconds"] = round(entry["seconds"] + run.seconds, 3)
        entry["max_seconds"] = round(max(entry["max_seconds"], run.seconds), 3)
        if run.peak_bytes is not None:
            entry["peak_mib"] = round(max(entry.get("peak_mib", 0.0), run.peak_bytes / 2**20), 1)
    return figures


# Lambda allocates CPU in proportion to memory, the equivalent of one vCPU at 1,769 MB
# (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html). The local durations ran
# on one full core, so below 1,769 MB a CPU-bound handler would run 1,769/MemorySize times longer in
# Lambda and bill about the same GB-s as at 1,769 MB: each function is priced at
# max(MemorySize, 1,769 MB) of local seconds.
FULL_VCPU_MB = 1769


def cycle_cost(figures: dict[str, Any]) -> dict[str, float]:
    """The AWS cost of one cycle from its measured figures (functions, calls, transitions) and PRICES."""
    calls = Counter(figures["aws_calls_by_operation"])
    functions = figures["functions"].values()
    # Billed per invocation, rounded up to the millisecond: at most 1 ms more per invocation.
    gb_seconds = sum(
        max(entry["memory_mb"], FULL_VCPU_MB) / 1024 * (entry["seconds"] + entry["invocations"] / 1000)
        for entry in functions
    )
    invocations = sum(entry["invocations"] for entry in functions)
    cost = {
        "step_functions": figures["state_transitions"] * PRICES["state_transition"],
        "lambda": gb_seconds * PRICES["lambda_gb_second_arm64"] + invocations * PRICES["lambda_request"],
        "s3_requests": sum(calls[op] for op in S3_WRITES) * PRICES["s3_write_request"]
        + sum(calls[op] for op in S3_READS) * PRICES["s3_read_request"],
        "sns": (calls["sns:Publish"] + SNS_REQUESTS_PER_BATCH_BOUND * calls["sns:PublishBatch"])
        * PRICES["sns_publish"],
        "api_requests": 0.0,
    }
    cost["total"] = sum(cost.values())
    return {key: round(value, 6) for key, value in cost.items()} | {"lambda_gb_seconds": round(gb_seconds, 3)}


def cycle_figures(result: CycleResult) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "status": result.status,
        "wall_seconds": round(result.wall_seconds, 2),
        "state_transitions": result.state_transitions,
        "max_payload_bytes": result.max_payload_bytes,
        "aws_calls": sum(result.calls.values()),
        "aws_calls_by_operation": dict(sorted(result.calls.items())),
        "write_calls": sum(result.write_calls.values()),
        "resource_write_calls": sum(result.resource_write_calls.values()),
        "functions": function_figures(result.function_runs),
    }
    figures["cost_usd"] = cycle_cost(figures)
    return figures


CYCLES = ("first_cycle", "after_window_runs", "rerun")
START = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)  # a Friday: every weekly window runs in the next 8 days


@dataclass
class Run:
    seed_seconds: float
    advance_seconds: float
    window_runs: int
    cycles: dict[str, CycleResult]


def run_cycles(count: int, patch_groups: int, schedules: int, *, memory: bool) -> Run:
    fleet = generate_fleet(fleet_spec(count, patch_groups, schedules))
    with SimulatedAccount(ROOT / "template.yaml", log_stream=io.StringIO()) as account:
        account.dispatcher.measure_memory = memory
        account.set_clock(START)
        started = time.monotonic()
        account.seed(fleet)
        seed_seconds = time.monotonic() - started
        first = account.run_cycle(name=f"bench-{count}-first")
        started = time.monotonic()
        runs = account.advance(timedelta(days=8))
        advance_seconds = time.monotonic() - started
        after = account.run_cycle(name=f"bench-{count}-after-window-runs")
        rerun = account.run_cycle(name=f"bench-{count}-rerun")
    return Run(seed_seconds, advance_seconds, len(runs), dict(zip(CYCLES, (first, after, rerun), strict=True)))


def with_peaks(timed: CycleResult, traced: CycleResult) -> CycleResult:
    """The timed pass's runs, each with the largest peak its function reached in the traced pass.

    Map iterations run concurrently, so the two passes may invoke the functions in another order;
    they must invoke the same functions the same number of times.
    """
    if Counter(run.function for run in timed.function_runs) != Counter(run.function for run in traced.function_runs):
        raise RuntimeError("the traced pass invoked other functions than the timed pass")
    peaks: dict[str, int] = {}
    for run in traced.function_runs:
        peaks[run.function] = max(peaks.get(run.function, 0), run.peak_bytes or 0)
    timed.function_runs = [
        FunctionRun(run.function, run.memory_mb, run.seconds, peaks[run.function]) for run in timed.function_runs
    ]
    return timed


def measure(count: int, patch_groups: int, schedules: int, *, memory: bool = True) -> dict[str, Any]:
    timed = run_cycles(count, patch_groups, schedules, memory=False)
    cycles = timed.cycles
    if memory:
        traced = run_cycles(count, patch_groups, schedules, memory=True)
        cycles = {label: with_peaks(cycles[label], traced.cycles[label]) for label in CYCLES}
    return {
        "instances": count,
        "patch_groups": patch_groups,
        "schedules": schedules,
        "prices": PRICES,
        "seed_seconds": round(timed.seed_seconds, 2),
        "advance_seconds": round(timed.advance_seconds, 2),
        "window_runs": timed.window_runs,
        **{label: cycle_figures(cycles[label]) for label in CYCLES},
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def markdown_tables(results: list[dict[str, Any]]) -> str:
    """The cycle tables, from benchmarks/results/cycle-<N>.json, so the figures are the files'."""
    lines = [
        "| instances | cycle | wall time | AWS calls | writes to patching resources | largest state payload "
        "| state transitions | Lambda GB-s | Step Functions | Lambda | S3 | SNS | EC2 and SSM APIs | AWS cost |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for figures in results:
        for label in CYCLES:
            cycle, cost = figures[label], figures[label]["cost_usd"]
            lines.append(
                f"| {figures['instances']:,} | {label.replace('_', ' ')} | {cycle['wall_seconds']} s "
                f"| {cycle['aws_calls']:,} | {cycle['resource_write_calls']:,} | {cycle['max_payload_bytes']:,} B "
                f"| {cycle['state_transitions']} | {cost['lambda_gb_seconds']} | ${cost['step_functions']:.5f} "
                f"| ${cost['lambda']:.5f} | ${cost['s3_requests']:.5f} | ${cost['sns']:.5f} "
                f"| ${cost['api_requests']:.5f} "
                f"| ${cost['total']:.5f} |"
            )
    deployed = {name: spec.memory for name, spec in Template.load(ROOT / "template.yaml").functions().items()}
    lines += ["", "| function | " + " | ".join(f"{r['instances']:,}" for r in results) + " | MemorySize now |"]
    lines.append("|---|" + "---:|" * (len(results) + 1))
    # In the order the workflow first ran them (each cycle's figures keep invocation order).
    order = dict.fromkeys(name for figures in results for label in CYCLES for name in figures[label]["functions"])
    for function in order:
        cells, memory = [], None
        for figures in results:
            entry = None
            ran = [figures[label]["functions"][function] for label in CYCLES if function in figures[label]["functions"]]
            for candidate in ran:  # durations from the cycle in which the function ran longest
                if entry is None or candidate["max_seconds"] > entry["max_seconds"]:
                    entry = candidate
            if entry is None:
                cells.append("-")
                continue
            memory = entry["memory_mb"]
            peak = max(candidate.get("peak_mib", 0.0) for candidate in ran)  # over every cycle
            many = (
                f" ({entry['invocations']} invocations, {entry['seconds']} s in all)"
                if entry["invocations"] > 1
                else ""
            )
            cells.append(f"{entry['max_seconds']} s, {peak} MiB{many}")
        if memory is not None:
            lines.append(
                f"| {function.removesuffix('Function')} | "
                + " | ".join(cells)
                + f" | {deployed.get(function, memory)} MB |"
            )
    operations = sorted({op for figures in results for op in figures["after_window_runs"]["aws_calls_by_operation"]})
    lines += [
        "",
        "| API call (daily cycle after the window runs) | " + " | ".join(f"{r['instances']:,}" for r in results) + " |",
    ]
    lines.append("|---|" + "---:|" * len(results))
    for operation in operations:
        counts = [figures["after_window_runs"]["aws_calls_by_operation"].get(operation, 0) for figures in results]
        lines.append(f"| `{operation}` | " + " | ".join(f"{count:,}" for count in counts) + " |")
    return "\n".join(lines)


PAGE = ROOT / "docs" / "performance.md"
PAGE_BEGIN = "<!-- generated: .venv/bin/python benchmarks/bench_cycle.py --page; do not edit by hand -->"
PAGE_END = "<!-- end of generated tables -->"


def _results(directory: Path, pattern: str) -> list[dict[str, Any]]:
    """Each results file matching pattern, smallest fleet first, with its file name as "file"."""
    found = [{**json.loads(path.read_text(encoding="utf-8")), "file": path.name} for path in directory.glob(pattern)]
    return sorted(found, key=lambda figures: (int(figures["instances"]), figures["file"]))


def _measured(figures: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"`{entry['file']}`" + "".join(f", {entry[key]}" for key in ("measured_at", "machine") if key in entry)
        for entry in figures
    )


def _monitoring_row(r: dict[str, Any]) -> str:
    calls = r["patch_monitoring_calls"]
    outcomes = " / ".join(f"{r['by_outcome'][name]:,}" for name in ("patched", "failed", "missed", "not_scheduled"))
    return (
        f"| {r['instances']:,} | {r['window_runs']} | {r['patch_monitoring_seconds']} s "
        f"| {r['patch_monitoring_call_total']:,} | {calls.get('ssm:DescribeInstancePatchStates', 0):,} "
        f"({r['patch_state_calls_bound']:,}) | {calls.get('ssm:ListCommandInvocations', 0):,} "
        f"| {r['alerts_sent']:,} ({calls.get('sns:PublishBatch', 0):,}) | {outcomes} |"
    )


def _same(same: bool | None) -> str:
    return "not compared (one way measured)" if same is None else "yes" if same else "NO"


def performance_tables(directory: Path = RESULTS) -> str:
    """Every benchmark table of docs/performance.md, from the results files in directory."""
    cycles = _results(directory, "cycle-*.json")
    sections = [
        "### Whole cycles (`bench_cycle.py`)",
        f"Measured: {_measured(cycles)}.",
        markdown_tables(cycles),
    ]
    exports = _results(directory, "export-*.json")
    sections += [
        "### ComplianceExport alone (`bench_export.py`)",
        f"Measured: {_measured(exports)}.",
        "| instances | records | gzip JSON Lines | report.html | total | snapshot | report.html | peak allocations |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        + "\n".join(
            f"| {r['instances']:,} | {r['records_seconds']} s | {r['gzip_jsonl_seconds']} s "
            f"| {r['report_html_seconds']} s | {r['total_seconds']} s | {r['snapshot_bytes']:,} B "
            f"| {r['report_html_bytes']:,} B | {r['peak_traced_mib']} MiB |"
            for r in exports
        ),
    ]
    monitoring = _results(directory, "monitoring-*.json")
    sections += [
        "### PatchMonitoring after a week of window runs (`bench_monitoring.py`)",
        f"Measured: {_measured(monitoring)}.",
        "| instances | window runs | PatchMonitoring wall time | its calls "
        "| DescribeInstancePatchStates (bound: in scope / 50) | ListCommandInvocations "
        "| owner alerts (PublishBatch calls) | patched / failed / missed / not scheduled |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---|\n" + "\n".join(_monitoring_row(r) for r in monitoring),
    ]
    synced = _results(directory, "sync-reads-*.json")
    sections += [
        "### Patch states through the resource data sync and through the API (`bench_sync_reads.py`)",
        f"Measured: {_measured(synced)}. The time is the simulated account's cost of answering, not AWS's "
        "latency (documented for neither API); the calls are what AWS would be asked.",
        "| instances | way | calls | GetObject | ListObjectsV2 | DescribeInstancePatchStates | invocations "
        "| wall time | same records |\n"
        "|---:|---|---:|---:|---:|---:|---:|---:|---|\n"
        + "\n".join(
            f"| {r['instances']:,} | {way} | {r[way]['call_total']:,} | {r[way]['calls'].get('s3:GetObject', 0):,} "
            f"| {r[way]['calls'].get('s3:ListObjectsV2', 0):,} "
            f"| {r[way]['calls'].get('ssm:DescribeInstancePatchStates', 0):,} | {r[way]['invocations']} "
            f"| {r[way]['seconds']} s | {_same(r['same_records'])} |"
            for r in synced
            for way in ("sync", "api")
            if way in r
        ),
    ]
    config = _results(directory, "config-*.json")
    sections += [
        "### The AWS Config tag rule (`bench_config.py`)",
        f"Measured: {_measured(config)} (`config-periodic-*`: `--periodic-only`, the daily run alone).",
        "| results | instances | first evaluation (with seeding) | invocations | daily run | daily run's handler "
        "| PutEvaluations (bound n/100) |\n"
        "|---|---:|---:|---:|---:|---:|---:|\n"
        + "\n".join(
            f"| `{r['file']}` | {r['instances']:,} | "
            + (
                "not measured | not measured"
                if r.get("periodic_only")
                else f"{r['first_evaluation_seconds_with_seeding']} s | {r['first_invocations']:,}"
            )
            + f" | {r['periodic_seconds']} s | {r.get('periodic_handler_seconds', '-')}"
            + (" s" if "periodic_handler_seconds" in r else "")
            + f" | {r['periodic_put_evaluations']:,} ({r['periodic_put_evaluations_bound']:,}) |"
            for r in config
        ),
    ]
    throttled = _results(directory, "throttling-*.json")
    rows = []
    for r in throttled:
        for label in ("first_cycle", "second_cycle"):
            cycle = r[label]
            refused = ", ".join(
                f"{name.split(':', 1)[1]} {bucket['refused']}"
                for name, bucket in sorted(cycle["buckets"].items())
                if bucket["refused"]
            )
            rows.append(
                f"| {r['instances']:,} | {label.replace('_', ' ')} | {cycle['status']} | {cycle['wall_seconds']} s "
                f"| {cycle['refused']} | {cycle['task_failures']} | {refused or 'none'} |"
            )
    sections += [
        "### Throttled at documented request rates (`bench_throttling.py`)",
        f"Measured: {_measured(throttled)}.",
        "| instances | cycle | status | wall time | requests refused | task failures | refused by operation |\n"
        "|---:|---|---|---:|---:|---:|---|\n" + "\n".join(rows),
    ]
    sections += _long_run_sections(_results(directory, "long-run-*.json"))
    return "\n\n".join(sections)


LONG_RUN_TABLE_EVERY = 50  # the page shows every 50th cycle's sample; the results file has them all


def _long_run_sections(runs: list[dict[str, Any]]) -> list[str]:
    sections = [
        "### Many cycles in one process (`bench_long_run.py`)",
        f"Measured: {_measured(runs)}.",
        "| results | fleet | cycles run (asked) | how it ended | address-space cap | statuses | window runs "
        "| wall time |\n"
        "|---|---|---:|---|---|---|---:|---:|\n"
        + "\n".join(
            f"| `{r['file']}` | `{r['fleet']}` ({r['instances']:,} instances) | {r['completed_cycles']} "
            f"({r['cycles_requested']}) | {r['stopped']} | {r['address_space_cap']} "
            f"| {', '.join(f'{status} {count}' for status, count in r['statuses'].items())} "
            f"| {r['window_runs']} | {r['elapsed_seconds']} s |"
            for r in runs
        ),
    ]
    for r in runs:
        failures = r.get("failures", {})
        if failures:
            sections.append(
                f"Failed cycles in `{r['file']}`:\n\n| error | cycles | first | last |\n|---|---:|---:|---:|\n"
                + "\n".join(
                    f"| `{error}` | {entry['cycles']} | {entry['first_cycle']} | {entry['last_cycle']} |"
                    for error, entry in failures.items()
                )
            )
        shown = [
            point
            for point in r["samples"]
            if point["cycle"] % LONG_RUN_TABLE_EVERY == 0 or point is r["samples"][-1] or point["cycle"] == 1
        ]
        sections.append(
            f"`{r['file']}`, the process after each {LONG_RUN_TABLE_EVERY}th cycle:\n\n"
            "| after cycle | elapsed | peak RSS | RSS | address space (VmSize) | threads |\n"
            "|---:|---:|---:|---:|---:|---:|\n"
            + "\n".join(
                f"| {p['cycle']} | {p['elapsed_seconds']} s | {p['peak_rss_mib']} MiB | {p['rss_mib']} MiB "
                f"| {p['address_space_mib']} MiB | {p['threads']} |"
                for p in shown
            )
        )
    return sections if runs else []


def render_page(page: str, directory: Path = RESULTS) -> str:
    """page with the text between its generated-tables markers replaced by the current tables."""
    before, rest = page.split(PAGE_BEGIN, 1)
    _, after = rest.split(PAGE_END, 1)
    return f"{before}{PAGE_BEGIN}\n\n{performance_tables(directory)}\n\n{PAGE_END}{after}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--patch-groups", type=int, default=200)
    parser.add_argument("--schedules", type=int, default=20)
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc pass")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where cycle-<N>.json goes")
    parser.add_argument("--tables", action="store_true", help="print the cycle tables from --out and stop")
    parser.add_argument("--page", action="store_true", help=f"rewrite the tables of {PAGE.name} from --out and stop")
    parser.add_argument(
        "--reprice", action="store_true", help="recompute cost_usd in --out's results (PRICES or the model changed)"
    )
    args = parser.parse_args()
    if args.reprice:
        for size in args.sizes:
            path = args.out / f"cycle-{size}.json"
            figures = json.loads(path.read_text(encoding="utf-8"))
            figures["prices"] = PRICES
            for label in CYCLES:
                figures[label]["cost_usd"] = cycle_cost(figures[label])
            path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        return
    if args.page:
        PAGE.write_text(render_page(PAGE.read_text(encoding="utf-8"), args.out), encoding="utf-8")
        return
    if args.tables:
        found = [json.loads((args.out / f"cycle-{size}.json").read_text(encoding="utf-8")) for size in args.sizes]
        print(markdown_tables(found))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    print(
        "| instances | cycle | wall s | AWS calls | writes (patching resources) | max payload B | transitions "
        "| Lambda GB-s | cost USD |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        figures = measure(size, args.patch_groups, args.schedules, memory=not args.no_memory)
        (args.out / f"cycle-{size}.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        for label in CYCLES:
            cycle = figures[label]
            print(
                f"| {size:,} | {label.replace('_', ' ')} | {cycle['wall_seconds']} | {cycle['aws_calls']} | "
                f"{cycle['write_calls']} ({cycle['resource_write_calls']}) | {cycle['max_payload_bytes']:,} | "
                f"{cycle['state_transitions']} | {cycle['cost_usd']['lambda_gb_seconds']} | "
                f"{cycle['cost_usd']['total']:.6f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
