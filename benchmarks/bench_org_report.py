"""Measure the organization's report.html as SummarizeTargets builds it (tagpatch.org_report.org_page),
without the S3 calls: the rows page over every reported target's rows (read lazily, each row decoded
from JSON as the gzip snapshot's reader decodes it), and the summary page past the row limit, built from
the targets' counts alone.

    .venv/bin/python -m benchmarks.bench_org_report --rows-page 20x5000 --summary 200x5000 200x50000

Each `TxI` is T targets of I instances. Times are the median of three plain runs; peak allocations come
from a further run under tracemalloc. Results go to benchmarks/results/report-org.json and a Markdown
table to stdout. These are measurements, not pass/fail tests.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from benchmarks.bench_export import NOW, RESULTS, inputs
from tagpatch.export import snapshot_records, summarize
from tagpatch.org_report import ORG_REPORT_MAX_ROWS, OrgReportPlan, org_page, plan_report
from tagpatch.org_summary import TargetOutcome
from tagpatch.targets import TargetPayload
from tagpatch.trend import TrendPoint

HOME = TargetPayload(account_id="100000000000", region="us-east-1")
REGIONS = ("us-east-1", "eu-west-1")


def _target(index: int) -> TargetPayload:
    return TargetPayload(account_id=f"{100_000_000_000 + index // len(REGIONS)}", region=REGIONS[index % len(REGIONS)])


def _plan(targets: int, counts: dict[str, int]) -> OrgReportPlan:
    outcomes = [
        TargetOutcome(
            target=_target(n),
            status="SUCCEEDED",
            execution_arn=None,
            error=None,
            reason=None,
            compliance={"snapshot_key": f"compliance/snapshots/dt=2026-11-29/{n}.jsonl.gz", "counts": counts},
        )
        for n in range(targets)
    ]
    return plan_report(outcomes, HOME)


def _trend(instances: int) -> list[TrendPoint]:
    return [
        TrendPoint(
            date=f"2026-11-{day:02d}",
            instances=instances,
            compliant=instances // 2,
            non_compliant=0,
            unknown=0,
            excepted=0,
        )
        for day in range(1, 30)
    ]


def _measured(build: Any) -> dict[str, Any]:
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        page: bytes = build()
        seconds.append(time.perf_counter() - started)
    tracemalloc.start()
    build()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "seconds": round(statistics.median(seconds), 3),
        "page_bytes": len(page),
        "peak_traced_mib": round(peak / 2**20, 1),
    }


def rows_page(targets: int, per_target: int) -> dict[str, Any]:
    lines, results, starts = inputs(per_target)
    encoded = [json.dumps(record) for record in snapshot_records(lines, results, starts, {}, NOW)]
    counts = summarize(json.loads(line) for line in encoded)

    def read(key: str) -> Iterator[dict[str, Any]]:
        return (json.loads(line) for line in encoded)  # a fresh object per row, as the gzip reader's

    plan = _plan(targets, counts)
    built = _measured(
        lambda: org_page(
            plan,
            read,
            generated_at="2026-11-29T12:00:00Z",
            trend=_trend(targets * per_target),
            max_rows=targets * per_target,
        ).encode()
    )
    return {"page": "rows", "targets": targets, "instances": targets * per_target, **built}


def summary_page(targets: int, per_target: int) -> dict[str, Any]:
    counts = {
        "instances": per_target,
        "compliant": per_target * 8 // 10,
        "non_compliant": per_target // 10,
        "unknown": per_target - per_target * 9 // 10,
        "excepted": 5,
    }
    plan = _plan(targets, counts)

    def no_rows(key: str) -> Iterator[dict[str, Any]]:
        raise AssertionError("the summary page reads no row")

    built = _measured(
        lambda: org_page(
            plan,
            no_rows,
            generated_at="2026-11-29T12:00:00Z",
            trend=_trend(targets * per_target),
            max_rows=ORG_REPORT_MAX_ROWS,
        ).encode()
    )
    return {"page": "summary", "targets": targets, "instances": targets * per_target, **built}


def _sizes(value: str) -> tuple[int, int]:
    targets, _, instances = value.partition("x")
    return int(targets), int(instances)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-page", type=_sizes, nargs="*", default=[])
    parser.add_argument("--summary", type=_sizes, nargs="*", default=[(200, 5000)])
    args = parser.parse_args()
    measured = [rows_page(*size) for size in args.rows_page] + [summary_page(*size) for size in args.summary]
    document = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "org_report_max_rows": ORG_REPORT_MAX_ROWS,
        "results": measured,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "report-org.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print("| page | targets | instances | render | page size | peak allocations |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in measured:
        print(
            f"| {r['page']} | {r['targets']:,} | {r['instances']:,} | {r['seconds']} s "
            f"| {r['page_bytes']:,} B | {r['peak_traced_mib']} MiB |"
        )


if __name__ == "__main__":
    main()
