"""The weekly owner digest through the real ASL (ComplianceExport): one message per owner with an
instance that needs action on the policy's digest day, none for an owner with nothing to do, none on a
rerun the same week, and every message within SNS's limits with a large fleet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml

from tagpatch.digest import DIGEST_MARKER_KEY, KIND, MAX_BODY_BYTES
from tagpatch.export import LATEST_REPORT_KEY
from tagpatch.report_html import owner_anchor
from tagpatch_local.cycle import CycleResult
from tagpatch_local.fleet import FleetInstance
from tagpatch_local.runner import SimulatedAccount

from .support import REPO, run_ok, topic_queue

MONDAY = datetime(2026, 12, 7, 12, tzinfo=UTC)
REPORT_URL = "https://reports.example.com/tagpatch/report.html"


def node(name: str, owner: str, window: str = "sun-0200") -> FleetInstance:
    tags = {"Name": name, "Owner": owner, "Patch Group": "web-prod", "Maintenance Window": window}
    return FleetInstance(tags=MappingProxyType(tags), os="AMAZON_LINUX_2023")


def digest_policy(tmp_path: Path, **notifications: Any) -> Path:
    document = yaml.safe_load((REPO / "policy" / "patch-policy.yaml").read_text())
    document["notifications"].update(notifications)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def marker_versions(account: SimulatedAccount) -> int:
    listed = account.client("s3").list_object_versions(
        Bucket=account.physical_id("ArtifactBucket"), Prefix=DIGEST_MARKER_KEY
    )
    return sum(v["Key"] == DIGEST_MARKER_KEY for v in listed.get("Versions", []))


def digests_sent(result: CycleResult) -> Any:
    assert result.output is not None
    return result.output["compliance"]["owner_digests_sent"]


def test_one_digest_per_owner_with_action_on_the_digest_day_and_none_on_a_rerun(tmp_path: Path) -> None:
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.use_policy(digest_policy(tmp_path, digest_day="MON", report_url=REPORT_URL))
        account.set_clock(MONDAY)
        ids = account.seed(
            [
                node("web-bad-tag", "team-a", window="every other tuesday"),  # invalid tag: action
                node("web-fine", "team-a"),
                node("db-fine", "team-b"),  # team-b has nothing to do
            ]
        )
        digests = topic_queue(account, "NotificationsTopic", queue="digests", filter_policy={"kind": [KIND]})
        first = run_ok(account)
        sent = digests()
        account.advance(timedelta(hours=6))  # a rerun the same day
        rerun = run_ok(account)
        after_rerun, versions_after_rerun = digests(), marker_versions(account)
        account.advance(timedelta(days=1))  # Tuesday: the week's digest is done
        run_ok(account)
        tuesday = digests()
        account.advance(timedelta(days=6))  # the next Monday
        run_ok(account)
        next_week = digests()
    assert digests_sent(first) == 1
    (message,) = sent
    attributes = {k: v["Value"] for k, v in message["MessageAttributes"].items()}
    assert attributes == {"owner": "team-a", "kind": KIND}
    assert message["Subject"] == "tagpatch weekly digest: 1 instance needs action"
    body = message["Message"]
    assert f"{REPORT_URL}#{owner_anchor('team-a')}" in body
    assert ids[0] in body and "(web-bad-tag)" in body and ids[1] not in body
    assert "Maintenance Window" in body  # what to do: the tag's fix
    assert digests_sent(rerun) == 0
    assert (after_rerun, versions_after_rerun, tuesday) == ([], 1, [])  # the rerun sent and wrote nothing
    assert [m["MessageAttributes"]["owner"]["Value"] for m in next_week] == ["team-a"]


def test_with_many_owners_and_a_large_owner_every_digest_fits_and_counts_what_it_does_not_list(
    tmp_path: Path,
) -> None:
    big = [node(f"big-{n:03d}-" + "x" * 200, "team-big", window="no such window") for n in range(400)]
    small = [node(f"small-{n}", f"team-{n:02d}", window="no such window") for n in range(24)]
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.use_policy(digest_policy(tmp_path, digest_day="MON"))
        account.set_clock(MONDAY)
        account.seed(big + small)
        digests = topic_queue(account, "NotificationsTopic", queue="digests", filter_policy={"kind": [KIND]})
        result = run_ok(account)
        sent = digests()
        bucket = account.physical_id("ArtifactBucket")
    assert digests_sent(result) == 25
    by_owner = {m["MessageAttributes"]["owner"]["Value"]: m["Message"] for m in sent}
    assert len(sent) == len(by_owner) == 25  # one each, over three PublishBatch calls
    assert all(len(body.encode()) <= MAX_BODY_BYTES for body in by_owner.values())
    link = f"s3://{bucket}/{LATEST_REPORT_KEY}#{owner_anchor('team-big')}"  # no report_url: the S3 URI
    listed = sum(line.startswith("- i-") for line in by_owner["team-big"].splitlines())
    assert by_owner["team-big"].splitlines()[-1] == f"... and {400 - listed} more: see {link}"
    assert by_owner["team-big"].startswith("400 of your instances (owner team-big) need action")


def test_a_new_deployment_sends_its_first_digest_on_the_digest_day_not_the_day_it_starts(tmp_path: Path) -> None:
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.use_policy(digest_policy(tmp_path, digest_day="MON"))
        account.set_clock(MONDAY - timedelta(days=4))  # a Thursday
        account.seed([node("web-bad-tag", "team-a", window="every other tuesday")])
        digests = topic_queue(account, "NotificationsTopic", queue="digests", filter_policy={"kind": [KIND]})
        run_ok(account)
        thursday, versions = digests(), marker_versions(account)
        account.set_clock(MONDAY)
        run_ok(account)
        monday = digests()
    assert (thursday, versions) == ([], 0)
    assert [m["MessageAttributes"]["owner"]["Value"] for m in monday] == ["team-a"]


def test_plan_mode_sends_no_digest_and_writes_no_marker(tmp_path: Path) -> None:
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.use_policy(digest_policy(tmp_path, digest_day="MON"))
        account.set_clock(MONDAY)
        account.seed([node("web-bad-tag", "team-a", window="every other tuesday")])
        digests = topic_queue(account, "NotificationsTopic", queue="digests", filter_policy={"kind": [KIND]})
        plan = run_ok(account, {"mode": "plan"})
        assert (digests(), marker_versions(account), digests_sent(plan)) == ([], 0, 0)


def test_a_digest_sns_refuses_fails_the_cycle_loudly_and_the_rerun_sends_only_that_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.sns import exceptions
    from moto.sns.models import SNSBackend

    corrected = SNSBackend.publish

    def refuse_team_11(self: SNSBackend, message: str, *args: Any, **kwargs: Any) -> str:
        if "(owner team-11)" in message:
            raise exceptions.InvalidParameterValue("refused")
        return corrected(self, message, *args, **kwargs)

    with SimulatedAccount(REPO / "template.yaml") as account:
        account.use_policy(digest_policy(tmp_path, digest_day="MON"))
        account.set_clock(MONDAY)
        account.seed([node(f"bad-{n}", f"team-{n:02d}", window="no such window") for n in range(12)])
        digests = topic_queue(account, "NotificationsTopic", queue="digests", filter_policy={"kind": [KIND]})
        alerts = topic_queue(account)
        with monkeypatch.context() as refusing:
            refusing.setattr(SNSBackend, "publish", refuse_team_11)
            failed = account.run_cycle()
        first, told = digests(), alerts()
        account.advance(timedelta(hours=1))
        rerun = run_ok(account)
        second = digests()
    assert failed.status == "FAILED"
    assert sorted(m["MessageAttributes"]["owner"]["Value"] for m in first) == [
        f"team-{n:02d}" for n in range(12) if n != 11
    ]
    assert any("team-11: InvalidParameter" in m["Message"] for m in told), told  # the operators are told
    assert digests_sent(rerun) == 1
    assert [m["MessageAttributes"]["owner"]["Value"] for m in second] == ["team-11"]
