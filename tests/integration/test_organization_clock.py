"""One clock for the whole simulated organization: set and advanced in the hub's home Region and in every
member account and Region, whose maintenance windows run as it moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tagpatch_local import simulator
from tagpatch_local.clients import account_session
from tagpatch_local.fleet import MemberAccount
from tagpatch_local.runner import SimulatedAccount

REPO = Path(__file__).resolve().parents[2]
ROOT = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def test_the_clock_moves_in_every_account_and_region_and_runs_their_windows() -> None:
    start = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)  # a Sunday
    member = MemberAccount("444444444444", "clocked", ("us-east-1", "eu-west-1"), spoke=False)
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.set_clock(start)
        account.seed_accounts((member,))
        for region in member.regions:
            assert simulator.clock.now(member.id, region) == start  # members follow the hub's clock
            ssm = account_session(member.id, region, ROOT).client("ssm")
            ssm.create_maintenance_window(
                Name=f"member-{region}",
                Schedule="cron(0 2 ? * SUN *)",
                Duration=2,
                Cutoff=1,
                AllowUnassociatedTargets=True,
            )
        runs = account.advance(timedelta(hours=3))
        assert sorted((run.account_id, run.region, run.window_name) for run in runs) == [
            (member.id, "eu-west-1", "member-eu-west-1"),
            (member.id, "us-east-1", "member-us-east-1"),
        ]
        assert all(run.started == start + timedelta(hours=1) for run in runs)
        for region in member.regions:
            assert simulator.clock.now(member.id, region) == start + timedelta(hours=3)
