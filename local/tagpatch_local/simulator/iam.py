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

from tagpatch_local.simulator import sar
from tagpatch_local.simulator.core import MARKER, SimulatorError, moto_patch

PARTITION: Final = "aws"

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


def condition_holds(operator: str, key: str, policy_values: Any, context: Mapping[str, tuple[str, ...]]) -> bool:  # noqa: PLR0911 - each return is one case of IAM's documented condition semantics
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
    if caller is not None and not _element_covers(statement, "Principal", lambda e: principal_matches(e, caller)):
        return False
    return (
        _element_covers(statement, "Action", lambda e: any(action_matches(p, request.action) for p in _as_list(e)))
        and _element_covers(
            statement, "Resource", lambda e: any(resource_matches(p, request.resource) for p in _as_list(e))
        )
        and all(
            condition_holds(operator, key, values, request.context)
            for operator, keys in (statement.get("Condition") or {}).items()
            for key, values in keys.items()
        )
    )


def _element_covers(statement: Mapping[str, Any], name: str, covers: Callable[[Any], bool]) -> bool:
    """Whether a statement's `name` element covers the request, or its Not`name` element leaves it out;
    a statement with neither element applies to nothing."""
    if name in statement:
        return covers(statement[name])
    if f"Not{name}" in statement:
        return not covers(statement[f"Not{name}"])
    return False


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
# From a request to the checks it needs
#
# The IAM action, the resource types it is authorised on (every required one), their ARN formats and
# the condition keys each supports all come from the Service Authorization Reference (`sar`). What is
# kept by hand, because no published definition says it, is in the four tables below.

# API operations whose IAM action has another name (S3 User Guide, "Amazon S3 actions"; SNS API
# Reference, PublishBatch: a batch is authorised as sns:Publish, there is no sns:PublishBatch action).
ACTION_NAMES: Final[Mapping[str, str]] = {
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:ListObjects": "s3:ListBucket",
    "s3:HeadObject": "s3:GetObject",
    "s3:HeadBucket": "s3:ListBucket",
    "s3:ListObjectVersions": "s3:ListBucketVersions",
    "sns:PublishBatch": "sns:Publish",
    # The pinned SAR has no quicksight:DescribeDashboardDefinition; reading a dashboard's definition is
    # taken as reading the dashboard (an assumption, docs/simulator.md).
    "quicksight:DescribeDashboardDefinition": "quicksight:DescribeDashboard",
}


@dataclass(frozen=True)
class Request:
    """An API request as IAM sees it: the operation, its parameters, and where it was sent."""

    service: str  # the IAM service prefix
    operation: str
    params: Mapping[str, Any]
    region: str
    account: str
    uri: str = ""


ArnParts = Mapping[str, str] | str
"""A resource a request names: values for its ARN format's placeholders, or its whole ARN."""
Locator = Callable[[Request], list[ArnParts]]


def _values(request: Request, name: str) -> list[str]:
    value = request.params.get(name)
    items = value if isinstance(value, list) else [value]
    return [str(item) for item in items if item not in (None, "")]


def _param(placeholder: str, name: str, prefix: str = "") -> Locator:
    """The placeholder is the request parameter `name` (each of a list's items; ids with `prefix` only)."""
    return lambda request: [{placeholder: v} for v in _values(request, name) if v.startswith(prefix)]


def _arn_param(name: str) -> Locator:
    """The request parameter `name` is the resource's ARN."""
    return lambda request: list(_values(request, name))


def _tagged(kind: str, placeholder: str) -> Locator:
    """The resource a tagging call names by ResourceType (SSM's ResourceTypeForTagging) and ResourceId."""
    return lambda request: (
        [{placeholder: v} for v in _values(request, "ResourceId")] if request.params.get("ResourceType") == kind else []
    )


def _id_or_arn(placeholder: str, name: str) -> Locator:
    # An AWS-managed patch baseline is named by its full ARN (in AWS's own account).
    return lambda request: [v if v.startswith("arn:") else {placeholder: v} for v in _values(request, name)]


def _document_read(request: Request) -> list[ArnParts]:
    """DescribeDocument and GetDocument name the document by Name (a name, or a shared one's ARN). Other
    calls whose Name is a document (associations) are not identified here: each needs its own reading."""
    if request.operation not in ("DescribeDocument", "GetDocument"):
        return []
    return _id_or_arn("DocumentName", "Name")(request)


def _names_nothing(request: Request) -> list[ArnParts]:
    return []


def _first(*locators: Locator) -> Locator:
    return lambda request: next((found for locate in locators if (found := locate(request))), [])


def _new_association(request: Request) -> list[ArnParts]:
    # CreateAssociation is authorised on an association that has no id yet: checked on every
    # association's ARN, as a tag on create is (an assumption, docs/simulator.md).
    return [{"AssociationId": "*"}] if request.operation == "CreateAssociation" else []


def _new_on(operation: str, placeholder: str) -> Locator:
    # A resource the operation creates has no id yet: checked on every ARN of its type, as a tag on
    # create is (an assumption, docs/simulator.md).
    return lambda request: [{placeholder: "*"}] if request.operation == operation else []


def _ec2_list(params: Mapping[str, Any], prefix: str) -> list[str]:
    """A list parameter as EC2's query protocol sends it (`<prefix>.1`, `<prefix>.2`, ...)."""
    indexed = ((key[len(prefix) + 1 :], value) for key, value in params.items() if key.startswith(f"{prefix}."))
    return [str(value) for index, value in sorted(indexed, key=lambda item: item[0]) if index.isdigit()]


def _ec2_tags(params: Mapping[str, Any], prefix: str) -> dict[str, str]:
    """Tags as EC2's query protocol sends them (`<prefix>.N.Key`, `<prefix>.N.Value`)."""
    keys = {key[len(prefix) + 1 : -len(".Key")]: value for key, value in params.items() if key.startswith(f"{prefix}.")}
    return {
        str(value): str(params.get(f"{prefix}.{index}.Value", ""))
        for index, value in keys.items()
        if index.isdigit() and f"{prefix}.{index}.Key" in params
    }


def _ec2_tag_specifications(params: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """TagSpecifications by resource type (`TagSpecification.N.ResourceType`, `TagSpecification.N.Tag.M.*`)."""
    found: dict[str, dict[str, str]] = {}
    for key, value in params.items():
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "TagSpecification" and parts[2] == "ResourceType":
            found.setdefault(str(value), {}).update(_ec2_tags(params, f"TagSpecification.{parts[1]}.Tag"))
    return found


def _tagged_ids(id_prefix: str, placeholder: str) -> Locator:
    """The resources an EC2 CreateTags names (`ResourceId.N`) with this id prefix (ami-, snap-)."""
    return lambda request: (
        [{placeholder: v} for v in _ec2_list(request.params, "ResourceId") if v.startswith(id_prefix)]
        if request.operation == "CreateTags"
        else []
    )


def _snapshotted_volumes(request: Request) -> list[ArnParts]:
    """The volumes CreateSnapshots snapshots: every EBS volume attached to the instance it names (the
    simulator sends no exclusions; an ExcludeBootVolume or ExcludeDataVolumeIds request is refused)."""
    if request.operation != "CreateSnapshots":
        return []
    if any(key.startswith(("InstanceSpecification.Exclude",)) for key in request.params):
        raise UnidentifiedResourceError("CreateSnapshots with excluded volumes is not simulated")
    from moto.ec2.models import ec2_backends  # noqa: PLC0415 - moto's backends load lazily

    backend = ec2_backends[request.account][request.region]
    return [
        {"VolumeId": str(mapping.volume_id)}
        for instance_id in _values(request, "InstanceSpecification.InstanceId")
        for _, mapping in backend.get_instance(instance_id).get_block_device_mapping
    ]


def _command_document(request: Request) -> list[ArnParts]:
    """The document SendCommand names in `DocumentName` (an AWS-owned one's ARN has no account)."""
    if request.operation != "SendCommand":
        return []
    return [
        f"arn:{PARTITION}:ssm:{request.region}::document/{name}" if name.startswith("AWS-") else {"DocumentName": name}
        for name in _values(request, "DocumentName")
    ]


def _association_document(request: Request) -> list[ArnParts]:
    """The document an association operation names in `Name`. An AWS-owned document (AWS-...) has
    no account in its ARN (SSM User Guide, "Shared and AWS-owned documents")."""
    if request.operation not in {"CreateAssociation", "UpdateAssociation", "DeleteAssociation", "DescribeAssociation"}:
        return []
    return [
        f"arn:{PARTITION}:ssm:{request.region}::document/{name}" if name.startswith("AWS-") else {"DocumentName": name}
        for name in _values(request, "Name")
    ]


def _queue(request: Request) -> list[ArnParts]:
    # https://sqs.<region>.amazonaws.com/<account>/<name>: the queue's own account fills ${Account}.
    from urllib.parse import urlsplit  # noqa: PLC0415

    return [
        dict(zip(("Account", "QueueName"), urlsplit(url).path.strip("/").split("/"), strict=True))
        for url in _values(request, "QueueUrl")
    ]


def _schedule(request: Request) -> list[ArnParts]:
    # The schedule's name is the URI's last segment; its group the GroupName member (body or query), or
    # "default" when absent (EventBridge Scheduler API Reference).
    from urllib.parse import parse_qs, unquote, urlsplit  # noqa: PLC0415

    parts = urlsplit(request.uri)
    group = request.params.get("GroupName") or (parse_qs(parts.query).get("groupName") or ["default"])[0]
    return [{"GroupName": str(group), "ScheduleName": unquote(parts.path.rstrip("/").rsplit("/", 1)[-1])}]


def _schedule_group(request: Request) -> list[ArnParts]:
    from urllib.parse import unquote, urlsplit  # noqa: PLC0415

    return [{"GroupName": unquote(urlsplit(request.uri).path.rstrip("/").rsplit("/", 1)[-1])}]


def _config_recorders(request: Request) -> list[ArnParts]:
    """The recorders the request names, else every recorder of the account (DescribeConfigurationRecorders
    and ...Status answer all of them). moto keeps no recorder id, so the simulator makes one from the name;
    an account with no recorder is checked on every recorder's ARN. Both are the simulator's assumptions
    (docs/simulator.md)."""
    import hashlib  # noqa: PLC0415

    from moto.config.models import config_backends  # noqa: PLC0415

    names = _values(request, "ConfigurationRecorderNames")
    if not names:
        names = sorted(config_backends[request.account][request.region].recorders)
    if not names:
        return [{"RecorderName": "*", "RecorderId": "*"}]
    return [{"RecorderName": n, "RecorderId": hashlib.sha256(n.encode()).hexdigest()[:32]} for n in names]


def _quicksight_uri(collection: str, placeholder: str) -> Locator:
    """A QuickSight resource named in the URI (/accounts/<account>/<collection>/<id>[/...]); a request to
    the collection itself (ListDashboards) is checked on every resource of the type, as a resource that
    does not exist yet is (an assumption, docs/simulator.md)."""

    def locate(request: Request) -> list[ArnParts]:
        from urllib.parse import unquote, urlsplit  # noqa: PLC0415

        parts = urlsplit(request.uri).path.strip("/").split("/")
        if collection not in parts:
            return []
        index = parts.index(collection)
        return [{placeholder: unquote(parts[index + 1]) if index + 1 < len(parts) else "*"}]

    return locate


def _organizations(resource_type: str) -> Locator:
    """An Organizations account, OU or root the request names by id (ARNs in simulator/organizations.py)."""

    def locate(request: Request) -> list[ArnParts]:
        from tagpatch_local.simulator import organizations  # noqa: PLC0415 - moto's backends load lazily

        return list(organizations.resource_arns(resource_type, request.account, request.params))

    return locate


def _quicksight_data_sources(request: Request) -> list[ArnParts]:
    """CreateDataSet is authorised on the data sources its physical tables read (their DataSourceArn)."""
    tables = request.params.get("PhysicalTableMap")
    if request.operation != "CreateDataSet" or not isinstance(tables, dict):
        return []
    arns: set[str] = {
        str(source["DataSourceArn"])
        for table in tables.values()
        if isinstance(table, dict)
        for source in table.values()
        if isinstance(source, dict) and source.get("DataSourceArn")
    }
    return [*sorted(arns)]


def _glue_table(request: Request) -> list[ArnParts]:
    # The partition operations name the table TableName; GetTable names it Name (Glue API Reference).
    database = request.params.get("DatabaseName")
    table = request.params.get("TableName") or (request.params.get("Name") if request.operation == "GetTable" else None)
    return [{"DatabaseName": str(database), "TableName": str(table)}] if database and table else []


# Which request parameter names each resource type's ARN placeholders (API references, per operation).
# A required resource type with no entry here, or whose parameter is missing, fails the request loudly.
RESOURCE_LOCATORS: Final[Mapping[tuple[str, str], Locator]] = {
    ("ssm", "maintenancewindow"): _first(_param("ResourceId", "WindowId"), _tagged("MaintenanceWindow", "ResourceId")),
    ("ssm", "windowtarget"): _param("WindowTargetId", "WindowTargetId"),
    ("ssm", "windowtask"): _param("WindowTaskId", "WindowTaskId"),
    ("ssm", "patchbaseline"): _first(
        _id_or_arn("PatchBaselineIdResourceId", "BaselineId"), _tagged("PatchBaseline", "PatchBaselineIdResourceId")
    ),
    ("ssm", "instance"): _param("InstanceId", "InstanceIds", prefix="i-"),
    ("ssm", "managed-instance"): _first(
        _param("InstanceId", "InstanceIds", prefix="mi-"), _tagged("ManagedInstance", "InstanceId")
    ),
    ("ssm", "association"): _first(
        _param("AssociationId", "AssociationId"), _tagged("Association", "AssociationId"), _new_association
    ),
    ("ssm", "document"): _first(
        _tagged("Document", "DocumentName"), _document_read, _association_document, _command_document
    ),
    ("ssm", "parameter"): _tagged("Parameter", "ParameterNameWithoutLeadingSlash"),
    # GetAutomationExecution names the execution by its id (the SAR's automation-execution ARN).
    ("ssm", "automation-execution"): _param("AutomationExecutionId", "AutomationExecutionId"),
    # CreateImage (a runbook's aws:createImage): on the instance, and on the image and its snapshots,
    # which it creates. CreateSnapshots (a runbook's aws:executeAwsApi): on the instance its
    # InstanceSpecification names, each volume attached to it, and the snapshots it creates.
    ("ec2", "instance"): _first(
        _param("InstanceId", "InstanceId", prefix="i-"),
        _param("InstanceId", "InstanceSpecification.InstanceId", prefix="i-"),
    ),
    # DeregisterImage and DeleteSnapshot name the one image or snapshot they delete (ImageId, SnapshotId).
    ("ec2", "image"): _first(
        _new_on("CreateImage", "ImageId"), _tagged_ids("ami-", "ImageId"), _param("ImageId", "ImageId", prefix="ami-")
    ),
    ("ec2", "snapshot"): _first(
        _new_on("CreateImage", "SnapshotId"),
        _new_on("CreateSnapshots", "SnapshotId"),
        _tagged_ids("snap-", "SnapshotId"),
        _param("SnapshotId", "SnapshotId", prefix="snap-"),
    ),
    ("ec2", "volume"): _snapshotted_volumes,
    ("s3", "bucket"): _param("BucketName", "Bucket"),
    ("s3", "object"): lambda request: [
        {"BucketName": str(request.params["Bucket"]), "ObjectName": key}
        for key in _values(request, "Key")
        if request.params.get("Bucket")
    ],
    ("sns", "topic"): _arn_param("TopicArn"),
    ("sqs", "queue"): _queue,
    ("states", "statemachine"): _arn_param("stateMachineArn"),
    ("states", "maprun"): _arn_param("mapRunArn"),
    ("states", "execution"): _arn_param("executionArn"),
    ("scheduler", "schedule"): _schedule,
    ("scheduler", "schedule-group"): _schedule_group,
    ("config", "ConfigurationRecorder"): _config_recorders,
    # DescribeAlarms is authorised on each alarm it names (AlarmNames); whether AWS checks a request that
    # names none against alarm:* is not documented, so such a request fails here (docs/simulator.md).
    ("cloudwatch", "alarm"): _param("AlarmName", "AlarmNames"),
    # QuickSight names its resources in the URI (QuickSight API Reference); the SAR's ${ResourceId}.
    ("quicksight", "dashboard"): _quicksight_uri("dashboards", "ResourceId"),
    ("quicksight", "dataset"): _quicksight_uri("data-sets", "ResourceId"),
    ("quicksight", "datasource"): _first(_quicksight_data_sources, _quicksight_uri("data-sources", "ResourceId")),
    # Glue names the database and table in the request; the root catalog is the account's own (SAR).
    ("glue", "rootcatalog"): lambda request: [{}],
    ("glue", "database"): _param("DatabaseName", "DatabaseName"),
    ("glue", "table"): _glue_table,
    ("organizations", "account"): _organizations("account"),
    ("organizations", "organizationalunit"): _organizations("organizationalunit"),
    ("organizations", "root"): _organizations("root"),
}

# Actions for which the SAR marks several resource types required where the API takes exactly one of
# them (ListExecutions: stateMachineArn or mapRunArn; DescribeInstancePatchStates: EC2 instance or
# managed-node ids): the request is authorised on the ones it names, and must name at least one.
ONE_OF_REQUIRED: Final[Mapping[str, frozenset[str]]] = {
    "states:ListExecutions": frozenset({"statemachine", "maprun"}),
    "states:DescribeExecution": frozenset({"execution", "express"}),
    "ssm:DescribeInstancePatchStates": frozenset({"instance", "managed-instance"}),
}

# Roles a request passes to a service (iam:PassRole with iam:PassedToService): the parameter that
# carries the role and the service it goes to (SSM User Guide, maintenance window task roles; the SAR's
# dependent action for Scheduler's CreateSchedule and UpdateSchedule).
PASSES_ROLE: Final[Mapping[str, tuple[tuple[str, ...], str]]] = {
    "ssm:RegisterTaskWithMaintenanceWindow": (("ServiceRoleArn",), "ssm.amazonaws.com"),
    "ssm:UpdateMaintenanceWindowTask": (("ServiceRoleArn",), "ssm.amazonaws.com"),
    "scheduler:CreateSchedule": (("Target", "RoleArn"), "scheduler.amazonaws.com"),
    "scheduler:UpdateSchedule": (("Target", "RoleArn"), "scheduler.amazonaws.com"),
}

# Creating an SSM resource with Tags also checks ssm:AddTagsToResource (SSM User Guide, "Tagging on
# create"); the new resource's id does not exist yet, so the check is on that type's every ARN.
SSM_TAG_ON_CREATE: Final[Mapping[str, str]] = {
    "ssm:CreateMaintenanceWindow": "maintenancewindow",
    "ssm:CreatePatchBaseline": "patchbaseline",
    "ssm:CreateAssociation": "association",
}


class UnidentifiedResourceError(SimulatorError):
    """The SAR requires a resource the simulator cannot identify in the request: never guess `*`."""


TagReader = Callable[[str, str, ArnParts], Mapping[str, str]]
"""(service, SAR resource type, the resource as the request names it) -> its tags."""


def _no_tags(service: str, resource_type: str, parts: ArnParts) -> Mapping[str, str]:
    return {}


def _tag_context(prefix: str, tags: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    return {f"{prefix}{key}": (value,) for key, value in tags.items()}


def _request_context(request: Request) -> dict[str, tuple[str, ...]]:
    """Condition keys from the request itself; each check keeps those its action and resource support."""
    context: dict[str, tuple[str, ...]] = {}
    tags = request.params.get("Tags")
    if isinstance(tags, list) and tags:
        pairs = {str(t.get("Key")): str(t.get("Value", "")) for t in tags if isinstance(t, dict)}
        context.update(_tag_context("aws:RequestTag/", pairs))
        context["aws:TagKeys"] = tuple(pairs)
    elif request.operation == "RemoveTagsFromResource":
        context["aws:TagKeys"] = tuple(_values(request, "TagKeys"))
    elif request.service == "ec2" and request.operation == "CreateTags":
        pairs = _ec2_tags(request.params, "Tag")
        context.update(_tag_context("aws:RequestTag/", pairs))
        context["aws:TagKeys"] = tuple(pairs)
    if "prefix" in request.params:
        context["s3:prefix"] = (str(request.params["prefix"]),)
    return context


def _supported(
    definition: sar.ActionDefinition, type_name: str | None, context: Mapping[str, tuple[str, ...]]
) -> dict[str, tuple[str, ...]]:
    # A key the action and its resource type do not list is absent from the request, as in IAM.
    if not context:
        return {}
    listed = definition.supported_keys(type_name)
    return {key: values for key, values in context.items() if sar.key_supported(key, listed)}


def _arn(request: Request, resource: sar.ResourceType, parts: ArnParts, action: str) -> str:
    if isinstance(parts, str):
        if not sar.arn_has_format(parts, resource.arn):
            raise UnidentifiedResourceError(f"{action}: {parts} is not a {resource.name} ARN ({resource.arn})")
        return parts
    values = {"Partition": PARTITION, "Region": request.region, "Account": request.account, **parts}
    try:
        return sar.fill_arn(resource.arn, values)
    except sar.UnfilledArnError as error:
        raise UnidentifiedResourceError(f"{action} on {resource.name}: {error}") from error


def authorizations(request: Request, tags_of: TagReader = _no_tags) -> list[Authorization]:
    """Every check IAM makes for a request: its action on each resource the SAR requires, and companions."""
    name = f"{request.service}:{request.operation}"
    definition = sar.action(ACTION_NAMES.get(name, name))
    action = definition.action
    context = _request_context(request)
    checks: list[Authorization] = []
    if not definition.resources:
        checks.append(Authorization(action, "*", _supported(definition, None, context)))
    else:
        named = {
            row.type.name: RESOURCE_LOCATORS.get((request.service, row.type.name), _names_nothing)(request)
            for row in definition.resources
        }
        one_of = ONE_OF_REQUIRED.get(action, frozenset())
        missing = [row.type.name for row in definition.resources if row.required and row.type.name not in one_of]
        missing = [type_name for type_name in missing if not named[type_name]]
        if missing or (one_of and not any(named[type_name] for type_name in one_of)):
            wanted = missing or sorted(one_of)
            raise UnidentifiedResourceError(
                f"{action} requires resource type(s) {', '.join(wanted)} ({sar.SOURCE}), which the simulator "
                f"cannot identify in this {request.operation} request"
            )
        if not any(named.values()):
            raise UnidentifiedResourceError(
                f"{action} is authorised on one of {', '.join(r.type.name for r in definition.resources)} "
                f"({sar.SOURCE}), none of which the simulator can identify in this {request.operation} request"
            )
        for row in definition.resources:
            for parts in named[row.type.name]:
                resource_context = {
                    **context,
                    **_tag_context("aws:ResourceTag/", tags_of(request.service, row.type.name, parts)),
                    **_tag_context(f"{request.service}:resourceTag/", tags_of(request.service, row.type.name, parts)),
                }
                arn = _arn(request, row.type, parts, action)
                checks.append(Authorization(action, arn, _supported(definition, row.type.name, resource_context)))
    checks += _companion_checks(request, action, context)
    return checks


def _companion_checks(request: Request, action: str, context: Mapping[str, tuple[str, ...]]) -> list[Authorization]:
    checks: list[Authorization] = []
    if action in PASSES_ROLE:
        path, service = PASSES_ROLE[action]
        role: Any = request.params
        for step in path:
            role = role.get(step) if isinstance(role, dict) else None
        if role:
            pass_role = sar.action("iam:PassRole")
            passed = _supported(pass_role, "role", {"iam:PassedToService": (service,)})
            checks.append(Authorization(pass_role.action, str(role), passed))
    if request.service == "ec2" and request.operation != "CreateTags":
        # EC2 authorises tags a create request puts on what it creates (TagSpecifications) as ec2:CreateTags
        # on those resources, with ec2:CreateAction the creating action (EC2 User Guide, "Grant permission
        # to tag Amazon EC2 resources during creation").
        create_tags = sar.action("ec2:CreateTags")
        for resource_type, pairs in sorted(_ec2_tag_specifications(request.params).items()):
            pending = sar.resource_types("ec2").get(resource_type)
            if pending is None:
                raise UnidentifiedResourceError(f"ec2:CreateTags on a new {resource_type}: no such SAR resource type")
            arn = _arn(request, pending, {key: "*" for key in _placeholders(pending.arn)}, create_tags.action)
            tag_context = {
                "ec2:CreateAction": (request.operation,),
                **_tag_context("aws:RequestTag/", pairs),
                "aws:TagKeys": tuple(pairs),
            }
            checks.append(Authorization(create_tags.action, arn, _supported(create_tags, pending.name, tag_context)))
    if action in SSM_TAG_ON_CREATE and request.params.get("Tags"):
        add_tags = sar.action("ssm:AddTagsToResource")
        pending = sar.resource_types("ssm")[SSM_TAG_ON_CREATE[action]]
        arn = _arn(request, pending, {key: "*" for key in _placeholders(pending.arn)}, add_tags.action)
        checks.append(Authorization(add_tags.action, arn, _supported(add_tags, pending.name, context)))
    return checks


def _placeholders(arn_format: str) -> list[str]:
    return [p for p in re.findall(r"\$\{([^}]+)\}", arn_format) if p not in {"Partition", "Region", "Account"}]


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


def tag_reader(account: str, region: str) -> TagReader:
    """The tags of the resources moto keeps tags for that the simulator reads: SSM's windows, baselines
    and associations, and EC2's images and snapshots."""
    from moto.ec2.models import ec2_backends  # noqa: PLC0415
    from moto.ssm.models import ssm_backends  # noqa: PLC0415

    # SAR resource type -> SSM's ResourceTypeForTagging.
    ssm_kinds = {
        "maintenancewindow": "MaintenanceWindow",
        "patchbaseline": "PatchBaseline",
        "association": "Association",
    }

    def tags_of(service: str, resource_type: str, parts: ArnParts) -> Mapping[str, str]:
        if service == "ec2" and resource_type in ("image", "snapshot") and not isinstance(parts, str):
            (resource_id,) = parts.values()
            ec2_tags: Mapping[str, Mapping[str, str]] = ec2_backends[account][region].tags
            return dict(ec2_tags.get(resource_id) or {})  # a new resource ("*") has none yet
        kind = ssm_kinds.get(resource_type) if service == "ssm" else None
        if kind is None or isinstance(parts, str):
            return {}  # an ARN-named baseline is AWS-managed: AWS's, untagged in this account
        (resource_id,) = parts.values()
        tags: Mapping[str, Mapping[str, str]] = ssm_backends[account][region]._resource_tags.get(kind) or {}
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
_MODEL_NAMES: Final = {"states": "stepfunctions", "monitoring": "cloudwatch"}
# Signing names that differ from the service's IAM prefix (CloudWatch signs as `monitoring`).
IAM_PREFIXES: Final = {"monitoring": "cloudwatch"}


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


def record_allowed(role_name: str, check: Authorization) -> None:
    """Note a check a role's own policies allowed (a module that judges a request itself, like AssumeRole)."""
    _ALLOWED.append((role_name, check))


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


def caller_may(response: Any, service: str, operation: str, params: Mapping[str, Any]) -> bool:
    """Whether the request's caller may also make `operation` with `params`: an action AWS authorises
    inside another request (DeregisterImage's DeleteAssociatedSnapshots, for each snapshot) whose denial
    is part of the answer, not the request's failure. An unsigned caller (the harness) may."""
    signed = _signature(response.headers)
    if signed is None:
        return True
    access_key, region, _ = signed
    account = response.current_account
    principal = principal_for(account, access_key)
    if principal is None:
        return True
    region = getattr(response, "region", region) or region
    checks = authorizations(Request(service, operation, params, region, account), tag_reader(account, region))
    policies = role_policies(account, principal.role_name)
    if any(decide(principal, policies, check) is not Decision.ALLOW for check in checks):
        return False
    _ALLOWED.extend((principal.role_name, check) for check in checks)
    return True


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
    prefix = IAM_PREFIXES.get(service, service)
    if prefix == "sts" and operation == "GetCallerIdentity":
        # "No permissions are required to perform this operation", even under an explicit Deny (STS API
        # Reference, GetCallerIdentity).
        return
    if prefix == "sts" and operation == "AssumeRole":
        from tagpatch_local.simulator import assume_role  # noqa: PLC0415 - it builds on this module

        assume_role.enforce(principal, params)  # the caller's policies and the role's trust policy
        return
    request = Request(prefix, operation, params, region, account, str(getattr(response, "uri", "") or ""))
    checks = authorizations(request, tag_reader(account, region))
    enforce(principal, checks, service)
    if service == "sns" and checks[0].action == "sns:Publish":
        topic = checks[0].resource
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
    params = {"Bucket": bucket_name, "Key": key_name}
    if prefix_value is not None and not key_name:
        params["prefix"] = prefix_value
    checks = authorizations(Request("s3", operation, params, "", account))
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
