"""Measure org cycles over a generated organization in the simulated account (issue #26's scale and cost).

    nice -n 10 prlimit --as=12884901888 .venv/bin/python -m benchmarks.bench_org --accounts 10 \
        --regions us-east-1 eu-west-1 --instances 5000

Seeds an organization of N member accounts, each in R Regions with I generated instances per account and
Region (bench_cycle's fleet, a seed per account), the spoke deployed in each; the policy's `targets:`
names every member in every Region. Then, as bench_cycle does for one account: the first org cycle, the
clock moved on eight days so every window in every target runs once, the daily org cycle after those
runs, and an immediate rerun. For each org cycle it records, overall and per target (account/Region):
wall time, AWS calls by operation, write calls, Step Functions state transitions and the largest state
payload of both machines (the org cycle's, its Map's input and output included, and each target's patch
cycle), each function's duration, and the process's peak RSS. Results go to
benchmarks/results/org-<N>x<R>x<I>.json, rewritten after each phase, so a run that is stopped leaves
what it measured (`completed` says which phases). `--page` rewrites this benchmark's section of
docs/performance.md from every org-*.json, including the projection to a larger organization
(`projection`), which is computed here from the measured per-target figures, never written by hand.

Per-target attribution: the handlers run one at a time in this process; each invocation is attributed
to the target its event names (`cycle.target`, or `target`), the hub's home when it names none, and
ListTargets/SummarizeTargets to the org cycle itself. Durations are local handler times on a shared
2-core machine, with the in-process simulated AWS answering each call.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import platform
import resource
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import yaml

from benchmarks.bench_cycle import PRICES, START, cycle_cost, fleet_spec, function_figures
from tagpatch_local.fleet import MemberAccount, generate_fleet
from tagpatch_local.runner import (
    ACCOUNT_ID,
    ARTIFACT_WRITES,
    CycleResult,
    FunctionRun,
    OrgCycleResult,
    SimulatedAccount,
    is_write,
)
from tagpatch_local.template import Template

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PHASES = ("first_cycle", "after_window_runs", "rerun")
ORG = "org"  # the org cycle's own functions (ListTargets, SummarizeTargets), not any target's
FIRST_MEMBER_ID = 200000000000  # member account ids count up from here (12 digits, not the hub's)


def member_accounts(
    accounts: int, regions: Sequence[str], instances: int, patch_groups: int, schedules: int
) -> list[MemberAccount]:
    """N member accounts, each with the same generated fleet shape (its own seed) in each of its Regions."""
    spec = fleet_spec(instances, patch_groups, schedules)
    return [
        MemberAccount(
            id=str(FIRST_MEMBER_ID + index),
            name=f"member-{index:03d}",
            regions=tuple(regions),
            instances=tuple(generate_fleet(replace(spec, seed=spec.seed + index))),
        )
        for index in range(accounts)
    ]


def policy_targeting(
    folder: Path,
    members: Sequence[MemberAccount],
    regions: Sequence[str],
    concurrency: int,
    *,
    aws_default_baselines: bool = False,
) -> Path:
    """The repository's policy with `targets:` naming every member in every Region; with
    aws_default_baselines, no OS registers a custom baseline (`baselines: {}`)."""
    document = yaml.safe_load((ROOT / "policy" / "patch-policy.yaml").read_text(encoding="utf-8"))
    if aws_default_baselines:
        document["baselines"] = {}
    document["targets"] = {
        "accounts": [member.id for member in members],
        "regions": list(regions),
        "max_concurrency": concurrency,
    }
    path = folder / "bench-org-policy.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def target_of(function: str, event: Any, org_functions: frozenset[str], home: str) -> str:
    """Which target an invocation works for: "account/region", or ORG. A patch cycle started without a
    target (the org cycle's home target) acts in the hub's own account and Region, `home`."""
    if function in org_functions:
        return ORG
    if isinstance(event, Mapping):
        # The cycle payload's target, or the execution input's (PrepareCycle's `input`, before there is a cycle).
        for holder in (event.get("cycle"), event.get("input"), event):
            target = holder.get("target") if isinstance(holder, Mapping) else None
            if isinstance(target, Mapping) and "account_id" in target and "region" in target:
                return f"{target['account_id']}/{target['region']}"
    return home


@dataclass
class PerTarget:
    """Each invocation's AWS calls and duration, keyed by the target its event names.

    The dispatcher runs one handler at a time (it holds a lock for the whole invocation), so a
    thread-local label set around the invocation names the target of every call the handler makes.
    """

    org_functions: frozenset[str]
    home: str  # "account/region" of the hub stack
    calls: dict[str, Counter[str]] = field(default_factory=dict)
    runs: dict[str, list[FunctionRun]] = field(default_factory=dict)
    spans: dict[str, tuple[float, float]] = field(default_factory=dict)  # first start, last end (monotonic)
    _label: threading.local = field(default_factory=threading.local)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self, account: SimulatedAccount) -> None:
        dispatcher = account.dispatcher
        invoke: Callable[[str, Any, dict[str, str]], bytes] = dispatcher.invoke

        def attributed(function_name: str, body: Any, response_headers: dict[str, str]) -> bytes:
            name = function_name.rsplit(":", 1)[-1]
            logical_id = dispatcher.functions[name].spec.logical_id
            label = target_of(logical_id, json.loads(body) if body else {}, self.org_functions, self.home)
            with self._lock:  # what the dispatcher does anyway: one invocation at a time
                before = len(dispatcher.runs)
                started = time.monotonic()
                self._label.value = label
                try:
                    return invoke(function_name, body, response_headers)
                finally:
                    self._label.value = None
                    self.runs.setdefault(label, []).extend(dispatcher.runs[before:])
                    first, _ = self.spans.get(label, (started, started))
                    self.spans[label] = (first, time.monotonic())

        dispatcher.invoke = attributed  # type: ignore[method-assign]
        assert boto3.DEFAULT_SESSION is not None
        boto3.DEFAULT_SESSION.events.register("before-call", self._record)
        from tagpatch.aws import client  # its cached clients predate the hook

        client.cache_clear()

    def _record(self, model: Any, **_: Any) -> None:
        label = getattr(self._label, "value", None)
        if label is not None:
            self.calls.setdefault(label, Counter())[f"{model.service_model.endpoint_prefix}:{model.name}"] += 1

    @contextmanager
    def phase(self) -> Iterator[None]:
        """Start counting afresh for one org cycle."""
        self.calls, self.runs, self.spans = {}, {}, {}
        yield


def _calls_figures(calls: Counter[str], runs: list[FunctionRun]) -> dict[str, Any]:
    writes = {call: count for call, count in calls.items() if is_write(call)}
    return {
        "aws_calls": sum(calls.values()),
        "aws_calls_by_operation": dict(sorted(calls.items())),
        "write_calls": sum(writes.values()),
        "resource_write_calls": sum(n for call, n in writes.items() if call not in ARTIFACT_WRITES),
        "functions": function_figures(runs),
        "handler_seconds": round(sum(run.seconds for run in runs), 3),
    }


def target_figures(label: str, child: CycleResult | None, outcome: Mapping[str, Any], per: PerTarget) -> dict[str, Any]:
    calls = per.calls.get(label, Counter())
    runs = per.runs.get(label, [])
    first, last = per.spans.get(label, (0.0, 0.0))
    figures: dict[str, Any] = {
        "status": child.status if child is not None else str(outcome.get("status", "NOT STARTED")),
        "span_seconds": round(last - first, 2),  # first invocation's start to last one's end, here
        "state_transitions": child.state_transitions if child is not None else 0,
        "max_payload_bytes": child.max_payload_bytes if child is not None else 0,
        **_calls_figures(calls, runs),
    }
    figures["cost_usd"] = cycle_cost(figures)
    return figures


def projected_org_payload(overall: Mapping[str, Any], per_org_target: float) -> int:
    """The org cycle's largest state at the projected targets: the Map's output scaled (its fixed part
    too, so from above), or the largest measured state if larger, since that one does not grow. Results
    measured before the Map's output was recorded scale the largest state, as they did."""
    largest = int(overall["org_max_payload_bytes"])
    if "org_map_output_bytes" not in overall:
        return round(largest * per_org_target)
    return max(largest, round(int(overall["org_map_output_bytes"]) * per_org_target))


def org_cycle_figures(result: OrgCycleResult, per: PerTarget) -> dict[str, Any]:
    targets: dict[str, dict[str, Any]] = {}
    for outcome in result.targets:
        target = outcome.get("target") or {}
        label = f"{target.get('account_id')}/{target.get('region')}"
        targets[label] = target_figures(label, result.children.get(label), outcome, per)
    org_own = _calls_figures(per.calls.get(ORG, Counter()), per.runs.get(ORG, []))
    all_calls: Counter[str] = Counter()
    for calls in per.calls.values():
        all_calls.update(calls)
    all_runs = [run for runs in per.runs.values() for run in runs]
    children = list(result.children.values())
    overall: dict[str, Any] = {
        "status": result.status,
        "wall_seconds": round(result.org.wall_seconds, 2),
        "org_state_transitions": result.org.state_transitions,
        "child_state_transitions": sum(child.state_transitions for child in children),
        "state_transitions": result.org.state_transitions + sum(child.state_transitions for child in children),
        "org_history_events": len(result.org.events),
        "child_history_events_max": max((len(child.events) for child in children), default=0),
        "org_max_payload_bytes": result.org.max_payload_bytes,
        "org_map_output_bytes": result.org.map_output_bytes,
        "child_max_payload_bytes": max((child.max_payload_bytes for child in children), default=0),
        "max_payload_bytes": max([result.org.max_payload_bytes, *(child.max_payload_bytes for child in children)]),
        "targets_by_status": dict(Counter(figures["status"] for figures in targets.values())),
        **_calls_figures(all_calls, all_runs),
    }
    overall["cost_usd"] = cycle_cost(overall)
    return {"overall": overall, "org_functions": org_own, "targets": targets}


def artifact_sizes(account: SimulatedAccount) -> dict[str, int]:
    """Each current object of the artifact bucket and its size (read outside any handler: not counted)."""
    sizes: dict[str, int] = {}
    pages = account.client("s3").get_paginator("list_objects_v2").paginate(Bucket=account.artifact_bucket)
    for page in pages:
        sizes.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
    return sizes


def written_bytes(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """Bytes of the objects a cycle created, by top-level prefix (what each lifecycle rule expires)."""
    written: Counter[str] = Counter()
    for key, size in after.items():
        if key not in before:
            written[key.split("/", 1)[0] + "/"] += size
    return dict(sorted(written.items()))


def measure(
    accounts: int,
    regions: Sequence[str],
    instances: int,
    *,
    patch_groups: int,
    schedules: int,
    concurrency: int,
    out: Path,
    folder: Path,
    aws_default_baselines: bool = False,
) -> dict[str, Any]:
    """Run the phases and write the results file after each (what finished survives a stopped run)."""
    path = out / f"org-{accounts}x{len(regions)}x{instances}.json"
    figures: dict[str, Any] = {
        "accounts": accounts,
        "regions": list(regions),
        "instances_per_target": instances,
        "targets": accounts * len(regions),
        "instances": accounts * len(regions) * instances,
        "patch_groups": patch_groups,
        "schedules": schedules,
        "max_concurrency": concurrency,
        "baselines": "aws-default (policy `baselines: {}`)" if aws_default_baselines else "the policy",
        "prices": PRICES,
        "completed": [],
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
    }

    def save() -> None:
        figures["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        figures["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")

    members = member_accounts(accounts, regions, instances, patch_groups, schedules)
    with SimulatedAccount(ROOT / "template.yaml", log_stream=io.StringIO()) as account:
        from tagpatch.workflow import ORG_CYCLE, STEPS  # after the account sets the environment

        per = PerTarget(
            frozenset(step.function for step in STEPS if step.machine == ORG_CYCLE), f"{ACCOUNT_ID}/{account.region}"
        )
        per.install(account)
        account.set_clock(START)
        started = time.monotonic()
        seeded = account.seed_accounts(members)
        figures["seed_seconds"] = round(time.monotonic() - started, 2)
        figures["spoke_failures"] = {f"{a}/{r}": why for (a, r), why in seeded.spoke_failures.items()}
        account.use_policy(
            policy_targeting(folder, members, regions, concurrency, aws_default_baselines=aws_default_baselines)
        )
        save()
        for label in PHASES:
            if label == "after_window_runs":
                started = time.monotonic()
                runs = account.advance(timedelta(days=8))
                figures["advance_seconds"] = round(time.monotonic() - started, 2)
                figures["window_runs"] = len(runs)
            stored = artifact_sizes(account)
            with per.phase():
                result = account.run_org_cycle({}, name=f"bench-org-{label}", timeout_seconds=6 * 3600)
                figures[label] = org_cycle_figures(result, per)
            figures[label]["artifact_bytes_written"] = written_bytes(stored, artifact_sizes(account))
            figures["completed"].append(label)
            save()
    return figures


# --- the projection to a larger organization ------------------------------------------------------

# Quotas the projection stays within, each as its documentation states it (docs/performance.md cites them).
INLINE_MAP_MAX_CONCURRENCY = 40  # Step Functions: an inline Map runs at most 40 iterations at once
LAMBDA_ACCOUNT_CONCURRENCY = 1000  # Lambda: concurrent executions per account and Region, the default
PATCH_CYCLE_INNER_MAP_CONCURRENCY = 4  # statemachines/patch_cycle.asl.json: its Map's MaxConcurrency
# Standard workflows in US East (N. Virginia), US West (Oregon) and Europe (Ireland): token buckets.
START_EXECUTION_BUCKET, START_EXECUTION_REFILL_PER_SECOND = 1300, 300
STATE_TRANSITION_BUCKET, STATE_TRANSITION_REFILL_PER_SECOND = 5000, 1500
HISTORY_EVENTS_QUOTA = 25_000  # events in one Standard execution's history; more fails the execution
PAYLOAD_QUOTA_BYTES = 262_144  # a state's input or output, a task's result
S3_STANDARD_GB_MONTH = 0.023  # https://aws.amazon.com/s3/pricing/ (S3 Standard, first 50 TB a month)
DAYS_A_MONTH = 30  # a daily cycle, priced for a 30-day month


# What each prefix of the artifact bucket is kept for: the lifecycle rule's template parameter.
RETENTION_PARAMETERS = {"runs/": "ArtifactRetentionDays", "compliance/": "ComplianceExportRetentionDays"}


def retention_days(template_path: Path = ROOT / "template.yaml") -> dict[str, int]:
    defaults = Template.load(template_path).parameter_defaults()
    return {prefix: int(defaults[name]) for prefix, name in RETENTION_PARAMETERS.items()}


def projection(
    figures: Mapping[str, Any],
    retention: Mapping[str, int],
    *,
    targets: int = 200,
    instances: int = 1_000_000,
    concurrency: int = INLINE_MAP_MAX_CONCURRENCY,
    phase: str = "after_window_runs",
) -> dict[str, Any]:
    """A daily org cycle over `targets` account-Region targets holding `instances` in all, from the
    measured per-target figures of `phase`, within the concurrency quotas.

    Per target: state transitions and Lambda invocations as measured (they follow windows and steps, not
    instances); AWS calls, handler time (so GB-s), S3/SNS requests and bytes stored scaled by instances
    per target over the measured instances per target (linear; exact when the two are equal). The org
    cycle's own transitions, history, Map output and functions are per target measured, times the targets.
    """
    measured = figures[phase]
    succeeded = [t for t in measured["targets"].values() if t["status"] == "SUCCEEDED"]
    if not succeeded:
        raise ValueError(f"{phase}: no target succeeded; nothing to project from")
    measured_targets = len(measured["targets"])
    per_target_instances = instances / targets
    scale = per_target_instances / figures["instances_per_target"]
    per_org_target = targets / measured_targets

    def mean(key: Callable[[Mapping[str, Any]], float]) -> float:
        return sum(key(t) for t in succeeded) / len(succeeded)

    handler_seconds = mean(lambda t: t["handler_seconds"]) * scale
    slowest_seconds = max(t["handler_seconds"] for t in succeeded) * scale
    org = measured["org_functions"]
    org_cost = cycle_cost({**org, "state_transitions": 0})
    transitions = mean(lambda t: t["state_transitions"]) * targets
    org_transitions = measured["overall"]["org_state_transitions"] * per_org_target
    daily = {
        "step_functions": (transitions + org_transitions) * PRICES["state_transition"],
        "lambda": mean(lambda t: t["cost_usd"]["lambda"]) * scale * targets + org_cost["lambda"] * per_org_target,
        "s3_requests": mean(lambda t: t["cost_usd"]["s3_requests"]) * scale * targets,
        "sns": mean(lambda t: t["cost_usd"]["sns"]) * scale * targets,
        "api_requests": 0.0,  # EC2 and SSM charge nothing per API request (bench_cycle's PRICES)
    }
    written = measured.get("artifact_bytes_written", {})
    # Only what a lifecycle rule keeps for a set time is priced (and scaled per target); the org cycle's
    # own small summaries and the rewritten state objects are not.
    daily_bytes = {
        prefix: size / measured_targets * scale * targets for prefix, size in written.items() if prefix in retention
    }
    stored_gb = sum(daily_bytes.get(prefix, 0) * days for prefix, days in retention.items()) / 1e9
    monthly_storage = stored_gb * S3_STANDARD_GB_MONTH
    concurrent = min(concurrency, INLINE_MAP_MAX_CONCURRENCY, targets)
    waves = math.ceil(targets / concurrent)
    return {
        "from": f"{figures['accounts']}x{len(figures['regions'])}x{figures['instances_per_target']} ({phase})",
        "targets": targets,
        "instances": instances,
        "instances_per_target": round(per_target_instances),
        "scale": round(scale, 4),
        "targets_measured": measured_targets,
        "targets_succeeded": len(succeeded),
        "max_concurrency": concurrent,
        "waves": waves,
        # A wave's children run at once, each child's steps one after another (its inner Map 4 at a
        # time, so the sum of its handler times bounds its wall time from above); Step Functions' own
        # latency between states is not measured here and not included.
        "wall_seconds_slowest_target": round(waves * slowest_seconds + org["handler_seconds"] * per_org_target, 1),
        "wall_seconds_mean_target": round(waves * handler_seconds + org["handler_seconds"] * per_org_target, 1),
        "peak_lambda_concurrency": concurrent * PATCH_CYCLE_INNER_MAP_CONCURRENCY + 1,
        "lambda_concurrency_quota": LAMBDA_ACCOUNT_CONCURRENCY,
        "start_executions": targets + 1,
        "start_execution_bucket": START_EXECUTION_BUCKET,
        "state_transitions": round(transitions + org_transitions),
        "state_transition_bucket": STATE_TRANSITION_BUCKET,
        "state_transition_refill_per_second": STATE_TRANSITION_REFILL_PER_SECOND,
        "org_history_events": round(measured["overall"]["org_history_events"] * per_org_target),
        "history_events_quota": HISTORY_EVENTS_QUOTA,
        "org_max_payload_bytes": projected_org_payload(measured["overall"], per_org_target),
        "child_max_payload_bytes": round(measured["overall"]["child_max_payload_bytes"]),
        "payload_quota_bytes": PAYLOAD_QUOTA_BYTES,
        "lambda_invocations": round(mean(lambda t: sum(f["invocations"] for f in t["functions"].values())) * targets),
        "lambda_gb_seconds": round(mean(lambda t: t["cost_usd"]["lambda_gb_seconds"]) * scale * targets, 1),
        "aws_calls": round(mean(lambda t: t["aws_calls"]) * scale * targets),
        "daily_cost_usd": {key: round(value, 4) for key, value in daily.items()}
        | {"total": round(sum(daily.values()), 4)},
        "snapshot_bytes_per_day": {prefix: round(size) for prefix, size in daily_bytes.items()},
        "retention_days": dict(retention),
        "stored_gb_steady": round(stored_gb, 2),
        "storage_usd_month": round(monthly_storage, 2),
        "monthly_cost_usd": round(sum(daily.values()) * DAYS_A_MONTH + monthly_storage, 2),
    }


# --- docs/performance.md ----------------------------------------------------------------------------

PAGE = ROOT / "docs" / "performance.md"
PAGE_BEGIN = "<!-- generated: .venv/bin/python -m benchmarks.bench_org --page; do not edit by hand -->"
PAGE_END = "<!-- end of generated organization tables -->"


def org_results(directory: Path = RESULTS) -> list[dict[str, Any]]:
    """Each org-*.json, smallest organization first, with its file name as "file"."""
    found = [
        {**json.loads(path.read_text(encoding="utf-8")), "file": path.name} for path in directory.glob("org-*.json")
    ]
    return sorted(found, key=lambda figures: (int(figures["instances"]), figures["file"]))


def _usd(value: float) -> str:
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def _cycles_table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| results | cycle | targets | wall time | AWS calls | writes to patching resources "
        "| state transitions (org + patch cycles) | largest payload (org / patch cycle) | org history events "
        "| Lambda GB-s | AWS cost | peak RSS |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for label in PHASES:
            if label not in r:
                lines.append(f"| `{r['file']}` | {label.replace('_', ' ')} | not measured (the run stopped) |||||||||")
                continue
            o = r[label]["overall"]
            statuses = ", ".join(f"{count} {status}" for status, count in sorted(o["targets_by_status"].items()))
            cost = o["cost_usd"]
            lines.append(
                f"| `{r['file']}` | {label.replace('_', ' ')} | {statuses} | {o['wall_seconds']} s "
                f"| {o['aws_calls']:,} | {o['resource_write_calls']:,} | {o['state_transitions']:,} "
                f"({o['org_state_transitions']:,} + {o['child_state_transitions']:,}) "
                f"| {o['org_max_payload_bytes']:,} B / {o['child_max_payload_bytes']:,} B "
                f"| {o['org_history_events']:,} | {cost['lambda_gb_seconds']} | {_usd(cost['total'])} "
                f"| {r['peak_rss_mib']:,} MiB |"
            )
    return "\n".join(lines)


def _targets_table(r: dict[str, Any], label: str) -> str:
    lines = [
        f"`{r['file']}`, {label.replace('_', ' ')}, per target (handler time: its invocations' durations summed; "
        "span: its first invocation's start to its last one's end, here, with the other targets' interleaved):",
        "",
        "| target | status | handler time | span | AWS calls | writes to patching resources | state transitions "
        "| largest payload | Lambda GB-s | AWS cost |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, t in r[label]["targets"].items():
        lines.append(
            f"| {name} | {t['status']} | {t['handler_seconds']} s | {t['span_seconds']} s | {t['aws_calls']:,} "
            f"| {t['resource_write_calls']:,} | {t['state_transitions']} | {t['max_payload_bytes']:,} B "
            f"| {t['cost_usd']['lambda_gb_seconds']} | {_usd(t['cost_usd']['total'])} |"
        )
    targets = list(r[label]["targets"].values())
    operations = sorted({op for t in targets for op in t["aws_calls_by_operation"]})
    lines += ["", "| API call, per target | fewest | most |", "|---|---:|---:|"]
    for operation in operations:
        counts = [t["aws_calls_by_operation"].get(operation, 0) for t in targets]
        lines.append(f"| `{operation}` | {min(counts):,} | {max(counts):,} |")
    return "\n".join(lines)


def _fits(value: float, quota: float) -> str:
    return "within it" if value <= quota else "OVER IT"


def _projection_table(p: Mapping[str, Any]) -> str:
    cost = p["daily_cost_usd"]
    rows = [
        ("measured from", f"`{p['from']}`: {p['targets_succeeded']} of {p['targets_measured']} targets succeeded"),
        (
            "targets, instances",
            f"{p['targets']:,} account-Region targets, {p['instances']:,} instances "
            f"({p['instances_per_target']:,} a target; per-target figures scaled by {p['scale']})",
        ),
        (
            "targets at once",
            f"{p['max_concurrency']} (inline Map at most {INLINE_MAP_MAX_CONCURRENCY}), so {p['waves']} waves",
        ),
        (
            "wall time",
            f"{p['wall_seconds_mean_target']:,} s with the mean target's handler time, "
            f"{p['wall_seconds_slowest_target']:,} s if every wave waits for the slowest target",
        ),
        (
            "Lambda concurrency",
            f"at most {p['peak_lambda_concurrency']} (targets at once times the patch cycle's Map "
            f"of {PATCH_CYCLE_INNER_MAP_CONCURRENCY}, + the org cycle); quota {p['lambda_concurrency_quota']:,}",
        ),
        (
            "StartExecution",
            f"{p['start_executions']:,} a cycle (one org cycle, one a target); bucket "
            f"{p['start_execution_bucket']:,}: {_fits(p['start_executions'], p['start_execution_bucket'])}",
        ),
        (
            "state transitions",
            f"{p['state_transitions']:,} a cycle; bucket {p['state_transition_bucket']:,}, "
            f"refill {p['state_transition_refill_per_second']:,}/s",
        ),
        (
            "org execution history",
            f"{p['org_history_events']:,} events; quota {p['history_events_quota']:,}: "
            f"{_fits(p['org_history_events'], p['history_events_quota'])}",
        ),
        (
            "largest payload",
            f"org cycle {p['org_max_payload_bytes']:,} B, a patch cycle "
            f"{p['child_max_payload_bytes']:,} B; quota {p['payload_quota_bytes']:,} B: "
            f"{_fits(max(p['org_max_payload_bytes'], p['child_max_payload_bytes']), p['payload_quota_bytes'])}",
        ),
        ("Lambda", f"{p['lambda_invocations']:,} invocations, {p['lambda_gb_seconds']:,} GB-s a cycle"),
        ("AWS calls", f"{p['aws_calls']:,} a cycle"),
        (
            "daily cycle cost",
            f"Step Functions {_usd(cost['step_functions'])}, Lambda {_usd(cost['lambda'])}, "
            f"S3 requests {_usd(cost['s3_requests'])}, SNS {_usd(cost['sns'])}, EC2 and SSM APIs "
            f"{_usd(cost['api_requests'])}: {_usd(cost['total'])}",
        ),
        (
            "artifacts stored",
            ", ".join(f"`{prefix}` {size:,} B a day" for prefix, size in p["snapshot_bytes_per_day"].items())
            + "; kept "
            + ", ".join(f"`{prefix}` {days} days" for prefix, days in p["retention_days"].items())
            + f": {p['stored_gb_steady']:,} GB once steady, {_usd(p['storage_usd_month'])} a month",
        ),
        ("a month of daily cycles", _usd(p["monthly_cost_usd"])),
    ]
    return "| | |\n|---|---|\n" + "\n".join(f"| {key} | {value} |" for key, value in rows)


def org_tables(directory: Path = RESULTS) -> str:
    results = org_results(directory)
    if not results:
        return "No organization results yet (`benchmarks/results/org-*.json`)."
    measured = "; ".join(
        f"`{r['file']}`, {r['measured_at']}, {r['machine']}, baselines: {r.get('baselines', 'the policy')}"
        for r in results
    )
    sections = [f"Measured: {measured}.", _cycles_table(results)]
    largest = results[-1]
    daily = next((label for label in ("after_window_runs", "first_cycle") if label in largest), None)
    if daily is not None:
        sections.append(_targets_table(largest, daily))
    projected = [r for r in results if "after_window_runs" in r]
    if projected:
        source = projected[-1]
        try:
            sections += [
                "#### At 200 account-Region targets and 1,000,000 instances (computed from the measurement)",
                _projection_table(projection(source, retention_days())),
            ]
        except ValueError as error:
            sections.append(f"No projection: `{source['file']}`: {error}.")
    return "\n\n".join(sections)


def render_page(page: str, directory: Path = RESULTS) -> str:
    """page with the text between this benchmark's markers replaced by the current tables."""
    before, rest = page.split(PAGE_BEGIN, 1)
    _, after = rest.split(PAGE_END, 1)
    return f"{before}{PAGE_BEGIN}\n\n{org_tables(directory)}\n\n{PAGE_END}{after}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=2)
    parser.add_argument("--regions", nargs="+", default=["us-east-1", "eu-west-1"])
    parser.add_argument("--instances", type=int, default=50, help="per account and Region")
    parser.add_argument("--patch-groups", type=int, default=200)
    parser.add_argument("--schedules", type=int, default=20)
    parser.add_argument("--max-concurrency", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--aws-default-baselines",
        action="store_true",
        help="register no custom baseline (policy `baselines: {}`), as measured before the spoke copied them",
    )
    parser.add_argument("--page", action="store_true", help=f"rewrite this benchmark's tables in {PAGE.name} and stop")
    args = parser.parse_args()
    if args.page:
        PAGE.write_text(render_page(PAGE.read_text(encoding="utf-8"), args.out), encoding="utf-8")
        return
    with tempfile.TemporaryDirectory() as folder:
        figures = measure(
            args.accounts,
            args.regions,
            args.instances,
            patch_groups=args.patch_groups,
            schedules=args.schedules,
            concurrency=args.max_concurrency,
            out=args.out,
            folder=Path(folder),
            aws_default_baselines=args.aws_default_baselines,
        )
    for label in PHASES:
        overall = figures[label]["overall"]
        print(label, overall["status"], overall["wall_seconds"], overall["aws_calls"], overall["state_transitions"])
    print(json.dumps(projection(figures, retention_days()), indent=2))


if __name__ == "__main__":
    main()
