"""The accounts under the policy's organizational units, read from AWS Organizations at run time.

ListAccountsForParent lists the accounts directly under a root or OU only, so nested OUs are followed
with ListOrganizationalUnitsForParent. An account whose State is not ACTIVE (suspended, pending closure,
closed) gets no cycle and is named in the org cycle's summary instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from tagpatch.aws import client, paginate
from tagpatch.org_targets import SkippedAccount

ACTIVE: Final = "ACTIVE"


@dataclass
class OrganizationAccounts:
    active: list[str] = field(default_factory=list)  # in the order listed, each once
    skipped: list[SkippedAccount] = field(default_factory=list)


def account_state(account: dict[str, Any]) -> str:
    """The account's State; Organizations retired Status for it (September 2026), older answers lack State."""
    return str(account.get("State") or account.get("Status") or "UNKNOWN")


def accounts_under(parent_ids: Iterable[str]) -> OrganizationAccounts:
    organizations = client("organizations")
    found = OrganizationAccounts()
    seen: set[str] = set()
    pending = list(parent_ids)
    visited: set[str] = set()
    while pending:
        parent = pending.pop(0)
        if parent in visited:
            continue
        visited.add(parent)
        for account in paginate(organizations.list_accounts_for_parent, "Accounts", ParentId=parent):
            account_id = str(account["Id"])
            if account_id in seen:
                continue
            seen.add(account_id)
            state = account_state(account)
            if state == ACTIVE:
                found.active.append(account_id)
            else:
                found.skipped.append(SkippedAccount(account_id=account_id, state=state, parent_id=parent))
        pending += [
            str(unit["Id"])
            for unit in paginate(
                organizations.list_organizational_units_for_parent, "OrganizationalUnits", ParentId=parent
            )
        ]
    return found
