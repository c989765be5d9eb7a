"""CloudWatch alarms that act: an alarm that changes state runs its actions, as CloudWatch does.

moto 5.2.5 stores alarms and changes their state (SetAlarmState) but never runs an action, and has no
DescribeAlarmHistory. From the CloudWatch API reference and user guide:
- SetAlarmState: "When the updated state differs from the previous value, the action configured for
  the appropriate state is invoked" (AlarmActions for ALARM, OKActions for OK, InsufficientDataActions
  for INSUFFICIENT_DATA), and only while ActionsEnabled.
- An SNS action is a Publish by the service principal `cloudwatch.amazonaws.com` on behalf of the
  alarm: the topic policy must allow it (and, for an encrypted topic, the key policy must let the
  service use the key). A refused action is not retried; the alarm's history records it as an
  `Action` item, "Failed to execute action <topic ARN>. Received error: ..." (AWS re:Post knowledge
  center, "Why didn't I receive an SNS notification for my CloudWatch alarm trigger?"), and a
  delivered one as "Successfully executed action <topic ARN>".
- The request context CloudWatch sends with its Publish: `aws:SourceArn` is the alarm's ARN (the same
  article scopes a topic policy with it); `aws:SourceAccount` the alarm's account (the global
  condition key's documented meaning; CloudWatch's guide does not list it). See docs/simulator.md.

The notification's body is the JSON CloudWatch sends to SNS subscribers (AlarmName, NewStateValue,
Trigger, ...), its subject `ALARM: "<name>" in <Region name>`. Only SNS actions are run; any other
action (EC2, Auto Scaling, SSM) is recorded as not simulated.

Metrics reach alarms too. A metric alarm (one metric, a Statistic) is evaluated when data arrives for
its namespace, metric name and exact dimensions (PutMetricData, or `put_emf` for the embedded metric
format lines a function prints, which CloudWatch Logs extracts in AWS): the EvaluationPeriods periods
ending with the new datapoint's period, each aggregated by the alarm's statistic and compared with the
threshold; DatapointsToAlarm of them (EvaluationPeriods by default) breaching is ALARM, fewer is OK,
and a period without data is not breaching unless TreatMissingData is `breaching`. CloudWatch
evaluates every minute on its own; the simulator evaluates when data arrives, so an alarm returns to
OK only when later data says so.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import botocore.session
from moto.cloudwatch.models import Alarm, CloudWatchBackend, MetricDatum, cloudwatch_backends
from moto.cloudwatch.responses import CloudWatchResponse
from moto.sns.models import sns_backends
from moto.sqs.models import SQSBackend

from tagpatch_local.simulator import clock
from tagpatch_local.simulator.core import MARKER, backend_state, moto_patch, operation
from tagpatch_local.simulator.resource_policies import service_publish_refusal

CLOUDWATCH_PRINCIPAL: Final = "cloudwatch.amazonaws.com"
_HISTORY_ATTR: Final = "tagpatch_history"
HISTORY_SUMMARY_LENGTH: Final = 255


@dataclass(frozen=True)
class HistoryItem:
    """One entry of an alarm's history, in DescribeAlarmHistory's terms."""

    alarm_name: str
    timestamp: datetime
    item_type: str  # StateUpdate | Action | ConfigurationUpdate
    summary: str
    data: str

    def as_output(self) -> dict[str, Any]:
        return {
            "AlarmName": self.alarm_name,
            "AlarmType": "MetricAlarm",
            "Timestamp": self.timestamp,
            "HistoryItemType": self.item_type,
            # The model caps a summary at 255 characters; the whole error is in HistoryData.
            "HistorySummary": self.summary[:HISTORY_SUMMARY_LENGTH],
            "HistoryData": self.data,
        }


def history(alarm: Alarm) -> list[HistoryItem]:
    return backend_state(alarm, _HISTORY_ATTR, list[HistoryItem])


def _region_name(region: str) -> str:
    endpoints = botocore.session.get_session().get_data("endpoints")
    for partition in endpoints["partitions"]:
        if region in partition["regions"]:
            return str(partition["regions"][region].get("description", region))
    return region


def notification(alarm: Alarm, account: str, old_state: str, when: datetime) -> tuple[str, str]:
    """(subject, message) of the notification CloudWatch publishes for a state change."""
    body = {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description,
        "AWSAccountId": account,
        "NewStateValue": alarm.state_value,
        "NewStateReason": alarm.state_reason,
        "StateChangeTime": when.isoformat(timespec="milliseconds"),
        "Region": _region_name(alarm.region_name),
        "AlarmArn": alarm.alarm_arn,
        "OldStateValue": old_state,
        "AlarmActions": list(alarm.alarm_actions),
        "OKActions": list(alarm.ok_actions),
        "InsufficientDataActions": list(alarm.insufficient_data_actions),
        "Trigger": {
            "MetricName": alarm.metric_name,
            "Namespace": alarm.namespace,
            "StatisticType": "Statistic",
            "Statistic": str(alarm.statistic or "").upper(),
            "Unit": alarm.unit,
            "Dimensions": [{"value": d.value, "name": d.name} for d in alarm.dimensions],
            "Period": alarm.period,
            "EvaluationPeriods": alarm.evaluation_periods,
            "ComparisonOperator": alarm.comparison_operator,
            "Threshold": alarm.threshold,
            "TreatMissingData": alarm.treat_missing_data,
        },
    }
    subject = f'{alarm.state_value}: "{alarm.name}" in {_region_name(alarm.region_name)}'
    return subject[:100], json.dumps(body)


def _actions_for(alarm: Alarm) -> list[str]:
    by_state: dict[str, list[str]] = {
        "ALARM": alarm.alarm_actions,
        "OK": alarm.ok_actions,
        "INSUFFICIENT_DATA": alarm.insufficient_data_actions,
    }
    return list(by_state.get(alarm.state_value) or [])


def run_actions(alarm: Alarm, account: str, old_state: str) -> None:
    """Run the actions of the alarm's new state, recording each in the alarm's history."""
    when = clock.now(account, alarm.region_name)
    items = history(alarm)
    items.append(
        HistoryItem(
            alarm.name,
            when,
            "StateUpdate",
            f"Alarm updated from {old_state} to {alarm.state_value}",
            json.dumps({"oldState": {"stateValue": old_state}, "newState": {"stateValue": alarm.state_value}}),
        )
    )
    if not alarm.actions_enabled:
        return
    for action in _actions_for(alarm):
        if not action.startswith("arn:aws:sns:"):
            summary = f'Failed to execute action {action}. Received error: "not simulated"'
            items.append(HistoryItem(alarm.name, when, "Action", summary, "{}"))
            continue
        source = {"aws:SourceArn": (alarm.alarm_arn,), "aws:SourceAccount": (account,)}
        refusal = service_publish_refusal(CLOUDWATCH_PRINCIPAL, action, source)
        if refusal is not None:
            error = f"Resource: {alarm.alarm_arn} is not authorized to perform: SNS:Publish on resource: {action}"
            items.append(
                HistoryItem(
                    alarm.name,
                    when,
                    "Action",
                    f'Failed to execute action {action}. Received error: "{error}"',
                    json.dumps({"actionState": "Failed", "error": error, "simulatorReason": refusal}),
                )
            )
            continue
        subject, message = notification(alarm, account, old_state, when)
        _, _, _, region, owner, _ = action.split(":", 5)
        sns_backends[owner][region].publish(message=message, arn=action, subject=subject)
        items.append(
            HistoryItem(
                alarm.name,
                when,
                "Action",
                f"Successfully executed action {action}",
                json.dumps({"actionState": "Succeeded", "notificationResource": action}),
            )
        )


def failed_actions(account: str, region: str) -> list[HistoryItem]:
    """Every refused alarm action so far in this account and Region (what a test looks for)."""
    backend = cloudwatch_backends[account][region]
    return [
        item
        for alarm in backend.alarms.values()
        for item in history(alarm)
        if item.item_type == "Action" and item.summary.startswith("Failed")
    ]


@moto_patch
def _install_alarm_actions() -> None:
    original: Callable[..., None] = CloudWatchBackend.set_alarm_state
    if getattr(original, MARKER, None) is not None:
        return

    def set_alarm_state(
        self: CloudWatchBackend, alarm_name: str, reason: str, reason_data: str, state_value: str
    ) -> None:
        alarm = self.alarms.get(alarm_name)
        old_state = alarm.state_value if alarm is not None else None
        original(self, alarm_name, reason, reason_data, state_value)
        alarm = self.alarms[alarm_name]
        if old_state != alarm.state_value:
            run_actions(alarm, self.account_id, str(old_state))

    setattr(set_alarm_state, MARKER, "cloudwatch: a state change runs the alarm's actions")
    CloudWatchBackend.set_alarm_state = set_alarm_state  # type: ignore[method-assign]


@operation("DescribeAlarmHistory", service="cloudwatch", response_class=CloudWatchResponse)
def _describe_alarm_history(response: Any) -> dict[str, Any]:
    backend = cloudwatch_backends[response.current_account][response.region]
    name = response._get_param("AlarmName")
    kind = response._get_param("HistoryItemType")
    items = [
        item
        for alarm in backend.alarms.values()
        if name in (None, alarm.name)
        for item in history(alarm)
        if kind in (None, item.item_type)
    ]
    newest_first = response._get_param("ScanBy") != "TimestampAscending"
    items.sort(key=lambda item: item.timestamp, reverse=newest_first)
    limit = int(response._get_param("MaxRecords") or 100)
    return {"AlarmHistoryItems": [item.as_output() for item in items[:limit]]}


# --------------------------------------------------------------------------------------------------
# Metric data reaching alarms

_COMPARE: Final[dict[str, Callable[[float, float], bool]]] = {
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}
_STATISTIC: Final[dict[str, Callable[[list[float]], float]]] = {
    "Sum": sum,
    "Maximum": max,
    "Minimum": min,
    "Average": lambda values: sum(values) / len(values),
    "SampleCount": lambda values: float(len(values)),
}


def _period_start(moment: datetime, period: int) -> datetime:
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % period, tz=UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _matches(alarm: Alarm, datum: Any) -> bool:
    return (
        datum.namespace == alarm.namespace
        and datum.name == alarm.metric_name
        and {(d.name, d.value) for d in datum.dimensions} == {(d.name, d.value) for d in alarm.dimensions}
    )


def evaluate(backend: CloudWatchBackend, alarm: Alarm, latest: datetime) -> None:
    """Evaluate a metric alarm over the periods ending with `latest`'s, and change its state if due."""
    compare = _COMPARE.get(str(alarm.comparison_operator))
    statistic = _STATISTIC.get(str(alarm.statistic))
    if compare is None or statistic is None or alarm.metric_data_queries:
        return  # anomaly detection, extended statistics and metric math are not evaluated
    period = int(alarm.period)
    last = _period_start(_aware(latest), period)
    starts = [last - timedelta(seconds=period * n) for n in range(int(alarm.evaluation_periods))]
    values: dict[datetime, list[float]] = {start: [] for start in starts}
    for datum in backend.metric_data:
        if isinstance(datum, MetricDatum) and _matches(alarm, datum):
            start = _period_start(_aware(datum.timestamp), period)
            if start in values:
                values[start].append(float(datum.value))
    breaching, missing_breach = 0, alarm.treat_missing_data == "breaching"
    for start in starts:
        points = values[start]
        if points:
            breaching += compare(statistic(points), float(alarm.threshold))
        elif missing_breach:
            breaching += 1
    needed = int(alarm.datapoints_to_alarm or alarm.evaluation_periods)
    state = "ALARM" if breaching >= needed else "OK"
    if state == alarm.state_value:
        return
    shown = ", ".join(f"{statistic(values[s]):g} ({s:%d/%m/%y %H:%M:%S})" for s in starts if values[s])
    reason = (
        f"Threshold Crossed: {breaching} out of the last {len(starts)} datapoints [{shown}] "
        f"{'was' if state == 'ALARM' else 'was not'} {alarm.comparison_operator} the threshold ({alarm.threshold:g})"
    )
    backend.set_alarm_state(alarm.name, reason, json.dumps({"evaluatedDatapoints": len(starts)}), state)


@moto_patch
def _install_metric_evaluation() -> None:
    original: Callable[..., None] = CloudWatchBackend.put_metric_data
    if getattr(original, MARKER, None) is not None:
        return

    def put_metric_data(self: CloudWatchBackend, namespace: str, metric_data: list[dict[str, Any]]) -> None:
        before = len(self.metric_data)
        original(self, namespace, metric_data)
        added = self.metric_data[before:]
        for alarm in list(self.alarms.values()):
            arrived = [datum for datum in added if _matches(alarm, datum)]
            if arrived:
                evaluate(self, alarm, max(_aware(datum.timestamp) for datum in arrived))

    setattr(put_metric_data, MARKER, "cloudwatch: metric data is evaluated by the alarms that watch it")
    CloudWatchBackend.put_metric_data = put_metric_data  # type: ignore[method-assign]


def put_emf(account: str, region: str, line: str) -> int:
    """Extract the metrics of one embedded-metric-format log line, as CloudWatch Logs does; returns
    how many datapoints were put. A line that is not EMF puts nothing."""
    try:
        document = json.loads(line)
    except ValueError:
        return 0
    meta = document.get("_aws") if isinstance(document, dict) else None
    if not isinstance(meta, dict):
        return 0
    timestamp = datetime.fromtimestamp(int(meta.get("Timestamp", 0)) / 1000, tz=UTC)
    backend = cloudwatch_backends[account][region]
    put = 0
    for directive in meta.get("CloudWatchMetrics") or []:
        for dimension_set in directive.get("Dimensions") or [[]]:
            dimensions = [{"Name": name, "Value": str(document[name])} for name in dimension_set if name in document]
            data = []
            for metric in directive.get("Metrics") or []:
                value = document.get(metric.get("Name"))
                for one in value if isinstance(value, list) else [value]:
                    if isinstance(one, int | float):
                        data.append(
                            {
                                "MetricName": metric["Name"],
                                "Value": float(one),
                                "Unit": metric.get("Unit"),
                                "Dimensions": dimensions,
                                "Timestamp": timestamp,
                            }
                        )
            if data:
                backend.put_metric_data(str(directive.get("Namespace")), data)
                put += len(data)
    return put


# --------------------------------------------------------------------------------------------------
# AWS/SQS metrics
#
# SQS pushes its queue metrics to CloudWatch every minute for active queues (SQS Developer Guide,
# "Available CloudWatch metrics for Amazon SQS": ApproximateNumberOfMessagesVisible, dimension
# QueueName). The simulator puts ApproximateNumberOfMessagesVisible when a message arrives, and only
# for a queue an alarm watches (fan-out to many queues stays cheap), so a dead-letter queue's alarm
# evaluates as its messages arrive.

SQS_NAMESPACE: Final = "AWS/SQS"


def _watched_queue(account: str, region: str, queue_name: str) -> bool:
    alarms = cloudwatch_backends[account][region].alarms.values()
    return any(
        alarm.namespace == SQS_NAMESPACE
        and any(d.name == "QueueName" and d.value == queue_name for d in alarm.dimensions)
        for alarm in alarms
    )


@moto_patch
def _install_sqs_metrics() -> None:
    original: Callable[..., Any] = SQSBackend.send_message
    if getattr(original, MARKER, None) is not None:
        return

    def send_message(self: SQSBackend, queue_name: str, message_body: str, *args: Any, **kwargs: Any) -> Any:
        message = original(self, queue_name, message_body, *args, **kwargs)
        if _watched_queue(self.account_id, self.region_name, queue_name):
            visible = self.get_queue(queue_name).approximate_number_of_messages
            datum = {
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Value": float(visible),
                "Unit": "Count",
                "Dimensions": [{"Name": "QueueName", "Value": queue_name}],
                "Timestamp": datetime.now(tz=UTC),
            }
            cloudwatch_backends[self.account_id][self.region_name].put_metric_data(SQS_NAMESPACE, [datum])
        return message

    setattr(send_message, MARKER, "sqs: ApproximateNumberOfMessagesVisible for watched queues")
    SQSBackend.send_message = send_message  # type: ignore[method-assign]


# PutDashboard's API reference: "All dashboards in your account are global, not region-specific."
# moto keeps them per region; every region's dashboard calls use this region's backend instead.
DASHBOARD_HOME_REGION: Final = "us-east-1"


@moto_patch
def _install_global_dashboards() -> None:
    for name in ("put_dashboard", "get_dashboard", "list_dashboards", "delete_dashboards"):
        original: Callable[..., Any] = getattr(CloudWatchBackend, name)
        if getattr(original, MARKER, None) is not None:
            continue

        def on_the_accounts_dashboards(
            self: CloudWatchBackend, *args: Any, _original: Callable[..., Any] = original, **kwargs: Any
        ) -> Any:
            return _original(cloudwatch_backends[self.account_id][DASHBOARD_HOME_REGION], *args, **kwargs)

        setattr(on_the_accounts_dashboards, MARKER, "cloudwatch: dashboards are global to the account")
        setattr(CloudWatchBackend, name, on_the_accounts_dashboards)
