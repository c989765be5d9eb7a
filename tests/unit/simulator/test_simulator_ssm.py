"""The simulator's maintenance-window and patch-baseline operations, exercised through boto3."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.ssm.responses import SimpleSystemManagerResponse

from tagpatch.platforms import OPERATING_SYSTEMS
from tagpatch_local import simulator

REGION = "us-east-1"
ARN_RE = r"^arn:aws:ssm:us-east-1:075727635805:patchbaseline/pb-0[0-9a-f]{16}$"


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    code: str = exc.value.response["Error"]["Code"]
    return code


def _window(ssm: Any, **overrides: Any) -> str:
    kwargs: dict[str, Any] = {
        "Name": "patch-web-prod",
        "Schedule": "cron(30 23 ? * TUE#1 *)",
        "Duration": 3,
        "Cutoff": 1,
        "AllowUnassociatedTargets": False,
    }
    kwargs.update(overrides)
    window_id: str = ssm.create_maintenance_window(**kwargs)["WindowId"]
    return window_id


def _target(ssm: Any, window_id: str, **overrides: Any) -> str:
    kwargs: dict[str, Any] = {
        "WindowId": window_id,
        "ResourceType": "INSTANCE",
        "Targets": [{"Key": "tag:Patch Group", "Values": ["web-prod"]}],
        "Name": "web-prod",
    }
    kwargs.update(overrides)
    target_id: str = ssm.register_target_with_maintenance_window(**kwargs)["WindowTargetId"]
    return target_id


def _task(ssm: Any, window_id: str, target_id: str | None = None, **overrides: Any) -> str:
    kwargs: dict[str, Any] = {
        "WindowId": window_id,
        "TaskArn": "AWS-RunPatchBaseline",
        "TaskType": "RUN_COMMAND",
        "MaxConcurrency": "10%",
        "MaxErrors": "1",
        "Priority": 1,
        "ServiceRoleArn": "arn:aws:iam::123456789012:role/patch",
        "Name": "install",
        "Description": "Install approved patches",
        "TaskInvocationParameters": {"RunCommand": {"Parameters": {"Operation": ["Install"]}}},
    }
    if target_id is not None:
        kwargs["Targets"] = [{"Key": "WindowTargetIds", "Values": [target_id]}]
    kwargs.update(overrides)
    task_id: str = ssm.register_task_with_maintenance_window(**kwargs)["WindowTaskId"]
    return task_id


# --------------------------------------------------------------------------------------------------
# The correction mechanism


def test_corrections_record_why_and_are_installed(ssm: Any) -> None:
    corrected = simulator.corrected_operations()
    assert "moto returns [] whenever Filters are given" in corrected["ssm:DescribeMaintenanceWindowTargets"]
    assert all(reason.strip() for reason in corrected.values())
    assert set(corrected) <= set(simulator.installed_operations())
    method = SimpleSystemManagerResponse.describe_maintenance_window_targets
    assert getattr(method, "__tagpatch_operation__", None) == "DescribeMaintenanceWindowTargets"
    assert "ssm:UpdateMaintenanceWindow" not in corrected  # a new operation, not a correction
    simulator.install()  # idempotent
    assert SimpleSystemManagerResponse.describe_maintenance_window_targets is method


def test_correction_fails_loudly_when_moto_drops_the_operation(monkeypatch: pytest.MonkeyPatch) -> None:
    simulator.install()
    monkeypatch.delattr(SimpleSystemManagerResponse, "describe_maintenance_window_tasks")
    with pytest.raises(simulator.MotoLacksOperationError, match="DescribeMaintenanceWindowTasks") as raised:
        simulator.install()
    # It names the decorator that registers an operation moto lacks, as it is spelled today.
    assert "an @operation fake" in str(raised.value)
    assert callable(simulator.operation)


def test_correction_requires_a_reason() -> None:
    with pytest.raises(simulator.SimulatorError, match="must say why"):
        simulator.correction("GetMaintenanceWindow", why=" ")


# --------------------------------------------------------------------------------------------------
# Maintenance windows


def test_get_maintenance_window_has_every_field(ssm: Any) -> None:
    window_id = _window(
        ssm, AllowUnassociatedTargets=True, Description="web", ScheduleTimezone="Europe/Paris", ScheduleOffset=2
    )
    window = ssm.get_maintenance_window(WindowId=window_id)
    assert window["AllowUnassociatedTargets"] is True
    assert window["Enabled"] is True
    assert window["ScheduleTimezone"] == "Europe/Paris"
    assert window["ScheduleOffset"] == 2
    assert window["Description"] == "web"
    assert isinstance(window["CreatedDate"], datetime)
    assert isinstance(window["ModifiedDate"], datetime)
    # Paris local time with its offset, as SSM answers a window with a ScheduleTimezone.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d\+0[12]:00", window["NextExecutionTime"])


def test_get_unknown_window(ssm: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ssm.get_maintenance_window(WindowId="mw-0123456789abcdef0")
    assert _code(exc) == "DoesNotExistException"


def test_update_maintenance_window_changes_get_and_describe(ssm: Any) -> None:
    window_id = _window(ssm, Description="old")
    before = ssm.get_maintenance_window(WindowId=window_id)
    updated = ssm.update_maintenance_window(
        WindowId=window_id, Name="renamed", Schedule="rate(2 days)", Duration=4, Enabled=False
    )
    assert updated["Name"] == "renamed"
    assert updated["Schedule"] == "rate(2 days)"
    assert updated["Duration"] == 4
    assert updated["Cutoff"] == 1  # unchanged fields come back too
    assert updated["Description"] == "old"
    assert updated["Enabled"] is False
    window = ssm.get_maintenance_window(WindowId=window_id)
    assert (window["Name"], window["Schedule"], window["Enabled"]) == ("renamed", "rate(2 days)", False)
    assert window["ModifiedDate"] >= before["ModifiedDate"]
    [identity] = ssm.describe_maintenance_windows()["WindowIdentities"]
    assert (identity["Name"], identity["Enabled"], identity["Duration"]) == ("renamed", False, 4)


def test_update_maintenance_window_replace(ssm: Any) -> None:
    window_id = _window(ssm, Description="old", ScheduleTimezone="UTC")
    with pytest.raises(ClientError) as exc:
        ssm.update_maintenance_window(WindowId=window_id, Replace=True, Name="new-name")
    assert _code(exc) == "ValidationException"
    assert "Schedule" in str(exc.value)
    updated = ssm.update_maintenance_window(
        WindowId=window_id,
        Replace=True,
        Name="new-name",
        Schedule="rate(1 day)",
        Duration=2,
        Cutoff=0,
        AllowUnassociatedTargets=True,
    )
    assert "Description" not in updated
    assert "ScheduleTimezone" not in updated
    assert updated["AllowUnassociatedTargets"] is True


def test_update_unknown_window(ssm: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ssm.update_maintenance_window(WindowId="mw-0123456789abcdef0", Duration=2)
    assert _code(exc) == "DoesNotExistException"


def test_describe_maintenance_windows_filters_and_pages(ssm: Any) -> None:
    ids = [_window(ssm, Name=f"window-{i:02d}") for i in range(12)]
    ssm.update_maintenance_window(WindowId=ids[3], Enabled=False)
    disabled = ssm.describe_maintenance_windows(Filters=[{"Key": "Enabled", "Values": ["false"]}])
    assert [w["WindowId"] for w in disabled["WindowIdentities"]] == [ids[3]]
    named = ssm.describe_maintenance_windows(Filters=[{"Key": "Name", "Values": ["window-05"]}])
    assert [w["WindowId"] for w in named["WindowIdentities"]] == [ids[5]]
    first = ssm.describe_maintenance_windows(MaxResults=10)
    second = ssm.describe_maintenance_windows(MaxResults=10, NextToken=first["NextToken"])
    assert [w["WindowId"] for w in first["WindowIdentities"] + second["WindowIdentities"]] == ids
    assert "NextToken" not in second


def test_describe_maintenance_windows_bad_token_and_filter(ssm: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ssm.describe_maintenance_windows(NextToken="nonsense")
    assert _code(exc) == "InvalidNextToken"
    with pytest.raises(ClientError) as exc:
        ssm.describe_maintenance_windows(Filters=[{"Key": "Colour", "Values": ["red"]}])
    assert _code(exc) == "ValidationException"


def test_tags_and_delete_of_windows_are_moto_s(ssm: Any) -> None:
    window_id = _window(ssm, Tags=[{"Key": "team", "Value": "web"}])
    tags = ssm.list_tags_for_resource(ResourceType="MaintenanceWindow", ResourceId=window_id)["TagList"]
    assert tags == [{"Key": "team", "Value": "web"}]
    ssm.delete_maintenance_window(WindowId=window_id)
    assert ssm.describe_maintenance_windows()["WindowIdentities"] == []


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"Name": "bad name!"}, "regular expression pattern"),
        ({"Name": "x" * 129}, "length less than or equal to 128"),
        ({"Description": "d" * 129}, "length less than or equal to 128"),
        ({"Duration": 25}, "value less than or equal to 24"),
        ({"Duration": 2, "Cutoff": 2}, "less than the Duration"),
        ({"Duration": 2, "Cutoff": 3}, "less than the Duration"),
        ({"Duration": 24, "Cutoff": 24}, "value less than or equal to 23"),
        ({"Schedule": "cron(0 2 * * SUN *)"}, "'?'"),
        ({"Schedule": "cron(0 2 ? * SUN)"}, "6 or 7 fields"),
        ({"Schedule": "cron(0 2 ? * SUN * * *)"}, "6 or 7 fields"),
        ({"Schedule": "rate(1 days)"}, "'day'"),
        ({"Schedule": "rate(2 day)"}, "'days'"),
        ({"Schedule": "rate(0 days)"}, "positive"),
        ({"Schedule": "rate(3 weeks)"}, "unit"),
        ({"Schedule": "at(2026-13-01T00:00:00)"}, "not a valid date"),
        ({"Schedule": "at(2026-12-01 00:00:00)"}, "cron(...), rate(...) or at"),
        ({"Schedule": "every tuesday"}, "cron(...), rate(...) or at"),
        ({"Schedule": "cron(" + "0 " * 130 + ")"}, "length less than or equal to 256"),
        ({"ScheduleTimezone": "Mars/Olympus_Mons"}, "IANA"),
        ({"ScheduleTimezone": "../../etc/passwd"}, "IANA"),
        ({"Schedule": "rate(1 day)", "ScheduleOffset": 2}, "only with a cron"),
        ({"ScheduleOffset": 7}, "value less than or equal to 6"),
    ],
)
def test_window_validation(ssm: Any, overrides: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ClientError) as exc:
        _window(ssm, **overrides)
    assert _code(exc) == "ValidationException"
    assert fragment in exc.value.response["Error"]["Message"]
    window_id = _window(ssm)
    with pytest.raises(ClientError) as exc:
        ssm.update_maintenance_window(WindowId=window_id, **overrides)
    assert _code(exc) == "ValidationException"
    assert fragment in exc.value.response["Error"]["Message"]
    assert ssm.get_maintenance_window(WindowId=window_id)["Name"] == "patch-web-prod"  # unchanged


def test_validation_message_reads_like_ssm(ssm: Any) -> None:
    with pytest.raises(ClientError) as exc:
        _window(ssm, Name="no spaces allowed")
    assert exc.value.response["Error"]["Message"] == (
        "1 validation error detected: Value 'no spaces allowed' at 'name' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9_\\-.]{3,128}$"
    )


@pytest.mark.parametrize(
    "schedule",
    [
        "cron(30 23 ? * TUE#1 *)",
        "cron(0 2 ? * SUN)".replace(")", " *)"),
        "cron(0 4 L * ? *)",
        "cron(0 2 ? * MON-FRI *)",
        "rate(1 day)",
        "rate(12 hours)",
        "rate(30 minutes)",
        "at(2026-12-24T22:00:00)",
    ],
)
def test_valid_schedules_accepted(ssm: Any, schedule: str) -> None:
    assert ssm.get_maintenance_window(WindowId=_window(ssm, Schedule=schedule))["Schedule"] == schedule


def test_offset_with_cron_and_cutoff_against_stored_duration(ssm: Any) -> None:
    window_id = _window(ssm, ScheduleOffset=3)
    assert ssm.get_maintenance_window(WindowId=window_id)["ScheduleOffset"] == 3
    # Updating only Cutoff is checked against the stored Duration (3).
    with pytest.raises(ClientError) as exc:
        ssm.update_maintenance_window(WindowId=window_id, Cutoff=3)
    assert _code(exc) == "ValidationException"
    # Switching the window to rate() while it keeps an offset is rejected.
    with pytest.raises(ClientError) as exc:
        ssm.update_maintenance_window(WindowId=window_id, Schedule="rate(1 day)")
    assert "only with a cron" in str(exc.value)


def test_window_quota(ssm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simulator.quotas, "MAX_MAINTENANCE_WINDOWS", 2)
    _window(ssm, Name="one")
    _window(ssm, Name="two")
    with pytest.raises(ClientError) as exc:
        _window(ssm, Name="three")
    assert _code(exc) == "ResourceLimitExceededException"


def test_window_quota_default_is_50() -> None:
    assert simulator.quotas.MAX_MAINTENANCE_WINDOWS == 50
    assert simulator.quotas.MAX_TARGETS_PER_WINDOW == 100
    assert simulator.quotas.MAX_TASKS_PER_WINDOW == 20


# --------------------------------------------------------------------------------------------------
# Targets


def test_targets_round_trip_owner_information_and_filters(ssm: Any) -> None:
    window_id = _window(ssm)
    web = _target(ssm, window_id, OwnerInformation="team-web", Description="web servers")
    db = _target(ssm, window_id, Name="db-prod", Targets=[{"Key": "tag:PatchGroup", "Values": ["db-prod"]}])
    targets = ssm.describe_maintenance_window_targets(WindowId=window_id)["Targets"]
    assert [t["WindowTargetId"] for t in targets] == [web, db]  # registration order
    assert targets[0]["OwnerInformation"] == "team-web"
    assert targets[0]["Description"] == "web servers"
    assert targets[0]["ResourceType"] == "INSTANCE"
    assert "OwnerInformation" not in targets[1]  # omitted, not ""

    def ids(key: str, values: list[str]) -> list[str]:
        found = ssm.describe_maintenance_window_targets(WindowId=window_id, Filters=[{"Key": key, "Values": values}])[
            "Targets"
        ]
        return [t["WindowTargetId"] for t in found]

    assert ids("WindowTargetId", [db]) == [db]
    assert ids("OwnerInformation", ["team-web"]) == [web]
    assert ids("Type", ["INSTANCE"]) == [web, db]
    assert ids("Type", ["RESOURCE_GROUP"]) == []
    with pytest.raises(ClientError) as exc:
        ids("Name", ["web-prod"])
    assert _code(exc) == "ValidationException"


def test_targets_pagination(ssm: Any) -> None:
    window_id = _window(ssm)
    registered = [_target(ssm, window_id, Name=f"target-{i:02d}") for i in range(13)]
    pages = list(
        ssm.get_paginator("describe_maintenance_window_targets").paginate(
            WindowId=window_id, PaginationConfig={"PageSize": 10}
        )
    )
    assert [len(p["Targets"]) for p in pages] == [10, 3]
    assert [t["WindowTargetId"] for p in pages for t in p["Targets"]] == registered


def test_update_maintenance_window_target(ssm: Any) -> None:
    window_id = _window(ssm)
    target_id = _target(ssm, window_id, OwnerInformation="old", Description="old")
    updated = ssm.update_maintenance_window_target(
        WindowId=window_id,
        WindowTargetId=target_id,
        Targets=[{"Key": "tag:Patch Group", "Values": ["web-prod", "web-canary"]}],
        OwnerInformation="new",
    )
    assert updated["OwnerInformation"] == "new"
    assert updated["Description"] == "old"
    [target] = ssm.describe_maintenance_window_targets(WindowId=window_id)["Targets"]
    assert target["Targets"] == [{"Key": "tag:Patch Group", "Values": ["web-prod", "web-canary"]}]
    assert target["OwnerInformation"] == "new"
    replaced = ssm.update_maintenance_window_target(
        WindowId=window_id,
        WindowTargetId=target_id,
        Replace=True,
        Targets=[{"Key": "tag:Patch Group", "Values": ["web-prod"]}],
    )
    assert {"OwnerInformation", "Description", "Name"}.isdisjoint(replaced)
    with pytest.raises(ClientError) as exc:
        ssm.update_maintenance_window_target(WindowId=window_id, WindowTargetId=target_id, Replace=True)
    assert _code(exc) == "ValidationException"


def test_update_unknown_target(ssm: Any) -> None:
    window_id = _window(ssm)
    with pytest.raises(ClientError) as exc:
        ssm.update_maintenance_window_target(
            WindowId=window_id, WindowTargetId="00000000-0000-0000-0000-000000000000", Name="abc"
        )
    assert _code(exc) == "DoesNotExistException"


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"Name": "web prod"}, "regular expression pattern"),
        ({"Name": "x" * 129}, "length less than or equal to 128"),
        ({"OwnerInformation": "o" * 129}, "length less than or equal to 128"),
        ({"Description": "d" * 129}, "length less than or equal to 128"),
        ({"Targets": [{"Key": f"tag:k{i}", "Values": ["v"]} for i in range(6)]}, "less than or equal to 5"),
        ({"Targets": [{"Key": "tag:k", "Values": [f"v{i}" for i in range(51)]}]}, "less than or equal to 50"),
        # Targets by id: Key=InstanceIds, at most 50 Values like any target (the API's Target shape).
        (
            {"Targets": [{"Key": "InstanceIds", "Values": [f"i-{i:017x}" for i in range(51)]}]},
            "less than or equal to 50",
        ),
    ],
)
def test_target_validation(ssm: Any, overrides: dict[str, Any], fragment: str) -> None:
    window_id = _window(ssm)
    with pytest.raises(ClientError) as exc:
        _target(ssm, window_id, **overrides)
    assert _code(exc) == "ValidationException"
    assert fragment in str(exc.value)
    target_id = _target(ssm, window_id)
    with pytest.raises(ClientError) as exc:
        ssm.update_maintenance_window_target(WindowId=window_id, WindowTargetId=target_id, **overrides)
    assert _code(exc) == "ValidationException"


def test_target_quota(ssm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simulator.quotas, "MAX_TARGETS_PER_WINDOW", 2)
    window_id = _window(ssm)
    _target(ssm, window_id)
    _target(ssm, window_id)
    with pytest.raises(ClientError) as exc:
        _target(ssm, window_id)
    assert _code(exc) == "ResourceLimitExceededException"
    _target(ssm, _window(ssm, Name="other"))  # the quota is per window


def test_register_target_unknown_window(ssm: Any) -> None:
    with pytest.raises(ClientError) as exc:
        _target(ssm, "mw-0123456789abcdef0")
    assert _code(exc) == "DoesNotExistException"


def test_deregister_target_safe_and_unknown(ssm: Any) -> None:
    window_id = _window(ssm)
    target_id = _target(ssm, window_id)
    task_id = _task(ssm, window_id, target_id)
    with pytest.raises(ClientError) as exc:
        ssm.deregister_target_from_maintenance_window(WindowId=window_id, WindowTargetId=target_id, Safe=True)
    assert _code(exc) == "TargetInUseException"
    ssm.deregister_task_from_maintenance_window(WindowId=window_id, WindowTaskId=task_id)
    out = ssm.deregister_target_from_maintenance_window(WindowId=window_id, WindowTargetId=target_id, Safe=True)
    assert out["WindowTargetId"] == target_id
    assert ssm.describe_maintenance_window_targets(WindowId=window_id)["Targets"] == []
    with pytest.raises(ClientError) as exc:
        ssm.deregister_target_from_maintenance_window(WindowId=window_id, WindowTargetId=target_id)
    assert _code(exc) == "DoesNotExistException"


# --------------------------------------------------------------------------------------------------
# Tasks


def test_task_type_round_trips_and_filters(ssm: Any) -> None:
    window_id = _window(ssm)
    target_id = _target(ssm, window_id)
    run = _task(ssm, window_id, target_id, Priority=1)
    scan = _task(
        ssm,
        window_id,
        target_id,
        Priority=2,
        Name="scan",
        TaskInvocationParameters={"RunCommand": {"Parameters": {"Operation": ["Scan"]}}},
    )
    lam = _task(
        ssm,
        window_id,
        TaskArn="arn:aws:lambda:us-east-1:123456789012:function:notify",
        TaskType="LAMBDA",
        Priority=3,
        Name="notify",
        TaskInvocationParameters={"Lambda": {"Payload": b"{}"}},
    )
    tasks = ssm.describe_maintenance_window_tasks(WindowId=window_id)["Tasks"]
    assert [t["WindowTaskId"] for t in tasks] == [run, scan, lam]
    first = tasks[0]
    assert first["Type"] == "RUN_COMMAND"
    assert first["TaskArn"] == "AWS-RunPatchBaseline"
    assert first["Targets"] == [{"Key": "WindowTargetIds", "Values": [target_id]}]
    assert first["ServiceRoleArn"] == "arn:aws:iam::123456789012:role/patch"
    assert (first["MaxConcurrency"], first["MaxErrors"], first["Priority"]) == ("10%", "1", 1)
    assert (first["Name"], first["Description"]) == ("install", "Install approved patches")
    assert tasks[2]["Type"] == "LAMBDA"

    def ids(key: str, values: list[str]) -> list[str]:
        found = ssm.describe_maintenance_window_tasks(WindowId=window_id, Filters=[{"Key": key, "Values": values}])
        return [t["WindowTaskId"] for t in found["Tasks"]]

    assert ids("TaskType", ["RUN_COMMAND"]) == [run, scan]
    assert ids("TaskArn", ["AWS-RunPatchBaseline"]) == [run, scan]
    assert ids("WindowTaskId", [scan]) == [scan]
    assert ids("Priority", ["3"]) == [lam]
    with pytest.raises(ClientError) as exc:
        ids("Name", ["scan"])
    assert _code(exc) == "ValidationException"


def test_get_maintenance_window_task(ssm: Any) -> None:
    window_id = _window(ssm)
    target_id = _target(ssm, window_id)
    task_id = _task(
        ssm,
        window_id,
        target_id,
        CutoffBehavior="CANCEL_TASK",
        AlarmConfiguration={"Alarms": [{"Name": "patch-errors"}]},
    )
    task = ssm.get_maintenance_window_task(WindowId=window_id, WindowTaskId=task_id)
    assert task["TaskType"] == "RUN_COMMAND"
    assert task["TaskInvocationParameters"] == {"RunCommand": {"Parameters": {"Operation": ["Install"]}}}
    assert task["ServiceRoleArn"] == "arn:aws:iam::123456789012:role/patch"
    assert (task["Priority"], task["MaxConcurrency"], task["MaxErrors"]) == (1, "10%", "1")
    assert (task["Name"], task["Description"]) == ("install", "Install approved patches")
    assert task["Targets"] == [{"Key": "WindowTargetIds", "Values": [target_id]}]
    assert task["CutoffBehavior"] == "CANCEL_TASK"
    assert task["AlarmConfiguration"] == {"Alarms": [{"Name": "patch-errors"}]}
    with pytest.raises(ClientError) as exc:
        ssm.get_maintenance_window_task(WindowId=window_id, WindowTaskId="00000000-0000-0000-0000-000000000000")
    assert _code(exc) == "DoesNotExistException"


def test_update_maintenance_window_task(ssm: Any) -> None:
    window_id = _window(ssm)
    target_id = _target(ssm, window_id)
    task_id = _task(ssm, window_id, target_id)
    updated = ssm.update_maintenance_window_task(
        WindowId=window_id,
        WindowTaskId=task_id,
        MaxConcurrency="50",
        MaxErrors="5%",
        TaskInvocationParameters={"RunCommand": {"Parameters": {"Operation": ["Scan"]}}},
    )
    assert (updated["MaxConcurrency"], updated["MaxErrors"]) == ("50", "5%")
    assert updated["Name"] == "install"
    task = ssm.get_maintenance_window_task(WindowId=window_id, WindowTaskId=task_id)
    assert task["TaskInvocationParameters"]["RunCommand"]["Parameters"] == {"Operation": ["Scan"]}
    assert task["TaskType"] == "RUN_COMMAND"
    [described] = ssm.describe_maintenance_window_tasks(WindowId=window_id)["Tasks"]
    assert described["MaxConcurrency"] == "50"
    replaced = ssm.update_maintenance_window_task(
        WindowId=window_id, WindowTaskId=task_id, Replace=True, TaskArn="AWS-RunPatchBaselineWithHooks"
    )
    assert replaced["TaskArn"] == "AWS-RunPatchBaselineWithHooks"
    assert {"Name", "MaxConcurrency", "Targets"}.isdisjoint(replaced)
    with pytest.raises(ClientError) as exc:
        ssm.update_maintenance_window_task(WindowId=window_id, WindowTaskId=task_id, Replace=True)
    assert _code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        ssm.update_maintenance_window_task(WindowId=window_id, WindowTaskId=task_id, MaxErrors="lots")
    assert _code(exc) == "ValidationException"


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"Name": "has space"}, "regular expression pattern"),
        ({"MaxConcurrency": "0"}, "regular expression pattern"),
        ({"MaxErrors": "101%"}, "regular expression pattern"),
        ({"Targets": [{"Key": f"tag:k{i}", "Values": ["v"]} for i in range(6)]}, "less than or equal to 5"),
    ],
)
def test_task_validation(ssm: Any, overrides: dict[str, Any], fragment: str) -> None:
    window_id = _window(ssm)
    with pytest.raises(ClientError) as exc:
        _task(ssm, window_id, **overrides)
    assert _code(exc) == "ValidationException"
    assert fragment in str(exc.value)


def test_task_quota(ssm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simulator.quotas, "MAX_TASKS_PER_WINDOW", 2)
    window_id = _window(ssm)
    _task(ssm, window_id)
    _task(ssm, window_id)
    with pytest.raises(ClientError) as exc:
        _task(ssm, window_id)
    assert _code(exc) == "ResourceLimitExceededException"


def test_deregister_unknown_task(ssm: Any) -> None:
    window_id = _window(ssm)
    with pytest.raises(ClientError) as exc:
        ssm.deregister_task_from_maintenance_window(
            WindowId=window_id, WindowTaskId="00000000-0000-0000-0000-000000000000"
        )
    assert _code(exc) == "DoesNotExistException"


# --------------------------------------------------------------------------------------------------
# Patch baselines and patch groups


def _baseline(ssm: Any, name: str = "web-al2023", os_name: str = "AMAZON_LINUX_2023", **kw: Any) -> str:
    baseline_id: str = ssm.create_patch_baseline(Name=name, OperatingSystem=os_name, **kw)["BaselineId"]
    return baseline_id


def _all_baselines(ssm: Any, **kwargs: Any) -> list[dict[str, Any]]:
    return [
        b
        for page in ssm.get_paginator("describe_patch_baselines").paginate(**kwargs)
        for b in page["BaselineIdentities"]
    ]


def test_aws_managed_default_baselines(ssm: Any) -> None:
    managed = _all_baselines(ssm, Filters=[{"Key": "OWNER", "Values": ["AWS"]}])
    assert {b["OperatingSystem"] for b in managed} == OPERATING_SYSTEMS
    assert len(managed) == len(OPERATING_SYSTEMS)
    by_os = {b["OperatingSystem"]: b for b in managed}
    assert by_os["WINDOWS"]["BaselineName"] == "AWS-DefaultPatchBaseline"
    assert by_os["AMAZON_LINUX_2023"]["BaselineName"] == "AWS-AmazonLinux2023DefaultPatchBaseline"
    assert by_os["UBUNTU"]["BaselineName"] == "AWS-UbuntuDefaultPatchBaseline"
    for baseline in managed:
        assert baseline["DefaultBaseline"] is True
        assert baseline["BaselineId"].startswith("arn:aws:ssm:us-east-1:075727635805:patchbaseline/pb-0")
        assert len(baseline["BaselineId"].rsplit("/pb-", 1)[1]) == 17


def test_describe_patch_baselines_filters(ssm: Any) -> None:
    custom = _baseline(ssm)
    other = _baseline(ssm, name="db-ubuntu", os_name="UBUNTU")
    mine = _all_baselines(ssm, Filters=[{"Key": "OWNER", "Values": ["Self"]}])
    assert [b["BaselineId"] for b in mine] == [custom, other]
    assert all(b["DefaultBaseline"] is False for b in mine)
    al2023 = _all_baselines(ssm, Filters=[{"Key": "OPERATING_SYSTEM", "Values": ["AMAZON_LINUX_2023"]}])
    assert [b["BaselineName"] for b in al2023] == ["AWS-AmazonLinux2023DefaultPatchBaseline", "web-al2023"]
    prefixed = _all_baselines(ssm, Filters=[{"Key": "NAME_PREFIX", "Values": ["web-"]}])
    assert [b["BaselineId"] for b in prefixed] == [custom]
    both = _all_baselines(
        ssm,
        Filters=[{"Key": "OWNER", "Values": ["AWS"]}, {"Key": "OPERATING_SYSTEM", "Values": ["UBUNTU"]}],
    )
    assert [b["BaselineName"] for b in both] == ["AWS-UbuntuDefaultPatchBaseline"]
    everything = _all_baselines(ssm, PaginationConfig={"PageSize": 5})
    assert len(everything) == len(OPERATING_SYSTEMS) + 2
    with pytest.raises(ClientError) as exc:
        ssm.describe_patch_baselines(Filters=[{"Key": "COLOUR", "Values": ["x"]}])
    assert _code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        ssm.describe_patch_baselines(MaxResults=101)
    assert _code(exc) == "ValidationException"


def test_get_patch_baseline_custom_and_managed(ssm: Any) -> None:
    rules = {
        "PatchRules": [
            {
                "PatchFilterGroup": {"PatchFilters": [{"Key": "CLASSIFICATION", "Values": ["Security"]}]},
                "ApproveAfterDays": 7,
            }
        ]
    }
    custom = _baseline(ssm, ApprovalRules=rules, Description="web servers")
    got = ssm.get_patch_baseline(BaselineId=custom)
    assert (got["Name"], got["OperatingSystem"], got["Description"]) == (
        "web-al2023",
        "AMAZON_LINUX_2023",
        "web servers",
    )
    assert got["ApprovalRules"]["PatchRules"][0]["ApproveAfterDays"] == 7
    assert got["PatchGroups"] == []
    assert isinstance(got["CreatedDate"], datetime)
    arn = ssm.get_default_patch_baseline(OperatingSystem="UBUNTU")["BaselineId"]
    managed = ssm.get_patch_baseline(BaselineId=arn)
    assert managed["Name"] == "AWS-UbuntuDefaultPatchBaseline"
    assert managed["OperatingSystem"] == "UBUNTU"
    bare_id = arn.rsplit("/", 1)[1]
    with pytest.raises(ClientError) as exc:
        ssm.get_patch_baseline(BaselineId=bare_id)  # AWS-managed baselines need the full ARN
    assert _code(exc) == "DoesNotExistException"


def test_get_default_patch_baseline(ssm: Any) -> None:
    assert ssm.get_default_patch_baseline()["OperatingSystem"] == "WINDOWS"
    for os_name in OPERATING_SYSTEMS:
        got = ssm.get_default_patch_baseline(OperatingSystem=os_name)
        assert got["OperatingSystem"] == os_name
        assert got["BaselineId"].startswith("arn:aws:ssm:us-east-1:075727635805:patchbaseline/pb-0")


def test_default_baselines_in_another_region(aws_env: None) -> None:
    simulator.install()
    with mock_aws():
        client = boto3.client("ssm", region_name="eu-west-1")
        arn = client.get_default_patch_baseline(OperatingSystem="AMAZON_LINUX_2023")["BaselineId"]
        assert arn.startswith("arn:aws:ssm:eu-west-1:")
        assert client.get_patch_baseline(BaselineId=arn)["OperatingSystem"] == "AMAZON_LINUX_2023"


def test_patch_group_register_describe_deregister_round_trip(ssm: Any) -> None:
    custom = _baseline(ssm)
    windows_arn = ssm.get_default_patch_baseline(OperatingSystem="WINDOWS")["BaselineId"]
    out = ssm.register_patch_baseline_for_patch_group(BaselineId=custom, PatchGroup="web-prod")
    assert (out["BaselineId"], out["PatchGroup"]) == (custom, "web-prod")
    out = ssm.register_patch_baseline_for_patch_group(BaselineId=windows_arn, PatchGroup="web-prod")
    assert out["BaselineId"] == windows_arn  # an AWS-managed baseline, by ARN
    ssm.register_patch_baseline_for_patch_group(BaselineId=custom, PatchGroup="db-prod")

    with pytest.raises(ClientError) as exc:
        ssm.register_patch_baseline_for_patch_group(BaselineId=custom, PatchGroup="web-prod")
    assert _code(exc) == "AlreadyExistsException"
    assert exc.value.response["Error"]["Message"] == (
        "Patch Group web-prod already has a baseline registered for OperatingSystem AMAZON_LINUX_2023."
    )
    other_al2023 = _baseline(ssm, name="web-al2023-b")
    with pytest.raises(ClientError) as exc:
        ssm.register_patch_baseline_for_patch_group(BaselineId=other_al2023, PatchGroup="web-prod")
    assert _code(exc) == "AlreadyExistsException"

    got = ssm.get_patch_baseline_for_patch_group(PatchGroup="web-prod", OperatingSystem="AMAZON_LINUX_2023")
    assert got["BaselineId"] == custom
    assert ssm.get_patch_baseline_for_patch_group(PatchGroup="web-prod")["BaselineId"] == windows_arn
    assert ssm.get_patch_baseline(BaselineId=custom)["PatchGroups"] == ["db-prod", "web-prod"]

    mappings = ssm.describe_patch_groups()["Mappings"]
    assert [(m["PatchGroup"], m["BaselineIdentity"]["BaselineId"]) for m in mappings] == [
        ("db-prod", custom),
        ("web-prod", custom),
        ("web-prod", windows_arn),
    ]
    assert mappings[2]["BaselineIdentity"]["BaselineName"] == "AWS-DefaultPatchBaseline"
    assert mappings[2]["BaselineIdentity"]["DefaultBaseline"] is True
    web = ssm.describe_patch_groups(Filters=[{"Key": "NAME_PREFIX", "Values": ["web"]}])["Mappings"]
    assert [m["PatchGroup"] for m in web] == ["web-prod", "web-prod"]
    windows = ssm.describe_patch_groups(Filters=[{"Key": "OPERATING_SYSTEM", "Values": ["WINDOWS"]}])
    assert [m["BaselineIdentity"]["BaselineId"] for m in windows["Mappings"]] == [windows_arn]
    first = ssm.describe_patch_groups(MaxResults=2)
    rest = ssm.describe_patch_groups(MaxResults=2, NextToken=first["NextToken"])
    assert len(first["Mappings"]) + len(rest["Mappings"]) == 3

    out = ssm.deregister_patch_baseline_for_patch_group(BaselineId=custom, PatchGroup="web-prod")
    assert (out["BaselineId"], out["PatchGroup"]) == (custom, "web-prod")
    default_al2023 = ssm.get_default_patch_baseline(OperatingSystem="AMAZON_LINUX_2023")["BaselineId"]
    got = ssm.get_patch_baseline_for_patch_group(PatchGroup="web-prod", OperatingSystem="AMAZON_LINUX_2023")
    assert got["BaselineId"] == default_al2023  # back to the default
    with pytest.raises(ClientError) as exc:
        ssm.deregister_patch_baseline_for_patch_group(BaselineId=custom, PatchGroup="web-prod")
    assert _code(exc) == "DoesNotExistException"
    # Now another AMAZON_LINUX_2023 baseline can take the slot.
    ssm.register_patch_baseline_for_patch_group(BaselineId=other_al2023, PatchGroup="web-prod")
    assert [m["PatchGroup"] for m in ssm.describe_patch_groups()["Mappings"]] == ["db-prod", "web-prod", "web-prod"]


def test_register_unknown_baseline(ssm: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ssm.register_patch_baseline_for_patch_group(BaselineId="pb-0123456789abcdef0", PatchGroup="web")
    assert _code(exc) == "DoesNotExistException"
    with pytest.raises(ClientError) as exc:
        ssm.deregister_patch_baseline_for_patch_group(BaselineId="pb-0123456789abcdef0", PatchGroup="web")
    assert _code(exc) == "DoesNotExistException"


def test_patch_groups_per_baseline_quota(ssm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simulator.quotas, "MAX_PATCH_GROUPS_PER_BASELINE", 1)
    custom = _baseline(ssm)
    ssm.register_patch_baseline_for_patch_group(BaselineId=custom, PatchGroup="a")
    with pytest.raises(ClientError) as exc:
        ssm.register_patch_baseline_for_patch_group(BaselineId=custom, PatchGroup="b")
    assert _code(exc) == "ResourceLimitExceededException"


def test_create_patch_baseline_with_tags(ssm: Any) -> None:
    custom = _baseline(ssm, Tags=[{"Key": "team", "Value": "web"}])
    assert ssm.list_tags_for_resource(ResourceType="PatchBaseline", ResourceId=custom)["TagList"] == [
        {"Key": "team", "Value": "web"}
    ]
    ssm.add_tags_to_resource(ResourceType="PatchBaseline", ResourceId=custom, Tags=[{"Key": "env", "Value": "prod"}])
    ssm.remove_tags_from_resource(ResourceType="PatchBaseline", ResourceId=custom, TagKeys=["team"])
    tags = ssm.list_tags_for_resource(ResourceType="PatchBaseline", ResourceId=custom)["TagList"]
    assert tags == [{"Key": "env", "Value": "prod"}]
    with pytest.raises(ClientError) as exc:
        ssm.list_tags_for_resource(ResourceType="PatchBaseline", ResourceId="pb-0123456789abcdef0")
    assert _code(exc) == "InvalidResourceId"


def test_create_patch_baseline_defaults_to_windows_and_quota(ssm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    custom = ssm.create_patch_baseline(Name="no-os")["BaselineId"]
    assert ssm.get_patch_baseline(BaselineId=custom)["OperatingSystem"] == "WINDOWS"
    monkeypatch.setattr(simulator.quotas, "MAX_PATCH_BASELINES", 1)
    with pytest.raises(ClientError) as exc:
        ssm.create_patch_baseline(Name="second")
    assert _code(exc) == "ResourceLimitExceededException"


def test_delete_patch_baseline_in_use(ssm: Any) -> None:
    custom = _baseline(ssm)
    ssm.register_patch_baseline_for_patch_group(BaselineId=custom, PatchGroup="web")
    with pytest.raises(ClientError) as exc:
        ssm.delete_patch_baseline(BaselineId=custom)
    assert _code(exc) == "ResourceInUseException"
    ssm.deregister_patch_baseline_for_patch_group(BaselineId=custom, PatchGroup="web")
    assert ssm.delete_patch_baseline(BaselineId=custom)["BaselineId"] == custom
    assert _all_baselines(ssm, Filters=[{"Key": "OWNER", "Values": ["Self"]}]) == []


def test_state_resets_with_mock(aws_env: None) -> None:
    simulator.install()
    with mock_aws():
        client = boto3.client("ssm", region_name=REGION)
        custom = client.create_patch_baseline(Name="web-al2023", OperatingSystem="AMAZON_LINUX_2023")
        client.register_patch_baseline_for_patch_group(BaselineId=custom["BaselineId"], PatchGroup="web")
        assert len(client.describe_patch_groups()["Mappings"]) == 1
    with mock_aws():
        client = boto3.client("ssm", region_name=REGION)
        assert client.describe_patch_groups()["Mappings"] == []


def test_predefined_baselines_are_for_operating_systems_ssm_knows() -> None:
    # The simulator's list comes from the Patch Manager guide; SSM's model is the other witness.
    enum = simulator.core.service_model("ssm").shape_for("OperatingSystem").enum
    assert set(enum) >= simulator.baselines.OPERATING_SYSTEMS
