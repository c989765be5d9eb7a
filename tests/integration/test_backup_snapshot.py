"""`backup: snapshot` on a window's Install task registers an AUTOMATION task running the stack's
snapshot runbook: EBS snapshots of every volume of each instance (one CreateSnapshots call), then the
patch, which runs only where the snapshots were requested; monitoring reports the snapshot ids beside
the outcome, and a rerun writes nothing. (`backup: image`: test_backup_task.py.)"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import yaml

from tagpatch_local.report import patch_result_lines, problems
from tagpatch_local.runner import ACCOUNT_ID, SimulatedAccount
from tagpatch_local.simulator import iam

from .support import instance, run_ok, ssm_windows

REPO = Path(__file__).resolve().parents[2]


def test_a_snapshot_window_snapshots_every_volume_then_patches_only_where_they_were_taken(tmp_path: Path) -> None:
    document = yaml.safe_load((REPO / "policy" / "patch-policy.yaml").read_text())
    document["windows"]["sun-0200"]["task"] = {"backup": "snapshot"}
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(document))
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.use_policy(path)
        kept, lost = account.seed([instance("web", "sun-0200", name=name) for name in ("kept", "lost")])
        for instance_id in (kept, lost):
            account.set_patch_behaviour(instance_id, {"missing": 2})
        account.set_patch_behaviour(lost, {"backup": "failed"})
        first = run_ok(account)
        assert [p for p in problems(account, first) if p["kind"] == "backup"] == []
        ssm = account.client("ssm")
        window_id = ssm_windows(account)["tagpatch-sun-0200"]["WindowId"]
        (summary,) = ssm.describe_maintenance_window_tasks(WindowId=window_id)["Tasks"]
        task = ssm.get_maintenance_window_task(WindowId=window_id, WindowTaskId=summary["WindowTaskId"])
        assert (task["Name"], task["TaskType"], task["TaskArn"]) == (
            "tagpatch-install-reboot-backup-snapshot-01",
            "AUTOMATION",
            account.physical_id("BackupSnapshotsThenPatchRunbook"),
        )

        iam.reset_allowed_checks()
        account.advance(timedelta(days=8))  # past a Sunday 02:00 run
        # Least privilege: the role was checked for CreateSnapshots on the instance, its volumes and the
        # new snapshots, as the SAR requires, and its statement grants exactly those.
        role = account.physical_id("BackupAutomationRole")
        region = account.region
        checked = {(c.action, c.resource) for name, c in iam.allowed_checks() if name == role}
        ec2 = account.client("ec2")
        (reservation,) = ec2.describe_instances(InstanceIds=[kept])["Reservations"]
        volumes = [m["Ebs"]["VolumeId"] for m in reservation["Instances"][0]["BlockDeviceMappings"]]
        assert volumes
        assert {
            ("ec2:CreateSnapshots", f"arn:aws:ec2:{region}:{ACCOUNT_ID}:instance/{kept}"),
            ("ec2:CreateSnapshots", f"arn:aws:ec2:{region}::snapshot/*"),
            *(("ec2:CreateSnapshots", f"arn:aws:ec2:{region}:{ACCOUNT_ID}:volume/{v}") for v in volumes),
            # Tagging the new snapshots on create is authorised as ec2:CreateTags (EC2 User Guide).
            ("ec2:CreateTags", f"arn:aws:ec2:{region}::snapshot/*"),
        } <= checked

        rerun = run_ok(account)
        assert rerun.resource_write_calls == {}
        outcomes = {line["instance_id"]: line for line in patch_result_lines(account, rerun)}
        assert (outcomes[kept]["outcome"], outcomes[kept]["backup_outcome"]) == ("patched", "succeeded")
        described = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
        snapshots = {s["SnapshotId"]: s["VolumeId"] for s in described}
        tags = {s["SnapshotId"]: {t["Key"]: t["Value"] for t in s.get("Tags", [])} for s in described}
        taken = str(outcomes[kept]["backup_id"]).split(",")
        assert sorted(snapshots[s] for s in taken) == sorted(volumes)  # one snapshot per volume, all reported
        # Each carries the ownership tag a retention rule selects by.
        assert all(tags[s] == {"tagpatch:managed": "true", "tagpatch:backup-of": kept} for s in taken), tags
        assert (outcomes[lost]["outcome"], outcomes[lost]["backup_outcome"], outcomes[lost]["backup_id"]) == (
            "failed",
            "failed",
            None,
        )
        assert "its backup failed" in outcomes[lost]["reason"]
        states = ssm.describe_instance_patch_states(InstanceIds=[kept, lost])["InstancePatchStates"]
        counts = {s["InstanceId"]: (s["InstalledCount"], s["MissingCount"]) for s in states}
        assert counts == {kept: (2, 0), lost: (0, 2)}
