"""Project-owned extensions to moto: operations moto 5.2.5 lacks, served from its own response classes.

moto has no plugin mechanism, but it looks a handler up on the response class per request, so a
method attached to `SimpleSystemManagerResponse` serves a new operation in decorator and server mode
alike. To add an operation, write a handler and decorate it with `@_operation("OperationName")`:
`install()` attaches it, refuses to shadow an operation moto implements itself, and every fake output
is checked against botocore's output shape before moto serialises it.

Simulated state lives on moto's SSM backend (`backend.tagpatch_state`), so it is reset whenever moto
resets its backends (each `mock_aws` start).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import functools
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, Literal

import botocore.session
from botocore.validate import ParamValidator, ValidationErrors
from moto.core.responses import ActionResult, BaseResponse
from moto.ec2.models import ec2_backends
from moto.ec2.models.tags import TagBackend
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix
from moto.ssm.exceptions import InvalidFilterKey, SSMException, ValidationException
from moto.ssm.models import ssm_backends
from moto.ssm.responses import SimpleSystemManagerResponse

PingStatus = Literal["Online", "ConnectionLost", "Inactive"]
PlatformType = Literal["Windows", "Linux", "MacOS"]

PING_STATUSES: Final[frozenset[str]] = frozenset({"Online", "ConnectionLost", "Inactive"})
PLATFORM_TYPES: Final[frozenset[str]] = frozenset({"Windows", "Linux", "MacOS"})
RESOURCE_TYPES: Final[frozenset[str]] = frozenset({"ManagedInstance", "EC2Instance"})
DEFAULT_AGENT_VERSION: Final = "3.3.1142.0"

# Marks methods this module attached, so a second install() is a no-op and anything else is moto's.
_MARKER: Final = "__tagpatch_operation__"
_STATE_ATTR: Final = "tagpatch_state"


class SimulatorError(RuntimeError):
    """The simulator itself is broken or out of step with moto/botocore (a developer problem)."""


class FakeOutputError(SimulatorError):
    """A fake operation produced output that the real service could never return."""


class MotoImplementsOperationError(SimulatorError):
    """moto now implements an operation the simulator fakes: drop or reconcile the fake."""


# Error codes from the SSM model that moto's exceptions module does not define.
class InvalidNextToken(SSMException):
    code = "InvalidNextToken"
    message = "The specified token is not valid."


class InvalidInstanceInformationFilterValue(SSMException):
    code = "InvalidInstanceInformationFilterValue"


# --------------------------------------------------------------------------------------------------
# Output validation


@functools.cache
def _service_model(service: str) -> Any:
    # Loading the model costs ~100 ms; do it once per service.
    return botocore.session.get_session().get_service_model(service)


class _StrictErrors(ValidationErrors):  # type: ignore[misc]
    def _format_error(self, error: tuple[str, str, dict[str, Any]]) -> str:
        reason, name, extra = error
        label = self._get_name(name)
        if reason == "invalid enum":
            return f"Invalid value for {label}: {extra['param']!r}, valid values: {extra['enum']}"
        if reason == "too long":
            return f"Invalid length for {label}: {extra['param']!r}, valid max length: {extra['max']}"
        if reason == "too large":
            return f"Invalid value for {label}: {extra['param']!r}, valid max value: {extra['max']}"
        if reason == "pattern mismatch":
            return f"Invalid value for {label}: {extra['param']!r}, must match {extra['pattern']}"
        formatted: str = super()._format_error(error)
        return formatted


@functools.cache
def _compiled_pattern(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None  # Java-only syntax such as \p{L}: cannot check it in Python, so skip it.


class _StrictValidator(ParamValidator):  # type: ignore[misc]
    """botocore's validator checks types, required members and minimums; outputs also get max,
    enum and pattern checks, which botocore leaves to the service for inputs."""

    def validate(self, params: Any, shape: Any) -> _StrictErrors:
        errors = _StrictErrors()
        self._validate(params, shape, errors, name="")
        return errors

    def _validate_string(self, param: Any, shape: Any, errors: Any, name: str) -> None:
        before = len(errors._errors)
        super()._validate_string(param, shape, errors, name)
        if len(errors._errors) != before or not isinstance(param, str):
            return
        if shape.enum and param not in shape.enum:
            errors.report(name, "invalid enum", param=param, enum=list(shape.enum))
        maximum = shape.metadata.get("max")
        if maximum is not None and len(param) > maximum:
            errors.report(name, "too long", param=param, max=maximum)
        pattern = shape.metadata.get("pattern")
        compiled = _compiled_pattern(pattern) if pattern else None
        if compiled is not None and compiled.search(param) is None:
            errors.report(name, "pattern mismatch", param=param, pattern=pattern)

    def _validate_integer(self, param: Any, shape: Any, errors: Any, name: str) -> None:
        super()._validate_integer(param, shape, errors, name)
        maximum = shape.metadata.get("max")
        if isinstance(param, int) and maximum is not None and param > maximum:
            errors.report(name, "too large", param=param, max=maximum)


def validate_output(service: str, operation: str, output: Mapping[str, Any]) -> None:
    """Raise FakeOutputError unless `output` fits botocore's output shape for the operation.

    Timestamps may be datetime objects (as moto's serialiser expects them).
    """
    shape = _service_model(service).operation_model(operation).output_shape
    errors = _StrictValidator().validate(dict(output), shape)
    if errors.has_errors():
        raise FakeOutputError(
            f"fake {service}:{operation} output does not match botocore's output shape:\n"
            + errors.generate_report()
        )


# --------------------------------------------------------------------------------------------------
# Operation registry

_Handler = Callable[[Any], dict[str, Any]]


@dataclass(frozen=True)
class _Operation:
    service: str
    name: str
    response_class: type[BaseResponse]
    handler: _Handler

    @property
    def method_name(self) -> str:
        # moto dispatches "DescribeInstanceInformation" to describe_instance_information().
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.name).lower()


_OPERATIONS: dict[str, _Operation] = {}
_INSTALL_LOCK = threading.Lock()


def _operation(
    name: str, *, service: str = "ssm", response_class: type[BaseResponse] = SimpleSystemManagerResponse
) -> Callable[[_Handler], _Handler]:
    """Register `handler(response) -> output dict` as the fake for `service:name`."""

    def register(handler: _Handler) -> _Handler:
        # Fail at import time if botocore does not know the operation (typo, renamed API).
        _service_model(service).operation_model(name)
        _OPERATIONS[f"{service}:{name}"] = _Operation(service, name, response_class, handler)
        return handler

    return register


def _make_method(op: _Operation) -> Callable[[Any], ActionResult]:
    def method(self: Any) -> ActionResult:
        output = op.handler(self)
        validate_output(op.service, op.name, output)
        return ActionResult(output)

    method.__name__ = op.method_name
    method.__qualname__ = f"{op.response_class.__name__}.{op.method_name}"
    setattr(method, _MARKER, op.name)
    return method


def _install_fast_tag_lookup() -> None:
    """Make moto's per-resource tag lookup O(1).

    moto 5.2.5 serialises every EC2 instance's tags with describe_tags(filters={"resource-id": [id]}),
    which scans every tag of every resource: DescribeInstances over 10,000 tagged instances takes
    about 20 s per 1,000-instance page. A single exact id gives the same result from the dict.
    """
    original = TagBackend.describe_tags
    if getattr(original, _MARKER, None) is not None:
        return

    def describe_tags(self: Any, filters: dict[str, list[str]] | None = None) -> list[dict[str, str]]:
        if filters is not None and set(filters) == {"resource-id"} and len(filters["resource-id"]) == 1:
            resource_id = filters["resource-id"][0]
            if "*" not in resource_id and "?" not in resource_id:
                tags = self.tags.get(resource_id) or {}
                resource_type = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
                return [
                    {"resource_id": resource_id, "key": k, "value": v, "resource_type": resource_type}
                    for k, v in tags.items()
                ]
        result: list[dict[str, str]] = original(self, filters)
        return result

    setattr(describe_tags, _MARKER, "ec2:describe_tags fast path")
    TagBackend.describe_tags = describe_tags  # type: ignore[method-assign]


def install() -> None:
    """Attach every registered fake operation to moto's response classes. Safe to call repeatedly."""
    with _INSTALL_LOCK:
        _install_fast_tag_lookup()
        for op in _OPERATIONS.values():
            existing = getattr(op.response_class, op.method_name, None)
            if existing is not None:
                if getattr(existing, _MARKER, None) == op.name:
                    continue
                raise MotoImplementsOperationError(
                    f"moto now implements {op.service}:{op.name} itself "
                    f"({op.response_class.__name__}.{op.method_name} exists). Compare its behaviour "
                    f"with the fake in tagpatch_local/simulator.py, then drop or adapt the fake."
                )
            setattr(op.response_class, op.method_name, _make_method(op))


def installed_operations() -> list[str]:
    """`service:Operation` names the simulator fakes."""
    return sorted(_OPERATIONS)


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
    state = getattr(backend, _STATE_ATTR, None)
    if state is None:
        state = SimulatorState()
        setattr(backend, _STATE_ATTR, state)
    assert isinstance(state, SimulatorState)
    return state


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


def _value_predicate(key: str, values: list[str], tags_of: Callable[[str], Mapping[str, str]]) -> _Predicate:
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
                f"The filter value {bad[0]!r} is not valid for filter key {key}. "
                f"Valid values: {sorted(allowed)}"
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


@_operation("DescribeInstanceInformation")
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
            "You can't specify both InstanceInformationFilterList and Filters in the same request. "
            "Use Filters."
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
