"""Tiny state machines run to their end in the simulated account, for the Step Functions rules' tests."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
from moto import mock_aws

from tagpatch_local import simulator
from tagpatch_local.account_facts import MOTO_CONFIG

ROLE = "arn:aws:iam::123456789012:role/states"
CAUGHT = {"Type": "Pass", "Result": "caught", "ResultPath": "$.caught", "End": True}


def stepfunctions() -> Iterator[Any]:
    """A Step Functions client in a fresh simulated account (the body of each file's `sfn` fixture)."""
    simulator.install()
    with mock_aws(config=MOTO_CONFIG):
        yield boto3.client("stepfunctions", region_name="us-east-1")


def run(sfn: Any, definition: dict[str, Any], execution_input: str = "{}", *, role: str = ROLE) -> dict[str, Any]:
    """Create the state machine, start it and return DescribeExecution's answer once it has ended."""
    machine = sfn.create_state_machine(name=f"m-{time.time_ns()}", definition=json.dumps(definition), roleArn=role)[
        "stateMachineArn"
    ]
    execution = sfn.start_execution(stateMachineArn=machine, input=execution_input)["executionArn"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.05)
    raise AssertionError(f"{execution} still running")


def map_over(iteration: dict[str, Any], error_equals: list[str]) -> dict[str, Any]:
    """A Map over `$.items` whose one-state iteration is `iteration`, with Retry and Catch on `error_equals`."""
    return {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Work",
                    "States": {"Work": iteration},
                },
                "Retry": [{"ErrorEquals": error_equals, "MaxAttempts": 1, "IntervalSeconds": 1}],
                "Catch": [{"ErrorEquals": error_equals, "ResultPath": "$.error", "Next": "Caught"}],
                "ResultPath": "$.results",
                "End": True,
            },
            "Caught": CAUGHT,
        },
    }
