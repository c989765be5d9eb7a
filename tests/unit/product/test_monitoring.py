"""PatchMonitoring's outcome rules: one outcome per instance, with the reason a person needs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tagpatch.monitoring import (
    BATCH_BYTES,
    InstanceRun,
    PatchState,
    WindowRun,
    alert_entry,
    alerts_for,
    batches,
    compliance_of,
    instance_results,
    next_watermark,
    outcome_of,
)

SUNDAY = datetime(2026, 11, 29, 2, tzinfo=UTC)


def run(status: str = "SUCCESS", operation: str = "Install", **instances: tuple[str, str]) -> WindowRun:
    return WindowRun(
        window_name="tagpatch-sun-0200",
        window_execution_id="e" * 36,
        status=status,
        status_details="" if status == "SUCCESS" else "One or more tasks in the orchestration failed.",
        started=SUNDAY,
        operations=frozenset({operation}),
        instances={i: (operation, InstanceRun(i, s, d)) for i, (s, d) in instances.items()},
    )


@pytest.mark.parametrize(
    ("result", "operation", "expected", "words"),
    [
        (("Success", "Success"), "Install", "patched", "Install succeeded"),
        (("Success", "Success"), "Scan", "scanned", "nothing installed"),
        (("Failed", "Failed"), "Install", "failed", "Install ended Failed/Failed"),
        (("TimedOut", "Execution Timed Out"), "Install", "failed", "Execution Timed Out"),
        (("TimedOut", "Delivery Timed Out"), "Install", "missed", "not reachable"),
        (("Failed", "Undeliverable"), "Install", "missed", "could not deliver"),
        (("Cancelled", "Terminated"), "Install", "missed", "MaxErrors"),
        (("Cancelled", "Cancelled"), "Install", "missed", "cutoff"),
    ],
)
def test_the_command_status_decides_the_outcome(
    result: tuple[str, str], operation: str, expected: str, words: str
) -> None:
    found = outcome_of("tagpatch-sun-0200", [run(operation=operation, i1=result)], "i1")
    assert found.outcome == expected
    assert words in found.reason and "tagpatch-sun-0200" in found.reason and "2026-11-29 02:00 UTC" in found.reason


def test_a_window_that_ran_without_selecting_the_instance_is_a_targeting_miss() -> None:
    found = outcome_of("tagpatch-sun-0200", [run(i2=("Success", "Success"))], "i1")
    assert (found.outcome, found.command_status) == ("missed", None)
    assert "targets did not select this instance" in found.reason


def test_no_window_and_no_run() -> None:
    assert outcome_of(None, [], "i1").outcome == "not_scheduled"
    assert outcome_of("tagpatch-sun-0200", [], "i1").outcome == "not_due"


def test_the_latest_run_counts() -> None:
    earlier = run(i1=("Failed", "Failed"))
    later = WindowRun(
        **{**earlier.__dict__, "started": SUNDAY.replace(day=30), "instances": run(i1=("Success", "Success")).instances}
    )
    assert outcome_of("tagpatch-sun-0200", [earlier, later], "i1").outcome == "patched"


def test_a_skipped_run_changes_nothing_but_is_the_reason_when_it_is_the_only_one() -> None:
    patched = run(i1=("Success", "Success"))
    skipped = WindowRun(
        **{
            **patched.__dict__,
            "status": "SKIPPED_OVERLAPPING",
            "status_details": "The previous execution of this maintenance window runs until 2026-11-30T04:00Z.",
            "started": SUNDAY.replace(day=30),
            "instances": {},
        }
    )
    assert outcome_of("tagpatch-sun-0200", [patched, skipped], "i1").outcome == "patched"
    alone = outcome_of("tagpatch-sun-0200", [skipped], "i1")
    assert alone.outcome == "missed"
    assert "SKIPPED_OVERLAPPING" in alone.reason and "2026-11-30 02:00 UTC" in alone.reason


def test_compliance_follows_the_patch_state() -> None:
    clean = PatchState(0, 0, 5, 0, 0, "Install", SUNDAY)
    assert compliance_of(None) == "UNKNOWN"
    assert compliance_of(clean) == "COMPLIANT"
    assert compliance_of(PatchState(3, 1, 5, 0, 0, "Scan", SUNDAY)) == "NON_COMPLIANT"


def test_results_join_tags_runs_and_states_and_alerts_group_by_owner_and_group() -> None:
    web = {"class": "ready", "patch_group": "web", "patch_group_key": "Patch Group", "in_scope": True}
    web |= {"maintenance_window": "sun-0200", "window_key": "Maintenance Window"}
    lines: list[dict[str, Any]] = [
        {**web, "instance_id": "i1", "name": "a", "owner": "web-team"},
        {**web, "instance_id": "i2", "name": "b", "owner": None},
        {"instance_id": "i3", "name": "c", "owner": "db-team", "class": "missing_tags", "in_scope": True},
        {"instance_id": "i4", "name": "d", "owner": "x", "class": "ready", "patch_group": "other", "in_scope": False},
    ]
    expected = {("Patch Group", "web", "Maintenance Window", "sun-0200"): "tagpatch-sun-0200"}
    states = {"i1": PatchState(0, 0, 7, 0, 0, "Install", SUNDAY)}
    results = list(
        instance_results(lines, expected, [run(i1=("Success", "Success"), i2=("Failed", "Failed"))], states, now=SUNDAY)
    )
    assert [(r["instance_id"], r["outcome"], r["compliance"]) for r in results] == [
        ("i1", "patched", "COMPLIANT"),
        ("i2", "failed", "UNKNOWN"),
        ("i3", "not_scheduled", "UNKNOWN"),
    ]
    (alert,) = alerts_for(results, default_owner="platform")
    assert (alert.owner, alert.patch_group, alert.severity) == ("platform", "web", "error")
    assert "i2" in alert.body() and "1 failed" in alert.subject()


def test_an_unfinished_run_is_read_again_next_cycle() -> None:
    from tagpatch.monitoring import Watermark

    before = SUNDAY.replace(hour=6)
    assert next_watermark([run()], before) == Watermark(before, {})
    unfinished = next_watermark([run(status="IN_PROGRESS")], before)
    assert unfinished.read_again == {"tagpatch-sun-0200": SUNDAY - timedelta(seconds=1)}


def test_only_the_window_with_an_unfinished_run_is_read_again() -> None:
    """Another window's ended run is not read (nor alerted) a second time next cycle."""
    from tagpatch.monitoring import Watermark

    before = SUNDAY.replace(hour=6)
    running = run(status="IN_PROGRESS", i1=("InProgress", "InProgress"))
    ended = WindowRun(**{**run(i2=("Failed", "Failed")).__dict__, "window_name": "tagpatch-sun-0300"})
    found = next_watermark([running, ended], before)
    assert found.read_until == before
    assert found.read_again == {"tagpatch-sun-0200": SUNDAY - timedelta(seconds=1)}
    assert found.since("tagpatch-sun-0300") == before and found.since("tagpatch-sun-0200") < SUNDAY
    # It survives the trip through the watermark object.
    assert Watermark.from_json(found.to_json(), "state/monitoring-watermark.json") == found
    # A watermark written before read_again existed still reads: every window from read_until.
    assert Watermark.from_json({"read_until": "2026-11-29T06:00:00Z"}, "w") == Watermark(before, {})


@pytest.mark.parametrize("status", ["Pending", "InProgress", "Delayed", "Failed", "Success"])
def test_an_instance_in_a_window_run_still_going_is_in_progress_and_not_alerted(status: str) -> None:
    """Its final outcome comes when the run has ended: a Failed invocation in a run still going is not final."""
    found = outcome_of("tagpatch-sun-0200", [run(status="IN_PROGRESS", i1=(status, status))], "i1")
    assert found.outcome == "in_progress"
    assert "tagpatch-sun-0200" in found.reason and "since 2026-11-29 02:00 UTC" in found.reason
    assert f"{status}/{status}" in found.reason
    assert alerts_for([{"outcome": found.outcome, "owner": "web-team", "patch_group": "web"}], "platform") == []


def test_an_instance_a_running_window_has_not_reached_yet_is_in_progress_not_missed() -> None:
    found = outcome_of("tagpatch-sun-0200", [run(status="IN_PROGRESS", i2=("InProgress", "InProgress"))], "i1")
    assert (found.outcome, found.command_status) == ("in_progress", None)
    assert "not reached it yet" in found.reason


def test_every_outcome_has_a_row_in_report_html() -> None:
    from tagpatch.outcomes import OUTCOMES
    from tagpatch.report_html import OUTCOME_ORDER

    assert set(OUTCOME_ORDER) == set(OUTCOMES) - {"excepted"}  # excepted instances are counted apart


def _alert(owner: str, group: str, lines: int = 1) -> Any:
    from tagpatch.monitoring import Alert

    instances = tuple(
        {
            "instance_id": f"i-{n:017x}",
            "name": "x" * (200 if lines == 1 else 1000),
            "outcome": "failed",
            "reason": "r" * 200,
        }
        for n in range(lines)
    )
    return Alert(owner, group, "error", instances)


def test_batches_hold_at_most_ten_entries_and_256_kib_in_order() -> None:
    from tagpatch.monitoring import BATCH_BYTES, alert_entry, batches, entry_bytes

    small = [alert_entry(_alert("team-a", f"g{n}"), str(n)) for n in range(23)]
    assert [len(b) for b in batches(small)] == [10, 10, 3]
    assert [e["Id"] for b in batches(small) for e in b] == [str(n) for n in range(23)]
    large = [alert_entry(_alert("team-a", f"g{n}", lines=50), str(n)) for n in range(12)]
    sizes = [sum(entry_bytes(e) for e in b) for b in batches(large)]
    assert all(size <= BATCH_BYTES for size in sizes) and sum(len(b) for b in batches(large)) == 12
    assert len(sizes) == 3  # 50 long lines are about 60 KiB an alert: four fit in a batch


@pytest.fixture
def alerts_topic(monkeypatch: pytest.MonkeyPatch) -> Any:
    import boto3
    from moto import mock_aws

    from tagpatch_local import simulator

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        simulator.install()
        yield boto3.client("sns", "us-east-1").create_topic(Name="alerts")["TopicArn"]


def test_every_alert_is_published_ten_to_a_call(alerts_topic: str) -> None:
    import boto3

    from tagpatch.monitoring import publish_alerts

    sqs, sns = boto3.client("sqs", "us-east-1"), boto3.client("sns", "us-east-1")
    url = sqs.create_queue(QueueName="everything")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=alerts_topic, Protocol="sqs", Endpoint=queue_arn)
    alerts = [_alert(f"team-{n % 3}", f"app-{n:03d}") for n in range(25)]

    assert publish_alerts(alerts_topic, alerts) == 25

    bodies = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert len(bodies) == 25
    assert all(any(f"app-{n:03d}" in body for body in bodies) for n in range(25))


@pytest.mark.parametrize(
    ("refusal", "raised"),
    [("InternalError", "TransientAwsError"), ("InvalidParameterValue", "NotificationRejected")],
)
def test_an_alert_sns_refuses_is_never_counted_as_sent(
    alerts_topic: str, monkeypatch: pytest.MonkeyPatch, refusal: str, raised: str
) -> None:
    from moto.sns import exceptions
    from moto.sns.models import SNSBackend

    from tagpatch import errors
    from tagpatch.monitoring import publish_alerts

    corrected = SNSBackend.publish

    def refuse_one_group(self: SNSBackend, message: str, *args: Any, **kwargs: Any) -> str:
        if "app-007" in message:
            raise getattr(exceptions, refusal)("refused")
        return corrected(self, message, *args, **kwargs)

    monkeypatch.setattr(SNSBackend, "publish", refuse_one_group)
    with pytest.raises(getattr(errors, raised), match=r"1 of 10 alerts: team-1/app-007"):
        publish_alerts(alerts_topic, [_alert(f"team-{n % 3}", f"app-{n:03d}") for n in range(25)])


def test_the_largest_owner_alert_fits_one_sns_message_and_a_batch() -> None:
    # One owner and patch group with 100,000 failed instances, every tag value at its 256-character
    # longest: the alert lists 50 and counts the rest, so its entry fits SNS's 256 KiB on its own.
    owner, group, name = "o" * 256, "g" * 256, "ü" * 256
    results = [
        {
            "instance_id": f"i-{i:017x}",
            "name": name,
            "owner": owner,
            "patch_group": group,
            "outcome": "failed",
            "reason": f"failed in {'w' * 128}: the Install task ended Failed",
        }
        for i in range(100_000)
    ]
    (alert,) = alerts_for(results, "unowned")
    entry = alert_entry(alert, "0")
    assert len(entry["MessageAttributes"]) <= 10
    size = len(entry["Message"].encode()) + sum(
        len(k.encode()) + len(a["DataType"].encode()) + len(a["StringValue"].encode())
        for k, a in entry["MessageAttributes"].items()
    )
    assert size <= BATCH_BYTES
    assert "and 99950 more" in entry["Message"]
    # Several such alerts go out in batches that each stay within 10 entries and 256 KiB.
    grouped = list(batches([alert_entry(alert, str(i)) for i in range(25)]))
    assert sum(len(batch) for batch in grouped) == 25
    assert all(len(batch) <= 10 and len(batch) * size <= BATCH_BYTES for batch in grouped)
