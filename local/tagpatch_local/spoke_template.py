"""spoke/template.yaml, derived from template.yaml so that each grant is declared once.

The spoke is what a member account holds for the hub (docs/decisions.md, "Many accounts and
Regions"): one role per workflow step that acts in targets, `tagpatch-spoke-<step>`, trusted only by
that step's hub function role, with exactly the EC2 and SSM statements that function has in
template.yaml (and what it does only in a member account, SPOKE_ONLY). Those statements are copied
as written: their `${AWS::AccountId}` and `${AWS::Region}` resolve, in the member's stack, to the
member account and Region. It also holds what a backup window
needs there: the backup runbook and the role Automation assumes to run it, copied from the hub's, under
fixed names the hub computes (tagpatch.targets), and the hub's custom patch baselines, which
BaselineAssociation finds there by name.

    .venv/bin/python -m tagpatch_local.spoke_template          # rewrite spoke/template.yaml
    .venv/bin/python -m tagpatch_local.spoke_template --check  # exit 1 if it is stale
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import yaml

from tagpatch.aws import TARGET_SERVICES
from tagpatch.targets import (
    SPOKE_BACKUP_ROLE,
    SPOKE_BACKUP_RUNBOOK,
    SPOKE_BACKUP_SNAPSHOT_RUNBOOK,
    session_name,
    spoke_role_name,
)
from tagpatch.workflow import STEPS
from tagpatch_local.template import load_template

REPO: Final = Path(__file__).resolve().parents[2]
HUB: Final = REPO / "template.yaml"
SPOKE: Final = REPO / "spoke" / "template.yaml"
COMMAND: Final = ".venv/bin/python -m tagpatch_local.spoke_template"
# What the backup window runs in the member account, copied from the hub's resources of these names.
BACKUP_RESOURCES: Final[Mapping[str, str]] = {
    "BackupThenPatchRunbook": SPOKE_BACKUP_RUNBOOK,
    "BackupSnapshotsThenPatchRunbook": SPOKE_BACKUP_SNAPSHOT_RUNBOOK,
    "BackupAutomationRole": SPOKE_BACKUP_ROLE,
}
# What a step does only in a member account, beyond its function's own EC2 and SSM statements: the
# custom baselines' ids there are the member stack's, so BaselineAssociation finds them by name.
SPOKE_ONLY: Final[Mapping[str, tuple[Mapping[str, Any], ...]]] = {
    "BaselineAssociation": (
        {
            "Sid": "FindOwnBaselines",  # no resource-level permissions (Service Authorization Reference)
            "Effect": "Allow",
            "Action": ["ssm:DescribePatchBaselines"],
            "Resource": "*",
        },
    ),
}
ROLES_CONDITION: Final = "CreatesAccountRoles"
HEADER: Final = f"""# Generated from template.yaml by `{COMMAND}`: do not edit by hand.
# Deploy to each member account and Region the hub acts in (service-managed StackSets), with the hub's
# account id and stack name. docs/decisions.md, "Many accounts and Regions".
"""


class SpokeTemplateError(ValueError):
    """template.yaml holds a target-side statement the spoke cannot copy as it is."""


def _actions(statement: Mapping[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def _is_target_side(statement: Mapping[str, Any]) -> bool:
    services = {action.split(":", 1)[0] for action in _actions(statement)}
    if services <= TARGET_SERVICES:
        return True
    if services & TARGET_SERVICES:
        raise SpokeTemplateError(
            f"statement {statement.get('Sid')!r} mixes EC2/SSM actions with others; split it so the spoke can copy it"
        )
    return False


def _references(value: Any) -> Iterator[str]:
    """Every Ref, GetAtt and ${...} a value names (the spoke has only the pseudo parameters)."""
    if isinstance(value, list):
        for item in value:
            yield from _references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref":
                yield str(item)
            elif key == "Fn::GetAtt":
                yield ".".join(map(str, item))
            elif key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                yield from (name for name in _sub_names(str(text)))
            else:
                yield from _references(item)


def _sub_names(text: str) -> Iterator[str]:
    start = text.find("${")
    while start != -1:
        end = text.index("}", start)
        yield text[start + 2 : end]
        start = text.find("${", end)


def target_statements(hub: Mapping[str, Any], function: str) -> list[dict[str, Any]]:
    """A hub function's EC2 and SSM statements, as the template writes them."""
    found = []
    for policy in hub["Resources"][function]["Properties"].get("Policies", []):
        if "Fn::If" in policy:
            _, when_true, _ = policy["Fn::If"]
            if any(_is_target_side(statement) for statement in when_true["Statement"]):
                raise SpokeTemplateError(
                    f"{function}: a conditional policy grants EC2/SSM; the spoke has no such condition"
                )
            continue
        for statement in policy.get("Statement", []):
            if _is_target_side(statement):
                foreign = {name for name in _references(statement) if not name.startswith("AWS::")}
                if foreign:
                    raise SpokeTemplateError(
                        f"{function} [{statement.get('Sid')}]: names {sorted(foreign)}, which the spoke does not have"
                    )
                found.append(copy.deepcopy(statement))
    return found


def acting_steps(hub: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each workflow step whose function has EC2 or SSM statements -> those statements."""
    return {
        step.name: [*statements, *map(dict, SPOKE_ONLY.get(step.name, ()))]
        for step in STEPS
        if (statements := target_statements(hub, step.function))
    }


def _sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def _spoke_role(step: str, statements: list[dict[str, Any]]) -> dict[str, Any]:
    function_role = f"arn:${{AWS::Partition}}:iam::${{HubAccountId}}:role/${{HubStackName}}-{step}FunctionRole-*"
    return {
        "Type": "AWS::IAM::Role",
        "Condition": ROLES_CONDITION,
        "Properties": {
            "RoleName": spoke_role_name(step),
            "Description": f"What the hub's {step} step does in this account and Region (its EC2 and SSM grants).",
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": f"Hub{step}FunctionOnly",
                        "Effect": "Allow",
                        "Principal": {"AWS": _sub("arn:${AWS::Partition}:iam::${HubAccountId}:root")},
                        "Action": "sts:AssumeRole",
                        "Condition": {
                            "ArnLike": {"aws:PrincipalArn": _sub(function_role)},
                            "StringEquals": {"sts:RoleSessionName": session_name(step)},
                        },
                    }
                ],
            },
            "Policies": [
                {
                    "PolicyName": spoke_role_name(step),
                    "PolicyDocument": {"Version": "2012-10-17", "Statement": account_wide(statements)},
                }
            ],
        },
    }


def account_wide(value: Any) -> Any:
    """A copied grant made to hold in every Region of the member account: an IAM role is one per
    account (its name is global), so the Region in its statements' ARNs becomes `*`."""
    if isinstance(value, list):
        return [account_wide(item) for item in value]
    if isinstance(value, dict):
        return {
            key: item.replace("${AWS::Region}", "*")
            if key == "Fn::Sub" and isinstance(item, str)
            else account_wide(item)
            for key, item in value.items()
        }
    return value


def _backup_resources(hub: Mapping[str, Any]) -> dict[str, Any]:
    resources = {}
    for logical_id, name in BACKUP_RESOURCES.items():
        resource = copy.deepcopy(hub["Resources"][logical_id])
        if resource["Type"] == "AWS::IAM::Role":
            resource["Properties"]["RoleName"] = name
            resource["Properties"]["Policies"] = account_wide(resource["Properties"]["Policies"])
            resource["Condition"] = ROLES_CONDITION
        else:
            resource["Properties"]["Name"] = name
        resources[logical_id] = resource
    return resources


def _baselines(hub: Mapping[str, Any]) -> dict[str, Any]:
    """The hub's custom patch baselines, as they are: BaselineAssociation finds a member's copies by name."""
    return {
        logical_id: copy.deepcopy(resource)
        for logical_id, resource in hub["Resources"].items()
        if resource["Type"] == "AWS::SSM::PatchBaseline"
    }


def _hub_parameters(hub: Mapping[str, Any], resources: Mapping[str, Any]) -> dict[str, Any]:
    """The hub's parameters these copied resources refer to, with the hub's defaults."""
    named = set(_references(dict(resources)))
    return {name: copy.deepcopy(spec) for name, spec in hub.get("Parameters", {}).items() if name in named}


def spoke_template(hub: Mapping[str, Any]) -> dict[str, Any]:
    resources: dict[str, Any] = {
        f"{step}SpokeRole": _spoke_role(step, statements) for step, statements in acting_steps(hub).items()
    }
    copied = {**_backup_resources(hub), **_baselines(hub)}
    resources.update(copied)
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": (
            "tagpatch spoke: the roles through which a tagpatch hub stack patches this account and Region, "
            "and what its backup windows run here."
        ),
        "Parameters": {
            "HubAccountId": {
                "Type": "String",
                "AllowedPattern": "^[0-9]{12}$",
                "Description": "The account id of the tagpatch hub stack whose functions act here.",
            },
            "HubStackName": {
                "Type": "String",
                "AllowedPattern": "^[A-Za-z][A-Za-z0-9-]{0,127}$",
                "Description": "The hub stack's name: only its functions' roles may assume these roles.",
            },
            "RolesRegion": {
                "Type": "String",
                "Default": "",
                "AllowedPattern": "^([a-z]{2}(-[a-z]+)+-[0-9]{1,2})?$",
                "Description": (
                    "The one Region of each account whose stack instance creates the account-wide roles (IAM "
                    "names are global to an account); empty: every instance creates them, for an account "
                    "targeted in one Region only."
                ),
            },
            **_hub_parameters(hub, copied),
        },
        "Conditions": {
            ROLES_CONDITION: {
                "Fn::Or": [
                    {"Fn::Equals": [{"Ref": "RolesRegion"}, ""]},
                    {"Fn::Equals": [{"Ref": "RolesRegion"}, {"Ref": "AWS::Region"}]},
                ]
            }
        },
        "Resources": resources,
        "Outputs": {
            f"{logical_id}Arn": {"Condition": ROLES_CONDITION, "Value": {"Fn::GetAtt": [logical_id, "Arn"]}}
            for logical_id, resource in resources.items()
            if resource["Type"] == "AWS::IAM::Role"
        },
    }


def render(hub_path: Path = HUB) -> str:
    body = yaml.safe_dump(spoke_template(load_template(hub_path)), sort_keys=False, width=120, allow_unicode=True)
    return HEADER + body


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only say whether spoke/template.yaml is stale")
    args = parser.parse_args(argv)
    expected = render()
    current = SPOKE.read_text(encoding="utf-8") if SPOKE.exists() else ""
    if args.check:
        if current != expected:
            sys.stderr.write(f"stale: spoke/template.yaml (run {COMMAND})\n")
            return 1
        return 0
    if current != expected:
        SPOKE.parent.mkdir(exist_ok=True)
        SPOKE.write_text(expected, encoding="utf-8")
        sys.stderr.write("wrote spoke/template.yaml\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
