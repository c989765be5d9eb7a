"""A whole cycle under throttling at AWS's documented request rates does what an unthrottled cycle does.

The simulated account answers every handler request that finds its token bucket empty with the
service's throttling error, without carrying it out (simulator/throttling.py; the rates and their
sources are in docs/simulator.md, "Throttling at documented rates"). The fleet is large enough that
the cycle's bursts of SSM writes (patch group registrations, window targets) exceed their buckets, so
requests really are refused; botocore's retries and the state machine's Retry must absorb them.
"""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import botocore.endpoint
import pytest
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

from tagpatch.inventory import decode_jsonl_gz
from tagpatch_local.fleet import FleetInstance, GeneratorSpec, generate_fleet
from tagpatch_local.report import instance_lines
from tagpatch_local.runner import ACCOUNT_ID, CycleResult, SimulatedAccount
from tagpatch_local.simulator.throttling import Throttle

from .support import REPO, instance, registrations, run_ok

INSTANCES = 2000
MOMENT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # one clock for both runs: outputs carry dates


def fleet() -> list[FleetInstance]:
    return generate_fleet(
        GeneratorSpec(
            count=INSTANCES,
            seed=11,
            patch_groups={f"app-{index:03d}": 1.0 for index in range(200)},
            schedules={
                f"cron({(index * 7) % 60} {index % 24} ? * {('SUN', 'TUE', 'THU')[index % 3]} *)": 1.0
                for index in range(20)
            },
            os={"AMAZON_LINUX_2023": 5, "WINDOWS": 2, "UBUNTU": 2, "REDHAT_ENTERPRISE_LINUX": 1},
            owners={"team-a": 1, "team-b": 1},
            patch_group_key={"Patch Group": 3, "PatchGroup": 1},
            bad_tag_share=0.05,
            stopped_share=0.03,
            unmanaged_share=0.03,
            connection_lost_share=0.02,
        )
    )


def _names(account: SimulatedAccount) -> dict[str, str]:
    """Every id the run's outputs may hold -> a name that is the same in both accounts."""
    names: dict[str, str] = {}
    for page in account.client("ec2").get_paginator("describe_instances").paginate():
        for reservation in page["Reservations"]:
            for item in reservation["Instances"]:
                tags = {tag["Key"]: tag["Value"] for tag in item.get("Tags", [])}
                names[item["InstanceId"]] = f"<{tags['Name']}>"
    ssm = account.client("ssm")
    for page in ssm.get_paginator("describe_maintenance_windows").paginate():
        for window in page["WindowIdentities"]:
            names[window["WindowId"]] = f"<window {window['Name']}>"
    for page in ssm.get_paginator("describe_patch_baselines").paginate():
        for baseline in page["BaselineIdentities"]:
            names[baseline["BaselineId"]] = f"<baseline {baseline['BaselineName']}>"
    return names


ID_PATTERN = re.compile(r"\b(?:i|mw|pb)-[0-9a-f]{8,17}\b")
UUID_PATTERN = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


def _comparable(value: Any, names: dict[str, str]) -> Any:
    """value with account-specific ids replaced by names and lists in a canonical order."""
    text = ID_PATTERN.sub(lambda match: names.get(match.group(0), match.group(0)), json.dumps(value, default=str))
    text = UUID_PATTERN.sub("<uuid>", text)
    return _sorted(json.loads(text))


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(item) for key, item in value.items()}
    if isinstance(value, list):
        items = [_sorted(item) for item in value]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    return value


def _windows(account: SimulatedAccount) -> list[dict[str, Any]]:
    ssm = account.client("ssm")
    windows = []
    for page in ssm.get_paginator("describe_maintenance_windows").paginate():
        for window in page["WindowIdentities"]:
            window_id = window["WindowId"]
            detail = ssm.get_maintenance_window(WindowId=window_id)
            targets = ssm.describe_maintenance_window_targets(WindowId=window_id, MaxResults=100)["Targets"]
            tasks = ssm.describe_maintenance_window_tasks(WindowId=window_id, MaxResults=100)["Tasks"]
            windows.append(
                {
                    "window": {
                        k: v for k, v in detail.items() if k not in {"ResponseMetadata", "CreatedDate", "ModifiedDate"}
                    },
                    "targets": [{k: v for k, v in t.items() if k != "WindowTargetId"} for t in targets],
                    "tasks": [{k: v for k, v in t.items() if k != "WindowTaskId"} for t in tasks],
                }
            )
    return windows


def _export(account: SimulatedAccount, result: CycleResult) -> list[dict[str, Any]]:
    key = (result.output or {})["compliance"]["snapshot_key"]
    body = account.client("s3").get_object(Bucket=account.artifact_bucket, Key=key)["Body"].read()
    return list(decode_jsonl_gz(body))


def run_cycle(
    instances: list[FleetInstance], *, throttled: bool
) -> tuple[CycleResult, dict[str, Any], Throttle | None]:
    with SimulatedAccount(REPO / "template.yaml", log_stream=io.StringIO()) as account:
        account.set_clock(MOMENT)
        account.seed(instances)
        throttle = account.throttle_at_documented_rates() if throttled else None
        result = account.run_cycle(name=f"throttled-{throttled}")
        account.clear_faults()
        assert result.status == "SUCCEEDED", (result.error, result.cause)
        names = _names(account)
        outputs = {
            "instances": _comparable(instance_lines(account, result), names),
            "windows": _comparable(_windows(account), names),
            "registrations": _comparable(sorted(registrations(account).items()), names),
            "export": _comparable(_export(account, result), names),
            "counts": _comparable(
                {step: (result.output or {}).get(step, {}).get("counts") for step in ("validation", "compliance")},
                names,
            ),
        }
        throttled_calls = sum(n for call, n in account.faults.injected.items() if call.endswith(" throttled"))
        assert (throttle.total_throttled() if throttle else 0) == throttled_calls
    return result, outputs, throttle


def test_a_cycle_throttled_at_documented_rates_succeeds_with_the_unthrottled_outputs() -> None:
    instances = fleet()
    throttled_result, throttled_outputs, throttle = run_cycle(instances, throttled=True)
    assert throttle is not None
    # The throttle was not inert: requests were refused (and not carried out), and retried.
    assert throttle.total_throttled() > 0, "no request met an empty bucket; the test proves nothing"
    refused = {key[2]: count for key, count in throttle.throttled.items()}
    busiest = {key[2]: count for key, count in throttle.busiest_second().items()}
    # The bursts that exceed their buckets at this size are SSM writes (patch group registrations).
    assert any(name.startswith("ssm:Register") for name in refused), (refused, busiest)
    # No bucket accepted more than its capacity plus one second's refill in any one-second window.
    assert throttle.over_rate() == {}
    _, plain_outputs, _ = run_cycle(instances, throttled=False)
    for name, value in plain_outputs.items():
        assert throttled_outputs[name] == value, f"{name} differs under throttling (refused: {refused})"
    # and the outputs compared are the cycle's whole work, not empty lists.
    assert len(plain_outputs["instances"]) == INSTANCES
    assert len(plain_outputs["windows"]) == 20 and len(plain_outputs["registrations"]) >= 50
    assert len(plain_outputs["export"]) > 0 and throttled_result.calls["ssm:RegisterPatchBaselineForPatchGroup"] >= 50


def test_a_write_over_its_rate_is_not_carried_out_and_a_run_that_cannot_get_it_through_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # botocore's backoff and the state machine's Retry waits, without the sleeping; the buckets' clock
    # stands still, so an emptied bucket stays empty through every retry.
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=lambda _: None))
    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=lambda _: None))
    with SimulatedAccount(REPO / "template.yaml", log_stream=io.StringIO()) as account:
        account.seed([instance("web", "sun-0200"), instance("db", "cron(0 6 ? * * *)")])
        throttle = account.throttle_at_documented_rates()
        throttle.clock = lambda: 0.0
        while throttle.admit(ACCOUNT_ID, account.region, "ssm", "CreateMaintenanceWindow") is None:
            pass  # empty the bucket
        result = account.run_cycle()
        assert result.status == "FAILED", "a run whose windows SSM never accepted must not succeed"
        assert account.client("ssm").describe_maintenance_windows()["WindowIdentities"] == []
        refused = throttle.throttled[(ACCOUNT_ID, account.region, "ssm:CreateMaintenanceWindow")] - 1  # the probe's
        # Every attempt of both windows was refused: botocore's 5 a call, for each of the state machine's tries.
        assert refused == account.faults.injected["ssm:CreateMaintenanceWindow throttled"] >= 2 * 5
        # Once the bucket refills, a rerun creates both windows.
        account.clear_faults()
        run_ok(account)
        assert len(account.client("ssm").describe_maintenance_windows()["WindowIdentities"]) == 2
