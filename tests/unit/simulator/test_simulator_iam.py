"""The simulated account's IAM: policy evaluation as IAM documents it, and denials as each service sends them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tagpatch_local import simulator
from tagpatch_local.simulator import sar
from tagpatch_local.simulator.iam import (
    Authorization,
    Decision,
    Request,
    UnidentifiedResourceError,
    authorizations,
    evaluate,
)
from tagpatch_local.simulator.sar import UnknownActionError
from tagpatch_local.template import Template, resolve

ACCOUNT = "123456789012"
WINDOW_ARN = f"arn:aws:ssm:us-east-1:{ACCOUNT}:maintenancewindow/mw-0123456789abcdef0"


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Statement": [{"Effect": "Allow", "Action": action, "Resource": resource, **extra}]}


def decide(policy: dict[str, Any], action: str, resource: str = "*", **context: tuple[str, ...]) -> Decision:
    return evaluate([policy], Authorization(action, resource, context))


# --- evaluation ---------------------------------------------------------------------------------------


def test_allow_needs_both_action_and_resource() -> None:
    policy = allow("ssm:UpdateMaintenanceWindow", WINDOW_ARN)
    assert decide(policy, "ssm:UpdateMaintenanceWindow", WINDOW_ARN) is Decision.ALLOW
    assert decide(policy, "ssm:DeleteMaintenanceWindow", WINDOW_ARN) is Decision.IMPLICIT_DENY
    assert decide(policy, "ssm:UpdateMaintenanceWindow", WINDOW_ARN[:-1] + "1") is Decision.IMPLICIT_DENY


def test_no_policy_is_an_implicit_deny() -> None:
    assert evaluate([], Authorization("s3:GetObject", "arn:aws:s3:::b/k")) is Decision.IMPLICIT_DENY


def test_an_explicit_deny_beats_any_allow() -> None:
    policies = [allow("ssm:*", "*"), {"Statement": [{"Effect": "Deny", "Action": "ssm:Delete*", "Resource": "*"}]}]
    assert evaluate(policies, Authorization("ssm:DeleteMaintenanceWindow", WINDOW_ARN)) is Decision.EXPLICIT_DENY
    assert evaluate(policies, Authorization("ssm:UpdateMaintenanceWindow", WINDOW_ARN)) is Decision.ALLOW


def test_wildcards_star_and_question_mark() -> None:
    assert decide(allow("ssm:Describe*"), "ssm:DescribeMaintenanceWindows") is Decision.ALLOW
    assert decide(allow("SSM:describe*"), "ssm:DescribeMaintenanceWindows") is Decision.ALLOW  # actions ignore case
    assert decide(allow("ssm:Get?"), "ssm:GetPatchBaseline") is Decision.IMPLICIT_DENY
    assert decide(allow("s3:GetObject", "arn:aws:s3:::b/runs/*"), "s3:GetObject", "arn:aws:s3:::b/runs/x/y") is (
        Decision.ALLOW
    )
    assert decide(allow("s3:GetObject", "arn:aws:s3:::b/run?/k"), "s3:GetObject", "arn:aws:s3:::b/runs/k") is (
        Decision.ALLOW
    )
    # ARNs are case-sensitive.
    assert decide(allow("s3:GetObject", "arn:aws:s3:::b/RUNS/*"), "s3:GetObject", "arn:aws:s3:::b/runs/k") is (
        Decision.IMPLICIT_DENY
    )
    # An action without resource-level permissions is authorised on "*" only.
    assert decide(allow("ec2:DescribeInstances", "arn:aws:ec2:*:*:instance/*"), "ec2:DescribeInstances") is (
        Decision.IMPLICIT_DENY
    )


def test_not_action_and_not_resource() -> None:
    policy = {"Statement": [{"Effect": "Allow", "NotAction": "ssm:Delete*", "NotResource": "arn:aws:s3:::secret/*"}]}
    assert decide(policy, "ssm:UpdateMaintenanceWindow", WINDOW_ARN) is Decision.ALLOW
    assert decide(policy, "ssm:DeleteMaintenanceWindow", WINDOW_ARN) is Decision.IMPLICIT_DENY
    assert decide(policy, "s3:GetObject", "arn:aws:s3:::secret/k") is Decision.IMPLICIT_DENY


RESOURCE_TAG, REQUEST_TAG = "aws:ResourceTag/tagpatch:managed", "aws:RequestTag/tagpatch:managed"
PASSED, SSM = "iam:PassedToService", "ssm.amazonaws.com"


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        # aws:ResourceTag on an owned and a foreign window
        ({"StringEquals": {RESOURCE_TAG: "true"}}, {RESOURCE_TAG: ("true",)}, True),
        ({"StringEquals": {RESOURCE_TAG: "true"}}, {RESOURCE_TAG: ("yes",)}, False),
        ({"StringEquals": {RESOURCE_TAG: "true"}}, {}, False),
        # condition key names are case-insensitive
        ({"StringEquals": {RESOURCE_TAG.upper(): "true"}}, {RESOURCE_TAG: ("true",)}, True),
        # aws:RequestTag and aws:TagKeys on create
        ({"StringEquals": {REQUEST_TAG: "true"}}, {REQUEST_TAG: ("true",)}, True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["m"]}}, {"aws:TagKeys": ("m",)}, True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["m"]}}, {"aws:TagKeys": ("m", "x")}, False),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["x"]}}, {"aws:TagKeys": ("tagpatch:managed", "x")}, True),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["x"]}}, {}, False),
        # iam:PassedToService
        ({"StringEquals": {PASSED: SSM}}, {PASSED: (SSM,)}, True),
        ({"StringEquals": {PASSED: SSM}}, {PASSED: ("ec2.amazonaws.com",)}, False),
        # s3:prefix
        ({"StringLike": {"s3:prefix": "state/*"}}, {"s3:prefix": ("state/ledger.json",)}, True),
        ({"StringLike": {"s3:prefix": "state/*"}}, {"s3:prefix": ("runs/",)}, False),
        ({"StringEquals": {"s3:prefix": "state/ledger.json"}}, {"s3:prefix": ("",)}, False),
        # aws:SourceAccount; negation, IfExists and Null on a missing key
        ({"StringEquals": {"aws:SourceAccount": ACCOUNT}}, {"aws:SourceAccount": (ACCOUNT,)}, True),
        ({"StringNotEquals": {"aws:SourceAccount": ACCOUNT}}, {}, True),
        ({"StringEqualsIfExists": {"aws:SourceAccount": ACCOUNT}}, {}, True),
        ({"Null": {"aws:ResourceTag/owner": "true"}}, {}, True),
        ({"Null": {"aws:ResourceTag/owner": "true"}}, {"aws:ResourceTag/owner": ("me",)}, False),
    ],
)
def test_condition_keys(condition: dict[str, Any], context: dict[str, tuple[str, ...]], expected: bool) -> None:
    policy = allow("ssm:UpdateMaintenanceWindow", "*", Condition=condition)
    decision = decide(policy, "ssm:UpdateMaintenanceWindow", WINDOW_ARN, **context)
    assert (decision is Decision.ALLOW) is expected


def test_every_condition_in_a_statement_must_hold() -> None:
    condition = {
        "StringEquals": {"aws:RequestTag/tagpatch:managed": "true"},
        "ForAllValues:StringEquals": {"aws:TagKeys": ["tagpatch:managed"]},
    }
    policy = allow("ssm:CreateMaintenanceWindow", Condition=condition)
    tagged: dict[str, tuple[str, ...]] = {REQUEST_TAG: ("true",), "aws:TagKeys": ("tagpatch:managed",)}
    assert decide(policy, "ssm:CreateMaintenanceWindow", "*", **tagged) is Decision.ALLOW
    extra_key = {**tagged, "aws:TagKeys": ("a", "tagpatch:managed")}
    assert decide(policy, "ssm:CreateMaintenanceWindow", "*", **extra_key) is Decision.IMPLICIT_DENY
    assert decide(policy, "ssm:CreateMaintenanceWindow") is Decision.IMPLICIT_DENY


# --- through boto3: each protocol's denial ---------------------------------------------------------


@pytest.fixture
def account() -> Iterator[dict[str, Any]]:
    """A moto account with a bucket, an encrypted topic and a window; `as_role(policy)` gives role clients."""
    with mock_aws():
        simulator.install()
        root = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        s3 = boto3.client("s3", **root)
        s3.create_bucket(Bucket="art")
        s3.put_object(Bucket="art", Key="runs/present", Body=b"x")
        key = boto3.client("kms", **root).create_key()["KeyMetadata"]
        topic = boto3.client("sns", **root).create_topic(Name="alerts", Attributes={"KmsMasterKeyId": key["KeyId"]})
        ssm = boto3.client("ssm", **root)
        window = ssm.create_maintenance_window(
            Name="mine", Schedule="cron(0 2 ? * SUN *)", Duration=2, Cutoff=1, AllowUnassociatedTargets=False
        )["WindowId"]
        iam, sts = boto3.client("iam", **root), boto3.client("sts", **root)
        roles = iter(range(1000))

        def as_role(*statements: dict[str, Any]) -> Any:
            name = f"role-{next(roles)}"
            arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
            if statements:
                document = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
                iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=document)
            credentials = sts.assume_role(RoleArn=arn, RoleSessionName="fn")["Credentials"]
            return boto3.Session(
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
                region_name="us-east-1",
            )

        yield {"as_role": as_role, "window": window, "topic": topic["TopicArn"], "key": key["Arn"], "root": root}


def error_of(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    response: dict[str, Any] = caught.value.response
    return {"code": response["Error"]["Code"], "message": response["Error"].get("Message", ""), **response}


def test_ssm_denial_is_a_json_access_denied_exception_naming_the_window(account: dict[str, Any]) -> None:
    session = account["as_role"]()
    error = error_of(session.client("ssm").get_maintenance_window, WindowId=account["window"])
    arn = f"arn:aws:ssm:us-east-1:{ACCOUNT}:maintenancewindow/{account['window']}"
    assert error["code"] == "AccessDeniedException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["message"] == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/role-0/fn is not authorized to perform: "
        f"ssm:GetMaintenanceWindow on resource: {arn} because no identity-based policy allows the "
        "ssm:GetMaintenanceWindow action"
    )


def test_ssm_window_writes_see_the_windows_tags(account: dict[str, Any]) -> None:
    owned_only = {
        "Effect": "Allow",
        "Action": "ssm:UpdateMaintenanceWindow",
        "Resource": f"arn:aws:ssm:us-east-1:{ACCOUNT}:maintenancewindow/*",
        "Condition": {"StringEquals": {"aws:ResourceTag/tagpatch:managed": "true"}},
    }
    ssm = account["as_role"](owned_only).client("ssm")
    assert error_of(ssm.update_maintenance_window, WindowId=account["window"], Duration=3)["code"] == (
        "AccessDeniedException"
    )
    boto3.client("ssm", **account["root"]).add_tags_to_resource(
        ResourceType="MaintenanceWindow",
        ResourceId=account["window"],
        Tags=[{"Key": "tagpatch:managed", "Value": "true"}],
    )
    ssm.update_maintenance_window(WindowId=account["window"], Duration=3)


def test_ssm_explicit_deny_message(account: dict[str, Any]) -> None:
    session = account["as_role"](
        {"Effect": "Allow", "Action": "ssm:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "ssm:DescribeMaintenanceWindows", "Resource": "*"},
    )
    error = error_of(session.client("ssm").describe_maintenance_windows)
    assert error["message"].endswith("ssm:DescribeMaintenanceWindows with an explicit deny in an identity-based policy")


def test_ec2_denial_is_unauthorized_operation(account: dict[str, Any]) -> None:
    error = error_of(account["as_role"]().client("ec2").describe_instances)
    assert error["code"] == "UnauthorizedOperation"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "is not authorized to perform: ec2:DescribeInstances" in error["message"]


def test_sns_denial_is_authorization_error_and_the_topic_key_is_checked(account: dict[str, Any]) -> None:
    publish = {"Effect": "Allow", "Action": "sns:Publish", "Resource": account["topic"]}
    error = error_of(account["as_role"]().client("sns").publish, TopicArn=account["topic"], Message="m")
    assert error["code"] == "AuthorizationError"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    # Allowed to publish, but not to use the topic's key.
    error = error_of(account["as_role"](publish).client("sns").publish, TopicArn=account["topic"], Message="m")
    assert error["code"] == "KMSAccessDenied"
    assert "kms:GenerateDataKey" in error["message"]
    key = {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": account["key"]}
    account["as_role"](publish, key).client("sns").publish(TopicArn=account["topic"], Message="m")


def test_s3_denial_is_access_denied_403(account: dict[str, Any]) -> None:
    s3 = account["as_role"]({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::art/runs/*"})
    assert s3.client("s3").get_object(Bucket="art", Key="runs/present")["Body"].read() == b"x"
    error = error_of(s3.client("s3").put_object, Bucket="art", Key="runs/present", Body=b"y")
    assert error["code"] == "AccessDenied"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "s3:PutObject on resource: arn:aws:s3:::art/runs/present" in error["message"]


def test_s3_missing_key_is_403_without_list_bucket_and_404_with_it(account: dict[str, Any]) -> None:
    get = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::art/*"}
    without = account["as_role"](get).client("s3")
    assert error_of(without.get_object, Bucket="art", Key="runs/missing")["code"] == "AccessDenied"
    assert error_of(without.head_object, Bucket="art", Key="runs/missing")["code"] == "403"
    listing = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::art"}
    with_list = account["as_role"](get, listing).client("s3")
    assert error_of(with_list.get_object, Bucket="art", Key="runs/missing")["code"] == "NoSuchKey"
    assert error_of(with_list.head_object, Bucket="art", Key="runs/missing")["code"] == "404"


def test_s3_prefix_scoped_listing(account: dict[str, Any]) -> None:
    listing = {
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": "arn:aws:s3:::art",
        "Condition": {"StringEquals": {"s3:prefix": "runs/present"}},
    }
    s3 = account["as_role"](listing).client("s3")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="art", Prefix="runs/present")["Contents"]] == ["runs/present"]
    assert error_of(s3.list_objects_v2, Bucket="art", Prefix="runs/")["code"] == "AccessDenied"
    assert error_of(s3.list_objects_v2, Bucket="art")["code"] == "AccessDenied"


def test_the_runners_own_keys_are_not_restricted(account: dict[str, Any]) -> None:
    ssm = boto3.client("ssm", **account["root"])
    assert ssm.get_maintenance_window(WindowId=account["window"])["Name"] == "mine"


# --- what a request is authorised as: derived from the Service Authorization Reference --------------

REGION = "us-east-1"


def checks_for(service: str, operation: str, **params: Any) -> list[Authorization]:
    return authorizations(Request(service, operation, params, REGION, ACCOUNT))


def test_every_resource_the_sar_requires_is_checked() -> None:
    # ssm:UpdateMaintenanceWindowTarget: maintenancewindow* and windowtarget* (SAR).
    update = checks_for("ssm", "UpdateMaintenanceWindowTarget", WindowId="mw-1", WindowTargetId="t-1")
    assert [(c.action, c.resource) for c in update] == [
        ("ssm:UpdateMaintenanceWindowTarget", f"arn:aws:ssm:{REGION}:{ACCOUNT}:maintenancewindow/mw-1"),
        ("ssm:UpdateMaintenanceWindowTarget", f"arn:aws:ssm:{REGION}:{ACCOUNT}:windowtarget/t-1"),
    ]
    task = checks_for("ssm", "DeregisterTaskFromMaintenanceWindow", WindowId="mw-1", WindowTaskId="k-1")
    assert [c.resource for c in task] == [
        f"arn:aws:ssm:{REGION}:{ACCOUNT}:maintenancewindow/mw-1",
        f"arn:aws:ssm:{REGION}:{ACCOUNT}:windowtask/k-1",
    ]


def test_a_required_resource_missing_from_the_policy_is_denied() -> None:
    window_only = allow("ssm:UpdateMaintenanceWindowTarget", f"arn:aws:ssm:{REGION}:{ACCOUNT}:maintenancewindow/*")
    checks = checks_for("ssm", "UpdateMaintenanceWindowTarget", WindowId="mw-1", WindowTargetId="t-1")
    assert [evaluate([window_only], c) for c in checks] == [Decision.ALLOW, Decision.IMPLICIT_DENY]


def test_an_action_without_resource_types_is_checked_on_star_and_others_never_are() -> None:
    assert [c.resource for c in checks_for("ec2", "DescribeInstances")] == ["*"]
    assert [c.resource for c in checks_for("ssm", "DescribeMaintenanceWindows")] == ["*"]
    # A resource the SAR requires but the request does not name fails loudly, rather than `*`.
    with pytest.raises(UnidentifiedResourceError, match="windowtarget"):
        checks_for("ssm", "UpdateMaintenanceWindowTarget", WindowId="mw-1")
    with pytest.raises(UnidentifiedResourceError, match="queue"):
        checks_for("sqs", "CreateQueue", QueueName="q")
    # A parameter that should be the resource's ARN but is another type's.
    with pytest.raises(UnidentifiedResourceError, match="topic"):
        checks_for("sns", "Publish", TopicArn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:q")


def test_an_operation_the_sar_does_not_define_is_refused() -> None:
    with pytest.raises(UnknownActionError, match="has no action ssm:PatchEverything"):
        checks_for("ssm", "PatchEverything")


def test_operations_named_otherwise_in_iam_use_the_action_name() -> None:
    assert [c.action for c in checks_for("sns", "PublishBatch", TopicArn=f"arn:aws:sns:{REGION}:{ACCOUNT}:t")] == [
        "sns:Publish"
    ]
    listing = checks_for("s3", "ListObjectsV2", Bucket="b", prefix="runs/")
    assert [(c.action, c.resource) for c in listing] == [("s3:ListBucket", "arn:aws:s3:::b")]


def test_a_condition_key_the_action_does_not_support_is_absent_so_never_matches() -> None:
    # s3:prefix is a ListBucket key, not a GetObject one (SAR): a GetObject request never carries it.
    (listing,) = checks_for("s3", "ListBucket", Bucket="b", prefix="runs/")
    (read,) = checks_for("s3", "GetObject", Bucket="b", Key="runs/k", prefix="runs/")
    assert listing.context == {"s3:prefix": ("runs/",)}
    assert read.context == {}
    scoped = allow("s3:*", "*", Condition={"StringLike": {"s3:prefix": "runs/*"}})
    assert evaluate([scoped], listing) is Decision.ALLOW
    assert evaluate([scoped], read) is Decision.IMPLICIT_DENY
    # aws:RequestTag/aws:TagKeys only where listed: CreateMaintenanceWindow yes, DescribeMaintenanceWindows no.
    tags = [{"Key": "tagpatch:managed", "Value": "true"}]
    create = checks_for("ssm", "CreateMaintenanceWindow", Name="w", Tags=tags)
    assert create[0].context == {REQUEST_TAG: ("true",), "aws:TagKeys": ("tagpatch:managed",)}
    assert checks_for("ssm", "DescribeMaintenanceWindows", Tags=tags)[0].context == {}
    # iam:PassedToService rides on the iam:PassRole check the task registration makes.
    role = f"arn:aws:iam::{ACCOUNT}:role/task"
    register = checks_for("ssm", "RegisterTaskWithMaintenanceWindow", WindowId="mw-1", ServiceRoleArn=role)
    assert register[-1] == Authorization("iam:PassRole", role, {PASSED: (SSM,)})


def test_resource_tags_reach_only_resource_types_that_list_them() -> None:
    def tags_of(service: str, resource_type: str, parts: Any) -> dict[str, str]:
        return {"tagpatch:managed": "true"}

    request = Request("ssm", "UpdateMaintenanceWindow", {"WindowId": "mw-1"}, REGION, ACCOUNT)
    (window,) = authorizations(request, tags_of)
    assert window.context[RESOURCE_TAG] == ("true",)
    assert window.context["ssm:resourceTag/tagpatch:managed"] == ("true",)
    # GetPatchBaselineForPatchGroup has no resource type: no resource, no resource tags.
    request = Request("ssm", "GetPatchBaselineForPatchGroup", {"PatchGroup": "g"}, REGION, ACCOUNT)
    assert authorizations(request, tags_of)[0].context == {}


def test_global_condition_keys_are_always_supported_but_tag_keys_are_not() -> None:
    assert sar.key_supported("aws:SourceArn", ())
    assert sar.key_supported("aws:SecureTransport", ())
    assert not sar.key_supported("aws:ResourceTag/owner", ())
    assert sar.key_supported("aws:ResourceTag/owner", ("aws:ResourceTag/${TagKey}",))
    assert sar.key_supported("ssm:resourceTag/owner", ("ssm:resourceTag/tag-key",))
    assert not sar.key_supported("s3:prefix", ("s3:delimiter",))


def test_the_sar_is_loaded_once_and_each_action_indexed_once() -> None:
    assert sar.action("ssm:UpdateMaintenanceWindowTarget") is sar.action("SSM:updatemaintenancewindowtarget")
    definition = sar.action("ssm:UpdateMaintenanceWindowTarget")
    assert {(r.type.name, r.required) for r in definition.resources} == {
        ("maintenancewindow", True),
        ("windowtarget", True),
    }


def test_a_target_update_granted_on_the_window_only_is_denied_on_the_target(account: dict[str, Any]) -> None:
    root = boto3.client("ssm", **account["root"])
    target = root.register_target_with_maintenance_window(
        WindowId=account["window"], ResourceType="INSTANCE", Targets=[{"Key": "tag:Patch Group", "Values": ["web"]}]
    )["WindowTargetId"]
    windows = f"arn:aws:ssm:us-east-1:{ACCOUNT}:maintenancewindow/*"
    window_only = {"Effect": "Allow", "Action": "ssm:UpdateMaintenanceWindowTarget", "Resource": windows}
    ssm = account["as_role"](window_only).client("ssm")
    error = error_of(
        ssm.update_maintenance_window_target, WindowId=account["window"], WindowTargetId=target, Name="new"
    )
    assert error["code"] == "AccessDeniedException"
    assert f"on resource: arn:aws:ssm:us-east-1:{ACCOUNT}:windowtarget/{target} " in error["message"]
    both = {**window_only, "Resource": [windows, f"arn:aws:ssm:us-east-1:{ACCOUNT}:windowtarget/*"]}
    ssm = account["as_role"](both).client("ssm")
    ssm.update_maintenance_window_target(WindowId=account["window"], WindowTargetId=target, Name="new")


def test_the_templates_member_grants_change_targets_of_owned_windows_only(account: dict[str, Any]) -> None:
    # ApplyWindowChanges's statements as deployed: the windowtarget/* grant carries no tag condition
    # (targets cannot be tagged), so ownership rests on the window's own check.
    template = Template.load(Path(__file__).resolve().parents[3] / "template.yaml")
    (policy,) = [
        p for p in template.resources["ApplyWindowChangesFunction"]["Properties"]["Policies"] if "Statement" in p
    ]
    pseudo = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": ACCOUNT}
    # Its SSM statements: the spoke-role grant's organization condition is an Fn::If the deployer decides.
    ssm_statements = [statement for statement in policy["Statement"] if statement.get("Sid") != "AssumeSpokeRole"]
    statements = resolve(ssm_statements, lambda name, attribute: pseudo.get(name, f"arn:aws:s3:::{name.lower()}"))
    ssm = account["as_role"](*statements).client("ssm")
    root = boto3.client("ssm", **account["root"])
    foreign = account["window"]
    owned = root.create_maintenance_window(
        Name="owned",
        Schedule="cron(0 2 ? * SUN *)",
        Duration=2,
        Cutoff=1,
        AllowUnassociatedTargets=False,
        Tags=[{"Key": "tagpatch:managed", "Value": "true"}],
    )["WindowId"]
    targets = {
        window: root.register_target_with_maintenance_window(
            WindowId=window, ResourceType="INSTANCE", Targets=[{"Key": "tag:Patch Group", "Values": ["web"]}]
        )["WindowTargetId"]
        for window in (foreign, owned)
    }
    ssm.update_maintenance_window_target(WindowId=owned, WindowTargetId=targets[owned], Name="renamed")
    error = error_of(
        ssm.update_maintenance_window_target, WindowId=foreign, WindowTargetId=targets[foreign], Name="renamed"
    )
    assert f"on resource: arn:aws:ssm:us-east-1:{ACCOUNT}:maintenancewindow/{foreign} " in error["message"]
    error = error_of(ssm.deregister_target_from_maintenance_window, WindowId=foreign, WindowTargetId=targets[foreign])
    assert error["code"] == "AccessDeniedException"
    ssm.deregister_target_from_maintenance_window(WindowId=owned, WindowTargetId=targets[owned])
