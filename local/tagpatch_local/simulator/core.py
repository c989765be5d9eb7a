"""The simulator's machinery: the operation registry, output validation and SSM request helpers.

moto has no plugin mechanism, but it looks a handler up on the response class per request, so a
method attached to `SimpleSystemManagerResponse` serves a new operation in decorator and server mode
alike. To add an operation, write a handler and decorate it with `@operation("OperationName")`:
`install()` attaches it, refuses to shadow an operation moto implements itself, and every fake output
is checked against botocore's output shape before moto serialises it.

Where moto implements an operation but gets it wrong, `@correction("OperationName", why="...")`
replaces moto's handler instead. It is the only way to override moto, it must say why, and it
requires moto to implement the operation (install() fails loudly once moto drops it, so the
correction becomes an `@operation` deliberately). `corrected_operations()` lists the reasons.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, cast

import botocore.session
from botocore.validate import ParamValidator, ValidationErrors
from moto.core.responses import ActionResult, BaseResponse
from moto.ssm.exceptions import SSMException, ValidationException
from moto.ssm.models import ssm_backends
from moto.ssm.responses import SimpleSystemManagerResponse

# Marks methods this package attached, so a second install() is a no-op and anything else is moto's.
MARKER: Final = "__tagpatch_operation__"

_STATE_LOCK: Final = threading.Lock()
_ABSENT: Final = object()


def backend_state[T](owner: object, key: str, factory: Callable[[], T]) -> T:
    """The simulator's own state kept on a moto object (a backend, an alarm, a window) under `key`,
    made by `factory` on first use; it lives as long as that object.

    Made under a lock, so threads that first ask at the same moment share one state rather than each
    keeping its own. Each key is a module's constant and always holds what that module's factory makes.
    """
    found = getattr(owner, key, _ABSENT)
    if found is _ABSENT:
        with _STATE_LOCK:
            found = getattr(owner, key, _ABSENT)
            if found is _ABSENT:
                found = factory()
                setattr(owner, key, found)
    return cast(T, found)


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


class IdempotentParameterMismatch(SSMException):
    code = "IdempotentParameterMismatch"


class TargetInUseException(SSMException):
    code = "TargetInUseException"


class ResourceInUseException(SSMException):
    code = "ResourceInUseException"


# --------------------------------------------------------------------------------------------------
# Output validation


@functools.cache
def service_model(service: str) -> Any:
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


class StrictValidator(ParamValidator):  # type: ignore[misc]
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
    shape = service_model(service).operation_model(operation).output_shape
    errors = StrictValidator().validate(dict(output), shape)
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
# Changes to moto itself (not to one operation), applied by install(); see `moto_patch`.
_PATCHES: list[Callable[[], None]] = []
_INSTALL_LOCK = threading.Lock()
# moto's own handlers that corrections replaced, by `service:Operation` (for inspection and tests).
_MOTO_HANDLERS: dict[str, Callable[..., Any]] = {}


def operation(
    name: str, *, service: str = "ssm", response_class: type[BaseResponse] = SimpleSystemManagerResponse
) -> Callable[[_Handler], _Handler]:
    """Register `handler(response) -> output dict` as the fake for `service:name`."""

    def register(handler: _Handler) -> _Handler:
        # Fail at import time if botocore does not know the operation (typo, renamed API).
        service_model(service).operation_model(name)
        _OPERATIONS[f"{service}:{name}"] = _Operation(service, name, response_class, handler)
        return handler

    return register


def correction(
    name: str,
    *,
    why: str,
    service: str = "ssm",
    response_class: type[BaseResponse] = SimpleSystemManagerResponse,
) -> Callable[[_Handler], _Handler]:
    """Register `handler(response) -> output dict` as a replacement for moto's own `service:name`.

    Unlike `operation`, this requires moto to implement the operation, and `why` records what moto
    gets wrong. Outputs are validated against botocore's output shape like any fake.
    """
    if not why.strip():
        raise SimulatorError(f"correction of {service}:{name} must say why moto's handler is wrong")

    def register(handler: _Handler) -> _Handler:
        service_model(service).operation_model(name)
        _OPERATIONS[f"{service}:{name}"] = _Operation(service, name, response_class, handler, why)
        return handler

    return register


def moto_patch(patch: Callable[[], None]) -> Callable[[], None]:
    """Register an idempotent change to moto's internals, applied by every install()."""
    _PATCHES.append(patch)
    return patch


def _make_method(op: _Operation) -> Callable[[Any], ActionResult]:
    def method(self: Any) -> ActionResult:
        output = op.handler(self)
        validate_output(op.service, op.name, output)
        return ActionResult(output)

    method.__name__ = op.method_name
    method.__qualname__ = f"{op.response_class.__name__}.{op.method_name}"
    setattr(method, MARKER, op.name)
    return method


def install() -> None:
    """Attach every registered fake operation to moto's response classes. Safe to call repeatedly."""
    with _INSTALL_LOCK:
        for patch in _PATCHES:
            patch()
        for op in _OPERATIONS.values():
            existing = getattr(op.response_class, op.method_name, None)
            if op.why is not None:
                if existing is None:
                    raise MotoLacksOperationError(
                        f"moto no longer implements {op.service}:{op.name} "
                        f"({op.response_class.__name__}.{op.method_name} is gone), but "
                        f"tagpatch_local/simulator/ corrects it ({op.why}). Turn the correction into "
                        f"an @operation fake or drop it."
                    )
                if getattr(existing, MARKER, None) == op.name:
                    continue
                _MOTO_HANDLERS[f"{op.service}:{op.name}"] = existing
                setattr(op.response_class, op.method_name, _make_method(op))
                continue
            if existing is not None:
                if getattr(existing, MARKER, None) == op.name:
                    continue
                raise MotoImplementsOperationError(
                    f"moto now implements {op.service}:{op.name} itself "
                    f"({op.response_class.__name__}.{op.method_name} exists). Compare its behaviour "
                    f"with the fake in tagpatch_local/simulator/, then drop or adapt the fake."
                )
            setattr(op.response_class, op.method_name, _make_method(op))


def installed_operations() -> list[str]:
    """`service:Operation` names the simulator fakes or corrects."""
    return sorted(_OPERATIONS)


def corrected_operations() -> dict[str, str]:
    """`service:Operation` -> why the simulator replaces moto's own handler."""
    return {key: op.why for key, op in sorted(_OPERATIONS.items()) if op.why is not None}


def ssm_backend(response: Any) -> Any:
    return ssm_backends[response.current_account][response.region]


def request_params(response: Any) -> dict[str, Any]:
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


def _constraint_text(reason: str, extra: Mapping[str, Any]) -> str:  # noqa: PLR0911 - one return per botocore constraint, each AWS's wording
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


def validation_message(problems: list[tuple[object, str, str]]) -> str:
    # SSM's own wording: "1 validation error detected: Value 'x' at 'name' failed to satisfy ...".
    count = len(problems)
    head = f"{count} validation error{'s' if count != 1 else ''} detected: "
    return head + "; ".join(
        f"Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
        for value, member, constraint in problems
    )


def validate_input(operation: str, params: Mapping[str, Any]) -> None:
    """Enforce the input shape's max, enum and pattern constraints as the service does.

    botocore checks types and minimums client-side but leaves maximums, enums and patterns to the
    service; moto checks none of them.
    """
    shape = service_model("ssm").operation_model(operation).input_shape
    errors = StrictValidator().validate(dict(params), shape)
    if not errors.has_errors():
        return
    problems: list[tuple[object, str, str]] = []
    for reason, name, extra in errors._errors:
        value = extra.get("param", "")
        problems.append((value, _aws_member_name(name), _constraint_text(reason, extra)))
    raise ValidationException(validation_message(problems))


def drop_none(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if v is not None}


def max_results(params: Mapping[str, Any], bounds: tuple[int, int]) -> int:
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
        raise ValidationException(validation_message([(value, "maxResults", f"Member must have value {bound}")]))
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


def page_of[T](
    operation: str, items: list[T], params: Mapping[str, Any], bounds: tuple[int, int]
) -> tuple[list[T], str | None]:
    """One page of `items` (already filtered and ordered) and the token for the next, if any."""
    size = max_results(params, bounds)
    token = params.get("NextToken")
    start = _decode_offset_token(operation, token) if token is not None else 0
    end = start + size
    return items[start:end], (_encode_offset_token(operation, end) if end < len(items) else None)


def filters_of(params: Mapping[str, Any], allowed: Iterable[str]) -> dict[str, frozenset[str]]:
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
