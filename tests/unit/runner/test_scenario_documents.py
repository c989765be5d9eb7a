"""A scenario's `document` edit: an operator's own Command document (a patch task's hook), checked
when the scenario loads, naming the key at fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagpatch_local.scenario import ScenarioError, command_document, load_scenario

FLEET = "instances:\n  - tags: {Name: web-1, Patch Group: web, Maintenance Window: sun-0200}\n    os: UBUNTU\n"


def scenario(tmp_path: Path, edit: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(f"{FLEET}cycles:\n  - name: first\n    edits:\n      - {edit}\n")
    return path


def test_a_document_edit_is_read_with_its_commands(tmp_path: Path) -> None:
    found = load_scenario(scenario(tmp_path, 'document: {name: app-health, commands: ["systemctl is-active nginx"]}'))
    (edit,) = found.cycles[0].edits
    assert (edit.kind, edit.document, edit.commands) == ("document", "app-health", ("systemctl is-active nginx",))
    (step,) = command_document(edit.commands)["mainSteps"]
    assert (step["action"], step["inputs"]["runCommand"]) == ("aws:runShellScript", ["systemctl is-active nginx"])


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        pytest.param('document: {name: ab, commands: ["true"]}', "document.name", id="too-short"),
        pytest.param('document: {name: AWS-Mine, commands: ["true"]}', "document.name", id="aws-owned"),
        pytest.param('document: {name: "app health", commands: ["true"]}', "document.name", id="space"),
        pytest.param("document: {name: app-health, commands: []}", "document.commands", id="no-commands"),
        pytest.param("document: {name: app-health, commands: [1]}", "document.commands", id="not-text"),
        pytest.param("document: {name: app-health}", "document.commands", id="missing"),
        pytest.param('document: {name: app-health, commands: ["true"], type: Automation}', "document", id="unknown"),
    ],
)
def test_a_bad_document_edit_is_refused_naming_the_key(tmp_path: Path, edit: str, key: str) -> None:
    with pytest.raises(ScenarioError) as refused:
        load_scenario(scenario(tmp_path, edit))
    assert key in str(refused.value), str(refused.value)
