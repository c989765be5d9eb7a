"""Freshness in every output: the last scan and its age in patch-results and the snapshot, why compliance
is unknown, and report.html's stale and never-scanned instances, apart from the non-compliant ones."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tagpatch import freshness
from tagpatch.export import snapshot_records
from tagpatch.freshness import scan_freshness, unknown_reason
from tagpatch.monitoring import PatchState, instance_results
from tagpatch.report_html import render

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("last_scan", "age", "status"),
    [
        ("2026-11-29T06:00:00Z", 0.25, "current"),
        ("2026-11-27T12:00:00Z", 2.0, "current"),  # exactly the threshold: not older than it
        ("2026-11-27T11:00:00Z", 2.04, "stale"),
        (None, None, "never_scanned"),
    ],
)
def test_a_scan_older_than_the_threshold_is_stale(last_scan: str | None, age: float | None, status: str) -> None:
    found = scan_freshness(last_scan, NOW, 2)
    assert (found.last_scan, found.age_days, found.status) == (last_scan, age, status)


def _line(**fields: Any) -> dict[str, Any]:
    base = {"instance_id": "i-1", "class": "ready", "state": "running", "ping_status": "Online"}
    return base | {"patch_group": "web", "in_scope": True} | fields


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (_line(**{"class": "unmanaged"}, ping_status=None), freshness.UNMANAGED),
        (_line(**{"class": "missing_tags"}, ping_status=None, patch_group=None), freshness.UNMANAGED),
        (_line(**{"class": "stopped"}, state="stopped"), freshness.STOPPED),
        (_line(ping_status="ConnectionLost"), freshness.AGENT_OFFLINE.format("ConnectionLost")),
        # TagValidation classes a running node whose agent is not Online `unmanaged`; it is registered.
        (
            _line(**{"class": "unmanaged"}, ping_status="ConnectionLost"),
            freshness.AGENT_OFFLINE.format("ConnectionLost"),
        ),
        (_line(**{"class": "missing_tags"}, patch_group=None), freshness.NO_PATCH_GROUP),
        (_line(in_scope=False), freshness.OUT_OF_SCOPE),
        (_line(), freshness.NOT_SCANNED_YET),
    ],
)
def test_each_unknown_compliance_says_why(line: dict[str, Any], reason: str) -> None:
    assert unknown_reason(line, "UNKNOWN") == reason
    assert unknown_reason(line, "COMPLIANT") is None and unknown_reason(line, "NON_COMPLIANT") is None


def test_patch_results_and_the_snapshot_carry_the_last_scan_its_age_and_status() -> None:
    lines = [
        _line(instance_id="i-old"),
        _line(instance_id="i-new"),
        _line(instance_id="i-none"),
        _line(instance_id="i-off", ping_status="ConnectionLost"),
    ]
    states = {
        "i-old": PatchState(0, 0, 5, 0, 0, "Install", datetime(2026, 11, 20, 2, tzinfo=UTC)),
        "i-new": PatchState(3, 1, 0, 0, 0, "Scan", datetime(2026, 11, 29, 6, tzinfo=UTC)),
    }
    results = list(instance_results(lines, {}, [], states, now=NOW, stale_after_days=2))
    by_id = {r["instance_id"]: r for r in results}
    assert (by_id["i-old"]["last_scan"], by_id["i-old"]["scan_age_days"], by_id["i-old"]["scan_status"]) == (
        "2026-11-20T02:00:00Z",
        9.42,
        "stale",
    )
    assert (by_id["i-new"]["scan_status"], by_id["i-new"]["compliance_unknown_reason"]) == ("current", None)
    assert (by_id["i-none"]["scan_status"], by_id["i-none"]["compliance_unknown_reason"]) == (
        "never_scanned",
        freshness.NOT_SCANNED_YET,
    )
    assert by_id["i-off"]["compliance_unknown_reason"] == freshness.AGENT_OFFLINE.format("ConnectionLost")
    # The snapshot says the same, with its own threshold; an instance with no result is never scanned.
    out_of_scope = _line(instance_id="i-out", in_scope=False)
    records = {
        r["instance_id"]: r for r in snapshot_records([*lines, out_of_scope], by_id, {}, {}, NOW, stale_after_days=10)
    }
    assert (records["i-old"]["last_scan"], records["i-old"]["scan_age_days"]) == ("2026-11-20T02:00:00Z", 9.42)
    assert records["i-old"]["scan_status"] == "current"  # 9.42 days is within this policy's 10
    assert (records["i-out"]["scan_status"], records["i-out"]["compliance_unknown_reason"]) == (
        "never_scanned",
        freshness.OUT_OF_SCOPE,
    )
    assert records["i-new"]["compliance_unknown_reason"] is None


def test_report_html_shows_stale_and_never_scanned_instances_apart_from_non_compliant_ones() -> None:
    lines = [_line(instance_id=f"i-{n}") for n in ("stale", "never", "noncompliant", "fresh")]
    results: dict[str, dict[str, Any]] = {
        "i-stale": {"compliance": "COMPLIANT", "operation_end": "2026-11-20T02:00:00Z"},
        "i-noncompliant": {"compliance": "NON_COMPLIANT", "missing": 2, "operation_end": "2026-11-29T06:00:00Z"},
        "i-fresh": {"compliance": "COMPLIANT", "operation_end": "2026-11-29T06:00:00Z"},
    }
    page = render(snapshot_records(lines, results, {}, {}, NOW, stale_after_days=2), generated_at="now")
    assert 'id="stale-scans">1<' in page and 'id="never-scanned">1<' in page and 'id="non-compliant">1<' in page
    scans = page.split('id="scans"', 1)[1].split("</table>", 1)[0]
    assert "i-stale" in scans and "i-never" in scans and freshness.NOT_SCANNED_YET in scans
    assert "i-noncompliant" not in scans and "i-fresh" not in scans
