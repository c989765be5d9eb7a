"""tagpatch's own work per instance at 100,000 instances, without moto in the way.

    .venv/bin/python benchmarks/bench_fleet_scale.py --count 100000

A whole cycle at 100,000 instances in the simulated account is dominated by moto (its
DescribeInstances scans every instance for every page), so this measures what the Lambda functions
themselves do with a fleet that size: turn DescribeInstances/DescribeInstanceInformation items into
inventory records (Discovery), compress them (the S3 artifact), classify every instance
(TagValidation), and build the desired SSM state and plan (WindowUpsert). Results go to
benchmarks/results/fleet-scale-<N>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tagpatch.cycle import start_cycle
from tagpatch.desired import build_desired_state
from tagpatch.discovery import to_record
from tagpatch.inventory import decode_jsonl_gz, encode_jsonl_gz
from tagpatch.platforms import BY_OPERATING_SYSTEM
from tagpatch.policy import load_policy
from tagpatch.reconcile import plan_windows
from tagpatch.validation import ValidationSummary, validate_inventory
from tagpatch_local.fleet import FleetInstance, GeneratorSpec, generate_fleet

ROOT = Path(__file__).resolve().parents[1]


def timed[T](figures: dict[str, float], name: str, work: Callable[[], T]) -> T:
    started = time.perf_counter()
    result = work()
    figures[name] = round(time.perf_counter() - started, 2)
    return result


def api_items(index: int, item: FleetInstance) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """What DescribeInstances and DescribeInstanceInformation return for one fleet instance."""
    instance_id = f"i-{index:017x}"
    platform_info = BY_OPERATING_SYSTEM[item.os]
    instance = {
        "InstanceId": instance_id,
        "State": {"Name": item.state},
        "Tags": [{"Key": key, "Value": value} for key, value in item.tags.items()],
        "PlatformDetails": platform_info.ec2_platform_details,
        "LaunchTime": datetime(2026, 1, 1, tzinfo=UTC),
        **(
            {"IamInstanceProfile": {"Arn": "arn:aws:iam::123456789012:instance-profile/ssm"}}
            if item.instance_profile == "ssm"
            else {}
        ),
    }
    if item.ssm == "unmanaged":
        return instance, None
    node = {
        "InstanceId": instance_id,
        "PingStatus": "Online" if item.ssm == "online" and item.state == "running" else "ConnectionLost",
        "PlatformType": platform_info.platform_type,
        "PlatformName": platform_info.platform_name,
        "PlatformVersion": platform_info.platform_version,
        "AgentVersion": "3.3.0.0",
    }
    return instance, node


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000)
    args = parser.parse_args()
    policy = load_policy(ROOT / "policy" / "patch-policy.yaml")
    cycle = start_cycle({}, execution_id="bench", execution_name="bench", start_time="2026-11-27T00:00:00Z")
    spec = GeneratorSpec(
        count=args.count,
        seed=11,
        patch_groups={f"app-{index:03d}": 1.0 for index in range(200)},
        schedules={f"cron({(i * 7) % 60} {i % 24} ? * {('SUN', 'TUE', 'THU')[i % 3]} *)": 1.0 for i in range(20)},
        os={"AMAZON_LINUX_2023": 5, "WINDOWS": 2, "UBUNTU": 2, "REDHAT_ENTERPRISE_LINUX": 1},
        patch_group_key={"Patch Group": 3, "PatchGroup": 1},
        bad_tag_share=0.05,
        stopped_share=0.03,
        unmanaged_share=0.03,
        connection_lost_share=0.02,
    )
    figures: dict[str, float] = {}
    fleet = timed(figures, "generate_fleet_s", lambda: generate_fleet(spec))
    items = [api_items(index, item) for index, item in enumerate(fleet)]
    records = timed(figures, "discovery_records_s", lambda: [to_record(instance, node) for instance, node in items])
    inventory = timed(figures, "discovery_compress_s", lambda: encode_jsonl_gz(records))
    summary = ValidationSummary()
    reports = timed(
        figures,
        "tag_validation_s",
        lambda: list(validate_inventory(decode_jsonl_gz(inventory), policy, cycle, summary)),
    )
    instances_artifact = timed(figures, "tag_validation_compress_s", lambda: encode_jsonl_gz(reports))
    desired = timed(figures, "desired_state_s", lambda: build_desired_state(reports, policy))
    plan = timed(
        figures,
        "plan_first_cycle_s",
        lambda: plan_windows(desired, [], max_deletion_share=0.25, allow_mass_deletion=False),
    )
    result = {
        "instances": args.count,
        "seconds": figures,
        "inventory_artifact_bytes": len(inventory),
        "instances_artifact_bytes": len(instances_artifact),
        "by_class": summary.counts_by_class(),
        "windows": len(desired.windows),
        "targets": sum(len(window.targets) for window in desired.windows),
        "registrations": len(desired.registrations),
        "planned_writes": len(plan.writes()),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = ROOT / "benchmarks" / "results" / f"fleet-scale-{args.count}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
