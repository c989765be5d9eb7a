"""report.html on a phone and on a desktop, as headless Chromium lays it out: no sideways scroll at 390 px,
tables still tables at desktop width, and a section per owner behind a stable anchor an owner can be sent."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tagpatch.report_html import NotReported, OrgTargets, TargetCounts, owner_anchor, owner_of, render, render_summary

from .support import page_layout

# Owners as people type them: spaces, case, punctuation, non-ASCII, a URL-ish one, and two that a
# naive slug would merge ("Team A" and "team-a").
OWNERS = (
    "team-a",
    "Team A",
    "platform/ops & sre",
    "équipe données",
    "<script>x</script>",
    "a.very.long.owner@example.com",
)
# Long unbroken values a phone cannot fit on one line unless the page wraps them.
LONG_NAME = "payments-api-production-eu-west-1-blue-green-canary-" * 2
LONG_REASON = "tag:PatchGroup=" + "x" * 80 + "-is-not-a-patch-group-this-account-declares"


# Headless Chromium's window is at least 500 px wide, so the page is laid out in an iframe of the width
# under test. The probe runs in the test's wrapper page only (report.html itself loads and runs nothing):
# it measures the framed page, then writes the figures into the DOM that --dump-dom prints.
def _record(n: int, owner: str | None, **fields: Any) -> dict[str, Any]:
    return {
        "instance_id": f"i-{n:017x}",
        "name": LONG_NAME + str(n),
        "owner": owner,
        "patch_group": f"web-production-eu-west-1-blue-green-canary-{n % 4}",
        "os": "Amazon Linux 2023",
        "class": "ready",
        "compliance": "NON_COMPLIANT" if n % 2 else "COMPLIANT",
        "critical_missing": n % 2,
        "reasons": [LONG_REASON] if n % 2 else [],
        "last_outcome": "failed" if n % 3 == 0 else "patched",
        "last_outcome_reason": "MaxErrors reached before this instance's turn" if n % 3 == 0 else None,
        "scan_status": "stale" if n % 4 == 0 else "current",
        "last_scan": "2026-11-20T02:00:00Z",
        "scan_age_days": 9.4,
        "days_since_last_success": None if n % 5 == 0 else 3 * n,  # the slowest-to-patch groups
        # Three accounts in two Regions: the per-account and per-Region tables, and the account/Region
        # column of the owner sections, are laid out too.
        "account_id": ("111111111111", "222222222222", "333333333333")[n % 3],
        "region": ("eu-west-1", "ap-southeast-2")[n % 2],
    } | fields


RECORDS = [_record(n, OWNERS[n % len(OWNERS)]) for n in range(1, 25)] + [
    _record(99, None, scan_status="never_scanned", last_scan=None, compliance=None)
]


def _layout(tmp_path: Path, width: int) -> dict[str, Any]:
    return page_layout(render(RECORDS, generated_at="2026-12-06T12:00:00Z"), width, tmp_path)


def test_report_html_has_no_sideways_scroll_at_390_px(tmp_path: Path) -> None:
    figures = _layout(tmp_path, 390)
    assert figures["scrollWidth"] <= 390


def test_report_html_tables_stay_tables_at_desktop_width(tmp_path: Path) -> None:
    figures = _layout(tmp_path, 1280)
    assert figures["tables"] and set(figures["tables"]) == {"table"}
    assert figures["scrollWidth"] <= 1280
    # A long reason beside them does not squeeze the short columns until an id breaks letter by letter.
    assert figures["idLines"] and set(figures["idLines"]) == {1}, figures["idLines"]


def test_the_per_account_and_per_region_tables_are_on_the_page(tmp_path: Path) -> None:
    figures = _layout(tmp_path, 390)
    assert {"by-account", "by-account-table", "by-region", "by-region-table"} <= set(figures["ids"])


def test_at_desktop_width_a_long_reason_squeezes_no_short_column_and_no_value_scrolls_the_page(tmp_path: Path) -> None:
    prose = "its tags give it no maintenance window: add a tag with key Maintenance Window, " * 5
    records = [
        *RECORDS,
        _record(100, "team-b", last_outcome_reason=prose),
        _record(101, "o" * 200, name="n" * 200),  # tag values at their longest with nowhere to break
    ]
    figures = page_layout(render(records, generated_at="2026-12-06T12:00:00Z"), 1280, tmp_path)
    assert figures["scrollWidth"] <= 1280
    assert set(figures["idLines"]) == {1}, figures["idLines"]
    narrowest = figures["narrowest"]
    assert all(narrowest[column] >= 60 for column in ("name", "owner", "patch group")), narrowest


def test_each_owner_has_an_anchor_holding_only_that_owners_instances(tmp_path: Path) -> None:
    figures = _layout(tmp_path, 390)
    assert len(figures["ids"]) == len(set(figures["ids"])), "ids on the page are unique"
    by_owner: dict[str, set[str]] = {}
    for record in RECORDS:
        by_owner.setdefault(owner_of(record), set()).add(record["instance_id"])
    assert set(figures["owners"]) == {owner_anchor(owner) for owner in by_owner}
    for owner, mine in by_owner.items():
        text = figures["owners"][owner_anchor(owner)]
        shown = set(re.findall(r"i-[0-9a-f]{17}", text))
        assert shown == mine, owner
    # The by-owner table links each owner with a known compliance to its section.
    known = {owner_of(r) for r in RECORDS if r["compliance"]}
    assert known != set(by_owner), "the records include an owner with no known compliance"
    assert set(figures["ownerLinks"]) == {f"#{owner_anchor(owner)}" for owner in known}


@pytest.mark.parametrize("owner", [*OWNERS, "", " ", "TEAM-A", "team--a", "team-a-", "-", "🙂", "a" * 300])
def test_an_owner_anchor_is_url_safe_and_stable(owner: str) -> None:
    anchor = owner_anchor(owner)
    assert re.fullmatch(r"owner-[a-z0-9]+(-{1,2}[a-z0-9]+)*", anchor), anchor
    assert len(anchor) <= 80
    assert owner_anchor(owner) == anchor


def test_owner_anchors_are_unique_for_owners_a_slug_would_merge() -> None:
    owners = [*OWNERS, "", " ", "TEAM-A", "team--a", "team-a-", "-", "🙂", "🙃", "team_a", "team a"]
    anchors = [owner_anchor(owner) for owner in owners]
    assert len(set(anchors)) == len(owners), anchors
    assert owner_anchor("team-a") == "owner-team-a", "a plain owner keeps a readable anchor"


def _summary_page() -> str:
    """An organization's summary page: 200 targets (100 accounts in 2 Regions), one not reported."""
    reported = [
        TargetCounts(
            f"{account:012d}",
            region,
            {"instances": 5000, "compliant": 4000, "non_compliant": 900, "unknown": 100, "excepted": 10},
            f"report-{account:012d}-{region}.html",
        )
        for account in range(100_000_000_000, 100_000_000_100)
        for region in ("eu-west-1", "ap-southeast-2")
    ]
    targets = OrgTargets(
        tuple(target.label for target in reported), (NotReported("999999999999/eu-west-1", LONG_REASON),)
    )
    return render_summary(reported, generated_at="2026-12-06T12:00:00Z", trend=[], targets=targets, max_rows=196_206)


def test_the_organizations_summary_page_has_no_sideways_scroll_at_390_px_and_stays_tables_on_a_desktop(
    tmp_path: Path,
) -> None:
    phone = page_layout(_summary_page(), 390, tmp_path)
    assert phone["scrollWidth"] <= 390
    assert {"target-pages", "by-account-table", "by-region-table", "not-reported"} <= set(phone["ids"])
    desktop = page_layout(_summary_page(), 1280, tmp_path)
    assert desktop["scrollWidth"] <= 1280 and set(desktop["tables"]) == {"table"}
