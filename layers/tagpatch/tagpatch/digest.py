"""The owner digest: once a week, one message per owner listing their instances that need action.

"Need action" is report.html's own test (`report_html.action_of`), and each line gives its fix, so the
message and the owner's section of the report (linked, `owner_anchor`) agree. The schedule is pure:
the digest week starts on the policy's `notifications.digest_day` (UTC), and the first apply-mode
cycle on or after that day sends it (a failed Monday cycle's digest goes out on Tuesday). A marker in
S3 (`marker_key`, one per target) records the week and the owners already sent, so a rerun sends nothing and a
retry after a partly refused batch sends only the rest. Each message stays within SNS's limits at any
fleet size: its list stops at MAX_LISTED instances or MAX_BODY_BYTES, whichever comes first, and then
counts the rest and points at the report.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

from tagpatch.aws import client
from tagpatch.errors import ArtifactError, NotificationRejected, TransientAwsError
from tagpatch.monitoring import DEFAULT_OWNER, batches
from tagpatch.policy import WEEKDAYS, Weekday
from tagpatch.report_html import action_of, owner_anchor, owner_of
from tagpatch.target_messages import located_attributes, located_body, located_subject
from tagpatch.targets import Target

DIGEST_MARKER_KEY: Final = "state/owner-digest.json"  # home's; a member target's is marker_key's
MAX_LISTED: Final = 50  # as many as an owner alert lists
# An e-mail a person reads, and ten of them (a PublishBatch) stay far below SNS's 256 KiB.
MAX_BODY_BYTES: Final = 16_384
MAX_LINE_CHARS: Final = 600  # one instance's line; a long name or fix is cut, not the list
KIND: Final = "owner_digest"


def marker_key(target: Target | None) -> str:
    """Where a target's digest marker is: each child of the org cycle keeps its own week, so the first
    child to finish never marks another's owners as sent. Home (None) keeps the single-account key."""
    if target is None:
        return DIGEST_MARKER_KEY
    return f"state/owner-digest-{target.account_id}-{target.region}.json"


def digest_week(now: datetime, day: Weekday) -> date:
    """The start of the digest week `now` falls in: the latest `day` on or before now's UTC date."""
    today = now.date()
    return today - timedelta(days=(today.weekday() - WEEKDAYS.index(day)) % 7)


@dataclass(frozen=True)
class DigestMarker:
    """Which digest week was sent, and to which owners (all of them once `complete`)."""

    week: str
    sent: frozenset[str]
    complete: bool

    def to_json(self) -> bytes:
        body = {"week": self.week, "sent": sorted(self.sent), "complete": self.complete}
        return json.dumps(body, sort_keys=True).encode()

    @classmethod
    def from_json(cls, body: bytes, key: str = DIGEST_MARKER_KEY) -> DigestMarker:
        try:
            data = json.loads(body)
            return cls(str(data["week"]), frozenset(str(o) for o in data["sent"]), bool(data["complete"]))
        except (ValueError, KeyError, TypeError) as error:
            raise ArtifactError(
                f"{key} is not a digest marker ({error}): restore a previous version or delete it "
                "(deleting it sends this week's digest again)"
            ) from error


def already_sent(week: date, today: date, marker: DigestMarker | None) -> frozenset[str] | None:
    """The owners this week's digest already reached (to skip), or None when none is to be sent now:
    the week's digest is done, or no digest was ever sent and today is not the digest day (a new
    deployment's first digest waits for the day rather than going out on whatever day it starts)."""
    if marker is None:
        return frozenset() if today == week else None
    if marker.week != week.isoformat():
        return frozenset()
    return None if marker.complete else marker.sent


@dataclass(frozen=True)
class Needing:
    instance_id: str
    name: str
    patch_group: str
    state: str
    action: str


@dataclass(frozen=True)
class OwnerDigest:
    """One owner's digest: their instances that need action, in instance id order."""

    owner: str  # the `owner` attribute teams filter on (DEFAULT_OWNER for instances with no Owner tag)
    anchor: str  # their section of report.html
    instances: tuple[Needing, ...]

    def subject(self) -> str:
        count = len(self.instances)
        return f"tagpatch weekly digest: {'1 instance needs' if count == 1 else f'{count} instances need'} action"

    def body(self, report_url: str, snapshot_date: str) -> str:
        link = f"{report_url}#{self.anchor}"
        head = [
            f"{len(self.instances)} of your instances (owner {self.owner}) "
            f"{'needs' if len(self.instances) == 1 else 'need'} action, as of the "
            f"{snapshot_date} compliance snapshot.",
            f"Your section of the report: {link}",
            "",
        ]
        used = len("\n".join(head).encode())
        listed: list[str] = []
        for item in self.instances[:MAX_LISTED]:
            line = _line(item)
            size = len(line.encode()) + 1
            if used + size > MAX_BODY_BYTES - 200:  # room for the closing count
                break
            listed.append(line)
            used += size
        rest = len(self.instances) - len(listed)
        tail = [f"... and {rest} more: see {link}"] if rest else []
        return "\n".join([*head, *listed, *tail])


def _line(item: Needing) -> str:
    line = (
        f"- {item.instance_id} ({item.name or 'no Name tag'}), patch group {item.patch_group or '(none)'}: "
        f"{item.state}. {item.action}"
    )
    return line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 1] + "…"


def owner_digests(records: Iterable[Mapping[str, Any]], skip: frozenset[str] = frozenset()) -> list[OwnerDigest]:
    """One digest per owner with an instance that needs action (none for an owner with nothing to do),
    by owner; owners in `skip` (already sent this week) are left out."""
    needing: dict[str, list[Needing]] = {}
    anchors: dict[str, str] = {}
    for record in records:
        action = action_of(record)
        if action is None:
            continue
        owner = str(record.get("owner") or DEFAULT_OWNER)
        anchors[owner] = owner_anchor(owner_of(record))
        state = str(record.get("last_outcome") or record.get("class") or "")
        compliance = str(record.get("compliance") or "UNKNOWN").lower().replace("_", "-")
        needing.setdefault(owner, []).append(
            Needing(
                str(record["instance_id"]),
                str(record.get("name") or ""),
                str(record.get("patch_group") or ""),
                f"{compliance}, {state}" if state else compliance,
                action,
            )
        )
    return [
        OwnerDigest(owner, anchors[owner], tuple(sorted(items, key=lambda n: n.instance_id)))
        for owner, items in sorted(needing.items())
        if owner not in skip
    ]


def digest_entry(
    digest: OwnerDigest, entry_id: str, report_url: str, snapshot_date: str, target: Target | None = None
) -> dict[str, Any]:
    """One digest as a PublishBatch entry; a member target's names its account and Region."""
    attributes = {
        "owner": {"DataType": "String", "StringValue": digest.owner},
        "kind": {"DataType": "String", "StringValue": KIND},
    }
    return {
        "Id": entry_id,
        "Subject": located_subject(digest.subject(), target),
        "Message": located_body(digest.body(report_url, snapshot_date), target),
        "MessageAttributes": located_attributes(attributes, target),
    }


@dataclass(frozen=True)
class DigestSent:
    sent: frozenset[str]  # owners SNS accepted a digest for
    error: NotificationRejected | TransientAwsError | None = None  # why the rest were not sent


def publish_digests(
    topic_arn: str,
    digests: Sequence[OwnerDigest],
    report_url: str,
    snapshot_date: str,
    target: Target | None = None,
) -> DigestSent:
    """Publish the digests ten to a PublishBatch call; stops at the first batch SNS refused any entry of,
    returning what was sent and the error (raised by the caller once the marker records the sent)."""
    entries = [digest_entry(d, str(i), report_url, snapshot_date, target) for i, d in enumerate(digests)]
    sent: set[str] = set()
    for batch in batches(entries):
        response = client("sns").publish_batch(TopicArn=topic_arn, PublishBatchRequestEntries=batch)
        sent.update(digests[int(ok["Id"])].owner for ok in response.get("Successful", []))
        failed = response.get("Failed", [])
        if failed:
            described = "; ".join(f"{digests[int(f['Id'])].owner}: {f['Code']}: {f.get('Message', '')}" for f in failed)
            text = f"SNS refused {len(failed)} of {len(batch)} owner digests: {described}"
            error: NotificationRejected | TransientAwsError = (
                NotificationRejected(text) if all(f.get("SenderFault") for f in failed) else TransientAwsError(text)
            )
            return DigestSent(frozenset(sent), error)
    return DigestSent(frozenset(sent))
