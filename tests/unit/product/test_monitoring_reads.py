"""PatchMonitoring's reads from a cursor: validated at the edge, bounded by their share and by time,
never stuck, repeatable, and the same whatever the share."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tagpatch import aws
from tagpatch.config import MonitoringConfig
from tagpatch.cycle import Cycle
from tagpatch.errors import ConfigurationError, InvalidCycleInput, MonitoringStalled
from tagpatch.inventory import get_bytes, get_jsonl_gz, put_jsonl_gz
from tagpatch.monitoring_reads import (
    MonitoringCursor,
    _backup,
    begin,
    in_scope_ids,
    part_key,
    patch_states,
    read_some,
    window_runs,
)
from tagpatch_local import simulator
from tagpatch_local.simulator import executions

from ..simulator.test_simulator_executions import ACCOUNT, REGION, START, launch, profile, window_with_task

BUCKET = "artifacts"
CYCLE = Cycle(
    run_id="unit",
    execution_id="arn:aws:states:us-east-1:123456789012:execution:tagpatch:unit",
    now=START + timedelta(hours=4),
    mode="apply",
    patch_groups=None,
    artifact_prefix="runs/unit/",
)
INSTANCES_KEY = CYCLE.artifact_key("instances.jsonl.gz")
SINCE = START - timedelta(hours=1)


@pytest.fixture
def fleet() -> Iterator[tuple[dict[str, str], list[str]]]:
    """120 instances of one window that ran once (one command, 3 pages of invocations), 10 more out of scope."""
    simulator.install()
    with mock_aws():
        boto3.DEFAULT_SESSION = None
        aws.client.cache_clear()
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        ssm = boto3.client("ssm", region_name=REGION)
        ids = launch(120)
        for index, instance_id in enumerate(ids):
            profile(instance_id, missing=index % 4, result="failed" if index % 10 == 0 else "success")
        window_id, target_id = window_with_task(ssm, concurrency="100%", errors="100%")
        simulator.clock.set_now(ACCOUNT, REGION, START)
        executions.run_window(ACCOUNT, REGION, window_id, START, {target_id: ids})
        executions.advance_clock(ACCOUNT, REGION, CYCLE.now)  # the run has ended by the cycle
        lines = [{"instance_id": i, "in_scope": True} for i in ids]
        lines += [{"instance_id": f"i-out{n:013d}", "in_scope": False} for n in range(10)]
        put_jsonl_gz(BUCKET, INSTANCES_KEY, lines)
        try:
            yield {"night": window_id}, ids
        finally:
            aws.client.cache_clear()


def scope() -> list[str]:
    return in_scope_ids(get_jsonl_gz(BUCKET, INSTANCES_KEY))


def started(windows: dict[str, str]) -> MonitoringCursor:
    return begin(MonitoringCursor(), CYCLE, BUCKET, SINCE, CYCLE.now, windows, scope())


def read_all(cursor: MonitoringCursor, items: int) -> tuple[MonitoringCursor, int]:
    invocations = 0
    while cursor.phase != "done":
        cursor = read_some(cursor, CYCLE, BUCKET, items=items, seconds=60)
        invocations += 1
    return cursor, invocations


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "must be an object"),
        ({"phase": "reading"}, "phase must be one of"),
        ({"results_key": "x"}, "unknown fields"),
        ({"position": -1}, "position must be a non-negative integer"),
        ({"requests": True}, "requests must be a non-negative integer"),
        ({"invocations": "2"}, "invocations must be a non-negative integer"),
        ({"since": "2026-11-29T00:00:00Z"}, "set together"),
        ({"since": "", "until": "2026-11-29T00:00:00Z"}, "since must be a non-empty string"),
        ({"since": "yesterday", "until": "2026-11-29T00:00:00Z"}, "is not an ISO 8601 time"),
        ({"since": "2026-11-29T01:00:00Z", "until": "2026-11-29T00:00:00Z"}, "is after"),
        ({"phase": "commands"}, "has no read window"),
        ({"phase": "done"}, "has no read window"),
        (
            {"phase": "patch_states", "token": "t", "since": "2026-11-28T00:00:00Z", "until": "2026-11-29T00:00:00Z"},
            "token is only read in phase 'commands'",
        ),
    ],
)
def test_a_malformed_cursor_is_refused(payload: Any, message: str) -> None:
    with pytest.raises(InvalidCycleInput, match=message):
        MonitoringCursor.from_payload(payload)


def test_no_cursor_starts_with_the_windows_and_no_read_window() -> None:
    assert MonitoringCursor.from_payload(None) == MonitoringCursor(phase="windows")
    assert MonitoringCursor.from_payload({"phase": "windows"}).started is False
    with pytest.raises(InvalidCycleInput, match="no read window"):
        read_some(MonitoringCursor(), CYCLE, BUCKET, items=100, seconds=60)


def test_the_payload_round_trips(fleet: tuple[dict[str, str], list[str]]) -> None:
    cursor = read_some(started(fleet[0]), CYCLE, BUCKET, items=60, seconds=60)
    assert MonitoringCursor.from_payload(cursor.to_payload()) == cursor


def test_the_first_invocation_fixes_the_read_window_and_later_ones_keep_it(
    fleet: tuple[dict[str, str], list[str]],
) -> None:
    cursor = started(fleet[0])
    assert (cursor.since, cursor.until, cursor.windows) == ("2026-11-29T01:00:00Z", "2026-11-29T06:00:00Z", 1)
    # Begun again (a later invocation), nothing moves.
    assert begin(cursor, CYCLE, BUCKET, SINCE - timedelta(days=1), CYCLE.now, {}, []) == cursor


def test_a_small_share_reads_in_several_invocations_exactly_what_one_invocation_reads(
    fleet: tuple[dict[str, str], list[str]],
) -> None:
    windows, ids = fleet
    whole, one = read_all(started(windows), items=100_000)
    assert one == 1
    results = (window_runs(BUCKET, CYCLE, whole), patch_states(BUCKET, CYCLE, whole))
    chunked, several = read_all(started(windows), items=60)
    assert several == chunked.invocations > 1
    assert (window_runs(BUCKET, CYCLE, chunked), patch_states(BUCKET, CYCLE, chunked)) == results
    (run,) = results[0]
    assert sorted(run.instances) == sorted(ids)  # every command invocation, from 3 pages of 50
    assert sorted(results[1]) == sorted(ids)  # in scope only: the 10 out-of-scope lines are not asked for
    # Executions, tasks and invocations: a page each; command invocations: 3 pages; patch states: 3 batches.
    assert whole.requests == chunked.requests == 3 + 3 + 3
    assert (
        (whole.window_runs, whole.commands, whole.instances)
        == (chunked.window_runs, chunked.commands, 120)
        == (
            1,
            1,
            120,
        )
    )
    # Windows, 2 pages (103 items); the 3rd page and a batch (70); two batches (70).
    assert (chunked.run_parts, chunked.command_parts, chunked.state_parts, several) == (1, 2, 2, 3)


def test_a_retried_invocation_repeats_the_same_reads_into_the_same_part(
    fleet: tuple[dict[str, str], list[str]],
) -> None:
    first = read_some(started(fleet[0]), CYCLE, BUCKET, items=60, seconds=60)
    second = read_some(first, CYCLE, BUCKET, items=60, seconds=60)
    key = part_key(CYCLE, "commands", first.command_parts)
    written = get_bytes(BUCKET, key)
    assert read_some(first, CYCLE, BUCKET, items=60, seconds=60) == second
    assert get_bytes(BUCKET, key) == written


def test_time_ends_an_invocation_before_its_share_does(fleet: tuple[dict[str, str], list[str]]) -> None:
    ticks = iter(range(0, 1000, 10))  # every reading of the clock is 10 s later
    cursor = read_some(started(fleet[0]), CYCLE, BUCKET, items=100_000, seconds=15, clock=lambda: next(ticks))
    # Started at 0 with a deadline of 15: the window is read and then the clock says 10 (in time),
    # the first command page at 20 (too late).
    assert (cursor.phase, cursor.position, cursor.command_parts) == ("commands", 0, 1)
    assert cursor.token is not None and cursor.requests == 4


def test_every_invocation_makes_progress_however_small_its_share(fleet: tuple[dict[str, str], list[str]]) -> None:
    cursor, invocations = read_all(started(fleet[0]), items=1)
    # The window (its three listings go whole), then one command page or one batch of 50 an invocation.
    assert invocations == cursor.invocations == 1 + 3 + 3
    assert (cursor.run_parts, cursor.command_parts, cursor.state_parts) == (1, 3, 3)


def test_a_token_that_comes_back_unchanged_stops_the_cycle(fleet: tuple[dict[str, str], list[str]]) -> None:
    ticks = iter(range(0, 1000, 10))
    first = read_some(started(fleet[0]), CYCLE, BUCKET, items=100_000, seconds=15, clock=lambda: next(ticks))
    assert first.token is not None

    def same_token(parsed: dict[str, Any], **_: Any) -> None:
        parsed["NextToken"] = first.token  # a service answering with the token it was sent

    aws.client("ssm").meta.events.register("after-call.ssm.ListCommandInvocations", same_token)
    with pytest.raises(MonitoringStalled, match="returned the token it was given"):
        read_some(first, CYCLE, BUCKET, items=100_000, seconds=60)


def test_a_window_that_did_not_run_in_the_read_window_reads_nothing(fleet: tuple[dict[str, str], list[str]]) -> None:
    before = begin(MonitoringCursor(), CYCLE, BUCKET, SINCE - timedelta(days=2), SINCE, fleet[0], scope())
    cursor, _ = read_all(before, items=100_000)
    assert (cursor.window_runs, cursor.commands, cursor.command_parts) == (0, 0, 0)
    assert window_runs(BUCKET, CYCLE, cursor) == []
    assert (cursor.phase, cursor.instances, cursor.state_parts) == ("done", 120, 1)


@pytest.mark.parametrize("raw", ["", "0", "-5", "many"])
def test_the_share_must_be_a_positive_integer(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="MONITORING_ITEMS_PER_INVOCATION"):
        MonitoringConfig.from_env({"MONITORING_ITEMS_PER_INVOCATION": raw})
    assert MonitoringConfig.from_env({"MONITORING_ITEMS_PER_INVOCATION": "50"}).items_per_invocation == 50


def test_a_window_whose_run_was_still_going_is_read_again_from_before_that_run(
    fleet: tuple[dict[str, str], list[str]],
) -> None:
    windows, _ = fleet
    after_the_run = START + timedelta(hours=1)
    plain = begin(MonitoringCursor(), CYCLE, BUCKET, after_the_run, CYCLE.now, windows, scope())
    assert read_all(plain, items=100_000)[0].window_runs == 0  # the run started before the read window

    again = Cycle(**{**CYCLE.__dict__, "run_id": "again", "artifact_prefix": "runs/again/"})
    held = {"night": START - timedelta(seconds=1)}
    cursor = begin(MonitoringCursor(), again, BUCKET, after_the_run, CYCLE.now, windows, scope(), held)
    while cursor.phase != "done":
        cursor = read_some(cursor, again, BUCKET, items=100_000, seconds=60)
    (run,) = window_runs(BUCKET, again, cursor)
    assert (run.window_name, run.started, run.status) == ("night", START, "FAILED")


def _execution(status: str, image_step: str | None, outputs: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """A GetAutomationExecution answer for the backup runbook (the SSM API Reference's shape)."""
    steps = [{"StepName": "createImage", "Action": "aws:createImage", "StepStatus": image_step}] if image_step else []
    return {"AutomationExecutionStatus": status, "StepExecutions": steps, "Outputs": outputs or {}}


@pytest.mark.parametrize(
    ("execution", "expected"),
    [
        (
            _execution("Success", "Success", {"createImage.ImageId": ["ami-0abc"]}),
            ("i-1", "succeeded", "ami-0abc"),
        ),
        # An image that ended failed is no backup, even where the runbook outputs its id.
        (_execution("Failed", "Failed", {"createImage.ImageId": ["ami-0bad"]}), ("i-1", "failed", None)),
        (_execution("TimedOut", None), ("i-1", "failed", None)),
        (_execution("InProgress", "InProgress"), ("i-1", "in_progress", None)),
        (_execution("InProgress", None), ("i-1", "in_progress", None)),
    ],
)
def test_a_backup_tasks_image_is_reported_only_when_its_step_succeeded(
    execution: dict[str, Any], expected: tuple[str, str, str | None]
) -> None:
    assert _backup(execution, "i-1") == expected


def test_a_snapshot_backup_reports_every_snapshot_of_the_instance_when_its_step_succeeded() -> None:
    """The snapshot runbook's backup step is an aws:executeAwsApi CreateSnapshots; its output lists one
    snapshot per volume, reported together as the backup id."""
    step = {"StepName": "createSnapshots", "Action": "aws:executeAwsApi", "StepStatus": "Success"}
    made = {"createSnapshots.SnapshotIds": ["snap-0a", "snap-0b"]}
    execution = {"AutomationExecutionStatus": "Success", "StepExecutions": [step], "Outputs": made}
    assert _backup(execution, "i-1") == ("i-1", "succeeded", "snap-0a,snap-0b")
    failed = {**execution, "AutomationExecutionStatus": "Failed", "StepExecutions": [{**step, "StepStatus": "Failed"}]}
    assert _backup(failed, "i-1") == ("i-1", "failed", None)
