"""The patch scan: one State Manager association, owned by tagpatch, that runs AWS-RunPatchBaseline with
Operation=Scan on the policy's schedule (docs/decisions.md says why an association, not a window).

`desired_scan` and `plan_scan` are pure; `read_scan` and `apply_scan` talk to SSM. The association
carries the `tagpatch:managed=true` tag, as the windows do: one without it is someone else's, and
tagpatch never changes it, whatever its name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from tagpatch.aws import client, describe_error, error_code, is_transient, paginate
from tagpatch.changes import AppliedChanges, ChangeOutcome, Outcome
from tagpatch.desired import MANAGED_TAG_KEY, MANAGED_TAG_VALUE
from tagpatch.observability import tracer
from tagpatch.policy import ScanSettings
from tagpatch.reconcile import PATCH_DOCUMENT, Action, Change, Plan
from tagpatch.tags import PATCH_GROUP_KEYS

SCAN_ASSOCIATION_NAME: Final = "tagpatch-patch-scan"
# A scan only compares installed patches with the baseline: it never installs or reboots.
SCAN_PARAMETERS: Final[Mapping[str, tuple[str, ...]]] = {"Operation": ("Scan",), "RebootOption": ("NoReboot",)}
SCAN_MAX_CONCURRENCY: Final = "10%"
# One instance's failed scan must not stop the others' (MaxErrors would cancel the rest).
SCAN_MAX_ERRORS: Final = "100%"
ASSOCIATION_PAGE_SIZE: Final = 50

Targets = tuple[tuple[str, tuple[str, ...]], ...]  # (Key, Values), as SSM takes them


def scan_targets(settings: ScanSettings) -> Targets:
    """SSM targets for the instances the policy's scan covers (managed nodes only, by SSM's own rule)."""
    if settings.covers == "all-managed":
        return (("InstanceIds", ("*",)),)
    # Either patch group key, whatever its value and whatever the instance's window tag says.
    return (("tag-key", PATCH_GROUP_KEYS),)


@dataclass(frozen=True)
class ScanAssociation:
    """The association's settings that tagpatch decides (what a plan compares)."""

    schedule: str
    targets: Targets
    parameters: tuple[tuple[str, tuple[str, ...]], ...] = tuple(SCAN_PARAMETERS.items())
    document: str = PATCH_DOCUMENT
    max_concurrency: str = SCAN_MAX_CONCURRENCY
    max_errors: str = SCAN_MAX_ERRORS

    def to_json(self) -> dict[str, Any]:
        return {
            "document": self.document,
            "parameters": {key: list(values) for key, values in self.parameters},
            "schedule": self.schedule,
            "targets": [{"Key": key, "Values": list(values)} for key, values in self.targets],
            "max_concurrency": self.max_concurrency,
            "max_errors": self.max_errors,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScanAssociation:
        return cls(
            schedule=str(data["schedule"]),
            targets=tuple((str(t["Key"]), tuple(str(v) for v in t["Values"])) for t in data["targets"]),
            parameters=tuple((str(k), tuple(str(v) for v in vs)) for k, vs in dict(data["parameters"]).items()),
            document=str(data["document"]),
            max_concurrency=str(data["max_concurrency"]),
            max_errors=str(data["max_errors"]),
        )

    def request(self) -> dict[str, Any]:
        """The members CreateAssociation and UpdateAssociation take (an update overwrites all of them)."""
        return {
            "AssociationName": SCAN_ASSOCIATION_NAME,
            "Parameters": {key: list(values) for key, values in self.parameters},
            "Targets": [{"Key": key, "Values": list(values)} for key, values in self.targets],
            "ScheduleExpression": self.schedule,
            "MaxConcurrency": self.max_concurrency,
            "MaxErrors": self.max_errors,
        }


@dataclass(frozen=True)
class ActualScan:
    """An association named like tagpatch's scan and tagged as tagpatch's, as SSM describes it."""

    association_id: str
    settings: ScanAssociation


def has_instances_to_scan(settings: ScanSettings, lines: Iterable[Mapping[str, Any]]) -> bool:
    """Whether the fleet (TagValidation's lines, the whole account) has an instance the scan covers."""
    if settings.covers == "all-managed":
        return any(line.get("ping_status") for line in lines)  # registered with SSM
    return any(line.get("patch_group_key") or line.get("patch_group") for line in lines)


def desired_scan(settings: ScanSettings, lines: Iterable[Mapping[str, Any]]) -> ScanAssociation | None:
    """The scan the policy asks for; None when `scan.enabled` is false or the fleet has nothing it
    covers (an account without patch groups needs no scan, so a plan there has nothing to build)."""
    if not settings.enabled or not has_instances_to_scan(settings, lines):
        return None
    return ScanAssociation(schedule=settings.schedule, targets=scan_targets(settings))


def plan_scan(desired: ScanAssociation | None, owned: Sequence[ActualScan]) -> Plan:
    """Create, update or delete tagpatch's one scan association; `owned` are the ones it tagged."""
    name = SCAN_ASSOCIATION_NAME
    changes: list[Change] = []
    # Two owned (a create whose answer was lost, retried by hand): keep the first, as with windows.
    ordered = sorted(owned, key=lambda found: found.association_id)
    keep = ordered[0] if ordered else None
    for surplus in ordered[1:]:
        changes.append(
            Change("scan", "delete", name, None, surplus.settings.to_json(), None, resource_id=surplus.association_id)
        )
    after = desired.to_json() if desired is not None else None
    if keep is None:
        if desired is not None:
            changes.append(Change("scan", "create", name, None, None, after))
    elif desired is None:
        changes.append(
            Change("scan", "delete", name, None, keep.settings.to_json(), None, resource_id=keep.association_id)
        )
    else:
        action: Action = "unchanged" if keep.settings == desired else "update"
        changes.append(
            Change("scan", action, name, None, keep.settings.to_json(), after, resource_id=keep.association_id)
        )
    return Plan(tuple(changes))


# --- SSM ----------------------------------------------------------------------------------------------


def _owned(tags: Iterable[Mapping[str, Any]]) -> bool:
    return any(tag.get("Key") == MANAGED_TAG_KEY and tag.get("Value") == MANAGED_TAG_VALUE for tag in tags)


def _settings_of(description: Mapping[str, Any]) -> ScanAssociation:
    return ScanAssociation(
        schedule=str(description.get("ScheduleExpression") or ""),
        targets=tuple(
            (str(t["Key"]), tuple(str(v) for v in t.get("Values") or ())) for t in description.get("Targets") or ()
        ),
        parameters=tuple(
            (str(k), tuple(str(v) for v in values)) for k, values in (description.get("Parameters") or {}).items()
        ),
        document=str(description.get("Name") or ""),
        max_concurrency=str(description.get("MaxConcurrency") or ""),
        max_errors=str(description.get("MaxErrors") or ""),
    )


@tracer.capture_method
def read_scan() -> list[ActualScan]:
    """tagpatch's scan associations: named as tagpatch names it AND tagged as tagpatch's."""
    ssm = client("ssm")
    found = []
    listed = paginate(
        ssm.list_associations,
        "Associations",
        AssociationFilterList=[{"key": "AssociationName", "value": SCAN_ASSOCIATION_NAME}],
        MaxResults=ASSOCIATION_PAGE_SIZE,
    )
    for association in listed:
        association_id = str(association["AssociationId"])
        tags = ssm.list_tags_for_resource(ResourceType="Association", ResourceId=association_id)["TagList"]
        if not _owned(tags):
            continue  # someone else's association, whatever its name: never read further or changed
        description = ssm.describe_association(AssociationId=association_id)["AssociationDescription"]
        found.append(ActualScan(association_id, _settings_of(description)))
    return found


class ScanApplication(AppliedChanges):
    def describe_failures(self) -> str:
        return self.describe_failures_of("the patch scan")


def apply_scan(changes: Sequence[Change]) -> ScanApplication:
    """Make the scan's planned changes; a refusal is recorded and raised by the caller, never lost."""
    outcomes: list[ChangeOutcome] = []
    for index, change in enumerate(changes):
        try:
            outcome, resource_id = _apply(change)
            outcomes.append(ChangeOutcome.of(change, outcome, resource_id))
        except (ClientError, BotoCoreError) as error:
            outcomes.append(ChangeOutcome.of(change, "failed", change.resource_id, describe_error(error)))
            if is_transient(error):
                outcomes.extend(ChangeOutcome.of(later, "not_attempted") for later in changes[index + 1 :])
                return ScanApplication(tuple(outcomes), retryable=True)
    return ScanApplication(tuple(outcomes))


def _apply(change: Change) -> tuple[Outcome, str | None]:
    ssm = client("ssm")
    if change.action == "delete":
        try:
            ssm.delete_association(AssociationId=change.resource_id)
        except ClientError as error:
            if error_code(error) != "AssociationDoesNotExist":
                raise
            return "already_done", change.resource_id  # an earlier attempt deleted it
        return "applied", change.resource_id
    assert change.after is not None
    settings = ScanAssociation.from_json(change.after)
    if change.action == "update":
        ssm.update_association(AssociationId=change.resource_id, **settings.request())
        return "applied", change.resource_id
    created = ssm.create_association(
        Name=settings.document,
        Tags=[{"Key": MANAGED_TAG_KEY, "Value": MANAGED_TAG_VALUE}],
        **settings.request(),
    )
    return "applied", str(created["AssociationDescription"]["AssociationId"])
