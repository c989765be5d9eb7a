"""report.html's compliance trend: compliance % per snapshot date as inline SVG, with a table of the
same points for screen readers and text browsers. Pure: it draws what tagpatch.trend kept."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from html import escape
from typing import Final

from tagpatch.export import compliance_percent
from tagpatch.trend import TrendPoint

# The drawing's own units; the page scales it to its width (viewBox, width:100%), so it never
# overflows a phone's viewport.
WIDTH: Final = 640
HEIGHT: Final = 220
LEFT: Final = 40
RIGHT: Final = 16
TOP: Final = 12
BOTTOM: Final = 28


def _x(day: str, first: date, span_days: int) -> float:
    if span_days == 0:
        return LEFT + (WIDTH - LEFT - RIGHT) / 2
    offset = (date.fromisoformat(day) - first).days
    return LEFT + (WIDTH - LEFT - RIGHT) * offset / span_days


def _y(percent: float) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (100.0 - percent) / 100.0


def _label(point: TrendPoint, percent: float | None) -> str:
    known = point["compliant"] + point["non_compliant"]
    if percent is None:
        return f"{point['date']}: n/a (no instance with a known compliance)"
    return f"{point['date']}: {percent:.1f}% compliant ({point['compliant']} of {known} known)"


def _row(point: TrendPoint, percent: float | None) -> str:
    shown = "n/a" if percent is None else f"{percent:.1f}%"
    known = point["compliant"] + point["non_compliant"]
    day = escape(point["date"])
    return (
        f'<tr data-date="{day}"><td data-label="date">{day}</td><td class=n data-label="%">{shown}</td>'
        f'<td class=n data-label="compliant">{point["compliant"]}/{known}</td></tr>'
    )


def trend_section(points: Sequence[TrendPoint]) -> str:
    """The "Compliance trend" section: one point per snapshot date with a known compliance."""
    if not points:
        return '<section id="trend"><h2>Compliance trend</h2><p class=muted>No snapshots yet.</p></section>'
    first = date.fromisoformat(points[0]["date"])
    span = (date.fromisoformat(points[-1]["date"]) - first).days
    percents = [compliance_percent({k: point[k] for k in ("compliant", "non_compliant")}) for point in points]
    plotted = [
        (point, percent, _x(point["date"], first, span), _y(percent))
        for point, percent in zip(points, percents, strict=True)
        if percent is not None
    ]
    grid = "".join(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_y(level):.1f}" y2="{_y(level):.1f}" stroke="#e5e7eb"/>'
        f'<text x="{LEFT - 4}" y="{_y(level) + 4:.1f}" text-anchor="end" font-size="11" fill="#6b7280">{level}%</text>'
        for level in (0, 50, 100)
    )
    line = " ".join(f"{x:.1f},{y:.1f}" for _, _, x, y in plotted)
    path = f'<polyline points="{line}" fill="none" stroke="#15803d" stroke-width="2"/>' if len(plotted) > 1 else ""
    dots = "".join(
        f'<circle class="trend-point" data-date="{escape(point["date"])}" data-percent="{percent:.1f}" '
        f'cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#15803d"><title>{escape(_label(point, percent))}</title></circle>'
        for point, percent, x, y in plotted
    )
    ends = (
        f'<text x="{LEFT}" y="{HEIGHT - 8}" font-size="11" fill="#6b7280">{escape(points[0]["date"])}</text>'
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end" font-size="11" fill="#6b7280">'
        f"{escape(points[-1]['date'])}</text>"
    )
    rows = "".join(_row(point, percent) for point, percent in zip(points, percents, strict=True))
    return (
        '<section id="trend"><h2>Compliance trend</h2>'
        "<p class=muted>Compliant share of the instances with a known compliance, per snapshot date "
        "(the day's latest snapshot).</p>"
        f'<svg id="trend-chart" viewBox="0 0 {WIDTH} {HEIGHT}" style="width:100%;max-width:{WIDTH}px;height:auto" '
        f'role="img" aria-labelledby="trend-title"><title id="trend-title">Compliance % over {len(points)} '
        f"snapshot dates, from {escape(points[0]['date'])} to {escape(points[-1]['date'])}</title>"
        f"{grid}{path}{dots}{ends}</svg>"
        "<details><summary>The trend as a table</summary>"
        '<table id="trend-table"><thead><tr><th>date</th><th>%</th><th>compliant</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></details></section>"
    )
