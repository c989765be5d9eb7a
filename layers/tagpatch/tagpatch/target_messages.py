"""What a message to owners says about where its instances are (docs/decisions.md, "Many accounts and Regions").

A cycle acts in one target, so every reminder, alert and notice it sends is about that target's
instances. A member account's messages name its account and Region in the subject, in their first
line, and in two SNS message attributes beside `owner`, so owners of one name in two accounts are never
told of each other's instances without being told which account each is in, and a team can add
`account_id` to its subscription's filter policy. Home's messages (the hub's own account and Region,
and every single-account stack) stay exactly as they were.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from tagpatch.targets import Target

ACCOUNT_ATTRIBUTE: Final = "account_id"
REGION_ATTRIBUTE: Final = "region"
SUBJECT_LIMIT: Final = 100  # SNS: at most 100 printable ASCII characters
SUBJECT_PREFIX: Final = "tagpatch: "


def member_of(cycle: object, home: Target | None) -> Target | None:
    """The cycle payload's target when it is not home, read leniently: a report of a failure (perhaps of
    PrepareCycle itself, on bad input) must still go out, so an unreadable target counts as none."""
    raw = cycle.get("target") if isinstance(cycle, Mapping) else None
    if not isinstance(raw, Mapping):
        return None
    account, region = raw.get("account_id"), raw.get("region")
    if not isinstance(account, str) or not isinstance(region, str):
        return None
    target = Target(account, region)
    return None if target == home else target


def place_line(target: Target) -> str:
    return f"Account {target.account_id}, Region {target.region}."


def located_subject(subject: str, target: Target | None) -> str:
    """`tagpatch [<account> <Region>]: ...`, cut to SNS's 100 characters; home's subject unchanged."""
    if target is None:
        return subject
    place = f"[{target.account_id} {target.region}]"
    if subject.startswith(SUBJECT_PREFIX):
        return f"tagpatch {place}: {subject.removeprefix(SUBJECT_PREFIX)}"[:SUBJECT_LIMIT]
    return f"{place} {subject}"[:SUBJECT_LIMIT]


def located_body(body: str, target: Target | None) -> str:
    """The account and Region as the body's first line; home's body unchanged."""
    return body if target is None else f"{place_line(target)}\n\n{body}"


def located_attributes(attributes: Mapping[str, Any], target: Target | None) -> dict[str, Any]:
    """The message attributes with `account_id` and `region` beside `owner`; home's unchanged."""
    if target is None:
        return dict(attributes)
    return {
        **attributes,
        ACCOUNT_ATTRIBUTE: {"DataType": "String", "StringValue": target.account_id},
        REGION_ATTRIBUTE: {"DataType": "String", "StringValue": target.region},
    }
