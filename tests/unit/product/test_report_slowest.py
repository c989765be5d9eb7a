"""report.html's slowest-to-patch groups (tagpatch.report_slowest): the measure, the order, the page."""

from __future__ import annotations

from html import escape as html_escape
from typing import Any

from tagpatch.report_html import render
from tagpatch.report_slowest import DEFINITION, GroupPace, group_paces


def record(n: int, group: str | None, days: int | None, **fields: Any) -> dict[str, Any]:
    return {
        "instance_id": f"i-{n}",
        "patch_group": group,
        "class": "ready",
        "compliance": "COMPLIANT",
        "days_since_last_success": days,
    } | fields


def test_each_group_gets_the_median_and_longest_days_since_a_successful_install() -> None:
    records = [
        record(1, "web", 1),
        record(2, "web", 4, compliance="NON_COMPLIANT"),
        record(3, "web", 30, compliance="NON_COMPLIANT"),
        record(4, "web", 2),
        record(5, "db", 9),
        record(6, "db", None),
    ]
    assert group_paces(records) == [
        GroupPace("db", instances=2, non_compliant=0, no_install=1, median_days=9.0, longest_days=9),
        GroupPace("web", instances=4, non_compliant=2, no_install=0, median_days=3.0, longest_days=30),
    ]


def test_groups_never_installed_first_then_the_longest_wait() -> None:
    records = [
        record(1, "fast", 1),
        record(2, "one-never", None),
        record(3, "one-never-and-old", 20),
        record(4, "one-never-and-old", None),
        record(5, "two-never", None),
        record(6, "two-never", None),
        record(7, "slow", 45),
        record(8, "middle", 20),
    ]
    assert [p.patch_group for p in group_paces(records)] == [
        "two-never",
        "one-never-and-old",
        "one-never",
        "slow",
        "middle",
        "fast",
    ]


def test_excepted_instances_and_instances_without_a_patch_group_are_left_out() -> None:
    records = [
        record(1, "web", 3),
        record(2, "web", 400, **{"class": "excepted"}),
        record(3, None, 500),
        record(4, "", 600),
    ]
    assert group_paces(records) == [GroupPace("web", 1, 0, 0, 3.0, 3)]


def test_the_page_states_the_measure_and_lists_the_groups_slowest_first() -> None:
    records = [record(1, "fast-group", 2), record(2, "slow-group", 41), record(3, "<b>odd</b>", None)]
    page = render(records, generated_at="2026-12-07T12:00:00Z")
    section = page.split('<section id="slowest">', 1)[1].split("</section>", 1)[0]
    assert html_escape(DEFINITION) in section
    table = section.split('id="slowest-groups"', 1)[1]
    assert table.index("&lt;b&gt;odd&lt;/b&gt;") < table.index("slow-group") < table.index("fast-group")
    assert '<td data-label="longest days" class=n>41</td>' in table
    assert '<td data-label="median days" class=n>none on record</td>' in table
    assert "<b>odd</b>" not in page


def test_only_the_first_groups_are_listed_with_a_count_of_the_rest() -> None:
    records = [record(n, f"group-{n:02d}", n) for n in range(25)]
    section = render(records, generated_at="now").split('<section id="slowest">', 1)[1].split("</section>", 1)[0]
    assert "group-24" in section and "group-05" in section and "group-04" not in section
    assert "5 more groups not shown." in section
