"""The compliance record and report.html: what passes through, what carries over, what a person sees."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tagpatch.classes import CLASSES
from tagpatch.export import (
    LATEST_REPORT_KEY,
    ExportKeys,
    compliance_percent,
    report_key,
    snapshot_key,
    snapshot_records,
    summarize,
)
from tagpatch.outcomes import OUTCOME_BEHAVIOUR
from tagpatch.report_html import FIXES, action_of, render
from tagpatch.targets import Target
from tagpatch.trend import TREND_KEY

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
EXCEPTION = {"reason": "vendor appliance", "expires": "2027-01-31", "approved_by": "ciso@example.com"}


def test_the_snapshot_key_is_partitioned_by_the_cycles_date_account_and_region() -> None:
    assert snapshot_key(NOW, Target("111111111111", "us-east-1")) == (
        "compliance/snapshots/dt=2026-11-29/account_id=111111111111/region=us-east-1/snapshot.jsonl.gz"
    )


def test_exception_and_the_excepted_class_pass_through_and_count_apart() -> None:
    lines: list[dict[str, Any]] = [
        {"instance_id": "i-1", "class": "excepted", "exception": EXCEPTION, "in_scope": True},
        {"instance_id": "i-2", "class": "ready"},
    ]
    results = {"i-2": {"outcome": "patched", "compliance": "COMPLIANT", "window": "w", "operation": "Install"}}
    excepted, ready = snapshot_records(lines, results, {"w": "2026-12-06T02:00Z"}, {}, NOW)
    assert (excepted["exception"], excepted["class"], excepted["compliance"]) == (EXCEPTION, "excepted", "UNKNOWN")
    assert ready["exception"] is None and ready["next_window_start"] == "2026-12-06T02:00Z"
    counts = summarize([excepted, ready])
    assert counts == {"instances": 2, "compliant": 1, "non_compliant": 0, "unknown": 1, "excepted": 1}
    assert compliance_percent(counts) == 100.0
    page = render([excepted, ready], generated_at="2026-11-29T12:00:00Z")
    assert 'id="excepted">1<' in page and 'id="needing-action">0<' in page


def test_the_last_successful_install_carries_over_until_a_new_one() -> None:
    line = {"instance_id": "i-1", "class": "ready"}
    previous = {"i-1": {"last_success_time": "2026-11-01T02:30:00Z"}}
    scan = {"outcome": "scanned", "operation": "Scan", "failed": 0, "operation_end": "2026-11-28T06:00:00Z"}
    (record,) = snapshot_records([line], {"i-1": scan}, {}, previous, NOW)
    assert (record["last_success_time"], record["days_since_last_success"]) == ("2026-11-01T02:30:00Z", 28)
    failed = {"outcome": "failed", "operation": "Install", "failed": 2, "operation_end": "2026-11-29T02:30:00Z"}
    (record,) = snapshot_records([line], {"i-1": failed}, {}, previous, NOW)
    assert record["last_success_time"] == "2026-11-01T02:30:00Z"
    patched = {"outcome": "patched", "operation": "Install", "failed": 0, "operation_end": "2026-11-29T02:30:00Z"}
    (record,) = snapshot_records([line], {"i-1": patched}, {}, previous, NOW)
    assert (record["last_success_time"], record["days_since_last_success"]) == ("2026-11-29T02:30:00Z", 0)
    (record,) = snapshot_records([line], {}, {}, {}, NOW)
    assert record["last_success_time"] is None and record["days_since_last_success"] is None


def test_each_instance_that_needs_action_gets_the_fix_for_what_is_wrong() -> None:
    assert action_of({"last_outcome": "failed"}) == OUTCOME_BEHAVIOUR["failed"].report_fix
    assert action_of({"last_outcome": "missed"}) == OUTCOME_BEHAVIOUR["missed"].report_fix
    assert action_of({"class": "ready", "critical_missing": 3}) == FIXES["critical"]
    assert action_of({"class": "missing_tags", "reasons": ["no Patch Group tag"]}) == CLASSES["missing_tags"].report_fix
    assert action_of({"class": "unmanaged"}) == CLASSES["unmanaged"].report_fix
    assert action_of({"class": "excepted", "last_outcome": "failed"}) is None
    assert action_of({"class": "ready", "compliance": "COMPLIANT", "last_outcome": "patched"}) is None


def test_the_page_escapes_what_tags_say_and_loads_nothing() -> None:
    line = {"instance_id": "i-1", "class": "invalid_tags", "name": "<script>x</script>", "reasons": ["bad <tag>"]}
    page = render(snapshot_records([line], {}, {}, {}, NOW), generated_at="now")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "http://" not in page and "https://" not in page


RUN = "2026-11-29T02:00:00Z"
FAILED_AT_TWO = {
    "outcome": "failed",
    "reason": "window w at 2026-11-29 02:00 UTC: Install ended Failed/Failed",
    "window": "w",
    "window_run_start": RUN,
    "operation": "Install",
    "failed": 2,
    "operation_end": "2026-11-29T02:05:00Z",
}


def test_the_latest_window_outcome_persists_until_a_newer_run_and_the_period_outcome_sits_beside_it() -> None:
    line = {"instance_id": "i-1", "class": "ready"}
    (first,) = snapshot_records([line], {"i-1": FAILED_AT_TWO}, {}, {}, NOW)
    assert (first["last_outcome"], first["last_outcome_time"]) == ("failed", "2026-11-29T02:05:00Z")
    assert first["last_outcome_reason"] == FAILED_AT_TWO["reason"]
    assert first["period_outcome"] == "failed"
    # Ten hours later no window ran: the failure, its time and reason stay; the period says not_due.
    not_due = {"outcome": "not_due", "reason": "window w did not run in this period", "window": "w"}
    (later,) = snapshot_records([line], {"i-1": not_due}, {}, {"i-1": first}, NOW.replace(hour=22))
    assert (later["last_outcome"], later["last_outcome_time"], later["last_outcome_reason"]) == (
        "failed",
        "2026-11-29T02:05:00Z",
        FAILED_AT_TWO["reason"],
    )
    assert (later["period_outcome"], later["period_outcome_reason"]) == ("not_due", not_due["reason"])
    # A newer run replaces it; a missed instance has no patch operation, so its time is the run's start.
    missed = {"outcome": "missed", "reason": "stopped", "window": "w", "window_run_start": "2026-12-06T02:00:00Z"}
    (next_week,) = snapshot_records([line], {"i-1": missed}, {}, {"i-1": later}, NOW)
    assert (next_week["last_outcome"], next_week["last_outcome_time"]) == ("missed", "2026-12-06T02:00:00Z")


def test_a_patch_state_older_than_the_run_does_not_date_the_runs_outcome() -> None:
    # Undeliverable: SSM kept the patch state of last week's Install.
    missed = {**FAILED_AT_TWO, "outcome": "missed", "operation_end": "2026-11-22T02:05:00Z"}
    (record,) = snapshot_records([{"instance_id": "i-1"}], {"i-1": missed}, {}, {}, NOW)
    assert record["last_outcome_time"] == RUN
    failed = {**FAILED_AT_TWO, "operation_end": "2026-11-22T02:05:00Z"}  # timed out before writing a state
    (record,) = snapshot_records([{"instance_id": "i-1"}], {"i-1": failed}, {}, {}, NOW)
    assert record["last_outcome_time"] == RUN


def test_the_outcomes_table_counts_each_instances_latest_window_outcome() -> None:
    lines = [{"instance_id": "i-1", "class": "ready"}, {"instance_id": "i-2", "class": "ready"}]
    not_due = {"outcome": "not_due", "reason": "r", "window": "w"}
    previous = {"i-1": next(iter(snapshot_records(lines[:1], {"i-1": FAILED_AT_TWO}, {}, {}, NOW)))}
    records = list(snapshot_records(lines, {"i-1": not_due, "i-2": not_due}, {}, previous, NOW))
    page = render(records, generated_at="now")
    outcomes = page.split('id="outcomes"', 1)[1].split("</table>", 1)[0]
    assert all(
        f'<td data-label="outcome">{name}</td><td data-label="instances" class=n>1</td>' in outcomes
        for name in ("failed", "not_due")
    )
    assert "i-1" in page.split('id="actions"', 1)[1].split("</table>", 1)[0]  # the failure still asks for action


def test_the_backup_of_the_latest_run_sits_beside_its_outcome_until_a_newer_run() -> None:
    line = {"instance_id": "i-1", "class": "ready", "owner": "web"}
    imaged = FAILED_AT_TWO | {"backup_outcome": "succeeded", "backup_id": "ami-0123456789abcdef0"}
    (record,) = snapshot_records([line], {"i-1": imaged}, {}, {}, NOW)
    assert (record["backup_outcome"], record["backup_id"]) == ("succeeded", "ami-0123456789abcdef0")
    # A cycle with no run since keeps the run's backup with its outcome.
    quiet = {"outcome": "not_due", "reason": "no run of window w since the last cycle", "window": "w"}
    (later,) = snapshot_records([line], {"i-1": quiet}, {}, {"i-1": record}, NOW)
    assert (later["last_outcome"], later["backup_outcome"], later["backup_id"]) == (
        "failed",
        "succeeded",
        "ami-0123456789abcdef0",
    )
    # A run without a backup task clears it.
    (unbacked,) = snapshot_records([line], {"i-1": FAILED_AT_TWO}, {}, {"i-1": record}, NOW)
    assert (unbacked["backup_outcome"], unbacked["backup_id"]) == (None, None)
    # The actions table names the image to roll back to beside the failed outcome.
    page = render([later], generated_at="2026-11-29T12:00:00Z")
    actions = page.split('<table id="actions">', 1)[1].split("</table>", 1)[0]
    assert "failed (backup ami-0123456789abcdef0)" in actions, actions


def test_each_record_names_the_account_and_region_of_its_cycle_s_target() -> None:
    member = Target("222222222222", "eu-west-1")
    (record,) = snapshot_records([{"instance_id": "i-1"}], {}, {}, {}, NOW, target=member)
    assert (record["account_id"], record["region"]) == ("222222222222", "eu-west-1")


def test_every_target_s_snapshots_sit_in_its_partition_and_home_keeps_the_single_account_reports() -> None:
    home, member = Target("111111111111", "us-east-1"), Target("222222222222", "eu-west-1")
    assert ExportKeys.of(home, home) == ExportKeys.of(None, home) == ExportKeys(home)
    at_home = ExportKeys(home)
    assert at_home.snapshot(NOW) == snapshot_key(NOW, home)
    assert at_home.latest == "compliance/latest/account_id=111111111111/region=us-east-1/snapshot.jsonl.gz"
    reports = (report_key(NOW), TREND_KEY, LATEST_REPORT_KEY)
    assert (at_home.report(NOW), at_home.trend, at_home.latest_report) == reports
    assert at_home.legacy_snapshot(NOW) == f"compliance/snapshots/dt={NOW:%Y-%m-%d}/snapshot.jsonl.gz"
    assert at_home.legacy_latest == "compliance/latest/snapshot.jsonl.gz"
    keys = ExportKeys.of(member, home)
    assert keys.snapshot(NOW) == (
        f"compliance/snapshots/dt={NOW:%Y-%m-%d}/account_id=222222222222/region=eu-west-1/snapshot.jsonl.gz"
    )
    assert keys.latest == "compliance/latest/account_id=222222222222/region=eu-west-1/snapshot.jsonl.gz"
    assert keys.legacy_snapshot(NOW) == (
        f"compliance/snapshots/dt={NOW:%Y-%m-%d}/snapshot-222222222222-eu-west-1.jsonl.gz"
    )
    assert keys.legacy_latest == "compliance/latest/snapshot-222222222222-eu-west-1.jsonl.gz"
    assert keys.trend == "compliance/trend/trend-222222222222-eu-west-1.json"
    assert keys.report(NOW) == f"compliance/reports/dt={NOW:%Y-%m-%d}/report-222222222222-eu-west-1.html"
    assert keys.latest_report == "compliance/reports/latest/report-222222222222-eu-west-1.html"


def test_every_target_s_page_has_a_name_of_its_own_beside_the_organization_s_home_s_too() -> None:
    home, member = Target("111111111111", "us-east-1"), Target("222222222222", "eu-west-1")
    at_home, keys = ExportKeys.of(home, home), ExportKeys.of(member, home)
    assert at_home.named_report(NOW) == f"compliance/reports/dt={NOW:%Y-%m-%d}/report-111111111111-us-east-1.html"
    assert at_home.named_latest_report == "compliance/reports/latest/report-111111111111-us-east-1.html"
    # A member's page already has its name: the same keys, never a second copy.
    assert (keys.named_report(NOW), keys.named_latest_report) == (keys.report(NOW), keys.latest_report)
