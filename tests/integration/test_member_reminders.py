"""Reminders in an organization (#26), through the real ASL in the simulated organization: a member
account's cycle keeps its own reminders beside home's in the hub's one schedule group (neither cycle
deletes the other's), and its messages reach the owner naming the account and Region, while home's
read as a single-account stack's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import pytest

from tagpatch_local.fleet import FleetInstance, MemberAccount
from tagpatch_local.runner import SimulatedAccount

from .support import REPO, run_ok

WEDNESDAY = datetime(2026, 11, 25, 12, tzinfo=UTC)
SUNDAY_2AM = datetime(2026, 11, 29, 2, tzinfo=UTC)
MEMBER = "111111111111"
SCHEDULER_WRITES = {"scheduler:CreateSchedule", "scheduler:DeleteSchedule"}


def node(name: str, owner: str) -> FleetInstance:
    tags = {"Name": name, "Owner": owner, "Patch Group": "web-prod", "Maintenance Window": "sun-0200"}
    return FleetInstance(tags=MappingProxyType(tags), os="AMAZON_LINUX_2023")


@pytest.fixture
def organization() -> Iterator[SimulatedAccount]:
    """The hub and one member account, each with an instance of the same owner in the same window."""
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.set_clock(WEDNESDAY)
        account.seed([node("web-1", "team-web")])
        account.seed_accounts([MemberAccount(MEMBER, "payments", (account.region,), (node("pay-web-1", "team-web"),))])
        yield account


def member_input(account: SimulatedAccount) -> dict[str, Any]:
    return {"target": {"account_id": MEMBER, "region": account.region}}


def counts(result: Any) -> dict[str, int]:
    assert result.output is not None
    found: dict[str, int] = result.output["reminders"]["counts"]
    return found


def schedule_names(account: SimulatedAccount) -> set[str]:
    client, group = account.client("scheduler"), account.physical_id("ReminderScheduleGroup")
    return {s["Name"] for s in client.list_schedules(GroupName=group)["Schedules"]}


def scheduler_writes(result: Any) -> set[str]:
    return set(result.calls_by_function.get("PrePatchNotificationFunction", {})) & SCHEDULER_WRITES


def test_a_member_accounts_reminders_live_beside_homes_and_name_the_account(organization: SimulatedAccount) -> None:
    account = organization
    home = run_ok(account)
    assert counts(home) == {"create": 3, "delete": 0, "unchanged": 0, "foreign": 0}
    home_names = schedule_names(account)
    member = run_ok(account, member_input(account))
    # Home's three are another target's: foreign to the member's cycle, not stale.
    assert counts(member) == {"create": 3, "delete": 0, "unchanged": 0, "foreign": 3}
    member_names = schedule_names(account) - home_names
    assert len(member_names) == 3 and home_names <= schedule_names(account)

    # Reruns of either target write nothing and leave the other's alone.
    account.advance(timedelta(hours=1))
    home_again = run_ok(account)
    assert counts(home_again) == {"create": 0, "delete": 0, "unchanged": 3, "foreign": 3}
    assert scheduler_writes(home_again) == set()
    member_again = run_ok(account, member_input(account))
    assert counts(member_again) == {"create": 0, "delete": 0, "unchanged": 3, "foreign": 3}
    assert scheduler_writes(member_again) == set()

    # The clock fires them: team-web hears of both instances, the member's naming its account and Region.
    account.advance(SUNDAY_2AM - account.now() - timedelta(minutes=30))
    delivered = account.drain_owner_notifications()["team-web"]
    assert len(delivered) == 6
    from_member = [m for m in delivered if m["attributes"].get("account_id") == MEMBER]
    assert len(from_member) == 3
    for message in from_member:
        assert message["attributes"]["region"] == account.region
        assert message["subject"].startswith(f"tagpatch [{MEMBER} {account.region}]: ")
        assert message["message"]["account_id"] == MEMBER
        assert [i["name"] for i in message["message"]["listed"]] == ["pay-web-1"]
    for message in delivered:
        if message not in from_member:
            assert "account_id" not in message["attributes"] and message["subject"].startswith("tagpatch: ")
            assert [i["name"] for i in message["message"]["listed"]] == ["web-1"]
    assert all(json.loads(m["attributes"]["owner"]) == ["team-web"] for m in delivered)
