"""The outcome table (tagpatch.outcomes) against what acts on an outcome: the alerts, the export's
outcome time, report.html's table and fixes, and the Athena queries that name outcomes."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import get_args

import pytest

from tagpatch.export import snapshot_records
from tagpatch.monitoring import alerts_for
from tagpatch.outcomes import OUTCOME_BEHAVIOUR, OUTCOMES, Outcome, outcome_behaviour
from tagpatch.report_html import OUTCOME_ORDER, action_of
from tests.compliance_sql import named_queries

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
START = "2026-11-29T02:00:00Z"
END = "2026-11-29T02:30:00Z"


def test_every_outcome_has_one_entry_in_order() -> None:
    assert tuple(OUTCOME_BEHAVIOUR) == OUTCOMES == get_args(Outcome)
    assert all(behaviour.name == name for name, behaviour in OUTCOME_BEHAVIOUR.items())
    assert tuple(name for name in OUTCOMES if OUTCOME_BEHAVIOUR[name].in_report_table) == OUTCOME_ORDER


@pytest.mark.parametrize("name", OUTCOMES)
def test_each_outcome_alerts_and_dates_and_fixes_as_the_table_says(name: Outcome) -> None:
    behaviour = OUTCOME_BEHAVIOUR[name]
    result = {
        "instance_id": "i-1",
        "outcome": name,
        "reason": "r",
        "owner": "team",
        "window_run_start": START,
        "operation_end": END,
    }
    alerts = alerts_for([result], "ops")
    assert [alert.severity for alert in alerts] == ([behaviour.alert] if behaviour.alert else [])
    (record,) = snapshot_records([{"instance_id": "i-1", "class": "ready"}], {"i-1": result}, {}, {}, NOW)
    assert record["last_outcome_time"] == (END if behaviour.operation_ended else START)
    fix = action_of({"class": "ready", "last_outcome": name, "compliance": "COMPLIANT"})
    assert fix == behaviour.report_fix


def test_a_failed_instance_makes_its_groups_alert_an_error() -> None:
    results = [
        {"instance_id": "i-1", "outcome": "missed", "owner": "team", "patch_group": "web"},
        {"instance_id": "i-2", "outcome": "failed", "owner": "team", "patch_group": "web"},
        {"instance_id": "i-3", "outcome": "missed", "owner": "team", "patch_group": "db"},
    ]
    assert [(a.patch_group, a.severity) for a in alerts_for(results, "ops")] == [("db", "warning"), ("web", "error")]


def test_an_unknown_outcome_has_no_behaviour() -> None:
    assert outcome_behaviour("skipped") is None
    assert outcome_behaviour(None) is None


def test_the_athena_queries_name_only_declared_outcomes() -> None:
    named = {
        outcome
        for query in named_queries().values()
        for outcome in re.findall(r"last_outcome\s*(?:=|<>|!=)\s*'([^']*)'", query["QueryString"])
    }
    assert named, "no query names an outcome: the pattern no longer matches template.yaml"
    assert named <= set(OUTCOMES), f"template.yaml's Athena queries name outcomes not in tagpatch.outcomes: {named}"
