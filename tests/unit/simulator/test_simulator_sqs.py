"""The simulator's SQS message counts equal moto's own, and sending no longer grows with the queue."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.sqs.models import Queue, sqs_backends

from tagpatch_local import simulator

COUNTS = ("messages", "approximate_number_of_messages_delayed", "approximate_number_of_messages_not_visible")


@pytest.fixture
def queue() -> Iterator[tuple[Any, str]]:
    with mock_aws():
        simulator.install()
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="owner-team-a")["QueueUrl"]
        yield sqs, url


def _moto_count(queue: Queue, name: str) -> Any:
    return getattr(Queue, name).fget.__wrapped__(queue)


def test_counts_equal_motos_for_visible_delayed_and_in_flight_messages(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    for index in range(6):
        sqs.send_message(QueueUrl=url, MessageBody=f"visible {index}")
    for index in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"delayed {index}", DelaySeconds=600)
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=600)
    assert len(received["Messages"]) == 2
    moto_queue = sqs_backends["123456789012"]["us-east-1"].get_queue("owner-team-a")

    ours: dict[str, Any] = {name: getattr(moto_queue, name) for name in COUNTS}
    motos = {name: _moto_count(moto_queue, name) for name in COUNTS}

    assert ours == motos
    assert len(ours["messages"]) == 4
    assert ours["approximate_number_of_messages_delayed"] == 3
    assert ours["approximate_number_of_messages_not_visible"] == 2
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "4"
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "3"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "2"


def test_counts_are_the_simulators(queue: tuple[Any, str]) -> None:
    for name in COUNTS:
        assert getattr(getattr(Queue, name).fget, "__wrapped__", None) is not None, name
