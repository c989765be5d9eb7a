"""A cycle whose target is a member account acts there through the spoke's roles (#26): it finds the
member's instances and makes its windows in the member's own account and Region, each step signing as
its own spoke role with its own session name, and a member without the spoke fails its cycle, named."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tagpatch.export import latest_key
from tagpatch.targets import Target
from tagpatch_local.account_facts import ROOT_CREDENTIALS
from tagpatch_local.clients import account_session
from tagpatch_local.fleet import MemberAccount
from tagpatch_local.organization import SeededOrganization
from tagpatch_local.runner import SimulatedAccount
from tagpatch_local.simulator import iam

from .support import instance, run_ok
from .test_iam_policies import MEMBER_TARGET_SIDS, write_policy
from .test_org_cycle import policy_with_targets
from .test_org_perimeter import spoke_role_grants

REPO = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"  # not the hub's Region, so a call that stayed home would miss the member's fleet
PAYMENTS = MemberAccount(
    "111111111111",
    "payments",
    (REGION,),
    instances=(
        instance("web-prod", "sun-0200", name="pay-web-01"),
        instance("web-prod", "sun-0200", name="pay-web-02"),
    ),
)
NO_SPOKE = MemberAccount(
    "222222222222",
    "analytics",
    (REGION,),
    instances=(instance("web-prod", "sun-0200", name="ana-web-01"),),
    spoke=False,
)
SHOP = MemberAccount(
    "333344445555", "shop", (REGION,), instances=(instance("web-prod", "sun-0200", name="shop-web-01"),)
)
TARGET = {"account_id": PAYMENTS.id, "region": REGION}


@pytest.fixture(scope="module")
def organization() -> Iterator[tuple[SimulatedAccount, SeededOrganization]]:
    with SimulatedAccount(REPO / "template.yaml") as account:
        yield account, account.seed_accounts((PAYMENTS, NO_SPOKE, SHOP))


def with_rollout(policy: dict[str, Any]) -> None:
    # Rollout waves: TagValidation reads the waves' state, PatchMonitoring keeps it (each target its own).
    policy["rollout"] = {
        "waves": [{"name": "first", "patch_groups": ["web-prod"]}, {"name": "rest", "patch_groups": "rest"}]
    }


@pytest.fixture(scope="module")
def member_cycle(
    organization: tuple[SimulatedAccount, SeededOrganization], tmp_path_factory: pytest.TempPathFactory
) -> list[tuple[str, iam.Authorization]]:
    """Apply cycles in payments a week apart, with rollout waves and an exception due its notice (so every
    per-target state object is read and written); the simulated IAM's allowed checks it made."""
    account, _ = organization
    folder = tmp_path_factory.mktemp("member-target")
    account.use_policy(write_policy(folder / "policy.yaml", with_rollout))
    expires = (account.now() + timedelta(days=10)).date().isoformat()
    exceptions = folder / "exceptions.yaml"
    exceptions.write_text(
        yaml.safe_dump(
            {
                "settings": {"notice_days": [14]},
                "exceptions": [{"name": "pay-web-02", "reason": "vendor", "approved_by": "gov", "expires": expires}],
            }
        )
    )
    account.use_exceptions(exceptions)
    iam.reset_allowed_checks()
    run_ok(account, {"target": TARGET})
    # A week on the first wave's window has run: the next cycle keeps the waves' runs, the one after reads them.
    account.advance(timedelta(days=8))
    run_ok(account, {"target": TARGET})
    run_ok(account, {"target": TARGET})
    return iam.allowed_checks()


def member_client(service: str, account_id: str = PAYMENTS.id) -> Any:
    return account_session(account_id, REGION, ROOT_CREDENTIALS).client(service)


def test_the_member_s_windows_are_made_in_its_own_account_and_region(
    organization: tuple[SimulatedAccount, SeededOrganization], member_cycle: list[tuple[str, iam.Authorization]]
) -> None:
    account, _ = organization
    windows = member_client("ssm").describe_maintenance_windows()["WindowIdentities"]
    assert [window["Name"] for window in windows] == ["tagpatch-sun-0200"]
    assert account.client("ssm").describe_maintenance_windows()["WindowIdentities"] == []  # the hub's own: none
    assert member_client("ssm", NO_SPOKE.id).describe_maintenance_windows()["WindowIdentities"] == []


def test_the_member_s_instances_are_its_snapshot_s_rows_with_its_account_and_region(
    organization: tuple[SimulatedAccount, SeededOrganization], member_cycle: list[tuple[str, iam.Authorization]]
) -> None:
    account, seeded = organization
    key = latest_key(Target(PAYMENTS.id, REGION))
    body = account.client("s3").get_object(Bucket=account.artifact_bucket, Key=key)["Body"].read()
    rows = [json.loads(line) for line in gzip.decompress(body).decode().splitlines()]
    assert sorted(row["instance_id"] for row in rows) == sorted(seeded.instance_ids[(PAYMENTS.id, REGION)])
    assert {(row["account_id"], row["region"]) for row in rows} == {(PAYMENTS.id, REGION)}


def test_each_step_assumes_its_own_spoke_role_with_its_session_name_and_acts_as_it(
    organization: tuple[SimulatedAccount, SeededOrganization], member_cycle: list[tuple[str, iam.Authorization]]
) -> None:
    account, _ = organization
    assumed = {
        (role, check.resource, check.context.get("sts:RoleSessionName"))
        for role, check in member_cycle
        if check.action == "sts:AssumeRole"
    }
    function_role = {
        step: account.role_arn(f"{step}Function").rsplit("/", 1)[1] for step in ("Discovery", "ApplyWindowChanges")
    }
    assert (
        function_role["Discovery"],
        f"arn:aws:iam::{PAYMENTS.id}:role/tagpatch-spoke-discovery",
        ("tagpatch-discovery",),
    ) in assumed
    assert (
        function_role["ApplyWindowChanges"],
        f"arn:aws:iam::{PAYMENTS.id}:role/tagpatch-spoke-apply-window-changes",
        ("tagpatch-apply-window-changes",),
    ) in assumed
    # Every AssumeRole named its own step's role and session, and only payments' roles.
    for _, resource, session in assumed:
        step = resource.rsplit("/tagpatch-spoke-", 1)[1]
        assert resource.startswith(f"arn:aws:iam::{PAYMENTS.id}:role/")
        assert session == (f"tagpatch-{step}",)
    acted = {(role, check.action) for role, check in member_cycle}
    assert ("tagpatch-spoke-discovery", "ec2:DescribeInstances") in acted
    assert ("tagpatch-spoke-apply-window-changes", "ssm:CreateMaintenanceWindow") in acted
    # The window was made by the spoke role, on the member's own resources.
    created = [check for role, check in member_cycle if check.action == "ssm:AddTagsToResource"]
    assert created
    assert all(f":{REGION}:{PAYMENTS.id}:" in check.resource for check in created)


def test_a_member_without_the_spoke_fails_its_cycle_naming_the_refusal(
    organization: tuple[SimulatedAccount, SeededOrganization],
) -> None:
    account, _ = organization
    result = account.run_cycle({"target": {"account_id": NO_SPOKE.id, "region": REGION}})
    assert result.status == "FAILED"
    told = f"{result.error} {result.cause}"
    assert "TargetAccessDenied" in told
    assert "AccessDenied" in told
    assert f"arn:aws:iam::{NO_SPOKE.id}:role/tagpatch-spoke-discovery" in told


def test_the_hub_s_member_only_grants_are_each_used_by_a_member_s_cycle(
    organization: tuple[SimulatedAccount, SeededOrganization], member_cycle: list[tuple[str, iam.Authorization]]
) -> None:
    # test_iam_policies' single-account cycles cannot use these; a member's cycle uses every resource of each.
    account, _ = organization
    client = account.client("iam")
    unused = []
    for function in account.template.functions():
        if not account.enabled(function):
            continue
        role = account.role_arn(function).rsplit("/", 1)[1]
        checks = [check for name, check in member_cycle if name == role]
        for policy_name in client.list_role_policies(RoleName=role)["PolicyNames"]:
            document = client.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
            for statement in document["Statement"]:
                if statement.get("Sid") not in MEMBER_TARGET_SIDS:
                    continue
                resources = (
                    statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                )
                for resource in resources:
                    narrowed = {**statement, "Resource": resource}
                    if not any(iam.statement_applies(narrowed, check) for check in checks):
                        unused.append((function, statement["Sid"], resource))
    assert unused == [], "\n".join(map(str, unused))


def test_two_targets_cycles_run_side_by_side_each_holding_its_own_lease(
    organization: tuple[SimulatedAccount, SeededOrganization],
    member_cycle: list[tuple[str, iam.Authorization]],
    tmp_path: Path,
) -> None:
    account, _ = organization
    account.use_policy(
        policy_with_targets(tmp_path, {"accounts": [PAYMENTS.id, SHOP.id], "regions": [REGION], "max_concurrency": 2})
    )
    result = account.run_org_cycle({})
    assert result.status == "SUCCEEDED", result.targets
    assert {key: child.status for key, child in result.children.items()} == {
        f"{PAYMENTS.id}/{REGION}": "SUCCEEDED",
        f"{SHOP.id}/{REGION}": "SUCCEEDED",
    }
    # They ran at once: the younger's PrepareCycle saw the older running, asked its target, and went on.
    described = [
        child.calls_by_function["PrepareCycleFunction"]["states:DescribeExecution"]
        for child in result.children.values()
    ]
    assert sum(described) >= 1  # each target's cycle has its own functions' calls
    listed = account.client("s3").list_objects_v2(Bucket=account.artifact_bucket, Prefix="locks/")
    assert listed.get("KeyCount", 0) == 0  # each released its own lease
    windows = member_client("ssm", SHOP.id).describe_maintenance_windows()["WindowIdentities"]
    assert [window["Name"] for window in windows] == ["tagpatch-sun-0200"]


def test_without_an_organization_id_the_spoke_role_grants_carry_no_condition(
    organization: tuple[SimulatedAccount, SeededOrganization],
) -> None:
    # This hub is deployed without OrganizationId (test_org_perimeter has the one with it).
    account, _ = organization
    grants = spoke_role_grants(account)
    assert len(grants) == 7  # one per step that acts in targets
    assert all("Condition" not in grant for grant in grants)
