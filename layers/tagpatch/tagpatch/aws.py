"""boto3 clients, created once per process and shared by every call site.

Per-call clients cost far more than the calls themselves (in one measurement they made a
200-instance run four times slower), and the standard retry mode gives every client the same
throttling behaviour.

A handler acting in a target other than home (`act_in`) gets, for the target-side services, clients
signed with the credentials of its step's spoke role in that account and Region; every other service
stays with the function's own role, in its own account and Region.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import boto3
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.parsers import DEFAULT_TIMESTAMP_PARSER
from botocore.retries.standard import (
    ModeledRetryableChecker,
    OrRetryChecker,
    RetryContext,
    ThrottledRetryableChecker,
    ThrottlingStatusCodeChecker,
    TransientRetryableChecker,
)

from tagpatch.errors import ConfigurationError, TargetAccessDenied, TransientAwsError
from tagpatch.targets import Home, Target, member_key, session_name, spoke_role_arn

_CLIENT_CONFIG: Final = Config(
    retries={"mode": "standard", "total_max_attempts": 5},  # the first try and four retries
    user_agent_extra="tagpatch",
)

# The checkers botocore's standard retry mode uses (StandardRetryConditions, less its attempt count
# and its DynamoDB/IdP special cases): every service's throttling codes, 429, 5xx, errors a model
# marks retryable, connection errors and read timeouts. No hand-kept list.
_RETRY_CONDITIONS: Final = OrRetryChecker(
    [TransientRetryableChecker(), ThrottledRetryableChecker(), ThrottlingStatusCodeChecker(), ModeledRetryableChecker()]
)
_services_used: set[str] = set()


_ZERO: Final = timedelta(0)


def parse_timestamp(value: Any) -> datetime:
    """botocore's response timestamp parser, without dateutil for the ISO 8601 UTC strings AWS sends.

    botocore parses every timestamp with dateutil, about 150 us each; a DescribeInstances page of
    1,000 instances holds several thousand (launch, attachment and usage times), which made the parse
    the largest part of Discovery. `datetime.fromisoformat` reads the same strings in about 1 us.
    Anything else (epoch numbers from JSON protocols, RFC 822, other offsets) goes to botocore's own.
    """
    if type(value) is str:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.utcoffset() == _ZERO:
                return parsed
    result: datetime = DEFAULT_TIMESTAMP_PARSER(value)
    return result


def _default_session() -> boto3.session.Session:
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None
    # Parsers are made per response from the session's factory, so this applies to every client.
    session._session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=parse_timestamp)
    return session


# The services whose resources live in the target (its instances, managed nodes, windows, baselines,
# associations); everything else (artifact bucket, topics, queues, keys, schedules, metrics, Step
# Functions, Organizations) is the hub's own.
TARGET_SERVICES: Final = frozenset({"ec2", "ssm"})
# Refresh a spoke role's credentials this long before they expire, so no call signs with stale ones.
CREDENTIALS_MARGIN: Final = timedelta(minutes=5)


@dataclass(frozen=True)
class _Acting:
    home: Home
    target: Target
    step: str


_home: ContextVar[Home | None] = ContextVar("tagpatch_home", default=None)
_acting: ContextVar[_Acting | None] = ContextVar("tagpatch_acting", default=None)


@contextmanager
def invocation(function_arn: str) -> Iterator[None]:
    """One Lambda invocation: its home from the function's own ARN, acting nowhere else until the
    handler says so (a ContextVar, as the local runner may run handlers on several threads)."""
    home_token = _home.set(Home.from_function_arn(function_arn))
    acting_token = _acting.set(None)
    try:
        yield
    finally:
        _acting.reset(acting_token)
        _home.reset(home_token)


def home_target() -> Target:
    """The function's own account and Region (the default target)."""
    home = _home.get()
    if home is None:
        raise ConfigurationError("the function's own account and Region are unknown: no invoked function ARN")
    return home.target


def home_if_known() -> Target | None:
    """home_target(), or None where the invocation names no function ARN (what a report must survive)."""
    home = _home.get()
    return None if home is None else home.target


def act_in(target: Target | None, step: str) -> None:
    """Route this invocation's EC2 and SSM calls to `target`, as `step`'s spoke role; home (or None)
    keeps the function's own credentials. Call before any AWS call of the handler."""
    home = _home.get()
    if target is None or (home is not None and target == home.target):
        _acting.set(None)
        return
    if home is None:
        raise ConfigurationError(f"cannot act in {target.label}: the function's own partition and account are unknown")
    _acting.set(_Acting(home, target, step))


def acting_member() -> Home | None:
    """The partition and target this invocation acts in through a spoke role; None at home."""
    acting = _acting.get()
    return None if acting is None else Home(acting.home.partition, acting.target)


def target_state_key(key: str) -> str:
    """The key of the acting target's own copy of a state object in the hub's bucket (member_key)."""
    member = acting_member()
    return member_key(key, member.target if member is not None else None)


def member_target() -> Target | None:
    """The member account and Region this invocation acts in; None at home (what messages name)."""
    member = acting_member()
    return None if member is None else member.target


@functools.cache
def _home_client(service_name: str) -> Any:
    _services_used.add(service_name)
    return _default_session().client(service_name, config=_CLIENT_CONFIG)


@dataclass(frozen=True)
class _Assumed:
    credentials: Mapping[str, Any]
    clients: dict[str, Any]


class _Clients:
    """`client(service)`: the process-wide client, or the acting step's spoke client for EC2 and SSM."""

    def __init__(self, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.now = now
        self._assumed: dict[tuple[Target, str], _Assumed] = {}

    def __call__(self, service_name: str) -> Any:
        acting = _acting.get()
        if acting is None or service_name not in TARGET_SERVICES:
            return _home_client(service_name)
        _services_used.add(service_name)
        key = (acting.target, acting.step)
        assumed = self._assumed.get(key)
        if assumed is None or assumed.credentials["Expiration"] - CREDENTIALS_MARGIN <= self.now():
            assumed = self._assumed[key] = _Assumed(_assume(acting), {})
        if service_name not in assumed.clients:
            assumed.clients[service_name] = _default_session().client(
                service_name,
                region_name=acting.target.region,
                aws_access_key_id=assumed.credentials["AccessKeyId"],
                aws_secret_access_key=assumed.credentials["SecretAccessKey"],
                aws_session_token=assumed.credentials["SessionToken"],
                config=_CLIENT_CONFIG,
            )
        return assumed.clients[service_name]

    def cache_clear(self) -> None:
        """Forget every client and assumed credential (a new account, or another function's role)."""
        _home_client.cache_clear()
        self._assumed.clear()


def _assume(acting: _Acting) -> Mapping[str, Any]:
    role_arn = spoke_role_arn(acting.home.partition, acting.target, acting.step)
    try:
        answer = _home_client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session_name(acting.step))
    except ClientError as error:
        if is_transient(error):
            raise
        raise TargetAccessDenied(
            f"{acting.step} cannot act in account {acting.target.account_id} ({acting.target.region}): "
            f"sts:AssumeRole on {role_arn} was refused ({describe_error(error)}); deploy spoke/template.yaml "
            "there, or check its HubAccountId and HubStackName"
        ) from error
    credentials: Mapping[str, Any] = answer["Credentials"]
    return credentials


client: Final = _Clients()
"""The client for a service: region and credentials from the environment, or the target's (act_in)."""


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def error_message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", error))


def describe_error(error: BaseException) -> str:
    """`Code: message` for a service error, `ExceptionClass: text` for anything else."""
    if isinstance(error, ClientError):
        return f"{error_code(error)}: {error_message(error)}"
    return f"{type(error).__name__}: {error}"


def _operation_model(operation_name: str) -> Any:
    """The failed operation's model, for the errors a service models as retryable."""
    for service in sorted(_services_used):
        model = _home_client(service).meta.service_model
        if operation_name in model.operation_names:
            return model.operation_model(operation_name)
    return None


def is_transient(error: BaseException) -> bool:
    """Would botocore's standard retry mode try this again (throttling, 5xx, connection, timeout)?"""
    if isinstance(error, ClientError):
        metadata = error.response.get("ResponseMetadata", {})
        status = metadata.get("HTTPStatusCode")
        context = RetryContext(
            attempt_number=1,
            operation_model=_operation_model(error.operation_name),
            parsed_response=error.response,
            http_response=AWSResponse("", status, metadata.get("HTTPHeaders", {}), None) if status else None,
        )
    elif isinstance(error, Exception):
        context = RetryContext(attempt_number=1, caught_exception=error)
    else:
        return False
    return bool(_RETRY_CONDITIONS.is_retryable(context))


@contextmanager
def transient_errors_raised_as_retryable() -> Iterator[None]:
    """Re-raise what outlived botocore's retries (throttling, 5xx, connection errors, read timeouts)
    as TransientAwsError, so the workflow retries it with backoff."""
    try:
        yield
    except TransientAwsError:
        raise
    except Exception as error:
        if is_transient(error):
            raise TransientAwsError(describe_error(error)) from error
        raise


def next_token(sent: str | None, page: Mapping[str, Any], stalled: type[Exception], listing: str) -> str | None:
    """The page's NextToken (None at the end); raises `stalled` if it is the token that was sent."""
    token = page.get("NextToken") or None
    if token is not None and token == sent:
        raise stalled(f"{listing}: the service returned the token it was given; paging would not end")
    return token


def paginate(
    method: Callable[..., dict[str, Any]],
    result_key: str,
    *,
    on_page: Callable[[Mapping[str, Any]], None] | None = None,
    stalled: type[Exception] | None = None,
    **kwargs: Any,
) -> Iterator[Any]:
    """Yield every item of a NextToken-paginated list operation, one page request at a time.

    `on_page` sees each page as it arrives; with `stalled`, a page that hands back the token it was
    sent raises that error instead of paging forever.
    """
    token: str | None = None
    while True:
        page = method(**kwargs, **({"NextToken": token} if token else {}))
        if on_page is not None:
            on_page(page)
        yield from page.get(result_key, [])
        if stalled is not None:
            token = next_token(token, page, stalled, method.__name__)
        else:
            token = page.get("NextToken") or None
        if not token:
            return
