"""Every operator alarm in template.yaml reaches the alerts topic, as CloudWatch delivers it: through the
topic policy and the key policy of the encrypted topic, as `cloudwatch.amazonaws.com`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tagpatch_local.runner import ACCOUNT_ID, SimulatedAccount
from tagpatch_local.simulator import cloudwatch

from .support import instance, run_ok, run_with_rejected_windows, template_variant, topic_queue

REPO = Path(__file__).resolve().parents[2]


def alarm_ids(account: SimulatedAccount) -> list[str]:
    return [
        logical_id
        for logical_id in account.template.resources
        if account.template.resource_type(logical_id) == "AWS::CloudWatch::Alarm" and account.enabled(logical_id)
    ]


def set_alarm(account: SimulatedAccount, logical_id: str) -> None:
    account.client("cloudwatch").set_alarm_state(
        AlarmName=account.physical_id(logical_id), StateValue="ALARM", StateReason="test: threshold crossed"
    )


@contextmanager
def deployed(edit: Callable[[dict[str, Any]], None] | None = None) -> Iterator[SimulatedAccount]:
    if edit is None:
        with SimulatedAccount(REPO / "template.yaml") as account:
            yield account
        return
    with template_variant(edit) as path, SimulatedAccount(path) as account:
        yield account


def test_every_alarm_set_to_alarm_delivers_one_message_to_the_alerts_topic() -> None:
    # With the Config recorder the stack has every alarm, its Config rules' ones included.
    with SimulatedAccount(REPO / "template.yaml", config_recorder=True) as account:
        alerts = topic_queue(account, queue="operators")
        ids = alarm_ids(account)
        assert {"CycleFailedAlarm", "CycleTimedOutAlarm", "ChangesRejectedAlarm", "PlanShortfallsAlarm"} <= set(ids)
        assert "ReminderDeadLetterAlarm" in ids
        every = [r for r in account.template.resources if account.template.resource_type(r) == "AWS::CloudWatch::Alarm"]
        assert sorted(ids) == sorted(every)
        for logical_id in ids:
            set_alarm(account, logical_id)
            (delivered,) = alerts()
            body = json.loads(delivered["Message"])
            assert (body["AlarmName"], body["NewStateValue"], body["OldStateValue"]) == (
                account.physical_id(logical_id),
                "ALARM",
                "OK",
            )
            assert delivered["Subject"].startswith(f'ALARM: "{account.physical_id(logical_id)}"')
        assert cloudwatch.failed_actions(ACCOUNT_ID, account.region) == []
        # Setting ALARM again is no change of state: nothing more is sent.
        set_alarm(account, ids[0])
        assert alerts() == []


def without_sid(resource: str, sid: str, path: tuple[str, ...]) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        node: Any = document["Resources"][resource]["Properties"]
        for key in path:
            node = node[key]
        before = len(node)
        node[:] = [statement for statement in node if statement.get("Sid") != sid]
        assert len(node) == before - 1, f"{resource} has no statement {sid}"

    return edit


def assert_delivery_refused(account: SimulatedAccount) -> None:
    alerts = topic_queue(account, queue="operators")
    set_alarm(account, "CycleFailedAlarm")
    assert alerts() == []  # a lost alert
    history = account.client("cloudwatch").describe_alarm_history(
        AlarmName=account.physical_id("CycleFailedAlarm"), HistoryItemType="Action"
    )["AlarmHistoryItems"]
    (item,) = history
    topic = account.physical_id("AlertsTopic")
    assert item["HistorySummary"].startswith(f"Failed to execute action {topic}. Received error:")


def test_without_the_topic_policy_statement_for_alarms_the_alert_is_lost_and_the_history_says_so() -> None:
    edit = without_sid("AlertsTopicPolicy", "AlarmsPublish", ("PolicyDocument", "Statement"))
    with deployed(edit) as account:
        assert_delivery_refused(account)


def test_without_the_key_policy_statement_for_alarms_the_alert_is_lost_and_the_history_says_so() -> None:
    edit = without_sid("AlertsKey", "AlarmsPublishToTopic", ("KeyPolicy", "Statement"))
    with deployed(edit) as account:
        assert_delivery_refused(account)
        (failed,) = cloudwatch.failed_actions(ACCOUNT_ID, account.region)
        assert "key policy" in json.loads(failed.data)["simulatorReason"]


def alarm_names(messages: list[dict[str, Any]]) -> list[str]:
    return sorted(json.loads(m["Message"])["AlarmName"] for m in messages if m.get("Subject", "").startswith("ALARM"))


def test_a_cycle_whose_window_ssm_rejects_raises_its_alarms_from_the_metrics_it_emits() -> None:
    # No SetAlarmState: ReportFailure's ChangesRejected metric (an EMF log line) and Step Functions'
    # ExecutionsFailed reach the alarms, which notify the alerts topic through its policies.
    with deployed() as account:
        account.seed([instance("web", "sun-0200")])
        alerts = topic_queue(account, queue="operators")
        run_ok(account)
        assert alarm_names(alerts()) == []  # a good cycle: PlanShortfalls 0, nothing failed
        account.fail_next("ssm", "UpdateMaintenanceWindow", "ValidationException", times=1, status=400)
        account.client("ssm").update_maintenance_window(
            WindowId=account.client("ssm").describe_maintenance_windows()["WindowIdentities"][0]["WindowId"],
            Duration=5,
        )
        run_with_rejected_windows(account)
        assert alarm_names(alerts()) == sorted(
            account.physical_id(logical_id) for logical_id in ("ChangesRejectedAlarm", "CycleFailedAlarm")
        )
        assert cloudwatch.failed_actions(ACCOUNT_ID, account.region) == []
