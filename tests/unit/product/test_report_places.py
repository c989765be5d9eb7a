"""report.html's per-account and per-Region breakdowns (#26): shown when the rows span more than one
account or Region, with each one's compliance and non-compliant count; owners of one name in two
accounts keep one section, each instance there naming its account and Region."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from tagpatch.report_html import owner_anchor, render

HUB, MEMBER = "111111111111", "222222222222"


def _row(n: int, account: str, region: str, compliance: str | None, owner: str = "team-a") -> dict[str, Any]:
    return {
        "instance_id": f"i-{n:017x}",
        "owner": owner,
        "patch_group": "web",
        "os": "Amazon Linux 2023",
        "class": "ready",
        "compliance": compliance,
        "account_id": account,
        "region": region,
    }


class _Cells(HTMLParser):
    """The cells of each row of the table inside the element with a given id."""

    def __init__(self, section_id: str) -> None:
        super().__init__()
        self.section_id = section_id
        self.depth = 0
        self.rows: list[list[str]] = []
        self.cell: str | None = None
        self.found = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if dict(attrs).get("id") == self.section_id:
            self.found, self.depth = True, 0
        if not self.found:
            return
        self.depth += tag == "section"
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self.cell = ""

    def handle_endtag(self, tag: str) -> None:
        if not self.found:
            return
        if tag == "td" and self.cell is not None:
            self.rows[-1].append(self.cell)
            self.cell = None
        elif tag == "section":
            self.depth -= 1
            if self.depth == 0:
                self.found = False

    def handle_data(self, data: str) -> None:
        if self.found and self.cell is not None:
            self.cell += data


def _table(page: str, section_id: str) -> list[list[str]]:
    parser = _Cells(section_id)
    parser.feed(page)
    return [row for row in parser.rows if row]


def test_one_account_and_region_shows_no_place_breakdown() -> None:
    rows = [_row(n, HUB, "eu-west-1", "COMPLIANT" if n % 2 else "NON_COMPLIANT") for n in range(4)]
    page = render(rows, generated_at="2026-12-07T00:00:00Z")
    assert "Compliance by account" not in page and "Compliance by Region" not in page
    assert "Compliance by owner" in page, "the page itself is rendered"
    assert "account/Region" not in page


def test_rows_of_two_accounts_are_broken_down_per_account_and_per_region() -> None:
    rows = [
        _row(1, HUB, "eu-west-1", "COMPLIANT"),
        _row(2, HUB, "eu-west-1", "NON_COMPLIANT"),
        _row(3, HUB, "us-east-1", "COMPLIANT"),
        _row(4, MEMBER, "eu-west-1", "NON_COMPLIANT"),
        _row(5, MEMBER, "eu-west-1", "NON_COMPLIANT"),
        _row(6, MEMBER, "eu-west-1", None),  # unknown: counted in neither
    ]
    page = render(rows, generated_at="2026-12-07T00:00:00Z")
    by_account = _table(page, "by-account")
    # account, compliant/known, %, non-compliant (the share bar has no text); most instances first.
    assert [row[:4] for row in by_account] == [
        [HUB, "2/3", "66.7%", "1"],
        [MEMBER, "0/2", "0.0%", "2"],
    ]
    by_region = _table(page, "by-region")
    assert [row[:4] for row in by_region] == [
        ["eu-west-1", "1/4", "25.0%", "3"],
        ["us-east-1", "1/1", "100.0%", "0"],
    ]


def test_one_account_in_two_regions_is_broken_down_too() -> None:
    rows = [_row(1, HUB, "eu-west-1", "COMPLIANT"), _row(2, HUB, "us-east-1", "NON_COMPLIANT")]
    page = render(rows, generated_at="2026-12-07T00:00:00Z")
    assert [row[:4] for row in _table(page, "by-region")] == [
        ["eu-west-1", "1/1", "100.0%", "0"],
        ["us-east-1", "0/1", "0.0%", "1"],
    ]
    assert [row[:4] for row in _table(page, "by-account")] == [[HUB, "1/2", "50.0%", "1"]]


def test_an_owner_of_one_name_in_two_accounts_sees_which_account_each_instance_is_in() -> None:
    rows = [_row(1, HUB, "eu-west-1", "COMPLIANT"), _row(2, MEMBER, "eu-west-1", "NON_COMPLIANT")]
    page = render(rows, generated_at="2026-12-07T00:00:00Z")
    section = _table(page, owner_anchor("team-a"))
    shown = {row[0]: row[1] for row in section}
    assert shown == {"i-00000000000000001": f"{HUB}/eu-west-1", "i-00000000000000002": f"{MEMBER}/eu-west-1"}
    assert re.search(r'data-label="account/Region"', page)
