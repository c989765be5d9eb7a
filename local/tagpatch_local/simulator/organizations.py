"""AWS Organizations in the simulated organization: accounts with the ids a fleet names, and the ARNs
IAM authorises Organizations' requests on.

moto implements Organizations (CreateOrganization, CreateAccount, OUs, MoveAccount, CloseAccount and the
listings), but draws account, organization, root and OU ids at random, as AWS does. A fleet file names
its accounts by id and a policy names OUs by id, so `chosen_account_id` makes moto's CreateAccount give
the next account the id asked for, and the organization, its root and its OUs get ids derived from the
management account and the OU's path (`derived_organization_ids`, `derived_ou_id`). Everything else
CreateAccount does (the OrganizationAccountAccessRole trusting the management account, the default SCP
and RCP, the member's link to its organization) is moto's own.

The SAR scopes some Organizations actions to an `account`, `organizationalunit` or `root` ARN, which
names the management account and the organization id (`arn:${Partition}:organizations::${Account}:
ou/o-${OrganizationId}/ou-${OrganizationalUnitId}`); the listings of accounts have no resource-level
permissions. `resource_arns` builds those ARNs from a request's ids for `iam.authorizations`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

from moto.organizations import utils as organizations_utils
from moto.organizations.models import organizations_backends

from tagpatch_local.simulator.core import SimulatorError

PARTITION: Final = "aws"
# Request parameters that name an organization entity by id (Organizations API Reference).
_ID_PARAMETERS: Final = ("ParentId", "ChildId", "OrganizationalUnitId", "AccountId")


@contextmanager
def _chosen(generator: str, value: str) -> Iterator[None]:
    """moto's id generator `generator` answers `value` meanwhile, instead of a random id."""
    drawn = getattr(organizations_utils, generator)
    setattr(organizations_utils, generator, lambda *_: value)
    try:
        yield
    finally:
        setattr(organizations_utils, generator, drawn)


@contextmanager
def chosen_account_id(account_id: str) -> Iterator[None]:
    """The next account moto's CreateAccount makes gets `account_id` instead of a random one."""
    if not (len(account_id) == 12 and account_id.isdigit()):
        raise SimulatorError(f"an AWS account id is 12 digits, got {account_id!r}")
    with _chosen("make_random_account_id", account_id):
        yield


def _digest(text: str, size: int) -> str:
    # Lowercase hex is within the ids' [a-z0-9] character set (Organizations API Reference patterns).
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def derived_organization_ids(management_account: str) -> tuple[str, str]:
    """The organization id (o- and 10 characters) and root id (r- and 4) the simulated organization of
    `management_account` gets: drawn at random by AWS, derived from the account here so that policies
    and scenarios can name them."""
    return f"o-{_digest(f'organization/{management_account}', 10)}", f"r-{_digest(f'root/{management_account}', 4)}"


def derived_ou_id(root_id: str, path: tuple[str, ...]) -> str:
    """The id of the OU at `path` (names from the root): ou-<the root's 4 characters>-<8 characters>."""
    return f"ou-{root_id.removeprefix('r-')}-{_digest('/'.join(path), 8)}"


@contextmanager
def chosen_organization_ids(organization_id: str, root_id: str) -> Iterator[None]:
    """CreateOrganization meanwhile makes the organization `organization_id` with the root `root_id`."""
    with _chosen("make_random_org_id", organization_id), _chosen("make_random_root_id", root_id):
        yield


@contextmanager
def chosen_ou_id(ou_id: str) -> Iterator[None]:
    """The next OU CreateOrganizationalUnit makes gets `ou_id`."""
    with _chosen("make_random_ou_id", ou_id):
        yield


def management_account(account: str) -> str | None:
    """The management account of the organization `account` is in (itself if it manages one)."""
    if account in organizations_backends.master_accounts:
        return organizations_backends.master_accounts[account][0]
    if account in organizations_backends and organizations_backends[account][PARTITION].org is not None:
        return account
    return None


def _organization(account: str) -> tuple[str, Any] | None:
    management = management_account(account)
    if management is None:
        return None
    return management, organizations_backends[management][PARTITION].org


def resource_arns(resource_type: str, account: str, params: Mapping[str, Any]) -> list[str]:
    """The ARNs of the SAR `resource_type` (account, organizationalunit, root) a request from `account`
    names by id; none when the caller's account is in no organization (Organizations then refuses it)."""
    found = _organization(account)
    if found is None:
        return []
    management, organization = found
    prefix = f"arn:{PARTITION}:organizations::{management}:"
    arns = []
    for parameter in _ID_PARAMETERS:
        value = params.get(parameter)
        if not isinstance(value, str) or not value:
            continue
        if resource_type == "organizationalunit" and value.startswith("ou-"):
            arns.append(f"{prefix}ou/{organization.id}/{value}")
        elif resource_type == "root" and value.startswith("r-"):
            arns.append(f"{prefix}root/{organization.id}/{value}")
        elif resource_type == "account" and value.isdigit():
            arns.append(f"{prefix}account/{organization.id}/{value}")
    return arns
