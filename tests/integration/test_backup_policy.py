"""`backup: snapshot` on a window's task, whose backup task is not built: the patch runs only where its
backup succeeded, so the window's Install task is not registered (its instances are scanned), every
cycle's shortfall alert says why, and a rerun writes nothing. (`backup: image`: test_backup_task.py.)"""

from __future__ import annotations

from pathlib import Path

import yaml

from tagpatch_local.report import problems
from tagpatch_local.runner import SimulatedAccount

from .support import instance, run_ok, ssm_windows, topic_queue

REPO = Path(__file__).resolve().parents[2]


def test_an_install_task_asking_for_a_backup_is_held_to_a_scan_and_said(tmp_path: Path) -> None:
    document = yaml.safe_load((REPO / "policy" / "patch-policy.yaml").read_text())
    document["windows"]["sun-0200"]["task"] = {"backup": "snapshot"}
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(document))
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.use_policy(path)
        account.seed([instance("web", "sun-0200"), instance("db", "tue-2330")])
        drain = topic_queue(account)
        first = run_ok(account)
        ssm = account.client("ssm")
        windows = ssm_windows(account)
        operations = {}
        for name in ("tagpatch-sun-0200", "tagpatch-tue-2330"):
            window_id = windows[name]["WindowId"]
            for task in ssm.describe_maintenance_window_tasks(WindowId=window_id)["Tasks"]:
                detail = ssm.get_maintenance_window_task(WindowId=window_id, WindowTaskId=task["WindowTaskId"])
                (operations[task["Name"]],) = detail["TaskInvocationParameters"]["RunCommand"]["Parameters"][
                    "Operation"
                ]
        # The window without a backup patches as before.
        assert operations == {
            "tagpatch-install-reboot-backup-snapshot-held-01": "Scan",
            "tagpatch-install-reboot-01": "Install",
        }
        (backup,) = [p for p in problems(account, first) if p["kind"] == "backup"]
        assert (
            backup["name"] == "tagpatch-sun-0200/tagpatch-install-reboot-backup-snapshot"
            and "backup: snapshot" in backup["reason"]
        )
        (alert,) = [m for m in drain() if m["Subject"].startswith("tagpatch cycle left work undone")]
        assert "backup: snapshot" in alert["Message"]
        rerun = run_ok(account)
        assert rerun.resource_write_calls == {}
        assert [m for m in drain() if m["Subject"].startswith("tagpatch cycle left work undone")]
