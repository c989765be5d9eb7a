"""The org cycle's targets: the (account, Region) pairs one hub stack patches, from the policy's `targets:` key.

With no `targets:` the cycle has one target, home: the hub stack's own account and Region, where every
function acts with its own role (docs/decisions.md, "Many accounts and Regions"). Otherwise the accounts
are the ids the policy lists plus every ACTIVE account under the organizational units it lists (nested
OUs followed, read at run time by ListTargets), each crossed with the policy's Regions.

This module is the policy's model of the key, the org cycle's payloads and the pure planning;
tagpatch.organization reads the OUs, tagpatch.org_summary sums up what each target's cycle did.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, TypedDict

from tagpatch.cycle import parse_time
from tagpatch.errors import InvalidCycleInput, InvalidPatchPolicy, shown_key
from tagpatch.targets import ACCOUNT_ID, REGION, Target, TargetPayload

# Organizations' ParentId pattern (botocore's model): an OU, or the organization's root.
PARENT_ID: Final = re.compile(r"^(r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$")
# An inline Map runs at most 40 iterations at once (Step Functions Developer Guide, "Using Map state in
# Inline mode"); the org cycle's Map takes its MaxConcurrency from here.
MAX_CONCURRENCY_LIMIT: Final = 40
DEFAULT_MAX_CONCURRENCY: Final = 10

_TARGET_KEYS: Final = frozenset({"accounts", "organizational_units", "regions", "max_concurrency"})


@dataclass(frozen=True)
class TargetSettings:
    accounts: tuple[str, ...] = ()  # account ids, as listed
    organizational_units: tuple[str, ...] = ()  # OU (or root) ids whose accounts are listed at run time
    regions: tuple[str, ...] = ()  # empty: the hub's Region
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY

    @property
    def names_accounts(self) -> bool:
        """Whether the policy names accounts at all (if not, the targets are the hub's account)."""
        return bool(self.accounts or self.organizational_units)


def cross(accounts: Iterable[str], regions: Iterable[str]) -> list[TargetPayload]:
    """Each account in each Region, accounts in the order given (each once), Regions in the policy's order."""
    region_list = list(dict.fromkeys(regions))
    return [
        TargetPayload(account_id=account, region=region)
        for account in dict.fromkeys(accounts)
        for region in region_list
    ]


def target_label(target: TargetPayload) -> str:
    """How a report or an alert names a target (as tagpatch.targets.Target does)."""
    return Target(target["account_id"], target["region"]).label


# --- parsing (called by tagpatch.policy with its own error factory) -------------------------------

Fail = Callable[[str, str], InvalidPatchPolicy]


def _id_list(value: object, path: str, pattern: re.Pattern[str], one: str, fail: Fail) -> tuple[str, ...]:
    """A non-empty list of ids, each matching `pattern` (described by `one`), none twice."""
    if not isinstance(value, list) or not value:
        raise fail(path, f"must be a non-empty list, each {one} (got {value!r})")
    seen: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not pattern.match(item):
            raise fail(f"{path}[{index}]", f"must be {one} (got {item!r})")
        if item in seen:
            raise fail(f"{path}[{index}]", f"{item} is listed twice")
        seen.append(item)
    return tuple(seen)


def parse_targets(value: object, fail: Fail) -> TargetSettings:
    """The `targets:` key; absent (None) is home alone."""
    if value is None:
        return TargetSettings()
    if not isinstance(value, dict):
        raise fail("targets", f"must be a mapping (got {type(value).__name__})")
    for key in value:
        if key not in _TARGET_KEYS:
            raise fail(f"targets.{shown_key(key)}", f"unknown key; expected one of {', '.join(sorted(_TARGET_KEYS))}")
    raw: dict[str, Any] = value
    accounts = (
        _id_list(raw["accounts"], "targets.accounts", ACCOUNT_ID, "a 12-digit account id", fail)
        if "accounts" in raw
        else ()
    )
    units = (
        _id_list(
            raw["organizational_units"],
            "targets.organizational_units",
            PARENT_ID,
            "an OU id like ou-ab12-cd34ef56 or the root's id like r-ab12",
            fail,
        )
        if "organizational_units" in raw
        else ()
    )
    regions = (
        _id_list(raw["regions"], "targets.regions", REGION, "a Region name like eu-west-1", fail)
        if "regions" in raw
        else ()
    )
    concurrency = raw.get("max_concurrency", DEFAULT_MAX_CONCURRENCY)
    if (
        isinstance(concurrency, bool)
        or not isinstance(concurrency, int)
        or not 1 <= concurrency <= MAX_CONCURRENCY_LIMIT
    ):
        raise fail(
            "targets.max_concurrency",
            f"must be a whole number from 1 to {MAX_CONCURRENCY_LIMIT}, the most an inline Map runs at once "
            f"(got {concurrency!r})",
        )
    return TargetSettings(accounts, units, regions, concurrency)


# --- the org cycle's payloads ------------------------------------------------------------------------


class TargetItem(TypedDict):
    """One Map item: the target, its patch cycle's name, and the target's own part of that cycle's
    input (the Map adds the org input to it, so no item carries a copy)."""

    target: TargetPayload
    name: str
    input: dict[str, Any]


# StartExecution's name: at most 80 characters (Step Functions API reference).
MAX_EXECUTION_NAME: Final = 80


def child_execution_name(org_execution_name: str, target: TargetPayload, home: TargetPayload) -> str:
    """The target's patch cycle is named after the org execution (a name is unique per state machine, so
    home's may be the very same), other targets' with their account and Region after it. A retried start
    with the same name and input is the same execution (StartExecution is idempotent on them)."""
    if target == home:
        return org_execution_name
    suffix = f"-{target['account_id']}-{target['region']}"
    return org_execution_name[: MAX_EXECUTION_NAME - len(suffix)] + suffix


def target_items(targets: Iterable[TargetPayload], home: TargetPayload, org_execution_name: str) -> list[TargetItem]:
    """Each target's cycle: `target` for every target but home (a cycle started without a target acts
    in its own account and Region, as a single-account stack does), merged into the org input by the Map."""
    return [
        TargetItem(
            target=target,
            name=child_execution_name(org_execution_name, target, home),
            input={} if target == home else {"target": target},
        )
        for target in targets
    ]


def child_execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN of the patch cycle's execution `name`: Step Functions names an execution
    arn:<partition>:states:<Region>:<account>:execution:<state machine name>:<execution name>."""
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"


class SkippedAccount(TypedDict):
    """An account under the policy's OUs that is not ACTIVE, so no cycle runs in it."""

    account_id: str
    state: str
    parent_id: str


class OrgRun(TypedDict):
    """The org execution's context (from `$$.Execution`), which its functions receive as `org`."""

    execution_id: str
    execution_name: str
    start_time: str


def org_run(payload: object) -> OrgRun:
    if not isinstance(payload, dict) or not all(isinstance(payload.get(key), str) for key in OrgRun.__annotations__):
        raise InvalidCycleInput("the task payload has no 'org' object; the org state machine must pass $.org")
    return OrgRun(
        execution_id=payload["execution_id"],
        execution_name=payload["execution_name"],
        start_time=payload["start_time"],
    )


def org_artifact_prefix(org: OrgRun) -> str:
    """Where an org execution's own artifacts go: beside the patch cycles' runs/, dated by its start."""
    started = parse_time(org["start_time"], "org.start_time")
    return f"org-runs/{started.year:04d}/{started:%m/%d}/{org['execution_name']}/"


def plan_targets(
    settings: TargetSettings, home: TargetPayload, organization_accounts: Iterable[str] = ()
) -> list[TargetPayload]:
    """The targets: the policy's accounts, then the OUs' ACTIVE accounts, each in each Region (the
    hub's Region when the policy names none); home alone when the policy names no accounts."""
    regions = settings.regions or (home["region"],)
    if not settings.names_accounts:
        return cross([home["account_id"]], regions)
    return cross([*settings.accounts, *organization_accounts], regions)
