"""tagpatch.aws acting in a target: EC2 and SSM through the step's spoke role in the target's account
and Region, everything else with the function's own role, and a refused AssumeRole a typed error."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.stub import Stubber

from tagpatch import aws
from tagpatch.aws import TARGET_SERVICES, act_in, client, home_target, invocation
from tagpatch.config import BackupConfig
from tagpatch.errors import ConfigurationError, InvalidCycleInput, TargetAccessDenied, TransientAwsError
from tagpatch.targets import Home, Target, member_key, session_name, spoke_role_arn, spoke_role_name

HOME_ARN = "arn:aws:lambda:us-east-1:111111111111:function:hub-DiscoveryFunction-AbC"
HOME = Target("111111111111", "us-east-1")
MEMBER = Target("222222222222", "eu-west-1")
NOW = datetime(2026, 12, 7, 2, tzinfo=UTC)


def credentials(key: str, expires: datetime) -> dict[str, Any]:
    return {
        "Credentials": {
            "AccessKeyId": key,
            "SecretAccessKey": "secret-" + key,
            "SessionToken": "token-" + key,
            "Expiration": expires,
        }
    }


@pytest.fixture
def sts() -> Iterator[Stubber]:
    """The function's own STS client, answering AssumeRole only as each test queues it."""
    client.cache_clear()
    stubber = Stubber(client("sts"))
    stubber.activate()
    yield stubber
    stubber.deactivate()
    client.now = lambda: datetime.now(UTC)
    client.cache_clear()


def expect_assume(stubber: Stubber, step: str, key: str, expires: datetime) -> None:
    stubber.add_response(
        "assume_role",
        credentials(key, expires),
        {"RoleArn": f"arn:aws:iam::222222222222:role/{spoke_role_name(step)}", "RoleSessionName": session_name(step)},
    )


def signing_key(service_client: Any) -> str:
    return str(service_client._request_signer._credentials.access_key)


def test_names_follow_the_shared_convention() -> None:
    assert spoke_role_name("WindowUpsert") == "tagpatch-spoke-window-upsert"
    assert session_name("Discovery") == "tagpatch-discovery"
    assert spoke_role_arn("aws-cn", MEMBER, "PatchMonitoring") == (
        "arn:aws-cn:iam::222222222222:role/tagpatch-spoke-patch-monitoring"
    )
    assert Home.from_function_arn(HOME_ARN) == Home("aws", HOME)
    assert Home.from_function_arn("not-an-arn") is None


def test_target_side_services_sign_as_the_step_s_spoke_role_in_the_target_s_region(sts: Stubber) -> None:
    expect_assume(sts, "Discovery", "ASIAMEMBER000000", NOW + timedelta(hours=1))
    client.now = lambda: NOW
    with invocation(HOME_ARN):
        act_in(MEMBER, "Discovery")
        for service in sorted(TARGET_SERVICES):
            routed = client(service)
            assert signing_key(routed) == "ASIAMEMBER000000"
            assert routed.meta.region_name == "eu-west-1"
        # The hub's own resources stay with the function's role, in its own Region.
        assert signing_key(client("s3")) == "testing"
        assert client("sns").meta.region_name == "us-east-1"
    sts.assert_no_pending_responses()  # one AssumeRole served both EC2 and SSM


def test_the_home_target_and_no_target_keep_the_function_s_own_credentials(sts: Stubber) -> None:
    with invocation(HOME_ARN):
        assert home_target() == HOME
        act_in(HOME, "Discovery")
        assert signing_key(client("ec2")) == "testing"
        act_in(None, "Discovery")
        assert signing_key(client("ssm")) == "testing"
    # Nothing was queued: an AssumeRole would have failed the stubber.


def test_an_invocation_ends_acting_in_its_target(sts: Stubber) -> None:
    expect_assume(sts, "Discovery", "ASIAMEMBER000000", NOW + timedelta(hours=1))
    client.now = lambda: NOW
    with invocation(HOME_ARN):
        act_in(MEMBER, "Discovery")
        assert signing_key(client("ec2")) == "ASIAMEMBER000000"
    with invocation(HOME_ARN):  # the next invocation on this thread, which names no target
        assert signing_key(client("ec2")) == "testing"


def test_credentials_are_cached_per_step_and_refreshed_before_they_expire(sts: Stubber) -> None:
    expires = NOW + timedelta(hours=1)
    expect_assume(sts, "Discovery", "ASIAFIRST0000000", expires)
    expect_assume(sts, "WindowUpsert", "ASIAUPSERT000000", expires)
    expect_assume(sts, "Discovery", "ASIASECOND000000", expires + timedelta(hours=1))
    clock = [NOW]
    client.now = lambda: clock[0]
    with invocation(HOME_ARN):
        act_in(MEMBER, "Discovery")
        assert signing_key(client("ec2")) == "ASIAFIRST0000000"
        clock[0] = NOW + timedelta(minutes=30)
        assert signing_key(client("ec2")) == "ASIAFIRST0000000"  # half an hour on: the same credentials
        act_in(MEMBER, "WindowUpsert")  # another step: its own role and session
        assert signing_key(client("ssm")) == "ASIAUPSERT000000"
        act_in(MEMBER, "Discovery")
        clock[0] = expires - timedelta(minutes=4)
        assert signing_key(client("ec2")) == "ASIASECOND000000"  # four minutes before expiry: assumed again
    sts.assert_no_pending_responses()


def test_a_refused_assume_role_is_a_typed_error_naming_account_role_and_reason(sts: Stubber) -> None:
    sts.add_client_error("assume_role", "AccessDenied", "not authorized to perform sts:AssumeRole", 403)
    with invocation(HOME_ARN):
        act_in(MEMBER, "Discovery")
        with pytest.raises(TargetAccessDenied) as refused:
            client("ec2")
    message = str(refused.value)
    assert "222222222222" in message
    assert "arn:aws:iam::222222222222:role/tagpatch-spoke-discovery" in message
    assert "AccessDenied" in message


def test_a_throttled_assume_role_stays_retryable(sts: Stubber) -> None:
    sts.add_client_error("assume_role", "Throttling", "Rate exceeded", 400)
    with invocation(HOME_ARN), pytest.raises(TransientAwsError), aws.transient_errors_raised_as_retryable():
        act_in(MEMBER, "Discovery")
        client("ec2")


def test_a_target_without_a_known_home_is_refused_rather_than_acted_on_at_home() -> None:
    with invocation("no-arn"):
        with pytest.raises(ConfigurationError):
            act_in(MEMBER, "Discovery")
        with pytest.raises(ConfigurationError):
            home_target()


def test_each_thread_acts_in_its_own_target(sts: Stubber) -> None:
    expect_assume(sts, "Discovery", "ASIAMEMBER000000", NOW + timedelta(hours=1))
    client.now = lambda: NOW
    seen: dict[str, str] = {}

    def at_home() -> None:
        with invocation(HOME_ARN):
            seen["other thread"] = signing_key(client("ec2"))

    with invocation(HOME_ARN):
        act_in(MEMBER, "Discovery")
        other = threading.Thread(target=at_home)
        other.start()
        other.join()
        seen["this thread"] = signing_key(client("ec2"))
    assert seen == {"other thread": "testing", "this thread": "ASIAMEMBER000000"}


@pytest.mark.parametrize(
    "value",
    [
        "222222222222",
        {"account_id": "222222222222"},
        {"account_id": 222222222222, "region": "eu-west-1"},
        {"account_id": "2222", "region": "eu-west-1"},
        {"account_id": "222222222222", "region": "Europe"},
        {"account_id": "222222222222", "region": "eu-west-1", "extra": 1},
    ],
)
def test_a_malformed_target_is_refused_with_a_message(value: object) -> None:
    with pytest.raises(InvalidCycleInput, match="target"):
        Target.from_payload(value)


def test_a_member_s_backup_runbook_and_role_are_the_spoke_s_copies() -> None:
    backup = BackupConfig.in_member(Home("aws-us-gov", MEMBER))
    assert backup.runbook_name == "tagpatch-backup-then-patch"
    assert backup.snapshot_runbook_name == "tagpatch-backup-snapshots-then-patch"
    assert backup.automation_role_arn == "arn:aws-us-gov:iam::222222222222:role/tagpatch-spoke-backup-automation"


def test_acting_member_names_the_target_only_away_from_home(sts: Stubber) -> None:
    with invocation(HOME_ARN):
        assert aws.acting_member() is None
        act_in(HOME, "WindowUpsert")
        assert aws.acting_member() is None
        act_in(MEMBER, "WindowUpsert")
        assert aws.acting_member() == Home("aws", MEMBER)


def test_a_member_keeps_its_own_state_objects_beside_home_s(sts: Stubber) -> None:
    assert member_key("state/rollout-waves.json", None) == "state/rollout-waves.json"
    assert member_key("state/rollout-waves.json", MEMBER) == "state/rollout-waves-222222222222-eu-west-1.json"
    assert (
        member_key("compliance/snapshots/dt=2026-12-07/snapshot.jsonl.gz", MEMBER)
        == "compliance/snapshots/dt=2026-12-07/snapshot-222222222222-eu-west-1.jsonl.gz"
    )
    with invocation(HOME_ARN):
        act_in(HOME, "BaselineAssociation")
        assert aws.target_state_key("state/baseline-registrations.json") == "state/baseline-registrations.json"
        act_in(MEMBER, "BaselineAssociation")
        assert (
            aws.target_state_key("state/baseline-registrations.json")
            == "state/baseline-registrations-222222222222-eu-west-1.json"
        )
