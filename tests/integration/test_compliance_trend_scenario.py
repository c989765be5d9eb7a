"""scenarios/compliance-trend.yaml (#25): four weekly cycles, and report.html draws one trend point per
snapshot date, from the small per-snapshot summaries ComplianceExport keeps (compliance/trend/trend.json),
as headless Chromium renders the page."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tagpatch.export import latest_key
from tagpatch.inventory import decode_jsonl_gz
from tagpatch.targets import Target
from tagpatch.trend import TREND_KEY
from tagpatch_local import cli
from tagpatch_local.runner import ACCOUNT_ID, DEFAULT_REGION

from .support import chromium, page_layout
from .test_compliance_export import ARTIFACTS

REPO = Path(__file__).resolve().parents[2]
LAST = "07-rerun"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"]


@pytest.fixture(scope="module")
def trend_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("compliance-trend") / "out"
    status = cli.main(["run", "--scenario", str(REPO / "scenarios" / "compliance-trend.yaml"), "--out", str(out)])
    assert status == cli.EXIT_OK
    return out


def test_the_trend_keeps_one_summary_per_snapshot_date_matching_each_cycles_snapshot(trend_run: Path) -> None:
    cycle = trend_run / LAST
    points = json.loads((cycle / TREND_KEY).read_text())["points"]
    snapshots = (cycle / "compliance/snapshots").glob("dt=*/account_id=*/region=*/*.gz")
    partitions = sorted(p.parents[2].name.removeprefix("dt=") for p in snapshots)
    assert [p["date"] for p in points] == partitions and len(partitions) >= 6
    for folder in sorted(trend_run.glob("0*")):  # each apply cycle's summary is its snapshot's counts
        summary = json.loads((folder / "summary.json").read_text())
        if summary["mode"] != "apply":
            continue
        counts = summary["output"]["compliance"]["counts"]
        (point,) = [p for p in points if p["date"] == summary["output"]["cycle"]["now"][:10]]
        assert {key: point[key] for key in counts} == counts, folder.name


def week_section(report: str) -> str:
    return report.split('<section id="week">', 1)[1].split("</section>", 1)[0]


def listed(section: str, table_id: str) -> list[str]:
    if f'id="{table_id}"' not in section:
        return []
    table = section.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<td data-label="instance">([^<]+)</td>', table)


def test_each_weeks_report_lists_the_instances_fixed_since_the_snapshot_a_week_older(trend_run: Path) -> None:
    records = decode_jsonl_gz((trend_run / LAST / latest_key(Target(ACCOUNT_ID, DEFAULT_REGION))).read_bytes())
    ids = {r["name"]: r["instance_id"] for r in records}
    first_week = week_section((trend_run / "03-week-1" / "report.html").read_text())
    assert "no snapshot a week old yet" in first_week.lower()  # 7 November is only two days older
    for folder, since, fixed in [("04-week-2", "2026-11-09", "db-1"), (LAST, "2026-11-23", "app-1")]:
        section = week_section((trend_run / folder / "report.html").read_text())
        assert f"snapshot of {since}" in section, folder
        assert listed(section, "week-fixed") == [ids[fixed]], folder
        assert listed(section, "week-non-compliant") == listed(section, "week-exceptions") == [], folder


def test_a_rerun_the_same_day_with_nothing_changed_does_not_rewrite_the_trend(trend_run: Path) -> None:
    def export_puts(folder: str) -> int:
        summary = json.loads((trend_run / folder / "summary.json").read_text())
        return int(summary["aws_calls_by_function"]["ComplianceExportFunction"]["s3:PutObject"])

    assert export_puts("06-week-4") == export_puts(LAST) + 1  # the trend's write, and only in week 4
    assert (trend_run / "06-week-4" / TREND_KEY).read_bytes() == (trend_run / LAST / TREND_KEY).read_bytes()


def test_report_html_shows_every_snapshots_point_in_headless_chromium(trend_run: Path) -> None:
    cycle = trend_run / LAST
    page = cycle / "report.html"
    html = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "report.html must load nothing"
    points = json.loads((cycle / TREND_KEY).read_text())["points"]
    browser = chromium()
    dom = subprocess.run(
        [browser, *FLAGS, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    drawn = dict(re.findall(r'<circle class="trend-point" data-date="([^"]+)" data-percent="([^"]+)"', dom))
    known = {p["date"]: p for p in points if p["compliant"] + p["non_compliant"]}
    assert set(drawn) == set(known) and len(known) >= 5  # the weekly cycles and the first scan
    for day, point in known.items():
        assert float(drawn[day]) == pytest.approx(
            100.0 * point["compliant"] / (point["compliant"] + point["non_compliant"]), abs=0.05
        )
    climbing = [float(drawn[day]) for day in sorted(drawn)]
    # The scan, then each week one more failing instance fixed: strictly climbing, to 100%.
    assert climbing == sorted(set(climbing)) and climbing[-1] == 100.0
    table = dom.split('id="trend-table"', 1)[1].split("</table>", 1)[0]
    for p in points:  # every snapshot, drawn or not (the first knows no compliance yet), is in the table
        assert f'data-date="{p["date"]}"' in table
    chart = dom.split('id="trend-chart"', 1)[1].split(">", 1)[0]
    assert "viewBox" in chart and "width:100%" in chart  # scales to the viewport, a phone's too
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "compliance-trend.png"
    subprocess.run(
        [browser, *FLAGS, "--window-size=1000,900", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_trend_fits_a_390_px_phone_without_sideways_scroll(trend_run: Path, tmp_path: Path) -> None:
    report = (trend_run / LAST / "report.html").read_text()
    assert 'class="trend-point"' in report and 'id="week-fixed"' in report  # the week's changes' cards too
    figures = page_layout(report, 390, tmp_path)
    assert figures["viewport"] == 390 and figures["scrollWidth"] <= 390


def test_a_plan_run_shows_its_would_be_point_but_writes_no_trend(trend_run: Path) -> None:
    plan = trend_run / "08-plan-next-day"
    assert (plan / TREND_KEY).read_bytes() == (trend_run / LAST / TREND_KEY).read_bytes()
    stored = {p["date"] for p in json.loads((plan / TREND_KEY).read_text())["points"]}
    drawn = set(re.findall(r'class="trend-point" data-date="([^"]+)"', (plan / "report.html").read_text()))
    (extra,) = drawn - stored
    assert extra == json.loads((plan / "summary.json").read_text())["output"]["cycle"]["now"][:10]
