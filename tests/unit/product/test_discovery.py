"""Discovery's cursor: validated at the edge, bounded by its share and by time, never stuck."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tagpatch import aws
from tagpatch.cycle import Cycle
from tagpatch.discovery import DiscoveryCursor, discover_some, read_inventory
from tagpatch.errors import DiscoveryStalled, InvalidCycleInput
from tagpatch_local import simulator

from ..simulator.test_simulator import _register_ids

REGION = "us-east-1"
BUCKET = "artifacts"
CYCLE = Cycle(
    run_id="unit",
    execution_id="arn:aws:states:us-east-1:123456789012:execution:tagpatch:unit",
    now=datetime(2026, 11, 29, 4, 0, tzinfo=UTC),
    mode="apply",
    patch_groups=None,
    artifact_prefix="runs/unit/",
)


@pytest.fixture
def fleet(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """120 instances, every one a managed node, and an artifact bucket."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    simulator.install()
    with mock_aws():
        boto3.DEFAULT_SESSION = None
        aws.client.cache_clear()
        ec2 = boto3.client("ec2", region_name=REGION)
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        # One reservation each: EC2 pages whole reservations.
        ids = [
            ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
            for _ in range(120)
        ]
        _register_ids(ids)
        try:
            yield ids
        finally:
            aws.client.cache_clear()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "must be an object"),
        ({"phase": "listing"}, "phase must be one of"),
        ({"token": ""}, "token must be a non-empty string"),
        ({"instances": -1}, "instances must be a non-negative integer"),
        ({"ec2_pages": True}, "ec2_pages must be a non-negative integer"),
        ({"invocations": "2"}, "invocations must be a non-negative integer"),
        ({"inventory_key": "x"}, "unknown fields"),
    ],
)
def test_a_malformed_cursor_is_refused(payload: Any, message: str) -> None:
    with pytest.raises(InvalidCycleInput, match=message):
        DiscoveryCursor.from_payload(payload)


def test_no_cursor_starts_with_the_managed_nodes() -> None:
    assert DiscoveryCursor.from_payload(None) == DiscoveryCursor(phase="managed_nodes")


def test_invocations_follow_the_cursor_to_the_end(fleet: list[str]) -> None:
    cursor, invocations = DiscoveryCursor(), 0
    while cursor.phase != "done":
        cursor = discover_some(cursor, CYCLE, BUCKET, items=100, seconds=60)
        invocations += 1
    # Nodes: pages of 50, two to a share of 100 (100, then 20 and a first instance page of 100).
    assert (cursor.ssm_pages, cursor.managed_parts) == (3, 2)
    assert (cursor.ec2_pages, cursor.inventory_parts) == (2, 2)
    assert invocations == cursor.invocations == 3
    records = list(read_inventory(BUCKET, CYCLE, cursor.inventory_parts))
    assert sorted(record["instance_id"] for record in records) == sorted(fleet)
    assert all(record["ssm"]["registered"] for record in records)
    assert (cursor.instances, cursor.ssm_registered) == (120, 120)


def test_time_ends_an_invocation_before_its_share_does(fleet: list[str]) -> None:
    ticks = iter(range(0, 1000, 10))  # every reading of the clock is 10 s later
    cursor = discover_some(DiscoveryCursor(), CYCLE, BUCKET, items=10_000, seconds=15, clock=lambda: next(ticks))
    # Started at 0 with a deadline of 15: the first page is read at 10 (in time), the second at 20.
    assert (cursor.phase, cursor.ssm_pages, cursor.managed_parts) == ("managed_nodes", 2, 1)
    assert cursor.token is not None


def test_a_token_that_comes_back_unchanged_stops_the_cycle(fleet: list[str]) -> None:
    first = discover_some(DiscoveryCursor(), CYCLE, BUCKET, items=50, seconds=60)
    assert first.token is not None

    def same_token(parsed: dict[str, Any], **_: Any) -> None:
        parsed["NextToken"] = first.token  # a service answering with the token it was sent

    aws.client("ssm").meta.events.register("after-call.ssm.DescribeInstanceInformation", same_token)
    with pytest.raises(DiscoveryStalled, match="returned the token it was given"):
        discover_some(first, CYCLE, BUCKET, items=50, seconds=60)
