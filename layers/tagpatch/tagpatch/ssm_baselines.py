"""Patch baselines: resolve the policy's choice per OS, read and change patch group registrations.

A registration has no tags, so what tagpatch registered is kept in a small ledger object in the
artifact bucket; a registration that is not in the ledger is never changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.exceptions import ClientError

from tagpatch.aws import client, error_code, paginate
from tagpatch.desired import Problem, Registration
from tagpatch.inventory import get_bytes_if_exists, put_json
from tagpatch.observability import tracer
from tagpatch.reconcile import Change, RegistrationState, write_counts

LEDGER_KEY: Final = "state/baseline-registrations.json"
PATCH_GROUP_PAGE_SIZE: Final = 100


@dataclass
class BaselineResolver:
    """Turns the policy's `aws-default`, `custom:<name>` and `pb-...` into baseline ids, once per OS."""

    custom_ids: Mapping[str, str]
    resolved: dict[tuple[str, str], str | None] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def baseline_id(self, operating_system: str, choice: str) -> str | None:
        key = (operating_system, choice)
        if key not in self.resolved:
            self.resolved[key] = self._resolve(operating_system, choice)
        return self.resolved[key]

    def _resolve(self, operating_system: str, choice: str) -> str | None:
        if choice == "aws-default":
            return self._aws_default(operating_system)
        if choice.startswith("custom:"):
            name = choice.removeprefix("custom:")
            baseline_id = self.custom_ids.get(name)
            if baseline_id is None:
                self._problem(
                    operating_system,
                    f"the policy maps {operating_system} to custom baseline {name!r}, "
                    f"which this stack does not create (it creates: {', '.join(sorted(self.custom_ids)) or 'none'})",
                )
            return baseline_id
        return self._existing(operating_system, choice)

    def _aws_default(self, operating_system: str) -> str | None:
        identities = client("ssm").describe_patch_baselines(
            Filters=[
                {"Key": "OWNER", "Values": ["AWS"]},
                {"Key": "OPERATING_SYSTEM", "Values": [operating_system]},
            ],
            MaxResults=100,
        )["BaselineIdentities"]
        defaults = [i for i in identities if i.get("BaselineName", "").endswith("DefaultPatchBaseline")]
        if not defaults:
            self._problem(operating_system, f"no AWS-managed default patch baseline exists for {operating_system}")
            return None
        return str(sorted(defaults, key=lambda i: i["BaselineName"])[0]["BaselineId"])

    def _existing(self, operating_system: str, baseline_id: str) -> str | None:
        try:
            baseline = client("ssm").get_patch_baseline(BaselineId=baseline_id)
        except ClientError as error:
            if error_code(error) in {"DoesNotExistException", "InvalidResourceId"}:
                self._problem(
                    operating_system,
                    f"the policy maps {operating_system} to baseline {baseline_id}, "
                    "which does not exist in this account and Region",
                )
                return None
            raise
        if baseline.get("OperatingSystem") != operating_system:
            self._problem(
                operating_system,
                f"the policy maps {operating_system} to baseline {baseline_id}, which is "
                f"for {baseline.get('OperatingSystem')}",
            )
            return None
        return baseline_id

    def _problem(self, operating_system: str, reason: str) -> None:
        self.problems.append(Problem("registration", operating_system, reason))


def desired_registrations(
    registrations: Iterable[Registration], resolver: BaselineResolver
) -> dict[tuple[str, str], str]:
    desired = {}
    for registration in registrations:
        baseline_id = resolver.baseline_id(registration.operating_system, registration.baseline)
        if baseline_id is not None:
            desired[(registration.patch_group, registration.operating_system)] = baseline_id
    return desired


@tracer.capture_method
def read_registrations(bucket: str) -> RegistrationState:
    state = RegistrationState()
    for mapping in paginate(client("ssm").describe_patch_groups, "Mappings", MaxResults=PATCH_GROUP_PAGE_SIZE):
        identity = mapping.get("BaselineIdentity", {})
        state.actual[(mapping["PatchGroup"], identity.get("OperatingSystem", ""))] = identity.get("BaselineId", "")
    raw = get_bytes_if_exists(bucket, LEDGER_KEY)
    # No ledger only when S3 says so (the first cycle); a denied read fails the state instead.
    ledger = json.loads(raw) if raw is not None else []
    for entry in ledger:
        state.ledger[(entry["patch_group"], entry["operating_system"])] = entry["baseline_id"]
    return state


def ledger_document(ledger: Mapping[tuple[str, str], str]) -> list[dict[str, Any]]:
    return [
        {"patch_group": group, "operating_system": os_name, "baseline_id": baseline_id}
        for (group, os_name), baseline_id in sorted(ledger.items())
    ]


@tracer.capture_method
def apply_registrations(changes: Sequence[Change], state: RegistrationState, bucket: str) -> dict[str, int]:
    """Register, move and deregister; then save the ledger, only if it changed."""
    ssm = client("ssm")
    ledger = dict(state.ledger)
    for change in changes:
        before, after = change.before or {}, change.after or {}
        key = (str((after or before)["patch_group"]), str((after or before)["operating_system"]))
        if change.action in ("update", "delete"):
            ssm.deregister_patch_baseline_for_patch_group(BaselineId=before["baseline_id"], PatchGroup=key[0])
            ledger.pop(key, None)
        if change.action in ("create", "update"):
            ssm.register_patch_baseline_for_patch_group(BaselineId=after["baseline_id"], PatchGroup=key[0])
            ledger[key] = str(after["baseline_id"])
    if ledger != state.ledger:
        put_json(bucket, LEDGER_KEY, ledger_document(ledger))
    return write_counts(changes)
