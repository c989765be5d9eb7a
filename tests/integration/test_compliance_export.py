"""ComplianceExport through the real state machine on the patch-night scenario: the snapshot and
report.html in the output folder with S3's key layout, the named queries on DuckDB over those files,
and the page as headless Chromium (Debian's package) renders it."""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta
from html import escape as html_escape
from pathlib import Path
from typing import Any

import pytest

from tagpatch.export import latest_key, report_key, snapshot_key
from tagpatch.inventory import decode_jsonl_gz
from tagpatch.targets import Target
from tagpatch.trend import TREND_KEY
from tagpatch_local import cli
from tagpatch_local.runner import ACCOUNT_ID, DEFAULT_REGION, SimulatedAccount
from tests.compliance_sql import connect, named_queries, run

from .support import chromium, instance, run_ok

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"  # the screenshot a person can look at after the test command
SUNDAY = "03-sunday"
FRIDAY_NOON = datetime(2026, 11, 27, 12, tzinfo=UTC)  # the Sunday window sun-0200 opens 38 h later
HOME = Target(ACCOUNT_ID, DEFAULT_REGION)


@pytest.fixture(scope="module")
def patch_night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("patch-night") / "out"
    status = cli.main(["run", "--scenario", str(REPO / "scenarios" / "patch-night.yaml"), "--out", str(out)])
    assert status == cli.EXIT_OK
    return out


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_output_folder_keeps_s3s_key_layout(patch_night: Path) -> None:
    cycle = patch_night / SUNDAY
    assert (cycle / "report.html").is_file()
    snapshots = sorted(p.relative_to(cycle).as_posix() for p in (cycle / "compliance" / "snapshots").rglob("*.gz"))
    layout = re.compile(
        r"compliance/snapshots/dt=\d{4}-\d{2}-\d{2}/account_id=\d{12}/region=[a-z0-9-]+/snapshot\.jsonl\.gz"
    )
    assert all(f"account_id={ACCOUNT_ID}/region={DEFAULT_REGION}/" in s for s in snapshots)
    assert snapshots and all(layout.fullmatch(s) for s in snapshots)
    assert (cycle / latest_key(HOME)).is_file()
    latest_report = cycle / "compliance" / "reports" / "latest" / "report.html"
    assert latest_report.read_bytes() == (cycle / "report.html").read_bytes()


def test_one_record_per_instance_agreeing_with_monitoring(patch_night: Path) -> None:
    cycle = patch_night / SUNDAY
    latest = (cycle / latest_key(HOME)).read_bytes()
    records = {r["instance_id"]: r for r in decode_jsonl_gz(latest)}
    instances = jsonl(cycle / "instances.jsonl")
    assert set(records) == {line["instance_id"] for line in instances}
    for result in jsonl(cycle / "patch-results.jsonl"):
        record = records[result["instance_id"]]
        assert (record["period_outcome"], record["compliance"], record["window"]) == (
            result["outcome"],
            result["compliance"],
            result["window"],
        )
        if result["window_run_start"]:  # a run in the period: the latest outcome is this one
            assert record["last_outcome"] == result["outcome"], record
        fresh = ("last_scan", "scan_age_days", "scan_status", "compliance_unknown_reason")
        assert {key: record[key] for key in fresh} == {key: result[key] for key in fresh}
        assert record["last_scan"] == result["operation_end"]
    for record in records.values():  # every unknown compliance says why, and only an unknown one
        assert bool(record["compliance_unknown_reason"]) == (record["compliance"] == "UNKNOWN"), record
        if record["window"]:
            assert record["next_window_start"], record
        if result["outcome"] == "patched":
            assert record["days_since_last_success"] == 0 and record["last_success_time"]


def test_the_named_queries_answer_what_the_scenario_implies(patch_night: Path) -> None:
    cycle = patch_night / SUNDAY
    connection = connect(cycle)
    queries = {logical_id: str(p["QueryString"]) for logical_id, p in named_queries().items()}
    results = jsonl(cycle / "patch-results.jsonl")
    compliance = Counter(r["compliance"] for r in results)
    now = {row["compliance"]: row["instances"] for row in run(connection, queries["ComplianceNowQuery"])}
    instances = jsonl(cycle / "instances.jsonl")
    assert now == Counter({**compliance, "UNKNOWN": compliance["UNKNOWN"] + len(instances) - len(results)}) - Counter()
    failed_windows = {row["window"] for row in run(connection, queries["WindowFailuresQuery"])}
    assert failed_windows == {r["window"] for r in results if r["outcome"] == "failed"}
    tag_problems = {row["instance_id"] for row in run(connection, queries["TagProblemsQuery"])}
    problem_classes = {"missing_tags", "invalid_tags", "unmanaged"}
    assert tag_problems == {i["instance_id"] for i in instances if i["class"] in problem_classes}
    for sql in queries.values():
        run(connection, sql)  # every query runs on the scenario's files


def test_report_html_renders_in_headless_chromium_with_the_expected_figures(patch_night: Path) -> None:
    cycle = patch_night / SUNDAY
    page = cycle / "report.html"
    html = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "report.html must load nothing"
    browser = chromium()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"]
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    results = jsonl(cycle / "patch-results.jsonl")
    compliant = sum(r["compliance"] == "COMPLIANT" for r in results)
    known = sum(r["compliance"] in {"COMPLIANT", "NON_COMPLIANT"} for r in results)
    assert f'id="compliance-percent">{100.0 * compliant / known:.1f}%<' in dom
    assert f'id="compliant">{compliant}<' in dom
    for r in results:
        if r["outcome"] in {"failed", "missed"}:
            assert r["instance_id"] in dom.split('id="actions"', 1)[1].split("</table>", 1)[0]
    # Stale and never-scanned instances have their own tiles and table, apart from the non-compliant.
    records = decode_jsonl_gz((cycle / latest_key(HOME)).read_bytes())
    never = [r for r in records if r["scan_status"] == "never_scanned"]
    stale = [r for r in records if r["scan_status"] == "stale"]
    assert never, "the scenario has instances no scan reached"
    assert f'id="never-scanned">{len(never)}<' in dom and f'id="stale-scans">{len(stale)}<' in dom
    scans = dom.split('id="scans"', 1)[1].split("</table>", 1)[0]
    for r in records:
        assert (r["instance_id"] in scans) == (r in never or r in stale), r
    for r in never:
        assert html_escape(r["compliance_unknown_reason"]) in scans
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    subprocess.run(
        [browser, *flags, "--window-size=1280,1800", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def latest_records(account: SimulatedAccount) -> dict[str, dict[str, Any]]:
    body = account.client("s3").get_object(Bucket=account.physical_id("ArtifactBucket"), Key=latest_key(HOME))["Body"]
    return {r["instance_id"]: r for r in decode_jsonl_gz(body.read())}


def test_a_windows_outcomes_persist_in_the_snapshot_after_a_later_cycle_with_no_run() -> None:
    """Sunday 02:00 patches two instances and 03:00 fails one (its own window, so MaxErrors stops no other);
    the cycle at noon reports them. At 22:00, with no window run since, the records still give each
    instance's outcome, its time and reason, and the period's outcome (not_due) beside it."""
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.set_clock(FRIDAY_NOON)
        fleet = [instance("web", "sun-0200", name=name) for name in ("web-ok-1", "web-ok-2")]
        fleet.append(instance("db", "cron(0 3 ? * SUN *)", name="web-bad"))
        ids = dict(zip(("web-ok-1", "web-ok-2", "web-bad"), account.seed(fleet), strict=True))
        for name in ("web-ok-1", "web-ok-2"):
            account.set_patch_behaviour(ids[name], {"missing": 3})
        account.set_patch_behaviour(ids["web-bad"], {"missing": 3, "result": "failed"})
        run_ok(account)
        account.advance(timedelta(hours=48))  # Sunday noon, ten hours after the window ran
        run_ok(account)
        at_noon = latest_records(account)
        account.advance(timedelta(hours=10))
        run_ok(account)
        evening = latest_records(account)
        bucket = account.physical_id("ArtifactBucket")
        sunday_evening = FRIDAY_NOON + timedelta(hours=58)
        page = account.client("s3").get_object(Bucket=bucket, Key=report_key(sunday_evening))["Body"].read().decode()
    # The report's outcomes table counts the same latest outcomes, not the evening's period (all not_due).
    outcomes = page.split('id="outcomes"', 1)[1].split("</table>", 1)[0]
    for name, count in (("patched", 2), ("failed", 1), ("not_due", 0)):
        assert f'<td data-label="outcome">{name}</td><td data-label="instances" class=n>{count}</td>' in outcomes
    expected = {"web-ok-1": "patched", "web-ok-2": "patched", "web-bad": "failed"}
    for name, outcome in expected.items():
        record = evening[ids[name]]
        assert record["last_outcome"] == outcome, record
        assert (record["period_outcome"], at_noon[ids[name]]["period_outcome"]) == ("not_due", outcome)
        hour = "03" if name == "web-bad" else "02"
        assert str(record["last_outcome_time"]).startswith(f"2026-11-29T{hour}:"), record
        assert record["last_outcome_reason"] == at_noon[ids[name]]["last_outcome_reason"]
        assert f"{record['window']} at 2026-11-29 {hour}:00 UTC" in record["last_outcome_reason"], record
    assert "Failed" in evening[ids["web-bad"]]["last_outcome_reason"]


def test_an_unreadable_week_old_snapshot_fails_the_cycle_loudly_after_the_days_snapshot_and_report() -> None:
    """The trend says a snapshot a week older exists; if it cannot be read (deleted: S3 answers AccessDenied
    to a role that may not list), report.html says so and the cycle fails naming the key, after the day's
    snapshot and report are written, so no compliance data is lost and nothing passes silently."""
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.set_clock(FRIDAY_NOON)
        account.seed([instance("web", "sun-0200", name="web-1")])
        run_ok(account)
        s3 = account.client("s3")
        bucket = account.physical_id("ArtifactBucket")
        s3.delete_object(Bucket=bucket, Key=snapshot_key(FRIDAY_NOON, HOME))
        account.advance(timedelta(days=7))
        result = account.run_cycle()
        keys = {item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix="compliance/")["Contents"]}
        week_later = FRIDAY_NOON + timedelta(days=7)
        page = s3.get_object(Bucket=bucket, Key=report_key(week_later))["Body"].read().decode()
    assert result.status == "FAILED", result.status
    assert snapshot_key(FRIDAY_NOON, HOME) in (result.cause or ""), result.cause
    assert "AccessDenied" in (result.cause or ""), result.cause  # the role may not list: S3 says 403, not 404
    assert {snapshot_key(week_later, HOME), report_key(week_later)} <= keys
    section = page.split('<section id="week">', 1)[1].split("</section>", 1)[0]
    assert "2026-11-27" in section and "could not be read" in section


def test_a_damaged_trend_fails_the_cycle_loudly_after_the_days_snapshot_and_report_are_written() -> None:
    """trend.json is tagpatch's own, so damage is not repaired silently: the cycle fails on it, naming the key
    and what to do. The day's snapshot and report are written first, so the damage costs no compliance data."""
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.set_clock(FRIDAY_NOON)
        account.seed([instance("web", "sun-0200", name="web-1")])
        run_ok(account)
        s3 = account.client("s3")
        bucket = account.physical_id("ArtifactBucket")
        s3.put_object(Bucket=bucket, Key=TREND_KEY, Body=b"{not json")
        account.advance(timedelta(days=1))
        result = account.run_cycle()
        keys = {item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix="compliance/")["Contents"]}
        trend_body = s3.get_object(Bucket=bucket, Key=TREND_KEY)["Body"].read()
    assert result.status == "FAILED", result.status
    assert "ArtifactError" in f"{result.error} {result.cause}"
    assert TREND_KEY in (result.cause or "") and "restore" in (result.cause or "")
    saturday = FRIDAY_NOON + timedelta(days=1)
    assert {snapshot_key(saturday, HOME), report_key(saturday)} <= keys
    assert trend_body == b"{not json"  # left for the operator to restore, not overwritten
