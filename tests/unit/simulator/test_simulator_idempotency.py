"""The simulated SSM honours ClientToken and reports the service-linked role as SSM does."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from .test_simulator_ssm import _target, _task, _window

SERVICE_LINKED = "arn:aws:iam::123456789012:role/aws-service-role/ssm.amazonaws.com/AWSServiceRoleForAmazonSSM"


def _task_without_role(ssm: Any, window_id: str, target_id: str) -> str:
    task_id: str = ssm.register_task_with_maintenance_window(
        WindowId=window_id,
        Targets=[{"Key": "WindowTargetIds", "Values": [target_id]}],
        TaskArn="AWS-RunPatchBaseline",
        TaskType="RUN_COMMAND",
        MaxConcurrency="10%",
        MaxErrors="1",
        Name="install",
    )["WindowTaskId"]
    return task_id


def _window_count(ssm: Any) -> int:
    return len(ssm.describe_maintenance_windows()["WindowIdentities"])


def test_a_create_repeated_with_its_client_token_returns_the_first_window(ssm: Any) -> None:
    first = _window(ssm, ClientToken="token-1")
    assert _window(ssm, ClientToken="token-1") == first
    assert _window_count(ssm) == 1
    assert _window(ssm, ClientToken="token-2") != first  # another token is another request
    assert _window(ssm) != first  # and so is no token
    assert _window_count(ssm) == 3


def test_a_client_token_reused_with_other_parameters_is_a_mismatch(ssm: Any) -> None:
    _window(ssm, ClientToken="token-1")
    with pytest.raises(ClientError) as caught:
        _window(ssm, ClientToken="token-1", Duration=4)
    assert caught.value.response["Error"]["Code"] == "IdempotentParameterMismatch"
    assert _window_count(ssm) == 1


def test_targets_and_tasks_honour_the_client_token(ssm: Any) -> None:
    window_id = _window(ssm)
    target_id = _target(ssm, window_id, ClientToken="t")
    assert _target(ssm, window_id, ClientToken="t") == target_id
    task_id = _task(ssm, window_id, target_id, ClientToken="k")
    assert _task(ssm, window_id, target_id, ClientToken="k") == task_id
    with pytest.raises(ClientError) as caught:
        _task(ssm, window_id, target_id, ClientToken="k", Priority=2)
    assert caught.value.response["Error"]["Code"] == "IdempotentParameterMismatch"
    assert len(ssm.describe_maintenance_window_targets(WindowId=window_id)["Targets"]) == 1
    assert len(ssm.describe_maintenance_window_tasks(WindowId=window_id)["Tasks"]) == 1


def test_a_task_registered_without_a_role_reports_the_service_linked_role(ssm: Any) -> None:
    window_id = _window(ssm)
    target_id = _target(ssm, window_id)
    task_id = _task_without_role(ssm, window_id, target_id)
    assert ssm.get_maintenance_window_task(WindowId=window_id, WindowTaskId=task_id)["ServiceRoleArn"] == SERVICE_LINKED
    (listed,) = ssm.describe_maintenance_window_tasks(WindowId=window_id)["Tasks"]
    assert listed["ServiceRoleArn"] == SERVICE_LINKED
    # Replace=true without a role: SSM falls back to the service-linked role again.
    ssm.update_maintenance_window_task(
        WindowId=window_id, WindowTaskId=task_id, TaskArn="AWS-RunPatchBaseline", Replace=True
    )
    assert ssm.get_maintenance_window_task(WindowId=window_id, WindowTaskId=task_id)["ServiceRoleArn"] == SERVICE_LINKED
