"""What a local run leaves in its output folder: summary.json, instances.jsonl and the tag report."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from tagpatch.inventory import decode_jsonl_gz

from tagpatch_local.runner import CycleResult, SimulatedAccount

INSTANCE_FIELDS = (
    "instance_id",
    "name",
    "class",
    "reasons",
    "warnings",
    "patch_group",
    "maintenance_window",
    "os",
    "owner",
    "patch_group_key",
    "window_key",
    "window_kind",
    "state",
    "ping_status",
    "in_scope",
)


def _artifact(account: SimulatedAccount, key: str) -> bytes:
    body: bytes = account.client("s3").get_object(Bucket=account.artifact_bucket, Key=key)["Body"].read()
    return body


def instance_lines(account: SimulatedAccount, result: CycleResult) -> list[dict[str, Any]]:
    validation = (result.output or {}).get("validation")
    if not validation:
        return []
    lines = decode_jsonl_gz(_artifact(account, validation["instances_key"]))
    return [{name: line.get(name) for name in INSTANCE_FIELDS} for line in lines]


def summary_document(result: CycleResult, instances: list[dict[str, Any]]) -> dict[str, Any]:
    by_class = Counter(line["class"] for line in instances)
    return {
        "execution": {
            "name": result.execution_name,
            "status": result.status,
            "error": result.error,
            "cause": result.cause,
            "state_transitions": result.state_transitions,
            "max_payload_bytes": result.max_payload_bytes,
            "wall_seconds": round(result.wall_seconds, 3),
        },
        "aws_calls": dict(sorted(result.calls.items())),
        "aws_calls_by_function": {
            function: dict(sorted(calls.items()))
            for function, calls in sorted(result.calls_by_function.items())
        },
        "aws_write_calls": dict(sorted(result.write_calls.items())),
        "resource_write_calls": dict(sorted(result.resource_write_calls.items())),
        "instances": {"total": len(instances), "by_class": dict(sorted(by_class.items()))},
        "output": result.output,
    }


def write_outputs(account: SimulatedAccount, result: CycleResult, out_dir: Path) -> Counter[str]:
    instances = instance_lines(account, result)
    summary = summary_document(result, instances)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    with (out_dir / "instances.jsonl").open("w", encoding="utf-8") as stream:
        for line in instances:
            stream.write(json.dumps(line, ensure_ascii=False) + "\n")
    validation = (result.output or {}).get("validation")
    if validation:
        (out_dir / "tag-report.json").write_bytes(_artifact(account, validation["report_key"]))
    return Counter(summary["instances"]["by_class"])
