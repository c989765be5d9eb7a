"""scenarios/exception-hold.yaml through the CLI: a hold is planned, applied, scanned instead of
installed when the window runs, and undone after expiry, as the scenario's comments say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tagpatch_local import cli

from .support import by_name, changed

REPO = Path(__file__).resolve().parents[2]
PG = "tagpatch-install-reboot-patch-group"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("exception-hold") / "out"
    status = cli.main(["run", "--scenario", str(REPO / "scenarios" / "exception-hold.yaml"), "--out", str(folder)])
    assert status == cli.EXIT_OK
    return folder, ""


def test_the_plan_shows_the_hold_and_writes_nothing(run: tuple[Path, str]) -> None:
    out, _ = run
    summary = json.loads((out / "01-plan" / "summary.json").read_text())
    (hold,) = summary["holds"]
    instances = by_name(out / "01-plan" / "instances.jsonl")
    assert hold["held"] == [instances["vendor-1"]["instance_id"]]
    assert sorted(hold["installed_by_id"]) == sorted(instances[n]["instance_id"] for n in ("web-1", "web-2"))
    assert summary["resource_write_calls"] == {}
    assert {
        ("target", "create", f"{PG}-ids-01"),
        ("target", "create", f"{PG}-held-01"),
        ("task", "create", "tagpatch-install-reboot-held-01"),
    } <= changed(out / "01-plan")


def test_applied_the_held_instance_is_scanned_and_the_others_patched(run: tuple[Path, str]) -> None:
    out, _ = run
    assert by_name(out / "02-friday" / "instances.jsonl")["vendor-1"]["held"] is True
    assert ("task", "create", "tagpatch-install-reboot-held-01") in changed(out / "02-friday")
    results = by_name(out / "03-sunday" / "patch-results.jsonl")
    for name in ("web-1", "web-2", "db-1"):
        assert (results[name]["outcome"], results[name]["operation"], results[name]["missing"]) == (
            "patched",
            "Install",
            0,
        ), name
    vendor = results["vendor-1"]
    assert (vendor["outcome"], vendor["operation"], vendor["missing"]) == ("excepted", "Scan", 3)
    assert "patching held back (scan only); scanned" in vendor["reason"]
    assert changed(out / "03-sunday") == set()  # nothing changed, nothing written


def test_after_expiry_the_group_is_selected_by_tag_again(run: tuple[Path, str]) -> None:
    out, _ = run
    assert changed(out / "04-after-expiry") == {
        ("target", "update", f"{PG}-01"),
        ("target", "delete", f"{PG}-ids-01"),
        ("target", "delete", f"{PG}-held-01"),
        ("task", "update", "tagpatch-install-reboot-01"),
        ("task", "delete", "tagpatch-install-reboot-held-01"),
    }
    vendor = by_name(out / "04-after-expiry" / "instances.jsonl")["vendor-1"]
    assert vendor["class"] == "ready" and vendor["held"] is None and vendor["expired_exception"]["ticket"] == "CHG-4712"
    assert json.loads((out / "04-after-expiry" / "summary.json").read_text())["holds"] == []
