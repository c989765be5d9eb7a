"""PatchMonitoring through the real state machine, with maintenance windows that run in the simulated
account as its clock advances: one outcome per instance, owner alerts, the watermark, and the alert of
a failed window run within minutes."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from moto.moto_api._internal import mock_random

from tagpatch.outcomes import OUTCOMES
from tagpatch_local import cli
from tagpatch_local.fleet import GeneratorSpec, PatchDistribution, generate_fleet
from tagpatch_local.report import patch_result_lines
from tagpatch_local.runner import SimulatedAccount
from tagpatch_local.simulator import events

from .support import instance, run_ok, template_variant, topic_queue

REPO = Path(__file__).resolve().parents[2]
FRIDAY_NOON = datetime(2026, 11, 27, 12, tzinfo=UTC)  # the Sunday window sun-0200 opens 38 h later

# What scenarios/patch-night.yaml says each instance's line shows after its `sunday` cycle. The
# policy's daily patch scan (a State Manager association, #23) has scanned every reachable instance
# with a patch group, so only the stopped web-5 and the unreachable web-6 are still UNKNOWN.
SUNDAY = {
    "web-1": ("patched", "Success/Success", "COMPLIANT"),
    "web-2": ("patched", "Success/Success", "COMPLIANT"),
    "web-3": ("failed", "Failed/Failed", "NON_COMPLIANT"),
    "web-4": ("failed", "TimedOut/Execution Timed Out", "NON_COMPLIANT"),
    "web-5": ("missed", "TimedOut/Delivery Timed Out", "UNKNOWN"),
    "web-6": ("missed", "Failed/Undeliverable", "UNKNOWN"),
    "web-7": ("missed", None, "NON_COMPLIANT"),
    "batch-1": ("scanned", "Success/Success", "NON_COMPLIANT"),
    "app-win-1": ("not_due", None, "NON_COMPLIANT"),
    "legacy-1": ("not_scheduled", None, "COMPLIANT"),
}
NEXT_SUNDAY = {
    **SUNDAY,
    "web-3": ("patched", "Success/Success", "COMPLIANT"),
    "web-5": ("patched", "Success/Success", "COMPLIANT"),
    "web-7": ("patched", "Success/Success", "COMPLIANT"),
}


def lines(path: Path) -> dict[str, dict[str, Any]]:
    return {line["name"]: line for line in map(json.loads, path.read_text().splitlines())}


@pytest.fixture(scope="module")
def patch_night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("patch-night") / "out"
    status = cli.main(["run", "--scenario", str(REPO / "scenarios" / "patch-night.yaml"), "--out", str(out)])
    assert status == cli.EXIT_OK
    return out


@pytest.mark.parametrize(("cycle", "expected"), [("03-sunday", SUNDAY), ("04-next-sunday", NEXT_SUNDAY)])
def test_every_instance_gets_the_outcome_its_state_and_tags_imply(
    patch_night: Path, cycle: str, expected: dict[str, tuple[str, str | None, str]]
) -> None:
    found = lines(patch_night / cycle / "patch-results.jsonl")
    assert len(found) == 13  # one line per instance in scope, and only one
    for name, (outcome, command_status, compliance) in expected.items():
        line = found[name]
        assert (line["outcome"], line["command_status"], line["compliance"]) == (outcome, command_status, compliance), (
            name,
            line,
        )
        if outcome not in ("not_due", "not_scheduled"):
            assert line["window"] and line["window"] in line["reason"], line
    # MaxErrors 5% of three instances lets no error through: the first one tried fails, the other two
    # are not sent (which one goes first is SSM's choice).
    database = Counter(found[name]["outcome"] for name in ("db-1", "db-2", "db-3"))
    assert database == {"failed": 1, "missed": 2}
    for name in ("db-1", "db-2", "db-3"):
        if found[name]["outcome"] == "missed":
            assert found[name]["command_status"] == "Cancelled/Terminated"
            assert "MaxErrors" in found[name]["reason"]
    if cycle == "03-sunday":  # retagged after Friday's cycle: the window's targets did not know it yet
        assert "targets did not select" in found["web-7"]["reason"]
    summary = json.loads((patch_night / cycle / "summary.json").read_text())
    counted = Counter(line["outcome"] for line in found.values())
    assert summary["patching"]["by_outcome"] == {outcome: counted[outcome] for outcome in OUTCOMES}


def test_patch_counts_follow_what_the_install_did(patch_night: Path) -> None:
    sunday = lines(patch_night / "03-sunday" / "patch-results.jsonl")
    assert (sunday["web-1"]["installed"], sunday["web-1"]["missing"], sunday["web-1"]["critical_missing"]) == (6, 0, 0)
    assert sunday["web-1"]["pending_reboot"] == 0  # RebootIfNeeded: the reboot happened
    assert (sunday["web-3"]["failed"], sunday["web-3"]["missing"]) == (4, 0)
    assert (sunday["batch-1"]["missing"], sunday["batch-1"]["critical_missing"], sunday["batch-1"]["installed"]) == (
        9,
        2,
        0,
    )
    assert sunday["web-1"]["operation"] == "Install" and sunday["batch-1"]["operation"] == "Scan"
    assert sunday["web-1"]["operation_end"].startswith("2026-11-29T02:")


def test_before_any_window_runs_everything_is_not_due_or_not_scheduled(patch_night: Path) -> None:
    for cycle in ("01-friday", "02-saturday-plan"):
        outcomes = Counter(line["outcome"] for line in lines(patch_night / cycle / "patch-results.jsonl").values())
        assert outcomes == {"not_due": 12, "not_scheduled": 1}


def test_the_plan_cycle_sends_no_alert_and_the_next_cycle_reads_from_the_last_apply(patch_night: Path) -> None:
    plan = json.loads((patch_night / "02-saturday-plan" / "summary.json").read_text())["patching"]
    sunday = json.loads((patch_night / "03-sunday" / "summary.json").read_text())["patching"]
    nxt = json.loads((patch_night / "04-next-sunday" / "summary.json").read_text())["patching"]
    assert plan["alerts_sent"] == 0
    assert sunday["since"] == "2026-11-27T12:00:00Z"  # the plan cycle did not move the watermark
    assert (sunday["until"], nxt["since"], nxt["until"]) == (
        "2026-11-29T12:00:00Z",
        "2026-11-29T12:00:00Z",
        "2026-12-06T12:00:00Z",
    )
    # Two web alerts (web-prod) and one for the database group, then two the week after.
    assert (sunday["alerts_sent"], nxt["alerts_sent"]) == (3, 2)


# --- alerts, watermark and the EventBridge rule in one simulated account ------------------------------


def owner_queue(account: SimulatedAccount, owner: str) -> Callable[[], list[dict[str, Any]]]:
    """An SQS queue subscribed to the notifications topic with a filter policy on `owner`.

    Pre-patch reminders (the messages with a `lead_hours` attribute) are filtered out: they are tested
    in test_reminders.py, and a team that wants only alerts subscribes this way.
    """
    filter_policy = {"owner": [owner], "lead_hours": [{"exists": False}]}
    return topic_queue(account, "NotificationsTopic", queue=f"owner-{owner}", filter_policy=filter_policy)


def alert_texts(drain: Callable[[], list[dict[str, Any]]]) -> list[str]:
    return [str(message["Message"]) for message in drain()]


def sunday_account(account: SimulatedAccount) -> dict[str, str]:
    """Two teams' windows on Sunday: team-test's at 02:00, whose one instance fails, and team-db's at 03:00,
    which succeeds. Returns name -> instance id."""
    account.set_clock(FRIDAY_NOON)
    database = instance("db", "cron(0 3 ? * SUN *)", name="db-ok")
    fleet = [instance("web", "sun-0200", name="web-bad"), replace(database, tags={**database.tags, "Owner": "team-db"})]
    ids = dict(zip(("web-bad", "db-ok"), account.seed(fleet), strict=True))
    account.set_patch_behaviour(ids["web-bad"], {"missing": 3, "result": "failed"})
    return ids


def test_owners_are_alerted_once_each_and_a_failed_window_run_reaches_the_alerts_topic() -> None:
    with SimulatedAccount(REPO / "template.yaml") as account:
        sunday_account(account)
        team_test, team_db, alerts = (
            owner_queue(account, "team-test"),
            owner_queue(account, "team-db"),
            topic_queue(account),
        )
        events.FAILED_DELIVERIES.clear()
        run_ok(account)
        # Sunday 02:00: the window runs, and fails when its one instance's Install ends five minutes in.
        runs = account.advance(timedelta(hours=38, minutes=10))
        assert [run.status for run in runs] == ["FAILED"]
        # The EventBridge rule delivered the failed window execution to the alerts topic, before any cycle.
        (delivered,) = alert_texts(alerts)
        assert runs[0].window_id in delivered and "FAILED" in delivered
        assert events.FAILED_DELIVERIES == []
        result = run_ok(account)
        assert result.output and result.output["monitoring"]["alerts_sent"] == 1
        (message,) = team_test()
        assert message["MessageAttributes"]["owner"]["Value"] == "team-test"
        assert message["MessageAttributes"]["patch_group"]["Value"] == "web"
        assert message["MessageAttributes"]["severity"]["Value"] == "error"
        assert "web-bad" in message["Message"] and "db-ok" not in message["Message"]
        assert team_db() == []  # its instance was patched: nothing to say
        # A rerun with nothing new to read reports nothing twice.
        again = run_ok(account)
        assert again.output and again.output["monitoring"]["window_runs"] == 0
        assert again.output["monitoring"]["alerts_sent"] == 0
        assert team_test() == []


def test_a_cycle_that_could_not_alert_moves_no_watermark_so_the_next_one_reports_the_runs() -> None:
    with SimulatedAccount(REPO / "template.yaml") as account:
        sunday_account(account)
        team_test = owner_queue(account, "team-test")
        run_ok(account)
        account.advance(timedelta(hours=40))
        account.fail_next("sns", "PublishBatch", "InternalError", times=30, status=500)
        failed = account.run_cycle()
        assert (failed.status, (failed.output or {}).get("failed_state")) == ("FAILED", "PatchMonitoring")
        account.clear_faults()
        assert team_test() == []
        result = run_ok(account)
        assert result.output and result.output["monitoring"]["window_runs"] == 2
        assert len(team_test()) == 1


def without_events_key_grant(document: dict[str, Any]) -> None:
    statements = document["Resources"]["AlertsKey"]["Properties"]["KeyPolicy"]["Statement"]
    statements[:] = [s for s in statements if s["Sid"] != "WindowRunRulePublishesToTopic"]


def test_without_the_key_policy_grant_eventbridge_cannot_deliver_to_the_encrypted_topic() -> None:
    with template_variant(without_events_key_grant) as path, SimulatedAccount(path) as account:
        sunday_account(account)
        alerts = topic_queue(account)
        events.FAILED_DELIVERIES.clear()
        run_ok(account)
        account.advance(timedelta(hours=38, minutes=10))  # past the 02:00 run's end
        (failure,) = events.FAILED_DELIVERIES
        assert "key policy" in failure.reason
        # The window-run alert is lost to the topic; the event went to the dead-letter queue, whose
        # alarm still reaches the operators (CloudWatch has its own statement in the key policy).
        assert [json.loads(message)["AlarmName"] for message in alert_texts(alerts)] == [
            account.physical_id("EventDeadLetterAlarm")
        ]


def without_rule_topic_grant(document: dict[str, Any]) -> None:
    statements = document["Resources"]["AlertsTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    statements[:] = [s for s in statements if s["Sid"] != "WindowRunFailedRulePublishes"]


def test_an_event_the_topic_refuses_goes_to_the_dead_letter_queue_whose_alarm_tells_the_operators() -> None:
    with template_variant(without_rule_topic_grant) as path, SimulatedAccount(path) as account:
        sunday_account(account)
        alerts = topic_queue(account)
        events.FAILED_DELIVERIES.clear()
        run_ok(account)
        account.advance(timedelta(hours=38, minutes=10))
        (failure,) = events.FAILED_DELIVERIES
        assert "topic policy" in failure.reason and "sent to the dead-letter queue" in failure.reason
        sqs = account.client("sqs")
        (dead,) = sqs.receive_message(
            QueueUrl=account.physical_id("EventDeadLetterQueue"), MessageAttributeNames=["All"], MaxNumberOfMessages=10
        )["Messages"]
        attributes = {name: value["StringValue"] for name, value in dead["MessageAttributes"].items()}
        assert attributes["ERROR_CODE"] == "NO_PERMISSIONS"
        rule = account.client("events").describe_rule(Name=account.physical_id("WindowRunFailedRule"))
        assert attributes["RULE_ARN"] == rule["Arn"]
        assert attributes["TARGET_ARN"] == account.physical_id("AlertsTopic")
        assert json.loads(dead["Body"])["detail"]["status"] == "FAILED"
        assert [json.loads(message)["AlarmName"] for message in alert_texts(alerts)] == [
            account.physical_id("EventDeadLetterAlarm")
        ]


def notifications_queue(account: SimulatedAccount) -> Callable[[], list[dict[str, Any]]]:
    """Every message on the notifications topic but pre-patch reminders (owner alerts, exception notices)."""
    drain = topic_queue(
        account, "NotificationsTopic", queue="every-owner", filter_policy={"lead_hours": [{"exists": False}]}
    )

    def messages() -> list[dict[str, Any]]:
        return [
            {
                "subject": body.get("Subject"),
                "message": body["Message"],
                "attributes": {name: value["Value"] for name, value in body.get("MessageAttributes", {}).items()},
            }
            for body in drain()
        ]

    return messages


def by_entry(position: dict[str, str], text: str) -> str:
    for instance_id, entry in position.items():
        text = text.replace(instance_id, entry)
    return text


def test_monitoring_in_bounded_invocations_reports_exactly_what_one_invocation_reports() -> None:
    """A share of 50 items per invocation: the workflow loops MonitoringReads from its cursor, each
    invocation reading whole pages and batches up to its share; PatchMonitoring then composes the same
    patch results, counts and owner alerts, byte for byte, as with one invocation, and reads nothing twice."""
    fleet = generate_fleet(
        GeneratorSpec(
            count=400,
            seed=11,
            patch_groups={"web": 2, "db": 1, "batch": 1},
            schedules={"sun-0200": 2, "cron(30 3 ? * TUE *)": 1, "cron(0 4 ? * THU *)": 1},
            os={"AMAZON_LINUX_2023": 3, "WINDOWS": 1},
            owners={"team-a": 1, "team-b": 1},
            bad_tag_share=0.05,
            stopped_share=0.05,
            unmanaged_share=0.05,
            connection_lost_share=0.05,
            patch=PatchDistribution(missing={0: 1.0, 4: 2.0}, result={"success": 6.0, "failed": 2.0, "timeout": 1.0}),
        )
    )
    reports = {}
    for share in ("50", "25000"):
        overrides = {"MonitoringItemsPerInvocation": share}
        # Both accounts draw the same ids: which instance SSM sends a command to first (and so which
        # are not sent once MaxErrors is passed) follows the ids.
        mock_random.seed(1)
        with SimulatedAccount(REPO / "template.yaml", parameter_overrides=overrides) as account:
            account.set_clock(FRIDAY_NOON)
            ids = account.seed(fleet)
            notifications = notifications_queue(account)
            run_ok(account)
            notifications()  # the first cycle's (nothing ran yet)
            runs = account.advance(timedelta(days=8))  # every window runs once
            assert len(runs) >= 3
            result = run_ok(account)
            assert result.output is not None
            # Each account draws its own instance ids: name each by its fleet entry.
            position = {instance_id: f"<entry {index}>" for index, instance_id in enumerate(ids)}
            results = [
                by_entry(position, json.dumps(line, sort_keys=True)) for line in patch_result_lines(account, result)
            ]
            alerts = sorted(by_entry(position, json.dumps(message, sort_keys=True)) for message in notifications())
            reports[share] = (result, sorted(results), alerts)
    (chunked, chunked_lines, chunked_alerts), (whole, whole_lines, whole_alerts) = reports["50"], reports["25000"]
    assert chunked_lines == whole_lines and len(whole_lines) == 400
    assert chunked_alerts == whole_alerts and whole_alerts  # some instances failed: their owners heard of it
    assert chunked.output is not None and whole.output is not None
    monitoring = {k: v for k, v in chunked.output["monitoring"].items() if k not in ("results_key",)}
    assert monitoring == {k: v for k, v in whole.output["monitoring"].items() if k not in ("results_key",)}
    assert monitoring["by_outcome"]["patched"] and monitoring["by_outcome"]["failed"]
    assert monitoring["alerts_sent"] == len(whole_alerts)
    # Many invocations against one, the same SSM reads (nothing read twice), and one composing invocation.
    reads = chunked.output["monitoring_reads"]
    assert reads["phase"] == "done" and whole.output["monitoring_reads"]["invocations"] == 1
    invocations = [run for run in chunked.function_runs if run.function == "PatchMonitoringFunction"]
    assert len(invocations) == reads["invocations"] + 1 > 3
    chunked_calls = chunked.calls_by_function["PatchMonitoringFunction"]
    whole_calls = whole.calls_by_function["PatchMonitoringFunction"]
    for operation in (
        "ssm:DescribeMaintenanceWindowExecutions",
        "ssm:ListCommandInvocations",
        "ssm:DescribeInstancePatchStates",
    ):
        assert chunked_calls[operation] == whole_calls[operation] > 0, operation
    assert reads["requests"] == whole.output["monitoring_reads"]["requests"]
    assert reads["instances"] == len(whole_lines)


def test_advancing_into_a_run_reports_it_as_ssm_shows_it_then() -> None:
    """The runner's summary of a run the clock stopped inside says IN_PROGRESS, not its future end state."""
    with SimulatedAccount(REPO / "template.yaml") as account:
        sunday_account(account)
        run_ok(account)
        (running,) = account.advance(timedelta(hours=38, minutes=1))  # Sunday 02:01
        assert running.status == "IN_PROGRESS"
        later = account.advance(timedelta(hours=2))  # team-db's 03:00 run, ended by 04:01
        assert [(run.window_name, run.status) for run in later] == [(later[0].window_name, "SUCCESS")]
