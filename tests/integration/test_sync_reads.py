"""Patch states read from the resource data sync's S3 objects, where the design reads compliance, give
the same records as DescribeInstancePatchStates on the same fleet; a node the sync has no object for is
read through the API; without the sync, every node is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tagpatch_local.report import patch_result_lines
from tagpatch_local.runner import ACCOUNT_ID, CycleResult, SimulatedAccount

from .support import instance, run_ok

REPO = Path(__file__).resolve().parents[2]
FRIDAY_NOON = datetime(2026, 11, 27, 12, tzinfo=UTC)
PLAN = {"mode": "plan"}  # reads what apply reads and moves no watermark: both cycles read the same runs


def monitoring_calls(result: CycleResult) -> dict[str, int]:
    return dict(result.calls_by_function.get("PatchMonitoringFunction", {}))


def by_id(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {line["instance_id"]: line for line in lines}


def test_the_sync_and_the_api_give_the_same_records_on_the_same_fleet() -> None:
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.set_clock(FRIDAY_NOON)
        names = ("ok-1", "ok-2", "critical", "bad", "stopped", "new")
        fleet = [instance("web", "sun-0200", name=name) for name in names[:2]]
        # Each failing node alone in its window: MaxErrors stops no other node.
        fleet += [
            instance("db", "cron(0 3 ? * SUN *)", name="critical"),
            instance("db", "cron(0 4 ? * SUN *)", name="bad"),
        ]
        fleet += [instance("web", "sun-0200", name="stopped", state="stopped"), instance("web", "sun-0200", name="new")]
        ids = dict(zip(names, account.seed(fleet), strict=True))
        account.set_patch_behaviour(ids["ok-1"], {"missing": 3})
        account.set_patch_behaviour(ids["critical"], {"missing": 4, "critical": 2, "result": "failed"})
        account.set_patch_behaviour(ids["bad"], {"missing": 5, "critical": 1, "result": "failed"})
        run_ok(account)
        account.advance(timedelta(hours=48))
        s3, region = account.client("s3"), account.client("ssm").meta.region_name
        summaries = f"resource-data-sync/AWS:PatchSummary/accountid={ACCOUNT_ID}/region={region}/"
        listed = s3.list_objects_v2(Bucket=account.artifact_bucket, Prefix=summaries)["Contents"]
        synced = {str(item["Key"]).rsplit("/", 1)[1].removesuffix(".json") for item in listed}
        assert synced >= {ids["ok-1"], ids["ok-2"], ids["bad"]}
        # A node the sync has not written yet: its objects are gone, so it is read through the API.
        for data_type in ("AWS:PatchSummary", "AWS:ComplianceItem"):
            key = f"resource-data-sync/{data_type}/accountid={ACCOUNT_ID}/region={region}/"
            s3.delete_object(
                Bucket=account.artifact_bucket, Key=f"{key}resourcetype=ManagedInstanceInventory/{ids['new']}.json"
            )
        through_sync = run_ok(account, PLAN)
        sync_calls = monitoring_calls(through_sync)
        (sync,) = account.client("ssm").list_resource_data_sync()["ResourceDataSyncItems"]
        account.client("ssm").delete_resource_data_sync(SyncName=sync["SyncName"])
        through_api = run_ok(account, PLAN)
        api_calls = monitoring_calls(through_api)
        from_sync = by_id(patch_result_lines(account, through_sync))
        from_api = by_id(patch_result_lines(account, through_api))
    assert from_sync == from_api
    assert from_api[ids["critical"]]["critical_missing"] == 2 and from_api[ids["bad"]]["compliance"] == "NON_COMPLIANT"
    assert from_api[ids["new"]]["last_scan"] and from_api[ids["stopped"]]["scan_status"] == "never_scanned"
    # Through the sync: only the node without objects went to DescribeInstancePatchStates (one call).
    assert sync_calls.get("ssm:DescribeInstancePatchStates") == 1, sync_calls
    # Two objects for each other synced node: the only GetObject calls the API path does not make.
    assert sync_calls["s3:GetObject"] - api_calls["s3:GetObject"] == 2 * len(synced - {ids["new"]}), sync_calls
    assert api_calls.get("ssm:DescribeInstancePatchStates") == 1 and "ssm:ListResourceDataSync" in api_calls


def test_a_stack_without_the_sync_reads_every_patch_state_through_the_api() -> None:
    with SimulatedAccount(REPO / "template.yaml", parameter_overrides={"ResourceDataSync": "DISABLED"}) as account:
        account.set_clock(FRIDAY_NOON)
        ids = account.seed([instance("web", "sun-0200", name=f"web-{n}") for n in range(3)])
        run_ok(account)
        account.advance(timedelta(hours=48))
        assert account.client("ssm").list_resource_data_sync()["ResourceDataSyncItems"] == []
        result = run_ok(account)
        calls = monitoring_calls(result)
        lines = by_id(patch_result_lines(account, result))
    assert "ssm:ListResourceDataSync" not in calls  # no sync named: nothing to look for
    assert calls.get("ssm:DescribeInstancePatchStates") == 1
    assert {lines[i]["outcome"] for i in ids} == {"patched"} and all(lines[i]["last_scan"] for i in ids)
