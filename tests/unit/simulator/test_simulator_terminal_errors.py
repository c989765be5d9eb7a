"""Step Functions' terminal errors in the simulated account: `States.Runtime`, which no Retry or Catch
takes (not even `States.ALL`), and an iteration's error reaching its Map under its own name
(tagpatch_local.simulator.terminal_errors)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from .state_machines import map_over, run, stepfunctions

# A Pass state cannot carry Catch, so the path mistake sits inside a Map whose Catch and Retry take
# States.ALL, as in tagpatch's ASLs.
ONE_ITEM = json.dumps({"items": [{"name": "a"}]})


@pytest.fixture
def sfn() -> Iterator[Any]:
    yield from stepfunctions()


BAD_INPUT_PATH = {"Type": "Pass", "InputPath": "$.missing", "End": True}


def test_states_all_does_not_catch_a_pass_state_s_input_path_that_matches_nothing(sfn: Any) -> None:
    described = run(sfn, map_over(BAD_INPUT_PATH, ["States.ALL"]), ONE_ITEM)
    assert (described["status"], described.get("error")) == ("FAILED", "States.Runtime")


def test_naming_states_runtime_does_not_catch_it_either(sfn: Any) -> None:
    described = run(sfn, map_over(BAD_INPUT_PATH, ["States.Runtime"]), ONE_ITEM)
    assert (described["status"], described.get("error")) == ("FAILED", "States.Runtime")


def test_states_all_does_not_catch_an_output_path_that_matches_nothing(sfn: Any) -> None:
    bad_output_path = {"Type": "Pass", "OutputPath": "$.missing", "End": True}
    described = run(sfn, map_over(bad_output_path, ["States.ALL"]), ONE_ITEM)
    assert (described["status"], described.get("error")) == ("FAILED", "States.Runtime")


def test_an_iteration_s_task_failure_reaches_the_map_s_catch_under_its_own_name(sfn: Any) -> None:
    failing = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sns:publish",
        "Parameters": {"TopicArn": "arn:aws:sns:us-east-1:123456789012:none", "Message": "m"},
        "End": True,
    }
    iam = boto3.client("iam", region_name="us-east-1")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    iam.create_role(RoleName="states", AssumeRolePolicyDocument=json.dumps(trust))
    publish = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}]}
    iam.put_role_policy(RoleName="states", PolicyName="publish", PolicyDocument=json.dumps(publish))
    described = run(sfn, map_over(failing, ["States.TaskFailed"]), ONE_ITEM)
    assert described["status"] == "SUCCEEDED", (described.get("error"), described.get("cause"))
    error = json.loads(described["output"])["error"]["Error"]
    assert error.startswith("SNS."), error


def test_an_iteration_s_timeout_reaches_the_map_s_catch_under_its_own_name(sfn: Any) -> None:
    queue = boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="idle")["QueueUrl"]
    waiting = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
        "TimeoutSeconds": 1,
        "End": True,
    }
    described = run(sfn, map_over(waiting, ["States.Timeout"]), ONE_ITEM)
    assert described["status"] == "SUCCEEDED", (described.get("error"), described.get("cause"))
    assert json.loads(described["output"])["error"]["Error"] == "States.Timeout"


def test_an_iteration_s_own_error_name_reaches_the_map_s_catch(sfn: Any) -> None:
    failing = {"Type": "Fail", "Error": "Lambda.Unknown", "Cause": "the function crashed"}
    described = run(sfn, map_over(failing, ["Lambda.Unknown"]), ONE_ITEM)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"])["error"]["Error"] == "Lambda.Unknown"
