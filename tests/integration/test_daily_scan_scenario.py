"""scenarios/daily-scan.yaml (#23): with a monthly install window only, the policy's daily patch scan gives
every managed, reachable instance with a patch group a known compliance within a day of the first cycle,
whether or not its window tag is valid; before the scan ran, none had one."""

from __future__ import annotations

import gzip
import html
import json
from pathlib import Path
from typing import Any

import pytest

from tagpatch.export import latest_key
from tagpatch.targets import Target
from tagpatch_local import cli
from tagpatch_local.runner import ACCOUNT_ID, DEFAULT_REGION

REPO = Path(__file__).resolve().parents[2]
SCANNED = {"web-1", "web-2", "web-3", "db-1", "app-1", "app-2"}  # managed, reachable, with a patch group
UNREACHABLE = {"web-stopped", "web-offline", "web-unmanaged"}  # SSM cannot scan them
KNOWN = frozenset({"COMPLIANT", "NON_COMPLIANT"})


@pytest.fixture(scope="module")
def daily_scan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("daily-scan") / "out"
    status = cli.main(["run", "--scenario", str(REPO / "scenarios" / "daily-scan.yaml"), "--out", str(out)])
    assert status == cli.EXIT_OK
    return out


def latest(out: Path, cycle: str) -> dict[str, dict[str, Any]]:
    with gzip.open(out / cycle / latest_key(Target(ACCOUNT_ID, DEFAULT_REGION)), "rt", encoding="utf-8") as lines:
        return {record["name"]: record for record in map(json.loads, lines)}


def test_before_the_scan_ran_no_instance_has_a_known_compliance(daily_scan: Path) -> None:
    records = latest(daily_scan, "01-first")
    assert {name: record["compliance"] for name, record in records.items()} == dict.fromkeys(records, "UNKNOWN")


def test_a_day_later_every_reachable_managed_instance_with_a_patch_group_is_known(daily_scan: Path) -> None:
    records = latest(daily_scan, "02-next-day")
    assert {name for name, record in records.items() if record["compliance"] in KNOWN} == SCANNED
    # The scan does not care whether the window tag is valid; it reports the counts it found.
    assert {name: records[name]["class"] for name in ("app-1", "app-2")} == {
        "app-1": "invalid_tags",
        "app-2": "missing_tags",
    }
    assert (records["app-1"]["compliance"], records["app-1"]["missing"], records["app-1"]["critical_missing"]) == (
        "NON_COMPLIANT",
        12,
        4,
    )
    assert records["web-2"]["compliance"] == "COMPLIANT"
    for name in UNREACHABLE | {"sandbox-1"}:
        assert records[name]["compliance"] == "UNKNOWN", name


def test_the_first_cycle_creates_the_scan_and_the_next_writes_nothing(daily_scan: Path) -> None:
    first = json.loads((daily_scan / "01-first" / "summary.json").read_text())
    second = json.loads((daily_scan / "02-next-day" / "summary.json").read_text())
    assert first["changes"]["scan"]["created"] == 1
    assert second["resource_write_calls"] == {}


def test_each_instance_left_unknown_after_the_scan_says_why_and_none_of_the_scanned_is_among_them(
    daily_scan: Path,
) -> None:
    records = latest(daily_scan, "02-next-day")
    unknown = {name: record["compliance_unknown_reason"] for name, record in records.items() if name not in SCANNED}
    assert {name: reason.split(":")[0] for name, reason in unknown.items()} == {
        "web-stopped": "stopped",
        "web-offline": "agent offline",
        "web-unmanaged": "unmanaged",
        "sandbox-1": "no patch group",
    }
    assert all(records[name]["compliance_unknown_reason"] is None for name in SCANNED)
    # report.html lists exactly these apart from the non-compliant ones, each with its reason.
    page = (daily_scan / "02-next-day" / "report.html").read_text(encoding="utf-8")
    stale_section = page.split('id="scans"', 1)[1].split("</table>", 1)[0]  # the sections below list everyone
    assert {name for name in records if f">{name}<" in stale_section} == set(unknown)
    for reason in unknown.values():
        assert html.escape(reason, quote=False) in stale_section
