"""The simulated organization: the hub account as its management account, the fleet file's member
accounts, their OUs and their instances in each of their Regions.

Everything goes through boto3 `organizations` as an administrator would set it up (CreateOrganization,
CreateOrganizationalUnit, CreateAccount, MoveAccount, CloseAccount), signed with the management
account's root keys, so ListAccounts, ListAccountsForParent, ListOrganizationalUnitsForParent and
ListChildren answer from moto as AWS does. Only the ids are chosen: the accounts' (a fleet names them),
and the organization's, root's and OUs', derived from the hub's account id and each OU's path so that a
policy's `targets:` can name them (`simulator.organizations`; docs/local-runs.md lists the organization
fleet's). A fleet without `accounts` gets no organization at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tagpatch_local.account_facts import ACCOUNT_ID
from tagpatch_local.clients import account_session
from tagpatch_local.fleet import MemberAccount, seed_fleet
from tagpatch_local.member_stack import MemberStack, StackInstanceFailed


@dataclass(frozen=True)
class SpokeStackSet:
    """The spoke template and the parameters its service-managed StackSet deploys it with."""

    template: Path
    parameters: Mapping[str, str]


@dataclass(frozen=True)
class SeededOrganization:
    """What seeding made: ids the scenarios and tests refer to."""

    organization_id: str
    root_id: str
    ou_ids: Mapping[tuple[str, ...], str]  # OU path from the root -> its id
    instance_ids: Mapping[tuple[str, str], list[str]] = field(default_factory=dict)  # (account, Region) -> ids
    # (account, Region) -> the spoke stack instance's Outputs, or why it failed (and was rolled back)
    spoke_stacks: Mapping[tuple[str, str], Mapping[str, str]] = field(default_factory=dict)
    spoke_failures: Mapping[tuple[str, str], str] = field(default_factory=dict)


def seed_organization(
    organizations: Any,
    accounts: Sequence[MemberAccount],
    signing_keys: Mapping[str, str],
    spoke: SpokeStackSet | None = None,
) -> SeededOrganization:
    """Create the organization with `accounts` as members (in their OUs, suspended ones closed), seed
    each member's instances in each of its Regions, and deploy `spoke` in each Region of every member
    that takes it (`spoke: true`). `organizations` is the management account's client."""
    from tagpatch_local.simulator import organizations as ids  # noqa: PLC0415 - moto loads lazily

    with ids.chosen_organization_ids(*ids.derived_organization_ids(ACCOUNT_ID)):
        organization = organizations.create_organization(FeatureSet="ALL")["Organization"]
    root_id = str(organizations.list_roots()["Roots"][0]["Id"])
    ou_ids: dict[tuple[str, ...], str] = {}
    for account in accounts:
        if account.id == ACCOUNT_ID:
            continue  # the hub's other Regions: it is the management account already
        parent = root_id
        for depth in range(1, len(account.ou) + 1):
            path = account.ou[:depth]
            if path not in ou_ids:
                with ids.chosen_ou_id(ids.derived_ou_id(root_id, path)):
                    created = organizations.create_organizational_unit(ParentId=parent, Name=path[-1])
                ou_ids[path] = str(created["OrganizationalUnit"]["Id"])
            parent = ou_ids[path]
        with ids.chosen_account_id(account.id):
            organizations.create_account(Email=f"aws+{account.id}@example.com", AccountName=account.name)
        if parent != root_id:
            organizations.move_account(AccountId=account.id, SourceParentId=root_id, DestinationParentId=parent)
    instance_ids: dict[tuple[str, str], list[str]] = {}
    for account in accounts:
        for region in account.regions:
            session = account_session(account.id, region, signing_keys)
            instance_ids[(account.id, region)] = seed_fleet(account.instances, region=region, session=session)
    stacks, failures = _deploy_spoke(spoke, accounts, signing_keys) if spoke is not None else ({}, {})
    for account in accounts:
        if account.status == "SUSPENDED":
            # Closing is how an account becomes SUSPENDED in an organization (CloseAccount API reference).
            organizations.close_account(AccountId=account.id)
    return SeededOrganization(str(organization["Id"]), root_id, ou_ids, instance_ids, stacks, failures)


def _deploy_spoke(
    spoke: SpokeStackSet, accounts: Sequence[MemberAccount], signing_keys: Mapping[str, str]
) -> tuple[dict[tuple[str, str], Mapping[str, str]], dict[tuple[str, str], str]]:
    """One stack instance per Region of each member that takes the spoke: their Outputs, and the failures
    (each rolled back), as a StackSet operation reports them."""
    stacks: dict[tuple[str, str], Mapping[str, str]] = {}
    failures: dict[tuple[str, str], str] = {}
    for taker, region in [(account, region) for account in accounts if account.spoke for region in account.regions]:
        member = taker.id
        # A per-account override, as StackSets take one: the account's first Region makes its account-wide roles.
        parameters = {**spoke.parameters, "RolesRegion": taker.regions[0]}
        try:
            stacks[(member, region)] = MemberStack(spoke.template, member, region, parameters, signing_keys).deploy()
        except StackInstanceFailed as failed:
            failures[(member, region)] = str(failed)
    return stacks, failures
