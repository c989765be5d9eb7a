"""Project-owned extensions to moto: operations moto 5.2.5 lacks, served from its own response classes.

moto has no plugin mechanism, but it looks a handler up on the response class per request, so a
method attached to `SimpleSystemManagerResponse` serves a new operation in decorator and server mode
alike. To add an operation, write a handler and decorate it with `@_operation("OperationName")`:
`install()` attaches it, refuses to shadow an operation moto implements itself, and every fake output
is checked against botocore's output shape before moto serialises it.

Where moto implements an operation but gets it wrong, `@_correction("OperationName", why="...")`
replaces moto's handler instead. It is the only way to override moto, it must say why, and it
requires moto to implement the operation (install() fails loudly once moto drops it, so the
correction becomes an `@_operation` deliberately). `corrected_operations()` lists the reasons.
Corrections keep their data where moto keeps it (moto's window, target, task and baseline objects),
so moto's own handlers that were not corrected keep seeing the same state.

Simulated state lives on moto's SSM backend (`backend.tagpatch_state`), so it is reset whenever moto
resets its backends (each `mock_aws` start).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import functools
import hashlib
import json
import re
import threading
import zoneinfo
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
from moto.ssm.exceptions import InvalidFilterKey, InvalidResourceId, SSMException, ValidationException
from moto.ssm.models import ssm_backends
from moto.ssm.responses import SimpleSystemManagerResponse
from moto.utilities.utils import get_partition, load_resource

from tagpatch.platforms import OPERATING_SYSTEMS

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


class MotoLacksOperationError(SimulatorError):
    """moto no longer implements an operation the simulator corrects: review the correction."""


# Error codes from the SSM model that moto's exceptions module does not define.
class InvalidNextToken(SSMException):
    code = "InvalidNextToken"
    message = "The specified token is not valid."


class InvalidInstanceInformationFilterValue(SSMException):
    code = "InvalidInstanceInformationFilterValue"


class ResourceLimitExceededException(SSMException):
    code = "ResourceLimitExceededException"


class DoesNotExistException(SSMException):
    # moto's DoesNotExistException always says "Maintenance window ... does not exist".
    code = "DoesNotExistException"


class AlreadyExistsException(SSMException):
    # moto's AlreadyExistsException does not name the patch group.
    code = "AlreadyExistsException"


class TargetInUseException(SSMException):
    code = "TargetInUseException"


class ResourceInUseException(SSMException):
    code = "ResourceInUseException"


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
        if reason == "too many":
            return f"Invalid length for {label}: {extra['param']} items, valid max length: {extra['max']}"
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

    def _validate_list(self, param: Any, shape: Any, errors: Any, name: str) -> None:
        super()._validate_list(param, shape, errors, name)
        maximum = shape.metadata.get("max")
        if isinstance(param, list | tuple) and maximum is not None and len(param) > maximum:
            errors.report(name, "too many", param=len(param), max=maximum)


def validate_output(service: str, operation: str, output: Mapping[str, Any]) -> None:
    """Raise FakeOutputError unless `output` fits botocore's output shape for the operation.

    Timestamps may be datetime objects (as moto's serialiser expects them).
    """
    shape = _service_model(service).operation_model(operation).output_shape
    errors = _StrictValidator().validate(dict(output), shape)
    if errors.has_errors():
        raise FakeOutputError(
            f"fake {service}:{operation} output does not match botocore's output shape:\n" + errors.generate_report()
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
    # None for an operation moto lacks; for a correction of moto's handler, the reason.
    why: str | None = None

    @property
    def method_name(self) -> str:
        # moto dispatches "DescribeInstanceInformation" to describe_instance_information().
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.name).lower()


_OPERATIONS: dict[str, _Operation] = {}
_INSTALL_LOCK = threading.Lock()
# moto's own handlers that corrections replaced, by `service:Operation` (for inspection and tests).
_MOTO_HANDLERS: dict[str, Callable[..., Any]] = {}


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


def _correction(
    name: str,
    *,
    why: str,
    service: str = "ssm",
    response_class: type[BaseResponse] = SimpleSystemManagerResponse,
) -> Callable[[_Handler], _Handler]:
    """Register `handler(response) -> output dict` as a replacement for moto's own `service:name`.

    Unlike `_operation`, this requires moto to implement the operation, and `why` records what moto
    gets wrong. Outputs are validated against botocore's output shape like any fake.
    """
    if not why.strip():
        raise SimulatorError(f"correction of {service}:{name} must say why moto's handler is wrong")

    def register(handler: _Handler) -> _Handler:
        _service_model(service).operation_model(name)
        _OPERATIONS[f"{service}:{name}"] = _Operation(service, name, response_class, handler, why)
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
            if op.why is not None:
                if existing is None:
                    raise MotoLacksOperationError(
                        f"moto no longer implements {op.service}:{op.name} "
                        f"({op.response_class.__name__}.{op.method_name} is gone), but "
                        f"tagpatch_local/simulator.py corrects it ({op.why}). Turn the correction into "
                        f"an @_operation fake or drop it."
                    )
                if getattr(existing, _MARKER, None) == op.name:
                    continue
                _MOTO_HANDLERS[f"{op.service}:{op.name}"] = existing
                setattr(op.response_class, op.method_name, _make_method(op))
                continue
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
    """`service:Operation` names the simulator fakes or corrects."""
    return sorted(_OPERATIONS)


def corrected_operations() -> dict[str, str]:
    """`service:Operation` -> why the simulator replaces moto's own handler."""
    return {key: op.why for key, op in sorted(_OPERATIONS.items()) if op.why is not None}


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
#
# Quotas the real service enforces per account and Region (AWS General Reference, ssm.html). They are
# module-level so tests can lower them with monkeypatch.
MAX_MAINTENANCE_WINDOWS = 50
MAX_TARGETS_PER_WINDOW = 100
MAX_TASKS_PER_WINDOW = 20
MAX_PATCH_BASELINES = 50
MAX_PATCH_GROUPS_PER_BASELINE = 25

_WINDOW_MAX_RESULTS: Final = (10, 100)  # Describe{MaintenanceWindows,...Targets,...Tasks}
_BASELINE_MAX_RESULTS: Final = (1, 100)  # DescribePatchBaselines, DescribePatchGroups
_DEFAULT_OPERATING_SYSTEM: Final = "WINDOWS"  # what SSM assumes when OperatingSystem is omitted


def _ssm_backend(response: Any) -> Any:
    return ssm_backends[response.current_account][response.region]


def _request(response: Any) -> dict[str, Any]:
    """The whole request as botocore sent it (SSM speaks JSON; moto parses per parameter)."""
    if getattr(response, "automated_parameter_parsing", False):
        return dict(response.params)
    body = response.body
    if isinstance(body, bytes):
        body = body.decode()
    try:
        parsed = json.loads(body) if body else {}
    except ValueError as exc:
        raise ValidationException("The request body is not valid JSON.") from exc
    return parsed if isinstance(parsed, dict) else {}


def _aws_member_name(label: str) -> str:
    # botocore's "Targets[0].Values" is SSM's "targets.1.member.values".
    def lower_first(part: str) -> str:
        return part[:1].lower() + part[1:]

    label = re.sub(r"\[(\d+)\]", lambda m: f".{int(m.group(1)) + 1}.member", label)
    return ".".join(lower_first(part) for part in label.split(".") if part)


def _constraint_text(reason: str, extra: Mapping[str, Any]) -> str:
    match reason:
        case "pattern mismatch":
            return f"Member must satisfy regular expression pattern: {extra['pattern']}"
        case "too long" | "too many":
            return f"Member must have length less than or equal to {extra['max']}"
        case "too large":
            return f"Member must have value less than or equal to {extra['max']}"
        case "invalid enum":
            return f"Member must satisfy enum value set: [{', '.join(extra['enum'])}]"
        case "invalid length":
            return f"Member must have length greater than or equal to {extra['min_allowed']}"
        case "invalid range":
            return f"Member must have value greater than or equal to {extra['min_allowed']}"
    return f"Member is not valid ({reason})"


def _validation_message(problems: list[tuple[object, str, str]]) -> str:
    # SSM's own wording: "1 validation error detected: Value 'x' at 'name' failed to satisfy ...".
    count = len(problems)
    head = f"{count} validation error{'s' if count != 1 else ''} detected: "
    return head + "; ".join(
        f"Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
        for value, member, constraint in problems
    )


def _validate_input(operation: str, params: Mapping[str, Any]) -> None:
    """Enforce the input shape's max, enum and pattern constraints as the service does.

    botocore checks types and minimums client-side but leaves maximums, enums and patterns to the
    service; moto checks none of them.
    """
    shape = _service_model("ssm").operation_model(operation).input_shape
    errors = _StrictValidator().validate(dict(params), shape)
    if not errors.has_errors():
        return
    problems: list[tuple[object, str, str]] = []
    for reason, name, extra in errors._errors:
        value = extra.get("param", "")
        problems.append((value, _aws_member_name(name), _constraint_text(reason, extra)))
    raise ValidationException(_validation_message(problems))


def _drop_none(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if v is not None}


def _max_results(params: Mapping[str, Any], bounds: tuple[int, int]) -> int:
    low, high = bounds
    value = params.get("MaxResults")
    if value is None:
        return high
    if not isinstance(value, int) or not low <= value <= high:
        bound = (
            f"greater than or equal to {low}"
            if isinstance(value, int) and value < low
            else (f"less than or equal to {high}")
        )
        raise ValidationException(_validation_message([(value, "maxResults", f"Member must have value {bound}")]))
    return value


def _encode_offset_token(operation: str, offset: int) -> str:
    raw = json.dumps({"v": 1, "op": operation, "offset": offset}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_offset_token(operation: str, token: object) -> int:
    try:
        if not isinstance(token, str):
            raise TypeError(token)
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = decoded["offset"]
        if decoded.get("v") != 1 or decoded.get("op") != operation or not isinstance(offset, int):
            raise ValueError(token)
        if offset < 0:
            raise ValueError(token)
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidNextToken() from exc
    return offset


def _page[T](
    operation: str, items: list[T], params: Mapping[str, Any], bounds: tuple[int, int]
) -> tuple[list[T], str | None]:
    """One page of `items` (already filtered and ordered) and the token for the next, if any."""
    size = _max_results(params, bounds)
    token = params.get("NextToken")
    start = _decode_offset_token(operation, token) if token is not None else 0
    end = start + size
    return items[start:end], (_encode_offset_token(operation, end) if end < len(items) else None)


def _filters(params: Mapping[str, Any], allowed: Iterable[str]) -> dict[str, frozenset[str]]:
    """Filters as {key: values}; an unsupported key is a ValidationException (as in SSM)."""
    allowed_keys = tuple(allowed)
    result: dict[str, frozenset[str]] = {}
    for f in params.get("Filters") or ():
        key = str(f.get("Key", ""))
        if key not in allowed_keys:
            raise ValidationException(
                f"The filter key {key!r} is not supported for this operation. Supported keys: {', '.join(allowed_keys)}"
            )
        values = frozenset(str(v) for v in f.get("Values") or ())
        # Repeating a key narrows further: both value sets must match.
        result[key] = result[key] & values if key in result else values
    return result


# --------------------------------------------------------------------------------------------------
# Maintenance windows: what SSM validates and moto does not

_SCHEDULE_MAX_LENGTH: Final = 256
_RATE_RE: Final = re.compile(r"^rate\((\d+) ([a-z]+)\)$")
_RATE_UNITS: Final = {"minute": "minutes", "hour": "hours", "day": "days"}
_AT_RE: Final = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_CRON_RE: Final = re.compile(r"^cron\((.*)\)$")
_CRON_FIELD_RE: Final = re.compile(r"^[0-9A-Za-z*?,/#\-]+$")


def schedule_problem(expression: str) -> str | None:
    """Why SSM would reject a maintenance window Schedule, or None if it has the right structure.

    Deliberately independent of tagpatch.schedule (the simulator is an oracle for that code): a
    structural check of cron(6 or 7 fields, day-of-month or day-of-week '?'), rate(N unit, singular
    iff N is 1) and at(yyyy-mm-ddThh:mm:ss).
    """
    if not 1 <= len(expression) <= _SCHEDULE_MAX_LENGTH:
        return f"a schedule is 1-{_SCHEDULE_MAX_LENGTH} characters"
    if cron := _CRON_RE.match(expression):
        fields = cron.group(1).split()
        if len(fields) not in (6, 7):
            return f"cron() takes 6 or 7 fields, got {len(fields)}"
        if bad := [f for f in fields if not _CRON_FIELD_RE.match(f)]:
            return f"cron() field {bad[0]!r} is not valid"
        if "?" not in (fields[2], fields[4]):
            return "cron() needs '?' in the day-of-month or the day-of-week field"
        return None
    if rate := _RATE_RE.match(expression):
        value, unit = int(rate.group(1)), rate.group(2)
        singular = unit if unit in _RATE_UNITS else next((s for s, p in _RATE_UNITS.items() if p == unit), None)
        if singular is None:
            return f"rate() unit {unit!r} is not one of minute(s), hour(s), day(s)"
        if value < 1:
            return "rate() value must be a positive integer"
        expected = singular if value == 1 else _RATE_UNITS[singular]
        if unit != expected:
            return f"rate({value} {unit}) must use the unit {expected!r}"
        return None
    if at := _AT_RE.match(expression):
        try:
            datetime.strptime(at.group(1), "%Y-%m-%dT%H:%M:%S")  # wall-clock time, no zone
        except ValueError:
            return f"at() date {at.group(1)!r} is not a valid date and time"
        return None
    return "use cron(...), rate(...) or at(yyyy-mm-ddThh:mm:ss)"


def _timezone_valid(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _check_window_settings(
    *,
    schedule: str | None,
    timezone: str | None,
    offset: int | None,
    duration: int | None,
    cutoff: int | None,
) -> None:
    """Rules across fields, on the values the window will have after the request."""
    if schedule is not None and (problem := schedule_problem(schedule)) is not None:
        raise ValidationException(f"Invalid schedule expression {schedule!r}: {problem}.")
    if timezone is not None and not _timezone_valid(timezone):
        raise ValidationException(
            f"Invalid ScheduleTimezone {timezone!r}: specify an IANA time zone such as Etc/UTC or America/Los_Angeles."
        )
    if offset is not None and schedule is not None and not schedule.startswith("cron("):
        raise ValidationException("ScheduleOffset can be specified only with a cron expression.")
    if duration is not None and cutoff is not None and cutoff >= duration:
        raise ValidationException(f"The Cutoff ({cutoff} hours) must be less than the Duration ({duration} hours).")


@dataclass
class _WindowExtras:
    """What moto's FakeMaintenanceWindow does not keep, stored on it as `tagpatch_extras`."""

    allow_unassociated_targets: bool = False
    enabled: bool = True
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    modified: datetime = field(default_factory=lambda: datetime.now(UTC))


_EXTRAS_ATTR: Final = "tagpatch_extras"


def _window_extras(window: Any) -> _WindowExtras:
    # Windows created before install() (or by moto directly) get defaults on first use.
    extras = getattr(window, _EXTRAS_ATTR, None)
    if extras is None:
        extras = _WindowExtras()
        setattr(window, _EXTRAS_ATTR, extras)
    assert isinstance(extras, _WindowExtras)
    return extras


def _window(response: Any, window_id: str) -> Any:
    return _ssm_backend(response).get_maintenance_window(window_id)  # moto: DoesNotExistException


def _window_output(window: Any) -> dict[str, Any]:
    extras = _window_extras(window)
    return _drop_none(
        {
            "WindowId": window.id,
            "Name": window.name,
            "Description": window.description,
            "StartDate": window.start_date,
            "EndDate": window.end_date,
            "Schedule": window.schedule,
            "ScheduleTimezone": window.schedule_timezone,
            "ScheduleOffset": window.schedule_offset,
            "Duration": window.duration,
            "Cutoff": window.cutoff,
            "AllowUnassociatedTargets": extras.allow_unassociated_targets,
            "Enabled": extras.enabled,
        }
    )


@_correction(
    "CreateMaintenanceWindow",
    why="moto validates nothing (name, schedule, Duration, Cutoff, time zone, offset), enforces no "
    "window quota and drops AllowUnassociatedTargets and the creation date",
)
def _create_maintenance_window(response: Any) -> dict[str, Any]:
    params = _request(response)
    _validate_input("CreateMaintenanceWindow", params)
    _check_window_settings(
        schedule=params.get("Schedule"),
        timezone=params.get("ScheduleTimezone"),
        offset=params.get("ScheduleOffset"),
        duration=params.get("Duration"),
        cutoff=params.get("Cutoff"),
    )
    backend = _ssm_backend(response)
    if len(backend.windows) >= MAX_MAINTENANCE_WINDOWS:
        raise ResourceLimitExceededException(
            f"Maintenance window limit exceeded: an account can have at most {MAX_MAINTENANCE_WINDOWS} "
            "maintenance windows per Region."
        )
    window_id = backend.create_maintenance_window(
        name=params.get("Name"),
        description=params.get("Description"),
        duration=params.get("Duration"),
        cutoff=params.get("Cutoff"),
        schedule=params.get("Schedule"),
        schedule_timezone=params.get("ScheduleTimezone"),
        schedule_offset=params.get("ScheduleOffset"),
        start_date=params.get("StartDate"),
        end_date=params.get("EndDate"),
        tags=params.get("Tags"),
    )
    extras = _window_extras(backend.windows[window_id])
    extras.allow_unassociated_targets = bool(params.get("AllowUnassociatedTargets"))
    return {"WindowId": window_id}


@_correction(
    "GetMaintenanceWindow",
    why="moto omits AllowUnassociatedTargets, CreatedDate and ModifiedDate and always says Enabled",
)
def _get_maintenance_window(response: Any) -> dict[str, Any]:
    window = _window(response, _request(response).get("WindowId", ""))
    extras = _window_extras(window)
    # NextExecutionTime is omitted: the simulator does not run schedules.
    return {**_window_output(window), "CreatedDate": extras.created, "ModifiedDate": extras.modified}


_WINDOW_IDENTITY_FIELDS: Final = (
    "WindowId",
    "Name",
    "Description",
    "Enabled",
    "Duration",
    "Cutoff",
    "Schedule",
    "ScheduleTimezone",
    "ScheduleOffset",
    "EndDate",
    "StartDate",
)


@_correction(
    "DescribeMaintenanceWindows",
    why="moto always reports Enabled true, supports only the Name filter and does not paginate",
)
def _describe_maintenance_windows(response: Any) -> dict[str, Any]:
    params = _request(response)
    filters = _filters(params, ("Name", "Enabled"))
    windows = list(_ssm_backend(response).windows.values())
    if (names := filters.get("Name")) is not None:
        windows = [w for w in windows if w.name in names]
    if (enabled := filters.get("Enabled")) is not None:
        windows = [w for w in windows if str(_window_extras(w).enabled).lower() in {v.lower() for v in enabled}]
    page, token = _page("DescribeMaintenanceWindows", windows, params, _WINDOW_MAX_RESULTS)
    identities = []
    for window in page:
        full = _window_output(window)
        identities.append({k: full[k] for k in _WINDOW_IDENTITY_FIELDS if k in full})
    return _drop_none({"WindowIdentities": identities, "NextToken": token})


@_operation("UpdateMaintenanceWindow")
def _update_maintenance_window(response: Any) -> dict[str, Any]:
    params = _request(response)
    _validate_input("UpdateMaintenanceWindow", params)
    window = _window(response, params.get("WindowId", ""))
    extras = _window_extras(window)
    replace_all = bool(params.get("Replace"))
    if replace_all:
        # Replace=true: CreateMaintenanceWindow's required fields are required; the rest become null.
        missing = [k for k in ("Name", "Schedule", "Duration", "Cutoff", "AllowUnassociatedTargets") if k not in params]
        if missing:
            raise ValidationException(f"When Replace is true, these parameters are required: {', '.join(missing)}.")

    def new(key: str, current: Any) -> Any:
        if key in params:
            return params[key]
        return None if replace_all else current

    updated = {
        "name": new("Name", window.name),
        "description": new("Description", window.description),
        "start_date": new("StartDate", window.start_date),
        "end_date": new("EndDate", window.end_date),
        "schedule": new("Schedule", window.schedule),
        "schedule_timezone": new("ScheduleTimezone", window.schedule_timezone),
        "schedule_offset": new("ScheduleOffset", window.schedule_offset),
        "duration": new("Duration", window.duration),
        "cutoff": new("Cutoff", window.cutoff),
    }
    _check_window_settings(
        schedule=updated["schedule"],
        timezone=updated["schedule_timezone"],
        offset=updated["schedule_offset"],
        duration=updated["duration"],
        cutoff=updated["cutoff"],
    )
    for attribute, value in updated.items():
        setattr(window, attribute, value)
    extras.allow_unassociated_targets = bool(new("AllowUnassociatedTargets", extras.allow_unassociated_targets))
    if "Enabled" in params:
        extras.enabled = bool(params["Enabled"])
    extras.modified = datetime.now(UTC)
    return _window_output(window)


# --------------------------------------------------------------------------------------------------
# Maintenance window targets


def _member(window: Any, kind: str, member_id: str) -> Any:
    """A window's target or task (`kind` is "targets" or "tasks"), or SSM's DoesNotExistException."""
    member = getattr(window, kind).get(member_id)
    if member is None:
        noun = kind.removesuffix("s")
        raise DoesNotExistException(f"Maintenance window {noun} {member_id} does not exist in {window.id}.")
    return member


def _update_fields(
    member: Any, params: Mapping[str, Any], fields: Iterable[tuple[str, str]], replace_all: bool
) -> None:
    """Update* semantics: given fields change; with Replace=true, fields not given become null."""
    for key, attribute in fields:
        if key in params:
            setattr(member, attribute, params[key])
        elif replace_all:
            setattr(member, attribute, None)


def _target(window: Any, target_id: str) -> Any:
    return _member(window, "targets", target_id)


def _target_output(target: Any) -> dict[str, Any]:
    return _drop_none(
        {
            "WindowId": target.window_id,
            "WindowTargetId": target.window_target_id,
            "ResourceType": target.resource_type,
            "Targets": target.targets,
            "OwnerInformation": target.owner_information,
            "Name": target.name,
            "Description": target.description,
        }
    )


@_correction(
    "RegisterTargetWithMaintenanceWindow",
    why="moto validates nothing (name pattern, at most 5 Targets, 50 tag values, lengths) and "
    "enforces no targets-per-window quota",
)
def _register_target_with_maintenance_window(response: Any) -> dict[str, Any]:
    params = _request(response)
    _validate_input("RegisterTargetWithMaintenanceWindow", params)
    window = _window(response, params.get("WindowId", ""))
    if len(window.targets) >= MAX_TARGETS_PER_WINDOW:
        raise ResourceLimitExceededException(
            f"Maintenance window {window.id} already has the maximum of {MAX_TARGETS_PER_WINDOW} targets."
        )
    # moto keeps OwnerInformation on its target object; only its serialiser drops it.
    target_id = _ssm_backend(response).register_target_with_maintenance_window(
        window_id=window.id,
        resource_type=params.get("ResourceType"),
        targets=params.get("Targets"),
        owner_information=params.get("OwnerInformation"),
        name=params.get("Name"),
        description=params.get("Description"),
    )
    return {"WindowTargetId": target_id}


@_correction(
    "DescribeMaintenanceWindowTargets",
    why="moto returns [] whenever Filters are given, returns OwnerInformation as '' and does not paginate",
)
def _describe_maintenance_window_targets(response: Any) -> dict[str, Any]:
    params = _request(response)
    window = _window(response, params.get("WindowId", ""))
    filters = _filters(params, ("Type", "WindowTargetId", "OwnerInformation"))
    targets = list(window.targets.values())
    for key, values in filters.items():
        attribute = {"Type": "resource_type", "WindowTargetId": "window_target_id"}.get(key, "owner_information")
        targets = [t for t in targets if getattr(t, attribute) in values]
    page, token = _page("DescribeMaintenanceWindowTargets", targets, params, _WINDOW_MAX_RESULTS)
    return _drop_none({"Targets": [_target_output(t) for t in page], "NextToken": token})


_TARGET_UPDATABLE: Final = (
    ("Targets", "targets"),
    ("OwnerInformation", "owner_information"),
    ("Name", "name"),
    ("Description", "description"),
)


@_operation("UpdateMaintenanceWindowTarget")
def _update_maintenance_window_target(response: Any) -> dict[str, Any]:
    params = _request(response)
    _validate_input("UpdateMaintenanceWindowTarget", params)
    window = _window(response, params.get("WindowId", ""))
    target = _target(window, params.get("WindowTargetId", ""))
    replace_all = bool(params.get("Replace"))
    if replace_all and "Targets" not in params:
        raise ValidationException("When Replace is true, these parameters are required: Targets.")
    _update_fields(target, params, _TARGET_UPDATABLE, replace_all)
    output = _target_output(target)
    output.pop("ResourceType")
    return output


@_correction(
    "DeregisterTargetFromMaintenanceWindow",
    why="moto raises a bare KeyError for an unknown target and ignores Safe (TargetInUseException)",
)
def _deregister_target_from_maintenance_window(response: Any) -> dict[str, Any]:
    params = _request(response)
    window = _window(response, params.get("WindowId", ""))
    target_id = params.get("WindowTargetId", "")
    _target(window, target_id)
    if params.get("Safe"):
        users = [
            task.window_task_id
            for task in window.tasks.values()
            for t in task.targets or ()
            if t.get("Key") == "WindowTargetIds" and target_id in (t.get("Values") or ())
        ]
        if users:
            raise TargetInUseException(
                f"Target {target_id} is referenced by task(s) {', '.join(users)} and Safe is true."
            )
    del window.targets[target_id]
    return {"WindowId": window.id, "WindowTargetId": target_id}


# --------------------------------------------------------------------------------------------------
# Maintenance window tasks


def _task(window: Any, task_id: str) -> Any:
    return _member(window, "tasks", task_id)


def _task_output(task: Any) -> dict[str, Any]:
    """The fields every task view shares (Describe adds Type, Get adds TaskType)."""
    return _drop_none(
        {
            "WindowId": task.window_id,
            "WindowTaskId": task.window_task_id,
            "TaskArn": task.task_arn,
            "Targets": task.targets,
            "TaskParameters": task.task_parameters,
            "Priority": task.priority,
            "LoggingInfo": task.logging_info,
            "ServiceRoleArn": task.service_role_arn,
            "MaxConcurrency": task.max_concurrency,
            "MaxErrors": task.max_errors,
            "Name": task.name,
            "Description": task.description,
            "CutoffBehavior": task.cutoff_behavior,
            "AlarmConfiguration": task.alarm_configurations,
        }
    )


@_correction(
    "RegisterTaskWithMaintenanceWindow",
    why="moto reads AlarmConfiguration under the wrong name (AlarmConfigurations) and drops it, "
    "validates nothing (name, MaxConcurrency/MaxErrors patterns, 5 Targets) and has no task quota",
)
def _register_task_with_maintenance_window(response: Any) -> dict[str, Any]:
    params = _request(response)
    _validate_input("RegisterTaskWithMaintenanceWindow", params)
    window = _window(response, params.get("WindowId", ""))
    if len(window.tasks) >= MAX_TASKS_PER_WINDOW:
        raise ResourceLimitExceededException(
            f"Maintenance window {window.id} already has the maximum of {MAX_TASKS_PER_WINDOW} tasks."
        )
    # moto keeps TaskType on its task object; only its serialiser names it wrongly.
    task_id = _ssm_backend(response).register_task_with_maintenance_window(
        window_id=window.id,
        targets=params.get("Targets"),
        task_arn=params.get("TaskArn"),
        service_role_arn=params.get("ServiceRoleArn"),
        task_type=params.get("TaskType"),
        task_parameters=params.get("TaskParameters"),
        task_invocation_parameters=params.get("TaskInvocationParameters"),
        priority=params.get("Priority", 1),  # SSM's default priority
        max_concurrency=params.get("MaxConcurrency"),
        max_errors=params.get("MaxErrors"),
        logging_info=params.get("LoggingInfo"),
        name=params.get("Name"),
        description=params.get("Description"),
        cutoff_behavior=params.get("CutoffBehavior"),
        alarm_configurations=params.get("AlarmConfiguration"),
    )
    return {"WindowTaskId": task_id}


@_correction(
    "DescribeMaintenanceWindowTasks",
    why="moto returns [] whenever Filters are given, serialises the task type as TaskType (dropped: "
    "the output member is Type) and does not paginate",
)
def _describe_maintenance_window_tasks(response: Any) -> dict[str, Any]:
    params = _request(response)
    window = _window(response, params.get("WindowId", ""))
    filters = _filters(params, ("WindowTaskId", "TaskArn", "Priority", "TaskType"))
    tasks = list(window.tasks.values())
    for key, values in filters.items():
        attribute = {"WindowTaskId": "window_task_id", "TaskArn": "task_arn", "TaskType": "task_type"}.get(
            key, "priority"
        )
        tasks = [t for t in tasks if str(getattr(t, attribute)) in values]
    page, token = _page("DescribeMaintenanceWindowTasks", tasks, params, _WINDOW_MAX_RESULTS)
    return _drop_none({"Tasks": [{**_task_output(t), "Type": t.task_type} for t in page], "NextToken": token})


@_operation("GetMaintenanceWindowTask")
def _get_maintenance_window_task(response: Any) -> dict[str, Any]:
    params = _request(response)
    task = _task(_window(response, params.get("WindowId", "")), params.get("WindowTaskId", ""))
    return _drop_none(
        {**_task_output(task), "TaskType": task.task_type, "TaskInvocationParameters": task.task_invocation_parameters}
    )


_TASK_UPDATABLE: Final = (
    ("Targets", "targets"),
    ("TaskArn", "task_arn"),
    ("ServiceRoleArn", "service_role_arn"),
    ("TaskParameters", "task_parameters"),
    ("TaskInvocationParameters", "task_invocation_parameters"),
    ("Priority", "priority"),
    ("MaxConcurrency", "max_concurrency"),
    ("MaxErrors", "max_errors"),
    ("LoggingInfo", "logging_info"),
    ("Name", "name"),
    ("Description", "description"),
    ("CutoffBehavior", "cutoff_behavior"),
    ("AlarmConfiguration", "alarm_configurations"),
)


@_operation("UpdateMaintenanceWindowTask")
def _update_maintenance_window_task(response: Any) -> dict[str, Any]:
    params = _request(response)
    _validate_input("UpdateMaintenanceWindowTask", params)
    task = _task(_window(response, params.get("WindowId", "")), params.get("WindowTaskId", ""))
    replace_all = bool(params.get("Replace"))
    if replace_all and "TaskArn" not in params:
        raise ValidationException("When Replace is true, these parameters are required: TaskArn.")
    _update_fields(task, params, _TASK_UPDATABLE, replace_all)
    return _drop_none({**_task_output(task), "TaskInvocationParameters": task.task_invocation_parameters})


@_correction(
    "DeregisterTaskFromMaintenanceWindow",
    why="moto raises a bare KeyError for an unknown task instead of DoesNotExistException",
)
def _deregister_task_from_maintenance_window(response: Any) -> dict[str, Any]:
    params = _request(response)
    window = _window(response, params.get("WindowId", ""))
    task_id = params.get("WindowTaskId", "")
    _task(window, task_id)
    del window.tasks[task_id]
    return {"WindowId": window.id, "WindowTaskId": task_id}


# --------------------------------------------------------------------------------------------------
# Patch baselines and patch groups

# The AWS-managed default baseline's name per OperatingSystem (Patch Manager "Predefined baselines").
_MANAGED_BASELINE_NAMES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "AMAZON_LINUX_2023": "AWS-AmazonLinux2023DefaultPatchBaseline",
        "AMAZON_LINUX_2": "AWS-AmazonLinux2DefaultPatchBaseline",
        "UBUNTU": "AWS-UbuntuDefaultPatchBaseline",
        "REDHAT_ENTERPRISE_LINUX": "AWS-RedHatDefaultPatchBaseline",
        "SUSE": "AWS-SuseDefaultPatchBaseline",
        "DEBIAN": "AWS-DebianDefaultPatchBaseline",
        "CENTOS": "AWS-CentOSDefaultPatchBaseline",
        "ORACLE_LINUX": "AWS-OracleLinuxDefaultPatchBaseline",
        "ROCKY_LINUX": "AWS-RockyLinuxDefaultPatchBaseline",
        "ALMA_LINUX": "AWS-AlmaLinuxDefaultPatchBaseline",
        "WINDOWS": "AWS-DefaultPatchBaseline",
        "MACOS": "AWS-MacOSDefaultPatchBaseline",
    }
)
_MANAGED_BASELINE_OWNER: Final = "075727635805"  # the us-east-1 owner; other Regions use other accounts
_MANAGED_BASELINE_DATE: Final = datetime(2023, 3, 15, tzinfo=UTC)

if missing_names := OPERATING_SYSTEMS - set(_MANAGED_BASELINE_NAMES):  # pragma: no cover - import check
    raise SimulatorError(f"no AWS-managed baseline name for {sorted(missing_names)}")


@dataclass(frozen=True)
class ManagedBaseline:
    """An AWS-managed default patch baseline: its BaselineId is a full ARN in an AWS account."""

    baseline_id: str
    name: str
    operating_system: str

    @property
    def description(self) -> str:
        if self.operating_system == "WINDOWS":
            return "Default Patch Baseline Provided by AWS."
        label = self.name.removeprefix("AWS-").removesuffix("DefaultPatchBaseline")
        return f"Default Patch Baseline for {label} Provided by AWS."

    def approval_rules(self) -> dict[str, Any]:
        os_name = self.operating_system
        if os_name == "WINDOWS":
            patch_filters = [
                {"Key": "CLASSIFICATION", "Values": ["CriticalUpdates", "SecurityUpdates"]},
                {"Key": "MSRC_SEVERITY", "Values": ["Critical", "Important"]},
            ]
            days = 7
        elif os_name in {"UBUNTU", "DEBIAN"}:
            patch_filters = [{"Key": "PRIORITY", "Values": ["Required", "Important", "Standard", "Optional", "Extra"]}]
            days = 0
        elif os_name == "MACOS":
            patch_filters = [{"Key": "CLASSIFICATION", "Values": ["Security", "Bugfix"]}]
            days = 0
        else:
            patch_filters = [
                {"Key": "CLASSIFICATION", "Values": ["Security"]},
                {"Key": "SEVERITY", "Values": ["Critical", "Important"]},
            ]
            days = 7
        return {
            "PatchRules": [
                {
                    "PatchFilterGroup": {"PatchFilters": patch_filters},
                    "ComplianceLevel": "UNSPECIFIED",
                    "ApproveAfterDays": days,
                    "EnableNonSecurity": False,
                }
            ]
        }


@functools.cache
def _moto_default_baseline_arns() -> Mapping[str, Mapping[str, str]]:
    # moto ships the real per-Region ARNs of the AWS-managed default baselines.
    try:
        loaded = load_resource("ssm/resources/default_baselines.json")
    except (FileNotFoundError, ValueError):  # pragma: no cover - depends on moto's packaging
        loaded = {}
    return loaded if isinstance(loaded, dict) else {}


@functools.cache
def managed_baselines(region: str) -> Mapping[str, ManagedBaseline]:
    """The AWS-managed default baseline per OperatingSystem (tagpatch's list) in `region`."""
    known = _moto_default_baseline_arns().get(region, {})
    result: dict[str, ManagedBaseline] = {}
    for os_name in sorted(OPERATING_SYSTEMS):
        arn = known.get(os_name)
        if arn is None:
            digest = hashlib.sha256(f"{region}/{os_name}".encode()).hexdigest()[:16]
            arn = f"arn:{get_partition(region)}:ssm:{region}:{_MANAGED_BASELINE_OWNER}:patchbaseline/pb-0{digest}"
        result[os_name] = ManagedBaseline(arn, _MANAGED_BASELINE_NAMES[os_name], os_name)
    return MappingProxyType(result)


@dataclass(frozen=True)
class _BaselineRef:
    baseline_id: str
    name: str
    operating_system: str
    description: str | None
    default: bool
    custom: Any  # moto's FakePatchBaseline, or None for an AWS-managed baseline
    managed: ManagedBaseline | None

    def identity(self) -> dict[str, Any]:
        return _drop_none(
            {
                "BaselineId": self.baseline_id,
                "BaselineName": self.name,
                "OperatingSystem": self.operating_system,
                "BaselineDescription": self.description,
                "DefaultBaseline": self.default,
            }
        )


def _custom_ref(baseline: Any) -> _BaselineRef:
    return _BaselineRef(
        baseline_id=baseline.id,
        name=baseline.name,
        operating_system=baseline.operating_system or _DEFAULT_OPERATING_SYSTEM,
        description=baseline.description,
        default=bool(baseline.default_baseline),
        custom=baseline,
        managed=None,
    )


def _managed_ref(managed: ManagedBaseline) -> _BaselineRef:
    return _BaselineRef(
        baseline_id=managed.baseline_id,
        name=managed.name,
        operating_system=managed.operating_system,
        description=managed.description,
        default=True,
        custom=None,
        managed=managed,
    )


def _all_baselines(response: Any) -> list[_BaselineRef]:
    """AWS-managed baselines (by name), then custom ones in creation order."""
    managed = sorted(managed_baselines(response.region).values(), key=lambda m: m.name)
    return [_managed_ref(m) for m in managed] + [_custom_ref(b) for b in _ssm_backend(response).baselines.values()]


def _baseline(response: Any, baseline_id: str) -> _BaselineRef:
    custom = _ssm_backend(response).baselines.get(baseline_id)
    if custom is not None:
        return _custom_ref(custom)
    for managed in managed_baselines(response.region).values():
        if managed.baseline_id == baseline_id:
            return _managed_ref(managed)
    hint = " (an AWS-managed baseline is addressed by its full ARN)" if baseline_id.startswith("pb-") else ""
    raise DoesNotExistException(f"Patch Baseline {baseline_id} does not exist{hint}.")


def _state(response: Any) -> SimulatorState:
    return simulator_state(response.current_account, response.region)


def _registrations(response: Any) -> dict[tuple[str, str], str]:
    """A consistent snapshot of (patch group, OperatingSystem) -> BaselineId."""
    state = _state(response)
    with state.lock:
        return dict(state.patch_groups)


@_correction(
    "CreatePatchBaseline",
    why="moto fails with InvalidResourceId when Tags are given (after creating the baseline), leaves "
    "OperatingSystem unset instead of WINDOWS and has no baseline quota",
)
def _create_patch_baseline(response: Any) -> dict[str, Any]:
    params = _request(response)
    _validate_input("CreatePatchBaseline", params)
    backend = _ssm_backend(response)
    if len(backend.baselines) >= MAX_PATCH_BASELINES:
        raise ResourceLimitExceededException(
            f"Patch baseline limit exceeded: at most {MAX_PATCH_BASELINES} patch baselines per Region."
        )
    baseline_id = backend.create_patch_baseline(
        name=params.get("Name"),
        operating_system=params.get("OperatingSystem", _DEFAULT_OPERATING_SYSTEM),
        global_filters=params.get("GlobalFilters"),
        approval_rules=params.get("ApprovalRules"),
        approved_patches=params.get("ApprovedPatches", []),
        approved_patches_compliance_level=params.get("ApprovedPatchesComplianceLevel", "UNSPECIFIED"),
        approved_patches_enable_non_security=params.get("ApprovedPatchesEnableNonSecurity", False),
        rejected_patches=params.get("RejectedPatches", []),
        rejected_patches_action=params.get("RejectedPatchesAction", "ALLOW_AS_DEPENDENCY"),
        description=params.get("Description"),
        sources=params.get("Sources", []),
        tags=None,
    )
    # Keep tags where moto keeps tags; moto's own tag handlers reject ResourceType PatchBaseline.
    for tag in params.get("Tags") or ():
        backend._resource_tags["PatchBaseline"][baseline_id][tag["Key"]] = tag["Value"]
    return {"BaselineId": baseline_id}


@_correction(
    "DeletePatchBaseline",
    why="moto raises a bare KeyError for an unknown baseline and deletes baselines that patch groups use",
)
def _delete_patch_baseline(response: Any) -> dict[str, Any]:
    baseline_id = str(_request(response).get("BaselineId", ""))
    backend = _ssm_backend(response)
    if baseline_id in backend.baselines:
        groups = sorted(g for (g, _), b in _registrations(response).items() if b == baseline_id)
        if groups:
            raise ResourceInUseException(
                f"Patch baseline {baseline_id} is registered with patch group(s) {', '.join(groups)}: "
                "deregister it first."
            )
        del backend.baselines[baseline_id]
        backend._resource_tags["PatchBaseline"].pop(baseline_id, None)
    return {"BaselineId": baseline_id}


_BASELINE_FILTER_KEYS: Final = ("OWNER", "OPERATING_SYSTEM", "NAME_PREFIX")


@_correction(
    "DescribePatchBaselines",
    why="moto ignores the OWNER and OPERATING_SYSTEM filters, treats NAME_PREFIX as an exact name, lists "
    "no AWS-managed default baselines and does not paginate",
)
def _describe_patch_baselines(response: Any) -> dict[str, Any]:
    params = _request(response)
    filters = _filters(params, _BASELINE_FILTER_KEYS)
    baselines = _all_baselines(response)
    if (owners := filters.get("OWNER")) is not None:
        baselines = [b for b in baselines if ("AWS" if b.managed is not None else "Self") in owners]
    if (systems := filters.get("OPERATING_SYSTEM")) is not None:
        baselines = [b for b in baselines if b.operating_system in systems]
    if (prefixes := filters.get("NAME_PREFIX")) is not None:
        baselines = [b for b in baselines if any(b.name.startswith(p) for p in prefixes)]
    page, token = _page("DescribePatchBaselines", baselines, params, _BASELINE_MAX_RESULTS)
    return _drop_none({"BaselineIdentities": [b.identity() for b in page], "NextToken": token})


@_operation("GetPatchBaseline")
def _get_patch_baseline(response: Any) -> dict[str, Any]:
    ref = _baseline(response, str(_request(response).get("BaselineId", "")))
    groups = sorted({g for (g, _), b in _registrations(response).items() if b == ref.baseline_id})
    common = {
        "BaselineId": ref.baseline_id,
        "Name": ref.name,
        "OperatingSystem": ref.operating_system,
        "PatchGroups": groups,
        "Description": ref.description,
    }
    if ref.managed is not None:
        return _drop_none(
            {
                **common,
                "GlobalFilters": {"PatchFilters": []},
                "ApprovalRules": ref.managed.approval_rules(),
                "ApprovedPatches": [],
                "ApprovedPatchesComplianceLevel": "UNSPECIFIED",
                "ApprovedPatchesEnableNonSecurity": False,
                "RejectedPatches": [],
                "RejectedPatchesAction": "ALLOW_AS_DEPENDENCY",
                "CreatedDate": _MANAGED_BASELINE_DATE,
                "ModifiedDate": _MANAGED_BASELINE_DATE,
                "Sources": [],
            }
        )
    baseline = ref.custom
    created = getattr(baseline, "tagpatch_created", None)
    if created is None:
        created = datetime.now(UTC)
        baseline.tagpatch_created = created
    return _drop_none(
        {
            **common,
            "GlobalFilters": baseline.global_filters or {"PatchFilters": []},
            "ApprovalRules": baseline.approval_rules or {"PatchRules": []},
            "ApprovedPatches": baseline.approved_patches or [],
            "ApprovedPatchesComplianceLevel": baseline.approved_patches_compliance_level or "UNSPECIFIED",
            "ApprovedPatchesEnableNonSecurity": bool(baseline.approved_patches_enable_non_security),
            "RejectedPatches": baseline.rejected_patches or [],
            "RejectedPatchesAction": baseline.rejected_patches_action or "ALLOW_AS_DEPENDENCY",
            "CreatedDate": created,
            "ModifiedDate": created,
            "Sources": baseline.sources or [],
        }
    )


@_operation("GetDefaultPatchBaseline")
def _get_default_patch_baseline(response: Any) -> dict[str, Any]:
    os_name = str(_request(response).get("OperatingSystem") or _DEFAULT_OPERATING_SYSTEM)
    managed = managed_baselines(response.region).get(os_name)
    if managed is None:
        raise DoesNotExistException(
            f"The simulator has no default patch baseline for OperatingSystem {os_name} "
            f"(it models {', '.join(sorted(OPERATING_SYSTEMS))})."
        )
    return {"BaselineId": managed.baseline_id, "OperatingSystem": os_name}


@_correction(
    "RegisterPatchBaselineForPatchGroup",
    why="moto rejects AWS-managed baseline ARNs, raises AlreadyExistsException without naming the patch "
    "group, and keeps registrations where DescribePatchGroups cannot see them",
)
def _register_patch_baseline_for_patch_group(response: Any) -> dict[str, Any]:
    params = _request(response)
    _validate_input("RegisterPatchBaselineForPatchGroup", params)
    ref = _baseline(response, str(params.get("BaselineId", "")))
    group = str(params.get("PatchGroup", ""))
    state = _state(response)
    with state.lock:
        key = (group, ref.operating_system)
        if key in state.patch_groups:
            raise AlreadyExistsException(
                f"Patch Group {group} already has a baseline registered for OperatingSystem {ref.operating_system}."
            )
        used = {g for (g, _), b in state.patch_groups.items() if b == ref.baseline_id}
        if len(used) >= MAX_PATCH_GROUPS_PER_BASELINE:
            raise ResourceLimitExceededException(
                f"Patch baseline {ref.baseline_id} already has the maximum of "
                f"{MAX_PATCH_GROUPS_PER_BASELINE} patch groups."
            )
        state.patch_groups[key] = ref.baseline_id
    return {"BaselineId": ref.baseline_id, "PatchGroup": group}


@_correction(
    "DeregisterPatchBaselineForPatchGroup",
    why="moto does not deregister anything (it re-registers the baseline) and never reports a missing registration",
)
def _deregister_patch_baseline_for_patch_group(response: Any) -> dict[str, Any]:
    params = _request(response)
    ref = _baseline(response, str(params.get("BaselineId", "")))
    group = str(params.get("PatchGroup", ""))
    state = _state(response)
    with state.lock:
        key = (group, ref.operating_system)
        if state.patch_groups.get(key) != ref.baseline_id:
            raise DoesNotExistException(f"Patch Baseline {ref.baseline_id} is not registered with Patch Group {group}.")
        del state.patch_groups[key]
    return {"BaselineId": ref.baseline_id, "PatchGroup": group}


@_correction(
    "GetPatchBaselineForPatchGroup",
    why="moto fails when OperatingSystem is omitted (SSM assumes WINDOWS) and reads registrations the "
    "simulator keeps elsewhere",
)
def _get_patch_baseline_for_patch_group(response: Any) -> dict[str, Any]:
    params = _request(response)
    group = str(params.get("PatchGroup", ""))
    os_name = str(params.get("OperatingSystem") or _DEFAULT_OPERATING_SYSTEM)
    baseline_id = _registrations(response).get((group, os_name))
    if baseline_id is None:
        # No registration: the OS's default baseline applies.
        managed = managed_baselines(response.region).get(os_name)
        if managed is None:
            raise DoesNotExistException(f"The simulator has no default patch baseline for {os_name}.")
        baseline_id = managed.baseline_id
    return {"BaselineId": baseline_id, "PatchGroup": group, "OperatingSystem": os_name}


@_operation("DescribePatchGroups")
def _describe_patch_groups(response: Any) -> dict[str, Any]:
    params = _request(response)
    filters = _filters(params, ("NAME_PREFIX", "OPERATING_SYSTEM"))
    registrations = sorted(_registrations(response).items())
    mappings = []
    for (group, os_name), baseline_id in registrations:
        if (systems := filters.get("OPERATING_SYSTEM")) is not None and os_name not in systems:
            continue
        if (prefixes := filters.get("NAME_PREFIX")) is not None and not any(group.startswith(p) for p in prefixes):
            continue
        try:
            ref = _baseline(response, baseline_id)
        except DoesNotExistException:
            continue  # deleted behind the simulator's back (e.g. straight on moto's backend)
        mappings.append({"PatchGroup": group, "BaselineIdentity": ref.identity()})
    page, token = _page("DescribePatchGroups", mappings, params, _BASELINE_MAX_RESULTS)
    return _drop_none({"Mappings": page, "NextToken": token})


# --------------------------------------------------------------------------------------------------
# Tags on patch baselines


def _tag_target(response: Any, params: Mapping[str, Any]) -> tuple[str, str, bool]:
    """(resource type, id, is a patch baseline the simulator must handle itself)."""
    resource_type = str(params.get("ResourceType", ""))
    resource_id = str(params.get("ResourceId", ""))
    if resource_type != "PatchBaseline":
        return resource_type, resource_id, False
    if resource_id not in _ssm_backend(response).baselines:
        raise InvalidResourceId()
    return resource_type, resource_id, True


@_correction(
    "ListTagsForResource",
    why="moto rejects every PatchBaseline with InvalidResourceId, so a baseline's tags cannot be read",
)
def _list_tags_for_resource(response: Any) -> dict[str, Any]:
    params = _request(response)
    resource_type, resource_id, own = _tag_target(response, params)
    backend = _ssm_backend(response)
    if own:
        tags = dict(backend._resource_tags["PatchBaseline"].get(resource_id, {}))
    else:
        tags = backend.list_tags_for_resource(resource_type=resource_type, resource_id=resource_id)
    return {"TagList": [{"Key": k, "Value": v} for k, v in tags.items()]}


@_correction(
    "AddTagsToResource",
    why="moto rejects every PatchBaseline with InvalidResourceId",
)
def _add_tags_to_resource(response: Any) -> dict[str, Any]:
    params = _request(response)
    _validate_input("AddTagsToResource", params)
    resource_type, resource_id, own = _tag_target(response, params)
    tags = {t["Key"]: t["Value"] for t in params.get("Tags") or ()}
    backend = _ssm_backend(response)
    if own:
        backend._resource_tags["PatchBaseline"][resource_id].update(tags)
    else:
        backend.add_tags_to_resource(resource_type=resource_type, resource_id=resource_id, tags=tags)
    return {}


@_correction(
    "RemoveTagsFromResource",
    why="moto rejects every PatchBaseline with InvalidResourceId",
)
def _remove_tags_from_resource(response: Any) -> dict[str, Any]:
    params = _request(response)
    resource_type, resource_id, own = _tag_target(response, params)
    keys = [str(k) for k in params.get("TagKeys") or ()]
    backend = _ssm_backend(response)
    if own:
        tags = backend._resource_tags["PatchBaseline"][resource_id]
        for key in keys:
            tags.pop(key, None)
    else:
        backend.remove_tags_from_resource(resource_type=resource_type, resource_id=resource_id, keys=keys)
    return {}
