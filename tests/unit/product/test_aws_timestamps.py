"""tagpatch's clients read response timestamps as botocore's own parser does, only faster."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.utils import parse_timestamp as botocore_parse_timestamp
from moto import mock_aws

from tagpatch import aws
from tagpatch.aws import parse_timestamp


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-29T04:00:00.000Z",  # EC2's LaunchTime
        "2026-11-29T04:00:00Z",
        "2026-11-29T04:00:00+00:00",
        "2026-11-29T04:00:00.123456Z",
        "2026-11-29T04:00:00.1234567Z",  # more digits than microseconds: both cut to six
        "2026-02-29T04:00:00Z",  # not a date: both refuse it
        "2026-11-29T05:00:00+01:00",  # another offset: botocore's parser reads it
        "2026-11-29",  # a date alone: botocore's parser decides
        "Sun, 29 Nov 2026 04:00:00 GMT",  # RFC 822 (S3's Last-Modified header)
        1796529600,  # epoch seconds (JSON protocols)
        1796529600.25,
    ],
)
def test_the_same_instant_as_botocores_parser(value: object) -> None:
    try:
        expected = botocore_parse_timestamp(value)
    except ValueError:
        with pytest.raises(ValueError):
            parse_timestamp(value)
        return
    parsed = parse_timestamp(value)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()
    assert parsed.isoformat() == expected.isoformat()


def test_clients_from_tagpatch_use_it() -> None:
    with mock_aws():
        boto3.DEFAULT_SESSION = None
        aws.client.cache_clear()
        try:
            ec2 = aws.client("ec2")
            ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)
            (reservation,) = ec2.describe_instances()["Reservations"]
            launched = reservation["Instances"][0]["LaunchTime"]
        finally:
            aws.client.cache_clear()
    # botocore's own parser gives dateutil's zone; this one gives datetime's UTC, for the same instant.
    assert launched.tzinfo is UTC
    assert launched == botocore_parse_timestamp(launched.isoformat())
    assert isinstance(launched, datetime)
