"""boto3 clients, created once per process and shared by every call site.

Per-call clients cost far more than the calls themselves (in one measurement they made a
200-instance run four times slower), and the standard retry mode gives every client the same
throttling behaviour.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
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

from tagpatch.errors import TransientAwsError

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


@functools.cache
def client(service_name: str) -> Any:
    """The process-wide client for a service (region and credentials from the environment)."""
    _services_used.add(service_name)
    return _default_session().client(service_name, config=_CLIENT_CONFIG)


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
        model = client(service).meta.service_model
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
