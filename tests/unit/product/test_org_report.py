"""The organization's report.html (#26): SummarizeTargets' plan of which targets' snapshots to read (by
the keys their cycles returned), the merge of their rows onto one page, and every target it has no rows
of named with why."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tagpatch.config import OrgReportConfig
from tagpatch.errors import ConfigurationError
from tagpatch.org_report import (
    MEASURED_BYTES_PER_ROW,
    NO_SNAPSHOT,
    ORG_REPORT_MAX_ROWS,
    SUMMARIZE_TARGETS_MEMORY_MB,
    home_only,
    org_page,
    org_pages,
    org_report_keys,
    org_rows,
    plan_report,
    summed_trend,
)
from tagpatch.org_summary import TargetOutcome
from tagpatch.report_html import NotReported, owner_anchor, render
from tagpatch.targets import TargetPayload
from tagpatch.trend import TrendPoint
from tagpatch_local.template import load_template

from .test_report_places import _row, _table

REPO = Path(__file__).resolve().parents[3]
HUB, MEMBER, SPOKELESS = "111111111111", "222222222222", "333333333333"
HOME = TargetPayload(account_id=HUB, region="us-east-1")


def _outcome(account: str, region: str, snapshot_key: str | None, reason: str | None = None) -> TargetOutcome:
    succeeded = reason is None
    return TargetOutcome(
        target={"account_id": account, "region": region},
        status="SUCCEEDED" if succeeded else "FAILED",
        execution_arn=None,
        error=None if succeeded else "States.TaskFailed",
        reason=reason,
        compliance={"snapshot_key": snapshot_key, "counts": {}} if succeeded and snapshot_key else None,
    )


OUTCOMES = [
    _outcome(HUB, "us-east-1", "compliance/snapshots/dt=2026-12-07/snapshot.jsonl.gz"),
    _outcome(MEMBER, "eu-west-1", f"compliance/snapshots/dt=2026-12-07/snapshot-{MEMBER}-eu-west-1.jsonl.gz"),
    _outcome(SPOKELESS, "eu-west-1", None, "its patch cycle ended FAILED: TargetAccessDenied: no spoke"),
]
SNAPSHOTS: dict[str, list[dict[str, Any]]] = {
    OUTCOMES[0]["compliance"]["snapshot_key"]: [  # type: ignore[index]
        _row(1, HUB, "us-east-1", "COMPLIANT"),
        _row(2, HUB, "us-east-1", "NON_COMPLIANT", owner="team-b"),
    ],
    OUTCOMES[1]["compliance"]["snapshot_key"]: [  # type: ignore[index]
        _row(3, MEMBER, "eu-west-1", "NON_COMPLIANT"),
    ],
}


def test_the_plan_reads_each_succeeded_targets_snapshot_and_names_each_failed_one() -> None:
    plan = plan_report(OUTCOMES, HOME)
    assert plan.snapshots == (
        (f"{HUB}/us-east-1", "compliance/snapshots/dt=2026-12-07/snapshot.jsonl.gz"),
        (f"{MEMBER}/eu-west-1", f"compliance/snapshots/dt=2026-12-07/snapshot-{MEMBER}-eu-west-1.jsonl.gz"),
    )
    assert plan.not_reported == (
        NotReported(f"{SPOKELESS}/eu-west-1", "its patch cycle ended FAILED: TargetAccessDenied: no spoke"),
    )


def test_the_trend_is_each_reported_targets_own_summed_by_date() -> None:
    assert plan_report(OUTCOMES, HOME).trend_keys == (
        "compliance/trend/trend.json",
        f"compliance/trend/trend-{MEMBER}-eu-west-1.json",
    )
    hub = [_point("2026-11-30", 2, 1, 1), _point("2026-12-07", 2, 2, 0)]
    member = [_point("2026-12-07", 3, 0, 2)]  # joined later: adds to its own dates only
    assert summed_trend([hub, member]) == [_point("2026-11-30", 2, 1, 1), _point("2026-12-07", 5, 2, 2)]
    page = render(
        [],
        generated_at="2026-12-07T02:00:00Z",
        trend=summed_trend([hub, member]),
        targets=plan_report(OUTCOMES, HOME).targets,
    )
    assert 'id="trend"' in page


def _point(date: str, instances: int, compliant: int, non_compliant: int) -> TrendPoint:
    return TrendPoint(
        date=date,
        instances=instances,
        compliant=compliant,
        non_compliant=non_compliant,
        unknown=instances - compliant - non_compliant,
        excepted=0,
    )


def test_a_succeeded_target_that_returned_no_snapshot_is_named_not_silently_left_out() -> None:
    plan = plan_report([_outcome(MEMBER, "eu-west-1", None)], HOME)
    assert plan.snapshots == ()
    assert plan.not_reported == (NotReported(f"{MEMBER}/eu-west-1", NO_SNAPSHOT),)


def test_the_rows_are_read_one_snapshot_after_another_only_as_they_are_consumed() -> None:
    read: list[str] = []

    def reader(key: str) -> Iterable[Mapping[str, Any]]:
        read.append(key)
        return iter(SNAPSHOTS[key])

    rows = org_rows(plan_report(OUTCOMES, HOME), reader)
    assert read == []  # a generator: nothing is read until the page consumes it
    assert [row["instance_id"] for row in rows] == [f"i-{n:017x}" for n in (1, 2, 3)]
    assert read == [key for _, key in plan_report(OUTCOMES, HOME).snapshots]


def test_one_page_shows_every_reported_targets_rows_and_names_the_target_not_reported() -> None:
    plan = plan_report(OUTCOMES, HOME)
    page = render(org_rows(plan, lambda key: SNAPSHOTS[key]), generated_at="2026-12-07T02:00:00Z", targets=plan.targets)
    assert "Snapshot of 3 instances" in page
    assert [row[:4] for row in _table(page, "by-account")] == [[HUB, "1/2", "50.0%", "1"], [MEMBER, "0/1", "0.0%", "1"]]
    assert [row[0] for row in _table(page, "by-region")] == ["us-east-1", "eu-west-1"]
    assert {row[0] for row in _table(page, owner_anchor("team-a"))} == {"i-00000000000000001", "i-00000000000000003"}
    assert _table(page, "targets") == [
        [f"{SPOKELESS}/eu-west-1", "not reported: its patch cycle ended FAILED: TargetAccessDenied: no spoke"]
    ]
    assert f"Rows of 2 targets: {HUB}/us-east-1, {MEMBER}/eu-west-1." in page
    # The week's changes are each target's own page's; the organization's page claims none.
    assert 'id="week"' not in page


def test_a_single_targets_page_is_unchanged_by_the_organizations_section() -> None:
    page = render([_row(1, HUB, "us-east-1", "COMPLIANT")], generated_at="2026-12-07T02:00:00Z")
    assert 'id="targets"' not in page and "not reported" not in page
    assert 'id="week"' in page and 'id="trend"' in page


def test_home_alone_keeps_its_own_page_and_any_other_set_of_targets_gets_the_organizations() -> None:
    assert home_only(OUTCOMES[:1], HOME)
    assert not home_only(OUTCOMES[1:2], HOME)  # one member target: home's page would not hold its rows
    assert not home_only(OUTCOMES, HOME)


def test_the_page_goes_where_a_single_accounts_does_in_apply_mode_and_nowhere_in_plan_mode() -> None:
    now = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    assert org_report_keys("apply", now) == [
        "compliance/reports/dt=2026-12-07/report.html",
        "compliance/reports/latest/report.html",
    ]
    assert org_report_keys("plan", now) == []


# --- past the limit: the summary page, built from the targets' counts alone -----------------------------

SECOND_REGION = "ap-south-1"


def _counted(account: str, region: str, compliant: int, non_compliant: int, unknown: int) -> TargetOutcome:
    outcome = _outcome(account, region, f"compliance/snapshots/dt=2026-12-07/{account}-{region}.jsonl.gz")
    counts = {"compliant": compliant, "non_compliant": non_compliant, "unknown": unknown, "excepted": 1}
    outcome["compliance"] = {
        **(outcome["compliance"] or {}),
        "counts": {"instances": sum(counts.values()) - 1, **counts},
    }
    return outcome


COUNTED = [
    _counted(HUB, "us-east-1", 3, 1, 0),  # home: 4 instances
    _counted(MEMBER, "eu-west-1", 1, 1, 2),  # 4
    _counted(MEMBER, SECOND_REGION, 2, 0, 0),  # 2
    _outcome(SPOKELESS, "eu-west-1", None, "its patch cycle ended FAILED: TargetAccessDenied: no spoke"),
]


def _table_rows(page: str, table_id: str) -> list[list[str]]:
    """The cells of each row of the table with `table_id` (not of the whole section around it)."""
    start = page.index(f'<table id="{table_id}"')
    return _table(f'<section id="only">{page[start : page.index("</table>", start)]}</table></section>', "only")


def _no_row_read(key: str) -> Iterable[Mapping[str, Any]]:
    raise AssertionError(f"the summary page read the rows of {key}")


def test_past_the_limit_the_page_is_a_summary_of_the_targets_counts_and_reads_no_row() -> None:
    trend = [_point("2026-12-07", 10, 6, 2)]
    page = org_page(
        plan_report(COUNTED, HOME), _no_row_read, generated_at="2026-12-07T02:00:00Z", trend=trend, max_rows=9
    )
    tiles = dict(re.findall(r'<div class=big id="([a-z-]+)">([^<]*)</div>', page))
    assert tiles == {
        "compliance-percent": "75.0%",  # 6 of the 8 with a known state
        "instances": "10",
        "compliant": "6",
        "non-compliant": "2",
        "unknown": "2",
        "excepted": "3",
    }
    assert _table_rows(page, "target-pages") == [
        [HUB, "us-east-1", "4", "3", "1", "0", "75.0%", f"report-{HUB}-us-east-1.html"],
        [MEMBER, "eu-west-1", "4", "1", "1", "2", "50.0%", f"report-{MEMBER}-eu-west-1.html"],
        [MEMBER, SECOND_REGION, "2", "2", "0", "0", "100.0%", f"report-{MEMBER}-{SECOND_REGION}.html"],
    ]
    # Each target's own page, home's too, beside this one under either of its keys.
    assert re.findall(r'<a href="([^"]+)">', page) == [
        f"report-{HUB}-us-east-1.html",
        f"report-{MEMBER}-eu-west-1.html",
        f"report-{MEMBER}-{SECOND_REGION}.html",
    ]
    assert [row[:4] for row in _table(page, "by-account")] == [
        [HUB, "3/4", "75.0%", "1"],
        [MEMBER, "3/4", "75.0%", "1"],
    ]
    assert [row[:4] for row in _table(page, "by-region")] == [
        ["us-east-1", "3/4", "75.0%", "1"],
        [SECOND_REGION, "2/2", "100.0%", "0"],
        ["eu-west-1", "1/2", "50.0%", "1"],
    ]
    assert [cells[0] for cells in _table_rows(page, "not-reported")] == [f"{SPOKELESS}/eu-west-1"]
    assert "the organization has more instances than the 9 this page reads" in page
    assert 'id="trend"' in page and "No snapshots yet" not in page
    assert 'id="actions"' not in page and 'id="owners"' not in page  # no instance row, no row section


def test_the_summed_counts_choose_the_page_at_and_just_over_the_limit() -> None:
    plan = plan_report(COUNTED, HOME)
    assert plan.instances == 10
    read: list[str] = []

    def reader(key: str) -> Iterable[Mapping[str, Any]]:
        read.append(key)
        return []

    at_limit = org_page(plan, reader, generated_at="2026-12-07T02:00:00Z", trend=[], max_rows=10)
    assert read == [key for _, key in plan.snapshots] and 'id="actions"' in at_limit
    over = org_page(plan, _no_row_read, generated_at="2026-12-07T02:00:00Z", trend=[], max_rows=9)
    assert 'id="target-pages"' in over and 'id="actions"' not in over


def test_a_target_that_returned_no_count_makes_the_summary_not_an_unbounded_read() -> None:
    plan = plan_report([*COUNTED[:2], _outcome(MEMBER, SECOND_REGION, "compliance/snapshots/x.jsonl.gz")], HOME)
    assert plan.instances is None
    page = org_page(plan, _no_row_read, generated_at="2026-12-07T02:00:00Z", trend=[], max_rows=1_000_000)
    assert _table_rows(page, "target-pages")[2][:7] == [MEMBER, SECOND_REGION, "", "", "", "", "counts not returned"]
    assert "a target returned no count, so this page reads no rows" in page


def test_the_row_limit_is_derived_from_summarize_targets_memory_in_the_template() -> None:
    template = load_template(REPO / "template.yaml")
    memory = template["Resources"]["SummarizeTargetsFunction"]["Properties"]["MemorySize"]
    assert memory == SUMMARIZE_TARGETS_MEMORY_MB
    # Half the memory at the measured bytes a row: some 200,000 rows, never the 1,000,000 of the design scale.
    assert memory * 1_000_000 // 2 >= ORG_REPORT_MAX_ROWS * MEASURED_BYTES_PER_ROW
    assert 150_000 < ORG_REPORT_MAX_ROWS < 250_000
    assert OrgReportConfig.from_env({}).max_rows == ORG_REPORT_MAX_ROWS
    assert OrgReportConfig.from_env({"ORG_REPORT_MAX_ROWS": "12"}).max_rows == 12
    with pytest.raises(ConfigurationError, match="ORG_REPORT_MAX_ROWS must be a positive integer"):
        OrgReportConfig.from_env({"ORG_REPORT_MAX_ROWS": "0"})


def test_each_link_leads_to_the_target_s_page_of_its_own_day_from_the_day_s_page_and_latest() -> None:
    """A target whose cycle started after midnight (a later wave of the Map) wrote its day's page in the
    next day's folder: the organization's page of its own day links there, the latest one beside it."""
    late = _counted(MEMBER, "eu-west-1", 1, 1, 2)
    late["compliance"] = {
        **(late["compliance"] or {}),
        "report_key": f"compliance/reports/dt=2026-12-08/report-{MEMBER}-eu-west-1.html",
    }
    home = _counted(HUB, "us-east-1", 3, 1, 0)
    home["compliance"] = {**(home["compliance"] or {}), "report_key": "compliance/reports/dt=2026-12-07/report.html"}
    keys = ["compliance/reports/dt=2026-12-07/report.html", "compliance/reports/latest/report.html"]
    pages = org_pages(
        plan_report([home, late], HOME), _no_row_read, keys, generated_at="2026-12-07T23:00:00Z", trend=[], max_rows=1
    )
    assert re.findall(r'<a href="([^"]+)">', pages[keys[0]]) == [
        f"report-{HUB}-us-east-1.html",
        f"../dt=2026-12-08/report-{MEMBER}-eu-west-1.html",
    ]
    assert re.findall(r'<a href="([^"]+)">', pages[keys[1]]) == [
        f"report-{HUB}-us-east-1.html",
        f"report-{MEMBER}-eu-west-1.html",
    ]
