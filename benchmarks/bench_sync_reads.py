"""Measure PatchMonitoring's patch-state reads both ways at fleet scale: through the resource data sync's
S3 objects, and through DescribeInstancePatchStates.

    nice -n 10 .venv/bin/python -m benchmarks.bench_sync_reads --sizes 1000 10000
    nice -n 10 .venv/bin/python -m benchmarks.bench_sync_reads --sizes 100000 --ways api

For each size: give N nodes a patch state in the simulated account (SSM's state, and the sync's objects
that SSM writes when a state changes), then run MonitoringReads' `patch_states` phase from a fresh
cursor to `done`, once with the sync and once without, in this process against the simulated account.
Records each way's calls by operation, its invocations (turns of the read loop at the template's
default share) and its wall time, and checks both ways give the same records. The wall time is the
simulator's cost of answering, not AWS's latency (which AWS does not document for either API).
The simulated account answers a call in about 14 ms of CPU whichever the call, so the sync way at
100,000 instances (about 200,400 calls) takes about 47 CPU-minutes; `--ways api` measures the API way
alone. Results go to benchmarks/results/sync-reads-<N>.json (`-api` appended when only the API way was
measured). These are measurements, not pass/fail tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from tagpatch import aws
from tagpatch.cycle import Cycle
from tagpatch.inventory import get_jsonl_gz
from tagpatch.monitoring_reads import MonitoringCursor, begin, part_key, read_some
from tagpatch.sync_reads import SyncLocation, find_sync
from tagpatch_local import simulator
from tagpatch_local.simulator import data_sync, executions

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "tagpatch-artifacts"
SYNC = "tagpatch-patch-compliance"
PREFIX = "resource-data-sync"
NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
WAYS = ("sync", "api")
ITEMS_PER_INVOCATION = 25_000  # template.yaml's MonitoringItemsPerInvocation default


def _cycle(name: str) -> Cycle:
    return Cycle(
        run_id=name,
        execution_id=f"arn:aws:states:{REGION}:{ACCOUNT}:execution:tagpatch:{name}",
        now=NOW,
        mode="plan",
        patch_groups=None,
        artifact_prefix=f"runs/{name}/",
    )


def _sync_bucket_policy() -> str:
    """The User Guide's bucket policy for a resource data sync (what template.yaml grants)."""
    source = {"aws:SourceAccount": ACCOUNT}
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "ssm.amazonaws.com"},
                    "Action": "s3:GetBucketAcl",
                    "Resource": f"arn:aws:s3:::{BUCKET}",
                    "Condition": {"StringEquals": source},
                },
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "ssm.amazonaws.com"},
                    "Action": "s3:PutObject",
                    "Resource": f"arn:aws:s3:::{BUCKET}/{PREFIX}/*/accountid={ACCOUNT}/*",
                    "Condition": {"StringEquals": {**source, "s3:x-amz-acl": "bucket-owner-full-control"}},
                },
            ],
        }
    )


def seed(count: int, *, synced: bool) -> list[str]:
    """N nodes with a patch state, written to the sync (when `synced`) as SSM writes on a state change."""
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    boto3.client("s3", region_name=REGION).put_bucket_policy(Bucket=BUCKET, Policy=_sync_bucket_policy())
    boto3.client("ssm", region_name=REGION).create_resource_data_sync(
        SyncName=SYNC,
        S3Destination={"BucketName": BUCKET, "Prefix": PREFIX, "SyncFormat": "JsonSerDe", "Region": REGION},
    )
    state = executions.run_state(ACCOUNT, REGION)
    ids = [f"i-{n:017x}" for n in range(count)]
    ended = NOW - timedelta(hours=6)
    for n, instance_id in enumerate(ids):
        missing, critical = n % 5, n % 3 if n % 5 else 0
        patched = executions.PatchState(
            instance_id=instance_id,
            patch_group=f"group-{n % 200}",
            baseline_id="pb-0123456789abcdef0",
            operation="Scan" if n % 2 else "Install",
            started=ended - timedelta(minutes=5),
            ended=ended,
            reboot_option="RebootIfNeeded",
            installed=10,
            installed_pending_reboot=0,
            missing=missing,
            failed=0,
            critical_missing=critical,
            execution_id=f"cmd-{n}",
            severity_of_missing="UNSPECIFIED",
        )
        state.patch_states[instance_id] = patched
        if not synced:
            continue
        summary = executions._resource_summary(patched)
        data_sync.patch_state_changed(ACCOUNT, REGION, patched.to_output(), summary, {}, "AMAZON_LINUX_2023")
    return ids


@contextmanager
def counted() -> Iterator[Counter[str]]:
    calls: Counter[str] = Counter()

    def record(model: Any, **_: Any) -> None:
        calls[f"{model.service_model.signing_name}:{model.name}"] += 1

    # A client copies the session's handlers when it is made: make tagpatch's clients again, with this hook.
    aws.client.cache_clear()
    session = aws._default_session()
    session.events.register("before-call", record)
    try:
        yield calls
    finally:
        session.events.unregister("before-call", record)


def read_states(name: str, ids: list[str], sync: SyncLocation | None) -> dict[str, Any]:
    cycle = _cycle(name)
    started = time.monotonic()
    cursor = begin(MonitoringCursor(), cycle, BUCKET, NOW - timedelta(days=1), NOW, {}, ids, None, sync)
    while cursor.phase != "done":
        cursor = read_some(cursor, cycle, BUCKET, items=ITEMS_PER_INVOCATION, seconds=3600)
    seconds = time.monotonic() - started
    records = [
        r for part in range(cursor.state_parts) for r in get_jsonl_gz(BUCKET, part_key(cycle, "patch-states", part))
    ]
    return {"seconds": round(seconds, 2), "invocations": cursor.invocations, "records": records}


def measure(count: int, ways: tuple[str, ...] = WAYS) -> dict[str, Any]:
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)  # tagpatch's clients take theirs from the environment
    simulator.install()
    with mock_aws():
        boto3.DEFAULT_SESSION = None
        aws.client.cache_clear()
        started = time.monotonic()
        ids = seed(count, synced="sync" in ways)
        seed_seconds = time.monotonic() - started
        figures: dict[str, Any] = {"instances": count, "seed_seconds": round(seed_seconds, 1)}
        records = {}
        for way in ways:
            with counted() as calls:
                sync = find_sync(SYNC, ACCOUNT)[0] if way == "sync" else None
                read = read_states(f"{way}-{count}", ids, sync)
            records[way] = sorted(read.pop("records"), key=lambda r: r["instance_id"])
            figures[way] = {**read, "calls": dict(sorted(calls.items())), "call_total": sum(calls.values())}
        aws.client.cache_clear()
    figures["same_records"] = records["sync"] == records["api"] if len(records) == len(WAYS) else None
    figures["records"] = len(next(iter(records.values())))
    figures["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    figures["machine"] = f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}"
    figures["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--ways", nargs="+", choices=WAYS, default=list(WAYS), help="measure only these ways")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    print("| instances | way | calls | invocations | seconds | same records |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        figures = measure(size, tuple(args.ways))
        suffix = "" if len(args.ways) == len(WAYS) else f"-{'-'.join(args.ways)}"
        (RESULTS / f"sync-reads-{size}{suffix}.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        for way in args.ways:
            print(
                f"| {size:,} | {way} | {figures[way]['call_total']:,} | {figures[way]['invocations']} | "
                f"{figures[way]['seconds']} | {figures['same_records']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
