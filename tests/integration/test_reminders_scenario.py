"""scenarios/reminders.yaml through the CLI: reminders.jsonl and notifications/<owner>.jsonl show what the
scenario's comments say."""

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


def changes(folder: Path) -> dict[str, int]:
    return dict(Counter(line["change"] for line in read(folder / "reminders.jsonl")))


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("reminders") / "out"
    status = cli.main(["run", "--scenario", str(REPO / "scenarios" / "reminders.yaml"), "--out", str(folder)])
    assert status == cli.EXIT_OK
    return folder


def test_reminders_are_created_kept_moved_and_used_up(out: Path) -> None:
    assert changes(out / "01-wednesday") == {"create": 6}
    assert changes(out / "02-wednesday-rerun") == {"unchanged": 6}
    rerun = json.loads((out / "02-wednesday-rerun" / "summary.json").read_text())
    assert not {"scheduler:CreateSchedule", "scheduler:DeleteSchedule"} & set(rerun["aws_write_calls"])
    assert changes(out / "03-thursday") == {"create": 2, "unchanged": 2, "delete": 2}
    assert changes(out / "04-monday") == {}
    first = read(out / "01-wednesday" / "reminders.jsonl")[0]
    assert {"window", "window_start", "lead_hours", "send_at", "patch_groups", "owners", "instances"} <= set(first)
    assert first["window_start"].endswith("Z") and first["send_at"].endswith("Z")


def test_each_team_receives_only_its_own_reminders_before_its_window(out: Path) -> None:
    thursday = {
        owner: read(out / "03-thursday" / "notifications" / f"{owner}.jsonl") for owner in ("team-web", "team-data")
    }
    monday = {
        owner: read(out / "04-monday" / "notifications" / f"{owner}.jsonl") for owner in ("team-web", "team-data")
    }
    assert {o: [m["message"]["lead_hours"] for m in ms] for o, ms in thursday.items()} == {
        "team-web": [72],
        "team-data": [72],
    }
    assert {o: [m["message"]["lead_hours"] for m in ms] for o, ms in monday.items()} == {
        "team-web": [24, 1],
        "team-data": [24, 1],
    }
    for owner, messages in (*thursday.items(), *monday.items()):
        for message in messages:
            assert json.loads(message["attributes"]["owner"]) == [owner]
    web = thursday["team-web"][0]["message"]
    assert web["window_start"] == "2026-11-29T02:00:00Z" and sorted(i["name"] for i in web["listed"]) == [
        "web-1",
        "web-2",
    ]
    # db-2's move reached the 24-hour reminder: two patch groups now.
    assert monday["team-data"][0]["message"]["patch_groups"] == ["db-canary", "db-prod"]
