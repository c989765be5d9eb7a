"""The hub assumes spoke roles only inside its organization (#26, data perimeter): deployed with its
OrganizationId, a policy naming an account outside the organization, one that made a role of the spoke's
public name trusting the hub, fails that target, named in the org cycle's one alert, and does nothing
there; the organization's members still converge."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tagpatch_local.account_facts import ACCOUNT_ID
from tagpatch_local.clients import account_session
from tagpatch_local.fleet import MemberAccount, seed_fleet
from tagpatch_local.member_stack import MemberStack
from tagpatch_local.runner import SimulatedAccount
from tagpatch_local.simulator.organizations import derived_organization_ids

from .support import REPO, instance, topic_queue
from .test_org_cycle import policy_with_targets

REGION = "eu-west-1"
PAYMENTS = MemberAccount(
    "111111111111", "payments", (REGION,), instances=(instance("web-prod", "sun-0200", name="pay-web-01"),)
)
# Not in the organization, yet it deployed the (public) spoke template trusting this hub.
STRANGER = "999988887777"


@pytest.fixture(scope="module")
def perimeter_cycle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimulatedAccount, Any, list[Any]]]:
    organization_id, _ = derived_organization_ids(ACCOUNT_ID)
    with SimulatedAccount(REPO / "template.yaml", parameter_overrides={"OrganizationId": organization_id}) as account:
        account.seed_accounts((PAYMENTS,))
        stranger = account_session(STRANGER, REGION, account.signing_keys)
        seed_fleet((instance("web-prod", "sun-0200", name="stranger-web-01"),), region=REGION, session=stranger)
        MemberStack(
            REPO / "spoke" / "template.yaml",
            STRANGER,
            REGION,
            {"HubAccountId": ACCOUNT_ID, "HubStackName": account.stack_name, "RolesRegion": REGION},
            account.signing_keys,
        ).deploy()
        folder = tmp_path_factory.mktemp("perimeter")
        targets = {"accounts": [PAYMENTS.id, STRANGER], "regions": [REGION], "max_concurrency": 1}
        account.use_policy(policy_with_targets(folder, targets))
        alerts = topic_queue(account)
        result = account.run_org_cycle({})
        yield account, result, [m for m in alerts() if "org cycle" in m["Subject"]]


def test_a_target_outside_the_organization_is_refused_and_named_in_the_one_alert(
    perimeter_cycle: tuple[SimulatedAccount, Any, list[Any]],
) -> None:
    _, result, messages = perimeter_cycle
    assert result.status == "FAILED"
    by_account = {item["target"]["account_id"]: item for item in result.targets}
    assert by_account[STRANGER]["status"] == "FAILED"
    assert len(messages) == 1
    (message,) = messages
    assert message["Subject"] == "tagpatch org cycle: 1 of 2 targets failed"
    assert (
        f"- {STRANGER}/{REGION}: its patch cycle ended FAILED in state Discovery: TargetAccessDenied"
        in (message["Message"])
    )
    assert f"arn:aws:iam::{STRANGER}:role/tagpatch-spoke-discovery" in message["Message"]


def windows_in(account: SimulatedAccount, account_id: str) -> list[dict[str, Any]]:
    ssm = account_session(account_id, REGION, account.signing_keys).client("ssm")
    return list(ssm.describe_maintenance_windows()["WindowIdentities"])


def test_nothing_is_done_outside_the_organization_while_its_member_converges(
    perimeter_cycle: tuple[SimulatedAccount, Any, list[Any]],
) -> None:
    account, result, _ = perimeter_cycle
    by_account = {item["target"]["account_id"]: item for item in result.targets}
    assert by_account[PAYMENTS.id]["status"] == "SUCCEEDED"
    assert windows_in(account, PAYMENTS.id)
    assert windows_in(account, STRANGER) == []


def spoke_role_grants(account: SimulatedAccount) -> list[dict[str, Any]]:
    """Every function role's AssumeSpokeRole statement, as deployed."""
    iam = account.client("iam")
    grants: list[dict[str, Any]] = []
    for role in iam.list_roles()["Roles"]:
        for name in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]:
            document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"]
            grants.extend(s for s in document["Statement"] if s.get("Sid") == "AssumeSpokeRole")
    return grants


def test_with_the_organization_id_every_spoke_role_grant_is_held_to_the_organization(
    perimeter_cycle: tuple[SimulatedAccount, Any, list[Any]],
) -> None:
    account, _, _ = perimeter_cycle
    organization_id, _ = derived_organization_ids(ACCOUNT_ID)
    grants = spoke_role_grants(account)
    assert len(grants) == 7  # one per step that acts in targets
    assert all(grant["Condition"] == {"StringEquals": {"aws:ResourceOrgID": organization_id}} for grant in grants)
