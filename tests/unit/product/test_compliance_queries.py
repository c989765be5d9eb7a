"""Every Athena named query of template.yaml runs on DuckDB over snapshots that the export code wrote for
twelve days of a small fleet's story, and each answer is the one the story implies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tagpatch import freshness
from tagpatch.export import latest_key, snapshot_key, snapshot_records
from tagpatch.inventory import decode_jsonl_gz, encode_jsonl_gz
from tagpatch.targets import Target
from tests.compliance_sql import connect, duckdb_sql, glue_columns, named_queries, partition_keys, run

DAY0 = datetime(2026, 11, 1, 6, tzinfo=UTC)
DAYS = 12
LAST = f"{DAY0 + timedelta(days=DAYS - 1):%Y-%m-%d}"  # 2026-11-12
TARGET = Target("123456789012", "us-east-1")


def _line(instance_id: str, **fields: Any) -> dict[str, Any]:
    base = {"instance_id": instance_id, "name": instance_id.upper(), "state": "running", "ping_status": "Online"}
    return base | {"class": "ready", "reasons": [], "in_scope": True} | fields


LINES = [
    _line("i-a", owner="alpha", patch_group="web", os="AmazonLinux2023", maintenance_window="sun"),
    _line("i-b", owner="alpha", patch_group="web", os="Windows", maintenance_window="sun"),
    _line("i-c", owner="beta", patch_group="db", os="Ubuntu", maintenance_window="sun"),
    _line("i-d", owner="beta", os="AmazonLinux2023", **{"class": "missing_tags"}, reasons=["no Patch Group tag"]),
    _line("i-e", owner=None, patch_group="web", os=None, ping_status=None, **{"class": "unmanaged"}),
    _line("i-f", owner="beta", patch_group="db", os="AmazonLinux2023", state="stopped", **{"class": "stopped"}),
    _line(
        "i-g",
        owner="alpha",
        os="Windows",
        in_scope=False,
        **{"class": "excepted"},
        exception={"reason": "vendor appliance", "expires": "2027-01-01", "approved_by": "ciso"},
    ),
]


def _at(day: int) -> str:
    return f"{DAY0 + timedelta(days=day):%Y-%m-%dT%H:%M:%SZ}"


def _result(
    outcome: str, compliance: str, *, critical: int = 0, operation: str = "Install", end: int = 0, failed: int = 0
) -> dict[str, Any]:
    return {
        "outcome": outcome,
        "reason": f"{outcome} in tagpatch-sun",
        "window": "tagpatch-sun",
        "compliance": compliance,
        "missing": critical,
        "critical_missing": critical,
        "failed": failed,
        "pending_reboot": 0,
        "operation": operation,
        "operation_end": _at(end),
        # A run of the window gave the outcome (not_due: none did in the period).
        "window_run_start": None if outcome == "not_due" else _at(end),
    }


def results_of(day: int) -> dict[str, dict[str, Any]]:
    """What PatchMonitoring said of each in-scope instance on `day` (0 to 11)."""
    a = _result("patched" if day == 0 else "not_due", "COMPLIANT")
    if day == 9:
        b = _result("failed", "NON_COMPLIANT", critical=2, end=9, failed=1)
    else:
        b = _result("scanned" if day == 0 else "not_due", "NON_COMPLIANT", critical=2, operation="Scan")
    c = (
        _result("not_due", "COMPLIANT")
        if day < 10
        else _result("scanned", "NON_COMPLIANT", critical=1, operation="Scan", end=10)
    )
    e = {"outcome": "not_scheduled", "reason": "unmanaged", "window": None, "compliance": "UNKNOWN"}
    f = _result("missed" if day == 11 else "not_due", "COMPLIANT")
    return {"i-a": a, "i-b": b, "i-c": c, "i-e": e, "i-f": f}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bucket")
    previous: dict[str, dict[str, Any]] = {}
    for day in range(DAYS):
        now = DAY0 + timedelta(days=day)
        records = list(
            snapshot_records(LINES, results_of(day), {"tagpatch-sun": _at(day + 6)}, previous, now, target=TARGET)
        )
        for key in (snapshot_key(now, TARGET), latest_key(TARGET)):
            (root / key).parent.mkdir(parents=True, exist_ok=True)
            (root / key).write_bytes(encode_jsonl_gz(records))
        previous = {r["instance_id"]: r for r in records}
    return root


def query(exported: Path, logical_id: str) -> list[dict[str, Any]]:
    return run(connect(exported), str(named_queries()[logical_id]["QueryString"]))


def test_the_template_has_at_least_eight_named_queries_on_the_compliance_database() -> None:
    queries = named_queries()
    assert len(queries) >= 8
    for properties in queries.values():
        assert properties["Database"] == {"Ref": "ComplianceDatabase"}
        assert properties["WorkGroup"] == {"Ref": "ComplianceWorkGroup"}


def test_the_glue_tables_have_every_field_a_record_holds(exported: Path) -> None:
    # The partition keys are columns too; the records keep account_id and region as well.
    (record, *_) = decode_jsonl_gz((exported / latest_key(TARGET)).read_bytes())
    for table in ("SnapshotsTable", "LatestTable"):
        columns = [name for name, _ in glue_columns(table)] + partition_keys(table)
        assert sorted(set(columns) - {"dt"}) == sorted(record), table
        assert not set(partition_keys(table)) & {name for name, _ in glue_columns(table)}, table  # Athena refuses


def test_each_row_carries_its_partitions_account_and_region(exported: Path) -> None:
    rows = run(connect(exported), "SELECT DISTINCT account_id, region, dt FROM snapshots ORDER BY dt")
    assert {(row["account_id"], row["region"]) for row in rows} == {(TARGET.account_id, TARGET.region)}
    assert len(rows) == DAYS
    latest = run(connect(exported), "SELECT DISTINCT account_id, region FROM latest")
    assert latest == [{"account_id": TARGET.account_id, "region": TARGET.region}]


def test_the_translation_changes_only_the_listed_functions() -> None:
    translated = duckdb_sql("SELECT array_join(reasons, '; ') FROM latest")
    assert translated == "SELECT array_to_string(reasons, '; ') FROM latest"
    assert duckdb_sql("SELECT x FROM latest") == "SELECT x FROM latest"


@pytest.mark.slow  # runs each query over a month of exported snapshots on DuckDB
@pytest.mark.parametrize(
    ("logical_id", "key"),
    [
        ("ComplianceByOwnerQuery", "owner"),
        ("ComplianceByPatchGroupQuery", "patch_group"),
        ("ComplianceByOsQuery", "os"),
    ],
)
def test_compliance_over_time(exported: Path, logical_id: str, key: str) -> None:
    rows = query(exported, logical_id)
    by_day = {(row["dt"], row[key]): (row["instances"], row["compliant"], row["compliant_percent"]) for row in rows}
    assert {row["dt"] for row in rows} == {f"{DAY0 + timedelta(days=d):%Y-%m-%d}" for d in range(DAYS)}
    expected_last = {
        "owner": {"alpha": (2, 1, 50.0), "beta": (2, 1, 50.0)},
        "patch_group": {"db": (2, 1, 50.0), "web": (2, 1, 50.0)},
        "os": {"AmazonLinux2023": (2, 2, 100.0), "Ubuntu": (1, 0, 0.0), "Windows": (1, 0, 0.0)},
    }[key]
    expected_first = {
        "owner": {"alpha": (2, 1, 50.0), "beta": (2, 2, 100.0)},
        "patch_group": {"db": (2, 2, 100.0), "web": (2, 1, 50.0)},
        "os": {"AmazonLinux2023": (2, 2, 100.0), "Ubuntu": (1, 1, 100.0), "Windows": (1, 0, 0.0)},
    }[key]
    assert {value: counts for (day, value), counts in by_day.items() if day == LAST} == expected_last
    assert {value: counts for (day, value), counts in by_day.items() if day == "2026-11-01"} == expected_first


def test_missing_critical_for_more_than_seven_days(exported: Path) -> None:
    rows = query(exported, "MissingCriticalQuery")
    # i-b has missed 2 critical patches since the first day; i-c only for the last two.
    assert [(r["instance_id"], r["critical_missing"], r["days_missing"]) for r in rows] == [("i-b", 2, 11)]


def test_tag_problems_by_owner_with_the_fix(exported: Path) -> None:
    rows = query(exported, "TagProblemsQuery")
    assert [(r["owner"], r["instance_id"], r["class"], r["reasons"]) for r in rows] == [
        ("(none)", "i-e", "unmanaged", ""),
        ("beta", "i-d", "missing_tags", "no Patch Group tag"),
    ]
    assert rows[1]["fix"] == "Add the Patch Group and Maintenance Window tags"


def test_stopped_or_unmanaged_instances_and_missed_windows(exported: Path) -> None:
    rows = query(exported, "StoppedOrUnmanagedQuery")
    # No window ever ran i-e: it has no latest outcome, and its period's says why.
    assert [(r["instance_id"], r["last_outcome"], r["period_outcome"]) for r in rows] == [
        ("i-f", "missed", "missed"),
        ("i-e", None, "not_scheduled"),
    ]


def test_windows_with_failures_in_the_last_30_days(exported: Path) -> None:
    # i-b failed on day 9 and its failure stays its latest outcome on days 10 and 11: the days are the
    # failure's, not the snapshots' that still show it.
    rows = query(exported, "WindowFailuresQuery")
    expected = {"window": "tagpatch-sun", "failed_instances": 1, "first_day": "2026-11-10", "last_day": "2026-11-10"}
    assert rows == [expected]


def test_instances_never_patched(exported: Path) -> None:
    # i-a, i-c and i-f installed on the first day (carried over from snapshot to snapshot); i-b never
    # did, nor did i-d (no tags) and i-e (unmanaged); i-g is out of scope.
    assert [r["instance_id"] for r in query(exported, "NeverPatchedQuery")] == ["i-b", "i-d", "i-e"]


def test_stale_scans_are_older_than_the_threshold_or_never_taken(exported: Path) -> None:
    rows = query(exported, "StaleScansQuery")
    # On the last day (day 11): i-a, i-b and i-f were last scanned on day 0 (older than the default 2
    # days), i-c on day 10 (current); i-d, i-e and i-g have no patch state at all.
    assert [(r["instance_id"], r["scan_status"], r["scan_age_days"]) for r in rows] == [
        ("i-g", "never_scanned", None),
        ("i-d", "never_scanned", None),
        ("i-e", "never_scanned", None),
        ("i-a", "stale", 11.0),
        ("i-b", "stale", 11.0),
        ("i-f", "stale", 11.0),
    ]
    assert {r["instance_id"]: r["compliance_unknown_reason"] for r in rows if r["scan_status"] == "never_scanned"} == {
        "i-g": freshness.NO_PATCH_GROUP,
        "i-d": freshness.NO_PATCH_GROUP,
        "i-e": freshness.UNMANAGED,
    }


def test_compliance_now_counts_excepted_instances(exported: Path) -> None:
    rows = query(exported, "ComplianceNowQuery")
    assert [(r["compliance"], r["instances"], r["excepted"]) for r in rows] == [
        ("COMPLIANT", 2, 0),
        ("NON_COMPLIANT", 2, 0),
        ("UNKNOWN", 3, 1),
    ]


def test_every_named_query_is_tested() -> None:
    tested = {
        "ComplianceByOwnerQuery",
        "ComplianceByPatchGroupQuery",
        "ComplianceByOsQuery",
        "MissingCriticalQuery",
        "TagProblemsQuery",
        "StoppedOrUnmanagedQuery",
        "WindowFailuresQuery",
        "NeverPatchedQuery",
        "StaleScansQuery",
        "ComplianceNowQuery",
        "ComplianceByAccountQuery",  # over an organization's targets: tests/integration/test_organization_scenario.py
    }
    assert set(named_queries()) == tested


def test_compliance_by_account_and_region_counts_the_target_s_latest_partition(exported: Path) -> None:
    rows = query(exported, "ComplianceByAccountQuery")
    now = {row["compliance"]: row["instances"] for row in query(exported, "ComplianceNowQuery")}
    assert rows == [
        {
            "account_id": TARGET.account_id,
            "region": TARGET.region,
            "instances": sum(now.values()),
            "compliant": now["COMPLIANT"],
            "non_compliant": now["NON_COMPLIANT"],
        }
    ]
