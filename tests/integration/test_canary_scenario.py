"""scenarios/canary.yaml through the CLI (#24's Done-when): the prod wave is held (scanned, nothing
installed, its owners told why) while the canary wave fails its gate, and once the canary passed and
soaked it installs, each instance imaged first and its post-install hook run after the patches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tagpatch_local import cli

from .support import by_name, changed, read

REPO = Path(__file__).resolve().parents[2]
HELD_TASK = "tagpatch-install-reboot-backup-image-held-01"
# The prod window's Install task: `backup: image`, so the stack's backup-then-patch runbook.
BACKUP_TASK = "tagpatch-install-reboot-backup-image-01"


def gate(folder: Path) -> dict[str, Any]:
    (found,) = json.loads((folder / "summary.json").read_text())["rollout_gates"]
    assert (found["wave"], found["after"]) == ("prod", "canary")
    return dict(found)


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("canary") / "out"
    status = cli.main(["run", "--scenario", str(REPO / "scenarios" / "canary.yaml"), "--out", str(folder)])
    assert status == cli.EXIT_OK
    return folder


def test_with_no_canary_run_read_the_prod_wave_is_held(out: Path) -> None:
    assert gate(out / "01-friday")["reason"].endswith("no Install run of wave canary has been read yet")
    instances = by_name(out / "01-friday" / "instances.jsonl")
    assert [instances[n]["held"] for n in ("prod-1", "prod-2")] == [True, True]
    assert instances["prod-1"]["gate"] == gate(out / "01-friday")
    assert (instances["canary-1"]["held"], instances["canary-1"]["gate"]) == (None, None)
    assert ("task", "create", HELD_TASK) in changed(out / "01-friday")


def test_a_failed_canary_holds_prod_scanned_and_its_owners_are_told_why(out: Path) -> None:
    why = "held until wave canary passes its gate: 1 of 2 instance(s) failed or were missed (at most 0 allowed)"
    assert gate(out / "03-monday") == {**gate(out / "03-monday"), "open": False, "reason": why}
    told = [
        json.loads(line) for line in (out / "03-monday" / "notifications" / "team-shop.jsonl").read_text().splitlines()
    ]
    held = [message for message in told if message["attributes"].get("kind") == "rollout_held"]
    assert held and why in held[-1]["message"]
    results = by_name(out / "04-thursday" / "patch-results.jsonl")
    for name in ("prod-1", "prod-2"):
        assert (results[name]["outcome"], results[name]["operation"], results[name]["missing"]) == (
            "scanned",
            "Scan",
            3,
        )
        assert results[name]["reason"].startswith(f"rollout wave prod {why}; patching held back (scan only)")
    assert f"rollout wave prod {why}" in (out / "04-thursday" / "report.html").read_text()
    assert changed(out / "03-monday") == set()
    # The reminder before the Wednesday run tells team-shop its instances are held, and by which gate.
    thursday = (out / "04-thursday" / "notifications" / "team-shop.jsonl").read_text().splitlines()
    reminded = [m["message"] for m in map(json.loads, thursday) if "lead_hours" in m["attributes"]]
    listed = [item for message in reminded for item in message["listed"]]
    assert listed and all(item["held"] and item["gate"].startswith("rollout wave prod held until") for item in listed)


def test_a_passed_canary_opens_the_gate_after_the_soak_and_plan_mode_shows_it_first(out: Path) -> None:
    assert gate(out / "05-canary-passed")["open"] is False  # the gate judges the run read the cycle before
    opening = gate(out / "06-plan-open")
    assert opening["open"] is True and opening["reason"].startswith("open: wave canary patched 2 of 2")
    summary = json.loads((out / "06-plan-open" / "summary.json").read_text())
    assert summary["resource_write_calls"] == {} and summary["holds"] == []
    assert ("task", "delete", HELD_TASK) in changed(out / "06-plan-open")
    assert changed(out / "07-open") == changed(out / "06-plan-open")
    results = by_name(out / "08-prod-installed" / "patch-results.jsonl")
    for name in ("prod-1", "prod-2"):
        # Installed by the window (outcome patched); the latest patch state may be the daily patch scan's
        # since (#23), which finds nothing missing either.
        assert (results[name]["outcome"], results[name]["missing"]) == ("patched", 0)
        assert results[name]["operation"] in ("Install", "Scan")


def test_prod_waits_for_a_fresh_canary_pass_and_a_rerun_writes_nothing(out: Path) -> None:
    assert "no Install run of wave canary since wave prod last installed" in gate(out / "09-held-again")["reason"]
    assert ("task", "create", HELD_TASK) in changed(out / "09-held-again")
    assert changed(out / "14-rerun") == set()
    assert json.loads((out / "14-rerun" / "summary.json").read_text())["resource_write_calls"] == {}


def test_after_the_soak_prod_is_imaged_first_then_patched_and_its_post_install_hook_runs(out: Path) -> None:
    (task,) = [c for c in read(out / "07-open" / "changes.jsonl") if c["name"] == BACKUP_TASK]
    assert task["action"] == "create"
    assert (task["after"]["task_type"], task["after"]["hooks"]["post_install"]) == ("AUTOMATION", "app-health")
    results = by_name(out / "08-prod-installed" / "patch-results.jsonl")
    images = set()
    for name in ("prod-1", "prod-2"):
        line = results[name]
        # The backup's outcome and image beside the patch outcome, and the hook that ran after the install.
        assert (line["outcome"], line["backup_outcome"]) == ("patched", "succeeded"), line
        assert str(line["backup_id"]).startswith("ami-"), line
        assert line["hooks_ran"] == {"post_install": "app-health"}, line
        images.add(line["backup_id"])
    assert len(images) == 2  # one image per instance
    for name in ("canary-1", "canary-2"):  # the canary window takes no backup and runs no hook
        assert (results[name]["backup_outcome"], results[name]["hooks_ran"]) == (None, None)
    page = (out / "08-prod-installed" / "report.html").read_text()
    assert all(f"(backup {image})" in page for image in images)


def test_three_weeks_in_the_next_canary_pass_opens_prod_again_and_it_is_imaged_afresh(out: Path) -> None:
    assert gate(out / "10-canary-again")["open"] is False
    assert gate(out / "11-open-again")["open"] is True
    assert ("task", "create", BACKUP_TASK) in changed(out / "11-open-again")
    first = by_name(out / "08-prod-installed" / "patch-results.jsonl")
    again = by_name(out / "12-prod-again" / "patch-results.jsonl")
    for name in ("prod-1", "prod-2"):
        line = again[name]
        assert (line["outcome"], line["backup_outcome"], line["hooks_ran"]) == (
            "patched",
            "succeeded",
            {"post_install": "app-health"},
        )
        # A new image before the new patches: not the first round's.
        assert str(line["backup_id"]).startswith("ami-") and line["backup_id"] != first[name]["backup_id"]
        assert (line["installed"], line["missing"]) == (5, 0)
    assert gate(out / "13-held-once-more")["open"] is False
