"""Measure ComplianceExport's work at fleet scale: building one record per instance, gzip JSON Lines,
and report.html, from synthetic TagValidation lines and PatchMonitoring results (the S3 calls are not
timed: they are one GetObject per input artifact and four PutObjects).

    .venv/bin/python benchmarks/bench_export.py --sizes 1000 100000

Results go to benchmarks/results/export-<N>.json and a Markdown table to stdout. These are
measurements, not pass/fail tests.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tagpatch.classes import InstanceClass
from tagpatch.export import snapshot_records
from tagpatch.inventory import encode_jsonl_gz
from tagpatch.report_html import render

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
CLASSES: tuple[InstanceClass, ...] = ("ready",) * 16 + ("stopped", "missing_tags", "invalid_tags", "unmanaged")
OUTCOMES = ("patched",) * 12 + ("not_due",) * 4 + ("failed", "missed", "scanned", "not_scheduled")


def inputs(count: int) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], dict[str, str]]:
    lines, results = [], {}
    for n in range(count):
        instance_id = f"i-{n:017x}"
        group = f"group-{n % 200}"
        cls = CLASSES[n % len(CLASSES)]
        lines.append(
            {
                "instance_id": instance_id,
                "name": f"host-{n}",
                "owner": f"team-{n % 50}",
                "class": cls,
                "reasons": [] if cls in ("ready", "stopped") else ["no Patch Group tag"],
                "patch_group": group,
                "maintenance_window": f"window-{n % 20}",
                "os": ("AMAZON_LINUX_2023", "UBUNTU", "WINDOWS")[n % 3],
                "state": "stopped" if cls == "stopped" else "running",
                "ping_status": "Online",
                "in_scope": True,
            }
        )
        outcome = OUTCOMES[n % len(OUTCOMES)]
        results[instance_id] = {
            "outcome": outcome,
            "reason": f"window tagpatch-window-{n % 20} at 2026-11-29 02:00 UTC: {outcome}",
            "window": f"tagpatch-window-{n % 20}",
            "compliance": "NON_COMPLIANT" if outcome in ("failed", "scanned") else "COMPLIANT",
            "missing": 3 if outcome in ("failed", "scanned") else 0,
            "critical_missing": 1 if outcome == "failed" else 0,
            "failed": 3 if outcome == "failed" else 0,
            "pending_reboot": 0,
            "operation": "Scan" if outcome == "scanned" else "Install",
            "operation_end": "2026-11-29T02:30:00Z",
        }
    starts = {f"tagpatch-window-{w}": f"{NOW + timedelta(days=7):%Y-%m-%dT%H:%MZ}" for w in range(20)}
    return lines, results, starts


def _timed(lines: Any, results: Any, starts: Any) -> tuple[dict[str, float], bytes, bytes]:
    started = time.perf_counter()
    records = list(snapshot_records(lines, results, starts, {}, NOW))
    built = time.perf_counter()
    body = encode_jsonl_gz(records)
    encoded = time.perf_counter()
    page = render(records, generated_at="2026-11-29T12:00:00Z").encode()
    rendered = time.perf_counter()
    seconds = {
        "records_seconds": round(built - started, 3),
        "gzip_jsonl_seconds": round(encoded - built, 3),
        "report_html_seconds": round(rendered - encoded, 3),
        "total_seconds": round(rendered - started, 3),
    }
    return seconds, body, page


def measure(count: int) -> dict[str, Any]:
    """Times from a plain run; peak allocations from a second run under tracemalloc (which is slower)."""
    lines, results, starts = inputs(count)
    seconds, body, page = _timed(lines, results, starts)
    tracemalloc.start()
    _timed(lines, results, starts)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "instances": count,
        **seconds,
        "snapshot_bytes": len(body),
        "report_html_bytes": len(page),
        "peak_traced_mib": round(peak / 2**20, 1),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000])
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = []
    for count in args.sizes:
        result = measure(count)
        (RESULTS / f"export-{count}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        rows.append(result)
    print(
        "| instances | records s | gzip JSONL s | report.html s | total s | snapshot bytes | report bytes | peak MiB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['instances']:,} | {r['records_seconds']} | {r['gzip_jsonl_seconds']} | {r['report_html_seconds']} "
            f"| {r['total_seconds']} | {r['snapshot_bytes']:,} | {r['report_html_bytes']:,} | {r['peak_traced_mib']} |"
        )


if __name__ == "__main__":
    main()
