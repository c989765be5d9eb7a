"""The backup-before-install runbook (#24) and the role Automation runs it under, as the stack deploys them."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from tagpatch_local.runner import ACCOUNT_ID, SimulatedAccount
from tagpatch_local.simulator import iam

from .support import instance


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
        ("aws:executeAwsApi", "Abort"),
        ("aws:executeAwsApi", "Abort"),
        ("aws:executeAwsApi", "Abort"),
        ("aws:runCommand", "Abort"),
    ]
    image, tag, find, tag_snapshots, patch = steps
    # The image carries the ownership tag a retention rule selects by (aws:createImage takes no tags),
    # and so do its snapshots, which the rule's tag-conditioned DeleteSnapshot deletes with the image.
    assert (tag["inputs"]["Api"], tag["inputs"]["Resources"]) == ("CreateTags", ["{{ createImage.ImageId }}"])
    assert (find["inputs"]["Api"], find["inputs"]["ImageIds"]) == ("DescribeImages", ["{{ createImage.ImageId }}"])
    assert (tag_snapshots["inputs"]["Api"], tag_snapshots["inputs"]["Resources"]) == (
        "CreateTags",
        "{{ findImageSnapshots.SnapshotIds }}",
    )
    assert tag_snapshots["inputs"]["Tags"] == tag["inputs"]["Tags"]
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
        "ec2:CreateSnapshots",
        "ec2:CreateTags",
        "ec2:DescribeImages",
        "ssm:SendCommand",
        "ssm:ListCommands",
        "ssm:ListCommandInvocations",
    }
    send = next(s for s in document["Statement"] if s["Action"] == "ssm:SendCommand")
    assert [r for r in send["Resource"] if ":document/" in r] == [
        f"arn:aws:ssm:{account.region}::document/AWS-RunPatchBaselineWithHooks"
    ]


def test_a_window_running_the_runbook_patches_only_where_the_backup_succeeded(account: SimulatedAccount) -> None:
    """The stack's runbook and role, deployed, run by an AUTOMATION task in a window of the test's own:
    the instance whose image fails is never patched; the other is imaged, then patched."""
    backed_up, backup_fails = account.seed([instance("web", None, name="imaged"), instance("web", None, name="lost")])
    for instance_id in (backed_up, backup_fails):
        account.set_patch_behaviour(instance_id, {"missing": 3})
    account.set_patch_behaviour(backup_fails, {"backup": "failed"})  # the fleet file's word for it
    ssm = account.client("ssm")
    role_arn = account.client("iam").get_role(RoleName=account.physical_id("BackupAutomationRole"))["Role"]["Arn"]
    window_id = ssm.create_maintenance_window(
        Name="backup-test", Schedule="cron(0 2 ? * SUN *)", Duration=3, Cutoff=1, AllowUnassociatedTargets=False
    )["WindowId"]
    target_id = ssm.register_target_with_maintenance_window(
        WindowId=window_id, ResourceType="INSTANCE", Targets=[{"Key": "tag:Patch Group", "Values": ["web"]}]
    )["WindowTargetId"]
    ssm.register_task_with_maintenance_window(
        WindowId=window_id,
        TaskType="AUTOMATION",
        TaskArn=account.physical_id("BackupThenPatchRunbook"),
        Targets=[{"Key": "WindowTargetIds", "Values": [target_id]}],
        TaskInvocationParameters={
            "Automation": {
                "Parameters": {"InstanceId": ["{{RESOURCE_ID}}"], "AutomationAssumeRole": [role_arn]},
            }
        },
        MaxConcurrency="10",
        MaxErrors="10",
        Priority=1,
    )
    iam.reset_allowed_checks()
    account.advance(timedelta(days=8))  # past a Sunday 02:00 run

    # Least privilege: what the role was checked for is what its statements grant (ListCommands aside:
    # which of the two listings aws:runCommand polls with is not documented, docs/simulator.md).
    role_name = account.physical_id("BackupAutomationRole")
    used = {(check.action, check.resource) for role, check in iam.allowed_checks() if role == role_name}
    region = account.region
    tagged = {check for check in used if check[0] == "ec2:CreateTags"}
    assert used - tagged == {
        ("ec2:CreateImage", f"arn:aws:ec2:{region}:{ACCOUNT_ID}:instance/{backed_up}"),
        ("ec2:CreateImage", f"arn:aws:ec2:{region}:{ACCOUNT_ID}:instance/{backup_fails}"),
        ("ec2:CreateImage", f"arn:aws:ec2:{region}::image/*"),
        ("ec2:CreateImage", f"arn:aws:ec2:{region}::snapshot/*"),
        ("ec2:DescribeImages", "*"),
        ("ssm:SendCommand", f"arn:aws:ssm:{region}::document/AWS-RunPatchBaselineWithHooks"),
        ("ssm:SendCommand", f"arn:aws:ec2:{region}:{ACCOUNT_ID}:instance/{backed_up}"),
        ("ssm:ListCommandInvocations", "*"),
    }

    listed = ssm.describe_automation_executions()["AutomationExecutionMetadataList"]
    by_instance = {
        found["Parameters"]["InstanceId"][0]: found
        for found in (
            ssm.get_automation_execution(AutomationExecutionId=e["AutomationExecutionId"])["AutomationExecution"]
            for e in listed
        )
    }
    assert by_instance[backed_up]["AutomationExecutionStatus"] == "Success"
    (image_id,) = by_instance[backed_up]["Outputs"]["createImage.ImageId"]
    (image,) = account.client("ec2").describe_images(ImageIds=[image_id])["Images"]
    assert image["State"] == "available"
    # Tagged as tagpatch's backup of that instance, under the role's grant on that image alone.
    assert {t["Key"]: t["Value"] for t in image.get("Tags", [])} == {
        "tagpatch:managed": "true",
        "tagpatch:backup-of": backed_up,
    }
    snapshots = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]
    assert snapshots
    described = account.client("ec2").describe_snapshots(SnapshotIds=snapshots)["Snapshots"]
    assert all(
        {t["Key"]: t["Value"] for t in s.get("Tags", [])}
        == {"tagpatch:managed": "true", "tagpatch:backup-of": backed_up}
        for s in described
    ), described
    assert tagged == {
        ("ec2:CreateTags", f"arn:aws:ec2:{region}::image/{image_id}"),
        *(("ec2:CreateTags", f"arn:aws:ec2:{region}::snapshot/{s}") for s in snapshots),
    }
    assert by_instance[backup_fails]["AutomationExecutionStatus"] == "Failed"
    states = {
        s["InstanceId"]: s
        for s in ssm.describe_instance_patch_states(InstanceIds=[backed_up, backup_fails])["InstancePatchStates"]
    }
    assert set(states) == {backed_up}  # the failed backup's instance never reported an Install
    assert (states[backed_up]["Operation"], states[backed_up]["InstalledCount"]) == ("Install", 3)
