"""Simulated CloudWatch alarms: metric data (PutMetricData or an EMF log line) is evaluated by the alarms
that watch it, and a state change runs the alarm's SNS actions as cloudwatch.amazonaws.com."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tagpatch_local import simulator
from tagpatch_local.simulator import cloudwatch

ACCOUNT, REGION = "123456789012", "us-east-1"
ROOT = {"region_name": REGION, "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
HOUR = datetime(2026, 12, 6, 20, tzinfo=UTC)


@pytest.fixture
def alarm() -> Iterator[dict[str, Any]]:
    """An alarm on tagpatch/ChangesRejected (Sum >= 1 over an hour) notifying a topic open to alarms."""
    with mock_aws():
        simulator.install()
        sns, sqs, client = (boto3.client(name, **ROOT) for name in ("sns", "sqs", "cloudwatch"))
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        allow = {
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": topic,
            "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:*"}},
        }
        sns.set_topic_attributes(
            TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps({"Statement": [allow]})
        )
        url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        client.put_metric_alarm(
            AlarmName="rejected",
            Namespace="tagpatch",
            MetricName="ChangesRejected",
            Dimensions=[{"Name": "service", "Value": "tagpatch"}],
            Statistic="Sum",
            Period=3600,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="notBreaching",
            AlarmActions=[topic],
        )

        def received() -> list[dict[str, Any]]:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            for message in messages:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            return [json.loads(json.loads(m["Body"])["Message"]) for m in messages]

        def state() -> str:
            return str(client.describe_alarms(AlarmNames=["rejected"])["MetricAlarms"][0]["StateValue"])

        yield {"client": client, "received": received, "state": state}


def datum(value: float, moment: datetime = HOUR, service: str = "tagpatch") -> dict[str, Any]:
    return {
        "MetricName": "ChangesRejected",
        "Value": value,
        "Unit": "Count",
        "Dimensions": [{"Name": "service", "Value": service}],
        "Timestamp": moment,
    }


def test_data_below_the_threshold_leaves_the_alarm_ok_and_breaching_data_alarms_once(alarm: dict[str, Any]) -> None:
    client = alarm["client"]
    client.put_metric_data(Namespace="tagpatch", MetricData=[datum(0)])
    assert alarm["state"]() == "OK" and alarm["received"]() == []
    client.put_metric_data(Namespace="tagpatch", MetricData=[datum(1, HOUR.replace(minute=30))])
    assert alarm["state"]() == "ALARM"
    (message,) = alarm["received"]()
    assert (message["AlarmName"], message["NewStateValue"], message["OldStateValue"]) == ("rejected", "ALARM", "OK")
    assert message["NewStateReason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [1 (")
    client.put_metric_data(Namespace="tagpatch", MetricData=[datum(2, HOUR.replace(minute=40))])
    assert alarm["received"]() == []  # still ALARM: no change, no action


def test_data_with_other_dimensions_or_in_another_period_is_not_the_alarms(alarm: dict[str, Any]) -> None:
    client = alarm["client"]
    client.put_metric_data(Namespace="tagpatch", MetricData=[datum(5, service="other")])
    assert alarm["state"]() == "OK"
    client.put_metric_data(Namespace="tagpatch", MetricData=[datum(0.5, HOUR.replace(hour=19))])
    client.put_metric_data(Namespace="tagpatch", MetricData=[datum(0.5, HOUR)])
    assert alarm["state"]() == "OK"  # 0.5 an hour: each period's Sum is under 1
    client.put_metric_data(Namespace="tagpatch", MetricData=[datum(0.5, HOUR.replace(minute=59))])
    assert alarm["state"]() == "ALARM"


def test_an_emf_log_line_becomes_metric_data(alarm: dict[str, Any]) -> None:
    line = json.dumps(
        {
            "_aws": {
                "Timestamp": int(HOUR.timestamp() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": "tagpatch",
                        "Dimensions": [["service"]],
                        "Metrics": [{"Name": "ChangesRejected", "Unit": "Count"}],
                    }
                ],
            },
            "service": "tagpatch",
            "ChangesRejected": [1.0],
            "function_name": "ReportFailure",
        }
    )
    assert cloudwatch.put_emf(ACCOUNT, REGION, "not json") == 0
    assert cloudwatch.put_emf(ACCOUNT, REGION, json.dumps({"level": "INFO"})) == 0
    assert cloudwatch.put_emf(ACCOUNT, REGION, line) == 1
    assert alarm["state"]() == "ALARM"
    assert [m["AlarmName"] for m in alarm["received"]()] == ["rejected"]


def test_dashboards_are_global_to_the_account() -> None:
    # PutDashboard's API reference: "All dashboards in your account are global, not region-specific."
    with mock_aws():
        simulator.install()
        east, west = (boto3.client("cloudwatch", **{**ROOT, "region_name": region}) for region in (REGION, "eu-west-1"))
        east.put_dashboard(DashboardName="operators", DashboardBody=json.dumps({"widgets": []}))
        west.put_dashboard(DashboardName="operators", DashboardBody=json.dumps({"widgets": [{"type": "text"}]}))
        assert json.loads(east.get_dashboard(DashboardName="operators")["DashboardBody"]) == {
            "widgets": [{"type": "text"}]
        }
        assert [entry["DashboardName"] for entry in east.list_dashboards()["DashboardEntries"]] == ["operators"]
        west.delete_dashboards(DashboardNames=["operators"])
        assert east.list_dashboards()["DashboardEntries"] == []
