"""The cycle lease: one S3 object, taken with a conditional write, so that two executions that cannot
see each other in ListExecutions still never both go on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tagpatch.aws import client
from tagpatch.errors import CycleAlreadyRunning
from tagpatch.lease import LEASE_KEY, LEASE_SECONDS, lease_key, read_lease, release_lease, take_lease, take_over
from tagpatch.targets import Target

BUCKET = "tagpatch-artifacts-test"
START = datetime(2026, 11, 29, 2, tzinfo=UTC)


def arn(name: str) -> str:
    return f"arn:aws:states:us-east-1:123456789012:execution:tagpatch-patch-cycle:{name}"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client.cache_clear()
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield s3
        client.cache_clear()


def holder(s3: Any) -> dict[str, Any]:
    return dict(json.loads(s3.get_object(Bucket=BUCKET, Key=LEASE_KEY)["Body"].read()))


def test_a_free_lease_is_taken_until_the_state_machine_s_timeout(s3: Any) -> None:
    take_lease(BUCKET, arn("a"), START)
    assert holder(s3) == {
        "execution_id": arn("a"),
        "taken": "2026-11-29T02:00:00Z",
        "expires": (START + timedelta(seconds=LEASE_SECONDS)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def test_a_held_lease_refuses_another_execution_and_names_the_holder(s3: Any) -> None:
    take_lease(BUCKET, arn("a"), START)
    with pytest.raises(CycleAlreadyRunning, match="execution a "):
        take_lease(BUCKET, arn("b"), START + timedelta(seconds=2))
    assert holder(s3)["execution_id"] == arn("a")


def test_the_same_execution_taking_it_again_goes_on(s3: Any) -> None:
    # A retried PrepareCycle whose first answer was lost finds its own lease.
    take_lease(BUCKET, arn("a"), START)
    take_lease(BUCKET, arn("a"), START)
    assert holder(s3)["execution_id"] == arn("a")


def test_an_expired_lease_is_taken_over(s3: Any) -> None:
    take_lease(BUCKET, arn("crashed"), START)
    take_lease(BUCKET, arn("next"), START + timedelta(seconds=LEASE_SECONDS))
    assert holder(s3)["execution_id"] == arn("next")


def test_of_two_takeovers_of_one_expired_lease_only_the_first_write_wins(s3: Any) -> None:
    take_lease(BUCKET, arn("crashed"), START)
    later = START + timedelta(seconds=LEASE_SECONDS + 60)
    expired = read_lease(BUCKET)
    assert expired is not None and expired.expires <= later
    take_lease(BUCKET, arn("first"), later)
    # The second read the expired lease before the first replaced it: its IfMatch no longer holds.
    with pytest.raises(CycleAlreadyRunning, match="execution first "):
        take_over(BUCKET, arn("second"), later, expired)
    assert holder(s3)["execution_id"] == arn("first")


def test_release_deletes_only_the_releasers_own_lease(s3: Any) -> None:
    take_lease(BUCKET, arn("a"), START)
    assert release_lease(BUCKET, arn("b")) is False
    assert holder(s3)["execution_id"] == arn("a")
    assert release_lease(BUCKET, arn("a")) is True
    assert release_lease(BUCKET, arn("a")) is False  # already released
    take_lease(BUCKET, arn("b"), START + timedelta(minutes=5))  # free again (over a delete marker)
    assert holder(s3)["execution_id"] == arn("b")


HOME = Target("123456789012", "us-east-1")
MEMBER = Target("222222222222", "eu-west-1")
OTHER_REGION = Target("222222222222", "eu-central-1")


def test_home_keeps_the_single_account_lease_and_each_other_target_has_its_own() -> None:
    assert lease_key(HOME, HOME) == LEASE_KEY
    assert lease_key(None, HOME) == LEASE_KEY
    assert len({lease_key(HOME, HOME), lease_key(MEMBER, HOME), lease_key(OTHER_REGION, HOME)}) == 3


def test_two_targets_cycles_run_side_by_side_and_one_target_s_exclude_each_other(s3: Any) -> None:
    take_lease(BUCKET, arn("home"), START, lease_key(HOME, HOME))
    take_lease(BUCKET, arn("member"), START, lease_key(MEMBER, HOME))
    take_lease(BUCKET, arn("member-frankfurt"), START, lease_key(OTHER_REGION, HOME))
    with pytest.raises(CycleAlreadyRunning, match="execution member "):
        take_lease(BUCKET, arn("member-again"), START + timedelta(seconds=1), lease_key(MEMBER, HOME))
    assert release_lease(BUCKET, arn("member"), lease_key(MEMBER, HOME))
    take_lease(BUCKET, arn("member-again"), START + timedelta(seconds=2), lease_key(MEMBER, HOME))
    assert read_lease(BUCKET, LEASE_KEY) is not None  # home's lease untouched throughout
    assert holder(s3)["execution_id"] == arn("home")
