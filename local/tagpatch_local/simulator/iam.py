"""IAM in the simulated account: a request signed by an assumed role is allowed only if its policies say so.

moto's own check (`moto/iam/access_control.py`) is off unless a test counts requests, and even then
it ignores Resource and Condition. This module replaces moto's two authorisation hooks
(`_authenticate_and_authorize_normal_action` and `..._s3_action`) for every service:

- A request signed with credentials from STS AssumeRole is evaluated against the role's inline
  policies, as IAM's policy evaluation logic documents it: an explicit Deny wins, then any Allow,
  otherwise an implicit deny. Action, NotAction, Resource, NotResource and Condition are honoured.
- Any other request (the runner's own "testing" keys: seeding, assertions, the state machine's
  service calls) is the account's root and is not evaluated.

What a request is authorised as (IAM action, resource ARN, condition keys) comes from the Service
Authorization Reference, per operation, in `authorizations()`; a denial answers in the service's own
protocol with AWS's wording. Resource-based policies (bucket, key, topic and queue policies) are
evaluated beside the role's by `resource_policies.decide_for_role`; SCPs, permission boundaries and
session policies are not (see docs/simulator.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final

from moto.core.authorization import ActionAuthenticatorMixin
from werkzeug.exceptions import HTTPException

from tagpatch_local.simulator.core import MARKER, moto_patch

PARTITION: Final = "aws"

# Operations whose IAM action has another name (Service Authorization Reference, "Actions" tables).
ACTION_NAMES: Final[Mapping[str, str]] = {
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:ListObjects": "s3:ListBucket",
    "s3:HeadObject": "s3:GetObject",
    "s3:HeadBucket": "s3:ListBucket",
    "s3:ListBucketVersions": "s3:ListBucketVersions",
    "s3:ListObjectVersions": "s3:ListBucketVersions",
}

# SSM operations whose resource is the maintenance window named by WindowId (resource type
# `maintenancewindow`, arn:${Partition}:ssm:${Region}:${Account}:maintenancewindow/${ResourceId}).
SSM_WINDOW_OPERATIONS: Final = frozenset(
    {
        "GetMaintenanceWindow",
        "UpdateMaintenanceWindow",
        "DeleteMaintenanceWindow",
        "RegisterTargetWithMaintenanceWindow",
        "UpdateMaintenanceWindowTarget",
        "DeregisterTargetFromMaintenanceWindow",
        "RegisterTaskWithMaintenanceWindow",
        "UpdateMaintenanceWindowTask",
        "DeregisterTaskFromMaintenanceWindow",
        "DescribeMaintenanceWindowTargets",
        "DescribeMaintenanceWindowTasks",
        "GetMaintenanceWindowTask",
        "DescribeMaintenanceWindowExecutions",
    }
)
# SSM operations whose resource is the patch baseline named by BaselineId (resource type
# `patchbaseline`). RegisterPatchBaselineForPatchGroup is authorised on the baseline only: the SAR
# lists no patch-group resource type or condition key.
SSM_BASELINE_OPERATIONS: Final = frozenset(
    {
        "GetPatchBaseline",
        "UpdatePatchBaseline",
        "DeletePatchBaseline",
        "RegisterPatchBaselineForPatchGroup",
        "DeregisterPatchBaselineForPatchGroup",
        "RegisterDefaultPatchBaseline",
        "DescribeEffectivePatchesForPatchBaseline",
    }
)
# ResourceTypeForTagging -> the SAR resource type in the ARN.
SSM_TAGGABLE: Final[Mapping[str, str]] = {
    "MaintenanceWindow": "maintenancewindow",
    "PatchBaseline": "patchbaseline",
    "Document": "document",
    "Parameter": "parameter",
    "ManagedInstance": "managed-instance",
}
# Operations that create a resource with its tags; SSM also authorises ssm:AddTagsToResource.
SSM_TAG_ON_CREATE: Final[Mapping[str, str]] = {
    "CreateMaintenanceWindow": "maintenancewindow",
    "CreatePatchBaseline": "patchbaseline",
}
# Operations that pass a role to SSM in ServiceRoleArn (iam:PassRole, iam:PassedToService).
SSM_PASSES_ROLE: Final = frozenset({"RegisterTaskWithMaintenanceWindow", "UpdateMaintenanceWindowTask"})


# --------------------------------------------------------------------------------------------------
# The request as IAM sees it


@dataclass(frozen=True)
class Authorization:
    """One check a request needs: an IAM action on a resource, with the request's condition keys."""

    action: str  # service:Action as written in policies
    resource: str  # an ARN, or "*" where the action has no resource-level permissions
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # condition key -> values


@dataclass(frozen=True)
class Principal:
    role_name: str
    session_name: str
    account: str

    @property
    def arn(self) -> str:
        return f"arn:{PARTITION}:sts::{self.account}:assumed-role/{self.role_name}/{self.session_name}"


class Decision(Enum):
    ALLOW = "allow"
    IMPLICIT_DENY = "implicit deny"
    EXPLICIT_DENY = "explicit deny"
    # Resource-based policies (simulator/resource_policies.py): a Deny there, or a resource (a KMS
    # key) whose policy must allow and does not.
    RESOURCE_EXPLICIT_DENY = "explicit deny in a resource-based policy"
    RESOURCE_IMPLICIT_DENY = "no resource-based policy allows"


@dataclass(frozen=True)
class Caller:
    """Who makes a request, as a resource-based policy's Principal element names it.

    `aws` holds the ARNs an AWS principal answers to (an assumed role's session and role ARN, or an
    account's root ARN and id); `service` a service principal such as events.amazonaws.com.
    """

    aws: frozenset[str] = frozenset()
    service: str | None = None


# --------------------------------------------------------------------------------------------------
# Policy evaluation


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


@dataclass(frozen=True)
class _Glob:
    pattern: str
    ignore_case: bool

    def matches(self, value: str) -> bool:
        return _glob(self.pattern, self.ignore_case).fullmatch(value) is not None


_GLOB_CACHE: dict[tuple[str, bool], re.Pattern[str]] = {}


def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """IAM wildcards: `*` any run of characters (including `/` and `:`), `?` any one character."""
    key = (pattern, ignore_case)
    if key not in _GLOB_CACHE:
        regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
        _GLOB_CACHE[key] = re.compile(regex, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)
    return _GLOB_CACHE[key]


def action_matches(pattern: str, action: str) -> bool:
    # Action names are case-insensitive; service prefixes too.
    return _Glob(pattern, ignore_case=True).matches(action)


def resource_matches(pattern: str, resource: str) -> bool:
    # ARNs are case-sensitive. A request for "*" (no resource-level permissions) matches only "*".
    if resource == "*":
        return pattern == "*"
    return _Glob(pattern, ignore_case=False).matches(resource)


_STRING_OPERATORS: Final[Mapping[str, Callable[[str, str], bool]]] = {
    "StringEquals": lambda policy, value: policy == value,
    "StringEqualsIgnoreCase": lambda policy, value: policy.lower() == value.lower(),
    "StringLike": lambda policy, value: _Glob(policy, ignore_case=False).matches(value),
    "ArnEquals": lambda policy, value: policy == value,
    "ArnLike": lambda policy, value: _Glob(policy, ignore_case=False).matches(value),
    "Bool": lambda policy, value: policy.lower() == value.lower(),
}
_NEGATED: Final[Mapping[str, str]] = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


class UnsupportedPolicyError(ValueError):
    """The policy uses an operator the simulator does not evaluate: refuse rather than guess."""


def _lookup(context: Mapping[str, tuple[str, ...]], key: str) -> tuple[str, ...] | None:
    # Condition key names are case-insensitive.
    lowered = key.lower()
    for name, values in context.items():
        if name.lower() == lowered:
            return values
    return None


def condition_holds(operator: str, key: str, policy_values: Any, context: Mapping[str, tuple[str, ...]]) -> bool:
    """One condition operator on one key, per IAM's documented semantics."""
    wanted = [str(v).lower() if isinstance(v, bool) else str(v) for v in _as_list(policy_values)]
    present = _lookup(context, key)
    qualifier, _, name = operator.rpartition(":")
    if_exists = name.endswith("IfExists")
    name = name.removesuffix("IfExists")
    if name == "Null":
        # Null true: the key must be absent; false: present.
        return (present is None) == (wanted[0].lower() == "true")
    if present is None:
        if qualifier == "ForAllValues":
            return True  # vacuously true: every (zero) value matches
        if if_exists:
            return True
        # A negated operator on a missing key matches; any other does not.
        return name in _NEGATED
    negated = name in _NEGATED
    base = _NEGATED.get(name, name)
    compare = _STRING_OPERATORS.get(base)
    if compare is None:
        raise UnsupportedPolicyError(f"condition operator {operator} is not evaluated by the simulator")

    def one(value: str) -> bool:
        hit = any(compare(policy, value) for policy in wanted)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(one(value) for value in present)
    if qualifier == "ForAnyValue" or len(present) != 1:
        return any(one(value) for value in present)
    return one(present[0])


def principal_matches(element: Any, caller: Caller) -> bool:
    """Whether a Principal element names the caller. "*" is everyone; {"AWS": "*"} every AWS
    principal (not a service); an account id stands for the account's root ARN."""
    if element == "*":
        return True
    if not isinstance(element, Mapping):
        return False
    for kind, names in element.items():
        for name in _as_list(names):
            if kind == "Service" and caller.service is not None and str(name) == caller.service:
                return True
            if kind == "AWS" and caller.service is None:
                wanted = f"arn:{PARTITION}:iam::{name}:root" if str(name).isdigit() else str(name)
                if wanted == "*" or wanted in caller.aws:
                    return True
    return False


def statement_applies(statement: Mapping[str, Any], request: Authorization, caller: Caller | None = None) -> bool:
    """Whether a statement applies to a request. With a caller, the statement is from a resource-based
    policy and its Principal (or NotPrincipal) must name the caller."""
    if caller is not None:
        if "Principal" in statement:
            if not principal_matches(statement["Principal"], caller):
                return False
        elif "NotPrincipal" in statement:
            if principal_matches(statement["NotPrincipal"], caller):
                return False
        else:
            return False
    if "Action" in statement:
        if not any(action_matches(p, request.action) for p in _as_list(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(action_matches(p, request.action) for p in _as_list(statement["NotAction"])):
            return False
    else:
        return False
    if "Resource" in statement:
        if not any(resource_matches(p, request.resource) for p in _as_list(statement["Resource"])):
            return False
    elif "NotResource" in statement:
        if any(resource_matches(p, request.resource) for p in _as_list(statement["NotResource"])):
            return False
    else:
        return False
    for operator, keys in (statement.get("Condition") or {}).items():
        for key, values in keys.items():
            if not condition_holds(operator, key, values, request.context):
                return False
    return True


def evaluate(policies: Iterable[Mapping[str, Any]], request: Authorization, caller: Caller | None = None) -> Decision:
    """Policy evaluation: explicit Deny, then Allow, else implicit deny. Without a caller the policies
    are identity-based; with one, resource-based (each statement must name the caller)."""
    allowed = False
    for policy in policies:
        for statement in _as_list(policy.get("Statement")):
            if not statement_applies(statement, request, caller):
                continue
            if statement.get("Effect") == "Deny":
                return Decision.EXPLICIT_DENY
            if statement.get("Effect") == "Allow":
                allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


# --------------------------------------------------------------------------------------------------
# From a request to the checks it needs (the per-operation ARN table)


def _ssm_tags(params: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    tags = {str(t.get("Key")): str(t.get("Value", "")) for t in params.get("Tags") or ()}
    context: dict[str, tuple[str, ...]] = {f"aws:RequestTag/{key}": (value,) for key, value in tags.items()}
    if tags:
        context["aws:TagKeys"] = tuple(tags)
    return context


def _resource_tags(tags: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    context: dict[str, tuple[str, ...]] = {}
    for key, value in tags.items():
        context[f"aws:ResourceTag/{key}"] = (value,)
        context[f"ssm:resourceTag/{key}"] = (value,)
    return context


def ssm_arn(region: str, account: str, resource_type: str, resource_id: str) -> str:
    if resource_id.startswith("arn:"):
        return resource_id  # AWS-managed baselines are named by their full ARN (in AWS's accounts)
    return f"arn:{PARTITION}:ssm:{region}:{account}:{resource_type}/{resource_id}"


# Step Functions operations authorised on the state machine (Service Authorization Reference:
# resource type stateMachine).
STATE_MACHINE_OPERATIONS: Final = frozenset({"ListExecutions", "StartExecution", "DescribeStateMachine"})


# EventBridge Scheduler (Service Authorization Reference): CreateSchedule, GetSchedule, UpdateSchedule
# and DeleteSchedule on resource type `schedule`, arn:${Partition}:scheduler:${Region}:${Account}:
# schedule/${GroupName}/${ScheduleName}; Create and Update also need iam:PassRole on the target's
# role (dependent action). ListSchedules and ListScheduleGroups have no resource type ("*"); the
# group operations act on `schedule-group`, ...:schedule-group/${GroupName}.
SCHEDULER_SCHEDULE_OPERATIONS: Final = frozenset({"CreateSchedule", "GetSchedule", "UpdateSchedule", "DeleteSchedule"})
SCHEDULER_GROUP_OPERATIONS: Final = frozenset({"CreateScheduleGroup", "GetScheduleGroup", "DeleteScheduleGroup"})


def scheduler_authorizations(
    operation: str, params: Mapping[str, Any], uri: str, region: str, account: str
) -> list[Authorization]:
    from urllib.parse import parse_qs, unquote, urlsplit  # noqa: PLC0415

    parts = urlsplit(uri)
    name = unquote(parts.path.rstrip("/").rsplit("/", 1)[-1])
    query = parse_qs(parts.query)
    action = f"scheduler:{operation}"
    base = f"arn:{PARTITION}:scheduler:{region}:{account}"
    if operation in SCHEDULER_SCHEDULE_OPERATIONS:
        group = str(params.get("GroupName") or (query.get("groupName") or ["default"])[0])
        checks = [Authorization(action, f"{base}:schedule/{group}/{name}")]
        role = (params.get("Target") or {}).get("RoleArn") if isinstance(params.get("Target"), dict) else None
        if operation in {"CreateSchedule", "UpdateSchedule"} and role:
            checks.append(
                Authorization("iam:PassRole", str(role), {"iam:PassedToService": ("scheduler.amazonaws.com",)})
            )
        return checks
    if operation in SCHEDULER_GROUP_OPERATIONS:
        return [Authorization(action, f"{base}:schedule-group/{name}")]
    return [Authorization(action, "*")]


TagReader = Callable[[str, str], Mapping[str, str]]
"""(SSM ResourceTypeForTagging, resource id) -> the resource's tags."""


def ssm_authorizations(
    operation: str, params: Mapping[str, Any], region: str, account: str, tags_of: TagReader
) -> list[Authorization]:
    action = f"ssm:{operation}"
    if operation in SSM_WINDOW_OPERATIONS and params.get("WindowId"):
        window = str(params["WindowId"])
        checks = [
            Authorization(
                action,
                ssm_arn(region, account, "maintenancewindow", window),
                _resource_tags(tags_of("MaintenanceWindow", window)),
            )
        ]
        role = params.get("ServiceRoleArn")
        if operation in SSM_PASSES_ROLE and role:
            checks.append(Authorization("iam:PassRole", str(role), {"iam:PassedToService": ("ssm.amazonaws.com",)}))
        return checks
    if operation in SSM_BASELINE_OPERATIONS and params.get("BaselineId"):
        baseline = str(params["BaselineId"])
        tags = {} if baseline.startswith("arn:") else tags_of("PatchBaseline", baseline)
        return [Authorization(action, ssm_arn(region, account, "patchbaseline", baseline), _resource_tags(tags))]
    if operation in {"AddTagsToResource", "RemoveTagsFromResource", "ListTagsForResource"}:
        kind, resource_id = str(params.get("ResourceType", "")), str(params.get("ResourceId", ""))
        arn_type = SSM_TAGGABLE.get(kind)
        if arn_type is None:
            return [Authorization(action, "*")]
        context = _resource_tags(tags_of(kind, resource_id))
        if operation == "AddTagsToResource":
            context.update(_ssm_tags(params))
        elif operation == "RemoveTagsFromResource":
            context["aws:TagKeys"] = tuple(str(k) for k in params.get("TagKeys") or ())
        return [Authorization(action, ssm_arn(region, account, arn_type, resource_id), context)]
    if operation in SSM_TAG_ON_CREATE:
        request_tags = _ssm_tags(params)
        checks = [Authorization(action, "*", request_tags)]
        if params.get("Tags"):
            # Which ARN SSM checks ssm:AddTagsToResource against for tag-on-create is not documented;
            # the new resource's id is not known yet, so the check is on that type's every ARN.
            pending = ssm_arn(region, account, SSM_TAG_ON_CREATE[operation], "*")
            checks.append(Authorization("ssm:AddTagsToResource", pending, request_tags))
        return checks
    return [Authorization(action, "*")]


def s3_authorizations(operation: str, bucket: str | None, key: str | None, prefix: str | None) -> list[Authorization]:
    action = ACTION_NAMES.get(f"s3:{operation}", f"s3:{operation}")
    if not bucket:
        return [Authorization(action, "*")]
    if key and action not in {"s3:ListBucket", "s3:ListBucketVersions"}:
        return [Authorization(action, f"arn:{PARTITION}:s3:::{bucket}/{key}")]
    context = {"s3:prefix": (prefix,)} if prefix is not None else {}
    return [Authorization(action, f"arn:{PARTITION}:s3:::{bucket}", context)]


# --------------------------------------------------------------------------------------------------
# Denials, in each protocol's shape


class AccessDenied(HTTPException):
    """A denial as the service's protocol sends it (moto returns HTTPExceptions as they are)."""

    def __init__(self, status: int, body: str, content_type: str, code: str) -> None:
        super().__init__(description=body)
        self.code = status
        self.error_code = code
        self.content_type = content_type

    def get_body(self, *args: Any, **kwargs: Any) -> str:
        return str(self.description)

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return [("Content-Type", self.content_type), ("X-Amzn-ErrorType", self.error_code)]


def denial_message(principal: Principal, request: Authorization, decision: Decision) -> str:
    on = "" if request.resource == "*" else f" on resource: {request.resource}"
    why = {
        Decision.EXPLICIT_DENY: "with an explicit deny in an identity-based policy",
        Decision.RESOURCE_EXPLICIT_DENY: "with an explicit deny in a resource-based policy",
        Decision.RESOURCE_IMPLICIT_DENY: f"because no resource-based policy allows the {request.action} action",
    }.get(decision, f"because no identity-based policy allows the {request.action} action")
    return f"User: {principal.arn} is not authorized to perform: {request.action}{on} {why}"


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def denial(protocol: str, service: str, message: str) -> AccessDenied:
    """The error each protocol answers a denied request with."""
    text = _xml_escape(message)
    if protocol in {"json", "rest-json"}:
        body = json.dumps({"__type": "AccessDeniedException", "message": message})
        return AccessDenied(400, body, "application/x-amz-json-1.1", "AccessDeniedException")
    if protocol == "ec2":
        body = (
            "<Response><Errors><Error><Code>UnauthorizedOperation</Code>"
            f"<Message>You are not authorized to perform this operation. {text}</Message></Error></Errors>"
            "<RequestID>tagpatch-sim</RequestID></Response>"
        )
        return AccessDenied(403, body, "text/xml", "UnauthorizedOperation")
    if protocol == "rest-xml":  # S3
        body = f"<Error><Code>AccessDenied</Code><Message>{text}</Message><RequestId>tagpatch-sim</RequestId></Error>"
        return AccessDenied(403, body, "application/xml", "AccessDenied")
    code = "AuthorizationError" if service == "sns" else "AccessDenied"
    body = (
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{text}</Message></Error>"
        "<RequestId>tagpatch-sim</RequestId></ErrorResponse>"
    )
    return AccessDenied(403, body, "text/xml", code)


def kms_denial(message: str) -> AccessDenied:
    # SNS's own error for a publisher that may not use the topic's key (KMSAccessDeniedException).
    body = (
        "<ErrorResponse><Error><Type>Sender</Type><Code>KMSAccessDenied</Code>"
        f"<Message>{_xml_escape(message)}</Message></Error><RequestId>tagpatch-sim</RequestId></ErrorResponse>"
    )
    return AccessDenied(400, body, "text/xml", "KMSAccessDenied")


# --------------------------------------------------------------------------------------------------
# The account's state: who signed, what their role allows, what a resource is tagged with


_CREDENTIAL: Final = re.compile(r"Credential=(?P<key>[^/]+)/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/")


def _signature(headers: Mapping[str, str]) -> tuple[str, str, str] | None:
    match = _CREDENTIAL.search(str(headers.get("Authorization") or headers.get("authorization") or ""))
    return (match["key"], match["region"], match["service"]) if match else None


def principal_for(account: str, access_key_id: str) -> Principal | None:
    """The assumed-role session an access key belongs to, or None (the runner's own keys)."""
    from moto.sts.models import sts_backends  # noqa: PLC0415 - moto's backends load lazily

    for assumed in reversed(sts_backends[account][PARTITION].assumed_roles):
        if assumed.access_key_id == access_key_id:
            return Principal(assumed.role_arn.rsplit("/", 1)[-1], assumed.session_name, account)
    return None


def role_policies(account: str, role_name: str) -> list[dict[str, Any]]:
    from moto.iam.models import iam_backends  # noqa: PLC0415

    backend = iam_backends[account][PARTITION]
    documents = []
    for name in backend.list_role_policies(role_name):
        _, document = backend.get_role_policy(role_name, name)
        documents.append(json.loads(document) if isinstance(document, str) else dict(document))
    return documents


def _ssm_tag_reader(account: str, region: str) -> TagReader:
    from moto.ssm.models import ssm_backends  # noqa: PLC0415

    backend = ssm_backends[account][region]

    def tags_of(kind: str, resource_id: str) -> Mapping[str, str]:
        tags: Mapping[str, Mapping[str, str]] = backend._resource_tags.get(kind) or {}
        return dict(tags.get(resource_id) or {})

    return tags_of


def topic_key_arn(account: str, region: str, topic_arn: str) -> str | None:
    from moto.kms.models import kms_backends  # noqa: PLC0415
    from moto.sns.models import sns_backends  # noqa: PLC0415

    topic = sns_backends[account][region].topics.get(topic_arn)
    key_id = getattr(topic, "kms_master_key_id", "") if topic is not None else ""
    if not key_id:
        return None
    if key_id.startswith("arn:"):
        return str(key_id)
    kms = kms_backends[account][region]
    key = kms.keys.get(kms.get_key_id(key_id)) if hasattr(kms, "get_key_id") else kms.keys.get(key_id)
    return str(key.arn) if key is not None else f"arn:{PARTITION}:kms:{region}:{account}:key/{key_id}"


# --------------------------------------------------------------------------------------------------
# The hooks


def _params(response: Any) -> dict[str, Any]:
    """The request's parameters: JSON body, or the query/form string's first values."""
    body = response.body
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if isinstance(body, str) and body.startswith("{"):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = {}
        return parsed if isinstance(parsed, dict) else {}
    return {
        key: values[0] if isinstance(values, list) and values else values
        for key, values in response.querystring.items()
    }


# Signing names that differ from botocore's model names.
_MODEL_NAMES: Final = {"states": "stepfunctions"}


def _protocol(service: str) -> str:
    from tagpatch_local.simulator.core import service_model  # noqa: PLC0415

    try:
        return str(service_model(_MODEL_NAMES.get(service, service)).protocol)
    except Exception:  # an unknown signing name: answer as the query protocol does
        return "query"


# Every check that was allowed, with the role that made it, since the last reset (for the least-privilege
# test: which statement each call used).
_ALLOWED: list[tuple[str, Authorization]] = []


def allowed_checks() -> list[tuple[str, Authorization]]:
    """(role name, check) for every allowed check since reset_allowed_checks()."""
    return list(_ALLOWED)


def reset_allowed_checks() -> None:
    _ALLOWED.clear()


def decide(principal: Principal, policies: Sequence[Mapping[str, Any]], check: Authorization) -> Decision:
    """The role's identity-based policies together with the resource's own policy, if it has one."""
    from tagpatch_local.simulator import resource_policies  # noqa: PLC0415 - it builds on this module

    return resource_policies.decide_for_role(principal, policies, check)


def enforce(principal: Principal, checks: Sequence[Authorization], service: str) -> None:
    """Raise the service's denial unless every check is allowed."""
    policies = role_policies(principal.account, principal.role_name)
    for check in checks:
        decision = decide(principal, policies, check)
        if decision is not Decision.ALLOW:
            raise denial(_protocol(service), service, denial_message(principal, check, decision))
    _ALLOWED.extend((principal.role_name, check) for check in checks)


def authorize_normal_action(response: Any) -> None:
    signed = _signature(response.headers)
    if signed is None:
        return
    access_key, region, service = signed
    account = response.current_account
    principal = principal_for(account, access_key)
    if principal is None:
        return
    operation = response._get_action()
    params = _params(response)
    region = getattr(response, "region", region) or region
    if service == "ssm":
        checks = ssm_authorizations(operation, params, region, account, _ssm_tag_reader(account, region))
    elif service == "sns" and operation in ("Publish", "PublishBatch") and params.get("TopicArn"):
        # There is no sns:PublishBatch action: a batch needs sns:Publish on the topic (Amazon SNS API
        # Reference, PublishBatch; the Service Authorization Reference lists no PublishBatch action).
        topic = str(params["TopicArn"])
        checks = [Authorization("sns:Publish", topic)]
        enforce(principal, checks, service)
        key_arn = topic_key_arn(account, region, topic)
        if key_arn is not None:
            # SNS uses the publisher's permissions on the topic's KMS key (Amazon SNS Developer
            # Guide, "Encryption at rest": kms:GenerateDataKey* and kms:Decrypt).
            policies = role_policies(account, principal.role_name)
            for action in ("kms:GenerateDataKey", "kms:Decrypt"):
                check = Authorization(action, key_arn, {"kms:EncryptionContext:aws:sns:topicArn": (topic,)})
                decision = decide(principal, policies, check)
                if decision is not Decision.ALLOW:
                    raise kms_denial(denial_message(principal, check, decision))
                _ALLOWED.append((principal.role_name, check))
        return
    elif service == "sqs" and params.get("QueueUrl"):
        # SQS actions on a queue are authorised on its ARN (Service Authorization Reference: resource type queue).
        _, _, _, queue_account, queue = str(params["QueueUrl"]).rstrip("/").rsplit("/", 4)[-5:]
        checks = [Authorization(f"sqs:{operation}", f"arn:{PARTITION}:sqs:{region}:{queue_account}:{queue}")]
    elif service == "scheduler":
        checks = scheduler_authorizations(operation, params, response.uri, region, account)
    elif service == "states" and operation in STATE_MACHINE_OPERATIONS and params.get("stateMachineArn"):
        checks = [Authorization(f"states:{operation}", str(params["stateMachineArn"]))]
    else:
        checks = [Authorization(f"{service}:{operation}", "*")]
    enforce(principal, checks, service)


def authorize_s3_action(response: Any, bucket_name: str | None, key_name: str | None) -> None:
    signed = _signature(response.headers)
    if signed is None:
        return
    access_key, _, _ = signed
    account = response.current_account
    principal = principal_for(account, access_key)
    if principal is None:
        return
    operation = str(response.data.get("Action", ""))
    prefix = response.querystring.get("prefix")
    prefix_value = (prefix[0] if isinstance(prefix, list) else prefix) if prefix is not None else None
    if operation in {"ListBucket", "ListObjectsV2", "ListObjects"} and prefix_value is None:
        prefix_value = ""  # a listing without Prefix is the prefix ""
    checks = s3_authorizations(operation, bucket_name, key_name, prefix_value)
    try:
        _enforce_s3(response, principal, account, checks, bucket_name, key_name)
    except AccessDenied as denied:
        if str(getattr(response, "method", "")).upper() == "HEAD":
            denied.description = ""  # a HEAD response has no body: the caller sees only the 403
        raise


def _enforce_s3(
    response: Any,
    principal: Principal,
    account: str,
    checks: Sequence[Authorization],
    bucket_name: str | None,
    key_name: str | None,
) -> None:
    enforce(principal, checks, "s3")
    if (
        checks[0].action == "s3:GetObject"
        and bucket_name
        and key_name
        and not _object_exists(account, bucket_name, key_name)
    ):
        # S3 answers a missing key with 404 only to a caller who may list the bucket (GetObject and
        # HeadObject API reference, "Permissions"). Whether that implicit check supplies s3:prefix is
        # not documented: the simulator supplies none, so only an unconditioned grant reveals a 404.
        listing = Authorization("s3:ListBucket", f"arn:{PARTITION}:s3:::{bucket_name}")
        if decide(principal, role_policies(account, principal.role_name), listing) is not Decision.ALLOW:
            raise denial("rest-xml", "s3", "Access Denied")
        _ALLOWED.append((principal.role_name, listing))


def _object_exists(account: str, bucket_name: str, key_name: str) -> bool:
    from moto.s3.models import s3_backends  # noqa: PLC0415

    bucket = s3_backends[account][PARTITION].buckets.get(bucket_name)
    if bucket is None:
        return True  # NoSuchBucket is answered as it is
    return bucket.keys.get(key_name) is not None


@moto_patch
def _install_authoriser() -> None:
    """Replace moto's authorisation hooks for every service (see the module docstring)."""
    if getattr(ActionAuthenticatorMixin._authenticate_and_authorize_normal_action, MARKER, None) is not None:
        return
    moto_normal = ActionAuthenticatorMixin._authenticate_and_authorize_normal_action
    moto_s3 = ActionAuthenticatorMixin._authenticate_and_authorize_s3_action

    def normal(self: Any, resource: str = "*") -> None:
        authorize_normal_action(self)
        moto_normal(self, resource)

    def s3(self: Any, bucket_name: str | None = None, key_name: str | None = None) -> None:
        authorize_s3_action(self, bucket_name, key_name)
        moto_s3(self, bucket_name, key_name)

    setattr(normal, MARKER, "iam: normal actions")
    setattr(s3, MARKER, "iam: s3 actions")
    ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = normal  # type: ignore[method-assign]
    ActionAuthenticatorMixin._authenticate_and_authorize_s3_action = s3  # type: ignore[method-assign]
