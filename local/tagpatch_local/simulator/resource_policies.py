"""Resource-based policies in the simulated account: SNS topic, KMS key, S3 bucket, SQS queue and Lambda
function policies.

From the IAM User Guide ("Policy evaluation logic", "Determining whether a request is allowed or
denied within an account") and the KMS Developer Guide ("Key policies"):
- Within one account, an explicit Deny in the identity-based or the resource-based policy wins;
  otherwise an Allow in either suffices.
- KMS is the exception: the key policy must allow, directly or by naming the account (its root ARN),
  which delegates to the account's IAM policies, so that an identity-based Allow then counts.
- A resource policy that names the account (root ARN or account id) delegates to IAM in every service:
  it grants nothing by itself, while its Deny applies to every principal in the account.
- An AWS service principal has no identity-based policy: only the resource policy can allow it.

Each request carries the global condition keys AWS documents for it: an assumed role's requests
`aws:SecureTransport` (boto3 uses HTTPS), `aws:PrincipalAccount`, `aws:PrincipalArn` and, in an
organization, `aws:PrincipalOrgID`; a service's
requests what that service sends (its callers pass it: `events.py`, `cloudwatch.py`, `data_sync.py`,
`config.py`).
What a service is not documented to send is absent, so a condition on it fails (docs/simulator.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

from moto.awslambda.utils import get_backend as lambda_backend
from moto.iam.access_control import PermissionResult
from moto.kms.models import kms_backends
from moto.s3.models import FakeBucket, s3_backends
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends

from tagpatch_local.simulator.core import MARKER, moto_patch
from tagpatch_local.simulator.iam import (
    PARTITION,
    Authorization,
    Caller,
    Decision,
    Principal,
    evaluate,
    topic_key_arn,
)

# What SNS asks KMS for when a message is published to an encrypted topic (SNS Developer Guide,
# "Enable compatibility between event sources from AWS services and encrypted topics").
TOPIC_KEY_ACTIONS: Final = ("kms:GenerateDataKey", "kms:Decrypt")
# The encryption context SNS passes to KMS for a topic's messages (the condition key AWS's service
# guides use to scope an encrypted topic's key policy, e.g. GameLift FlexMatch's).
TOPIC_ENCRYPTION_CONTEXT: Final = "kms:EncryptionContext:aws:sns:topicArn"


def _parsed(document: Any) -> dict[str, Any] | None:
    if document is None or document == "":
        return None
    if isinstance(document, bytes):
        document = document.decode()
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return None
    return dict(document) if isinstance(document, Mapping) else None


def resource_policy(account: str, request: Authorization) -> dict[str, Any] | None:  # noqa: PLR0911 - one return per service with resource policies
    """The policy of the resource a request acts on, if its service has resource-based policies."""
    service, _, _ = request.action.partition(":")
    arn = request.resource
    if arn == "*" or not arn.startswith("arn:"):
        return None
    parts = arn.split(":", 5)
    region, owner = parts[3], parts[4] or account
    match service.lower():
        case "sns":
            topic = sns_backends[owner][region].topics.get(arn)
            return _parsed(topic.policy) if topic is not None else None
        case "sqs":
            queue = sqs_backends[owner][region].queues.get(parts[5])
            return _parsed(queue.policy) if queue is not None else None
        case "kms":
            key = kms_backends[owner][region].keys.get(parts[5].removeprefix("key/"))
            return _parsed(key.policy) if key is not None else None
        case "s3":  # bucket names are global: the bucket's owner may be another account
            name = parts[5].split("/", 1)[0]
            _, bucket_owner = s3_backends.bucket_accounts.get(name, (PARTITION, account))
            bucket = s3_backends[bucket_owner][PARTITION].buckets.get(name)
            return _parsed(bucket.policy) if bucket is not None else None
        case "lambda":
            try:  # the function's policy, as GetPolicy answers it ({"Policy": "<document>"})
                wire = _parsed(lambda_backend(owner, region).get_policy(arn))
            except Exception:  # no such function, or no policy at all
                return None
            return _parsed(wire.get("Policy")) if wire is not None else None
    return None


def _role_arn(principal: Principal) -> str:
    return f"arn:{PARTITION}:iam::{principal.account}:role/{principal.role_name}"


def _with_role_context(principal: Principal, request: Authorization) -> Authorization:
    from tagpatch_local.simulator.assume_role import organization_id  # noqa: PLC0415 - it builds on this module

    # aws:PrincipalOrgID is in the context only when the principal's account is in an organization (IAM
    # User Guide, "AWS global condition context keys").
    org = organization_id(principal.account)
    context = {
        "aws:SecureTransport": ("true",),
        "aws:PrincipalAccount": (principal.account,),
        "aws:PrincipalArn": (_role_arn(principal),),
        **({"aws:PrincipalOrgID": (org,)} if org is not None else {}),
        **request.context,
    }
    return replace(request, context=context)


def decide_for_role(
    principal: Principal, identity_policies: Sequence[Mapping[str, Any]], request: Authorization
) -> Decision:
    """An assumed role's request, judged on its role's policies and the resource's own policy."""
    request = _with_role_context(principal, request)
    identity = evaluate(identity_policies, request)
    if identity is Decision.EXPLICIT_DENY:
        return identity
    policy = resource_policy(principal.account, request)
    if policy is None:
        return identity
    named = frozenset({principal.arn, _role_arn(principal)})
    account = frozenset({f"arn:{PARTITION}:iam::{principal.account}:root"})
    in_account = evaluate([policy], request, Caller(aws=named | account))
    if in_account is Decision.EXPLICIT_DENY:
        return Decision.RESOURCE_EXPLICIT_DENY
    direct = evaluate([policy], request, Caller(aws=named))
    if request.action.lower().startswith("kms:"):
        if direct is Decision.ALLOW:
            return Decision.ALLOW
        # The key policy allows the account (delegation to IAM): the role's own policies decide.
        return identity if in_account is Decision.ALLOW else Decision.RESOURCE_IMPLICIT_DENY
    return Decision.ALLOW if Decision.ALLOW in (identity, direct) else identity


def decide_for_service(service: str, account: str, request: Authorization) -> Decision:
    """A request an AWS service principal makes: only the resource's policy can allow it."""
    policy = resource_policy(account, request)
    if policy is None:
        return Decision.RESOURCE_IMPLICIT_DENY
    decision = evaluate([policy], request, Caller(service=service))
    if decision is Decision.EXPLICIT_DENY:
        return Decision.RESOURCE_EXPLICIT_DENY
    return Decision.ALLOW if decision is Decision.ALLOW else Decision.RESOURCE_IMPLICIT_DENY


def service_publish_refusal(service: str, topic_arn: str, source: Mapping[str, tuple[str, ...]]) -> str | None:
    """Why SNS refuses a service principal's Publish to a topic, or None when it accepts it.

    `source` is the request context the service sends (aws:SourceArn, aws:SourceAccount). The topic
    policy must allow sns:Publish; an encrypted topic's key policy must also let the service use the
    key. KMS requests carry only the topic's encryption context: no AWS guide says a service's key
    requests carry aws:SourceArn or aws:SourceAccount (EventBridge's says they do not).
    """
    parts = topic_arn.split(":", 5)
    if len(parts) != 6 or sns_backends[parts[4]][parts[3]].topics.get(topic_arn) is None:
        return f"the topic {topic_arn} does not exist"
    account, region = parts[4], parts[3]
    publish = Authorization("sns:Publish", topic_arn, dict(source))
    decision = decide_for_service(service, account, publish)
    if decision is not Decision.ALLOW:
        return f"the topic policy does not let {service} publish ({decision.value})"
    key_arn = topic_key_arn(account, region, topic_arn)
    if key_arn is None:
        return None
    for action in TOPIC_KEY_ACTIONS:
        use = Authorization(action, key_arn, {TOPIC_ENCRYPTION_CONTEXT: (topic_arn,)})
        decision = decide_for_service(service, account, use)
        if decision is not Decision.ALLOW:
            return f"the topic's KMS key policy does not let {service} call {action} ({decision.value})"
    return None


@moto_patch
def _install_bucket_policy_judge() -> None:
    """moto judges object requests on the bucket policy itself, ignoring Principal and Condition (so the
    template's aws:SecureTransport Deny refused every write): leave bucket policies to this module."""
    if getattr(FakeBucket.get_permission, MARKER, None) is not None:
        return

    def get_permission(self: FakeBucket, action: str, resource: str) -> Any:
        return PermissionResult.NEUTRAL

    setattr(get_permission, MARKER, "s3: bucket policies are judged by resource_policies")
    FakeBucket.get_permission = get_permission  # type: ignore[method-assign]
