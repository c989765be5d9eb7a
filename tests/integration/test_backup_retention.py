"""Backup retention in the simulated account: ComplianceExport deletes tagpatch's backups past the policy's
retention (images with their snapshots, and snapshot sets), keeps each instance's newest good backup, and
never touches an image or snapshot without tagpatch's tag; plan mode deletes nothing; a rerun deletes
nothing more; a deletion EC2 refuses fails the cycle and reaches the alerts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from moto.ec2.models import ec2_backends

from tagpatch_local.fleet import MemberAccount
from tagpatch_local.report import backup_retention_record, summary_document
from tagpatch_local.runner import SimulatedAccount
from tagpatch_local.simulator import iam

from .support import instance, run_ok, template_variant, topic_queue

REPO = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
OWNED = {"tagpatch:managed": "true"}


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def make_image(ec2: Any, instance_id: str, name: str, tags: dict[str, str], snapshot_tags: dict[str, str]) -> str:
    """An image of the instance (as the runbook's aws:createImage), tagged; its snapshot tagged as given."""
    image_id = str(ec2.create_image(InstanceId=instance_id, Name=name, NoReboot=True)["ImageId"])
    if tags:
        ec2.create_tags(Resources=[image_id], Tags=tag_list(tags))
    if snapshot_tags:
        ec2.create_tags(Resources=image_snapshots(ec2, image_id), Tags=tag_list(snapshot_tags))
    return image_id


def image_snapshots(ec2: Any, image_id: str) -> list[str]:
    (image,) = ec2.describe_images(ImageIds=[image_id])["Images"]
    return [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]


def make_snapshots(ec2: Any, instance_id: str, execution: str, tags: dict[str, str]) -> list[str]:
    """Snapshots of every volume of the instance in one call (as the snapshot runbook's CreateSnapshots)."""
    answer = ec2.create_snapshots(
        InstanceSpecification={"InstanceId": instance_id},
        Description=f"tagpatch backup of {instance_id} before patching ({execution})",
        **({"TagSpecifications": [{"ResourceType": "snapshot", "Tags": tag_list(tags)}]} if tags else {}),
    )
    return sorted(s["SnapshotId"] for s in answer["Snapshots"])


def backup_tags(instance_id: str) -> dict[str, str]:
    return {**OWNED, "tagpatch:backup-of": instance_id}


def image_ids(ec2: Any) -> set[str]:
    return {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}


def snapshot_ids(ec2: Any) -> set[str]:
    return {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def retention_record(account: SimulatedAccount, key: str) -> dict[str, Any]:
    body = account.client("s3").get_object(Bucket=account.artifact_bucket, Key=key)["Body"].read()
    record: dict[str, Any] = json.loads(body)
    return record


def policy_with_retention(tmp_path: Path, days: int, keep_latest: int) -> Path:
    document = yaml.safe_load((REPO / "policy" / "patch-policy.yaml").read_text())
    document["backup_retention"] = {"days": days, "keep_latest": keep_latest}
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_expired_backups_are_deleted_by_tag_only_in_apply_mode_once_and_a_refusal_is_alerted(tmp_path: Path) -> None:
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.use_policy(policy_with_retention(tmp_path, days=14, keep_latest=1))
        account.set_clock(START)
        web, db = account.seed([instance("web", "sun-0200", name=name) for name in ("web", "db")])
        ec2 = account.client("ec2")  # the harness's own credentials: what an operator or a runbook made
        # Three weeks old: tagpatch's image and snapshot set of web, and db's only backup.
        old_image = make_image(ec2, web, "tagpatch-backup-web-e1", backup_tags(web), backup_tags(web))
        old_image_snapshots = image_snapshots(ec2, old_image)
        old_set = make_snapshots(ec2, web, "e2", backup_tags(web))
        # Made before the runbook tagged an image's own snapshots: the tag condition refuses that snapshot.
        untagged_snapshot_image = make_image(ec2, web, "tagpatch-backup-web-e0", backup_tags(web), {})
        refused_snapshot = image_snapshots(ec2, untagged_snapshot_image)
        db_only = make_image(ec2, db, "tagpatch-backup-db-e3", backup_tags(db), backup_tags(db))
        # The operator's own: untagged, tagged otherwise, or named like tagpatch's without its tag.
        theirs = {
            make_image(ec2, web, "golden-web", {}, {}),
            make_image(ec2, web, "tagpatch-backup-web-fake", {"tagpatch:backup-of": web, "Team": "web"}, {}),
            make_image(ec2, web, "pinned", {"tagpatch:managed": "false", "tagpatch:backup-of": web}, {}),
        }
        their_snapshots = {
            *make_snapshots(ec2, web, "theirs", {}),
            *make_snapshots(ec2, web, "theirs-tagged", {"Team": "web"}),
        }
        account.advance(timedelta(days=21))
        new_image = make_image(ec2, web, "tagpatch-backup-web-e4", backup_tags(web), backup_tags(web))
        new_set = make_snapshots(ec2, web, "e5", backup_tags(web))
        expected_deleted = {old_image, *old_image_snapshots, *old_set, untagged_snapshot_image}
        images_before, snapshots_before = image_ids(ec2), snapshot_ids(ec2)

        planned = run_ok(account, {"mode": "plan"})
        plan = planned.output["compliance"]["backup_retention"]  # type: ignore[index]
        assert (plan["deleted"], plan["would_delete"], plan["refused"]) == (0, 3, 0)
        selected = retention_record(account, plan["key"])["selected"]
        assert {i for b in selected for i in b["ids"]} == {old_image, *old_set, untagged_snapshot_image}
        assert (image_ids(ec2), snapshot_ids(ec2)) == (images_before, snapshots_before)  # plan deletes nothing

        alerts = topic_queue(account)
        iam.reset_allowed_checks()
        applied = account.run_cycle()
        told = alerts()
        # The image's snapshot without the tag was refused: the cycle fails after deleting the rest, and says so.
        assert (applied.status, applied.error) == ("FAILED", "BackupDeletionRefused"), applied.cause
        assert f"{refused_snapshot[0]} (of {untagged_snapshot_image}): missing-permissions" in str(applied.cause)
        assert any(refused_snapshot[0] in m["Message"] for m in told), told
        # The run's report lists each id deleted and each refused, though the cycle failed.
        record = backup_retention_record(account, applied)
        assert record is not None
        assert set(record["deleted"]) == expected_deleted
        assert record["refused"] == [f"{refused_snapshot[0]} (of {untagged_snapshot_image}): missing-permissions"]
        assert summary_document(account, applied, [])["backup_retention"] == record
        assert image_ids(ec2) == images_before - {old_image, untagged_snapshot_image}
        assert snapshot_ids(ec2) == snapshots_before - (expected_deleted - {old_image, untagged_snapshot_image})
        # Kept: the newest backups, db's only one, and everything that is not tagpatch's.
        assert {new_image, db_only, *theirs} <= image_ids(ec2)
        assert {*new_set, *their_snapshots, *refused_snapshot} <= snapshot_ids(ec2)
        # Least privilege: each deletion was authorised on the resource, under the tag condition.
        checked = {(c.action, c.resource.rsplit("/", 1)[-1]) for _, c in iam.allowed_checks()}
        assert ("ec2:DeregisterImage", old_image) in checked
        assert {("ec2:DeleteSnapshot", s) for s in [*old_set, *old_image_snapshots]} <= checked

        rerun = run_ok(account)
        again = rerun.output["compliance"]["backup_retention"]  # type: ignore[index]
        assert (again["deleted"], again["would_delete"], again["refused"]) == (0, 0, 0)
        assert rerun.resource_write_calls == {}


def test_without_the_grant_ec2_refuses_every_deletion_and_the_cycle_fails(tmp_path: Path) -> None:
    def without_delete_grant(document: dict[str, Any]) -> None:
        statements = document["Resources"]["ComplianceExportFunction"]["Properties"]["Policies"][0]["Statement"]
        statements[:] = [
            s for s in statements if s.get("Sid") not in {"DeregisterOwnExpiredImages", "DeleteOwnExpiredSnapshots"}
        ]

    with template_variant(without_delete_grant) as template, SimulatedAccount(template) as account:
        account.use_policy(policy_with_retention(tmp_path, days=1, keep_latest=0))
        account.set_clock(START)
        (web,) = account.seed([instance("web", "sun-0200", name="web")])
        ec2 = account.client("ec2")
        image = make_image(ec2, web, "tagpatch-backup-web-e1", backup_tags(web), backup_tags(web))
        snapshots = make_snapshots(ec2, web, "e2", backup_tags(web))
        account.advance(timedelta(days=3))
        failed = account.run_cycle()
        assert (failed.status, failed.error) == ("FAILED", "BackupDeletionRefused"), failed.cause
        assert f"{image}: UnauthorizedOperation" in str(failed.cause)
        assert image in image_ids(ec2)
        assert set(snapshots) <= snapshot_ids(ec2)


def test_an_image_a_backup_window_took_is_deleted_with_its_snapshots_once_a_newer_one_exists(tmp_path: Path) -> None:
    """End to end: the window's runbook images the instance (and tags the image's snapshots) each Sunday;
    two Sundays later the first image is past a 7-day retention and goes, snapshots and all."""
    document = yaml.safe_load(policy_with_retention(tmp_path, days=7, keep_latest=1).read_text())
    document["windows"]["sun-0200"]["task"] = {"backup": "image"}
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(document))
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.use_policy(tmp_path / "policy.yaml")
        account.set_clock(START)  # a Monday
        (web,) = account.seed([instance("web", "sun-0200", name="web")])
        run_ok(account)
        account.advance(timedelta(days=15))  # two Sunday 02:00 runs, each imaging web
        ec2 = account.client("ec2")
        images = sorted(ec2.describe_images(Owners=["self"])["Images"], key=lambda i: str(i["CreationDate"]))
        assert [i["State"] for i in images] == ["available", "available"]
        first, second = (i["ImageId"] for i in images)
        first_snapshots = image_snapshots(ec2, first)
        result = run_ok(account)
        retention = result.output["compliance"]["backup_retention"]  # type: ignore[index]
        assert (retention["deleted"], retention["refused"]) == (1 + len(first_snapshots), 0)
        assert image_ids(ec2) == {second}
        assert not set(first_snapshots) & snapshot_ids(ec2)
        assert set(image_snapshots(ec2, second)) <= snapshot_ids(ec2)
        assert backup_tags(web) == {
            t["Key"]: t["Value"] for t in ec2.describe_images(ImageIds=[second])["Images"][0]["Tags"]
        }


def test_a_member_account_s_expired_backup_is_deleted_through_its_spoke_role(tmp_path: Path) -> None:
    """In a member account the rule runs under the spoke's ComplianceExport role, whose tag-conditioned
    grant mirrors the hub function's: tagpatch's old image goes, the operator's stays."""
    document = yaml.safe_load(policy_with_retention(tmp_path, days=7, keep_latest=0).read_text())
    member = MemberAccount("111111111111", "payments", ("us-east-1",), instances=(instance("web", "sun-0200"),))
    document["targets"] = {"accounts": [member.id]}
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(document))
    with SimulatedAccount(REPO / "template.yaml") as account:
        assert account.region == "us-east-1"
        account.use_policy(tmp_path / "policy.yaml")
        account.seed_accounts([member])
        account.set_clock(START)
        ec2 = ec2_backends[member.id][account.region]  # the member's EC2, as its runbook and operator left it
        (web,) = [i.id for reservation in ec2.reservations.values() for i in reservation.instances]
        ours = ec2.create_image(web, "tagpatch-backup-web-e1", "", [])
        ec2.create_tags([ours.id, *(s for s in _moto_snapshots(ours))], backup_tags(web))
        theirs = ec2.create_image(web, "golden-web", "", [])
        account.advance(timedelta(days=8))
        iam.reset_allowed_checks()
        result = account.run_org_cycle({})
        assert [item["status"] for item in result.targets] == ["SUCCEEDED"], result.targets
        assert ours.id not in ec2.amis
        assert theirs.id in ec2.amis
        checked = {(role, c.action, c.resource) for role, c in iam.allowed_checks()}
        image_arn = f"arn:aws:ec2:{account.region}::image/{ours.id}"
        assert ("tagpatch-spoke-compliance-export", "ec2:DeregisterImage", image_arn) in checked


def _moto_snapshots(image: Any) -> list[str]:
    return [str(m["Ebs"]["SnapshotId"]) for m in image.block_device_mappings]
