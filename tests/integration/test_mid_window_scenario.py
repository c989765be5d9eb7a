"""scenarios/mid-window.yaml through the CLI: a cycle one minute into a window that patches one
instance at a time reports the instances under way as in_progress and alerts nobody; the cycle after
the run ended gives the final outcomes and alerts the failed instance's owner once; a third alerts
nothing again (issue #20, defect 3)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tagpatch_local import cli

REPO = Path(__file__).resolve().parents[2]


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def results(out: Path, cycle: str) -> dict[str, dict[str, Any]]:
    return {line["name"]: line for line in read(out / cycle / "patch-results.jsonl")}


def patching(out: Path, cycle: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((out / cycle / "summary.json").read_text())["patching"]
    return found


def alerts(out: Path, cycle: str, owner: str) -> list[dict[str, Any]]:
    """The owner alerts the owner's queue received since the last cycle (reminders left out)."""
    path = out / cycle / "notifications" / f"{owner}.jsonl"
    received = read(path) if path.exists() else []
    return [m for m in received if "severity" in m["attributes"]]


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mid-window") / "out"
    status = cli.main(["run", "--scenario", str(REPO / "scenarios" / "mid-window.yaml"), "--out", str(folder)])
    assert status == cli.EXIT_OK
    return folder


def test_a_cycle_during_the_run_reports_the_instances_in_progress_and_alerts_nobody(out: Path) -> None:
    found = results(out, "02-mid-window")
    assert {name: line["outcome"] for name, line in found.items()} == dict.fromkeys(
        ("web-1", "web-2", "web-3", "web-4"), "in_progress"
    )
    statuses = Counter(str(line["command_status"]) for line in found.values())
    assert statuses == {"InProgress/InProgress": 1, "Pending/Pending": 3}  # one instance at a time
    for line in found.values():
        assert "window tagpatch-sun-0200 has been running since 2026-11-29 02:00 UTC" in line["reason"]
    counts = patching(out, "02-mid-window")
    assert (counts["by_outcome"]["failed"], counts["by_outcome"]["missed"], counts["alerts_sent"]) == (0, 0, 0)
    assert alerts(out, "02-mid-window", "team-pay") == alerts(out, "02-mid-window", "team-web") == []


def test_the_cycle_after_the_run_gives_final_outcomes_and_alerts_the_failed_owner_once(out: Path) -> None:
    found = results(out, "03-after-the-run")
    assert {name: line["outcome"] for name, line in found.items()} == {
        "web-1": "patched",
        "web-2": "failed",
        "web-3": "patched",
        "web-4": "patched",
    }
    assert patching(out, "03-after-the-run")["alerts_sent"] == 1
    (alert,) = alerts(out, "03-after-the-run", "team-pay")
    assert alert["attributes"]["severity"] == "error" and "web-2" in json.dumps(alert)
    assert alerts(out, "03-after-the-run", "team-web") == []


def test_a_third_cycle_reads_no_run_and_alerts_nothing_again(out: Path) -> None:
    counts = patching(out, "04-next-day")
    assert (counts["window_runs"], counts["alerts_sent"]) == (0, 0)
    assert alerts(out, "04-next-day", "team-pay") == []
