"""Step Functions' 256 KiB payload quota in the simulated account: States.DataLimitExceeded, which
States.ALL neither catches nor retries (tagpatch_local.simulator.payload_limit)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .state_machines import CAUGHT, ROLE, map_over, run, stepfunctions

QUOTA = 256 * 1024


@pytest.fixture
def sfn() -> Iterator[Any]:
    yield from stepfunctions()


def sized_input(total_bytes: int) -> str:
    """A JSON object of exactly `total_bytes` UTF-8 bytes."""
    text = json.dumps({"a": ""}, separators=(",", ":"))
    return json.dumps({"a": "x" * (total_bytes - len(text))}, separators=(",", ":"))


def test_a_state_output_of_exactly_the_quota_passes_and_one_byte_more_fails(sfn: Any) -> None:
    passing = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    assert run(sfn, passing, sized_input(QUOTA))["status"] == "SUCCEEDED"
    # One byte more as the state's output (its input plus a one-character key).
    adding = {
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Result": "", "ResultPath": "$.b", "End": True}},
    }
    too_big = run(sfn, adding, sized_input(QUOTA - len(',"b":""') + 1))
    assert (too_big["status"], too_big.get("error")) == ("FAILED", "States.DataLimitExceeded")


def test_states_all_does_not_catch_an_iteration_s_data_limit(sfn: Any) -> None:
    """An iteration whose output passes the quota fails the whole execution, through the Map's Catch
    and Retry on States.ALL, as AWS documents (moto alone lets the Catch take it)."""
    grow = {"Type": "Pass", "Parameters": {"a.$": "$.s", "b.$": "$.s", "c.$": "$.s"}, "End": True}
    definition = map_over(grow, ["States.ALL"])
    described = run(sfn, definition, json.dumps({"items": [{"s": "y" * 100_000}]}))
    assert (described["status"], described.get("error")) == ("FAILED", "States.DataLimitExceeded")


def test_a_task_s_input_over_the_quota_once_its_parameters_are_processed_is_not_caught(sfn: Any) -> None:
    definition = {
        "StartAt": "Start",
        "States": {
            "Start": {
                "Type": "Task",
                "Resource": "arn:aws:states:::states:startExecution",
                "Parameters": {
                    "StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:child",
                    "Input": {"a.$": "$.s", "b.$": "$.s"},
                },
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": CAUGHT,
        },
    }
    described = run(sfn, definition, json.dumps({"s": "z" * 140_000}))
    assert (described["status"], described.get("error")) == ("FAILED", "States.DataLimitExceeded")
    assert "once its parameters are processed" in described["cause"]


def test_an_execution_input_over_the_quota_is_refused(sfn: Any) -> None:
    machine = sfn.create_state_machine(
        name="limit-input",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn=ROLE,
    )["stateMachineArn"]
    with pytest.raises(ClientError) as refused:
        sfn.start_execution(stateMachineArn=machine, input=sized_input(QUOTA + 1))
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert sfn.list_executions(stateMachineArn=machine)["executions"] == []
