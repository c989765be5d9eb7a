"""EventBridge rules that target SNS topics: delivered as EventBridge does, or dropped as it does.

moto 5.2.5 raises NotImplementedError when a matching rule targets an SNS topic. The EventBridge User
Guide ("Amazon SNS permissions" under resource-based policies) says the topic's access policy must let
`events.amazonaws.com` call `sns:Publish`; without it the delivery fails (the rule's FailedInvocations
metric), the event is not retried into the topic and nothing reaches the subscribers. The simulator
publishes the event (after the target's InputTransformer, which moto applies) to the topic when its
policy allows that, and otherwise records the failed delivery, so a template that forgets the topic
policy fails here as it would in AWS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from moto.events.models import Rule
from moto.events.utils import EventTemplateParser
from moto.sns.models import sns_backends
from moto.utilities.arns import parse_arn

from tagpatch_local.simulator.core import MARKER, moto_patch

_EVENTS_PRINCIPAL: Final = "events.amazonaws.com"


@dataclass(frozen=True)
class FailedDelivery:
    rule: str
    target_arn: str
    reason: str


FAILED_DELIVERIES: list[FailedDelivery] = []  # process-wide: a test clears it before it looks


def _allows_eventbridge(policy_json: str, topic_arn: str) -> bool:
    try:
        policy = json.loads(policy_json)
    except ValueError:
        return False
    for statement in policy.get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        services = [services] if isinstance(services, str) else services
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        if (
            (principal == "*" or _EVENTS_PRINCIPAL in services)
            and any(a in ("sns:Publish", "sns:*", "*") for a in actions)
            and any(r in (topic_arn, "*") for r in resources)
        ):
            return True
    return False


def _deliver_to_topic(rule: Any, target: dict[str, Any], event: Any) -> None:
    arn = parse_arn(target["Arn"])
    topic = sns_backends[arn.account][arn.region].topics.get(target["Arn"])
    if topic is None:
        FAILED_DELIVERIES.append(FailedDelivery(rule.name, target["Arn"], "the topic does not exist"))
        return
    if not _allows_eventbridge(topic.policy, target["Arn"]):
        FAILED_DELIVERIES.append(
            FailedDelivery(rule.name, target["Arn"], "the topic policy does not let events.amazonaws.com publish")
        )
        return
    transformer = target.get("InputTransformer", {})
    body: Any = EventTemplateParser.parse(
        input_template=transformer.get("InputTemplate"),
        input_paths_map=transformer.get("InputPathsMap", {}),
        event=event,
    )
    message = body if isinstance(body, str) else json.dumps(body)
    sns_backends[arn.account][arn.region].publish(message=message, arn=target["Arn"])


@moto_patch
def _install_sns_targets() -> None:
    original = Rule.send_to_targets
    if getattr(original, MARKER, None) is not None:
        return

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        topics = [t for t in self.targets if parse_arn(t["Arn"]).service == "sns"]
        if topics and self.event_pattern.matches_event(original_event):
            for target in topics:
                _deliver_to_topic(self, target, original_event)
        others = [t for t in self.targets if t not in topics]
        if not others:
            return
        saved, self.targets = self.targets, others
        try:
            original(self, original_event, transform_input)
        finally:
            self.targets = saved

    setattr(send_to_targets, MARKER, "events: SNS targets")
    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]
