"""EventBridge rules that target SNS topics or Lambda functions: delivered as EventBridge does, or
dropped as it does.

Lambda targets (moto 5.2.5 ignores them): the EventBridge User Guide ("Amazon EventBridge permissions"
and "Lambda permissions" under resource-based policies) says the function's resource policy must let
`events.amazonaws.com` invoke it (AWS::Lambda::Permission in a template); otherwise the invocation
fails and is recorded here. Allowed, the function is invoked with the event (after the target's
InputTransformer). EventBridge invokes asynchronously; the simulator invokes at once, in order.

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

from moto.awslambda.utils import get_backend as lambda_backend
from moto.events.models import Rule
from moto.events.utils import EventTemplateParser
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends
from moto.utilities.arns import parse_arn

from tagpatch_local.simulator.core import MARKER, moto_patch
from tagpatch_local.simulator.iam import Authorization, Decision
from tagpatch_local.simulator.resource_policies import decide_for_service, service_publish_refusal

_EVENTS_PRINCIPAL: Final = "events.amazonaws.com"


@dataclass(frozen=True)
class FailedDelivery:
    rule: str
    target_arn: str
    reason: str


FAILED_DELIVERIES: list[FailedDelivery] = []  # process-wide: a test clears it before it looks


def _source(rule: Any) -> dict[str, tuple[str, ...]]:
    # EventBridge User Guide (resource-based policies): the rule's ARN and account are the source of
    # every request it makes as events.amazonaws.com.
    return {"aws:SourceArn": (str(rule.arn),), "aws:SourceAccount": (str(rule.account_id),)}


def _failed(rule: Any, target: dict[str, Any], event: Any, code: str, reason: str) -> None:
    """A delivery that failed without retries (a permission or a missing resource: EventBridge User
    Guide, "Using dead-letter queues"): sent to the target's dead-letter queue, if it has one and its
    queue policy lets EventBridge send, and recorded either way."""
    queue_arn = str((target.get("DeadLetterConfig") or {}).get("Arn") or "")
    if queue_arn:
        send = Authorization("sqs:SendMessage", queue_arn, _source(rule))
        if decide_for_service(_EVENTS_PRINCIPAL, str(rule.account_id), send) is Decision.ALLOW:
            _, _, _, region, account, queue = queue_arn.split(":", 5)
            attributes = {
                "RULE_ARN": str(rule.arn),
                "TARGET_ARN": str(target["Arn"]),
                "ERROR_CODE": code,
                "ERROR_MESSAGE": reason,
            }
            sqs_backends[account][region].send_message(
                queue,
                json.dumps(event) if not isinstance(event, str) else event,
                message_attributes={
                    name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
                },
            )
            reason += "; sent to the dead-letter queue"
        else:
            reason += "; the dead-letter queue's policy does not let events.amazonaws.com send (lost)"
    FAILED_DELIVERIES.append(FailedDelivery(rule.name, target["Arn"], reason))


def _deliver_to_topic(rule: Any, target: dict[str, Any], event: Any) -> None:
    arn = parse_arn(target["Arn"])
    refusal = service_publish_refusal(_EVENTS_PRINCIPAL, target["Arn"], _source(rule))
    if refusal is not None:
        missing = refusal.endswith("does not exist")
        _failed(rule, target, event, "NO_RESOURCE" if missing else "NO_PERMISSIONS", refusal)
        return
    message = _target_input(target, event)
    sns_backends[arn.account][arn.region].publish(message=message, arn=target["Arn"])


def _target_input(target: dict[str, Any], event: Any) -> str:
    """What EventBridge sends the target: the event, or what the target's InputTransformer makes of it."""
    transformer = target.get("InputTransformer", {})
    body: Any = EventTemplateParser.parse(
        input_template=transformer.get("InputTemplate"),
        input_paths_map=transformer.get("InputPathsMap", {}),
        event=event,
    )
    return body if isinstance(body, str) else json.dumps(body)


@dataclass(frozen=True)
class LambdaDelivery:
    rule: str
    function_arn: str
    error: str | None


LAMBDA_DELIVERIES: list[LambdaDelivery] = []  # process-wide, like FAILED_DELIVERIES


def _deliver_to_function(rule: Any, target: dict[str, Any], event: Any) -> None:
    arn = parse_arn(target["Arn"])
    backend = lambda_backend(arn.account, arn.region)
    # Lambda Developer Guide ("Granting function access to AWS services"): EventBridge invokes as its
    # service principal, with the rule's ARN and account as the source.
    function_arn = ":".join(str(target["Arn"]).split(":")[:7])  # a qualifier is not the policy's resource
    invoke = Authorization("lambda:InvokeFunction", function_arn, _source(rule))
    if decide_for_service(_EVENTS_PRINCIPAL, arn.account, invoke) is not Decision.ALLOW:
        reason = "the function's policy does not let events.amazonaws.com invoke it"
        _failed(rule, target, event, "NO_PERMISSIONS", reason)
        return
    body = _target_input(target, event)
    headers: dict[str, str] = {}
    error = None
    try:
        backend.invoke(target["Arn"], None, body, {}, headers)
        if headers.get("x-amz-function-error"):
            error = "the function returned an error"
    except Exception as exc:  # the handler raised: EventBridge would retry, then drop it
        error = f"{type(exc).__name__}: {exc}"
    LAMBDA_DELIVERIES.append(LambdaDelivery(rule.name, target["Arn"], error))


@moto_patch
def _install_sns_targets() -> None:
    original = Rule.send_to_targets
    if getattr(original, MARKER, None) is not None:
        return

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        topics = [t for t in self.targets if parse_arn(t["Arn"]).service == "sns"]
        functions = [t for t in self.targets if parse_arn(t["Arn"]).service == "lambda"]
        if (topics or functions) and self.event_pattern.matches_event(original_event):
            for target in topics:
                _deliver_to_topic(self, target, original_event)
            for target in functions:
                _deliver_to_function(self, target, original_event)
        others = [t for t in self.targets if t not in topics and t not in functions]
        if not others:
            return
        saved, self.targets = self.targets, others
        try:
            original(self, original_event, transform_input)
        finally:
            self.targets = saved

    setattr(send_to_targets, MARKER, "events: SNS targets")
    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]
