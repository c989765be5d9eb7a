"""boto3 clients, created once per process and shared by every call site.

Per-call clients cost far more than the calls themselves (see docs/aws-facts), and the standard
retry mode gives every client the same throttling behaviour.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from tagpatch.errors import TransientAwsError

_CLIENT_CONFIG: Final = Config(
    retries={"mode": "standard", "total_max_attempts": 5},  # the first try and four retries
    user_agent_extra="tagpatch",
)

# Error codes that mean "try again later" rather than "this request is wrong".
TRANSIENT_ERROR_CODES: Final[frozenset[str]] = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "InternalError",
        "InternalServerError",
        "InternalFailure",
        "SlowDown",
        "RequestTimeout",
    }
)


@functools.cache
def client(service_name: str) -> Any:
    """The process-wide client for a service (region and credentials from the environment)."""
    return boto3.client(service_name, config=_CLIENT_CONFIG)


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@contextmanager
def transient_errors_raised_as_retryable() -> Iterator[None]:
    """Re-raise throttling and 5xx errors as TransientAwsError so the workflow retries them."""
    try:
        yield
    except ClientError as error:
        if error_code(error) in TRANSIENT_ERROR_CODES:
            raise TransientAwsError(f"{error_code(error)}: {error}") from error
        raise


def paginate(
    method: Callable[..., dict[str, Any]],
    result_key: str,
    *,
    on_page: Callable[[], None] | None = None,
    **kwargs: Any,
) -> Iterator[Any]:
    """Yield every item of a NextToken-paginated list operation, one page request at a time."""
    token: str | None = None
    while True:
        page = method(**kwargs, **({"NextToken": token} if token else {}))
        if on_page is not None:
            on_page()
        yield from page.get(result_key, [])
        token = page.get("NextToken")
        if not token:
            return
