"""The simulated resource data sync: its API rules and the objects a patch state change writes."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tagpatch_local.runner import ACCOUNT_ID, SimulatedAccount
from tagpatch_local.simulator import data_sync

SUMMARY = {
    "InstanceId": "i-0123456789abcdef0",
    "PatchGroup": "web",
    "BaselineId": "pb-0123456789abcdef0",
    "CriticalNonCompliantCount": 0,
    "OperationStartTime": datetime(2026, 11, 29, 2, 25),
    "OperationEndTime": datetime(2026, 11, 29, 2, 30),
    "Operation": "Scan",
    "MissingCount": 0,
}
COMPLIANT = {
    "Status": "COMPLIANT",
    "OverallSeverity": "UNSPECIFIED",
    "ExecutionSummary": {"ExecutionId": "cmd-1"},
    "NonCompliantSummary": {"SeveritySummary": {"CriticalCount": 0, "HighCount": 0, "LowCount": 0}},
}


def test_the_stacks_sync_gets_every_type_in_the_documented_layout_when_a_patch_state_changes(
    account: SimulatedAccount,
) -> None:
    ssm = account.client("ssm")
    (sync,) = ssm.list_resource_data_sync()["ResourceDataSyncItems"]
    assert sync["S3Destination"]["Prefix"] == "resource-data-sync"
    with pytest.raises(ClientError) as existing:
        ssm.create_resource_data_sync(
            SyncName=sync["SyncName"],
            S3Destination={"BucketName": account.artifact_bucket, "SyncFormat": "JsonSerDe", "Region": "us-east-1"},
        )
    assert existing.value.response["Error"]["Code"] == "ResourceDataSyncAlreadyExistsException"
    summary = {
        "InstanceId": "i-0123456789abcdef0",
        "PatchGroup": "web",
        "BaselineId": "pb-0123456789abcdef0",
        "CriticalNonCompliantCount": 2,
        "OperationStartTime": datetime(2026, 11, 29, 2, 25),
        "OperationEndTime": datetime(2026, 11, 29, 2, 30),
        "Operation": "Install",
        "MissingCount": 2,
    }
    compliance = {
        "Status": "NON_COMPLIANT",
        "OverallSeverity": "CRITICAL",
        "ExecutionSummary": {"ExecutionId": "cmd-1"},
        "NonCompliantSummary": {"SeveritySummary": {"CriticalCount": 2, "HighCount": 0, "LowCount": 0}},
    }
    region = ssm.meta.region_name
    data_sync.patch_state_changed(ACCOUNT_ID, region, summary, compliance, {"Patch Group": "web"}, "AMAZON_LINUX_2023")
    s3 = account.client("s3")
    for data_type, lines in (
        ("AWS:PatchSummary", 1),
        ("AWS:ComplianceSummary", 1),
        ("AWS:ComplianceItem", 2),
        ("AWS:InstanceInformation", 1),
        ("AWS:Tag", 1),
    ):
        key = (
            f"resource-data-sync/{data_type}/accountid={ACCOUNT_ID}/region={region}/"
            "resourcetype=ManagedInstanceInventory/i-0123456789abcdef0.json"
        )
        body = s3.get_object(Bucket=account.artifact_bucket, Key=key)["Body"].read().decode()
        records = [json.loads(line) for line in body.splitlines()]
        assert len(records) == lines, data_type
        assert all(r["resourceId"] == "i-0123456789abcdef0" and r["schemaVersion"] == "1.0" for r in records)
        if data_type == "AWS:PatchSummary":  # the inventory type's names, its values strings
            (item,) = records
            assert (item["OperationType"], item["OperationEndTime"], item["MissingCount"]) == (
                "Install",
                "2026-11-29T02:30:00Z",
                "2",
            )
            assert "Operation" not in item and "InstanceId" not in item
    ssm.delete_resource_data_sync(SyncName=sync["SyncName"])
    with pytest.raises(ClientError) as missing:
        ssm.delete_resource_data_sync(SyncName=sync["SyncName"])
    assert missing.value.response["Error"]["Code"] == "ResourceDataSyncNotFoundException"


def bucket_policy(account: SimulatedAccount) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        account.client("s3").get_bucket_policy(Bucket=account.artifact_bucket)["Policy"]
    )
    return document


@pytest.mark.parametrize("sid", ["SSMBucketDelivery", "SSMBucketPermissionsCheck"])
def test_a_bucket_policy_that_does_not_let_ssm_deliver_gets_no_objects_and_the_sync_reports_failed(
    account: SimulatedAccount, sid: str
) -> None:
    s3, ssm = account.client("s3"), account.client("ssm")
    policy = bucket_policy(account)
    assert sid in {statement.get("Sid") for statement in policy["Statement"]}  # deployed from the template
    policy["Statement"] = [statement for statement in policy["Statement"] if statement.get("Sid") != sid]
    s3.put_bucket_policy(Bucket=account.artifact_bucket, Policy=json.dumps(policy))
    region = ssm.meta.region_name
    data_sync.patch_state_changed(ACCOUNT_ID, region, SUMMARY, COMPLIANT, {}, "AMAZON_LINUX_2023")
    assert s3.list_objects_v2(Bucket=account.artifact_bucket, Prefix="resource-data-sync/").get("KeyCount") == 0
    (sync,) = ssm.list_resource_data_sync()["ResourceDataSyncItems"]
    assert sync["LastStatus"] == "Failed"
    assert "ssm.amazonaws.com may not s3:" in sync["LastSyncStatusMessage"]


def test_ssm_writes_with_the_sync_as_its_source(account: SimulatedAccount) -> None:
    s3, ssm = account.client("s3"), account.client("ssm")
    deployed = json.dumps(bucket_policy(account))
    policy = bucket_policy(account)
    (delivery,) = [statement for statement in policy["Statement"] if statement.get("Sid") == "SSMBucketDelivery"]
    delivery["Condition"]["ArnLike"]["aws:SourceArn"] = f"arn:aws:ssm:*:{ACCOUNT_ID}:resource-data-sync/other-*"
    s3.put_bucket_policy(Bucket=account.artifact_bucket, Policy=json.dumps(policy))
    region = ssm.meta.region_name
    data_sync.patch_state_changed(ACCOUNT_ID, region, SUMMARY, COMPLIANT, {}, "AMAZON_LINUX_2023")
    (sync,) = ssm.list_resource_data_sync()["ResourceDataSyncItems"]
    assert sync["LastStatus"] == "Failed"
    s3.put_bucket_policy(Bucket=account.artifact_bucket, Policy=deployed)
    data_sync.patch_state_changed(ACCOUNT_ID, region, SUMMARY, COMPLIANT, {}, "AMAZON_LINUX_2023")
    (sync,) = ssm.list_resource_data_sync()["ResourceDataSyncItems"]
    assert sync["LastStatus"] == "Successful"
    assert s3.list_objects_v2(Bucket=account.artifact_bucket, Prefix="resource-data-sync/")["KeyCount"] == 5
