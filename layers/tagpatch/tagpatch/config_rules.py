"""The AWS Config custom rule for the patching tags, and what owners are told when a rule's verdict changes.

The rule judges tags with the same `classify()` TagValidation uses, so Config and the cycle never
disagree about an instance's tags. SSM management and the instance profile are judged by Config's
managed rules (EC2_INSTANCE_MANAGED_BY_SSM, EC2_INSTANCE_PROFILE_ATTACHED), so this rule looks only at
tags: an instance whose tags are fine is COMPLIANT here even if SSM cannot reach it.

Config invokes the rule with an event whose `invokingEvent` is a JSON string:
- ConfigurationItemChangeNotification: `configurationItem` (the instance, with tags and state);
- OversizedConfigurationItemChangeNotification: `configurationItemSummary` only; the item is read
  with GetResourceConfigHistory;
- ScheduledNotification: the periodic run; every instance is read with DescribeInstances.
Evaluations go back with PutEvaluations, at most 100 per call, with the item's capture time (or the
notification's time) as OrderingTimestamp.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from botocore.exceptions import ClientError

from tagpatch.aws import client, error_code, paginate
from tagpatch.classes import CLASSES
from tagpatch.cycle import parse_time
from tagpatch.errors import InvalidConfigEvent, InvalidCycleInput
from tagpatch.exceptions import ExceptionSet
from tagpatch.tags import InstanceFacts, classify
from tagpatch.validation import owner_of

ComplianceType = Literal["COMPLIANT", "NON_COMPLIANT", "NOT_APPLICABLE", "INSUFFICIENT_DATA"]
RESOURCE_TYPE: Final = "AWS::EC2::Instance"
TOLD_RESOURCE_TYPES: Final = frozenset({RESOURCE_TYPE, "AWS::SSM::PatchCompliance"})
PUT_EVALUATIONS_BATCH: Final = 100  # PutEvaluations takes at most 100 evaluations
ANNOTATION_LIMIT: Final = 256  # Evaluation.Annotation maximum length
GONE_STATES: Final = frozenset({"terminated", "shutting-down"})
DELETED_STATUSES: Final = frozenset({"ResourceDeleted", "ResourceDeletedNotRecorded", "ResourceNotRecorded"})
DESCRIBE_PAGE: Final = 1000


@dataclass(frozen=True)
class Evaluation:
    resource_id: str
    compliance: ComplianceType
    annotation: str | None
    ordering_timestamp: datetime

    def to_api(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "ComplianceResourceType": RESOURCE_TYPE,
            "ComplianceResourceId": self.resource_id,
            "ComplianceType": self.compliance,
            "OrderingTimestamp": self.ordering_timestamp,
        }
        if self.annotation:
            item["Annotation"] = self.annotation
        return item


def shorten(text: str, limit: int = ANNOTATION_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _tag_dict(tags: object) -> dict[str, str]:
    """Tags from a configuration item: `tags` is a map; `configuration.tags` a list of {key, value}."""
    if isinstance(tags, Mapping):
        return {str(k): "" if v is None else str(v) for k, v in tags.items()}
    found: dict[str, str] = {}
    if isinstance(tags, list):
        for item in tags:
            if isinstance(item, Mapping):
                key = item.get("key", item.get("Key"))
                value = item.get("value", item.get("Value"))
                if key is not None:
                    found[str(key)] = "" if value is None else str(value)
    return found


def evaluate_instance(
    instance_id: str,
    tags: Mapping[str, str],
    state: str | None,
    policy_windows: Collection[str],
    exceptions: ExceptionSet,
    when: datetime,
    *,
    timezone: str = "UTC",
) -> Evaluation:
    """The tag rule's verdict on one instance, from the same classification TagValidation makes
    (as of `when`, one-off windows read in `timezone`, the zone schedule-tag windows get)."""
    if (state or "").lower() in GONE_STATES:  # terminated: nothing left to patch
        return Evaluation(instance_id, "NOT_APPLICABLE", None, when)
    # Only the tags are judged here; the managed rules judge SSM and the instance profile.
    facts = InstanceFacts(instance_id, tags, "running", True, "Online", True)
    result = classify(facts, policy_windows, now=when, timezone=timezone)
    match = exceptions.match(instance_id, tags, when)
    excepted = ""
    if match.live is not None:
        excepted = f"Excepted until {match.live.expires.isoformat()} ({match.live.reason}). "
    if CLASSES[result.instance_class].flagged_by_tag_rule:
        first = result.reasons[0]
        more = f" (+{len(result.reasons) - 1} more in the tag report)" if len(result.reasons) > 1 else ""
        return Evaluation(instance_id, "NON_COMPLIANT", shorten(f"{excepted}{first}{more}"), when)
    return Evaluation(instance_id, "COMPLIANT", shorten(excepted.strip()) or None, when)


def _capture_time(item: Mapping[str, Any], fallback: datetime) -> datetime:
    raw = item.get("configurationItemCaptureTime")
    if isinstance(raw, datetime):
        return raw
    if isinstance(raw, str) and raw:
        return parse_time(raw, "configurationItemCaptureTime")
    return fallback


def _configuration(item: Mapping[str, Any]) -> Mapping[str, Any]:
    configuration = item.get("configuration")
    if isinstance(configuration, str):  # GetResourceConfigHistory returns it as JSON text
        try:
            configuration = json.loads(configuration)
        except ValueError:
            return {}
    return configuration if isinstance(configuration, Mapping) else {}


def evaluate_item(
    item: Mapping[str, Any],
    policy_windows: Collection[str],
    exceptions: ExceptionSet,
    now: datetime,
    *,
    left_scope: bool = False,
    timezone: str = "UTC",
) -> Evaluation | None:
    """The verdict on one configuration item; None when it is not an instance."""
    if item.get("resourceType") != RESOURCE_TYPE or not item.get("resourceId"):
        return None
    instance_id = str(item["resourceId"])
    when = _capture_time(item, now)
    configuration = _configuration(item)
    state = configuration.get("state")
    state_name = str(state.get("name", "")) if isinstance(state, Mapping) else None
    if left_scope or item.get("configurationItemStatus") in DELETED_STATUSES:
        return Evaluation(instance_id, "NOT_APPLICABLE", None, when)
    tags = _tag_dict(item.get("tags")) or _tag_dict(configuration.get("tags"))
    # A rule's evaluation time for exceptions is the item's capture time: an old item is judged as of then.
    return evaluate_instance(instance_id, tags, state_name, policy_windows, exceptions, when, timezone=timezone)


def read_oversized_item(summary: Mapping[str, Any]) -> Mapping[str, Any]:
    """The full configuration item behind an oversized notification's summary."""
    response = client("config").get_resource_config_history(
        resourceType=str(summary["resourceType"]), resourceId=str(summary["resourceId"]), limit=1
    )
    items = response.get("configurationItems", [])
    if not items:
        return {**summary, "configurationItemStatus": "ResourceNotRecorded"}
    item = dict(items[0])
    item.setdefault("resourceType", summary["resourceType"])
    return item


def read_all_instances(
    policy_windows: Collection[str], exceptions: ExceptionSet, now: datetime, *, timezone: str = "UTC"
) -> Iterator[Evaluation]:
    """The periodic run: every instance EC2 lists, judged as of the notification's time."""
    for reservation in paginate(client("ec2").describe_instances, "Reservations", MaxResults=DESCRIBE_PAGE):
        for instance in reservation.get("Instances", []):
            tags = _tag_dict(instance.get("Tags"))
            state = str(instance.get("State", {}).get("Name", ""))
            yield evaluate_instance(
                str(instance["InstanceId"]), tags, state, policy_windows, exceptions, now, timezone=timezone
            )


def notification_time(event: Mapping[str, Any]) -> datetime:
    """When Config made the notification (the rule's evaluation time); InvalidConfigEvent if unreadable."""
    try:
        invoking = json.loads(str(event["invokingEvent"]))
        return parse_time(str(invoking["notificationCreationTime"]), "notificationCreationTime")
    except (KeyError, ValueError, TypeError, InvalidCycleInput) as error:
        raise InvalidConfigEvent(
            f"not an AWS Config rule event (no readable notificationCreationTime): {error}"
        ) from error


def is_periodic(event: Mapping[str, Any]) -> bool:
    """Is this the rule's daily run (ScheduledNotification)?"""
    try:
        invoking = json.loads(str(event.get("invokingEvent", "")))
    except ValueError:
        return False
    return isinstance(invoking, Mapping) and invoking.get("messageType") == "ScheduledNotification"


def evaluations_for_event(
    event: Mapping[str, Any], policy_windows: Collection[str], exceptions: ExceptionSet, *, timezone: str = "UTC"
) -> tuple[list[Evaluation], str]:
    """What one invocation evaluates, and the result token to send it with."""
    try:
        invoking = json.loads(str(event["invokingEvent"]))
        token = str(event["resultToken"])
    except (KeyError, ValueError) as error:
        raise InvalidConfigEvent(f"not an AWS Config rule event: {error}") from error
    if not isinstance(invoking, Mapping):
        raise InvalidConfigEvent("invokingEvent is not a JSON object")
    message_type = str(invoking.get("messageType", ""))
    now = notification_time(event)
    left_scope = event.get("eventLeftScope") is True
    if message_type == "ScheduledNotification":
        return list(read_all_instances(policy_windows, exceptions, now, timezone=timezone)), token
    if message_type == "OversizedConfigurationItemChangeNotification":
        item: Mapping[str, Any] = read_oversized_item(invoking["configurationItemSummary"])
    elif message_type == "ConfigurationItemChangeNotification":
        item = invoking["configurationItem"]
    else:
        raise InvalidConfigEvent(f"messageType {message_type!r} is not one this rule handles")
    found = evaluate_item(item, policy_windows, exceptions, now, left_scope=left_scope, timezone=timezone)
    return ([found] if found is not None else []), token


def batches(evaluations: Sequence[Evaluation], size: int = PUT_EVALUATIONS_BATCH) -> Iterator[Sequence[Evaluation]]:
    for start in range(0, len(evaluations), size):
        yield evaluations[start : start + size]


def put_evaluations(evaluations: Sequence[Evaluation], token: str) -> int:
    """Send the evaluations, 100 a call; returns how many Config reported as failed."""
    failed = 0
    config = client("config")
    for batch in batches(evaluations):
        response = config.put_evaluations(Evaluations=[e.to_api() for e in batch], ResultToken=token)
        failed += len(response.get("FailedEvaluations", []))
    return failed


# --- the notifier: compliance changes to owners -----------------------------------------------

RULE_KINDS: Final[Mapping[str, str]] = {
    "patch-tags": "patch_tags",
    "managed-by-ssm": "managed_by_ssm",
    "instance-profile": "instance_profile",
    "patch-compliance": "patch_compliance",
}
FIXES: Final[Mapping[str, tuple[str, str]]] = {
    "patch_tags": ("its patching tags are missing or invalid", "see the annotation for the tag and the fix"),
    "managed_by_ssm": (
        "Systems Manager does not manage it, so it cannot be patched",
        "attach an instance profile whose role has AmazonSSMManagedInstanceCore (or enable Default Host "
        "Management Configuration), and check that the SSM agent runs and reaches the ssm, ssmmessages and "
        "ec2messages endpoints",
    ),
    "instance_profile": (
        "it has no IAM instance profile, so the SSM agent cannot register",
        "attach an instance profile whose role has AmazonSSMManagedInstanceCore",
    ),
    "patch_compliance": (
        "Patch Manager reports missing or failed patches",
        "check its last patch run (patch-results in the tagpatch report) and patch it in its next window",
    ),
}


def rule_kind(rule_name: str, prefix: str) -> str | None:
    if not rule_name.startswith(prefix):
        return None
    return RULE_KINDS.get(rule_name.removeprefix(prefix))


@dataclass(frozen=True)
class ComplianceChange:
    rule: str
    kind: str
    resource_id: str
    new: str
    old: str | None
    annotation: str | None


def compliance_change(event: Mapping[str, Any], prefix: str) -> ComplianceChange | None:
    """The change an EventBridge `Config Rules Compliance Change` event reports, if it is worth telling.

    None when the rule is not one of tagpatch's, the resource is not an instance, or the compliance
    type did not change (a re-evaluation with the same verdict is never re-sent). Only NON_COMPLIANT,
    and COMPLIANT after NON_COMPLIANT (fixed), are told.
    """
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        return None
    rule = str(detail.get("configRuleName", ""))
    kind = rule_kind(rule, prefix)
    if kind is None or detail.get("resourceType") not in TOLD_RESOURCE_TYPES:
        return None
    new = detail.get("newEvaluationResult") or {}
    old = detail.get("oldEvaluationResult") or {}
    new_type = str(new.get("complianceType", ""))
    old_type = str(old["complianceType"]) if old.get("complianceType") else None
    if new_type == old_type:
        return None
    if new_type != "NON_COMPLIANT" and not (new_type == "COMPLIANT" and old_type == "NON_COMPLIANT"):
        return None
    annotation = new.get("annotation")
    # A patch compliance item names its instance; AWS does not document its id's form beyond that,
    # so the instance id is taken from the end of it.
    resource_id = str(detail.get("resourceId", "")).rsplit("/", 1)[-1]
    return ComplianceChange(rule, kind, resource_id, new_type, old_type, str(annotation) if annotation else None)


def describe_instance(instance_id: str) -> tuple[str | None, str | None]:
    """(Name, Owner) of an instance; (None, None) if EC2 no longer knows it."""
    try:
        response = client("ec2").describe_instances(InstanceIds=[instance_id])
    except ClientError as error:  # terminated and gone, or not an instance id at all
        if error_code(error) in ("InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"):
            return None, None
        raise
    for reservation in response.get("Reservations", []):
        for instance in reservation.get("Instances", []):
            tags = _tag_dict(instance.get("Tags"))
            return tags.get("Name"), owner_of(tags)
    return None, None


def message_for(change: ComplianceChange, name: str | None) -> tuple[str, str]:
    label = f"{change.resource_id} ({name or 'no Name tag'})"
    wrong, fix = FIXES[change.kind]
    if change.new == "COMPLIANT":
        return (
            shorten(f"tagpatch: {label} is compliant again with {change.rule}", 100),
            f"Instance {label} is COMPLIANT again with AWS Config rule {change.rule}. Nothing to do.",
        )
    lines = [
        f"Instance {label} is NON_COMPLIANT with AWS Config rule {change.rule}: {wrong}.",
        f"What to fix: {change.annotation if change.kind == 'patch_tags' and change.annotation else fix}",
    ]
    if change.annotation and change.kind != "patch_tags":
        lines.append(f"Config says: {change.annotation}")
    return shorten(f"tagpatch: {label} is NON_COMPLIANT with {change.rule}", 100), "\n".join(lines)


def publish_change(topic_arn: str, change: ComplianceChange, name: str | None, owner: str) -> str:
    subject, body = message_for(change, name)
    attributes = {
        "owner": {"DataType": "String", "StringValue": owner},
        "rule": {"DataType": "String", "StringValue": change.rule},
        "compliance": {"DataType": "String", "StringValue": change.new},
    }
    response = client("sns").publish(TopicArn=topic_arn, Subject=subject, Message=body, MessageAttributes=attributes)
    return str(response["MessageId"])


def evaluation_counts(evaluations: Iterable[Evaluation]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for evaluation in evaluations:
        counts[evaluation.compliance] = counts.get(evaluation.compliance, 0) + 1
    return counts


# --- what the account's recorder must record ------------------------------------------------------------
# The stack's managed rules evaluate configuration items the account's recorder makes: the rules'
# pages name AWS::SSM::ManagedInstanceInventory for EC2_INSTANCE_MANAGED_BY_SSM and
# AWS::SSM::PatchCompliance for EC2_MANAGEDINSTANCE_PATCH_COMPLIANCE_STATUS_CHECK. A recorder that
# does not record them leaves those rules silent, so the periodic run says so (the recorder is the
# account's, not tagpatch's: it is checked, never changed).


def unrecorded_types(required: Iterable[str], recorders: Sequence[Mapping[str, Any]]) -> list[str]:
    """The types in `required` that no recorder's recording group records (Config Developer Guide:
    all supported types, an inclusion list, or every type but an exclusion list)."""

    def recorded(resource_type: str, group: Mapping[str, Any]) -> bool:
        strategy = (group.get("recordingStrategy") or {}).get("useOnly")
        if strategy == "EXCLUSION_BY_RESOURCE_TYPES":
            return resource_type not in ((group.get("exclusionByResourceTypes") or {}).get("resourceTypes") or ())
        if group.get("allSupported") or strategy == "ALL_SUPPORTED_RESOURCE_TYPES":
            return True
        return resource_type in (group.get("resourceTypes") or ())

    groups = [recorder.get("recordingGroup") or {} for recorder in recorders]
    return [t for t in required if not any(recorded(t, group) for group in groups)]


def read_recorders() -> list[Mapping[str, Any]]:
    """The account's configuration recorders in this Region (there is at most one)."""
    return list(client("config").describe_configuration_recorders().get("ConfigurationRecorders", []))
