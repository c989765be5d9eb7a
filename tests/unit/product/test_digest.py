"""The owner digest's pure parts (tagpatch.digest): the week, the marker, who gets one, and its size."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from tagpatch.digest import (
    KIND,
    MAX_BODY_BYTES,
    MAX_LISTED,
    DigestMarker,
    already_sent,
    digest_entry,
    digest_week,
    owner_digests,
)
from tagpatch.errors import ArtifactError
from tagpatch.monitoring import BATCH_BYTES, BATCH_ENTRIES, DEFAULT_OWNER, batches, entry_bytes
from tagpatch.report_html import FIXES, owner_anchor, owner_of

REPORT = "https://reports.example.com/tagpatch/report.html"


def record(n: int, owner: str | None, **fields: Any) -> dict[str, Any]:
    return {
        "instance_id": f"i-{n:017x}",
        "name": f"web-{n}",
        "owner": owner,
        "patch_group": "web-prod",
        "class": "ready",
        "compliance": "COMPLIANT",
        "last_outcome": "patched",
    } | fields


def needs_action(n: int, owner: str | None, **fields: Any) -> dict[str, Any]:
    return record(n, owner, compliance="NON_COMPLIANT", critical_missing=2, **fields)


@pytest.mark.parametrize(
    ("now", "day", "week"),
    [
        (datetime(2026, 12, 7, 0, 0, tzinfo=UTC), "MON", date(2026, 12, 7)),  # a Monday, at midnight
        (datetime(2026, 12, 13, 23, 59, tzinfo=UTC), "MON", date(2026, 12, 7)),  # the Sunday after
        (datetime(2026, 12, 14, 0, 0, tzinfo=UTC), "MON", date(2026, 12, 14)),
        (datetime(2026, 12, 10, 12, tzinfo=UTC), "FRI", date(2026, 12, 4)),  # a Thursday: last Friday's week
        (datetime(2026, 12, 11, 12, tzinfo=UTC), "FRI", date(2026, 12, 11)),
        (datetime(2026, 12, 6, 12, tzinfo=UTC), "SUN", date(2026, 12, 6)),
    ],
)
def test_the_digest_week_starts_on_the_latest_digest_day_on_or_before_the_cycles_date(
    now: datetime, day: Any, week: date
) -> None:
    assert digest_week(now, day) == week


def test_a_week_is_sent_once_and_a_partly_sent_week_skips_only_the_owners_reached() -> None:
    week, monday, tuesday = date(2026, 12, 7), date(2026, 12, 7), date(2026, 12, 8)
    last_week = DigestMarker("2026-11-30", frozenset({"a"}), complete=True)
    assert already_sent(week, monday, last_week) == already_sent(week, tuesday, last_week) == frozenset()
    assert already_sent(week, tuesday, DigestMarker("2026-12-07", frozenset({"a"}), complete=True)) is None
    assert already_sent(week, tuesday, DigestMarker("2026-12-07", frozenset({"a"}), complete=False)) == frozenset({"a"})


def test_a_first_digest_waits_for_the_digest_day() -> None:
    week = date(2026, 12, 7)
    assert already_sent(week, date(2026, 12, 7), None) == frozenset()
    assert already_sent(week, date(2026, 12, 10), None) is None


def test_the_marker_reads_back_what_it_wrote_and_a_damaged_one_says_what_to_do() -> None:
    marker = DigestMarker("2026-12-07", frozenset({"team-b", "team-a"}), complete=False)
    assert DigestMarker.from_json(marker.to_json()) == marker
    with pytest.raises(ArtifactError, match=r"state/owner-digest\.json is not a digest marker.*delete it"):
        DigestMarker.from_json(b'{"week": "2026-12-07"}')


def test_one_digest_per_owner_with_an_instance_that_needs_action_and_none_for_the_others() -> None:
    records = [
        needs_action(1, "team-a"),
        record(2, "team-a"),
        record(3, "team-b"),  # compliant: team-b needs no message
        needs_action(4, None),
        record(5, "team-c", **{"class": "excepted", "compliance": "NON_COMPLIANT", "critical_missing": 3}),
        record(6, "team-d", last_outcome="failed", last_outcome_reason="Failed"),
        needs_action(7, "team-a"),
    ]
    digests = owner_digests(records)
    assert [d.owner for d in digests] == ["team-a", "team-d", DEFAULT_OWNER]
    by_owner = {d.owner: d for d in digests}
    assert [i.instance_id for i in by_owner["team-a"].instances] == [f"i-{1:017x}", f"i-{7:017x}"]
    assert by_owner["team-a"].instances[0].action == FIXES["critical"]
    # An instance with no Owner tag is sent under DEFAULT_OWNER, linked to the report's no-owner section.
    assert by_owner[DEFAULT_OWNER].anchor == owner_anchor(owner_of({"owner": None}))
    assert [d.owner for d in owner_digests(records, skip=frozenset({"team-a"}))] == ["team-d", DEFAULT_OWNER]


def test_the_message_lists_each_instance_with_what_to_do_and_links_the_owners_section() -> None:
    (digest,) = owner_digests([needs_action(1, "Team A/ops"), needs_action(2, "Team A/ops", name=None)])
    entry = digest_entry(digest, "0", REPORT, "2026-12-07")
    body = entry["Message"]
    assert f"{REPORT}#{owner_anchor('Team A/ops')}" in body
    assert f"i-{1:017x} (web-1), patch group web-prod: non-compliant, patched. {FIXES['critical']}" in body
    assert f"i-{2:017x} (no Name tag)" in body
    assert "2 of your instances (owner Team A/ops) need action, as of the 2026-12-07" in body
    assert entry["Subject"] == "tagpatch weekly digest: 2 instances need action"
    assert entry["MessageAttributes"] == {
        "owner": {"DataType": "String", "StringValue": "Team A/ops"},
        "kind": {"DataType": "String", "StringValue": KIND},
    }
    (one,) = owner_digests([needs_action(1, "x")])
    assert one.subject() == "tagpatch weekly digest: 1 instance needs action"
    assert one.body(REPORT, "2026-12-07").startswith("1 of your instances (owner x) needs action, as of")


def test_a_large_owner_gets_a_bounded_message_with_the_count_of_the_rest_and_the_link() -> None:
    many = [needs_action(n, "big", name="n" * 255) for n in range(5000)]
    (digest,) = owner_digests(many)
    body = digest.body(REPORT, "2026-12-07")
    assert len(body.encode()) <= MAX_BODY_BYTES
    listed = [line for line in body.splitlines() if line.startswith("- i-")]
    assert 0 < len(listed) <= MAX_LISTED
    assert body.splitlines()[-1] == f"... and {5000 - len(listed)} more: see {REPORT}#{owner_anchor('big')}"
    short = [needs_action(n, "short") for n in range(MAX_LISTED + 7)]
    (digest,) = owner_digests(short)
    assert digest.body(REPORT, "d").splitlines()[-1].startswith("... and 7 more: see ")


def test_every_batch_of_digests_stays_within_publishbatchs_limits() -> None:
    records = [needs_action(n, f"owner-{n % 300:03d}-" + "o" * 200, name="n" * 255) for n in range(30_000)]
    digests = owner_digests(records)
    entries = [digest_entry(d, str(i), REPORT, "2026-12-07") for i, d in enumerate(digests)]
    sent = list(batches(entries))
    assert sum(len(b) for b in sent) == 300
    assert all(len(b) <= BATCH_ENTRIES and sum(entry_bytes(e) for e in b) <= BATCH_BYTES for b in sent)
    assert all(len(e["Subject"]) <= 100 and e["Subject"].isascii() for e in entries)


@pytest.fixture
def notifications_topic(monkeypatch: pytest.MonkeyPatch) -> Any:
    import boto3
    from moto import mock_aws

    from tagpatch_local import simulator

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        simulator.install()
        yield boto3.client("sns", "us-east-1").create_topic(Name="notifications")["TopicArn"]


@pytest.mark.parametrize(
    ("refusal", "raised"),
    [("InternalError", "TransientAwsError"), ("InvalidParameterValue", "NotificationRejected")],
)
def test_a_refused_digest_is_not_counted_as_sent_and_a_retry_sends_only_the_rest(
    notifications_topic: str, monkeypatch: pytest.MonkeyPatch, refusal: str, raised: str
) -> None:
    from moto.sns import exceptions
    from moto.sns.models import SNSBackend

    from tagpatch import errors
    from tagpatch.digest import publish_digests

    corrected = SNSBackend.publish
    refusing = {"on": True}

    def refuse_team_13(self: SNSBackend, message: str, *args: Any, **kwargs: Any) -> str:
        if refusing["on"] and "(owner team-13)" in message:
            raise getattr(exceptions, refusal)("refused")
        return corrected(self, message, *args, **kwargs)

    monkeypatch.setattr(SNSBackend, "publish", refuse_team_13)
    records = [needs_action(n, f"team-{n:02d}") for n in range(25)]
    first = publish_digests(notifications_topic, owner_digests(records), REPORT, "2026-12-07")
    assert isinstance(first.error, getattr(errors, raised))
    assert "1 of 10 owner digests: team-13: " in str(first.error)
    # The first batch (team-00..09) and the rest of the second; the third batch was not tried.
    assert first.sent == {f"team-{n:02d}" for n in range(20)} - {"team-13"}
    refusing["on"] = False
    retry = publish_digests(notifications_topic, owner_digests(records, skip=first.sent), REPORT, "2026-12-07")
    assert retry.error is None
    assert retry.sent == {f"team-{n:02d}" for n in range(25)} - first.sent


def test_a_member_targets_digest_names_its_account_and_region_and_keeps_its_own_marker() -> None:
    from tagpatch.digest import DIGEST_MARKER_KEY, marker_key
    from tagpatch.targets import Target

    member = Target("222233334444", "eu-west-1")
    (digest,) = owner_digests([needs_action(1, "team-a")])
    entry = digest_entry(digest, "0", REPORT, "2026-12-07", member)
    assert entry["Subject"] == "[222233334444 eu-west-1] tagpatch weekly digest: 1 instance needs action"
    assert entry["Message"].startswith("Account 222233334444, Region eu-west-1.\n\n1 of your instances")
    attributes = {name: value["StringValue"] for name, value in entry["MessageAttributes"].items()}
    assert attributes == {"owner": "team-a", "kind": KIND, "account_id": "222233334444", "region": "eu-west-1"}
    # Home's digest is as before, and each target's week is its own: one child's digest never marks
    # another's sent.
    assert digest_entry(digest, "0", REPORT, "2026-12-07") == digest_entry(digest, "0", REPORT, "2026-12-07", None)
    assert marker_key(None) == DIGEST_MARKER_KEY
    keys = {marker_key(member), marker_key(Target("222233334444", "us-east-1")), marker_key(None)}
    assert len(keys) == 3 and all(key.startswith("state/owner-digest") for key in keys)
