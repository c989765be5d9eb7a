"""Fleet files that name an organization's member accounts and Regions, and the simulated organization
seeded from them: Organizations' listings, each member's instances in its own account and Regions,
IAM on Organizations' requests, and aws:PrincipalOrgID in a trust policy."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tagpatch_local import simulator
from tagpatch_local.clients import account_session
from tagpatch_local.fleet import FleetError, FleetFile, MemberAccount, load_fleet, load_fleet_file
from tagpatch_local.organization import SeededOrganization, seed_organization
from tagpatch_local.scenario import load_scenario

REPO = Path(__file__).resolve().parents[3]
HUB = "123456789012"
ROOT = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
WEB = {"tags": {"Name": "web-1", "Patch Group": "web", "Maintenance Window": "sun-0200"}, "os": "AMAZON_LINUX_2023"}


def fleet_file(tmp_path: Path, document: dict[str, Any]) -> FleetFile:
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(document))
    return load_fleet_file(path)


def account(**overrides: Any) -> dict[str, Any]:
    return {"id": "111111111111", "regions": ["us-east-1"], "instances": [WEB], **overrides}


# --- the fleet file --------------------------------------------------------------------------------


def test_accounts_name_their_regions_ou_status_spoke_and_instances(tmp_path: Path) -> None:
    parsed = fleet_file(
        tmp_path,
        {
            "instances": [WEB],
            "accounts": [
                account(name="payments", regions=["us-east-1", "eu-west-1"], ou="workloads/prod"),
                {"id": "222222222222", "regions": ["eu-west-1"], "status": "SUSPENDED", "spoke": False},
            ],
        },
    )
    payments, closed = parsed.accounts
    assert payments == MemberAccount(
        id="111111111111",
        name="payments",
        regions=("us-east-1", "eu-west-1"),
        instances=payments.instances,
        ou=("workloads", "prod"),
    )
    assert [dict(i.tags)["Name"] for i in payments.instances] == ["web-1"]
    assert (closed.name, closed.status, closed.spoke, closed.instances, closed.ou) == (
        "member-222222222222",
        "SUSPENDED",
        False,
        (),
        (),
    )
    assert len(parsed.instances) == 1
    assert parsed.seeded_count() == 1 + 2


def test_a_single_account_fleet_is_read_as_before(tmp_path: Path) -> None:
    demo = load_fleet_file(REPO / "fleets" / "demo.yaml")
    assert demo.accounts == ()
    assert demo.instances == load_fleet(REPO / "fleets" / "demo.yaml")


@pytest.mark.parametrize(
    ("accounts", "message"),
    [
        ([account(id=111111111111)], r"accounts\[0\]\.id: an account id is a string of 12 digits.*quote it"),
        ([account(id="1234")], r"accounts\[0\]\.id: an account id is a string of 12 digits"),
        ([account(id=HUB)], r"accounts\[0\]\.regions: us-east-1 is the hub's home Region"),
        ([account(id=HUB, regions=["eu-west-1"], ou="workloads")], r"accounts\[0\]\.ou: 123456789012 is the hub"),
        (
            [account(id=HUB, regions=["eu-west-1"], status="SUSPENDED")],
            r"accounts\[0\]\.status: 123456789012 is the hub",
        ),
        ([account(), account()], r"accounts\[1\]\.id: account 111111111111 is already listed at accounts\[0\]"),
        ([account(region="us-east-1")], r'accounts\[0\]\.region: unknown key "region"'),
        ([account(regions=["us-east-9"])], r"accounts\[0\]\.regions\[0\]: unknown Region 'us-east-9'"),
        ([account(regions=["us-east-1", "us-east-1"])], r"accounts\[0\]\.regions\[1\]: Region us-east-1 is listed"),
        ([account(regions=[])], r"accounts\[0\]\.regions: expected a non-empty list of Regions"),
        (
            [account(status="CLOSED")],
            r"accounts\[0\]\.status: invalid value 'CLOSED'; expected one of ACTIVE, SUSP",
        ),
        ([account(spoke="yes")], r"accounts\[0\]\.spoke: must be true or false"),
        ([account(ou="a/b/c/d/e/f")], r"accounts\[0\]\.ou: each OU name is 1-128 characters, nested at most 5"),
        ([account(ou="a//b")], r"accounts\[0\]\.ou: each OU name"),
        ([account(name="x" * 51)], r"accounts\[0\]\.name: an account name is 1-50 printable ASCII"),
        ([account(instances=[{"tags": {}}])], r"accounts\[0\]\.instances\[0\]: missing required key 'os'"),
        ([{"regions": ["us-east-1"]}], r"accounts\[0\]: missing required key 'id'"),
        ([], r"accounts: expected a non-empty list of member accounts"),
    ],
)
def test_a_bad_account_is_refused_naming_the_key(tmp_path: Path, accounts: Any, message: str) -> None:
    with pytest.raises(FleetError, match=message):
        fleet_file(tmp_path, {"accounts": accounts})


def test_an_unknown_top_level_key_names_accounts_among_the_allowed(tmp_path: Path) -> None:
    with pytest.raises(FleetError, match='unknown key "acounts"; expected one of instances, generate, accounts'):
        fleet_file(tmp_path, {"acounts": []})


def test_the_single_account_loader_refuses_a_fleet_with_accounts(tmp_path: Path) -> None:
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps({"accounts": [account()]}))
    with pytest.raises(FleetError, match="names member accounts"):
        load_fleet(path)


def test_the_organization_fleet_is_the_hubs_other_region_and_three_accounts_in_two_regions() -> None:
    organization = load_fleet_file(REPO / "fleets" / "organization.yaml")
    hub, *members = organization.accounts
    assert (hub.id, hub.regions, hub.spoke) == (HUB, ("eu-west-1",), True)
    assert len(members) == 3
    assert all(len(member.regions) == 2 for member in members)
    assert {member.status for member in organization.accounts} == {"ACTIVE", "SUSPENDED"}
    assert {member.spoke for member in organization.accounts} == {True, False}


# --- the seeded organization -----------------------------------------------------------------------

MEMBERS = (
    MemberAccount("111111111111", "payments", ("us-east-1", "eu-west-1"), (), ou=("workloads", "prod")),
    MemberAccount("222222222222", "legacy", ("us-east-1",), (), status="SUSPENDED", ou=("workloads",)),
    MemberAccount("333333333333", "sandbox", ("eu-west-1",), ()),
)


@pytest.fixture(scope="module")  # moto loads each member Region's default AMIs: seed once, read many times
def organization() -> Iterator[tuple[Any, SeededOrganization]]:
    with mock_aws():
        simulator.install()
        members = load_fleet_file(REPO / "fleets" / "organization.yaml")
        web = next(member for member in members.accounts if member.instances).instances[:1]
        accounts = tuple(MemberAccount(m.id, m.name, m.regions, web, m.status, m.ou, m.spoke) for m in MEMBERS)
        client = boto3.client("organizations", **ROOT)
        yield client, seed_organization(client, accounts, ROOT)


def test_organizations_lists_the_members_with_their_status(organization: tuple[Any, SeededOrganization]) -> None:
    client, seeded = organization
    listed = {a["Id"]: a for a in client.list_accounts()["Accounts"]}
    assert set(listed) == {HUB, "111111111111", "222222222222", "333333333333"}
    assert (listed["222222222222"]["Status"], listed["222222222222"]["State"]) == ("SUSPENDED", "SUSPENDED")
    assert listed["111111111111"]["Status"] == "ACTIVE"
    assert client.describe_organization()["Organization"]["MasterAccountId"] == HUB
    workloads, prod = seeded.ou_ids[("workloads",)], seeded.ou_ids[("workloads", "prod")]
    under_root = client.list_accounts_for_parent(ParentId=seeded.root_id)["Accounts"]
    assert {a["Id"] for a in under_root} == {HUB, "333333333333"}
    assert [a["Id"] for a in client.list_accounts_for_parent(ParentId=workloads)["Accounts"]] == ["222222222222"]
    assert [a["Id"] for a in client.list_accounts_for_parent(ParentId=prod)["Accounts"]] == ["111111111111"]
    nested = client.list_organizational_units_for_parent(ParentId=workloads)["OrganizationalUnits"]
    assert [(ou["Id"], ou["Name"]) for ou in nested] == [(prod, "prod")]
    children = client.list_children(ParentId=workloads, ChildType="ORGANIZATIONAL_UNIT")["Children"]
    assert children == [{"Id": prod, "Type": "ORGANIZATIONAL_UNIT"}]


def test_each_member_holds_its_instances_in_each_of_its_regions(organization: tuple[Any, SeededOrganization]) -> None:
    _, seeded = organization
    assert set(seeded.instance_ids) == {
        ("111111111111", "us-east-1"),
        ("111111111111", "eu-west-1"),
        ("222222222222", "us-east-1"),
        ("333333333333", "eu-west-1"),
    }
    for (member, region), ids in seeded.instance_ids.items():
        ec2 = account_session(member, region, ROOT).client("ec2")
        found = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
        assert found == ids
        assert len(ids) == 1
        ssm = account_session(member, region, ROOT).client("ssm")
        managed = ssm.describe_instance_information()["InstanceInformationList"]
        assert [node["InstanceId"] for node in managed] == ids
    # The hub's own home Region holds none of them.
    assert boto3.client("ec2", **ROOT).describe_instances()["Reservations"] == []


def hub_role_client(service: str, *statements: dict[str, Any]) -> Any:
    """A client signing as a new hub role (a function's, as Lambda hands it over) holding `statements`."""
    iam = boto3.client("iam", **ROOT)
    name = f"{service}-caller"
    trust = {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    document = {"Version": "2012-10-17", "Statement": [trust]}
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(document))["Role"]["Arn"]
    policy = {"Version": "2012-10-17", "Statement": list(statements)}
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    credentials = boto3.client("sts", **ROOT).assume_role(RoleArn=arn, RoleSessionName="fn")["Credentials"]
    return boto3.client(
        service,
        region_name="us-east-1",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def test_organizations_requests_are_authorised_on_the_sar_arns(organization: tuple[Any, SeededOrganization]) -> None:
    _, seeded = organization
    org_id = seeded.organization_id
    root_arn = f"arn:aws:organizations::{HUB}:root/{org_id}/{seeded.root_id}"
    client = hub_role_client(
        "organizations",
        {"Effect": "Allow", "Action": "organizations:ListAccountsForParent", "Resource": root_arn},
        {"Effect": "Allow", "Action": "organizations:ListAccounts", "Resource": "*"},
    )
    assert {a["Id"] for a in client.list_accounts_for_parent(ParentId=seeded.root_id)["Accounts"]} == {
        HUB,
        "333333333333",
    }
    assert len(client.list_accounts()["Accounts"]) == 4
    workloads = seeded.ou_ids[("workloads",)]
    with pytest.raises(ClientError) as raised:
        client.list_accounts_for_parent(ParentId=workloads)
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"
    ou_arn = f"arn:aws:organizations::{HUB}:ou/{org_id}/{workloads}"
    assert f"on resource: {ou_arn}" in raised.value.response["Error"]["Message"]
    with pytest.raises(ClientError, match="AccessDeniedException"):
        client.list_organizational_units_for_parent(ParentId=seeded.root_id)


def test_a_trust_policy_may_require_the_callers_organization(organization: tuple[Any, SeededOrganization]) -> None:
    _, seeded = organization
    member_iam = account_session("111111111111", "us-east-1", ROOT).client("iam")
    role_arn = "arn:aws:iam::111111111111:role/tagpatch-spoke-discovery"
    trusting = {
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": seeded.organization_id}},
    }
    member_iam.create_role(
        RoleName="tagpatch-spoke-discovery",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [trusting]}),
    )
    sts = hub_role_client("sts", {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn})
    assert sts.assume_role(RoleArn=role_arn, RoleSessionName="tagpatch-discovery")["Credentials"]
    other_org = {**trusting, "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-someoneelse"}}}
    member_iam.update_assume_role_policy(
        RoleName="tagpatch-spoke-discovery",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [other_org]}),
    )
    with pytest.raises(ClientError, match="AccessDenied"):
        sts.assume_role(RoleArn=role_arn, RoleSessionName="tagpatch-discovery")


def test_a_scenario_takes_member_accounts_from_its_fleet_file_or_inline(tmp_path: Path) -> None:
    by_file = tmp_path / "by-file.yaml"
    by_file.write_text(f"fleet: {REPO / 'fleets' / 'organization.yaml'}\ncycles: [{{name: first}}]\n")
    listed = [member.id for member in load_scenario(by_file).accounts]
    assert listed == [HUB, "111111111111", "222222222222", "333333333333"]
    inline = tmp_path / "inline.yaml"
    inline.write_text('accounts: [{id: "444444444444", regions: [eu-west-1]}]\ncycles: [{name: first}]\n')
    scenario = load_scenario(inline)
    assert (scenario.fleet, [member.regions for member in scenario.accounts]) == ((), [("eu-west-1",)])
    inline.write_text('accounts: [{id: "444444444444", regions: [eu-west-1], ou: ""}]\ncycles: [{name: first}]\n')
    with pytest.raises(FleetError, match=r"accounts\[0\]\.ou \(line 1\)"):
        load_scenario(inline)


def test_the_organization_root_and_ous_have_ids_a_policy_can_name(
    organization: tuple[Any, SeededOrganization],
) -> None:
    client, seeded = organization
    from tagpatch_local.simulator.organizations import derived_organization_ids, derived_ou_id

    assert (seeded.organization_id, seeded.root_id) == derived_organization_ids(HUB)
    assert client.describe_organization()["Organization"]["Id"] == seeded.organization_id
    assert seeded.ou_ids[("workloads", "prod")] == derived_ou_id(seeded.root_id, ("workloads", "prod"))
    # The ids have Organizations' documented forms: o- and 10, r- and 4, ou-<root's 4>-<8> ([a-z0-9]).
    assert re.fullmatch(r"o-[a-z0-9]{10}", seeded.organization_id)
    assert re.fullmatch(r"r-[a-z0-9]{4}", seeded.root_id)
    assert all(re.fullmatch(rf"ou-{seeded.root_id[2:]}-[a-z0-9]{{8}}", ou) for ou in seeded.ou_ids.values())
    # The ids fleets/organization.yaml's OUs get, as docs/local-runs.md lists them.
    listed = (REPO / "docs" / "local-runs.md").read_text(encoding="utf-8")
    for path in (("workloads",), ("workloads", "prod"), ("retired",)):
        assert f"`{'/'.join(path)}` {derived_ou_id(seeded.root_id, path)}" in listed
    assert f"organization {seeded.organization_id}, root {seeded.root_id}" in listed
