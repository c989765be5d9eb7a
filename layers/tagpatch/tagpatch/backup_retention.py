"""Backup retention: which of tagpatch's own backups have outlived the policy, and deleting them.

A backup is tagpatch's only when it carries `tagpatch:managed=true` and `tagpatch:backup-of=<instance>`
(the runbooks tag what they make): the listing asks EC2 for the tag, and the selection checks both tags
again, so an operator's own image or snapshot is never chosen, whatever its name or description says.
Selection is pure (time is an input); listing and deleting are the I/O around it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from botocore.exceptions import ClientError

from tagpatch.aws import error_code, paginate
from tagpatch.desired import MANAGED_TAG_KEY, MANAGED_TAG_VALUE
from tagpatch.policy import BackupRetention

BACKUP_OF_TAG_KEY: Final = "tagpatch:backup-of"
# Deletions per cycle at most: the rest wait for the next cycle (reported as deferred), so a first run
# over a long backlog stays within the function's time and EC2's request rates.
MAX_DELETIONS_PER_CYCLE: Final = 200
# EC2's answers for a backup that is already gone (a retried cycle deleted it): nothing left to do.
ALREADY_GONE: Final = frozenset({"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidSnapshot.NotFound"})
RECORD_NAME: Final = "backup-retention.json"  # the run's artifact: what the rule selected, deleted, was refused
OWNED_FILTER: Final = [{"Name": f"tag:{MANAGED_TAG_KEY}", "Values": [MANAGED_TAG_VALUE]}]

BackupKind = Literal["image", "snapshot"]


@dataclass(frozen=True)
class StoredBackup:
    """One backup as EC2 keeps it: an image, or the snapshots one CreateSnapshots call took."""

    kind: BackupKind
    ids: tuple[str, ...]
    instance_id: str
    created: datetime
    good: bool  # an available image, or snapshots all completed: a backup one could restore from
    in_progress: bool  # still being made: never deleted

    @property
    def label(self) -> str:
        return ",".join(self.ids)


def backup_of(tags: Iterable[Mapping[str, Any]] | None) -> str | None:
    """The instance a resource is tagpatch's backup of, or None when it is not tagpatch's."""
    found = {str(tag.get("Key")): str(tag.get("Value")) for tag in tags or ()}
    if found.get(MANAGED_TAG_KEY) != MANAGED_TAG_VALUE or not found.get(BACKUP_OF_TAG_KEY):
        return None
    return found[BACKUP_OF_TAG_KEY]


def image_backups(images: Iterable[Mapping[str, Any]]) -> list[StoredBackup]:
    """tagpatch's images among DescribeImages' answer (its own snapshots go with it)."""
    found = []
    for image in images:
        instance_id = backup_of(image.get("Tags"))
        if instance_id is None:
            continue
        state = str(image.get("State", ""))
        created = image["CreationDate"]
        found.append(
            StoredBackup(
                "image",
                (str(image["ImageId"]),),
                instance_id,
                # DescribeImages gives CreationDate as an ISO 8601 string, not a timestamp.
                created if isinstance(created, datetime) else datetime.fromisoformat(str(created)),
                good=state == "available",
                in_progress=state in ("pending", "transient"),
            )
        )
    return found


def image_snapshot_ids(images: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """The snapshots the images are made of (their block device mappings)."""
    return frozenset(
        str(mapping["Ebs"]["SnapshotId"])
        for image in images
        for mapping in image.get("BlockDeviceMappings") or []
        if (mapping.get("Ebs") or {}).get("SnapshotId")
    )


def snapshot_backups(
    snapshots: Iterable[Mapping[str, Any]], of_images: frozenset[str] = frozenset()
) -> list[StoredBackup]:
    """tagpatch's snapshots among DescribeSnapshots' answer, one backup per CreateSnapshots call: the
    call gives every snapshot of the instance the same description (it names the execution). A snapshot
    an image is made of (`of_images`) is that image's, deleted with it, not a backup of its own."""
    sets: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for snapshot in snapshots:
        instance_id = backup_of(snapshot.get("Tags"))
        if instance_id is None or snapshot["SnapshotId"] in of_images:
            continue
        # A snapshot without a description is a set of its own: never merged with another by accident.
        description = str(snapshot.get("Description") or snapshot["SnapshotId"])
        sets[(instance_id, description)].append(snapshot)
    return [
        StoredBackup(
            "snapshot",
            tuple(sorted(str(s["SnapshotId"]) for s in members)),
            instance_id,
            min(s["StartTime"] for s in members),
            good=all(s.get("State") == "completed" for s in members),
            in_progress=any(s.get("State") == "pending" for s in members),
        )
        for (instance_id, _), members in sorted(sets.items())
    ]


@dataclass(frozen=True)
class RetentionPlan:
    expired: tuple[StoredBackup, ...]  # to delete this cycle, oldest first
    kept: int  # tagpatch's backups this cycle keeps (young enough, among the newest good, or in progress)
    deferred: int  # expired, but beyond this cycle's MAX_DELETIONS_PER_CYCLE


def plan_retention(
    backups: Iterable[StoredBackup], now: datetime, rule: BackupRetention, limit: int = MAX_DELETIONS_PER_CYCLE
) -> RetentionPlan:
    """The backups older than `rule.days` at `now`, except each instance's `rule.keep_latest` newest good
    ones and any still in progress."""
    cutoff = now - timedelta(days=rule.days)
    by_instance: dict[str, list[StoredBackup]] = defaultdict(list)
    for backup in backups:
        by_instance[backup.instance_id].append(backup)
    expired: list[StoredBackup] = []
    kept = 0
    for instance_backups in by_instance.values():
        newest_first = sorted(instance_backups, key=lambda b: (b.created, b.ids), reverse=True)
        protected = {b.ids for b in [b for b in newest_first if b.good][: rule.keep_latest]}
        for backup in newest_first:
            if backup.created < cutoff and backup.ids not in protected and not backup.in_progress:
                expired.append(backup)
            else:
                kept += 1
    expired.sort(key=lambda b: (b.created, b.ids))
    return RetentionPlan(tuple(expired[:limit]), kept, max(0, len(expired) - limit))


# --- I/O ---------------------------------------------------------------------------------------


def list_backups(ec2: Any) -> list[StoredBackup]:
    """tagpatch's images and snapshots in the account and Region `ec2` acts in."""
    images = list(paginate(ec2.describe_images, "Images", Owners=["self"], Filters=OWNED_FILTER))
    snapshots = paginate(ec2.describe_snapshots, "Snapshots", OwnerIds=["self"], Filters=OWNED_FILTER)
    return image_backups(images) + snapshot_backups(snapshots, image_snapshot_ids(images))


@dataclass
class RetentionOutcome:
    deleted: list[str] = field(default_factory=list)  # image and snapshot ids EC2 deleted
    refused: list[str] = field(default_factory=list)  # "<id>: <why>" for each EC2 did not delete


def delete_backups(ec2: Any, backups: Iterable[StoredBackup]) -> RetentionOutcome:
    """Deregister each image with its snapshots, delete each snapshot; every refusal is kept, none raised,
    so one refused backup does not stop the others."""
    outcome = RetentionOutcome()
    for backup in backups:
        if backup.kind == "image":
            _deregister(ec2, backup.ids[0], outcome)
        else:
            for snapshot_id in backup.ids:
                _delete(outcome, snapshot_id, lambda s=snapshot_id: ec2.delete_snapshot(SnapshotId=s))
    return outcome


def _deregister(ec2: Any, image_id: str, outcome: RetentionOutcome) -> None:
    answer = _delete(outcome, image_id, lambda: ec2.deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True))
    for result in (answer or {}).get("DeleteSnapshotResults", []):
        snapshot_id, code = str(result.get("SnapshotId")), str(result.get("ReturnCode"))
        if code == "success":
            outcome.deleted.append(snapshot_id)
        else:
            # The image is gone; its snapshot is not, and still costs: say so (EC2's ReturnCode).
            outcome.refused.append(f"{snapshot_id} (of {image_id}): {code}")


def _delete(outcome: RetentionOutcome, resource_id: str, call: Any) -> dict[str, Any] | None:
    try:
        answer: dict[str, Any] = call()
    except ClientError as error:
        if error_code(error) not in ALREADY_GONE:
            outcome.refused.append(f"{resource_id}: {error_code(error)}")
        return None
    outcome.deleted.append(resource_id)
    return answer


def retention_record(
    rule: BackupRetention, plan: RetentionPlan, outcome: RetentionOutcome, mode: str
) -> dict[str, Any]:
    """The run's backup-retention.json: the rule, what it selected, and what EC2 deleted or refused."""
    return {
        "mode": mode,
        "days": rule.days,
        "keep_latest": rule.keep_latest,
        "selected": [
            {"kind": b.kind, "ids": list(b.ids), "instance_id": b.instance_id, "created": b.created.isoformat()}
            for b in plan.expired
        ],
        "deleted": outcome.deleted,
        "refused": outcome.refused,
        "kept": plan.kept,
        "deferred": plan.deferred,
    }


def refusal_message(refused: list[str], shown: int = 10) -> str:
    """One line for the alert: each refused deletion (the first `shown`) with EC2's reason."""
    more = f" and {len(refused) - shown} more" if len(refused) > shown else ""
    return (
        f"EC2 refused to delete {len(refused)} of tagpatch's expired backups ({'; '.join(refused[:shown])}{more}); "
        "the other expired backups were deleted, and the run's backup-retention.json names each"
    )
