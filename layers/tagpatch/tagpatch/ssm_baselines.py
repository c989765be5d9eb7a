"""Patch baselines: resolve the policy's choice per OS, read and change patch group registrations.

A registration has no tags, so what tagpatch registered is kept in a small ledger object in the
artifact bucket; a registration that is not in the ledger is never changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from tagpatch.aws import client, describe_error, error_code, is_transient, paginate, target_state_key
from tagpatch.changes import AppliedChanges, ChangeOutcome, Outcome
from tagpatch.desired import Problem, Registration
from tagpatch.inventory import get_bytes_if_exists, put_json
from tagpatch.observability import tracer
from tagpatch.reconcile import Change, RegistrationState, registration_key

LEDGER_KEY: Final = "state/baseline-registrations.json"
BASELINE_PAGE_SIZE: Final = 100  # DescribePatchBaselines' largest page
PATCH_GROUP_PAGE_SIZE: Final = 100


@dataclass
class BaselineResolver:
    """Turns the policy's `custom:<name>` and `pb-...` into baseline ids, once per OS.

    `aws-default` resolves to no baseline: the OS's patch groups stay unregistered, so the account's
    default baseline for that OS applies. AWS's documentation does not settle whether a patch group
    may be registered with an AWS-managed baseline (docs/decisions.md), so tagpatch never tries.
    """

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
            self._problem(
                operating_system,
                f"the policy leaves {operating_system} on aws-default: its patch groups are not registered, so the "
                f"account's default patch baseline for {operating_system} applies (AWS's predefined baselines "
                "report every patch's compliance level as Unspecified)",
            )
            return None
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
def own_baseline_ids(names: Iterable[str]) -> dict[str, str]:
    """The ids of the account's own patch baselines of these names (a member account's copies of the
    hub's custom baselines, spoke/template.yaml); a name it lacks is left out, so the resolver reports it."""
    wanted = set(names)
    found: dict[str, str] = {}
    for identity in paginate(
        client("ssm").describe_patch_baselines,
        "BaselineIdentities",
        Filters=[{"Key": "OWNER", "Values": ["Self"]}],
        MaxResults=BASELINE_PAGE_SIZE,
    ):
        if identity.get("BaselineName") in wanted:
            found[str(identity["BaselineName"])] = str(identity["BaselineId"])
    return found


def read_registrations(bucket: str) -> RegistrationState:
    state = RegistrationState()
    for mapping in paginate(client("ssm").describe_patch_groups, "Mappings", MaxResults=PATCH_GROUP_PAGE_SIZE):
        identity = mapping.get("BaselineIdentity", {})
        state.actual[(mapping["PatchGroup"], identity.get("OperatingSystem", ""))] = identity.get("BaselineId", "")
    raw = get_bytes_if_exists(bucket, target_state_key(LEDGER_KEY))
    # No ledger only when S3 says so (the first cycle); a denied read fails the state instead.
    ledger = json.loads(raw) if raw is not None else []
    for entry in ledger:
        key = (entry["patch_group"], entry["operating_system"])
        state.ledger[key] = entry["baseline_id"]
        if entry.get("pending"):
            state.pending.add(key)
        if "removing" in entry:
            state.removing[key] = str(entry["removing"])
        if "made_by" in entry:
            state.made_by[key] = (str(entry["made_by"]["run_id"]), str(entry["made_by"]["action"]))
    return state


def ledger_document(
    ledger: Mapping[tuple[str, str], str],
    pending: Iterable[tuple[str, str]] = (),
    made_by: Mapping[tuple[str, str], tuple[str, str]] | None = None,
    removing: Mapping[tuple[str, str], str] | None = None,
) -> list[dict[str, Any]]:
    """The ledger as stored; `pending` entries are about to be registered (intent, not yet confirmed);
    `made_by` names the cycle (run id) and action that made an entry; `removing` the cycle about to
    deregister one."""
    pending = set(pending)
    made_by = made_by or {}
    removing = removing or {}
    return [
        {
            "patch_group": group,
            "operating_system": os_name,
            "baseline_id": baseline_id,
            **({"pending": True} if (group, os_name) in pending else {}),
            **(
                {"made_by": {"run_id": made_by[group, os_name][0], "action": made_by[group, os_name][1]}}
                if (group, os_name) in made_by
                else {}
            ),
            **({"removing": removing[group, os_name]} if (group, os_name) in removing else {}),
        }
        for (group, os_name), baseline_id in sorted(ledger.items())
    ]


def _same_baseline(left: str, right: str) -> bool:
    # An AWS-managed baseline is registered by ARN and may be reported by id, or the other way round.
    return left.rsplit("/", 1)[-1] == right.rsplit("/", 1)[-1]


class RegistrationApplication(AppliedChanges):
    def describe_failures(self) -> str:
        return self.describe_failures_of("registration")


class _Ledger:
    """The registration ledger, written so that it never loses a registration SSM made.

    Every registration is recorded (marked pending) before it is requested, and confirmed after; a
    deregistration is dropped after it is done. A crash between the two leaves an entry that
    DescribePatchGroups settles on the next cycle: it is kept if SSM shows that registration, and
    dropped if not. Entries a definite refusal proves were never made are dropped at once.
    """

    def __init__(self, state: RegistrationState, bucket: str, run_id: str) -> None:
        self.bucket = bucket
        self.run_id = run_id
        # What was stored, and what of it SSM still shows (an unconfirmed or stale entry is not).
        self.stored = dict(state.ledger)
        self.entries = {key: b for key, b in state.ledger.items() if _same_baseline(state.actual.get(key, ""), b)}
        self.made_by = {key: made for key, made in state.made_by.items() if key in self.entries}
        self.stored_made_by = dict(state.made_by)
        self.removing = {key: run for key, run in state.removing.items() if key in self.entries}
        self.stored_removing = dict(state.removing)
        self.pending: set[tuple[str, str]] = set()
        # A mark stored by a save whose follow-up was lost: DescribePatchGroups settled it above, and
        # the next save (at the latest, this invocation's last) writes the ledger without it.
        self.saved_pending = bool(state.pending)

    def intend(
        self,
        registrations: Mapping[tuple[str, str], str],
        action: str = "create",
        removals: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Record what is about to be registered (pending) and deregistered (removing), then save."""
        removals = [key for key in removals if key in self.entries]
        if registrations or removals:
            self.entries.update(registrations)
            self.pending.update(registrations)
            self.made_by.update(dict.fromkeys(registrations, (self.run_id, action)))
            self.removing.update(dict.fromkeys(removals, self.run_id))
            for key in registrations:
                self.removing.pop(key, None)
            self.save()

    def confirm(self, key: tuple[str, str]) -> None:
        self.pending.discard(key)

    def drop(self, key: tuple[str, str]) -> None:
        self.entries.pop(key, None)
        self.made_by.pop(key, None)
        self.removing.pop(key, None)
        self.pending.discard(key)

    def save(self) -> None:
        put_json(
            self.bucket,
            target_state_key(LEDGER_KEY),
            ledger_document(self.entries, self.pending, self.made_by, self.removing),
        )
        self.saved_pending = bool(self.pending)
        self.stored = dict(self.entries)
        self.stored_made_by = dict(self.made_by)
        self.stored_removing = dict(self.removing)

    def save_if_changed(self) -> None:
        # A rerun with nothing to change writes nothing.
        changed = (
            self.entries != self.stored or self.made_by != self.stored_made_by or self.removing != self.stored_removing
        )
        if changed or self.saved_pending != bool(self.pending):
            self.save()


def _registration_key(change: Change) -> tuple[str, str]:
    key = registration_key(change)
    assert key is not None, "a registration change has a before or an after"
    return key


@tracer.capture_method
def apply_registrations(
    changes: Sequence[Change], state: RegistrationState, bucket: str, run_id: str
) -> RegistrationApplication:
    """Register, move and deregister, safely more than once, keeping the ledger in step with SSM.

    A registration SSM refuses is reported and the others still go ahead. Throttling or a 5xx that
    outlives botocore's retries stops here (its outcome is unknown, so its ledger entry stays pending)
    and the workflow retries the state, which plans again from what SSM then shows.
    """
    ledger = _Ledger(state, bucket, run_id)
    ledger.intend(
        {_registration_key(c): str((c.after or {})["baseline_id"]) for c in changes if c.action == "create"},
        removals=[_registration_key(c) for c in changes if c.action in ("update", "delete")],
    )
    outcomes: list[ChangeOutcome] = []
    retryable = False
    try:
        for index, change in enumerate(changes):
            try:
                outcomes.append(ChangeOutcome.of(change, _apply_registration(change, ledger)))
            except (ClientError, BotoCoreError) as error:
                outcomes.append(ChangeOutcome.of(change, "failed", error=describe_error(error)))
                key = _registration_key(change)
                if is_transient(error):
                    retryable = True
                    outcomes.extend(ChangeOutcome.of(later, "not_attempted") for later in changes[index + 1 :])
                    break
                if key in ledger.pending:
                    ledger.drop(key)  # refused: SSM did not make it
    finally:
        ledger.save_if_changed()
    return RegistrationApplication(tuple(outcomes), retryable)


def _apply_registration(change: Change, ledger: _Ledger) -> Outcome:
    ssm = client("ssm")
    key = _registration_key(change)
    outcome: Outcome = "applied"
    if change.action in ("update", "delete"):
        assert change.before is not None
        try:
            ssm.deregister_patch_baseline_for_patch_group(BaselineId=change.before["baseline_id"], PatchGroup=key[0])
        except ClientError as error:
            if error_code(error) != "DoesNotExistException":
                raise
            outcome = "already_done"  # an earlier attempt deregistered it
        ledger.drop(key)
    if change.action in ("create", "update"):
        assert change.after is not None
        baseline_id = str(change.after["baseline_id"])
        if change.action == "update":
            ledger.intend({key: baseline_id}, "update")
        outcome = _register(key, baseline_id)
        ledger.confirm(key)
    return outcome


def _register(key: tuple[str, str], baseline_id: str) -> Outcome:
    ssm = client("ssm")
    try:
        ssm.register_patch_baseline_for_patch_group(BaselineId=baseline_id, PatchGroup=key[0])
    except ClientError as error:
        if error_code(error) != "AlreadyExistsException":
            raise
        # Done already if an earlier attempt (whose answer was lost) registered this very baseline;
        # a registration with another baseline is a real conflict.
        registered = ssm.get_patch_baseline_for_patch_group(PatchGroup=key[0], OperatingSystem=key[1])
        if not _same_baseline(str(registered.get("BaselineId", "")), baseline_id):
            raise
        return "already_done"
    return "applied"
