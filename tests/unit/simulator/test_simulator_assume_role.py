"""STS AssumeRole judged as IAM documents it: the caller's own policies and the role's trust policy
(cross-account: both; same account: either a direct trust or the account's trust plus the caller's policy)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tagpatch_local import simulator
from tagpatch_local.clients import account_session
from tagpatch_local.simulator import organizations as ids

HUB = "123456789012"
MEMBER = "222222222222"
REGION = "us-east-1"
SPOKE_ROLE = f"arn:aws:iam::{MEMBER}:role/tagpatch-spoke-discovery"
HUB_ROLE = "tagpatch-local-DiscoveryFunctionRole"
ROOT = {"region_name": REGION, "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def trust(principal: Any, **condition: Any) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}
    return {**statement, "Condition": condition} if condition else statement


def may_assume(resource: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": resource}


@dataclass
class Org:
    hub_iam: Any
    member_iam: Any

    def hub_role(self, name: str, *statements: dict[str, Any]) -> Any:
        """An STS client signing as a session of a new hub role holding `statements`."""
        lambda_trust = {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        arn = self.hub_iam.create_role(RoleName=name, AssumeRolePolicyDocument=document(lambda_trust))["Role"]["Arn"]
        if statements:
            self.hub_iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=document(*statements))
        # The runner's root keys are not evaluated: this is how Lambda hands the function its role.
        credentials = boto3.client("sts", **ROOT).assume_role(RoleArn=arn, RoleSessionName="fn")["Credentials"]
        return boto3.client(
            "sts",
            region_name=REGION,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )

    def spoke_role(self, *statements: dict[str, Any], iam: Any = None) -> None:
        (iam or self.member_iam).create_role(
            RoleName=SPOKE_ROLE.rsplit("/", 1)[1], AssumeRolePolicyDocument=document(*statements)
        )


@pytest.fixture
def org() -> Iterator[Org]:
    with mock_aws():
        simulator.install()
        member = account_session(MEMBER, REGION, ROOT)
        yield Org(boto3.client("iam", **ROOT), member.client("iam"))


def denied(call: Any, caller_role: str, role_arn: str = SPOKE_ROLE) -> None:
    with pytest.raises(ClientError) as raised:
        call()
    error = raised.value.response["Error"]
    assert error["Code"] == "AccessDenied"
    caller = f"arn:aws:sts::{HUB}:assumed-role/{caller_role}/fn"
    assert error["Message"] == f"User: {caller} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"


def test_a_trusted_caller_allowed_by_its_own_policy_acts_in_the_member_account(org: Org) -> None:
    sts = org.hub_role(HUB_ROLE, may_assume(SPOKE_ROLE))
    org.spoke_role(trust(f"arn:aws:iam::{HUB}:role/{HUB_ROLE}"))
    credentials = sts.assume_role(RoleArn=SPOKE_ROLE, RoleSessionName="tagpatch-discovery")["Credentials"]
    spoke = boto3.client(
        "sts",
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    identity = spoke.get_caller_identity()
    assert identity["Account"] == MEMBER
    assert identity["Arn"] == f"arn:aws:sts::{MEMBER}:assumed-role/tagpatch-spoke-discovery/tagpatch-discovery"


def test_cross_account_the_callers_own_policy_must_allow_even_when_the_trust_names_it(org: Org) -> None:
    sts = org.hub_role(HUB_ROLE, may_assume(f"arn:aws:iam::{MEMBER}:role/someone-else"))
    org.spoke_role(trust(f"arn:aws:iam::{HUB}:role/{HUB_ROLE}"))
    denied(lambda: sts.assume_role(RoleArn=SPOKE_ROLE, RoleSessionName="sess"), HUB_ROLE)


def test_the_trust_policy_must_name_the_caller(org: Org) -> None:
    sts = org.hub_role(HUB_ROLE, may_assume("*"))
    org.spoke_role(trust(f"arn:aws:iam::{HUB}:role/tagpatch-local-WindowUpsertFunctionRole"))
    denied(lambda: sts.assume_role(RoleArn=SPOKE_ROLE, RoleSessionName="sess"), HUB_ROLE)


def test_a_role_that_does_not_exist_is_denied_as_any_refusal_is(org: Org) -> None:
    sts = org.hub_role(HUB_ROLE, may_assume("*"))
    missing = f"arn:aws:iam::{MEMBER}:role/tagpatch-spoke-nowhere"
    denied(lambda: sts.assume_role(RoleArn=missing, RoleSessionName="sess"), HUB_ROLE, missing)


def test_an_account_wide_trust_narrowed_by_principal_arn(org: Org) -> None:
    pattern = f"arn:aws:iam::{HUB}:role/tagpatch-local-DiscoveryFunctionRole*"
    org.spoke_role(trust(f"arn:aws:iam::{HUB}:root", ArnLike={"aws:PrincipalArn": pattern}))
    allowed = org.hub_role(HUB_ROLE, may_assume(SPOKE_ROLE))
    assert allowed.assume_role(RoleArn=SPOKE_ROLE, RoleSessionName="sess")["AssumedRoleUser"]["Arn"].startswith(
        f"arn:aws:sts::{MEMBER}:assumed-role/tagpatch-spoke-discovery/"
    )
    other = org.hub_role("tagpatch-local-ReportFunctionRole", may_assume(SPOKE_ROLE))
    denied(lambda: other.assume_role(RoleArn=SPOKE_ROLE, RoleSessionName="sess"), "tagpatch-local-ReportFunctionRole")


def test_external_id_and_session_name_conditions(org: Org) -> None:
    org.spoke_role(
        trust(
            HUB,  # an account id stands for its root
            StringEquals={"sts:ExternalId": "tagpatch"},
            StringLike={"sts:RoleSessionName": "tagpatch-*"},
        )
    )
    sts = org.hub_role(HUB_ROLE, may_assume(SPOKE_ROLE))
    sts.assume_role(RoleArn=SPOKE_ROLE, RoleSessionName="tagpatch-discovery", ExternalId="tagpatch")
    denied(lambda: sts.assume_role(RoleArn=SPOKE_ROLE, RoleSessionName="tagpatch-discovery"), HUB_ROLE)
    denied(lambda: sts.assume_role(RoleArn=SPOKE_ROLE, RoleSessionName="other", ExternalId="tagpatch"), HUB_ROLE)


def test_an_explicit_deny_in_the_trust_policy_wins(org: Org) -> None:
    deny = {**trust(f"arn:aws:iam::{HUB}:role/{HUB_ROLE}"), "Effect": "Deny"}
    org.spoke_role(trust(HUB), deny)
    sts = org.hub_role(HUB_ROLE, may_assume(SPOKE_ROLE))
    denied(lambda: sts.assume_role(RoleArn=SPOKE_ROLE, RoleSessionName="sess"), HUB_ROLE)


def test_same_account_a_direct_trust_needs_no_identity_policy_but_an_account_trust_does(org: Org) -> None:
    local_role = f"arn:aws:iam::{HUB}:role/tagpatch-spoke-discovery"
    org.spoke_role(trust(f"arn:aws:iam::{HUB}:role/{HUB_ROLE}"), iam=org.hub_iam)
    direct = org.hub_role(HUB_ROLE)  # no policy of its own
    direct.assume_role(RoleArn=local_role, RoleSessionName="sess")
    org.hub_iam.update_assume_role_policy(RoleName="tagpatch-spoke-discovery", PolicyDocument=document(trust(HUB)))
    denied(lambda: direct.assume_role(RoleArn=local_role, RoleSessionName="sess"), HUB_ROLE, local_role)
    delegated = org.hub_role("tagpatch-local-ReportFunctionRole", may_assume(local_role))
    delegated.assume_role(RoleArn=local_role, RoleSessionName="sess")


def test_the_runners_root_keys_are_not_evaluated(org: Org) -> None:
    org.spoke_role(trust(f"arn:aws:iam::{HUB}:role/nobody"))
    assert boto3.client("sts", **ROOT).assume_role(RoleArn=SPOKE_ROLE, RoleSessionName="seed")["Credentials"]


def test_session_tags_are_refused_rather_than_ignored(org: Org) -> None:
    sts = org.hub_role(HUB_ROLE, may_assume(SPOKE_ROLE))
    org.spoke_role(trust(f"arn:aws:iam::{HUB}:role/{HUB_ROLE}"))
    with pytest.raises(Exception, match="not modelled"):
        sts.assume_role(RoleArn=SPOKE_ROLE, RoleSessionName="sess", Tags=[{"Key": "k", "Value": "v"}])


STRANGER = "333333333333"


def _organization_with_member() -> str:
    """The hub's organization, MEMBER in it (STRANGER stays outside any): the organization's id."""
    organizations = boto3.client("organizations", **ROOT)
    organization_id = str(organizations.create_organization(FeatureSet="ALL")["Organization"]["Id"])
    with ids.chosen_account_id(MEMBER):
        organizations.create_account(Email="member@example.com", AccountName="member")
    return organization_id


def _stranger_role(org: Org) -> str:
    """A role named like a spoke role, in an account outside the organization, trusting the hub's role."""
    stranger_iam = account_session(STRANGER, REGION, ROOT).client("iam")
    org.spoke_role(trust(f"arn:aws:iam::{HUB}:role/{HUB_ROLE}"), iam=stranger_iam)
    return SPOKE_ROLE.replace(MEMBER, STRANGER)


def _in_any_account(**condition: Any) -> dict[str, Any]:
    return {**may_assume("arn:aws:iam::*:role/tagpatch-spoke-discovery"), "Condition": condition}


def test_resource_org_id_is_the_target_roles_organization_and_absent_outside_one(org: Org) -> None:
    organization_id = _organization_with_member()
    org.spoke_role(trust(f"arn:aws:iam::{HUB}:role/{HUB_ROLE}"))
    stranger = _stranger_role(org)
    sts = org.hub_role(HUB_ROLE, _in_any_account(StringEquals={"aws:ResourceOrgID": organization_id}))
    assert sts.assume_role(RoleArn=SPOKE_ROLE, RoleSessionName="fn")["Credentials"]["AccessKeyId"]
    denied(lambda: sts.assume_role(RoleArn=stranger, RoleSessionName="fn"), HUB_ROLE, stranger)


def test_resource_org_id_if_exists_passes_where_the_key_is_absent(org: Org) -> None:
    _organization_with_member()
    stranger = _stranger_role(org)
    sts = org.hub_role(HUB_ROLE, _in_any_account(StringEqualsIfExists={"aws:ResourceOrgID": "o-elsewhere000"}))
    assert sts.assume_role(RoleArn=stranger, RoleSessionName="fn")["Credentials"]["AccessKeyId"]


def test_resource_account_is_the_target_roles_account(org: Org) -> None:
    org.spoke_role(trust(f"arn:aws:iam::{HUB}:role/{HUB_ROLE}"))
    stranger = _stranger_role(org)
    sts = org.hub_role(HUB_ROLE, _in_any_account(StringEquals={"aws:ResourceAccount": MEMBER}))
    assert sts.assume_role(RoleArn=SPOKE_ROLE, RoleSessionName="fn")["Credentials"]["AccessKeyId"]
    denied(lambda: sts.assume_role(RoleArn=stranger, RoleSessionName="fn"), HUB_ROLE, stranger)
