"""Resource-based policies in the simulated account: topic, key, bucket and queue policies, for an assumed
role (beside its identity-based policies) and for an AWS service principal (alone)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tagpatch_local import simulator
from tagpatch_local.simulator.iam import Authorization, Caller, Decision, evaluate, principal_matches
from tagpatch_local.simulator.resource_policies import service_publish_refusal

ACCOUNT = "123456789012"
ROOT_ARN = f"arn:aws:iam::{ACCOUNT}:root"


def statement(effect: str, principal: Any, action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": effect, "Principal": principal, "Action": action, "Resource": resource, **extra}


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


# --- the Principal element ----------------------------------------------------------------------------

ROLE = Caller(aws=frozenset({f"arn:aws:iam::{ACCOUNT}:role/r", f"arn:aws:sts::{ACCOUNT}:assumed-role/r/s"}))
EVENTS = Caller(service="events.amazonaws.com")


@pytest.mark.parametrize(
    ("element", "caller", "expected"),
    [
        ("*", ROLE, True),
        ("*", EVENTS, True),
        ({"AWS": "*"}, ROLE, True),
        ({"AWS": "*"}, EVENTS, False),  # every AWS principal, not a service
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:role/r"}, ROLE, True),  # a role names its sessions
        ({"AWS": [f"arn:aws:iam::{ACCOUNT}:role/other"]}, ROLE, False),
        ({"AWS": ACCOUNT}, Caller(aws=frozenset({ROOT_ARN})), True),  # an account id is its root
        ({"Service": ["events.amazonaws.com"]}, EVENTS, True),
        ({"Service": "cloudwatch.amazonaws.com"}, EVENTS, False),
        ({"Service": "events.amazonaws.com"}, ROLE, False),
    ],
)
def test_principal_element(element: Any, caller: Caller, expected: bool) -> None:
    assert principal_matches(element, caller) is expected


def test_a_resource_policy_statement_must_name_the_caller() -> None:
    request = Authorization("sns:Publish", "arn:aws:sns:us-east-1:123456789012:t")
    named = {"Statement": [statement("Allow", {"Service": "events.amazonaws.com"}, "sns:Publish")]}
    unnamed = {"Statement": [{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}]}
    excluded = {"Statement": [{"Effect": "Allow", "NotPrincipal": {"AWS": "*"}, "Action": "*", "Resource": "*"}]}
    assert evaluate([named], request, EVENTS) is Decision.ALLOW
    assert evaluate([named], request, ROLE) is Decision.IMPLICIT_DENY
    assert evaluate([unnamed], request, EVENTS) is Decision.IMPLICIT_DENY  # no Principal: never applies
    assert evaluate([excluded], request, EVENTS) is Decision.ALLOW
    assert evaluate([excluded], request, ROLE) is Decision.IMPLICIT_DENY


# --- an assumed role's requests ---------------------------------------------------------------------


@pytest.fixture
def account() -> Iterator[dict[str, Any]]:
    with mock_aws():
        simulator.install()
        root = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        boto3.client("s3", **root).create_bucket(Bucket="art")
        iam, sts = boto3.client("iam", **root), boto3.client("sts", **root)

        def as_role(name: str, *statements: dict[str, Any]) -> Any:
            arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
            if statements:
                iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=policy(*statements))
            credentials = sts.assume_role(RoleArn=arn, RoleSessionName="fn")["Credentials"]
            return boto3.Session(
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
                region_name="us-east-1",
            )

        yield {"as_role": as_role, "root": root}


def error_of(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return dict(caught.value.response["Error"])


def allow(action: Any, resource: Any = "*") -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def test_a_bucket_policy_deny_beats_the_roles_allow(account: dict[str, Any]) -> None:
    s3 = account["as_role"]("writer", allow("s3:PutObject", "arn:aws:s3:::art/*")).client("s3")
    s3.put_object(Bucket="art", Key="runs/a", Body=b"x")
    role = f"arn:aws:iam::{ACCOUNT}:role/writer"
    boto3.client("s3", **account["root"]).put_bucket_policy(
        Bucket="art",
        Policy=policy(statement("Deny", {"AWS": role}, "s3:PutObject", "arn:aws:s3:::art/locked/*")),
    )
    s3.put_object(Bucket="art", Key="runs/b", Body=b"x")
    error = error_of(s3.put_object, Bucket="art", Key="locked/a", Body=b"x")
    assert error["Code"] == "AccessDenied"
    assert error["Message"].endswith(
        "s3:PutObject on resource: arn:aws:s3:::art/locked/a with an explicit deny in a resource-based policy"
    )


def test_role_requests_are_over_https(account: dict[str, Any]) -> None:
    s3 = account["as_role"]("writer", allow("s3:PutObject", "arn:aws:s3:::art/*")).client("s3")
    secure = {"Bool": {"aws:SecureTransport": "false"}}
    root_s3 = boto3.client("s3", **account["root"])
    root_s3.put_bucket_policy(
        Bucket="art", Policy=policy(statement("Deny", "*", "s3:*", "arn:aws:s3:::art/*", Condition=secure))
    )
    s3.put_object(Bucket="art", Key="runs/a", Body=b"x")  # the template's DenyInsecureTransport spares it
    insecure = {"Bool": {"aws:SecureTransport": "true"}}
    root_s3.put_bucket_policy(
        Bucket="art", Policy=policy(statement("Deny", "*", "s3:*", "arn:aws:s3:::art/*", Condition=insecure))
    )
    assert error_of(s3.put_object, Bucket="art", Key="runs/a", Body=b"x")["Code"] == "AccessDenied"


def test_a_role_in_an_organization_carries_its_principal_org_id(account: dict[str, Any]) -> None:
    s3 = account["as_role"]("writer", allow("s3:PutObject", "arn:aws:s3:::art/*")).client("s3")
    only_outsiders = {"StringNotEquals": {"aws:PrincipalOrgID": "o-0123456789"}}
    boto3.client("s3", **account["root"]).put_bucket_policy(
        Bucket="art",
        Policy=policy(statement("Deny", "*", "s3:PutObject", "arn:aws:s3:::art/*", Condition=only_outsiders)),
    )
    # Outside any organization the key is absent, and a negated operator on an absent key matches.
    assert error_of(s3.put_object, Bucket="art", Key="runs/a", Body=b"x")["Code"] == "AccessDenied"
    from tagpatch_local.simulator.organizations import chosen_organization_ids

    with chosen_organization_ids("o-0123456789", "r-0123"):
        boto3.client("organizations", **account["root"]).create_organization(FeatureSet="ALL")
    s3.put_object(Bucket="art", Key="runs/a", Body=b"x")


def test_a_topic_policy_naming_the_role_allows_without_an_identity_policy(account: dict[str, Any]) -> None:
    sns_root = boto3.client("sns", **account["root"])
    topic = sns_root.create_topic(Name="plain")["TopicArn"]
    sns = account["as_role"]("publisher").client("sns")
    assert error_of(sns.publish, TopicArn=topic, Message="m")["Code"] == "AuthorizationError"
    # Naming the account delegates to IAM: the role still needs its own Allow.
    account_only = policy(statement("Allow", {"AWS": ROOT_ARN}, "sns:Publish", topic))
    sns_root.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=account_only)
    assert error_of(sns.publish, TopicArn=topic, Message="m")["Code"] == "AuthorizationError"
    role = f"arn:aws:iam::{ACCOUNT}:role/publisher"
    named = policy(statement("Allow", {"AWS": role}, "sns:Publish", topic))
    sns_root.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=named)
    sns.publish(TopicArn=topic, Message="m")


def test_a_key_policy_must_allow_the_role_or_delegate_to_the_account(account: dict[str, Any]) -> None:
    kms = boto3.client("kms", **account["root"])
    administers = statement("Allow", {"AWS": ROOT_ARN}, "kms:*")
    delegating = kms.create_key(Policy=policy(administers))["KeyMetadata"]
    # A key whose policy names only another role: IAM policies cannot open it.
    other = statement("Allow", {"AWS": f"arn:aws:iam::{ACCOUNT}:role/admin"}, "kms:*")
    closed = kms.create_key(Policy=policy(other))["KeyMetadata"]
    sns_root = boto3.client("sns", **account["root"])
    grants = [allow("sns:Publish"), allow(["kms:GenerateDataKey", "kms:Decrypt"])]
    sns = account["as_role"]("publisher", *grants).client("sns")
    open_topic = sns_root.create_topic(Name="open", Attributes={"KmsMasterKeyId": delegating["KeyId"]})["TopicArn"]
    sns.publish(TopicArn=open_topic, Message="m")
    closed_topic = sns_root.create_topic(Name="closed", Attributes={"KmsMasterKeyId": closed["KeyId"]})["TopicArn"]
    error = error_of(sns.publish, TopicArn=closed_topic, Message="m")
    assert error["Code"] == "KMSAccessDenied"
    assert error["Message"].endswith("because no resource-based policy allows the kms:GenerateDataKey action")


def test_a_queue_policy_deny_applies_to_every_principal_in_the_account(account: dict[str, Any]) -> None:
    sqs_root = boto3.client("sqs", **account["root"])
    url = sqs_root.create_queue(QueueName="dlq")["QueueUrl"]
    arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:dlq"
    sqs = account["as_role"]("sender", allow("sqs:SendMessage", arn)).client("sqs")
    sqs.send_message(QueueUrl=url, MessageBody="m")
    deny = policy(statement("Deny", {"AWS": ACCOUNT}, "sqs:SendMessage", arn))
    sqs_root.set_queue_attributes(QueueUrl=url, Attributes={"Policy": deny})
    error = error_of(sqs.send_message, QueueUrl=url, MessageBody="m")
    assert error["Message"].endswith("with an explicit deny in a resource-based policy")


# --- a service principal's publish -------------------------------------------------------------------

RULE_ARN = f"arn:aws:events:us-east-1:{ACCOUNT}:rule/r"
SOURCE = {"aws:SourceArn": (RULE_ARN,), "aws:SourceAccount": (ACCOUNT,)}


def encrypted_topic(root: dict[str, Any], key_statements: list[dict[str, Any]]) -> str:
    kms = boto3.client("kms", **root)
    key = kms.create_key(Policy=policy(statement("Allow", {"AWS": ROOT_ARN}, "kms:*"), *key_statements))
    sns = boto3.client("sns", **root)
    topic: str = sns.create_topic(Name="alerts", Attributes={"KmsMasterKeyId": key["KeyMetadata"]["KeyId"]})["TopicArn"]
    publish = statement(
        "Allow",
        {"Service": "events.amazonaws.com"},
        "sns:Publish",
        topic,
        Condition={"ArnEquals": {"aws:SourceArn": RULE_ARN}},
    )
    sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=policy(publish))
    return topic


USE_KEY = ["kms:GenerateDataKey*", "kms:Decrypt"]


def test_a_service_needs_the_topic_policy_and_the_documented_key_statement(account: dict[str, Any]) -> None:
    documented = statement("Allow", {"Service": "events.amazonaws.com"}, USE_KEY)
    topic = encrypted_topic(account["root"], [documented])
    assert service_publish_refusal("events.amazonaws.com", topic, SOURCE) is None
    other_rule = {"aws:SourceArn": (RULE_ARN + "-other",), "aws:SourceAccount": (ACCOUNT,)}
    assert "topic policy" in str(service_publish_refusal("events.amazonaws.com", topic, other_rule))
    assert "topic policy" in str(service_publish_refusal("cloudwatch.amazonaws.com", topic, SOURCE))


def test_a_key_statement_conditioned_on_the_source_account_does_not_apply(account: dict[str, Any]) -> None:
    # The service's KMS requests carry the topic's encryption context, not aws:SourceAccount.
    conditioned = statement(
        "Allow",
        {"Service": "events.amazonaws.com"},
        USE_KEY,
        Condition={"StringEquals": {"aws:SourceAccount": ACCOUNT}},
    )
    topic = encrypted_topic(account["root"], [conditioned])
    refusal = service_publish_refusal("events.amazonaws.com", topic, SOURCE)
    assert refusal is not None and "key policy" in refusal and "kms:GenerateDataKey" in refusal


# --- a function's policy -------------------------------------------------------------------------------


def function_with_permission(root: dict[str, Any], **permission: str) -> str:
    import io
    import zipfile

    iam = boto3.client("iam", **root)
    role = iam.create_role(RoleName="fn-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("app.py", "def handler(event, context): return event")
    lambda_client = boto3.client("lambda", **root)
    arn: str = lambda_client.create_function(
        FunctionName="notifier",
        Runtime="python3.13",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": archive.getvalue()},
    )["FunctionArn"]
    lambda_client.add_permission(FunctionName="notifier", StatementId="s", Action="lambda:InvokeFunction", **permission)
    return arn


def test_a_function_policy_admits_a_service_only_from_its_source(account: dict[str, Any]) -> None:
    from tagpatch_local.simulator.resource_policies import decide_for_service

    arn = function_with_permission(
        account["root"], Principal="events.amazonaws.com", SourceArn=RULE_ARN, SourceAccount=ACCOUNT
    )
    invoke = Authorization("lambda:InvokeFunction", arn, SOURCE)
    assert decide_for_service("events.amazonaws.com", ACCOUNT, invoke) is Decision.ALLOW
    elsewhere = {"aws:SourceArn": (RULE_ARN,), "aws:SourceAccount": ("210987654321",)}
    refused = Authorization("lambda:InvokeFunction", arn, elsewhere)
    assert decide_for_service("events.amazonaws.com", ACCOUNT, refused) is Decision.RESOURCE_IMPLICIT_DENY
    assert decide_for_service("config.amazonaws.com", ACCOUNT, invoke) is Decision.RESOURCE_IMPLICIT_DENY


def test_a_rule_may_not_invoke_a_function_whose_permission_names_another_account(account: dict[str, Any]) -> None:
    from moto.events.models import events_backends

    from tagpatch_local.simulator.events import FAILED_DELIVERIES, LAMBDA_DELIVERIES

    arn = function_with_permission(account["root"], Principal="events.amazonaws.com", SourceAccount="210987654321")
    events = boto3.client("events", **account["root"])
    events.put_rule(Name="to-function", EventPattern=json.dumps({"source": ["aws.config"]}))
    events.put_targets(Rule="to-function", Targets=[{"Id": "fn", "Arn": arn}])
    FAILED_DELIVERIES.clear()
    LAMBDA_DELIVERIES.clear()
    events_backends[ACCOUNT]["us-east-1"].put_events([{"Source": "aws.config", "DetailType": "t", "Detail": "{}"}])
    assert [(d.rule, d.target_arn) for d in FAILED_DELIVERIES] == [("to-function", arn)]
    assert LAMBDA_DELIVERIES == []
