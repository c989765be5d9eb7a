"""The instance class table (tagpatch.classes) against everything that lists classes outside Python:
template.yaml's Athena queries, the tagging guide's class table and the local fleet's expectations.
Each failure says what to change where (CONTRIBUTING.md, "Add an instance class")."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

import pytest

from tagpatch.classes import CLASS_PRECEDENCE, CLASSES, InstanceClass, behaviour_of
from tagpatch.config_rules import evaluate_instance
from tagpatch.exceptions import ExceptionSet
from tagpatch.monitoring import WindowRun, outcome_of
from tagpatch.tags import InstanceFacts, classify
from tagpatch_local.fleet import ExpectedClass
from tests.compliance_sql import named_queries

NOW = datetime(2026, 11, 29, 2, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[3]
TAGS = {"Patch Group": "web", "Maintenance Window": "cron(0 2 ? * SUN *)"}
# One instance of each class, as discovery would see it.
FACTS: dict[InstanceClass, InstanceFacts] = {
    "missing_tags": InstanceFacts("i-missing", {"Patch Group": "web"}, "running", True, "Online", True),
    "invalid_tags": InstanceFacts("i-invalid", TAGS | {"PatchGroup": "db"}, "running", True, "Online", True),
    "unmanaged": InstanceFacts("i-unmanaged", TAGS, "running", False, None, False),
    "stopped": InstanceFacts("i-stopped", TAGS, "stopped", True, "ConnectionLost", True),
    "ready": InstanceFacts("i-ready", TAGS, "running", True, "Online", True),
}


def _quoted(text: str) -> list[str]:
    return re.findall(r"'([^']*)'", text)


def test_every_class_has_one_entry_in_precedence_order() -> None:
    assert tuple(CLASSES) == CLASS_PRECEDENCE == get_args(InstanceClass)
    assert all(behaviour.name == name for name, behaviour in CLASSES.items())
    assert set(FACTS) == set(CLASSES), "add an instance of the new class to FACTS"


@pytest.mark.parametrize("name", CLASS_PRECEDENCE)
def test_classify_finds_each_class_and_its_behaviour_is_the_tables(name: InstanceClass) -> None:
    result = classify(FACTS[name], ())
    assert result.instance_class == name
    behaviour = behaviour_of(name)
    assert behaviour is CLASSES[name]
    assert outcome_of(None, [], "i-1", name).reason == behaviour.not_scheduled_reason
    run = WindowRun("tagpatch-sun", "e" * 36, "SUCCESS", "", NOW, frozenset({"Install"}), {})
    missed = outcome_of("tagpatch-sun", [run], "i-1", name)
    assert (missed.outcome, missed.reason) == (
        "missed",
        f"window tagpatch-sun at {NOW:%Y-%m-%d %H:%M} UTC ran" + behaviour.not_selected_reason,
    )


@pytest.mark.parametrize("name", ["missing_tags", "invalid_tags", "ready"])
def test_the_config_tag_rule_flags_exactly_the_classes_the_table_says(name: InstanceClass) -> None:
    facts = FACTS[name]
    found = evaluate_instance(facts.instance_id, facts.tags, "running", (), ExceptionSet(), NOW)
    assert (found.compliance == "NON_COMPLIANT") is CLASSES[name].flagged_by_tag_rule


def test_an_unknown_class_has_no_behaviour() -> None:
    assert behaviour_of("excepted") is None
    assert behaviour_of(None) is None


def test_the_tag_problems_query_gives_each_class_with_a_fix_its_fix() -> None:
    query = named_queries()["TagProblemsQuery"]["QueryString"]
    fixes = dict(re.findall(r"WHEN '([^']*)' THEN '([^']*)'", query))
    expected = {name: behaviour.query_fix for name, behaviour in CLASSES.items() if behaviour.query_fix is not None}
    assert fixes == expected, "template.yaml TagProblemsQuery: one `WHEN '<class>' THEN '<query_fix>'` per class"
    listed = re.search(r"WHERE class IN \(([^)]*)\)", query)
    assert listed is not None
    assert _quoted(listed.group(1)) == list(expected), "template.yaml TagProblemsQuery: `WHERE class IN (...)`"


def test_the_stopped_or_unmanaged_query_lists_the_classes_ssm_does_not_manage() -> None:
    query = named_queries()["StoppedOrUnmanagedQuery"]["QueryString"]
    listed = re.findall(r"class = '([^']*)'", query)
    assert listed == [name for name, behaviour in CLASSES.items() if not behaviour.managed_by_ssm], (
        "template.yaml StoppedOrUnmanagedQuery: one `class = '<class>'` per class SSM does not manage"
    )


def _tagging_guide() -> tuple[list[str], list[str]]:
    """The classes of the `| class | meaning | what to do |` table, wherever the docs keep it, and
    those its "Precedence when several apply" sentence names."""
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        lines = text.splitlines()
        for index, line in enumerate(lines):
            if re.match(r"\|\s*class\s*\|\s*meaning\s*\|", line):
                rows = []
                for row in lines[index + 2 :]:
                    if not row.startswith("|"):
                        break
                    rows.append(row.split("|")[1].strip().strip("`"))
                precedence = re.search(r"Precedence when several apply:([^.]*)\.", text)
                assert precedence is not None, f"{page.name}: no 'Precedence when several apply: ...' sentence"
                return rows, re.findall(r"`([^`]+)`", precedence.group(1))
    raise AssertionError("no `| class | meaning | what to do |` table in README.md or docs/")


def test_the_tagging_guide_has_a_row_per_class_in_precedence_order() -> None:
    rows, precedence = _tagging_guide()
    assert rows == list(CLASS_PRECEDENCE), "the tagging guide's class table: one row per class, in precedence order"
    assert precedence == [name for name in CLASS_PRECEDENCE if name != "ready"], (
        "the tagging guide's precedence sentence (all but ready)"
    )


def test_the_local_fleet_expects_the_declared_classes() -> None:
    assert get_args(ExpectedClass) == CLASS_PRECEDENCE
