"""AWS Config in the simulated account: a recorder of EC2 instances, and rules that evaluate them.

moto 5.2.5 stores Config rules but evaluates none, answers PutEvaluations only in TestMode, and has no
compliance queries. Here, written from the AWS Config Developer Guide and API Reference (not from
tagpatch's code):

- `observe()` is the recorder: it records a configuration item (CI) for every EC2 instance whose
  configuration, tags or state changed since the last one (`ResourceDiscovered` first, then `OK`,
  `ResourceDeleted` once terminated), then runs the rules as Config does:
  - change-triggered rules for each new CI in their scope; a rule is evaluated over every recorded
    resource in scope when it is created;
  - periodic rules (`ScheduledNotification`) when their MaximumExecutionFrequency has passed;
  - a custom Lambda rule is invoked with the documented event (`invokingEvent` a JSON string with
    `configurationItem`, or `configurationItemSummary` when the CI is larger than
    `oversized_bytes`; `ruleParameters`, `resultToken`, `eventLeftScope`, ...). Config may invoke it
    only if the function's resource policy lets config.amazonaws.com do so;
  - managed rules evaluate with the semantics on their rule pages (see MANAGED_RULES).
- PutEvaluations (a correction of moto's TestMode-only handler) checks the result token, at most 100
  evaluations, annotations of at most 256 characters and COMPLIANT / NON_COMPLIANT / NOT_APPLICABLE
  only, and records each call. An evaluation older (by OrderingTimestamp) than the one stored is
  ignored.
- A change of compliance type is put on the default event bus as `Config Rules Compliance Change`
  once the rule's run is over (never from inside the rule's own invocation).
- DescribeComplianceByResource, GetComplianceDetailsByConfigRule, DescribeComplianceByConfigRule
  answer from the recorded evaluations; GetResourceConfigHistory answers from the recorded CIs.

What AWS does not document, and the simulator therefore decides, is listed in docs/simulator.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from moto.awslambda.utils import get_backend as lambda_backend
from moto.config.exceptions import (
    InvalidNextTokenException,
    InvalidParameterValueException,
    InvalidResultTokenException,
    NoSuchConfigRuleException,
    ResourceNotDiscoveredException,
    ValidationException,
)
from moto.config.models import config_backends
from moto.config.responses import ConfigResponse
from moto.ec2.models import ec2_backends
from moto.events.models import events_backends

from tagpatch_local.simulator import executions
from tagpatch_local.simulator.core import backend_state, correction, operation, request_params
from tagpatch_local.simulator.iam import Authorization, Decision
from tagpatch_local.simulator.instances import managed_instances
from tagpatch_local.simulator.resource_policies import decide_for_service

_STATE_ATTR: Final = "tagpatch_config"
INSTANCE: Final = "AWS::EC2::Instance"
PATCH_COMPLIANCE: Final = "AWS::SSM::PatchCompliance"
MANAGED_INSTANCE_INVENTORY: Final = "AWS::SSM::ManagedInstanceInventory"
RECORDER_NAME: Final = "default"
MAX_EVALUATIONS: Final = 100  # PutEvaluations: Evaluations, at most 100 (API Reference)
MAX_ANNOTATION: Final = 256  # Evaluation.Annotation: at most 256 characters
EVALUATION_TYPES: Final = frozenset({"COMPLIANT", "NON_COMPLIANT", "NOT_APPLICABLE"})  # not INSUFFICIENT_DATA
FREQUENCIES: Final[Mapping[str, timedelta]] = {
    "One_Hour": timedelta(hours=1),
    "Three_Hours": timedelta(hours=3),
    "Six_Hours": timedelta(hours=6),
    "Twelve_Hours": timedelta(hours=12),
    "TwentyFour_Hours": timedelta(hours=24),
}
DEFAULT_FREQUENCY: Final = "TwentyFour_Hours"  # a periodic source without one runs daily
# A CI this large is sent as a summary (OversizedConfigurationItemChangeNotification). AWS does not
# give the threshold beyond "exceeds the maximum size" (Lambda's event limit is 256 KB).
OVERSIZED_BYTES: Final = 256 * 1024
CONFIG_PRINCIPAL: Final = "config.amazonaws.com"
SERVICE_ROLE: Final = "aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"
_GONE: Final = frozenset({"terminated"})


@dataclass
class Rule:
    name: str
    arn: str
    rule_id: str
    owner: str  # AWS | CUSTOM_LAMBDA
    identifier: str  # the managed rule's identifier, or the function's ARN
    resource_types: tuple[str, ...]
    parameters: str  # InputParameters, JSON text
    change_triggered: bool
    oversized: bool  # the custom rule subscribes to OversizedConfigurationItemChangeNotification
    frequency: timedelta | None  # periodic, if set
    last_periodic: datetime | None = None
    evaluated_once: bool = False


@dataclass(frozen=True)
class Result:
    compliance: str
    annotation: str | None
    ordering: datetime
    recorded: datetime
    invoked: datetime


@dataclass(frozen=True)
class PutCall:
    rule: str
    evaluations: int
    error: str | None  # the error code AWS would have answered, if any
    at: datetime


@dataclass(frozen=True)
class Invocation:
    rule: str
    message_type: str
    resource_id: str | None
    error: str | None
    at: datetime


@dataclass
class ConfigState:
    recording: bool = False
    oversized_bytes: int = OVERSIZED_BYTES
    rules: dict[str, Rule] = field(default_factory=dict)
    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # resource id -> CIs, oldest first
    fingerprints: dict[str, str] = field(default_factory=dict)
    results: dict[tuple[str, str, str], Result] = field(default_factory=dict)  # (rule, type, id)
    tokens: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # token -> (rule, invoked)
    pending: list[dict[str, Any]] = field(default_factory=list)  # compliance change events to put
    put_calls: list[PutCall] = field(default_factory=list)
    invocations: list[Invocation] = field(default_factory=list)
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def state(account_id: str, region: str) -> ConfigState:
    backend = config_backends[account_id][region]
    return backend_state(backend, _STATE_ATTR, ConfigState)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# --------------------------------------------------------------------------------------------------
# Rules


def put_rule(account_id: str, region: str, properties: Mapping[str, Any]) -> Rule:
    """A rule as AWS::Config::ConfigRule declares it (its Properties, intrinsics resolved)."""
    source = properties["Source"]
    name = str(properties.get("ConfigRuleName") or f"rule-{uuid.uuid4().hex[:8]}")
    details = source.get("SourceDetails") or []
    message_types = {str(d.get("MessageType")) for d in details}
    owner = str(source["Owner"])
    periodic_detail = next((d for d in details if d.get("MessageType") == "ScheduledNotification"), None)
    frequency_name = str(properties.get("MaximumExecutionFrequency") or "")
    if periodic_detail is not None:
        frequency_name = str(periodic_detail.get("MaximumExecutionFrequency") or frequency_name or DEFAULT_FREQUENCY)
    if owner == "CUSTOM_LAMBDA":
        change_triggered = "ConfigurationItemChangeNotification" in message_types
        frequency = FREQUENCIES[frequency_name] if periodic_detail is not None else None
    else:  # a managed rule: its trigger type is on its rule page; the ones here are change-triggered
        change_triggered = True
        frequency = FREQUENCIES[frequency_name] if frequency_name else None
    scope = properties.get("Scope") or {}
    rule_id = f"config-rule-{hashlib.sha256(name.encode()).hexdigest()[:6]}"
    rule = Rule(
        name=name,
        arn=f"arn:aws:config:{region}:{account_id}:config-rule/{rule_id}",
        rule_id=rule_id,
        owner=owner,
        identifier=str(source["SourceIdentifier"]),
        resource_types=tuple(str(t) for t in scope.get("ComplianceResourceTypes") or ()),
        parameters=str(properties.get("InputParameters") or "{}")
        if not isinstance(properties.get("InputParameters"), Mapping)
        else json.dumps(properties["InputParameters"]),
        change_triggered=change_triggered,
        oversized="OversizedConfigurationItemChangeNotification" in message_types,
        frequency=frequency,
    )
    state(account_id, region).rules[name] = rule
    return rule


def start_recorder(
    account_id: str, region: str, now: Callable[[], datetime], resource_types: Iterable[str] | None = None
) -> None:
    """Put and start the account's configuration recorder (moto's, so DescribeConfigurationRecorders
    answers it): every supported type, or only `resource_types`."""
    backend = config_backends[account_id][region]
    group: dict[str, Any] = {"allSupported": True, "includeGlobalResourceTypes": False}
    if resource_types is not None:
        group = {"allSupported": False, "includeGlobalResourceTypes": False, "resourceTypes": sorted(resource_types)}
    role = f"arn:aws:iam::{account_id}:role/{SERVICE_ROLE}"
    backend.put_configuration_recorder({"name": RECORDER_NAME, "roleARN": role, "recordingGroup": group})
    # Started directly: StartConfigurationRecorder wants a delivery channel, which nothing here reads.
    backend.recorders[RECORDER_NAME].status.start()
    found = state(account_id, region)
    found.recording = True
    found.now = now


def records(account_id: str, region: str, resource_type: str) -> bool:
    """Does a started recorder of the account record `resource_type` (its recording group, as the
    Config Developer Guide describes allSupported, inclusion and exclusion)?"""
    for recorder in config_backends[account_id][region].recorders.values():
        if not recorder.status.recording:
            continue
        group = recorder.recording_group
        strategy = (group.recording_strategy or {}).get("useOnly")
        excluded = set((group.exclusion_by_resource_types or {}).get("resourceTypes") or ())
        if strategy == "EXCLUSION_BY_RESOURCE_TYPES":
            return resource_type not in excluded
        if group.all_supported or strategy == "ALL_SUPPORTED_RESOURCE_TYPES":
            return True
        return resource_type in set(group.resource_types or ())
    return False


# --------------------------------------------------------------------------------------------------
# The recorder


def _instance_configuration(account_id: str, region: str, instance: Any) -> dict[str, Any]:
    """The CI's `configuration`: DescribeInstances' instance in Config's lowerCamel keys (the subset used)."""
    backend = ec2_backends[account_id][region]
    association = backend.iam_instance_profile_associations.get(instance.id)
    profile = None
    if association is not None and getattr(association, "state", "associated") == "associated":
        profile = {"arn": association.iam_instance_profile.arn, "id": association.association_id}
    launched = getattr(instance, "launch_time", None)
    return {
        "instanceId": instance.id,
        "imageId": getattr(instance, "image_id", None),
        "instanceType": getattr(instance, "instance_type", None),
        "launchTime": str(launched) if launched else None,
        "platform": getattr(instance, "platform", None),
        "state": {"code": int(instance._state.code), "name": str(instance._state.name)},
        "tags": [{"key": k, "value": v} for k, v in sorted(backend.tags.get(instance.id, {}).items())],
        "iamInstanceProfile": profile,
    }


def _all_instances(account_id: str, region: str) -> list[Any]:
    backend = ec2_backends[account_id][region]
    return [instance for reservation in backend.reservations.values() for instance in reservation.instances]


def _make_item(account_id: str, region: str, instance: Any, status: str, now: datetime) -> dict[str, Any]:
    configuration = _instance_configuration(account_id, region, instance)
    tags = {str(t["key"]): str(t["value"]) for t in configuration["tags"]}
    body = json.dumps(configuration, sort_keys=True)
    return {
        "version": "1.3",
        "accountId": account_id,
        "configurationItemCaptureTime": _iso(now),
        "configurationItemStatus": status,
        "configurationStateId": str(int(now.timestamp() * 1000)),
        "configurationItemMD5Hash": "",
        "ARN": f"arn:aws:ec2:{region}:{account_id}:instance/{instance.id}",
        "resourceType": INSTANCE,
        "resourceId": instance.id,
        "resourceName": None,
        "awsRegion": region,
        "availabilityZone": getattr(getattr(instance, "placement", None), "zone", None) or f"{region}a",
        "resourceCreationTime": _launch_iso(configuration["launchTime"]),
        "tags": tags,
        "relatedEvents": [],
        "relationships": [],
        "configuration": json.loads(body) if status != "ResourceDeleted" else None,
        "supplementaryConfiguration": {},
    }


def _launch_iso(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return _iso(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def _fingerprint(account_id: str, region: str, instance: Any) -> str:
    configuration = _instance_configuration(account_id, region, instance)
    return hashlib.sha256(json.dumps(configuration, sort_keys=True).encode()).hexdigest()


def observe(account_id: str, region: str) -> int:
    """Record what changed, run the rules that fall due, and deliver compliance changes. Returns CIs recorded.

    Does nothing until the recorder is started (an account without a recorder evaluates nothing).
    """
    found = state(account_id, region)
    if not found.recording:
        return 0
    now = found.now()
    changed: list[dict[str, Any]] = []
    instances = _all_instances(account_id, region) if records(account_id, region, INSTANCE) else []
    for instance in sorted(instances, key=lambda i: i.id):
        state_name = str(instance._state.name)
        history = found.items.get(instance.id, [])
        if history and history[-1]["configurationItemStatus"] == "ResourceDeleted":
            continue
        fingerprint = _fingerprint(account_id, region, instance)
        if found.fingerprints.get(instance.id) == fingerprint:
            continue
        found.fingerprints[instance.id] = fingerprint
        status = "ResourceDeleted" if state_name in _GONE else ("OK" if history else "ResourceDiscovered")
        item = _make_item(account_id, region, instance, status, now)
        found.items.setdefault(instance.id, []).append(item)
        changed.append(item)
    for rule in list(found.rules.values()):
        if not rule.evaluated_once:
            # A new rule evaluates every recorded resource in its scope.
            rule.evaluated_once = True
            latest = [history[-1] for history in found.items.values()]
            _run_change(account_id, region, found, rule, latest, now)
            rule.last_periodic = now if rule.frequency is not None else None
            continue
        if rule.owner == "AWS":
            # A managed rule also follows resources the recorder keeps apart from the instance (the SSM
            # managed instance inventory, patch compliance): judge every instance again; only a
            # changed verdict is recorded as a change.
            _run_change(account_id, region, found, rule, [h[-1] for h in found.items.values()], now)
        elif rule.change_triggered and changed:
            _run_change(account_id, region, found, rule, changed, now)
        if (
            rule.owner != "AWS"
            and rule.frequency is not None
            and (rule.last_periodic is None or now - rule.last_periodic >= rule.frequency)
        ):
            # Runs once for however many periods the clock jumped: nothing changes between ticks here.
            _run_periodic(account_id, region, found, rule, now)
            rule.last_periodic = now
    deliver_changes(account_id, region)
    return len(changed)


# --------------------------------------------------------------------------------------------------
# Evaluating


def _in_scope(rule: Rule, resource_type: str) -> bool:
    return not rule.resource_types or resource_type in rule.resource_types


def _run_change(
    account_id: str, region: str, found: ConfigState, rule: Rule, items: Iterable[Mapping[str, Any]], now: datetime
) -> None:
    for item in items:
        if rule.owner == "AWS":
            _managed(account_id, region, found, rule, item, now)
        elif _in_scope(rule, str(item["resourceType"])):
            _invoke_for_item(account_id, region, found, rule, item, now)


def run_periodic_now(account_id: str, region: str, rule_name: str) -> None:
    """Run one rule's periodic evaluation at the clock's time, as its schedule would (benchmarks time
    the daily run alone with it); compliance changes wait for the next observe() to be delivered."""
    found = state(account_id, region)
    rule = found.rules[rule_name]
    now = found.now()
    _run_periodic(account_id, region, found, rule, now)
    rule.last_periodic = now


def _run_periodic(account_id: str, region: str, found: ConfigState, rule: Rule, now: datetime) -> None:
    if rule.owner == "AWS":
        for history in found.items.values():
            _managed(account_id, region, found, rule, history[-1], now)
        return
    invoking = {
        "awsAccountId": account_id,
        "notificationCreationTime": _iso(now),
        "messageType": "ScheduledNotification",
        "recordVersion": "1.0",
    }
    _invoke(account_id, region, found, rule, invoking, None, False, now)


def _invoke_for_item(
    account_id: str, region: str, found: ConfigState, rule: Rule, item: Mapping[str, Any], now: datetime
) -> None:
    size = len(json.dumps(item))
    if size > found.oversized_bytes:
        if not rule.oversized:
            return  # the rule did not subscribe to oversized notifications: Config does not invoke it
        keys = (
            "configurationItemCaptureTime",
            "configurationItemStatus",
            "configurationStateId",
            "resourceType",
            "resourceId",
            "resourceName",
            "awsRegion",
            "availabilityZone",
            "resourceCreationTime",
        )
        summary = {key: item.get(key) for key in keys}
        summary |= {"ARN": item["ARN"], "awsAccountId": account_id, "changeType": "UPDATE"}
        summary |= {"configurationItemVersion": "1.3", "configurationStateMd5Hash": ""}
        invoking: dict[str, Any] = {
            "configurationItemSummary": summary,
            "messageType": "OversizedConfigurationItemChangeNotification",
            "notificationCreationTime": _iso(now),
            "recordVersion": "1.0",
        }
    else:
        invoking = {
            "configurationItemDiff": None,
            "configurationItem": item,
            "notificationCreationTime": _iso(now),
            "messageType": "ConfigurationItemChangeNotification",
            "recordVersion": "1.3",
        }
    _invoke(account_id, region, found, rule, invoking, str(item["resourceId"]), False, now)


def _allows_config(account_id: str, region: str, function_arn: str) -> bool:
    """Whether the function's policy lets Config invoke it. Config's guide grants it with
    `--source-account`; whether Config's invocation also carries aws:SourceArn is not documented, so
    the simulator gives only aws:SourceAccount (docs/simulator.md)."""
    invoke = Authorization("lambda:InvokeFunction", function_arn, {"aws:SourceAccount": (account_id,)})
    return decide_for_service(CONFIG_PRINCIPAL, account_id, invoke) is Decision.ALLOW


def _invoke(
    account_id: str,
    region: str,
    found: ConfigState,
    rule: Rule,
    invoking: Mapping[str, Any],
    resource_id: str | None,
    left_scope: bool,
    now: datetime,
) -> None:
    message_type = str(invoking["messageType"])
    if not _allows_config(account_id, region, rule.identifier):
        found.invocations.append(
            Invocation(rule.name, message_type, resource_id, "the function's policy does not let Config invoke it", now)
        )
        return
    token = base64.b64encode(uuid.uuid4().bytes * 4).decode()
    found.tokens[token] = (rule.name, now)
    event = {
        "version": "1.0",
        "invokingEvent": json.dumps(invoking),
        "ruleParameters": rule.parameters,
        "resultToken": token,
        "eventLeftScope": left_scope,
        "executionRoleArn": f"arn:aws:iam::{account_id}:role/{SERVICE_ROLE}",
        "configRuleArn": rule.arn,
        "configRuleName": rule.name,
        "configRuleId": rule.rule_id,
        "accountId": account_id,
        "evaluationMode": "DETECTIVE",
    }
    headers: dict[str, str] = {}
    error = None
    try:
        lambda_backend(account_id, region).invoke(rule.identifier, None, json.dumps(event), {}, headers)
        if headers.get("x-amz-function-error"):
            error = "the function returned an error"
    except Exception as exc:  # the handler raised: Config records a failed evaluation run
        error = f"{type(exc).__name__}: {exc}"
    found.invocations.append(Invocation(rule.name, message_type, resource_id, error, now))


# --- managed rules, from their pages in the AWS Config Developer Guide ------------------------------


def _state_name(item: Mapping[str, Any]) -> str:
    configuration = item.get("configuration") or {}
    return str((configuration.get("state") or {}).get("name", "")) if isinstance(configuration, Mapping) else ""


def _profile_attached(
    account_id: str, region: str, rule: Rule, item: Mapping[str, Any]
) -> tuple[str, str | None] | None:
    """ec2-instance-profile-attached: NON_COMPLIANT if no IAM profile is attached to the instance."""
    if item["configurationItemStatus"] == "ResourceDeleted":
        return "NOT_APPLICABLE", None
    configuration = item.get("configuration") or {}
    profile = configuration.get("iamInstanceProfile")
    if not profile:
        return "NON_COMPLIANT", None
    allowed = json.loads(rule.parameters or "{}").get("IamInstanceProfileArnList")
    if allowed and str(profile.get("arn")) not in [a.strip() for a in str(allowed).split(",")]:
        return "NON_COMPLIANT", None
    return "COMPLIANT", None


def _managed_by_ssm(account_id: str, region: str, rule: Rule, item: Mapping[str, Any]) -> tuple[str, str | None] | None:
    """ec2-instance-managed-by-systems-manager: NON_COMPLIANT if the instance is running and its SSM
    Agent is stopped or terminated (not managed); not NON_COMPLIANT while the instance is stopped."""
    if item["configurationItemStatus"] == "ResourceDeleted":
        return "NOT_APPLICABLE", None
    if _state_name(item) != "running":
        return "NOT_APPLICABLE", None  # the page says only "will not return NON_COMPLIANT" (docs/simulator.md)
    node = managed_instances(account_id, region).get(str(item["resourceId"]))
    return ("COMPLIANT" if node is not None and node.ping_status == "Online" else "NON_COMPLIANT"), None


def _patch_compliance(
    account_id: str, region: str, rule: Rule, item: Mapping[str, Any]
) -> tuple[str, str | None] | None:
    """ec2-managedinstance-patch-compliance-status-check: COMPLIANT if the patch compliance status is
    COMPLIANT. Evaluated on the instance's AWS::SSM::PatchCompliance item; none until a patch operation."""
    if item["configurationItemStatus"] == "ResourceDeleted":
        return None
    patch_state = executions.run_state(account_id, region).patch_states.get(str(item["resourceId"]))
    if patch_state is None:
        return None
    compliant = patch_state.missing == 0 and patch_state.failed == 0
    return ("COMPLIANT" if compliant else "NON_COMPLIANT"), None


ManagedRule = Callable[[str, str, Rule, Mapping[str, Any]], "tuple[str, str | None] | None"]
MANAGED_RULES: Final[Mapping[str, tuple[str, ManagedRule]]] = {
    "EC2_INSTANCE_PROFILE_ATTACHED": (INSTANCE, _profile_attached),
    "EC2_INSTANCE_MANAGED_BY_SSM": (INSTANCE, _managed_by_ssm),
    "EC2_MANAGEDINSTANCE_PATCH_COMPLIANCE_STATUS_CHECK": (PATCH_COMPLIANCE, _patch_compliance),
}
# What a managed rule evaluates from besides the instance, so the recorder must record it (the rules'
# pages: ec2-instance-managed-by-systems-manager, AWS::SSM::ManagedInstanceInventory;
# ec2-managedinstance-patch-compliance-status-check, AWS::SSM::PatchCompliance). Without it the rule
# has nothing to evaluate and gives no result.
MANAGED_RULE_RECORDS: Final[Mapping[str, frozenset[str]]] = {
    "EC2_INSTANCE_MANAGED_BY_SSM": frozenset({MANAGED_INSTANCE_INVENTORY}),
    "EC2_MANAGEDINSTANCE_PATCH_COMPLIANCE_STATUS_CHECK": frozenset({PATCH_COMPLIANCE}),
}


def _managed(
    account_id: str, region: str, found: ConfigState, rule: Rule, item: Mapping[str, Any], now: datetime
) -> None:
    known = MANAGED_RULES.get(rule.identifier)
    if known is None:
        found.invocations.append(
            Invocation(
                rule.name, "managed", str(item["resourceId"]), f"managed rule {rule.identifier} is not simulated", now
            )
        )
        return
    resource_type, judge = known
    if not _in_scope(rule, resource_type):
        return
    if not all(records(account_id, region, needed) for needed in MANAGED_RULE_RECORDS.get(rule.identifier, ())):
        return
    verdict = judge(account_id, region, rule, item)
    if verdict is None:
        return
    compliance, annotation = verdict
    record(found, account_id, region, rule, resource_type, str(item["resourceId"]), compliance, annotation, now, now)


# --------------------------------------------------------------------------------------------------
# Results and compliance change events


def record(
    found: ConfigState,
    account_id: str,
    region: str,
    rule: Rule,
    resource_type: str,
    resource_id: str,
    compliance: str,
    annotation: str | None,
    ordering: datetime,
    invoked: datetime,
) -> None:
    key = (rule.name, resource_type, resource_id)
    old = found.results.get(key)
    if old is not None and ordering < old.ordering:
        return  # an older evaluation never replaces a newer one
    now = found.now()
    new = Result(compliance, annotation, ordering, now, invoked)
    found.results[key] = new
    if old is not None and old.compliance == compliance:
        return
    detail: dict[str, Any] = {
        "resourceId": resource_id,
        "awsRegion": region,
        "awsAccountId": account_id,
        "configRuleName": rule.name,
        "recordVersion": "1.0",
        "configRuleARN": rule.arn,
        "messageType": "ComplianceChangeNotification",
        "newEvaluationResult": _result_detail(rule.name, resource_type, resource_id, new),
        "notificationCreationTime": _iso(now),
        "resourceType": resource_type,
    }
    if old is not None:
        detail["oldEvaluationResult"] = _result_detail(rule.name, resource_type, resource_id, old)
    found.pending.append(detail)


def _result_detail(rule: str, resource_type: str, resource_id: str, result: Result) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "evaluationResultIdentifier": {
            "evaluationResultQualifier": {
                "configRuleName": rule,
                "resourceType": resource_type,
                "resourceId": resource_id,
                "evaluationMode": "DETECTIVE",
            },
            "orderingTimestamp": _iso(result.ordering),
        },
        "complianceType": result.compliance,
        "resultRecordedTime": _iso(result.recorded),
        "configRuleInvokedTime": _iso(result.invoked),
    }
    if result.annotation:
        detail["annotation"] = result.annotation
    return detail


def deliver_changes(account_id: str, region: str) -> int:
    """Put the pending compliance change events on the default bus (after the rules' runs)."""
    found = state(account_id, region)
    pending, found.pending = found.pending, []
    backend = events_backends[account_id][region]
    for detail in pending:
        backend.put_events(
            [
                {
                    "Source": "aws.config",
                    "DetailType": "Config Rules Compliance Change",
                    "Detail": json.dumps(detail),
                    "Resources": [],
                }
            ]
        )
    return len(pending)


# --------------------------------------------------------------------------------------------------
# The API


def _timestamp(value: Any) -> datetime:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    text = str(value)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParameterValueException(f"OrderingTimestamp {text!r} is not a timestamp") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@correction(
    "PutEvaluations",
    service="config",
    response_class=ConfigResponse,
    why="moto answers PutEvaluations only in TestMode and keeps nothing; rules need their results recorded",
)
def _put_evaluations(response: Any) -> dict[str, Any]:
    account_id, region = response.current_account, response.region
    found = state(account_id, region)
    params = request_params(response)
    evaluations = params.get("Evaluations") or []
    token = str(params.get("ResultToken") or "")
    now = found.now()
    rule_name = found.tokens.get(token, ("", now))[0]

    def refuse(error: Exception, code: str) -> Exception:
        found.put_calls.append(PutCall(rule_name, len(evaluations), code, now))
        return error

    if not token or token not in found.tokens:
        raise refuse(InvalidResultTokenException(), "InvalidResultTokenException")
    if len(evaluations) > MAX_EVALUATIONS:
        raise refuse(
            ValidationException(
                f"1 validation error detected: Value at 'evaluations' failed to satisfy constraint: Member must "
                f"have length less than or equal to {MAX_EVALUATIONS}"
            ),
            "ValidationException",
        )
    for index, evaluation in enumerate(evaluations):
        annotation = evaluation.get("Annotation")
        if annotation is not None and not 1 <= len(str(annotation)) <= MAX_ANNOTATION:
            raise refuse(
                ValidationException(
                    f"1 validation error detected: Value at 'evaluations.{index + 1}.member.annotation' failed to "
                    f"satisfy constraint: Member must have length less than or equal to {MAX_ANNOTATION}"
                ),
                "ValidationException",
            )
        if evaluation.get("ComplianceType") not in EVALUATION_TYPES:
            raise refuse(
                InvalidParameterValueException(
                    f"The compliance type {evaluation.get('ComplianceType')!r} is not valid for PutEvaluations; "
                    "use COMPLIANT, NON_COMPLIANT or NOT_APPLICABLE"
                ),
                "InvalidParameterValueException",
            )
    found.put_calls.append(PutCall(rule_name, len(evaluations), None, now))
    if params.get("TestMode"):
        return {"FailedEvaluations": []}
    rule = found.rules.get(rule_name)
    invoked = found.tokens[token][1]
    for evaluation in evaluations:
        if rule is None:
            break
        record(
            found,
            account_id,
            region,
            rule,
            str(evaluation["ComplianceResourceType"]),
            str(evaluation["ComplianceResourceId"]),
            str(evaluation["ComplianceType"]),
            evaluation.get("Annotation"),
            _timestamp(evaluation["OrderingTimestamp"]),
            invoked,
        )
    return {"FailedEvaluations": []}


def _page(
    params: Mapping[str, Any], items: list[Any], limit_key: str, default: int, maximum: int
) -> tuple[list[Any], str | None]:
    limit = params.get(limit_key) or default
    if not isinstance(limit, int) or not 0 <= limit <= maximum:
        raise InvalidParameterValueException(f"{limit_key} must be from 0 to {maximum}")
    limit = limit or default
    token = params.get("NextToken")
    start = 0
    if token:
        try:
            start = int(base64.b64decode(str(token)).decode())
        except (ValueError, binascii.Error):
            raise InvalidNextTokenException() from None
    end = start + limit
    return items[start:end], (base64.b64encode(str(end).encode()).decode() if end < len(items) else None)


def _evaluation_result(rule: str, key: tuple[str, str, str], result: Result) -> dict[str, Any]:
    item: dict[str, Any] = {
        "EvaluationResultIdentifier": {
            "EvaluationResultQualifier": {
                "ConfigRuleName": rule,
                "ResourceType": key[1],
                "ResourceId": key[2],
                "EvaluationMode": "DETECTIVE",
            },
            "OrderingTimestamp": result.ordering,
        },
        "ComplianceType": result.compliance,
        "ResultRecordedTime": result.recorded,
        "ConfigRuleInvokedTime": result.invoked,
    }
    if result.annotation:
        item["Annotation"] = result.annotation
    return item


def _types_filter(params: Mapping[str, Any]) -> frozenset[str] | None:
    types = params.get("ComplianceTypes")
    return frozenset(str(t) for t in types) if types else None


@operation("GetComplianceDetailsByConfigRule", service="config", response_class=ConfigResponse)
def _get_compliance_details_by_config_rule(response: Any) -> dict[str, Any]:
    found = state(response.current_account, response.region)
    params = request_params(response)
    name = str(params.get("ConfigRuleName", ""))
    if name not in found.rules:
        raise NoSuchConfigRuleException(name)
    wanted = _types_filter(params)
    items = [
        _evaluation_result(name, key, result)
        for key, result in sorted(found.results.items())
        if key[0] == name and (wanted is None or result.compliance in wanted)
    ]
    page, token = _page(params, items, "Limit", 100, 100)
    return {"EvaluationResults": page, **({"NextToken": token} if token else {})}


def _summary(compliances: list[str]) -> dict[str, Any]:
    non_compliant = sum(1 for c in compliances if c == "NON_COMPLIANT")
    if non_compliant:
        return {
            "ComplianceType": "NON_COMPLIANT",
            "ComplianceContributorCount": {"CappedCount": min(non_compliant, 100), "CapExceeded": non_compliant > 100},
        }
    if "COMPLIANT" in compliances:
        return {"ComplianceType": "COMPLIANT"}
    if compliances:
        return {"ComplianceType": "NOT_APPLICABLE"}
    return {"ComplianceType": "INSUFFICIENT_DATA"}


@operation("DescribeComplianceByResource", service="config", response_class=ConfigResponse)
def _describe_compliance_by_resource(response: Any) -> dict[str, Any]:
    found = state(response.current_account, response.region)
    params = request_params(response)
    resource_type, resource_id = params.get("ResourceType"), params.get("ResourceId")
    if resource_id and not resource_type:
        raise InvalidParameterValueException("ResourceType is required with ResourceId")
    grouped: dict[tuple[str, str], list[str]] = {}
    for (_, kind, identifier), result in sorted(found.results.items()):
        if (resource_type and kind != resource_type) or (resource_id and identifier != resource_id):
            continue
        grouped.setdefault((kind, identifier), []).append(result.compliance)
    wanted = _types_filter(params)
    items = []
    for (kind, identifier), compliances in sorted(grouped.items()):
        summary = _summary(compliances)
        if wanted is None or summary["ComplianceType"] in wanted:
            items.append({"ResourceType": kind, "ResourceId": identifier, "Compliance": summary})
    page, token = _page(params, items, "Limit", 100, 100)
    return {"ComplianceByResources": page, **({"NextToken": token} if token else {})}


@operation("DescribeComplianceByConfigRule", service="config", response_class=ConfigResponse)
def _describe_compliance_by_config_rule(response: Any) -> dict[str, Any]:
    found = state(response.current_account, response.region)
    params = request_params(response)
    names = [str(n) for n in params.get("ConfigRuleNames") or []] or sorted(found.rules)
    for name in names:
        if name not in found.rules:
            raise NoSuchConfigRuleException(name)
    wanted = _types_filter(params)
    items = []
    for name in names:
        summary = _summary([r.compliance for key, r in found.results.items() if key[0] == name])
        if wanted is None or summary["ComplianceType"] in wanted:
            items.append({"ConfigRuleName": name, "Compliance": summary})
    return {"ComplianceByConfigRules": items}


_INSTANCE_ID: Final = re.compile(r"^i-[0-9a-f]+$")


@correction(
    "GetResourceConfigHistory",
    service="config",
    response_class=ConfigResponse,
    why="moto records no EC2 instances; the simulated recorder's configuration items answer instead",
)
def _get_resource_config_history(response: Any) -> dict[str, Any]:
    found = state(response.current_account, response.region)
    params = request_params(response)
    resource_type, resource_id = str(params.get("resourceType", "")), str(params.get("resourceId", ""))
    history = found.items.get(resource_id) if resource_type == INSTANCE else None
    if not history:
        raise ResourceNotDiscoveredException(resource_type, resource_id)
    limit = params.get("limit") or 10
    if not isinstance(limit, int) or not 0 <= limit <= 100:
        raise InvalidParameterValueException("limit must be from 0 to 100")
    items = []
    for item in reversed(history[-(limit or 10) :]):
        converted = {
            "version": item["version"],
            "accountId": item["accountId"],
            "configurationItemCaptureTime": _timestamp(item["configurationItemCaptureTime"]),
            "configurationItemStatus": item["configurationItemStatus"],
            "configurationStateId": item["configurationStateId"],
            "arn": item["ARN"],
            "resourceType": item["resourceType"],
            "resourceId": item["resourceId"],
            "awsRegion": item["awsRegion"],
            "availabilityZone": item["availabilityZone"],
            "tags": item["tags"],
            "relatedEvents": [],
            "relationships": [],
            "configuration": json.dumps(item["configuration"]) if item["configuration"] is not None else "null",
            "supplementaryConfiguration": {},
        }
        if item.get("resourceCreationTime"):
            converted["resourceCreationTime"] = _timestamp(item["resourceCreationTime"])
        items.append(converted)
    return {"configurationItems": items}
