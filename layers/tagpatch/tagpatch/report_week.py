"""report.html's "This week's changes": today's snapshot against the dated snapshot a week older.

Pure (report_html draws it): ComplianceExport picks the week-old date from the trend's snapshot dates
(so it reads one known key and lists nothing) and streams the old records here, of which only ids are
kept, so a fleet of 100,000 instances holds two sets of strings rather than a second snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from tagpatch.classes import EXCEPTED

WEEK_DAYS: Final = 7
# A week-old snapshot may be missing (no cycle that day); the nearest earlier one up to this old stands in.
OLDEST_DAYS: Final = 10

Record = Mapping[str, Any]


def week_old_date(today: date, snapshot_dates: Iterable[str], *, kept_days: int | None = None) -> str | None:
    """The latest snapshot date 7 to 10 days before `today`, or None when there is none.

    With `kept_days` (the exports' lifecycle expiration), a snapshot that old or older is not sought:
    S3 may already have expired it, and its absence is then no fault.
    """
    candidates = [
        day
        for day in snapshot_dates
        if WEEK_DAYS <= (age := (today - date.fromisoformat(day)).days) <= OLDEST_DAYS
        and (kept_days is None or age < kept_days)
    ]
    return max(candidates, default=None)


def _is_excepted(record: Record) -> bool:
    return record.get("class") == EXCEPTED


@dataclass(frozen=True)
class PastSnapshot:
    """What the diff needs of the week-old snapshot: its date and two sets of instance ids."""

    date: str
    non_compliant: frozenset[str]
    excepted: frozenset[str]

    @classmethod
    def of(cls, day: str, records: Iterable[Record]) -> PastSnapshot:
        non_compliant: set[str] = set()
        excepted: set[str] = set()
        for record in records:  # streamed: no old record outlives this loop
            instance_id = str(record["instance_id"])
            if record.get("compliance") == "NON_COMPLIANT":
                non_compliant.add(instance_id)
            if _is_excepted(record):
                excepted.add(instance_id)
        return cls(date=day, non_compliant=frozenset(non_compliant), excepted=frozenset(excepted))


@dataclass(frozen=True)
class WeekChanges:
    since: str  # the week-old snapshot's date
    newly_non_compliant: tuple[Record, ...]
    fixed: tuple[Record, ...]  # NON_COMPLIANT then, COMPLIANT now
    new_exceptions: tuple[Record, ...]  # excepted now, not then


@dataclass(frozen=True)
class WeekUnreadable:
    """The week-old snapshot the trend lists could not be read: report.html says so and the cycle fails."""

    since: str
    reason: str


def week_changes(past: PastSnapshot, records: Iterable[Record]) -> WeekChanges:
    """Today's records against the week-old snapshot, each list in instance id order."""
    rows = sorted(records, key=lambda r: str(r["instance_id"]))
    return WeekChanges(
        since=past.date,
        newly_non_compliant=tuple(
            r
            for r in rows
            if r.get("compliance") == "NON_COMPLIANT" and str(r["instance_id"]) not in past.non_compliant
        ),
        fixed=tuple(
            r for r in rows if r.get("compliance") == "COMPLIANT" and str(r["instance_id"]) in past.non_compliant
        ),
        new_exceptions=tuple(r for r in rows if _is_excepted(r) and str(r["instance_id"]) not in past.excepted),
    )
