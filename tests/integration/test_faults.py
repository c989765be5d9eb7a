"""Faults end to end, through the deployed ASL: each ends in the state a clean run leaves.

Every scenario compares the whole of SSM (windows, targets, tasks, registrations) and the
registration ledger with a clean run of the same fleet in a fresh simulated account.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import botocore.endpoint
import pytest
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

from tagpatch_local.fleet import FleetInstance
from tagpatch_local.report import change_counts, change_lines
from tagpatch_local.runner import READ_TIMEOUT, SimulatedAccount
from tests.conftest import TEMPLATE

from .support import instance, run_ok, run_with_rejected_windows, topic_queue


@pytest.fixture(autouse=True)
def no_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's backoff and the state machine's Retry waits, without the sleeping."""
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=lambda _: None))
    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=lambda _: None))


def fleet() -> list[FleetInstance]:
    """Two windows with two targets each, three patch groups over three operating systems."""
    return [
        instance("web", "sun-0200", name="web-1"),
        instance("web", "sun-0200", name="web-2", key="PatchGroup"),
        instance("db", "sun-0200", os="UBUNTU", name="db-1"),
        instance("db", "cron(0 6 ? * * *)", os="UBUNTU", name="db-2"),
        instance("win", "cron(0 6 ? * * *)", os="WINDOWS", name="win-1"),
    ]


def ssm_state(account: SimulatedAccount) -> dict[str, Any]:
    """Everything tagpatch manages, ids replaced by names so two accounts compare equal."""
    ssm = account.client("ssm")
    windows: dict[str, Any] = {}
    for identity in ssm.describe_maintenance_windows(MaxResults=100)["WindowIdentities"]:
        window_id = identity["WindowId"]
        assert identity["Name"] not in windows, f"duplicate window {identity['Name']}"
        targets = ssm.describe_maintenance_window_targets(WindowId=window_id, MaxResults=100)["Targets"]
        names = {t["WindowTargetId"]: t["Name"] for t in targets}
        tasks = ssm.describe_maintenance_window_tasks(WindowId=window_id, MaxResults=100)["Tasks"]
        task_state = {}
        for summary in tasks:
            task = ssm.get_maintenance_window_task(WindowId=window_id, WindowTaskId=summary["WindowTaskId"])
            assert task["Name"] not in task_state, f"duplicate task {task['Name']}"
            task_state[task["Name"]] = {
                "targets": sorted(names[v] for t in task["Targets"] for v in t["Values"]),
                "role": task.get("ServiceRoleArn"),
                "parameters": task["TaskInvocationParameters"],
                "settings": [task.get(k) for k in ("Priority", "MaxConcurrency", "MaxErrors", "Description")],
            }
        assert len(names) == len(set(names.values())), f"duplicate target in {identity['Name']}"
        windows[identity["Name"]] = {
            "window": {k: v for k, v in identity.items() if k != "WindowId"},
            "tags": ssm.list_tags_for_resource(ResourceType="MaintenanceWindow", ResourceId=window_id)["TagList"],
            "targets": {t["Name"]: [t["Targets"], t.get("OwnerInformation"), t.get("Description")] for t in targets},
            "tasks": task_state,
        }
    mappings = ssm.describe_patch_groups(MaxResults=100)["Mappings"]
    registrations = sorted(
        (
            m["PatchGroup"],
            m["BaselineIdentity"]["OperatingSystem"],
            baseline_name(account, m["BaselineIdentity"]["BaselineId"]),
        )
        for m in mappings
    )
    return {"windows": windows, "registrations": registrations, "ledger": ledger(account)}


def baseline_name(account: SimulatedAccount, baseline_id: str) -> str:
    """The stack's own baselines get a new id in each account; their names are the same."""
    return str(account.client("ssm").get_patch_baseline(BaselineId=baseline_id)["Name"])


def ledger(account: SimulatedAccount) -> list[tuple[str, str, str]]:
    """The ledger's entries (a pending mark aside: SSM's state settles it)."""
    s3 = account.client("s3")
    try:
        body = s3.get_object(Bucket=account.artifact_bucket, Key="state/baseline-registrations.json")["Body"].read()
    except s3.exceptions.NoSuchKey:
        return []
    return sorted(
        (e["patch_group"], e["operating_system"], baseline_name(account, e["baseline_id"])) for e in json.loads(body)
    )


@pytest.fixture(scope="module")
def clean_state() -> dict[str, Any]:
    """What one clean cycle of the fleet leaves."""
    with SimulatedAccount(TEMPLATE) as account:
        account.seed(fleet())
        run_ok(account)
        return ssm_state(account)


@pytest.fixture
def faulty() -> Iterator[SimulatedAccount]:
    with SimulatedAccount(TEMPLATE) as account:
        account.seed(fleet())
        yield account


def rerun_matches(account: SimulatedAccount, clean: dict[str, Any]) -> None:
    account.clear_faults()
    run_ok(account)
    assert ssm_state(account) == clean
    again = run_ok(account)  # and the state is settled: nothing left to write
    assert again.resource_write_calls == {}


def window_writes(clean: dict[str, Any], name: str) -> int:
    window = clean["windows"][name]
    return 1 + len(window["targets"]) + len(window["tasks"])


# --- fault injection itself ----------------------------------------------------------------------------


def windows_named(account: SimulatedAccount) -> list[str]:
    return sorted(w["Name"] for w in account.client("ssm").describe_maintenance_windows()["WindowIdentities"])


def test_a_request_failed_before_sending_never_reaches_the_service(faulty: SimulatedAccount) -> None:
    faulty.fail_next("ssm", "CreateMaintenanceWindow", "ValidationException", times=2, status=400)
    result = run_with_rejected_windows(faulty)
    failed = [item for item in result.output["window_results"] if "error" in item]  # type: ignore[index]
    assert len(failed) == 2
    assert windows_named(faulty) == []
    assert faulty.faults.injected == {"ssm:CreateMaintenanceWindow not_sent": 2}


def test_a_lost_response_leaves_the_write_done_and_a_retry_repeats_nothing(
    faulty: SimulatedAccount, clean_state: dict[str, Any]
) -> None:
    # Every one of botocore's five attempts reaches SSM and loses its answer; the workflow retries.
    faulty.fail_next("ssm", "CreateMaintenanceWindow", READ_TIMEOUT, times=5, mode="response_lost")
    faulty.fail_next("ssm", "RegisterTargetWithMaintenanceWindow", "InternalServerError", times=1, mode="response_lost")
    result = run_ok(faulty)
    assert all("error" not in item for item in result.output["window_results"])  # type: ignore[index]
    assert ssm_state(faulty) == clean_state
    window_outcomes = {
        line["name"]: line["outcome"] for line in change_lines(faulty, result) if line["kind"] == "window"
    }
    assert sorted(window_outcomes.values()) == ["already_done", "applied"]  # the retry found the first one made
    assert change_counts(faulty, result)["window"]["created"] == 2


def test_a_registration_whose_answer_was_lost_is_not_a_conflict(
    faulty: SimulatedAccount, clean_state: dict[str, Any]
) -> None:
    # botocore's retry meets AlreadyExistsException for the registration the first attempt made.
    faulty.fail_next("ssm", "RegisterPatchBaselineForPatchGroup", "InternalServerError", times=1, mode="response_lost")
    result = run_ok(faulty)
    assert ssm_state(faulty) == clean_state
    outcomes = sorted(line["outcome"] for line in change_lines(faulty, result) if line["kind"] == "registration")
    assert outcomes == ["already_done", "applied", "applied"]


def test_a_registration_held_by_another_baseline_is_still_refused(faulty: SimulatedAccount) -> None:
    ssm = faulty.client("ssm")
    other = ssm.create_patch_baseline(Name="someone-elses", OperatingSystem="UBUNTU")["BaselineId"]
    # Registered between the plan and the write (the plan saw no registration for db/UBUNTU).
    faulty.fail_next("ssm", "RegisterPatchBaselineForPatchGroup", "InternalServerError", times=1)
    original = faulty.faults.handle

    def register_first(stubber: Any, send: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        if event_name.endswith("RegisterPatchBaselineForPatchGroup") and b'"db"' in request.body:
            faulty.faults.handle = original  # type: ignore[method-assign]
            ssm.register_patch_baseline_for_patch_group(BaselineId=other, PatchGroup="db")
        return original(stubber, send, event_name, request, **kwargs)

    faulty.faults.handle = register_first  # type: ignore[method-assign,assignment]
    result = faulty.run_cycle()
    assert result.status == "FAILED"
    assert "RegistrationRejected" in (result.error or "")
    assert "AlreadyExistsException" in (result.cause or "") and "db/UBUNTU" in (result.cause or "")
    assert ("db", "UBUNTU", "someone-elses") not in ledger(faulty)


# --- throttling, crashes, and the rerun --------------------------------------------------------------


def test_throttling_most_ssm_calls_then_a_rerun_ends_as_a_clean_run(
    faulty: SimulatedAccount, clean_state: dict[str, Any]
) -> None:
    faulty.throttle("ssm", 0.6, seed=7)
    faulty.run_cycle()  # it may or may not get through
    assert faulty.faults.injected  # the throttle fired
    # Whatever got through holds no duplicate (ssm_state checks) and every registration is in the ledger.
    state = ssm_state(faulty)
    assert set(state["registrations"]) <= set(state["ledger"])
    rerun_matches(faulty, clean_state)


def test_a_crash_after_half_a_windows_writes_then_a_rerun_ends_as_a_clean_run(
    faulty: SimulatedAccount, clean_state: dict[str, Any]
) -> None:
    first_window = sorted(clean_state["windows"])[0]
    half = window_writes(clean_state, first_window) // 2
    faulty.crash_after_writes("ApplyWindowChangesFunction", half)
    crashed = run_with_rejected_windows(faulty)  # the Map records the window that died; the others go ahead
    (failure,) = [item for item in crashed.output["window_results"] if "error" in item]  # type: ignore[index]
    assert failure["error"] == "SimulatedCrash"
    outcomes = {line["outcome"] for line in change_lines(faulty, crashed) if line.get("window") == failure["window"]}
    # It died before it could say what it did: what SSM shows done is confirmed there, the rest unknown.
    assert "unknown" in outcomes and outcomes <= {"confirmed_in_ssm", "unknown"}
    rerun_matches(faulty, clean_state)


def test_a_lambda_retry_of_a_half_applied_window_repeats_nothing(
    faulty: SimulatedAccount, clean_state: dict[str, Any]
) -> None:
    # Throttling that outlives botocore halfway through a window: the workflow re-runs the same plan.
    faulty.fail_next("ssm", "RegisterTaskWithMaintenanceWindow", "ThrottlingException", times=5, status=400)
    result = run_ok(faulty)
    assert all("error" not in item for item in result.output["window_results"])  # type: ignore[index]
    assert ssm_state(faulty) == clean_state
    outcomes = [line["outcome"] for line in change_lines(faulty, result)]
    # The retried window found its window and targets made by the first attempt.
    assert outcomes.count("already_done") >= 2 and set(outcomes) == {"applied", "already_done"}


def test_a_crash_halfway_through_registrations_keeps_the_ledger_and_a_rerun_ends_as_a_clean_run(
    faulty: SimulatedAccount, clean_state: dict[str, Any]
) -> None:
    faulty.crash_after_writes("BaselineAssociationFunction", len(clean_state["registrations"]) // 2 + 1)
    crashed = faulty.run_cycle()
    assert crashed.status == "FAILED" and crashed.error == "SimulatedCrash"
    made = ssm_state(faulty)["registrations"]
    assert 0 < len(made) < len(clean_state["registrations"])
    assert set(made) <= set(ledger(faulty))  # every registration SSM made is in the ledger
    rerun_matches(faulty, clean_state)


def test_a_window_ssm_rejects_halfway_reports_what_was_written_and_what_was_not(faulty: SimulatedAccount) -> None:
    faulty.fail_next("ssm", "RegisterTaskWithMaintenanceWindow", "ValidationException", times=1, status=400)
    result = run_with_rejected_windows(faulty)
    (failure,) = [item for item in result.output["window_results"] if "error" in item]  # type: ignore[index]
    assert failure["error"] == "WindowChangeRejected"
    message = json.loads(failure["cause"])["errorMessage"]
    assert "create of task" in message and "ValidationException" in message
    lines = [line for line in change_lines(faulty, result) if line.get("window") == failure["window"]]
    by_outcome: dict[str, list[str]] = {}
    for line in lines:
        by_outcome.setdefault(line["outcome"], []).append(line["kind"])
    assert set(by_outcome["applied"]) == {"window", "target"}
    assert by_outcome["failed"] == ["task"]
    counts = change_counts(faulty, result)
    assert counts["task"]["not_applied"] >= 1
    written = ssm_state(faulty)["windows"]
    assert counts["window"]["created"] == len(written)
    assert counts["task"]["created"] == sum(len(w["tasks"]) for w in written.values())


def test_registrations_an_attempt_made_before_its_retries_ran_out_are_counted_after_the_state_is_retried(
    faulty: SimulatedAccount, clean_state: dict[str, Any]
) -> None:
    # The first registration is made but every answer is lost: botocore gives up, the ASL retries the
    # state, and the retry plans it as unchanged. It was once left out of the counts ("0 created").
    faulty.fail_next("ssm", "RegisterPatchBaselineForPatchGroup", "InternalServerError", times=5, mode="response_lost")
    result = run_ok(faulty)
    retried = [
        event
        for event in result.events
        if event["type"] == "TaskFailed" and "TransientAwsError" in json.dumps(event.get("taskFailedEventDetails"))
    ]
    assert retried, "the fault should outlive botocore's retries"
    made = len(ssm_state(faulty)["registrations"])
    assert made == len(clean_state["registrations"])
    assert result.output is not None and result.output["baselines"]["counts"]["created"] == made
    assert change_counts(faulty, result)["registration"]["created"] == made
    outcomes = [line["outcome"] for line in change_lines(faulty, result) if line["kind"] == "registration"]
    assert len(outcomes) == made and set(outcomes) <= {"applied", "already_done"}


def test_a_crashed_windows_writes_that_landed_are_counted_from_what_ssm_holds(
    faulty: SimulatedAccount, clean_state: dict[str, Any]
) -> None:
    # They were all counted not_applied, although some of them were in SSM. The crash comes at the
    # very last write, so whichever window's iteration makes it (the Map runs them concurrently) has
    # already made its window and target.
    total = sum(window_writes(clean_state, name) for name in clean_state["windows"])
    faulty.crash_after_writes("ApplyWindowChangesFunction", total - 1)
    crashed = run_with_rejected_windows(faulty)
    (failure,) = [item for item in crashed.output["window_results"] if "error" in item]  # type: ignore[index]
    lines = [line for line in change_lines(faulty, crashed) if line.get("window") == failure["window"]]
    written = ssm_state(faulty)["windows"]
    held = written.get(failure["window"], {"targets": {}, "tasks": {}})
    in_ssm = {("window", failure["window"])} if failure["window"] in written else set()
    in_ssm |= {("target", name) for name in held["targets"]} | {("task", name) for name in held["tasks"]}
    assert len(in_ssm) >= 2
    assert {(line["kind"], line["name"]) for line in lines if line["outcome"] == "confirmed_in_ssm"} == in_ssm
    assert {line["outcome"] for line in lines if (line["kind"], line["name"]) not in in_ssm} == {"unknown"}
    counts = change_counts(faulty, crashed)
    assert counts["window"]["created"] == len(written)
    assert counts["target"]["created"] == sum(len(w["targets"]) for w in written.values())
    assert counts["task"]["created"] == sum(len(w["tasks"]) for w in written.values())


def raw_ledger(account: SimulatedAccount) -> list[dict[str, Any]]:
    body = account.client("s3").get_object(Bucket=account.artifact_bucket, Key="state/baseline-registrations.json")
    return list(json.loads(body["Body"].read()))


def test_a_pending_mark_ssm_has_settled_is_cleared_once_and_then_nothing_is_written(faulty: SimulatedAccount) -> None:
    # A ledger whose last save was lost (throttled S3 after the registrations were made and confirmed)
    # keeps the pending marks an earlier save wrote. Clean reruns never cleared them (2 of 48 runs).
    run_ok(faulty)
    marked = [{**entry, "pending": True} for entry in raw_ledger(faulty)]
    faulty.client("s3").put_object(
        Bucket=faulty.artifact_bucket, Key="state/baseline-registrations.json", Body=json.dumps(marked).encode()
    )
    settling = run_ok(faulty)
    assert [entry for entry in raw_ledger(faulty) if entry.get("pending")] == []
    settled = run_ok(faulty)

    def puts(result: Any) -> int:
        return int(result.calls_by_function["BaselineAssociationFunction"]["s3:PutObject"])

    assert puts(settling) == puts(settled) + 1  # the ledger once, then only the run's own artifacts


def test_a_deregistration_an_attempt_made_before_its_retries_ran_out_is_counted_after_the_state_is_retried(
    faulty: SimulatedAccount,
) -> None:
    run_ok(faulty)
    ec2 = faulty.client("ec2")
    (reservation,) = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["win-1"]}])["Reservations"]
    ec2.terminate_instances(InstanceIds=[reservation["Instances"][0]["InstanceId"]])
    # win/WINDOWS is deregistered, but every answer is lost: the retry finds it gone and planned nothing.
    faulty.fail_next(
        "ssm", "DeregisterPatchBaselineForPatchGroup", "InternalServerError", times=5, mode="response_lost"
    )
    result = run_ok(faulty)
    assert ("win", "WINDOWS") not in {(group, os) for group, os, _ in ssm_state(faulty)["registrations"]}
    assert result.output is not None and result.output["baselines"]["counts"]["deleted"] == 1
    assert change_counts(faulty, result)["registration"]["deleted"] == 1
    (line,) = [line for line in change_lines(faulty, result) if line["kind"] == "registration"]
    assert (line["action"], line["name"], line["outcome"]) == ("delete", "win/WINDOWS", "already_done")
    assert [entry for entry in raw_ledger(faulty) if entry["patch_group"] == "win"] == []


def test_a_patch_scan_ssm_refuses_fails_the_cycle_on_the_alerts_topic_and_the_rerun_makes_it(
    faulty: SimulatedAccount,
) -> None:
    alerts = topic_queue(faulty)
    faulty.fail_next("ssm", "CreateAssociation", "AssociationLimitExceeded", times=1, status=400)
    result = faulty.run_cycle()
    assert result.status == "FAILED"
    assert "RegistrationRejected" in (result.error or "")
    assert "create of the patch scan tagpatch-patch-scan" in (result.cause or "")
    assert "AssociationLimitExceeded" in (result.cause or "")
    assert any("AssociationLimitExceeded" in alert["Message"] for alert in alerts())
    # The registrations beside it were still made; the rerun makes the scan and then nothing is left.
    assert ledger(faulty)
    faulty.clear_faults()
    made = run_ok(faulty)  # (and the reminders the failed cycle never reached)
    assert {call: n for call, n in made.resource_write_calls.items() if call.startswith("ssm:")} == {
        "ssm:CreateAssociation": 1
    }
    assert run_ok(faulty).resource_write_calls == {}
