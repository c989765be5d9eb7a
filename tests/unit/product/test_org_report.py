"""The organization's report.html (#26): SummarizeTargets' plan of which targets' snapshots to read (by
the keys their cycles returned), the merge of their rows onto one page, and every target it has no rows
of named with why."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from tagpatch.org_report import NO_SNAPSHOT, home_only, org_report_keys, org_rows, plan_report, summed_trend
from tagpatch.org_summary import TargetOutcome
from tagpatch.report_html import NotReported, owner_anchor, render
from tagpatch.targets import TargetPayload
from tagpatch.trend import TrendPoint

from .test_report_places import _row, _table

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
