"""SNS filter policies and JSON message structure in the simulated account, as the SNS Developer Guide says."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tagpatch_local import simulator


@pytest.fixture
def topic() -> Iterator[tuple[Any, Any, str]]:
    with mock_aws():
        simulator.install()
        sns, sqs = boto3.client("sns", "us-east-1"), boto3.client("sqs", "us-east-1")
        yield sns, sqs, sns.create_topic(Name="notifications")["TopicArn"]


def subscribe(sns: Any, sqs: Any, topic_arn: str, name: str, policy: dict[str, Any]) -> str:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes={"FilterPolicy": json.dumps(policy)})
    return str(url)


def received(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def publish(sns: Any, topic_arn: str, data_type: str, value: str) -> None:
    attributes = {"owner": {"DataType": data_type, "StringValue": value}}
    sns.publish(TopicArn=topic_arn, Message=value, MessageAttributes=attributes)


def test_a_string_array_attribute_matches_when_any_element_matches(topic: tuple[Any, Any, str]) -> None:
    sns, sqs, arn = topic
    team_a = subscribe(sns, sqs, arn, "a", {"owner": ["team-a"]})
    team_b = subscribe(sns, sqs, arn, "b", {"owner": ["team-b"]})
    prefixed = subscribe(sns, sqs, arn, "p", {"owner": [{"prefix": "team-"}]})
    publish(sns, arn, "String.Array", '["team-a", "team-c"]')
    assert [m["Message"] for m in received(sqs, team_a)] == ['["team-a", "team-c"]']
    assert received(sqs, team_b) == []
    # An operator applies to each element (moto applied it to the array's JSON text).
    assert len(received(sqs, prefixed)) == 1


def test_a_string_attribute_is_compared_as_the_string_it_is(topic: tuple[Any, Any, str]) -> None:
    sns, sqs, arn = topic
    team_b = subscribe(sns, sqs, arn, "b", {"owner": ["team-b"]})
    publish(sns, arn, "String", '["team-b"]')  # a String that looks like an array is not one
    assert received(sqs, team_b) == []
    publish(sns, arn, "String", "team-b")
    assert [m["Message"] for m in received(sqs, team_b)] == ["team-b"]


def test_json_message_structure_needs_a_default_and_each_protocol_gets_its_own(topic: tuple[Any, Any, str]) -> None:
    sns, sqs, arn = topic
    with pytest.raises(ClientError, match="No default entry"):
        sns.publish(TopicArn=arn, Message=json.dumps({"sqs": "x"}), MessageStructure="json")
    with pytest.raises(ClientError, match="failed to parse"):
        sns.publish(TopicArn=arn, Message="not json", MessageStructure="json")
    queue = subscribe(sns, sqs, arn, "q", {})
    sns.publish(TopicArn=arn, Message=json.dumps({"default": "text", "sqs": '{"a": 1}'}), MessageStructure="json")
    assert [m["Message"] for m in received(sqs, queue)] == ['{"a": 1}']


def batch_entry(entry_id: str, message: str, owner: str = "team-a") -> dict[str, Any]:
    return {
        "Id": entry_id,
        "Message": message,
        "MessageAttributes": {"owner": {"DataType": "String", "StringValue": owner}},
    }


def test_publish_batch_delivers_each_entry_with_its_attributes(topic: tuple[Any, Any, str]) -> None:
    sns, sqs, arn = topic
    team_a = subscribe(sns, sqs, arn, "a", {"owner": ["team-a"]})
    entries = [batch_entry(str(i), f"alert {i}", "team-a" if i % 2 else "team-b") for i in range(10)]
    answer = sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=entries)
    assert sorted(e["Id"] for e in answer["Successful"]) == sorted(str(i) for i in range(10))
    assert answer["Failed"] == []
    assert sorted(m["Message"] for m in received(sqs, team_a)) == sorted(f"alert {i}" for i in range(1, 10, 2))


def test_a_batch_over_256_kib_in_all_is_refused_whole(topic: tuple[Any, Any, str]) -> None:
    sns, _, arn = topic
    # Each entry is well under the per-message limit; together they are over the batch's.
    entries = [batch_entry(str(i), "x" * 40_000) for i in range(7)]
    with pytest.raises(ClientError) as refused:
        sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=entries)
    assert refused.value.response["Error"]["Code"] == "BatchRequestTooLong"
    answer = sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=entries[:6])
    assert len(answer["Successful"]) == 6


def test_every_refused_entry_is_answered_in_failed(
    topic: tuple[Any, Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.sns.exceptions import InternalError
    from moto.sns.models import SNSBackend

    sns, _, arn = topic
    corrected = SNSBackend.publish

    def publish_failing_one(self: SNSBackend, message: str, *args: Any, **kwargs: Any) -> str:
        if message == "unlucky":
            raise InternalError("Internal error")  # moto dropped such an entry from both lists
        return corrected(self, message, *args, **kwargs)

    monkeypatch.setattr(SNSBackend, "publish", publish_failing_one)
    structure = {**batch_entry("2", "{}"), "MessageStructure": "json"}  # no "default": InvalidParameter
    entries = [batch_entry("0", "fine"), batch_entry("1", "unlucky"), structure]
    answer = sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=entries)
    assert [e["Id"] for e in answer["Successful"]] == ["0"]
    failed = {e["Id"]: (e["Code"], e["SenderFault"]) for e in answer["Failed"]}
    assert failed == {"1": ("InternalError", False), "2": ("InvalidParameter", True)}


def test_publish_counts_the_attributes_against_the_256_kib_limit(topic: tuple[Any, Any, str]) -> None:
    # SNS Developer Guide: "the combined size of the message body and message attributes" is checked.
    sns, _, topic_arn = topic
    body = "x" * (256 * 1024 - 100)
    sns.publish(TopicArn=topic_arn, Message=body)  # the body alone fits
    attributes = {"owner": {"DataType": "String", "StringValue": "y" * 200}}
    with pytest.raises(ClientError) as caught:
        sns.publish(TopicArn=topic_arn, Message=body, MessageAttributes=attributes)
    assert caught.value.response["Error"]["Code"] == "InvalidParameter"
    assert "too long" in caught.value.response["Error"]["Message"]


def test_publish_counts_bytes_not_characters(topic: tuple[Any, Any, str]) -> None:
    sns, _, topic_arn = topic
    with pytest.raises(ClientError) as caught:
        sns.publish(TopicArn=topic_arn, Message="é" * (200 * 1024))  # 200 Ki characters, 400 KiB
    assert caught.value.response["Error"]["Code"] == "InvalidParameter"
