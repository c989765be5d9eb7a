"""A window's AUTOMATION task running the stack's backup-then-patch runbook (template.yaml), per
instance, read back through the SSM and EC2 APIs as a caller would."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tagpatch_local.simulator import automation, executions
from tagpatch_local.simulator.core import SimulatorError
from tagpatch_local.template import load_template, resolve

from .test_simulator_executions import ACCOUNT, REGION, START, launch, profile

TEMPLATE = Path(__file__).resolve().parents[3] / "template.yaml"
RUNBOOK = "tagpatch-backup-then-patch"


def _from_template(logical_id: str) -> dict[str, Any]:
    """A resource's properties with the account's pseudo parameters filled in."""
    pseudo = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
    properties = load_template(TEMPLATE)["Resources"][logical_id]["Properties"]
    resolved: dict[str, Any] = resolve(properties, lambda name, _attribute: pseudo[name])
    return resolved


def deploy_runbook_and_role(*, statements_without: str | None = None) -> str:
    """The template's runbook and automation role in this account; the role ARN. `statements_without`:
    drop the role's statement with that Sid."""
    ssm = boto3.client("ssm", region_name=REGION)
    runbook = _from_template("BackupThenPatchRunbook")
    ssm.create_document(
        Name=RUNBOOK, Content=json.dumps(runbook["Content"]), DocumentType="Automation", DocumentFormat="JSON"
    )
    role = _from_template("BackupAutomationRole")
    iam = boto3.client("iam", region_name=REGION)
    arn: str = iam.create_role(
        RoleName="backup-automation", AssumeRolePolicyDocument=json.dumps(role["AssumeRolePolicyDocument"])
    )["Role"]["Arn"]
    (policy,) = role["Policies"]
    document = policy["PolicyDocument"]
    document["Statement"] = [s for s in document["Statement"] if s["Sid"] != statements_without]
    iam.put_role_policy(RoleName="backup-automation", PolicyName="p", PolicyDocument=json.dumps(document))
    return arn


def automation_window(ssm: Any, role_arn: str) -> tuple[str, str]:
    window_id = ssm.create_maintenance_window(
        Name="night", Schedule="cron(0 2 ? * SUN *)", Duration=3, Cutoff=1, AllowUnassociatedTargets=False
    )["WindowId"]
    target_id = ssm.register_target_with_maintenance_window(
        WindowId=window_id, ResourceType="INSTANCE", Targets=[{"Key": "tag:Patch Group", "Values": ["web"]}]
    )["WindowTargetId"]
    ssm.register_task_with_maintenance_window(
        WindowId=window_id,
        TaskType="AUTOMATION",
        TaskArn=RUNBOOK,
        Targets=[{"Key": "WindowTargetIds", "Values": [target_id]}],
        TaskInvocationParameters={
            "Automation": {
                "Parameters": {
                    "InstanceId": ["{{RESOURCE_ID}}"],
                    "AutomationAssumeRole": [role_arn],
                    "Operation": ["Install"],
                }
            }
        },
        MaxConcurrency="10",
        MaxErrors="10",
        Priority=1,
    )
    return window_id, target_id


def run(ssm: Any, window_id: str, selected: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Run the window at START to its end; its task invocations as SSM lists them."""
    from tagpatch_local.simulator import clock

    clock.set_now(ACCOUNT, REGION, START)
    ran = executions.run_window(ACCOUNT, REGION, window_id, START, selected)
    executions.advance_clock(ACCOUNT, REGION, ran.ended + timedelta(minutes=1))
    (task,) = ssm.describe_maintenance_window_execution_tasks(WindowExecutionId=ran.window_execution_id)[
        "WindowExecutionTaskIdentities"
    ]
    invocations: list[dict[str, Any]] = ssm.describe_maintenance_window_execution_task_invocations(
        WindowExecutionId=ran.window_execution_id, TaskId=task["TaskExecutionId"]
    )["WindowExecutionTaskInvocationIdentities"]
    return invocations


def by_instance(ssm: Any, invocations: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each invocation's Automation execution, by the instance it ran on."""
    found = {}
    for invocation in invocations:
        execution = ssm.get_automation_execution(AutomationExecutionId=invocation["ExecutionId"])
        found[execution["AutomationExecution"]["Parameters"]["InstanceId"][0]] = execution["AutomationExecution"] | {
            "invocation": invocation
        }
    return found


def test_each_instance_is_imaged_then_patched_and_a_failed_backup_aborts_before_the_patch(ssm: Any) -> None:
    backed_up, backup_fails = launch(2)
    profile(backed_up, missing=4)
    profile(backup_fails, missing=4, backup_fails=True)
    window_id, target_id = automation_window(ssm, deploy_runbook_and_role())

    invocations = run(ssm, window_id, {target_id: [backed_up, backup_fails]})
    assert len(invocations) == 2  # one per instance
    executions_by_instance = by_instance(ssm, invocations)

    good = executions_by_instance[backed_up]
    assert good["AutomationExecutionStatus"] == "Success"
    assert good["invocation"]["Status"] == "SUCCESS"
    assert [(s["StepName"], s["StepStatus"]) for s in good["StepExecutions"]] == [
        ("createImage", "Success"),
        ("tagImage", "Success"),
        ("findImageSnapshots", "Success"),
        ("tagImageSnapshots", "Success"),
        ("patch", "Success"),
    ]
    (image_id,) = good["Outputs"]["createImage.ImageId"]
    (image,) = boto3.client("ec2", region_name=REGION).describe_images(ImageIds=[image_id])["Images"]
    assert image["State"] == "available"
    assert image["Name"] == f"tagpatch-backup-{backed_up}-{good['AutomationExecutionId']}"
    # The patch ran through Run Command: the node's patch state is the Install's.
    (command_id,) = good["StepExecutions"][4]["Outputs"]["CommandId"]
    (state,) = ssm.describe_instance_patch_states(InstanceIds=[backed_up])["InstancePatchStates"]
    assert (state["Operation"], state["MissingCount"], state["InstalledCount"]) == ("Install", 0, 4)
    assert ssm.get_command_invocation(CommandId=command_id, InstanceId=backed_up)["Status"] == "Success"

    bad = executions_by_instance[backup_fails]
    assert bad["AutomationExecutionStatus"] == "Failed"
    assert bad["invocation"]["Status"] == "FAILED"
    assert [(s["StepName"], s["StepStatus"]) for s in bad["StepExecutions"]] == [("createImage", "Failed")]
    assert "Outputs" not in bad or "createImage.ImageId" not in bad["Outputs"]
    # Never patched: no Install reported for it.
    assert ssm.describe_instance_patch_states(InstanceIds=[backup_fails])["InstancePatchStates"] == []


def test_an_execution_is_in_progress_until_its_steps_end(ssm: Any) -> None:
    (instance_id,) = launch(1)
    window_id, target_id = automation_window(ssm, deploy_runbook_and_role())
    from tagpatch_local.simulator import clock

    clock.set_now(ACCOUNT, REGION, START)
    executions.run_window(ACCOUNT, REGION, window_id, START, {target_id: [instance_id]})
    (listed,) = ssm.describe_automation_executions()["AutomationExecutionMetadataList"]
    assert listed["AutomationExecutionStatus"] == "InProgress"
    assert listed["DocumentName"] == RUNBOOK
    execution = ssm.get_automation_execution(AutomationExecutionId=listed["AutomationExecutionId"])
    (step,) = execution["AutomationExecution"]["StepExecutions"]
    assert (step["StepName"], step["StepStatus"]) == ("createImage", "InProgress")
    (image,) = boto3.client("ec2", region_name=REGION).describe_images(Owners=["self"])["Images"]
    assert image["State"] == "pending"


def test_a_role_without_create_image_fails_the_backup_and_nothing_is_patched(ssm: Any) -> None:
    (instance_id,) = launch(1)
    profile(instance_id, missing=2)
    window_id, target_id = automation_window(ssm, deploy_runbook_and_role(statements_without="ImageTheInstance"))
    (invocation,) = run(ssm, window_id, {target_id: [instance_id]})
    execution = by_instance(ssm, [invocation])[instance_id]
    (step,) = execution["StepExecutions"]
    assert step["StepStatus"] == "Failed"
    assert "ec2:CreateImage" in step["FailureMessage"]
    assert ssm.describe_instance_patch_states(InstanceIds=[instance_id])["InstancePatchStates"] == []


def test_a_role_without_send_command_fails_the_patch_step_after_the_image(ssm: Any) -> None:
    (instance_id,) = launch(1)
    profile(instance_id, missing=2)
    window_id, target_id = automation_window(ssm, deploy_runbook_and_role(statements_without="PatchTheInstance"))
    (invocation,) = run(ssm, window_id, {target_id: [instance_id]})
    execution = by_instance(ssm, [invocation])[instance_id]
    assert [(s["StepName"], s["StepStatus"]) for s in execution["StepExecutions"]] == [
        ("createImage", "Success"),
        ("tagImage", "Success"),
        ("findImageSnapshots", "Success"),
        ("tagImageSnapshots", "Success"),
        ("patch", "Failed"),
    ]
    assert "ssm:SendCommand" in execution["StepExecutions"][4]["FailureMessage"]
    assert ssm.describe_instance_patch_states(InstanceIds=[instance_id])["InstancePatchStates"] == []


def test_an_unknown_execution_is_refused_as_ssm_does(ssm: Any) -> None:
    with pytest.raises(ClientError) as raised:
        ssm.get_automation_execution(AutomationExecutionId="0" * 8 + "-0000-0000-0000-" + "0" * 12)
    assert raised.value.response["Error"]["Code"] == "AutomationExecutionNotFoundException"


def test_describe_automation_executions_refuses_a_filter_it_does_not_answer(ssm: Any) -> None:
    with pytest.raises(ClientError) as raised:
        ssm.describe_automation_executions(Filters=[{"Key": "CurrentAction", "Values": ["aws:createImage"]}])
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert automation.automation_state(ACCOUNT, REGION).executions == {}


ANSWER = {"Snapshots": [{"SnapshotId": "snap-1", "VolumeId": "vol-1"}, {"SnapshotId": "snap-2", "VolumeId": "vol-2"}]}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("$.Snapshots..SnapshotId", ["snap-1", "snap-2"]),
        ("$.Snapshots.SnapshotId", []),  # a list has no keys: `..` or `[n]` reach into it
        ("$.Snapshots[1].VolumeId", ["vol-2"]),
        ("$..VolumeId", ["vol-1", "vol-2"]),
        ("$.Missing", []),
    ],
)
def test_an_execute_aws_api_output_selector_picks_from_the_answer(selector: str, expected: list[str]) -> None:
    assert automation.select(ANSWER, selector) == expected


def test_a_selector_the_simulator_cannot_read_fails_loudly() -> None:
    with pytest.raises(SimulatorError, match="selectors of"):
        automation.select(ANSWER, "$.Snapshots[?(@.VolumeId=='vol-1')]")
