"""scenarios/config-exceptions.yaml through the CLI: each step's config.jsonl, notifications.jsonl and
reports show what the scenario's comments say."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tagpatch_local import cli
from tagpatch_local.scenario import ScenarioError, load_scenario

REPO = Path(__file__).resolve().parents[2]


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def verdicts(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (line["rule"].removeprefix("tagpatch-local-"), line["name"]): line for line in read(folder / "config.jsonl")
    }


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("config-exceptions") / "out"
    status = cli.main(["run", "--scenario", str(REPO / "scenarios" / "config-exceptions.yaml"), "--out", str(folder)])
    assert status == cli.EXIT_OK
    return folder


def test_an_untagged_launch_is_non_compliant_before_the_next_cycle_and_its_owner_told(out: Path) -> None:
    first = verdicts(out / "01-friday")
    assert {line["compliance"] for line in first.values()} == {"COMPLIANT"}
    launch = verdicts(out / "02-untagged-launch")
    for rule in ("patch-tags", "managed-by-ssm", "instance-profile"):
        assert launch[(rule, "new-1")]["compliance"] == "NON_COMPLIANT", rule
    annotation = launch[("patch-tags", "new-1")]["annotation"]
    assert len(annotation) <= 256 and "Patch Group" in annotation
    # Evaluated at the launch (12:10), not at a cycle.
    assert launch[("patch-tags", "new-1")]["evaluated"] == "2026-11-27T12:10:00Z"
    told = read(out / "02-untagged-launch" / "notifications.jsonl")
    assert {(m["attributes"]["owner"], m["attributes"]["rule"]) for m in told} == {
        ("team-new", "tagpatch-local-patch-tags"),
        ("team-new", "tagpatch-local-managed-by-ssm"),
        ("team-new", "tagpatch-local-instance-profile"),
    }


def test_the_fix_turns_the_tag_rule_compliant_and_is_told_once(out: Path) -> None:
    fixed = verdicts(out / "03-fixed-and-excepted")
    assert fixed[("patch-tags", "new-1")]["compliance"] == "COMPLIANT"
    assert fixed[("instance-profile", "new-1")]["compliance"] == "NON_COMPLIANT"  # still no profile
    (told,) = read(out / "03-fixed-and-excepted" / "notifications.jsonl")
    assert "compliant again" in told["subject"]
    assert read(out / "04-sunday" / "notifications.jsonl")  # (expiry notices) but no Config re-sends
    assert not any(
        "attributes" in m and "rule" in m["attributes"] for m in read(out / "04-sunday" / "notifications.jsonl")
    )


def test_the_exception_holds_until_it_expires(out: Path) -> None:
    sunday = {line["name"]: line for line in read(out / "04-sunday" / "instances.jsonl")}
    assert (sunday["vendor-1"]["class"], sunday["vendor-1"]["tag_class"]) == ("excepted", "ready")
    assert sunday["vendor-1"]["exception"]["ticket"] == "CHG-4711"
    results = {line["name"]: line for line in read(out / "04-sunday" / "patch-results.jsonl")}
    assert results["vendor-1"]["outcome"] == "excepted" and "without it: failed" in results["vendor-1"]["reason"]
    assert results["web-1"]["outcome"] == "patched"
    told = read(out / "04-sunday" / "notifications.jsonl")
    assert sorted((m["attributes"]["owner"], m["attributes"].get("kind")) for m in told) == [
        ("governance", "exception_expiring"),
        ("team-vendor", "exception_expiring"),
    ]
    assert verdicts(out / "04-sunday")[("patch-tags", "vendor-1")]["annotation"].startswith("Excepted until 2026-12-05")

    after = {line["name"]: line for line in read(out / "05-after-expiry" / "instances.jsonl")}
    assert after["vendor-1"]["class"] == "ready" and after["vendor-1"]["expired_exception"]["expires"] == "2026-12-05"
    assert json.loads((out / "05-after-expiry" / "tag-report.json").read_text())["expired_exceptions"] == 1
    results = {line["name"]: line for line in read(out / "05-after-expiry" / "patch-results.jsonl")}
    assert results["vendor-1"]["outcome"] == "failed"
    kinds = sorted(
        (m["attributes"]["owner"], m["attributes"].get("kind") or m["attributes"].get("severity"))
        for m in read(out / "05-after-expiry" / "notifications.jsonl")
    )
    assert kinds == [
        ("governance", "exception_expired"),
        ("team-vendor", "error"),
        ("team-vendor", "exception_expired"),
    ]


def test_a_scenario_refuses_a_bad_recorder_flag_or_exceptions_file(tmp_path: Path) -> None:
    base = "instances: [{tags: {Name: a}, os: UBUNTU}]\n"
    path = tmp_path / "s.yaml"
    path.write_text(base + "config_recorder: yes please\ncycles: [{name: one}]\n")
    with pytest.raises(ScenarioError, match=r"config_recorder \(line 2\): must be true or false"):
        load_scenario(path)
    path.write_text(base + "cycles: [{name: one, edits: [{exceptions: missing.yaml}]}]\n")
    with pytest.raises(ScenarioError, match=r"missing\.yaml: no such file"):
        load_scenario(path)
    (tmp_path / "bad.yaml").write_text("exceptions: {not: a list}\n")
    path.write_text(base + "cycles: [{name: one, edits: [{exceptions: bad.yaml}]}]\n")
    with pytest.raises(ScenarioError, match="exceptions must be a list"):
        load_scenario(path)
    (tmp_path / "ok.yaml").write_text("exceptions: []\n")
    path.write_text(base + "config_recorder: true\ncycles: [{name: one, edits: [{exceptions: ok.yaml}]}]\n")
    scenario = load_scenario(path)
    assert scenario.config_recorder and scenario.cycles[0].edits[0].exceptions == (tmp_path / "ok.yaml").resolve()
