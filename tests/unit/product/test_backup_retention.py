"""Backup retention: the policy key, and which of tagpatch's backups a cycle deletes (pure, time as input)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tagpatch.backup_retention import (
    StoredBackup,
    backup_of,
    image_backups,
    image_snapshot_ids,
    plan_retention,
    refusal_message,
    snapshot_backups,
)
from tagpatch.errors import BackupDeletionRefused, InvalidPatchPolicy, failure_cause
from tagpatch.policy import BackupRetention, parse_policy

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
OWNED = [{"Key": "tagpatch:managed", "Value": "true"}]


def tags(instance_id: str) -> list[dict[str, str]]:
    return [*OWNED, {"Key": "tagpatch:backup-of", "Value": instance_id}]


def image(image_id: str, instance_id: str, days_old: float, state: str = "available") -> dict[str, Any]:
    created = NOW - timedelta(days=days_old)
    return {
        "ImageId": image_id,
        "State": state,
        "CreationDate": created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "Tags": tags(instance_id),
    }


def backup(ids: str, instance_id: str, days_old: float, good: bool = True, in_progress: bool = False) -> StoredBackup:
    return StoredBackup("image", (ids,), instance_id, NOW - timedelta(days=days_old), good, in_progress)


def expired_ids(backups: list[StoredBackup], rule: BackupRetention, limit: int = 200) -> list[str]:
    return [b.label for b in plan_retention(backups, NOW, rule, limit).expired]


def test_the_policy_defaults_to_14_days_keeping_each_instance_s_newest_backup() -> None:
    assert parse_policy({"version": 1}).backup_retention == BackupRetention(days=14, keep_latest=1)
    rule = parse_policy({"version": 1, "backup_retention": {"days": 30, "keep_latest": 2}}).backup_retention
    assert rule == BackupRetention(days=30, keep_latest=2)


@pytest.mark.parametrize(
    ("raw", "at_fault"),
    [
        ({"days": 0}, "backup_retention.days"),
        ({"days": "14"}, "backup_retention.days"),
        ({"keep_latest": -1}, "backup_retention.keep_latest"),
        ({"keep_latest": True}, "backup_retention.keep_latest"),
        ({"weeks": 2}, "backup_retention.weeks"),
        ("14d", "backup_retention"),
    ],
)
def test_a_bad_retention_names_the_key_at_fault(raw: object, at_fault: str) -> None:
    with pytest.raises(InvalidPatchPolicy, match=f": {at_fault}: "):
        parse_policy({"version": 1, "backup_retention": raw})


def test_only_backups_older_than_the_retention_are_deleted_and_the_newest_good_one_is_kept() -> None:
    backups = [
        backup("ami-new", "i-1", 3),
        backup("ami-old", "i-1", 20),
        backup("ami-older", "i-1", 40),
        # i-2's only backup is old: kept, so the instance never loses its last good backup.
        backup("ami-only", "i-2", 90),
    ]
    plan = plan_retention(backups, NOW, BackupRetention(days=14, keep_latest=1))
    assert [b.label for b in plan.expired] == ["ami-older", "ami-old"]  # oldest first
    assert (plan.kept, plan.deferred) == (2, 0)


def test_keep_latest_counts_good_backups_only_and_zero_keeps_none() -> None:
    backups = [
        backup("ami-failed", "i-1", 20, good=False),
        backup("ami-good", "i-1", 30),
        backup("ami-oldest", "i-1", 50),
    ]
    # The failed image is no backup to restore from: the good one behind it is the one kept.
    assert expired_ids(backups, BackupRetention(14, 1)) == ["ami-oldest", "ami-failed"]
    assert expired_ids(backups, BackupRetention(14, 2)) == ["ami-failed"]
    assert expired_ids(backups, BackupRetention(14, 0)) == ["ami-oldest", "ami-good", "ami-failed"]


def test_a_backup_still_being_made_is_never_deleted() -> None:
    backups = [backup("ami-stuck", "i-1", 60, good=False, in_progress=True), backup("ami-new", "i-1", 1)]
    assert expired_ids(backups, BackupRetention(14, 0)) == []


def test_a_backup_exactly_at_the_retention_is_kept() -> None:
    assert expired_ids([backup("ami-edge", "i-1", 14)], BackupRetention(14, 0)) == []
    assert expired_ids([backup("ami-past", "i-1", 14.01)], BackupRetention(14, 0)) == ["ami-past"]


def test_deletions_beyond_the_cycle_s_limit_are_deferred_oldest_first() -> None:
    backups = [backup(f"ami-{n}", "i-1", 20 + n) for n in range(5)]
    plan = plan_retention(backups, NOW, BackupRetention(14, 0), limit=2)
    assert [b.label for b in plan.expired] == ["ami-4", "ami-3"]
    assert plan.deferred == 3


def test_an_operator_s_image_untagged_or_tagged_otherwise_is_never_a_backup() -> None:
    images = [
        image("ami-tagpatch", "i-1", 30),
        {**image("ami-untagged", "i-1", 30), "Tags": []},
        {**image("ami-no-tags", "i-1", 30)} | {"Tags": None},
        {**image("ami-theirs", "i-1", 30), "Tags": [{"Key": "tagpatch:managed", "Value": "false"}, *tags("i-1")[1:]]},
        {**image("ami-unowned", "i-1", 30), "Tags": [{"Key": "tagpatch:backup-of", "Value": "i-1"}]},
        {**image("ami-no-instance", "i-1", 30), "Tags": OWNED},
    ]
    found = image_backups(images)
    assert [b.label for b in found] == ["ami-tagpatch"]
    assert found[0].created == NOW - timedelta(days=30)
    assert backup_of([{"Key": "Name", "Value": "tagpatch-backup-i-1"}]) is None


def test_the_snapshots_of_one_call_are_one_backup() -> None:
    def snapshot(snapshot_id: str, description: str, days_old: float, state: str = "completed") -> dict[str, Any]:
        return {
            "SnapshotId": snapshot_id,
            "Description": description,
            "StartTime": NOW - timedelta(days=days_old),
            "State": state,
            "Tags": tags("i-1"),
        }

    snapshots = [
        snapshot("snap-b", "tagpatch backup of i-1 before patching (e-1)", 30),
        snapshot("snap-a", "tagpatch backup of i-1 before patching (e-1)", 30),
        snapshot("snap-c", "tagpatch backup of i-1 before patching (e-2)", 2, state="pending"),
        {**snapshot("snap-x", "tagpatch backup of i-1 before patching (e-1)", 30), "Tags": []},
    ]
    found = snapshot_backups(snapshots)
    assert [(b.ids, b.good, b.in_progress) for b in found] == [
        (("snap-a", "snap-b"), True, False),
        (("snap-c",), False, True),
    ]
    # keep_latest counts the set, not each volume's snapshot: the pending one is no good backup yet.
    assert expired_ids(found, BackupRetention(14, 1)) == []
    assert expired_ids(found, BackupRetention(14, 0)) == ["snap-a,snap-b"]


def test_a_tagged_snapshot_an_image_is_made_of_goes_with_the_image_not_as_a_backup_of_its_own() -> None:
    images = [{**image("ami-1", "i-1", 30), "BlockDeviceMappings": [{"Ebs": {"SnapshotId": "snap-of-image"}}]}]
    snapshots = [
        {"SnapshotId": sid, "Description": "", "StartTime": NOW, "State": "completed", "Tags": tags("i-1")}
        for sid in ("snap-of-image", "snap-left-behind")
    ]
    found = snapshot_backups(snapshots, image_snapshot_ids(images))
    # One an earlier deregistration left behind (no image uses it now) is a backup like any other.
    assert [b.ids for b in found] == [("snap-left-behind",)]


def test_a_refusal_is_told_as_ec2_s_with_each_id_and_the_rest_counted() -> None:
    assert failure_cause(BackupDeletionRefused.__name__) == "refused by EC2"
    refused = [f"snap-{n}: UnauthorizedOperation" for n in range(12)]
    message = refusal_message(refused)
    assert message.startswith("EC2 refused to delete 12 of tagpatch's expired backups (snap-0: UnauthorizedOperation;")
    assert "snap-9: UnauthorizedOperation and 2 more)" in message
    assert "snap-10" not in message
