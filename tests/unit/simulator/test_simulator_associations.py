"""State Manager associations in the simulated account: SSM's validation and quotas, and runs of
AWS-RunPatchBaseline (Operation=Scan) on their schedule in simulated time, read back through the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tagpatch_local.simulator import clock, executions, quotas, register_managed_instance

ACCOUNT, REGION = "123456789012", "us-east-1"
START = datetime(2026, 11, 29, 2, tzinfo=UTC)
SCAN = {"Operation": ["Scan"], "RebootOption": ["NoReboot"]}
PATCH_GROUP_TAG = [{"Key": "tag-key", "Values": ["Patch Group", "PatchGroup"]}]


def launch(tags: dict[str, str], *, state: str = "running", ping: str = "Online", managed: bool = True) -> str:
    ec2 = boto3.client("ec2", region_name=REGION)
    reservation = ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
    )
    instance_id = str(reservation["Instances"][0]["InstanceId"])
    if state == "stopped":
        ec2.stop_instances(InstanceIds=[instance_id])
    if managed:
        register_managed_instance(
            ACCOUNT,
            REGION,
            instance_id,
            ping_status=ping,  # type: ignore[arg-type]
            platform_type="Linux",
            platform_name="Amazon Linux",
            platform_version="2023",
        )
    executions.set_patch_profile(
        ACCOUNT, REGION, instance_id, executions.PatchProfile(operating_system="AMAZON_LINUX_2023", missing=3)
    )
    return instance_id


def scan_association(ssm: Any, **settings: Any) -> dict[str, Any]:
    request = {
        "Name": "AWS-RunPatchBaseline",
        "AssociationName": "nightly-scan",
        "Parameters": SCAN,
        "Targets": PATCH_GROUP_TAG,
        "ScheduleExpression": "rate(1 day)",
        "MaxConcurrency": "10%",
        "MaxErrors": "10%",
        **settings,
    }
    description: dict[str, Any] = ssm.create_association(**request)["AssociationDescription"]
    return description


def patch_states(ssm: Any, ids: list[str]) -> dict[str, tuple[str, datetime]]:
    states = ssm.describe_instance_patch_states(InstanceIds=ids)["InstancePatchStates"]
    return {s["InstanceId"]: (s["Operation"], s["OperationEndTime"]) for s in states}


def compliance(ssm: Any) -> dict[str, str]:
    found = ssm.list_resource_compliance_summaries(Filters=[{"Key": "ComplianceType", "Values": ["Patch"]}])
    return {item["ResourceId"]: item["Status"] for item in found["ResourceComplianceSummaryItems"]}


def test_a_scan_association_scans_every_reachable_node_with_a_patch_group_at_once_then_daily(ssm: Any) -> None:
    clock.set_now(ACCOUNT, REGION, START)
    web = launch({"Patch Group": "web", "Maintenance Window": "not-a-window"})
    alias = launch({"PatchGroup": "db"})
    untagged = launch({"Name": "no-group"})
    stopped = launch({"Patch Group": "web"}, state="stopped")
    offline = launch({"Patch Group": "web"}, ping="ConnectionLost")
    unmanaged = launch({"Patch Group": "web"}, managed=False)
    everyone = [web, alias, untagged, stopped, offline, unmanaged]

    scan_association(ssm)
    assert patch_states(ssm, everyone) == {}  # a scan takes minutes: nothing is reported at once
    executions.advance_clock(ACCOUNT, REGION, START + timedelta(minutes=5))
    first = patch_states(ssm, everyone)
    assert {node: operation for node, (operation, _) in first.items()} == {web: "Scan", alias: "Scan"}
    assert compliance(ssm) == {web: "NON_COMPLIANT", alias: "NON_COMPLIANT"}

    executions.advance_clock(ACCOUNT, REGION, START + timedelta(days=1, minutes=5))
    second = patch_states(ssm, everyone)
    assert set(second) == {web, alias}
    assert second[web][1] - first[web][1] == timedelta(days=1)  # the rate counts from the creation


def test_apply_only_at_cron_interval_waits_for_the_schedule(ssm: Any) -> None:
    clock.set_now(ACCOUNT, REGION, START)
    web = launch({"Patch Group": "web"})
    scan_association(ssm, ScheduleExpression="cron(0 4 ? * * *)", ApplyOnlyAtCronInterval=True)
    executions.advance_clock(ACCOUNT, REGION, START + timedelta(hours=1))
    assert patch_states(ssm, [web]) == {}
    executions.advance_clock(ACCOUNT, REGION, START + timedelta(hours=3))
    ((_, ended),) = patch_states(ssm, [web]).values()
    assert START + timedelta(hours=2) < ended < START + timedelta(hours=2, minutes=10)


def test_an_update_runs_again_and_a_delete_stops_the_runs(ssm: Any) -> None:
    clock.set_now(ACCOUNT, REGION, START)
    web = launch({"Patch Group": "web"})
    created = scan_association(ssm)
    executions.advance_clock(ACCOUNT, REGION, START + timedelta(hours=1))
    updated = ssm.update_association(
        AssociationId=created["AssociationId"],
        Name="AWS-RunPatchBaseline",
        Parameters=SCAN,
        Targets=PATCH_GROUP_TAG,
        ScheduleExpression="rate(2 days)",
        AssociationName="nightly-scan",
    )["AssociationDescription"]
    assert (updated["AssociationVersion"], updated["ScheduleExpression"]) == ("2", "rate(2 days)")
    assert updated.get("MaxConcurrency") is None  # an update overwrites what it does not give
    executions.advance_clock(ACCOUNT, REGION, START + timedelta(hours=2))
    ((_, ended),) = patch_states(ssm, [web]).values()
    assert ended > START + timedelta(hours=1)

    ssm.delete_association(AssociationId=created["AssociationId"])
    executions.advance_clock(ACCOUNT, REGION, START + timedelta(days=5))
    assert patch_states(ssm, [web])[web][1] == ended
    with pytest.raises(ClientError) as gone:
        ssm.describe_association(AssociationId=created["AssociationId"])
    assert gone.value.response["Error"]["Code"] == "AssociationDoesNotExist"


def test_associations_are_listed_by_name_and_carry_their_tags(ssm: Any) -> None:
    clock.set_now(ACCOUNT, REGION, START)
    ours = scan_association(ssm, Tags=[{"Key": "owner", "Value": "us"}])
    scan_association(ssm, AssociationName="someone-else")
    listed = ssm.list_associations(AssociationFilterList=[{"key": "AssociationName", "value": "nightly-scan"}])
    assert [a["AssociationId"] for a in listed["Associations"]] == [ours["AssociationId"]]
    tags = ssm.list_tags_for_resource(ResourceType="Association", ResourceId=ours["AssociationId"])["TagList"]
    assert tags == [{"Key": "owner", "Value": "us"}]
    described = ssm.describe_association(AssociationId=ours["AssociationId"])["AssociationDescription"]
    assert (described["Parameters"], described["Targets"]) == (SCAN, PATCH_GROUP_TAG)


@pytest.mark.parametrize(
    ("settings", "code"),
    [
        ({"Name": "AWS-NoSuchDocument"}, "InvalidDocument"),
        ({"Parameters": {"Operation": ["Audit"]}}, "InvalidParameters"),
        ({"Parameters": {"Colour": ["blue"]}}, "InvalidParameters"),
        ({"Targets": [{"Key": "resource-groups:Name", "Values": ["web"]}]}, "InvalidTarget"),
        ({"Targets": [{"Key": "InstanceIds", "Values": ["*", "i-0123456789abcdef0"]}]}, "InvalidTarget"),
        ({"ScheduleExpression": "rate(10 minutes)"}, "InvalidSchedule"),
        ({"ScheduleExpression": "cron(0/15 * ? * * *)"}, "InvalidSchedule"),
        ({"ScheduleExpression": "rate(1 day)", "ApplyOnlyAtCronInterval": True}, "InvalidSchedule"),
        ({"ScheduleExpression": "daily"}, "InvalidSchedule"),
        ({"AssociationName": "no spaces allowed"}, "ValidationException"),
        ({"MaxConcurrency": "200%"}, "ValidationException"),
    ],
    ids=[
        "unknown-document",
        "bad-operation",
        "unknown-parameter",
        "resource-group",
        "star-and-ids",
        "too-often",
        "cron-too-often",
        "cron-only-flag-with-rate",
        "not-an-expression",
        "bad-name",
        "bad-concurrency",
    ],
)
def test_ssm_refuses_a_bad_association(ssm: Any, settings: dict[str, Any], code: str) -> None:
    with pytest.raises(ClientError) as refused:
        scan_association(ssm, **settings)
    assert refused.value.response["Error"]["Code"] == code


def test_the_association_quota(ssm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quotas, "MAX_ASSOCIATIONS", 2)
    scan_association(ssm)
    scan_association(ssm)
    with pytest.raises(ClientError) as refused:
        scan_association(ssm)
    assert refused.value.response["Error"]["Code"] == "AssociationLimitExceeded"


def test_an_association_made_while_the_clock_follows_real_time_runs_when_it_is_next_advanced(ssm: Any) -> None:
    web = launch({"Patch Group": "web"})
    scan_association(ssm)  # the clock is not fixed: the association is made at the real time
    fixed_later = clock.now(ACCOUNT, REGION).replace(microsecond=0) + timedelta(seconds=1)
    clock.set_now(ACCOUNT, REGION, fixed_later)  # as a runner fixes it before moving it on
    executions.advance_clock(ACCOUNT, REGION, fixed_later + timedelta(minutes=5))
    ((operation, ended),) = patch_states(ssm, [web]).values()
    assert operation == "Scan" and fixed_later < ended <= fixed_later + timedelta(minutes=5)
