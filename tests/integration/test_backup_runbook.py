"""The backup-before-install runbook (#24) and the role Automation runs it under, as the stack deploys them."""

from __future__ import annotations

import json
from typing import Any

from tagpatch_local.runner import SimulatedAccount


def runbook(account: SimulatedAccount) -> dict[str, Any]:
    found = account.client("ssm").get_document(Name=account.physical_id("BackupThenPatchRunbook"))
    assert found["DocumentType"] == "Automation"
    content: dict[str, Any] = json.loads(found["Content"])
    return content


def test_the_runbook_images_the_instance_then_patches_it_and_aborts_on_either_failure(
    account: SimulatedAccount,
) -> None:
    content = runbook(account)
    assert content["schemaVersion"] == "0.3"
    steps = content["mainSteps"]
    assert [(step["action"], step["onFailure"]) for step in steps] == [
        ("aws:createImage", "Abort"),
        ("aws:runCommand", "Abort"),
    ]
    image, patch = steps
    assert image["inputs"]["InstanceId"] == patch["inputs"]["InstanceIds"][0] == "{{ InstanceId }}"
    assert image["inputs"]["NoReboot"] is True
    assert patch["inputs"]["DocumentName"] == "AWS-RunPatchBaselineWithHooks"
    assert content["outputs"] == ["createImage.ImageId"]
    # Every parameter the patch step passes on is one the runbook declares.
    declared = set(content["parameters"])
    passed = {value.strip("{} ") for value in patch["inputs"]["Parameters"].values()}
    assert passed <= declared


def test_the_automation_role_is_assumable_by_ssm_only_and_grants_what_the_two_steps_call(
    account: SimulatedAccount,
) -> None:
    iam = account.client("iam")
    role_name = account.physical_id("BackupAutomationRole")
    trust = iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
    if isinstance(trust, str):
        trust = json.loads(trust)
    assert [statement["Principal"] for statement in trust["Statement"]] == [{"Service": "ssm.amazonaws.com"}]
    (policy_name,) = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
    if isinstance(document, str):
        document = json.loads(document)
    actions = {
        action
        for statement in document["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    assert actions == {
        "ec2:CreateImage",
        "ec2:DescribeImages",
        "ssm:SendCommand",
        "ssm:ListCommands",
        "ssm:ListCommandInvocations",
    }
    send = next(s for s in document["Statement"] if s["Action"] == "ssm:SendCommand")
    assert [r for r in send["Resource"] if ":document/" in r] == [
        f"arn:aws:ssm:{account.region}::document/AWS-RunPatchBaselineWithHooks"
    ]
