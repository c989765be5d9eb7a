"""A rollout wave held by its gate stays held when SSM's quotas leave no room to select it by id (fail
safe): its patch groups move, by tag, to the window's Scan task; where even that does not fit, the
window's Install task is not registered and the shortfall alert says so. Never patched anyway."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

import tagpatch.desired as desired_module
from tagpatch_local.report import patch_result_lines, problems
from tagpatch_local.runner import SimulatedAccount

from .support import instance, run_ok, ssm_windows, topic_queue

REPO = Path(__file__).resolve().parents[2]
PROD = [f"prod-{n}" for n in range(3)]
FRIDAY_NOON = datetime(2026, 11, 27, 12, tzinfo=UTC)


def use_rollout(account: SimulatedAccount, folder: Path, min_patched: int) -> None:
    # The canary wave has one instance: a gate asking for more than one patched holds prod.
    document = yaml.safe_load((REPO / "policy" / "patch-policy.yaml").read_text())
    document["rollout"] = {
        "waves": [
            {"name": "canary", "patch_groups": ["web-canary"]},
            {"name": "prod", "patch_groups": ["web"], "gate": {"soak_hours": 0, "min_patched": min_patched}},
        ]
    }
    path = folder / f"policy-{min_patched}.yaml"
    path.write_text(yaml.safe_dump(document))
    account.use_policy(path)


def tasks_of(account: SimulatedAccount, window: str) -> dict[str, dict[str, Any]]:
    ssm = account.client("ssm")
    window_id = ssm_windows(account)[window]["WindowId"]
    found = ssm.describe_maintenance_window_tasks(WindowId=window_id)["Tasks"]
    return {task["Name"]: task for task in found}


def operations(account: SimulatedAccount, window: str) -> dict[str, str]:
    ssm = account.client("ssm")
    window_id = ssm_windows(account)[window]["WindowId"]
    found: dict[str, str] = {}
    for task in tasks_of(account, window).values():
        detail = ssm.get_maintenance_window_task(WindowId=window_id, WindowTaskId=task["WindowTaskId"])
        parameters = detail["TaskInvocationParameters"]["RunCommand"]["Parameters"]
        (found[task["Name"]],) = parameters["Operation"]
    return found


def prod_results(account: SimulatedAccount, result: Any) -> dict[str, dict[str, Any]]:
    return {line["name"]: line for line in patch_result_lines(account, result) if line["name"] in PROD}


@pytest.fixture
def no_room_for_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    # Three held instances by id need two targets of two ids; the window has room for one target.
    monkeypatch.setattr(desired_module, "MAX_TARGETS_PER_WINDOW", 1)
    monkeypatch.setattr(desired_module, "MAX_VALUES_PER_TARGET", 2)


@pytest.mark.usefixtures("no_room_for_ids")
def test_a_held_wave_too_big_for_id_holds_is_held_by_tag_and_restored_when_the_gate_opens(tmp_path: Path) -> None:
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.set_clock(FRIDAY_NOON)
        use_rollout(account, tmp_path, min_patched=5)
        account.seed(
            [
                instance("web-canary", "cron(0 2 ? * * *)", name="canary"),
                *(instance("web", "sun-0200", name=name) for name in PROD),
            ]
        )
        first = run_ok(account)
        assert operations(account, "tagpatch-sun-0200") == {"tagpatch-install-reboot-held-01": "Scan"}
        assert not [p for p in problems(account, first) if p["kind"] == "hold"]
        account.advance(timedelta(days=8))
        read = run_ok(account)
        for name, line in prod_results(account, read).items():
            assert (line["operation"], line["outcome"]) == ("Scan", "scanned"), name
            assert "patching held back (scan only)" in line["reason"], name
        assert run_ok(account).resource_write_calls == {}

        # The gate opens: the next cycle restores the Install task, and a rerun writes nothing.
        use_rollout(account, tmp_path, min_patched=1)
        run_ok(account)
        assert operations(account, "tagpatch-sun-0200") == {"tagpatch-install-reboot-01": "Install"}
        assert run_ok(account).resource_write_calls == {}


@pytest.mark.usefixtures("no_room_for_ids")
def test_a_held_wave_that_fits_neither_by_id_nor_by_tag_keeps_its_window_from_installing(tmp_path: Path) -> None:
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.set_clock(FRIDAY_NOON)
        use_rollout(account, tmp_path, min_patched=5)
        # db is in no wave, but shares prod's window and its one target: the window cannot hold web apart.
        account.seed(
            [
                instance("web-canary", "cron(0 2 ? * * *)", name="canary"),
                instance("db", "sun-0200", name="db-1"),
                *(instance("web", "sun-0200", name=name) for name in PROD),
            ]
        )
        drain = topic_queue(account)
        first = run_ok(account)
        assert operations(account, "tagpatch-sun-0200") == {"tagpatch-install-reboot-held-01": "Scan"}
        (hold,) = [p for p in problems(account, first) if p["kind"] == "hold"]
        assert "Install task tagpatch-install-reboot is NOT registered" in hold["reason"]
        assert "db" in hold["reason"]
        # The operators' alert says so.
        (alert,) = [m for m in drain() if m["Subject"].startswith("tagpatch cycle left work undone")]
        assert "Install task tagpatch-install-reboot is NOT registered" in alert["Message"]
        account.advance(timedelta(days=8))
        read = run_ok(account)
        for name, line in prod_results(account, read).items():
            assert (line["operation"], line["outcome"]) == ("Scan", "scanned"), name
        assert run_ok(account).resource_write_calls == {}
