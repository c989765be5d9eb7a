"""Discovery: every non-terminated instance, joined with what SSM knows about it.

Two paginated listings and a join in memory: ceil(N/1000) DescribeInstances calls and ceil(M/50)
DescribeInstanceInformation calls, never a call per instance.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from tagpatch.aws import client, paginate
from tagpatch.inventory import InventoryRecord, SsmFacts
from tagpatch.observability import tracer
from tagpatch.platforms import operating_system_from_ec2, operating_system_from_ssm

EC2_PAGE_SIZE: Final = 1000  # DescribeInstances maximum
SSM_PAGE_SIZE: Final = 50  # DescribeInstanceInformation maximum
NON_TERMINATED_STATES: Final = ["pending", "running", "shutting-down", "stopping", "stopped"]


@dataclass
class DiscoveryCounts:
    instances: int = 0
    ssm_registered: int = 0
    ec2_pages: int = 0
    ssm_pages: int = 0

    def count_ec2_page(self) -> None:
        self.ec2_pages += 1

    def count_ssm_page(self) -> None:
        self.ssm_pages += 1


@tracer.capture_method
def managed_instances(counts: DiscoveryCounts) -> dict[str, dict[str, Any]]:
    """SSM's view of every managed node, keyed by instance id."""
    nodes = paginate(
        client("ssm").describe_instance_information,
        "InstanceInformationList",
        on_page=counts.count_ssm_page,
        MaxResults=SSM_PAGE_SIZE,
    )
    return {node["InstanceId"]: node for node in nodes}


def _ec2_instances(counts: DiscoveryCounts) -> Iterator[dict[str, Any]]:
    filters = [{"Name": "instance-state-name", "Values": NON_TERMINATED_STATES}]
    reservations = paginate(
        client("ec2").describe_instances,
        "Reservations",
        on_page=counts.count_ec2_page,
        MaxResults=EC2_PAGE_SIZE,
        Filters=filters,
    )
    for reservation in reservations:
        yield from reservation.get("Instances", [])


def to_record(instance: dict[str, Any], node: dict[str, Any] | None) -> InventoryRecord:
    tags = {tag["Key"]: tag.get("Value", "") for tag in instance.get("Tags", [])}
    ssm: SsmFacts = {
        "registered": node is not None,
        "ping_status": node.get("PingStatus") if node else None,
        "platform_type": node.get("PlatformType") if node else None,
        "platform_name": node.get("PlatformName") if node else None,
        "platform_version": node.get("PlatformVersion") if node else None,
        "agent_version": node.get("AgentVersion") if node else None,
    }
    operating_system = (
        operating_system_from_ssm(ssm["platform_type"], ssm["platform_name"], ssm["platform_version"]) if node else None
    ) or operating_system_from_ec2(instance.get("Platform"), instance.get("PlatformDetails"))
    launch_time = instance.get("LaunchTime")
    return {
        "instance_id": instance["InstanceId"],
        "name": tags.get("Name"),
        "state": instance.get("State", {}).get("Name", "unknown"),
        "tags": tags,
        "platform_details": instance.get("PlatformDetails"),
        "instance_profile_arn": (instance.get("IamInstanceProfile") or {}).get("Arn"),
        "launch_time": launch_time.isoformat() if launch_time is not None else None,
        "os": operating_system,
        "ssm": ssm,
    }


@tracer.capture_method
def discover(counts: DiscoveryCounts) -> Iterator[InventoryRecord]:
    """Yield one record per non-terminated instance, in the order EC2 lists them."""
    nodes = managed_instances(counts)
    for instance in _ec2_instances(counts):
        counts.instances += 1
        node = nodes.get(instance["InstanceId"])
        if node is not None:
            counts.ssm_registered += 1
        yield to_record(instance, node)
