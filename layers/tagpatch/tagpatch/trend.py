"""The compliance trend: one small summary per snapshot date, kept in one object beside the snapshots.

report.html draws compliance over time from it, so ComplianceExport never reads past snapshots (a
year of daily snapshots of 100,000 instances would be millions of records). Each cycle adds its
snapshot's counts under the snapshot's date; a later cycle the same day replaces them (the latest
snapshot of each day, as the dated partition is). The object holds at most MAX_POINTS dates, a
year of daily cycles and more, and each point is a handful of integers whatever the fleet's size.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Final, TypedDict

from tagpatch.errors import ArtifactError

TREND_KEY: Final = "compliance/trend/trend.json"
MAX_POINTS: Final = 400
TREND_SCHEMA_VERSION: Final = 1
COUNT_FIELDS: Final = ("instances", "compliant", "non_compliant", "unknown", "excepted")


class TrendPoint(TypedDict):
    date: str  # the snapshot's partition date, YYYY-MM-DD
    instances: int
    compliant: int
    non_compliant: int
    unknown: int
    excepted: int


def trend_point(counts: Mapping[str, int], now: datetime) -> TrendPoint:
    """The summary of one snapshot (`counts` as tagpatch.export.summarize gives them)."""
    return TrendPoint(
        date=f"{now:%Y-%m-%d}",
        instances=int(counts["instances"]),
        compliant=int(counts["compliant"]),
        non_compliant=int(counts["non_compliant"]),
        unknown=int(counts["unknown"]),
        excepted=int(counts["excepted"]),
    )


def with_point(points: Sequence[TrendPoint], point: TrendPoint) -> list[TrendPoint]:
    """The trend with `point` in place of any earlier point of its date, oldest first, the newest
    MAX_POINTS dates kept."""
    by_date = {p["date"]: p for p in points}
    by_date[point["date"]] = point
    return [by_date[date] for date in sorted(by_date)][-MAX_POINTS:]


def encode_trend(points: Sequence[TrendPoint]) -> bytes:
    document = {"schema_version": TREND_SCHEMA_VERSION, "points": list(points)}
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def _point(raw: object, index: int) -> TrendPoint:
    if not isinstance(raw, dict) or not isinstance(raw.get("date"), str):
        raise ArtifactError(f"{TREND_KEY}: point {index} is not an object with a date")
    counts = {field: raw.get(field) for field in COUNT_FIELDS}
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts.values()):
        raise ArtifactError(f"{TREND_KEY}: point {index} ({raw['date']}) needs whole counts {COUNT_FIELDS}")
    try:
        datetime.strptime(raw["date"], "%Y-%m-%d")
    except ValueError as error:
        raise ArtifactError(f"{TREND_KEY}: point {index} has date {raw['date']!r}, not YYYY-MM-DD") from error
    return TrendPoint(
        date=raw["date"],
        instances=int(raw["instances"]),
        compliant=int(raw["compliant"]),
        non_compliant=int(raw["non_compliant"]),
        unknown=int(raw["unknown"]),
        excepted=int(raw["excepted"]),
    )


def decode_trend(body: bytes | None) -> list[TrendPoint]:
    """The stored trend (none before the first export); a body tagpatch could not have written raises."""
    if body is None:
        return []
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise ArtifactError(f"{TREND_KEY} is not JSON: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("points"), list):
        raise ArtifactError(f"{TREND_KEY} has no list of points")
    return sorted((_point(raw, i) for i, raw in enumerate(document["points"])), key=lambda p: p["date"])
