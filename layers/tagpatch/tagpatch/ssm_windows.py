"""Maintenance windows in SSM: read what exists, and apply one window's planned changes.

Reads grow with the number of windows, never with the number of instances: one listing of
windows, one tag lookup per `tagpatch-` window, and the targets and tasks of the windows tagpatch
owns. Writes happen only in apply mode, one window at a time (the workflow fans out over windows).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from tagpatch.aws import client, paginate
from tagpatch.desired import MANAGED_PREFIX, MANAGED_TAG_KEY, MANAGED_TAG_VALUE, OWNER_INFORMATION
from tagpatch.observability import tracer
from tagpatch.policy import SERVICE_LINKED
from tagpatch.reconcile import PATCH_DOCUMENT, ActualTarget, ActualTask, ActualWindow, Change

WINDOW_PAGE_SIZE: Final = 100  # DescribeMaintenanceWindows maximum
MEMBER_PAGE_SIZE: Final = 100


@dataclass(frozen=True)
class AccountWindows:
    windows: tuple[ActualWindow, ...]  # tagpatch-named windows, owned or not
    unowned_count: int  # every window tagpatch does not own, for the account quota


@tracer.capture_method
def read_windows() -> AccountWindows:
    ssm = client("ssm")
    windows: list[ActualWindow] = []
    unowned = 0
    for identity in paginate(ssm.describe_maintenance_windows, "WindowIdentities", MaxResults=WINDOW_PAGE_SIZE):
        name = identity.get("Name", "")
        owned = name.startswith(MANAGED_PREFIX) and _has_managed_tag(identity["WindowId"])
        if not owned:
            unowned += 1
        if not name.startswith(MANAGED_PREFIX):
            continue  # never looked at further, never touched
        window = _window(identity, owned)
        if owned:
            window = _with_members(window)
        windows.append(window)
    return AccountWindows(tuple(windows), unowned)


def _has_managed_tag(window_id: str) -> bool:
    tags = client("ssm").list_tags_for_resource(ResourceType="MaintenanceWindow", ResourceId=window_id)
    return any(
        tag.get("Key") == MANAGED_TAG_KEY and tag.get("Value") == MANAGED_TAG_VALUE for tag in tags.get("TagList", [])
    )


def _window(identity: Mapping[str, Any], owned: bool) -> ActualWindow:
    return ActualWindow(
        window_id=identity["WindowId"],
        name=identity["Name"],
        owned=owned,
        schedule=identity.get("Schedule", ""),
        timezone=identity.get("ScheduleTimezone"),
        duration_hours=int(identity.get("Duration", 0)),
        cutoff_hours=int(identity.get("Cutoff", 0)),
        offset_days=identity.get("ScheduleOffset"),
        description=identity.get("Description"),
        enabled=bool(identity.get("Enabled", True)),
    )


def _with_members(window: ActualWindow) -> ActualWindow:
    ssm = client("ssm")
    targets = tuple(
        ActualTarget(
            window_target_id=target["WindowTargetId"],
            name=target.get("Name", ""),
            targets=tuple((item["Key"], tuple(sorted(item.get("Values", [])))) for item in target.get("Targets", [])),
            owner_information=target.get("OwnerInformation"),
        )
        for target in paginate(
            ssm.describe_maintenance_window_targets,
            "Targets",
            WindowId=window.window_id,
            MaxResults=MEMBER_PAGE_SIZE,
        )
    )
    tasks = []
    for summary in paginate(
        ssm.describe_maintenance_window_tasks, "Tasks", WindowId=window.window_id, MaxResults=MEMBER_PAGE_SIZE
    ):
        # The task listing has no invocation parameters, where Operation and RebootOption live.
        task = ssm.get_maintenance_window_task(WindowId=window.window_id, WindowTaskId=summary["WindowTaskId"])
        parameters = task.get("TaskInvocationParameters", {}).get("RunCommand", {}).get("Parameters", {})
        target_ids = [
            value
            for item in task.get("Targets", [])
            if item.get("Key") == "WindowTargetIds"
            for value in item["Values"]
        ]
        tasks.append(
            ActualTask(
                window_task_id=task["WindowTaskId"],
                name=task.get("Name", ""),
                description=task.get("Description"),
                task_arn=task.get("TaskArn", ""),
                target_ids=tuple(target_ids),
                service_role_arn=task.get("ServiceRoleArn"),
                max_concurrency=task.get("MaxConcurrency"),
                max_errors=task.get("MaxErrors"),
                priority=task.get("Priority"),
                operation=_first(parameters.get("Operation")),
                reboot_option=_first(parameters.get("RebootOption")),
            )
        )
    return ActualWindow(**{**window.__dict__, "targets": targets, "tasks": tuple(tasks)})


def _first(values: Sequence[str] | None) -> str | None:
    return values[0] if values else None


# --- applying ----------------------------------------------------------------------------------------


def client_token(*parts: str) -> str:
    """Idempotency token: a retried Lambda re-sends the same create and SSM does it once."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:64]


def _window_request(after: Mapping[str, Any]) -> dict[str, Any]:
    request: dict[str, Any] = {
        "Description": after["description"],
        "Schedule": after["schedule"],
        "ScheduleTimezone": after["timezone"],
        "Duration": after["duration_hours"],
        "Cutoff": after["cutoff_hours"],
        "AllowUnassociatedTargets": False,
    }
    if after.get("offset_days"):
        request["ScheduleOffset"] = after["offset_days"]
    return request


def _target_request(name: str, after: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "Targets": [
            {"Key": f"tag:{after['tag_key']}", "Values": list(after["values"])},
            {"Key": f"tag:{after['window_key']}", "Values": list(after["window_values"])},
        ],
        "OwnerInformation": OWNER_INFORMATION,
        "Name": name,
        "Description": f"{OWNER_INFORMATION}: instances tagged {after['tag_key']} in {len(after['values'])} groups",
    }


def _task_request(name: str, after: Mapping[str, Any], target_ids: Sequence[str]) -> dict[str, Any]:
    request: dict[str, Any] = {
        "Targets": [{"Key": "WindowTargetIds", "Values": list(target_ids)}],
        "TaskArn": PATCH_DOCUMENT,
        "TaskInvocationParameters": {
            "RunCommand": {
                "Parameters": {"Operation": [after["operation"]], "RebootOption": [after["reboot_option"]]},
                "DocumentVersion": "$DEFAULT",
            }
        },
        "Priority": after["priority"],
        "MaxConcurrency": after["max_concurrency"],
        "MaxErrors": after["max_errors"],
        "Name": name,
        "Description": f"{OWNER_INFORMATION}: {after['operation']} with {after['reboot_option']}",
    }
    if after["service_role"] != SERVICE_LINKED:
        request["ServiceRoleArn"] = after["service_role"]
    return request


@tracer.capture_method
def apply_window(changes: Iterable[Change], run_id: str) -> None:
    """Apply one window's changes in an order SSM accepts.

    Targets exist before the tasks that point at them; tasks stop pointing at targets before those
    targets go. Deleting a window takes its targets and tasks with it.
    """
    ssm = client("ssm")
    by_kind: dict[str, list[Change]] = {"window": [], "target": [], "task": []}
    for change in changes:
        by_kind[change.kind].append(change)
    # Deletes: the window itself, or owned duplicates of its name (left by a past race).
    for change in by_kind["window"]:
        if change.action == "delete":
            ssm.delete_maintenance_window(WindowId=change.resource_id)
    remaining = [change for change in by_kind["window"] if change.action != "delete"]
    if not remaining:
        return
    (window_change,) = remaining
    # A blocked window may still hold tagpatch's own members to deregister: go on with its id.
    if window_change.action == "create":
        assert window_change.after is not None
        window_id = ssm.create_maintenance_window(
            Name=window_change.name,
            Tags=[{"Key": MANAGED_TAG_KEY, "Value": MANAGED_TAG_VALUE}],
            ClientToken=client_token(run_id, window_change.name),
            **_window_request(window_change.after),
        )["WindowId"]
    else:
        window_id = str(window_change.resource_id)
        if window_change.action == "update":
            assert window_change.after is not None
            ssm.update_maintenance_window(
                WindowId=window_id,
                Name=window_change.name,
                # The plan keeps the window's actual state: an operator's pause is never undone.
                Enabled=bool(window_change.after.get("enabled", True)),
                Replace=True,
                **_window_request(window_change.after),
            )

    target_ids = {change.name: change.resource_id for change in by_kind["target"] if change.resource_id}
    for change in by_kind["target"]:
        if change.action == "create":
            assert change.after is not None
            target_ids[change.name] = ssm.register_target_with_maintenance_window(
                WindowId=window_id,
                ResourceType="INSTANCE",
                ClientToken=client_token(run_id, window_change.name, change.name),
                **_target_request(change.name, change.after),
            )["WindowTargetId"]
        elif change.action == "update":
            assert change.after is not None
            ssm.update_maintenance_window_target(
                WindowId=window_id,
                WindowTargetId=change.resource_id,
                Replace=True,
                **_target_request(change.name, change.after),
            )

    for change in by_kind["task"]:
        if change.action in ("create", "update"):
            assert change.after is not None
            request = _task_request(change.name, change.after, [target_ids[name] for name in change.after["targets"]])
            if change.action == "create":
                ssm.register_task_with_maintenance_window(
                    WindowId=window_id,
                    TaskType="RUN_COMMAND",
                    ClientToken=client_token(run_id, window_change.name, change.name),
                    **request,
                )
            else:
                ssm.update_maintenance_window_task(
                    WindowId=window_id, WindowTaskId=change.resource_id, Replace=True, **request
                )
    for change in by_kind["task"]:
        if change.action == "delete":
            ssm.deregister_task_from_maintenance_window(WindowId=window_id, WindowTaskId=change.resource_id)
    for change in by_kind["target"]:
        if change.action == "delete":
            ssm.deregister_target_from_maintenance_window(
                WindowId=window_id, WindowTargetId=change.resource_id, Safe=True
            )
