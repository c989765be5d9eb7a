"""The compliance trend: one bounded summary per snapshot date, and the SVG report.html draws from it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from tagpatch.errors import ArtifactError
from tagpatch.history import DESIGN_FLEET
from tagpatch.report_html import render
from tagpatch.report_trend import HEIGHT, WIDTH, trend_section
from tagpatch.trend import MAX_POINTS, TREND_KEY, TrendPoint, decode_trend, encode_trend, trend_point, with_point

MONDAY = datetime(2026, 11, 2, 12, tzinfo=UTC)


def counts(compliant: int, non_compliant: int, unknown: int = 0) -> dict[str, int]:
    instances = compliant + non_compliant + unknown
    return {
        "instances": instances,
        "compliant": compliant,
        "non_compliant": non_compliant,
        "unknown": unknown,
        "excepted": 0,
    }


def test_a_later_snapshot_the_same_day_replaces_that_days_point_and_dates_stay_in_order() -> None:
    trend = with_point([], trend_point(counts(1, 3), MONDAY + timedelta(days=7)))
    trend = with_point(trend, trend_point(counts(1, 1), MONDAY))
    trend = with_point(trend, trend_point(counts(2, 0), MONDAY + timedelta(hours=10)))
    assert [(p["date"], p["compliant"], p["non_compliant"]) for p in trend] == [
        ("2026-11-02", 2, 0),
        ("2026-11-09", 1, 3),
    ]
    assert decode_trend(encode_trend(trend)) == trend


def test_the_trend_is_bounded_for_a_year_of_daily_cycles_of_the_design_fleet() -> None:
    trend: list[TrendPoint] = []
    for day in range(MAX_POINTS + 30):
        trend = with_point(trend, trend_point(counts(DESIGN_FLEET - day, day), MONDAY + timedelta(days=day)))
    assert len(trend) == MAX_POINTS >= 366
    assert trend[0]["date"] == f"{MONDAY + timedelta(days=30):%Y-%m-%d}"  # the oldest dates go first
    assert len(encode_trend(trend)) < 64 * 1024  # whatever the fleet's size: a few integers a date


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"points": [{"date": "2026-11-02"}]}',
        b'{"points": [{"date": "11/02", "instances": 1, '
        b'"compliant": 1, "non_compliant": 0, "unknown": 0, "excepted": 0}]}',
    ],
)
def test_a_trend_tagpatch_could_not_have_written_is_refused_not_restarted(body: bytes) -> None:
    with pytest.raises(ArtifactError, match=re.escape(TREND_KEY)):
        decode_trend(body)


def test_the_svg_has_one_titled_point_per_date_with_a_known_compliance_inside_its_viewbox() -> None:
    trend = [
        trend_point(counts(0, 0, 5), MONDAY),  # nothing scanned yet: in the table, not drawn
        trend_point(counts(1, 3), MONDAY + timedelta(days=1)),
        trend_point(counts(3, 1), MONDAY + timedelta(days=3)),
        trend_point(counts(4, 0), MONDAY + timedelta(days=15)),
    ]
    section = trend_section(trend)
    points = re.findall(
        r'<circle class="trend-point" data-date="([^"]+)" data-percent="([^"]+)" '
        r'cx="([^"]+)" cy="([^"]+)"[^>]*><title>([^<]+)</title>',
        section,
    )
    assert [(d, p) for d, p, *_ in points] == [("2026-11-03", "25.0"), ("2026-11-05", "75.0"), ("2026-11-17", "100.0")]
    for _, _, cx, cy, title in points:
        assert 0 <= float(cx) <= WIDTH and 0 <= float(cy) <= HEIGHT
        assert "% compliant" in title
    xs = [float(cx) for _, _, cx, _, _ in points]
    assert xs[2] - xs[1] == pytest.approx(6 * (xs[1] - xs[0]), rel=0.02)  # spaced by date: 2 days, then 12
    assert f'viewBox="0 0 {WIDTH} {HEIGHT}"' in section and "width:100%" in section
    table = section.split('id="trend-table"', 1)[1]
    assert all(f'data-date="{p["date"]}"' in table for p in trend) and "n/a" in table


def test_report_html_shows_the_trend_it_is_given_and_says_when_there_is_none() -> None:
    trend = [trend_point(counts(1, 1), MONDAY), trend_point(counts(2, 0), MONDAY + timedelta(days=7))]
    page = render([], generated_at="now", trend=trend)
    assert page.count('class="trend-point"') == 2
    assert "No snapshots yet." in render([], generated_at="now")
