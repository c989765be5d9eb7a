"""Stacks in member accounts: the spoke deployed into each member account and Region with the member's
pseudo-parameters, as a service-managed StackSet would, and hub function roles named as
CloudFormation names them, so the spoke's trust (`<hub stack>-<Step>FunctionRole-*`) can match them."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tagpatch_local.clients import account_session
from tagpatch_local.fleet import MemberAccount
from tagpatch_local.member_stack import MemberStack, StackInstanceFailed
from tagpatch_local.organization import SeededOrganization
from tagpatch_local.runner import ACCOUNT_ID, SimulatedAccount
from tagpatch_local.template import TemplateError

REPO = Path(__file__).resolve().parents[2]
ROOT = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
SPOKE = REPO / "spoke" / "template.yaml"
WITH_SPOKE = MemberAccount("111111111111", "payments", ("us-east-1", "eu-west-1"))
WITHOUT_SPOKE = MemberAccount("222222222222", "analytics", ("us-east-1",), spoke=False)


@pytest.fixture(scope="module")
def organization() -> Iterator[tuple[SimulatedAccount, SeededOrganization]]:
    with SimulatedAccount(REPO / "template.yaml") as account:
        yield account, account.seed_accounts((WITH_SPOKE, WITHOUT_SPOKE))


def role_names(account_id: str, region: str = "us-east-1") -> set[str]:
    iam = account_session(account_id, region, ROOT).client("iam")
    return {role["RoleName"] for role in iam.list_roles()["Roles"]}


def test_function_roles_are_named_as_cloudformation_names_them(
    organization: tuple[SimulatedAccount, SeededOrganization],
) -> None:
    account, _ = organization
    for logical_id in account.template.functions():
        if account.enabled(logical_id):
            name = account.role_arn(logical_id).rsplit("/", 1)[1]
            assert fnmatch.fnmatchcase(name, f"tagpatch-local-{logical_id}Role-*"), name
            assert len(name) <= 64  # IAM's limit on a role name


def test_the_spoke_is_in_each_member_that_takes_it_with_the_members_pseudo_parameters(
    organization: tuple[SimulatedAccount, SeededOrganization],
) -> None:
    _, seeded = organization
    assert {"tagpatch-spoke-discovery", "tagpatch-spoke-window-upsert"} <= role_names(WITH_SPOKE.id)
    assert not any(name.startswith("tagpatch-spoke-") for name in role_names(WITHOUT_SPOKE.id))
    iam = account_session(WITH_SPOKE.id, "us-east-1", ROOT).client("iam")
    policy = iam.get_role_policy(RoleName="tagpatch-spoke-backup-automation", PolicyName="backup-then-patch")
    text = json.dumps(policy["PolicyDocument"])
    assert f"arn:aws:ec2:*:{WITH_SPOKE.id}:instance/*" in text  # account-wide: one role serves every Region
    assert ACCOUNT_ID not in text
    ssm = account_session(WITH_SPOKE.id, "us-east-1", ROOT).client("ssm")
    owned = ssm.list_documents(Filters=[{"Key": "Owner", "Values": ["Self"]}])["DocumentIdentifiers"]
    assert owned, "the backup runbook is not in the member's Region"
    assert (WITH_SPOKE.id, "us-east-1") in seeded.spoke_stacks


def test_a_second_region_of_one_account_holds_its_own_runbooks_and_baselines_and_no_second_roles(
    organization: tuple[SimulatedAccount, SeededOrganization],
) -> None:
    # IAM role names are global to an account: only the account's RolesRegion instance (its first Region,
    # a per-account override) makes the roles, whose grants name every Region; each instance makes its
    # Region's runbooks and baselines. Without the override the second instance would fail "already exists".
    _, seeded = organization
    assert (WITH_SPOKE.id, "eu-west-1") not in seeded.spoke_failures
    assert not any(name.endswith("RoleArn") for name in seeded.spoke_stacks[(WITH_SPOKE.id, "eu-west-1")])
    assert "DiscoverySpokeRoleArn" in seeded.spoke_stacks[(WITH_SPOKE.id, "us-east-1")]
    ssm = account_session(WITH_SPOKE.id, "eu-west-1", ROOT).client("ssm")
    assert ssm.list_documents(Filters=[{"Key": "Owner", "Values": ["Self"]}])["DocumentIdentifiers"]
    owned = ssm.describe_patch_baselines(Filters=[{"Key": "OWNER", "Values": ["Self"]}])["BaselineIdentities"]
    assert {"tagpatch-amazon-linux-2023", "tagpatch-windows-critical"} <= {b["BaselineName"] for b in owned}


def test_without_a_roles_region_a_second_region_fails_as_cloudformation_would_on_global_role_names(
    organization: tuple[SimulatedAccount, SeededOrganization],
) -> None:
    account, _ = organization
    parameters = {"HubAccountId": ACCOUNT_ID, "HubStackName": account.stack_name}  # RolesRegion left empty
    with pytest.raises(StackInstanceFailed, match=r"tagpatch-spoke-.*already exists"):
        MemberStack(SPOKE, WITH_SPOKE.id, "eu-west-1", parameters, ROOT, stack_name="second").deploy()


def hub_function_sts(account: SimulatedAccount, logical_id: str) -> Any:
    credentials = account.client("sts").assume_role(RoleArn=account.role_arn(logical_id), RoleSessionName="fn")
    keys = credentials["Credentials"]
    return boto3.client(
        "sts",
        region_name="us-east-1",
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
    )


def test_a_hub_function_assumes_its_own_steps_spoke_role_and_no_other(
    organization: tuple[SimulatedAccount, SeededOrganization],
) -> None:
    account, _ = organization
    discovery = f"arn:aws:iam::{WITH_SPOKE.id}:role/tagpatch-spoke-discovery"
    sts = hub_function_sts(account, "DiscoveryFunction")
    assumed = sts.assume_role(RoleArn=discovery, RoleSessionName="tagpatch-discovery")
    assert assumed["AssumedRoleUser"]["Arn"].startswith(f"arn:aws:sts::{WITH_SPOKE.id}:assumed-role/")
    upsert = f"arn:aws:iam::{WITH_SPOKE.id}:role/tagpatch-spoke-window-upsert"
    with pytest.raises(ClientError, match="AccessDenied"):
        sts.assume_role(RoleArn=upsert, RoleSessionName="tagpatch-window-upsert")
    with pytest.raises(ClientError, match="AccessDenied"):  # the member that lacks the spoke
        sts.assume_role(
            RoleArn=f"arn:aws:iam::{WITHOUT_SPOKE.id}:role/tagpatch-spoke-discovery",
            RoleSessionName="tagpatch-discovery",
        )


def test_a_template_parameter_without_a_default_must_be_given(
    organization: tuple[SimulatedAccount, SeededOrganization],
) -> None:
    with pytest.raises(TemplateError, match="HubStackName"):
        MemberStack(SPOKE, "333333333333", "us-east-1", {"HubAccountId": ACCOUNT_ID}, ROOT)
    with pytest.raises(TemplateError, match=r"HubAccountId='hub' does not match its AllowedPattern"):
        MemberStack(SPOKE, "333333333333", "us-east-1", {"HubAccountId": "hub", "HubStackName": "x"}, ROOT)


def test_a_failed_stack_instance_leaves_nothing_behind(
    organization: tuple[SimulatedAccount, SeededOrganization], tmp_path: Path
) -> None:
    template = tmp_path / "two-roles.yaml"
    trust = {"Version": "2012-10-17", "Statement": []}

    def role(name: Any) -> dict[str, Any]:
        return {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": trust, "RoleName": name}}

    first, taken = role({"Fn::Sub": "first-${AWS::Region}"}), role("tagpatch-spoke-discovery")
    template.write_text(json.dumps({"Resources": {"First": first, "Second": taken}}))
    stack = MemberStack(template, WITH_SPOKE.id, "us-west-2", {}, ROOT)
    with pytest.raises(StackInstanceFailed, match="tagpatch-spoke-discovery"):
        stack.deploy()
    assert "first-us-west-2" not in role_names(WITH_SPOKE.id)
