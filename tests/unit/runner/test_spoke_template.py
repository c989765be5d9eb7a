"""spoke/template.yaml against the hub's template.yaml: each step's spoke role holds exactly the EC2
and SSM statements its hub function has, is trusted by that function's role alone, and is the one role
the function may assume; the backup runbook and its role are the hub's own."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tagpatch.aws import TARGET_SERVICES
from tagpatch.targets import (
    SPOKE_BACKUP_ROLE,
    SPOKE_BACKUP_RUNBOOK,
    SPOKE_BACKUP_SNAPSHOT_RUNBOOK,
    session_name,
    spoke_role_name,
)
from tagpatch.workflow import STEPS
from tagpatch_local import spoke_template
from tagpatch_local.template import load_template

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def hub() -> dict[str, Any]:
    return load_template(REPO / "template.yaml")


@pytest.fixture(scope="module")
def spoke() -> dict[str, Any]:
    return load_template(REPO / "spoke" / "template.yaml")


def statements(resource: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    for policy in resource["Properties"].get("Policies", []):
        if "Fn::If" in policy:
            found += policy["Fn::If"][1]["Statement"]
        else:
            found += policy.get("PolicyDocument", policy).get("Statement", [])
    return found


def actions(statement: Mapping[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def target_side(statement: Mapping[str, Any]) -> bool:
    return any(action.split(":", 1)[0] in TARGET_SERVICES for action in actions(statement))


def spoke_roles(spoke: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Role name -> resource, for the step roles (not the backup runbook's)."""
    return {
        str(resource["Properties"]["RoleName"]): resource
        for resource in spoke["Resources"].values()
        if resource["Type"] == "AWS::IAM::Role" and resource["Properties"]["RoleName"] != SPOKE_BACKUP_ROLE
    }


def test_the_spoke_template_is_what_the_hub_s_template_derives() -> None:
    assert (REPO / "spoke" / "template.yaml").read_text(encoding="utf-8") == spoke_template.render(), (
        f"spoke/template.yaml is stale: run {spoke_template.COMMAND}"
    )


def test_each_spoke_role_holds_exactly_its_hub_function_s_ec2_and_ssm_statements(
    hub: dict[str, Any], spoke: dict[str, Any]
) -> None:
    roles = spoke_roles(spoke)
    expected = {}
    for step in STEPS:
        wanted = [s for s in statements(hub["Resources"][step.function]) if target_side(s)]
        if wanted:
            # Account-wide: a role's name is global to the account, so its ARNs name every Region.
            expected[spoke_role_name(step.name)] = spoke_template.account_wide(
                [*wanted, *spoke_template.SPOKE_ONLY.get(step.name, ())]
            )
    assert set(roles) == set(expected)
    assert {"tagpatch-spoke-discovery", "tagpatch-spoke-window-upsert", "tagpatch-spoke-apply-window-changes"} <= set(
        roles
    )
    for name, wanted in expected.items():
        assert statements(roles[name]) == wanted, name


def test_a_changed_hub_statement_makes_the_spoke_differ(hub: dict[str, Any], spoke: dict[str, Any]) -> None:
    changed = copy.deepcopy(hub)
    discovery = changed["Resources"]["DiscoveryFunction"]["Properties"]["Policies"][0]["Statement"]
    listing = next(s for s in discovery if "ec2:DescribeInstances" in actions(s))
    listing["Action"] = [*listing["Action"], "ec2:DescribeTags"]
    assert spoke_template.spoke_template(changed) != spoke_template.spoke_template(hub)
    assert spoke_template.spoke_template(hub)["Resources"] == spoke["Resources"]


def test_a_statement_mixing_target_and_hub_actions_is_refused(hub: dict[str, Any]) -> None:
    changed = copy.deepcopy(hub)
    discovery = changed["Resources"]["DiscoveryFunction"]["Properties"]["Policies"][0]["Statement"]
    listing = next(s for s in discovery if "ec2:DescribeInstances" in actions(s))
    listing["Action"] = [*listing["Action"], "s3:GetObject"]
    with pytest.raises(spoke_template.SpokeTemplateError, match="mixes"):
        spoke_template.spoke_template(changed)


def test_each_spoke_role_trusts_only_its_own_step_s_hub_function_role(spoke: dict[str, Any]) -> None:
    for name, role in spoke_roles(spoke).items():
        step = next(step for step in STEPS if spoke_role_name(step.name) == name)
        (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Effect"] == "Allow"
        assert trust["Action"] == "sts:AssumeRole"
        assert trust["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${HubAccountId}:root"}}
        assert trust["Condition"] == {
            "ArnLike": {
                "aws:PrincipalArn": {
                    "Fn::Sub": (
                        f"arn:${{AWS::Partition}}:iam::${{HubAccountId}}:role/${{HubStackName}}-{step.function}Role-*"
                    )
                }
            },
            "StringEquals": {"sts:RoleSessionName": session_name(step.name)},
        }


def test_each_acting_hub_function_may_assume_its_own_step_s_spoke_role_and_no_other(
    hub: dict[str, Any], spoke: dict[str, Any]
) -> None:
    roles = spoke_roles(spoke)
    granted = {}
    for logical_id, resource in hub["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for statement in statements(resource):
            if "sts:AssumeRole" in actions(statement):
                assert actions(statement) == {"sts:AssumeRole"}, logical_id
                granted[logical_id] = statement["Resource"]
    assert granted == {
        step.function: {"Fn::Sub": f"arn:${{AWS::Partition}}:iam::*:role/{spoke_role_name(step.name)}"}
        for step in STEPS
        if spoke_role_name(step.name) in roles
    }


def test_the_backup_runbook_and_its_role_are_the_hub_s_under_fixed_names(
    hub: dict[str, Any], spoke: dict[str, Any]
) -> None:
    runbook = copy.deepcopy(spoke["Resources"]["BackupThenPatchRunbook"])
    role = copy.deepcopy(spoke["Resources"]["BackupAutomationRole"])
    assert runbook["Properties"].pop("Name") == SPOKE_BACKUP_RUNBOOK
    assert role["Properties"].pop("RoleName") == SPOKE_BACKUP_ROLE
    assert role.pop("Condition") == spoke_template.ROLES_CONDITION
    assert runbook == hub["Resources"]["BackupThenPatchRunbook"]
    assert role == spoke_template.account_wide(hub["Resources"]["BackupAutomationRole"])
    snapshots = copy.deepcopy(spoke["Resources"]["BackupSnapshotsThenPatchRunbook"])
    assert snapshots["Properties"].pop("Name") == SPOKE_BACKUP_SNAPSHOT_RUNBOOK
    assert snapshots == hub["Resources"]["BackupSnapshotsThenPatchRunbook"]


def test_the_spoke_names_only_its_parameters_and_pseudo_parameters(spoke: dict[str, Any]) -> None:
    text = (REPO / "spoke" / "template.yaml").read_text(encoding="utf-8")
    named = set(re.findall(r"\$\{([A-Za-z:]+)\}", text))
    assert named <= {*spoke["Parameters"], "AWS::Partition", "AWS::Region", "AWS::AccountId"}


def test_what_a_step_does_only_in_a_member_is_ec2_or_ssm_of_a_step_that_has_a_spoke_role(spoke: dict[str, Any]) -> None:
    roles = spoke_roles(spoke)
    for step, extra in spoke_template.SPOKE_ONLY.items():
        assert spoke_role_name(step) in roles
        assert all(target_side(statement) for statement in extra)


def test_a_copied_grant_names_every_region_of_the_member_account() -> None:
    statement = {"Resource": {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:document/*"}}
    assert spoke_template.account_wide(statement) == {
        "Resource": {"Fn::Sub": "arn:${AWS::Partition}:ssm:*:${AWS::AccountId}:document/*"}
    }


def test_only_the_roles_region_s_stack_instance_makes_the_account_wide_roles(spoke: dict[str, Any]) -> None:
    roles = {lid for lid, resource in spoke["Resources"].items() if resource["Type"] == "AWS::IAM::Role"}
    conditioned = {lid for lid, resource in spoke["Resources"].items() if "Condition" in resource}
    assert roles == conditioned
    assert spoke["Conditions"][spoke_template.ROLES_CONDITION] == {
        "Fn::Or": [
            {"Fn::Equals": [{"Ref": "RolesRegion"}, ""]},
            {"Fn::Equals": [{"Ref": "RolesRegion"}, {"Ref": "AWS::Region"}]},
        ]
    }
