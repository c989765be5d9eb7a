"""report.html's "This week's changes" (#25): the pure diff of today's snapshot against the one a week
older, which keeps only ids of the old snapshot."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from tagpatch.classes import EXCEPTED
from tagpatch.report_html import render, week_section
from tagpatch.report_week import PastSnapshot, week_changes, week_old_date

TODAY = date(2026, 11, 30)


def record(instance_id: str, compliance: str, cls: str = "managed", owner: str = "team-web") -> dict[str, Any]:
    return {"instance_id": instance_id, "compliance": compliance, "class": cls, "owner": owner, "name": instance_id}


def test_the_week_old_snapshot_is_seven_days_back_or_the_nearest_earlier_one_within_ten() -> None:
    dates = ["2026-11-19", "2026-11-21", "2026-11-22", "2026-11-23", "2026-11-24", "2026-11-30"]
    assert week_old_date(TODAY, dates) == "2026-11-23"
    assert week_old_date(TODAY, ["2026-11-19", "2026-11-21", "2026-11-24"]) == "2026-11-21"
    assert week_old_date(TODAY, ["2026-11-20"]) == "2026-11-20"  # ten days: still a week old
    assert week_old_date(TODAY, ["2026-11-19", "2026-11-24", "2026-11-30"]) is None  # 11 days, 6 days


def test_a_snapshot_the_retention_may_have_expired_is_not_sought() -> None:
    # An export kept 7 days may be gone at 7 days old (S3 expires it within a day after), so it is not read.
    assert week_old_date(TODAY, ["2026-11-23"], kept_days=7) is None
    assert week_old_date(TODAY, ["2026-11-22", "2026-11-23"], kept_days=8) == "2026-11-23"
    assert week_old_date(TODAY, ["2026-11-21", "2026-11-23"], kept_days=9) == "2026-11-23"
    assert week_old_date(TODAY, ["2026-11-21"], kept_days=9) is None


def test_the_past_snapshot_keeps_only_the_ids_it_needs() -> None:
    past = PastSnapshot.of(
        "2026-11-23",
        iter([record("i-a", "NON_COMPLIANT"), record("i-b", "COMPLIANT"), record("i-c", "COMPLIANT", EXCEPTED)]),
    )
    assert past == PastSnapshot(date="2026-11-23", non_compliant=frozenset({"i-a"}), excepted=frozenset({"i-c"}))


def test_newly_non_compliant_fixed_and_new_exceptions_against_the_week_old_snapshot() -> None:
    past = PastSnapshot.of(
        "2026-11-23",
        [
            record("i-fixed", "NON_COMPLIANT"),
            record("i-still-failing", "NON_COMPLIANT"),
            record("i-broke", "COMPLIANT"),
            record("i-long-excepted", "UNKNOWN", EXCEPTED),
            record("i-newly-excepted", "NON_COMPLIANT"),
            record("i-gone", "NON_COMPLIANT"),
        ],
    )
    now = [
        record("i-fixed", "COMPLIANT"),
        record("i-still-failing", "NON_COMPLIANT"),
        record("i-broke", "NON_COMPLIANT"),
        record("i-long-excepted", "UNKNOWN", EXCEPTED),
        record("i-newly-excepted", "NON_COMPLIANT", EXCEPTED),
        record("i-new-and-failing", "NON_COMPLIANT"),
    ]
    changes = week_changes(past, now)
    assert changes.since == "2026-11-23"
    assert [r["instance_id"] for r in changes.newly_non_compliant] == ["i-broke", "i-new-and-failing"]
    assert [r["instance_id"] for r in changes.fixed] == ["i-fixed"]
    assert [r["instance_id"] for r in changes.new_exceptions] == ["i-newly-excepted"]


def test_nothing_changed_gives_no_changes() -> None:
    rows = [record("i-a", "NON_COMPLIANT"), record("i-b", "COMPLIANT", EXCEPTED)]
    changes = week_changes(PastSnapshot.of("2026-11-23", rows), rows)
    assert (changes.newly_non_compliant, changes.fixed, changes.new_exceptions) == ((), (), ())


def test_the_section_says_when_no_snapshot_is_a_week_old_yet() -> None:
    html = week_section(None)
    assert 'id="week"' in html and "no snapshot a week old yet" in html.lower()


def test_the_section_lists_each_change_as_labelled_cards_and_render_includes_it() -> None:
    past = PastSnapshot.of("2026-11-23", [record("i-fixed", "NON_COMPLIANT"), record("i-<b>", "COMPLIANT")])
    now = [record("i-fixed", "COMPLIANT"), record("i-<b>", "NON_COMPLIANT")]
    changes = week_changes(past, now)
    page = render(now, generated_at="2026-11-30T10:00:00Z", week=changes)
    section = page.split('<section id="week">', 1)[1].split("</section>", 1)[0]
    assert "2026-11-23" in section and "i-&lt;b&gt;" in section and "<b>" not in section
    fixed = section.split('id="week-fixed"', 1)[1].split("</table>", 1)[0]
    assert re.findall(r'<td data-label="instance">([^<]*)</td>', fixed) == ["i-fixed"]
    broke = section.split('id="week-non-compliant"', 1)[1].split("</table>", 1)[0]
    assert re.findall(r'<td data-label="instance">([^<]*)</td>', broke) == ["i-&lt;b&gt;"]
    assert "no snapshot a week old yet" in render(now, generated_at="x").lower()
