"""STS AssumeRole in the simulated organization: the caller's policies and the role's trust policy.

moto's AssumeRole hands out credentials for any role ARN, existing or not, in any account. Here a
request signed by an assumed role (a function's, a spoke's) is allowed only as IAM documents it:

- Cross-account (IAM User Guide, "Cross-account policy evaluation logic"): the caller's identity-based
  policies, in its own account, must allow `sts:AssumeRole` on the role's ARN, AND the role's trust
  policy (its resource-based policy) must name the caller, its role or its account.
- Same account (STS API Reference, AssumeRole: "To allow a user to assume a role in the same account,
  you can do either of the following"): the identity-based policies allow it and the trust policy
  trusts the account, or the trust policy names the caller's role directly.
- An explicit Deny in either policy wins. A role that does not exist is denied the same way, with
  the same message, as AWS does not disclose whether a role exists.

The trust policy sees the caller's `aws:PrincipalArn` (its role's ARN), `aws:PrincipalAccount`,
`aws:PrincipalOrgID` (when its account is in an organization), `aws:PrincipalType`, and the request's
`sts:ExternalId` and `sts:RoleSessionName`. Both policies see the resource's `aws:ResourceAccount` (the
role's account) and `aws:ResourceOrgID` (that account's organization, absent when it is in none), so a
data perimeter the caller's own policy draws with them holds. Session tags, session policies and source
identity are not modelled: a request carrying them is refused rather than half-judged (docs/simulator.md).

The runner's own root credentials are not evaluated, as for every other service (simulator/iam.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from tagpatch_local.simulator.core import SimulatorError
from tagpatch_local.simulator.iam import (
    PARTITION,
    Authorization,
    Caller,
    Decision,
    Principal,
    denial,
    evaluate,
    record_allowed,
    role_policies,
)

ACTION: Final = "sts:AssumeRole"
# AssumeRole parameters whose effect the simulator does not model (session tags, session policies,
# source identity): judging the request without them would allow what AWS might refuse.
_UNMODELLED_PARAMETERS: Final = ("Tags", "TransitiveTagKeys", "Policy", "PolicyArns", "SourceIdentity")


def _role_arn(principal: Principal) -> str:
    return f"arn:{PARTITION}:iam::{principal.account}:role/{principal.role_name}"


def _account_of(arn: str) -> str:
    parts = arn.split(":", 5)
    return parts[4] if len(parts) == 6 else ""


def organization_id(account: str) -> str | None:
    """The id of the organization `account` belongs to (as management account or member), if any."""
    from moto.organizations.models import organizations_backends  # noqa: PLC0415 - moto's backends load lazily

    management = organizations_backends.master_accounts.get(account, (account, PARTITION))[0]
    if management not in organizations_backends:
        return None
    organization = organizations_backends[management][PARTITION].org
    if organization is None:
        return None
    # The organization's own account list, not moto's process-wide master_accounts map, which outlives a
    # reset backend (a later test's organization would otherwise claim an earlier test's members).
    members = {str(member.id) for member in organizations_backends[management][PARTITION].accounts}
    member = organization.master_account_id == account or account in members
    return str(organization.id) if member else None


def trust_policy(role_arn: str) -> dict[str, Any] | None:
    """The trust policy of the role `role_arn` names, in that role's account; None if there is no such role."""
    from moto.iam.models import iam_backends  # noqa: PLC0415

    account = _account_of(role_arn)
    if not account.isdigit() or account not in iam_backends:
        return None
    backend = iam_backends[account][PARTITION]
    role = next((role for role in backend.roles.values() if role.arn == role_arn), None)
    if role is None:
        return None
    document = role.assume_role_policy_document
    parsed = json.loads(document) if isinstance(document, str) else document
    if not isinstance(parsed, Mapping):
        return None
    # A trust policy has no Resource element (IAM refuses one): each statement is about the role itself.
    statements = parsed.get("Statement")
    listed = statements if isinstance(statements, list) else [statements]
    about_the_role = [{**statement, "Resource": role_arn} for statement in listed if isinstance(statement, Mapping)]
    return {**parsed, "Statement": about_the_role}


def request_context(principal: Principal, params: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """The condition keys an AssumeRole request carries (IAM User Guide, global condition keys; the SAR's
    sts:ExternalId and sts:RoleSessionName)."""
    context: dict[str, tuple[str, ...]] = {
        "aws:SecureTransport": ("true",),
        "aws:PrincipalArn": (_role_arn(principal),),
        "aws:PrincipalAccount": (principal.account,),
        "aws:PrincipalType": ("AssumedRole",),
    }
    org = organization_id(principal.account)
    if org is not None:
        context["aws:PrincipalOrgID"] = (org,)
    # The resource is the role: its account, and that account's organization only when it is in one
    # (IAM User Guide, aws:ResourceAccount and aws:ResourceOrgID), so a data perimeter can hold the caller.
    role_account = _account_of(str(params.get("RoleArn") or ""))
    if role_account:
        context["aws:ResourceAccount"] = (role_account,)
        role_org = organization_id(role_account)
        if role_org is not None:
            context["aws:ResourceOrgID"] = (role_org,)
    for parameter, key in (("ExternalId", "sts:ExternalId"), ("RoleSessionName", "sts:RoleSessionName")):
        value = params.get(parameter)
        if value not in (None, ""):
            context[key] = (str(value),)
    return context


def decide(principal: Principal, role_arn: str, params: Mapping[str, Any]) -> Decision:
    """Whether `principal` may assume `role_arn` with these request parameters."""
    request = Authorization(ACTION, role_arn, request_context(principal, params))
    return _decide(principal, request, evaluate(role_policies(principal.account, principal.role_name), request))


def _decide(principal: Principal, request: Authorization, identity: Decision) -> Decision:
    if identity is Decision.EXPLICIT_DENY:
        return identity
    trust = trust_policy(request.resource)
    named = frozenset({principal.arn, _role_arn(principal)})
    account = frozenset({f"arn:{PARTITION}:iam::{principal.account}:root"})
    trusted = evaluate([trust], request, Caller(aws=named | account)) if trust is not None else Decision.IMPLICIT_DENY
    if trusted is not Decision.ALLOW:  # no such role, or its trust policy denies or never names the caller
        return Decision.RESOURCE_EXPLICIT_DENY if trusted is Decision.EXPLICIT_DENY else Decision.RESOURCE_IMPLICIT_DENY
    # In its own account a role trusting the caller's role by name needs no identity-based Allow.
    same_account = _account_of(request.resource) == principal.account
    if identity is not Decision.ALLOW and same_account and trust is not None:
        return evaluate([trust], request, Caller(aws=named))
    return identity


def denial_message(principal: Principal, role_arn: str) -> str:
    # STS's wording, the same whether the caller's policy, the trust policy or the role's absence refused it.
    return f"User: {principal.arn} is not authorized to perform: {ACTION} on resource: {role_arn}"


def enforce(principal: Principal, params: Mapping[str, Any]) -> None:
    """Raise STS's AccessDenied unless `principal` may make this AssumeRole request."""
    unmodelled = [name for name in _UNMODELLED_PARAMETERS if any(key.startswith(name) for key in params)]
    if unmodelled:
        raise SimulatorError(f"AssumeRole with {', '.join(unmodelled)} is not modelled by the simulator")
    role_arn = str(params.get("RoleArn") or "")
    request = Authorization(ACTION, role_arn, request_context(principal, params))
    identity = evaluate(role_policies(principal.account, principal.role_name), request)
    if _decide(principal, request, identity) is not Decision.ALLOW:
        raise denial("query", "sts", denial_message(principal, role_arn))
    if identity is Decision.ALLOW:  # the caller's own statement was used (the least-privilege test reads it)
        record_allowed(principal.role_name, request)
