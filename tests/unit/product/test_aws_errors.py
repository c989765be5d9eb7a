"""Retry classification comes from botocore's own standard retry rules, not a hand-kept list."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from tagpatch.aws import is_transient, transient_errors_raised_as_retryable
from tagpatch.errors import TransientAwsError


def client_error(code: str, status: int, operation: str = "DescribeInstances") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottlingException", 400),
        ("RequestLimitExceeded", 503),
        ("ProvisionedThroughputExceededException", 400),  # DynamoDB's throttling
        ("RequestThrottledException", 400),
        ("EC2ThrottledException", 400),
        ("BandwidthLimitExceeded", 400),
        ("PriorRequestNotComplete", 400),
        ("RequestTimeoutException", 408),
        ("SomethingNew", 500),  # any 5xx, whatever the code
        ("SomethingNew", 502),
        ("SomethingNew", 429),  # an unmodelled 429
    ],
)
def test_throttling_and_server_errors_are_transient(code: str, status: int) -> None:
    assert is_transient(client_error(code, status))


@pytest.mark.parametrize(
    ("code", "status"),
    [("AccessDeniedException", 400), ("ValidationException", 400), ("DoesNotExistException", 400)],
)
def test_errors_retrying_cannot_fix_are_not(code: str, status: int) -> None:
    assert not is_transient(client_error(code, status))


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="https://ssm.us-east-1.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://ssm.us-east-1.amazonaws.com"),
        ConnectionClosedError(endpoint_url="https://ssm.us-east-1.amazonaws.com"),
    ],
)
def test_connection_errors_and_timeouts_become_transient_aws_errors(error: Exception) -> None:
    with pytest.raises(TransientAwsError, match=type(error).__name__), transient_errors_raised_as_retryable():
        raise error


def test_other_exceptions_pass_through_unchanged() -> None:
    with pytest.raises(KeyError), transient_errors_raised_as_retryable():
        raise KeyError("a bug")
    with pytest.raises(ClientError), transient_errors_raised_as_retryable():
        raise client_error("ValidationException", 400)
