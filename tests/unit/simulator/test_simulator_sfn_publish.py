"""A state machine's `sns:publish` Task in the simulated account publishes under the state machine's role:
its policies, the topic's policy and, for an encrypted topic, the key's policy (moto alone publishes
unchecked). tagpatch_local.simulator.stepfunctions.publish_refusal."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tagpatch_local import simulator
from tagpatch_local.account_facts import MOTO_CONFIG

from .state_machines import run

ACCOUNT = "123456789012"
REGION = "us-east-1"


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    simulator.install()
    with mock_aws(config=MOTO_CONFIG):
        yield {name: boto3.client(name, region_name=REGION) for name in ("stepfunctions", "iam", "sns", "kms", "sqs")}


def role(aws: dict[str, Any], *statements: dict[str, Any]) -> str:
    name = f"states-{time.time_ns()}"
    arn: str = aws["iam"].create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    if statements:
        aws["iam"].put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=document(*statements))
    return arn


def publish_machine(aws: dict[str, Any], role_arn: str, topic_arn: str) -> dict[str, Any]:
    definition = {
        "StartAt": "Alert",
        "States": {
            "Alert": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sns:publish",
                "Parameters": {"TopicArn": topic_arn, "Subject": "s", "Message": "m"},
                "End": True,
            }
        },
    }
    return run(aws["stepfunctions"], definition, role=role_arn)


def delivered(aws: dict[str, Any], topic_arn: str) -> Any:
    queue = aws["sqs"].create_queue(QueueName=f"q-{time.time_ns()}")["QueueUrl"]
    queue_arn = aws["sqs"].get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws["sns"].subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return lambda: aws["sqs"].receive_message(QueueUrl=queue, WaitTimeSeconds=0).get("Messages", [])


def test_a_role_granted_sns_publish_on_the_topic_publishes(aws: dict[str, Any]) -> None:
    topic = aws["sns"].create_topic(Name="alerts")["TopicArn"]
    messages = delivered(aws, topic)
    granted = role(aws, {"Effect": "Allow", "Action": "sns:Publish", "Resource": topic})
    assert publish_machine(aws, granted, topic)["status"] == "SUCCEEDED"
    assert len(messages()) == 1


def test_a_role_without_sns_publish_fails_the_task_and_nothing_is_sent(aws: dict[str, Any]) -> None:
    topic = aws["sns"].create_topic(Name="alerts")["TopicArn"]
    messages = delivered(aws, topic)
    other = aws["sns"].create_topic(Name="other")["TopicArn"]
    elsewhere = role(aws, {"Effect": "Allow", "Action": "sns:Publish", "Resource": other})
    failed = publish_machine(aws, elsewhere, topic)
    assert (failed["status"], failed.get("error")) == ("FAILED", "SNS.AuthorizationErrorException")
    assert "is not authorized to perform: sns:Publish" in failed["cause"]
    assert messages() == []


def test_an_encrypted_topic_needs_the_key_policy_to_let_the_role_use_the_key(aws: dict[str, Any]) -> None:
    root = {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    # The key policy lets the account administer the key, not use it: IAM cannot grant its use.
    key = aws["kms"].create_key(
        Policy=document({"Effect": "Allow", "Principal": root, "Action": "kms:PutKeyPolicy", "Resource": "*"})
    )["KeyMetadata"]
    topic = aws["sns"].create_topic(Name="encrypted", Attributes={"KmsMasterKeyId": key["Arn"]})["TopicArn"]
    granted = role(
        aws,
        {"Effect": "Allow", "Action": "sns:Publish", "Resource": topic},
        {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": key["Arn"]},
    )
    failed = publish_machine(aws, granted, topic)
    assert (failed["status"], failed.get("error")) == ("FAILED", "SNS.KMSAccessDeniedException")
    assert "kms:GenerateDataKey" in failed["cause"]
    # Once the key policy delegates to the account's IAM policies, the role's grant counts.
    aws["kms"].put_key_policy(
        KeyId=key["KeyId"],
        PolicyName="default",
        Policy=document({"Effect": "Allow", "Principal": root, "Action": "kms:*", "Resource": "*"}),
    )
    assert publish_machine(aws, granted, topic)["status"] == "SUCCEEDED"
