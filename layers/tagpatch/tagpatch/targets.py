"""A target: the one account and Region a patch cycle acts in (docs/decisions.md, "Many accounts and Regions").

The home target is the hub stack's own account and Region, where a function uses its own role; any
other target is reached through the spoke role of the acting step (tagpatch.aws.act_in).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, TypedDict

from tagpatch.errors import InvalidCycleInput

ACCOUNT_ID: Final = re.compile(r"^\d{12}$")
# Every commercial, China and GovCloud Region is spelled like us-east-1, cn-north-1, us-gov-west-1.
REGION: Final = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
TARGET_KEYS: Final = frozenset({"account_id", "region"})
ARN_FIELDS: Final = 7  # arn:partition:lambda:region:account:function:name
SPOKE_ROLE_PREFIX: Final = "tagpatch-spoke-"
SESSION_PREFIX: Final = "tagpatch-"
# What a backup window runs in a member account: spoke/template.yaml's copies of the hub's runbook and
# Automation role, under names fixed so the hub can name them without a lookup.
SPOKE_BACKUP_RUNBOOK: Final = "tagpatch-backup-then-patch"
SPOKE_BACKUP_SNAPSHOT_RUNBOOK: Final = "tagpatch-backup-snapshots-then-patch"
SPOKE_BACKUP_ROLE: Final = "tagpatch-spoke-backup-automation"


class TargetPayload(TypedDict):
    account_id: str
    region: str


@dataclass(frozen=True, order=True)
class Target:
    account_id: str
    region: str

    def to_payload(self) -> TargetPayload:
        return {"account_id": self.account_id, "region": self.region}

    @property
    def label(self) -> str:
        return f"{self.account_id}/{self.region}"

    @classmethod
    def from_payload(cls, value: object, what: str = "target") -> Target:
        """A target as the execution input or the cycle object spells it; a mistake names the key."""
        if not isinstance(value, Mapping):
            raise InvalidCycleInput(
                f'{what} must be an object such as {{"account_id": "123456789012", "region": "eu-west-1"}} '
                f"(got {value!r})"
            )
        keys = set(value)
        if keys != TARGET_KEYS:
            raise InvalidCycleInput(
                f"{what} must have exactly the keys account_id and region (got {', '.join(sorted(map(repr, keys)))})"
            )
        account_id, region = value["account_id"], value["region"]
        if not isinstance(account_id, str) or not ACCOUNT_ID.match(account_id):
            raise InvalidCycleInput(
                f"{what}.account_id {account_id!r} is not an AWS account id (12 digits, as a string)"
            )
        if not isinstance(region, str) or not REGION.match(region):
            raise InvalidCycleInput(f"{what}.region {region!r} is not an AWS Region name such as eu-west-1")
        return cls(account_id, region)


@dataclass(frozen=True)
class Home:
    """Where the function itself runs: its partition, account and Region (from its own ARN)."""

    partition: str
    target: Target

    @classmethod
    def from_function_arn(cls, arn: str) -> Home | None:
        """`arn:<partition>:lambda:<region>:<account>:function:<name>`; None for anything else."""
        parts = arn.split(":")
        if len(parts) < ARN_FIELDS or parts[0] != "arn" or parts[2] != "lambda" or parts[5] != "function":
            return None
        return cls(parts[1], Target(parts[4], parts[3]))


def step_slug(step: str) -> str:
    """A workflow step's name in kebab case: `WindowUpsert` is `window-upsert`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", step).lower()


def spoke_role_name(step: str) -> str:
    """The role a step assumes in a member account (spoke/template.yaml declares one per step)."""
    return f"{SPOKE_ROLE_PREFIX}{step_slug(step)}"


def spoke_role_arn(partition: str, target: Target, step: str) -> str:
    return f"arn:{partition}:iam::{target.account_id}:role/{spoke_role_name(step)}"


def session_name(step: str) -> str:
    """The RoleSessionName, so CloudTrail in the member account names the step that acted."""
    return f"{SESSION_PREFIX}{step_slug(step)}"


def member_key(key: str, member: Target | None) -> str:
    """A hub-side object's key for one target: home's (None) is `key`; a member account and Region's
    carries its name before the extension, so each target keeps its own (state/x.json ->
    state/x-<account>-<region>.json)."""
    if member is None:
        return key
    folder, slash, name = key.rpartition("/")
    stem, dot, extension = name.partition(".")
    return f"{folder}{slash}{stem}-{member.account_id}-{member.region}{dot}{extension}"
