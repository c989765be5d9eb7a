"""Discovery: every non-terminated instance, joined with what SSM knows about it.

Two paginated listings and a join, never a call per instance: ceil(M/50) DescribeInstanceInformation
calls, then ceil(N/1000) DescribeInstances calls. A listing's pages form a chain (each page's token
comes from the one before), so they cannot be fanned out; instead the workflow calls Discovery again
and again, each invocation taking a bounded share of the pages from a cursor, until both listings are
done (docs/decisions.md, "Discovery in bounded invocations"). Each invocation writes its own part:
managed nodes to `managed-nodes/part-NNNNN.jsonl.gz`, inventory records to
`inventory/part-NNNNN.jsonl.gz`, and TagValidation reads the inventory parts in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Final, Literal, cast, get_args

from tagpatch.aws import client, next_token
from tagpatch.cycle import Cycle
from tagpatch.errors import DiscoveryStalled, InvalidCycleInput
from tagpatch.history import check_turns
from tagpatch.inventory import InventoryRecord, SsmFacts, put_jsonl_gz
from tagpatch.observability import tracer
from tagpatch.platforms import operating_system_from_ec2, operating_system_from_ssm
from tagpatch.read_loop import Budget, part_key, read_cursor, read_parts

EC2_PAGE_SIZE: Final = 1000  # DescribeInstances maximum
EC2_MIN_PAGE_SIZE: Final = 5  # DescribeInstances minimum
SSM_PAGE_SIZE: Final = 50  # DescribeInstanceInformation maximum
NON_TERMINATED_STATES: Final = ["pending", "running", "shutting-down", "stopping", "stopped"]
# What an invocation keeps of a managed node: the fields `to_record` reads.
NODE_FIELDS: Final = ("InstanceId", "PingStatus", "PlatformType", "PlatformName", "PlatformVersion", "AgentVersion")

Phase = Literal["managed_nodes", "instances", "done"]
PHASES: Final = get_args(Phase)
COUNT_FIELDS: Final = (
    "managed_parts",
    "inventory_parts",
    "instances",
    "ssm_registered",
    "ssm_pages",
    "ec2_pages",
    "invocations",
)


@dataclass(frozen=True)
class DiscoveryCursor:
    """Where a cycle's discovery stands between two invocations (the state's payload, a few hundred bytes)."""

    phase: Phase = "managed_nodes"
    token: str | None = None  # the next page of the current listing
    managed_parts: int = 0
    inventory_parts: int = 0
    instances: int = 0
    ssm_registered: int = 0
    ssm_pages: int = 0
    ec2_pages: int = 0
    invocations: int = 0

    @classmethod
    def from_payload(cls, payload: Any) -> DiscoveryCursor:
        if payload is None:
            return cls()
        payload, phase, counts = read_cursor(payload, "discovery", cls.__dataclass_fields__, PHASES, COUNT_FIELDS)
        token = payload.get("token")
        if token is not None and (not isinstance(token, str) or not token):
            raise InvalidCycleInput("discovery.token must be a non-empty string or null")
        return cls(phase=cast(Phase, phase), token=token, **counts)

    def to_payload(self) -> dict[str, Any]:
        return asdict(self)


def read_inventory(bucket: str, cycle: Cycle, parts: int) -> Iterator[InventoryRecord]:
    """The inventory records Discovery wrote, in the order EC2 listed them."""
    return read_parts(bucket, cycle, "inventory", parts)


def to_record(instance: dict[str, Any], node: Mapping[str, Any] | None) -> InventoryRecord:
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


def _ec2_page_size(share: int) -> int:
    """Whole pages up to the share, so a small share still lists in steps of it."""
    return max(EC2_MIN_PAGE_SIZE, min(EC2_PAGE_SIZE, share))


def _next_token(cursor: DiscoveryCursor, page: Mapping[str, Any]) -> str | None:
    return next_token(cursor.token, page, DiscoveryStalled, cursor.phase)


def _list_managed_nodes(cursor: DiscoveryCursor, budget: Budget) -> tuple[DiscoveryCursor, list[dict[str, Any]]]:
    nodes: list[dict[str, Any]] = []
    while True:
        page = client("ssm").describe_instance_information(
            MaxResults=SSM_PAGE_SIZE, **({"NextToken": cursor.token} if cursor.token else {})
        )
        listed = page.get("InstanceInformationList", [])
        nodes.extend({field: node[field] for field in NODE_FIELDS if field in node} for node in listed)
        budget.page(len(listed))
        cursor = replace(cursor, token=_next_token(cursor, page), ssm_pages=cursor.ssm_pages + 1)
        if cursor.token is None or not budget.left:
            return cursor, nodes


def _list_instances(
    cursor: DiscoveryCursor, budget: Budget, nodes: Mapping[str, Mapping[str, Any]]
) -> tuple[DiscoveryCursor, list[InventoryRecord]]:
    records: list[InventoryRecord] = []
    page_size = _ec2_page_size(budget.share)
    filters = [{"Name": "instance-state-name", "Values": NON_TERMINATED_STATES}]
    registered = 0
    while True:
        page = client("ec2").describe_instances(
            MaxResults=page_size, Filters=filters, **({"NextToken": cursor.token} if cursor.token else {})
        )
        listed = 0
        for reservation in page.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                node = nodes.get(instance["InstanceId"])
                registered += node is not None
                records.append(to_record(instance, node))
                listed += 1
        budget.page(listed)
        cursor = replace(cursor, token=_next_token(cursor, page), ec2_pages=cursor.ec2_pages + 1)
        if cursor.token is None or not budget.left:
            cursor = replace(
                cursor, instances=cursor.instances + len(records), ssm_registered=cursor.ssm_registered + registered
            )
            return cursor, records


@tracer.capture_method
def discover_some(
    cursor: DiscoveryCursor,
    cycle: Cycle,
    bucket: str,
    *,
    items: int,
    seconds: float,
    clock: Callable[[], float] = time.monotonic,
) -> DiscoveryCursor:
    """List up to about `items` nodes and instances (whole pages) from `cursor`, for at most about
    `seconds`; write what was listed as parts; return the cursor for the next invocation."""
    if cursor.phase == "done":
        return cursor
    budget = Budget(share=items, deadline=clock() + seconds, clock=clock)
    check_turns("Discovery", cursor.invocations, "DiscoveryItemsPerInvocation", items)
    cursor = replace(cursor, invocations=cursor.invocations + 1)
    if cursor.phase == "managed_nodes":
        cursor, nodes = _list_managed_nodes(cursor, budget)
        put_jsonl_gz(bucket, part_key(cycle, "managed-nodes", cursor.managed_parts), nodes)
        cursor = replace(cursor, managed_parts=cursor.managed_parts + 1)
        if cursor.token is not None:
            return cursor
        cursor = replace(cursor, phase="instances")
        if not budget.left:
            return cursor
    managed = {node["InstanceId"]: node for node in read_parts(bucket, cycle, "managed-nodes", cursor.managed_parts)}
    cursor, records = _list_instances(cursor, budget, managed)
    put_jsonl_gz(bucket, part_key(cycle, "inventory", cursor.inventory_parts), records)
    cursor = replace(cursor, inventory_parts=cursor.inventory_parts + 1)
    return cursor if cursor.token is not None else replace(cursor, phase="done")
