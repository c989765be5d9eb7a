"""Transient AWS errors are retried by the workflow; other errors are caught and reported at once."""

from __future__ import annotations

import json
from types import SimpleNamespace

import botocore.endpoint
import pytest
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

from tagpatch_local.runner import SimulatedAccount

from .support import instance, run_ok


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[float]]:
    """Record the waits of botocore's retries and of the state machine's Retry instead of sleeping."""
    waits: dict[str, list[float]] = {"botocore": [], "states": []}
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=waits["botocore"].append))
    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=waits["states"].append))
    return waits


def task_failures(result: object, state: str) -> list[str]:
    failures = []
    current = None
    for event in result.events:  # type: ignore[attr-defined]
        if "stateEnteredEventDetails" in event:
            current = event["stateEnteredEventDetails"]["name"]
        if event["type"] == "TaskFailed" and current == state:
            failures.append(event["taskFailedEventDetails"]["error"])
    return failures


def test_throttling_that_outlives_botocore_is_retried_by_the_state_machine(
    account: SimulatedAccount, sleeps: dict[str, list[float]]
) -> None:
    account.seed([instance("web", "sun-0200")])
    # botocore's standard mode makes 5 attempts; all of the first invocation's fail.
    account.fail_next("ec2", "DescribeInstances", "RequestLimitExceeded", times=5)
    result = run_ok(account)
    assert task_failures(result, "Discovery") == ["TransientAwsError"]
    assert len(sleeps["botocore"]) == 4
    # One Retry wait, with full jitter: anywhere from 0 to the 5 s interval.
    assert len(sleeps["states"]) == 1 and 0 <= sleeps["states"][0] <= 5
    assert result.calls_by_function["DiscoveryFunction"]["ec2:DescribeInstances"] == 2
    assert result.output is not None and result.output["discovery"]["instances"] == 1


def test_an_error_that_retrying_cannot_fix_is_reported_without_retries(
    account: SimulatedAccount, sleeps: dict[str, list[float]]
) -> None:
    account.seed([instance("web", "sun-0200")])
    account.fail_next("ssm", "DescribeInstanceInformation", "AccessDeniedException", times=1, status=400)
    result = account.run_cycle()
    assert result.status == "FAILED"
    assert task_failures(result, "Discovery") == ["AccessDeniedException"]  # botocore names the class by code
    assert sleeps["states"] == [] and sleeps["botocore"] == []
    assert "AccessDeniedException" in json.loads(result.cause or "{}")["errorMessage"]
    assert "sns:Publish" in result.calls_by_function["ReportFailureFunction"]
