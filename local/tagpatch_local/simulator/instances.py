"""SSM managed nodes: the simulated SSM Agent registrations and ssm:DescribeInstanceInformation."""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, Literal

from moto.ec2.models import ec2_backends
from moto.ssm.exceptions import InvalidFilterKey, ValidationException
from moto.ssm.models import ssm_backends

from tagpatch_local.simulator.core import (
    InvalidInstanceInformationFilterValue,
    InvalidNextToken,
    backend_state,
    operation,
)

PingStatus = Literal["Online", "ConnectionLost", "Inactive"]
PlatformType = Literal["Windows", "Linux", "MacOS"]

PING_STATUSES: Final[frozenset[str]] = frozenset({"Online", "ConnectionLost", "Inactive"})
PLATFORM_TYPES: Final[frozenset[str]] = frozenset({"Windows", "Linux", "MacOS"})
RESOURCE_TYPES: Final[frozenset[str]] = frozenset({"ManagedInstance", "EC2Instance"})
DEFAULT_AGENT_VERSION: Final = "3.3.1142.0"
_STATE_ATTR: Final = "tagpatch_state"


# --------------------------------------------------------------------------------------------------
# Simulated state


@dataclass(frozen=True)
class ManagedInstance:
    """One node as SSM's DescribeInstanceInformation reports it (EC2 instances only)."""

    instance_id: str
    ping_status: PingStatus
    platform_type: PlatformType
    platform_name: str
    platform_version: str
    last_ping: datetime
    ip_address: str | None = None
    computer_name: str | None = None
    agent_version: str = DEFAULT_AGENT_VERSION
    is_latest_version: bool = True
    association_status: str = "Success"

    def to_output(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "InstanceId": self.instance_id,
            "PingStatus": self.ping_status,
            "LastPingDateTime": self.last_ping,
            "AgentVersion": self.agent_version,
            "IsLatestVersion": self.is_latest_version,
            "PlatformType": self.platform_type,
            "PlatformName": self.platform_name,
            "PlatformVersion": self.platform_version,
            "ResourceType": "EC2Instance",
            "AssociationStatus": self.association_status,
            "SourceId": self.instance_id,
            "SourceType": "AWS::EC2::Instance",
        }
        if self.ip_address:
            item["IPAddress"] = self.ip_address
        if self.computer_name:
            item["ComputerName"] = self.computer_name
        return item


@dataclass
class SimulatorState:
    """Everything the simulator keeps for one account and Region, stored on moto's SSM backend."""

    managed_instances: dict[str, ManagedInstance] = field(default_factory=dict)
    # (patch group, OperatingSystem) -> registered BaselineId (a pb- id or an AWS-managed ARN).
    patch_groups: dict[tuple[str, str], str] = field(default_factory=dict)
    _sorted_ids: list[str] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sorted_ids(self) -> list[str]:
        # Cached until the set of ids changes, so paging 10,000 nodes does not re-sort per page.
        with self.lock:
            if self._sorted_ids is None:
                self._sorted_ids = sorted(self.managed_instances)
            return self._sorted_ids

    def put(self, instance: ManagedInstance) -> None:
        with self.lock:
            if instance.instance_id not in self.managed_instances:
                self._sorted_ids = None
            self.managed_instances[instance.instance_id] = instance

    def remove(self, instance_id: str) -> None:
        with self.lock:
            if self.managed_instances.pop(instance_id, None) is not None:
                self._sorted_ids = None


def simulator_state(account_id: str, region: str) -> SimulatorState:
    """The state for one account/Region, created on first use on moto's SSM backend."""
    backend = ssm_backends[account_id][region]
    return backend_state(backend, _STATE_ATTR, SimulatorState)


def register_managed_instance(
    account_id: str,
    region: str,
    instance_id: str,
    *,
    ping_status: PingStatus,
    platform_type: PlatformType,
    platform_name: str,
    platform_version: str,
    ip_address: str | None = None,
    computer_name: str | None = None,
    agent_version: str = DEFAULT_AGENT_VERSION,
    is_latest_version: bool = True,
    association_status: str = "Success",
    last_ping: datetime | None = None,
) -> None:
    """Make SSM report `instance_id` as a managed node (replaces an earlier registration)."""
    if ping_status not in PING_STATUSES:
        raise ValueError(f"ping_status {ping_status!r} is not one of {sorted(PING_STATUSES)}")
    if platform_type not in PLATFORM_TYPES:
        raise ValueError(f"platform_type {platform_type!r} is not one of {sorted(PLATFORM_TYPES)}")
    simulator_state(account_id, region).put(
        ManagedInstance(
            instance_id=instance_id,
            ping_status=ping_status,
            platform_type=platform_type,
            platform_name=platform_name,
            platform_version=platform_version,
            last_ping=last_ping or datetime.now(UTC),
            ip_address=ip_address,
            computer_name=computer_name,
            agent_version=agent_version,
            is_latest_version=is_latest_version,
            association_status=association_status,
        )
    )


def set_ping_status(account_id: str, region: str, instance_id: str, ping_status: PingStatus) -> None:
    """Change a registered node's ping status (e.g. the agent lost its connection)."""
    if ping_status not in PING_STATUSES:
        raise ValueError(f"ping_status {ping_status!r} is not one of {sorted(PING_STATUSES)}")
    state = simulator_state(account_id, region)
    current = state.managed_instances[instance_id]
    last_ping = datetime.now(UTC) if ping_status == "Online" else current.last_ping
    state.put(replace(current, ping_status=ping_status, last_ping=last_ping))


def deregister_managed_instance(account_id: str, region: str, instance_id: str) -> None:
    simulator_state(account_id, region).remove(instance_id)


def managed_instances(account_id: str, region: str) -> Mapping[str, ManagedInstance]:
    """Read-only view of the registered nodes."""
    return MappingProxyType(simulator_state(account_id, region).managed_instances)


# --------------------------------------------------------------------------------------------------
# ssm:DescribeInstanceInformation

_DII_MIN_RESULTS: Final = 5
_DII_MAX_RESULTS: Final = 50
_MAX_FILTER_VALUES: Final = 100
_LEGACY_FILTER_KEYS: Final = frozenset(
    {
        "InstanceIds",
        "AgentVersion",
        "PingStatus",
        "PlatformTypes",
        "ActivationIds",
        "IamRole",
        "ResourceType",
        "AssociationStatus",
    }
)
_ENUM_FILTER_VALUES: Final[Mapping[str, frozenset[str]]] = {
    "PingStatus": PING_STATUSES,
    "PlatformTypes": PLATFORM_TYPES,
    "ResourceType": RESOURCE_TYPES,
}

_Predicate = Callable[[ManagedInstance], bool]


def _encode_token(last_instance_id: str) -> str:
    # A cursor (the last id returned), not an offset: pages stay correct if nodes register meanwhile.
    raw = json.dumps({"v": 1, "after": last_instance_id}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_token(token: object) -> str:
    try:
        if not isinstance(token, str):
            raise TypeError(token)
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
        after = decoded["after"]
        if decoded.get("v") != 1 or not isinstance(after, str):
            raise ValueError(token)
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidNextToken() from exc
    return after


def _value_predicate(key: str, values: list[str], tags_of: Callable[[str], Mapping[str, str]]) -> _Predicate:  # noqa: PLR0911 - one return per filter key SSM documents
    if len(values) > _MAX_FILTER_VALUES:
        raise ValidationException(
            f"1 validation error detected: Value at 'filters.{key}.values' failed to satisfy constraint: "
            f"Member must have length less than or equal to {_MAX_FILTER_VALUES}"
        )
    allowed = _ENUM_FILTER_VALUES.get(key)
    if allowed is not None:
        bad = [v for v in values if v not in allowed]
        if bad:
            raise InvalidInstanceInformationFilterValue(
                f"The filter value {bad[0]!r} is not valid for filter key {key}. Valid values: {sorted(allowed)}"
            )
    wanted = frozenset(values)
    match key:
        case "InstanceIds":
            return lambda i: i.instance_id in wanted
        case "AgentVersion":
            return lambda i: i.agent_version in wanted
        case "PingStatus":
            return lambda i: i.ping_status in wanted
        case "PlatformTypes":
            return lambda i: i.platform_type in wanted
        case "ResourceType":
            return lambda i: "EC2Instance" in wanted
        case "AssociationStatus":
            return lambda i: i.association_status in wanted
        case "ActivationIds" | "IamRole":
            return lambda i: False  # EC2 nodes have neither.
        case "tag-key":
            return lambda i: not wanted.isdisjoint(tags_of(i.instance_id))
        case _ if key.startswith("tag:") and len(key) > len("tag:"):
            tag_key = key[len("tag:") :]
            return lambda i: tags_of(i.instance_id).get(tag_key) in wanted
    raise InvalidFilterKey(f"The filter key {key!r} is not valid.")


def _compile_filters(
    filters: Iterable[Mapping[str, Any]] | None,
    legacy: Iterable[Mapping[str, Any]] | None,
    tags_of: Callable[[str], Mapping[str, str]],
) -> list[_Predicate]:
    predicates: list[_Predicate] = []
    for f in filters or ():
        predicates.append(_value_predicate(str(f["Key"]), [str(v) for v in f["Values"]], tags_of))
    for f in legacy or ():
        key = str(f["key"])
        if key not in _LEGACY_FILTER_KEYS:
            raise InvalidFilterKey(f"The filter key {key!r} is not valid for InstanceInformationFilterList.")
        predicates.append(_value_predicate(key, [str(v) for v in f["valueSet"]], tags_of))
    return predicates


@operation("DescribeInstanceInformation")
def _describe_instance_information(response: Any) -> dict[str, Any]:
    account_id: str = response.current_account
    region: str = response.region
    max_results = response._get_param("MaxResults")
    if max_results is None:
        max_results = _DII_MAX_RESULTS
    if not isinstance(max_results, int) or not _DII_MIN_RESULTS <= max_results <= _DII_MAX_RESULTS:
        bound = (
            f"greater than or equal to {_DII_MIN_RESULTS}"
            if isinstance(max_results, int) and max_results < _DII_MIN_RESULTS
            else f"less than or equal to {_DII_MAX_RESULTS}"
        )
        raise ValidationException(
            f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to satisfy "
            f"constraint: Member must have value {bound}"
        )
    filters = response._get_param("Filters")
    legacy = response._get_param("InstanceInformationFilterList")
    if filters and legacy:
        raise ValidationException(
            "You can't specify both InstanceInformationFilterList and Filters in the same request. Use Filters."
        )

    ec2_tags: dict[str, dict[str, str]] = ec2_backends[account_id][region].tags

    def tags_of(instance_id: str) -> Mapping[str, str]:
        # Read moto's tag store directly: its describe_tags scans every tag of every resource.
        return ec2_tags.get(instance_id, {})

    predicates = _compile_filters(filters, legacy, tags_of)
    state = simulator_state(account_id, region)
    ids = state.sorted_ids()
    token = response._get_param("NextToken")
    start = bisect.bisect_right(ids, _decode_token(token)) if token is not None else 0

    page: list[ManagedInstance] = []
    next_token: str | None = None
    nodes = state.managed_instances
    for index in range(start, len(ids)):
        node = nodes.get(ids[index])
        if node is None or not all(p(node) for p in predicates):
            continue
        if len(page) == max_results:
            # Only hand out a token when another match exists, so callers never fetch an empty page.
            next_token = _encode_token(page[-1].instance_id)
            break
        page.append(node)

    output: dict[str, Any] = {"InstanceInformationList": [node.to_output() for node in page]}
    if next_token is not None:
        output["NextToken"] = next_token
    return output


# --------------------------------------------------------------------------------------------------
# Maintenance windows and patch baselines: shared helpers
