"""The simulated resource data sync: its API rules and the objects a patch state change writes."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tagpatch_local.runner import ACCOUNT_ID, SimulatedAccount
from tagpatch_local.simulator import data_sync
from tests.conftest import TEMPLATE

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


# --- a member account's sync into the hub's bucket (#26) ----------------------------------------------

MEMBER = "111111111111"
PLACEHOLDER_ORG = "o-placeholder0"  # deployed; replaced by the organization's own id once moto draws it


def _member_sync(account: SimulatedAccount, *, organization_sharing: bool) -> Any:
    """A member account of the hub's organization, with a sync into the hub's bucket; its SSM client."""
    from tagpatch_local.clients import account_session
    from tagpatch_local.fleet import MemberAccount

    seeded = account.seed_accounts([MemberAccount(id=MEMBER, name="payments", regions=(account.region,))])
    s3 = account.client("s3")
    deployed = s3.get_bucket_policy(Bucket=account.artifact_bucket)["Policy"]
    s3.put_bucket_policy(
        Bucket=account.artifact_bucket, Policy=deployed.replace(PLACEHOLDER_ORG, seeded.organization_id)
    )
    ssm = account_session(MEMBER, account.region, account.signing_keys).client("ssm")
    destination: dict[str, Any] = {
        "BucketName": account.artifact_bucket,
        "Prefix": "resource-data-sync",
        "SyncFormat": "JsonSerDe",
        "Region": account.region,
    }
    if organization_sharing:
        destination["DestinationDataSharing"] = {"DestinationDataSharingType": "Organization"}
    ssm.create_resource_data_sync(SyncName="tagpatch-spoke-patch-compliance", S3Destination=destination)
    return ssm


def _member_objects(account: SimulatedAccount) -> list[str]:
    listed = account.client("s3").list_objects_v2(Bucket=account.artifact_bucket, Prefix="resource-data-sync/")
    return [str(item["Key"]) for item in listed.get("Contents", []) if f"accountid={MEMBER}/" in item["Key"]]


@pytest.mark.slow  # deploys the stack into an organization (~1.4 s)
def test_the_hub_bucket_takes_a_member_accounts_organization_sync_with_organization_id() -> None:
    with SimulatedAccount(TEMPLATE, parameter_overrides={"OrganizationId": PLACEHOLDER_ORG}) as account:
        ssm = _member_sync(account, organization_sharing=True)
        (sync,) = ssm.list_resource_data_sync()["ResourceDataSyncItems"]
        assert sync["S3Destination"]["DestinationDataSharing"] == {"DestinationDataSharingType": "Organization"}
        data_sync.patch_state_changed(MEMBER, account.region, SUMMARY, COMPLIANT, {}, "AMAZON_LINUX_2023")
        (sync,) = ssm.list_resource_data_sync()["ResourceDataSyncItems"]
        assert sync["LastStatus"] == "Successful", sync.get("LastSyncStatusMessage")
        keys = _member_objects(account)
        assert len(keys) == 5 and all(f"/region={account.region}/" in key for key in keys)
        organization = account.client("organizations").describe_organization()["Organization"]["Id"]
        tagging = account.client("s3").get_object_tagging(Bucket=account.artifact_bucket, Key=keys[0])
        assert tagging["TagSet"] == [{"Key": "OrgId", "Value": organization}]


def test_a_member_accounts_sync_is_refused_without_organization_id(account: SimulatedAccount) -> None:
    policy = json.dumps(bucket_policy(account))
    assert "RequestObjectTag" not in policy and "accountid=*" not in policy  # today's single-account policy
    ssm = _member_sync(account, organization_sharing=True)
    data_sync.patch_state_changed(MEMBER, account.region, SUMMARY, COMPLIANT, {}, "AMAZON_LINUX_2023")
    (sync,) = ssm.list_resource_data_sync()["ResourceDataSyncItems"]
    assert sync["LastStatus"] == "Failed"
    assert "ssm.amazonaws.com may not s3:PutObject" in sync["LastSyncStatusMessage"]
    assert _member_objects(account) == []


@pytest.mark.slow  # deploys the stack into an organization (~1.4 s)
def test_a_member_accounts_sync_without_organization_sharing_is_refused_even_with_organization_id() -> None:
    with SimulatedAccount(TEMPLATE, parameter_overrides={"OrganizationId": PLACEHOLDER_ORG}) as account:
        ssm = _member_sync(account, organization_sharing=False)  # its objects carry no OrgId tag
        data_sync.patch_state_changed(MEMBER, account.region, SUMMARY, COMPLIANT, {}, "AMAZON_LINUX_2023")
        (sync,) = ssm.list_resource_data_sync()["ResourceDataSyncItems"]
        assert sync["LastStatus"] == "Failed"
        assert _member_objects(account) == []
