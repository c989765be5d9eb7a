"""SSM maintenance windows, their targets and tasks: what moto lacks or gets wrong."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from moto.ssm.exceptions import ValidationException

from tagpatch_local.simulator import quotas
from tagpatch_local.simulator.clock import now
from tagpatch_local.simulator.core import (
    DoesNotExistException,
    IdempotentParameterMismatch,
    ResourceLimitExceededException,
    TargetInUseException,
    backend_state,
    correction,
    drop_none,
    filters_of,
    operation,
    page_of,
    request_params,
    ssm_backend,
    validate_input,
)
from tagpatch_local.simulator.occurrences import WindowTiming, next_run, spelled_run_time
from tagpatch_local.simulator.schedules import check_window_settings


@dataclass
class _WindowExtras:
    """What moto's FakeMaintenanceWindow does not keep, stored on it as `tagpatch_extras`."""

    allow_unassociated_targets: bool = False
    enabled: bool = True
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    modified: datetime = field(default_factory=lambda: datetime.now(UTC))


_EXTRAS_ATTR: Final = "tagpatch_extras"
_TOKENS_ATTR: Final = "tagpatch_client_tokens"
# What SSM uses for a task registered without ServiceRoleArn (API reference, ServiceRoleArn: "If you
# do not specify a service role ARN, Systems Manager uses a service-linked role in your account").
SERVICE_LINKED_ROLE_PATH: Final = "role/aws-service-role/ssm.amazonaws.com/AWSServiceRoleForAmazonSSM"


def service_linked_role_arn(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:{SERVICE_LINKED_ROLE_PATH}"


def _idempotent(response: Any, operation: str, params: Mapping[str, Any], create: Callable[[], str]) -> str:
    """ClientToken as SSM documents it: a retried request with the same token and the same parameters
    returns the first call's id without creating again; the same token with other parameters is
    IdempotentParameterMismatch. Tokens are remembered for the backend's life (SSM does not say how
    long it keeps them)."""
    token = params.get("ClientToken")
    if token is None:
        return create()
    tokens = backend_state(ssm_backend(response), _TOKENS_ATTR, dict[tuple[str, str], tuple[str, str]])
    request = json.dumps({k: v for k, v in params.items() if k != "ClientToken"}, sort_keys=True, default=str)
    if (operation, token) in tokens:
        first_request, resource_id = tokens[(operation, token)]
        if first_request != request:
            raise IdempotentParameterMismatch(
                f"The ClientToken {token} was used with different parameters in an earlier {operation} call."
            )
        return resource_id
    resource_id = create()
    tokens[(operation, token)] = (request, resource_id)
    return resource_id


def _window_extras(window: Any) -> _WindowExtras:
    # Windows created before install() (or by moto directly) get defaults on first use.
    return backend_state(window, _EXTRAS_ATTR, _WindowExtras)


def window_timing(window: Any) -> WindowTiming:
    """What decides when `window` runs (moto's window object plus what the simulator keeps)."""
    return WindowTiming(
        schedule=window.schedule,
        created=_window_extras(window).created,
        timezone=window.schedule_timezone,
        offset_days=window.schedule_offset,
        start_date=window.start_date,
        end_date=window.end_date,
    )


def window_enabled(window: Any) -> bool:
    return _window_extras(window).enabled


def _window(response: Any, window_id: str) -> Any:
    return ssm_backend(response).get_maintenance_window(window_id)  # moto: DoesNotExistException


def _window_output(window: Any) -> dict[str, Any]:
    extras = _window_extras(window)
    return drop_none(
        {
            "WindowId": window.id,
            "Name": window.name,
            "Description": window.description,
            "StartDate": window.start_date,
            "EndDate": window.end_date,
            "Schedule": window.schedule,
            "ScheduleTimezone": window.schedule_timezone,
            "ScheduleOffset": window.schedule_offset,
            "Duration": window.duration,
            "Cutoff": window.cutoff,
            "AllowUnassociatedTargets": extras.allow_unassociated_targets,
            "Enabled": extras.enabled,
        }
    )


@correction(
    "CreateMaintenanceWindow",
    why="moto validates nothing (name, schedule, Duration, Cutoff, time zone, offset), enforces no "
    "window quota and drops AllowUnassociatedTargets and the creation date",
)
def _create_maintenance_window(response: Any) -> dict[str, Any]:
    params = request_params(response)
    validate_input("CreateMaintenanceWindow", params)
    check_window_settings(
        schedule=params.get("Schedule"),
        timezone=params.get("ScheduleTimezone"),
        offset=params.get("ScheduleOffset"),
        duration=params.get("Duration"),
        cutoff=params.get("Cutoff"),
    )
    backend = ssm_backend(response)
    return {
        "WindowId": _idempotent(
            response, "CreateMaintenanceWindow", params, lambda: _new_window(response, backend, params)
        )
    }


def _new_window(response: Any, backend: Any, params: Mapping[str, Any]) -> str:
    if len(backend.windows) >= quotas.MAX_MAINTENANCE_WINDOWS:
        raise ResourceLimitExceededException(
            f"Maintenance window limit exceeded: an account can have at most {quotas.MAX_MAINTENANCE_WINDOWS} "
            "maintenance windows per Region."
        )
    window_id: str = backend.create_maintenance_window(
        name=params.get("Name"),
        description=params.get("Description"),
        duration=params.get("Duration"),
        cutoff=params.get("Cutoff"),
        schedule=params.get("Schedule"),
        schedule_timezone=params.get("ScheduleTimezone"),
        schedule_offset=params.get("ScheduleOffset"),
        start_date=params.get("StartDate"),
        end_date=params.get("EndDate"),
        tags=params.get("Tags"),
    )
    extras = _window_extras(backend.windows[window_id])
    extras.created = extras.modified = now(response.current_account, response.region)
    extras.allow_unassociated_targets = bool(params.get("AllowUnassociatedTargets"))
    return window_id


@correction(
    "GetMaintenanceWindow",
    why="moto omits AllowUnassociatedTargets, CreatedDate and ModifiedDate and always says Enabled",
)
def _get_maintenance_window(response: Any) -> dict[str, Any]:
    window = _window(response, request_params(response).get("WindowId", ""))
    extras = _window_extras(window)
    output = {**_window_output(window), "CreatedDate": extras.created, "ModifiedDate": extras.modified}
    return drop_none({**output, "NextExecutionTime": _next_execution_time(response, window)})


def _next_execution_time(response: Any, window: Any) -> str | None:
    """The window's next run after the clock, as DescribeMaintenanceWindowSchedule spells times; absent
    for a disabled window and once the schedule has no run left (EndDate passed, an at() that ran)."""
    if not window_enabled(window):
        return None
    timing = window_timing(window)
    found = next_run(timing, now(response.current_account, response.region))
    return spelled_run_time(found, timing) if found is not None else None


_WINDOW_IDENTITY_FIELDS: Final = (
    "WindowId",
    "Name",
    "Description",
    "Enabled",
    "Duration",
    "Cutoff",
    "Schedule",
    "ScheduleTimezone",
    "ScheduleOffset",
    "EndDate",
    "StartDate",
    "NextExecutionTime",
)


@correction(
    "DescribeMaintenanceWindows",
    why="moto always reports Enabled true, supports only the Name filter and does not paginate",
)
def _describe_maintenance_windows(response: Any) -> dict[str, Any]:
    params = request_params(response)
    filters = filters_of(params, ("Name", "Enabled"))
    windows = list(ssm_backend(response).windows.values())
    if (names := filters.get("Name")) is not None:
        windows = [w for w in windows if w.name in names]
    if (enabled := filters.get("Enabled")) is not None:
        windows = [w for w in windows if str(_window_extras(w).enabled).lower() in {v.lower() for v in enabled}]
    page, token = page_of("DescribeMaintenanceWindows", windows, params, quotas.WINDOW_PAGE_BOUNDS)
    identities = []
    for window in page:
        full = {**_window_output(window), "NextExecutionTime": _next_execution_time(response, window)}
        identities.append({k: full[k] for k in _WINDOW_IDENTITY_FIELDS if full.get(k) is not None})
    return drop_none({"WindowIdentities": identities, "NextToken": token})


@operation("UpdateMaintenanceWindow")
def _update_maintenance_window(response: Any) -> dict[str, Any]:
    params = request_params(response)
    validate_input("UpdateMaintenanceWindow", params)
    window = _window(response, params.get("WindowId", ""))
    extras = _window_extras(window)
    replace_all = bool(params.get("Replace"))
    if replace_all:
        # Replace=true: CreateMaintenanceWindow's required fields are required; the rest become null.
        missing = [k for k in ("Name", "Schedule", "Duration", "Cutoff", "AllowUnassociatedTargets") if k not in params]
        if missing:
            raise ValidationException(f"When Replace is true, these parameters are required: {', '.join(missing)}.")

    def new(key: str, current: Any) -> Any:
        if key in params:
            return params[key]
        return None if replace_all else current

    updated = {
        "name": new("Name", window.name),
        "description": new("Description", window.description),
        "start_date": new("StartDate", window.start_date),
        "end_date": new("EndDate", window.end_date),
        "schedule": new("Schedule", window.schedule),
        "schedule_timezone": new("ScheduleTimezone", window.schedule_timezone),
        "schedule_offset": new("ScheduleOffset", window.schedule_offset),
        "duration": new("Duration", window.duration),
        "cutoff": new("Cutoff", window.cutoff),
    }
    check_window_settings(
        schedule=updated["schedule"],
        timezone=updated["schedule_timezone"],
        offset=updated["schedule_offset"],
        duration=updated["duration"],
        cutoff=updated["cutoff"],
    )
    for attribute, value in updated.items():
        setattr(window, attribute, value)
    extras.allow_unassociated_targets = bool(new("AllowUnassociatedTargets", extras.allow_unassociated_targets))
    if "Enabled" in params:
        extras.enabled = bool(params["Enabled"])
    extras.modified = now(response.current_account, response.region)
    return _window_output(window)


# --------------------------------------------------------------------------------------------------
# Maintenance window targets


def _member(window: Any, kind: str, member_id: str) -> Any:
    """A window's target or task (`kind` is "targets" or "tasks"), or SSM's DoesNotExistException."""
    member = getattr(window, kind).get(member_id)
    if member is None:
        noun = kind.removesuffix("s")
        raise DoesNotExistException(f"Maintenance window {noun} {member_id} does not exist in {window.id}.")
    return member


def _update_fields(
    member: Any, params: Mapping[str, Any], fields: Iterable[tuple[str, str]], replace_all: bool
) -> None:
    """Update* semantics: given fields change; with Replace=true, fields not given become null."""
    for key, attribute in fields:
        if key in params:
            setattr(member, attribute, params[key])
        elif replace_all:
            setattr(member, attribute, None)


def _target(window: Any, target_id: str) -> Any:
    return _member(window, "targets", target_id)


def _target_output(target: Any) -> dict[str, Any]:
    return drop_none(
        {
            "WindowId": target.window_id,
            "WindowTargetId": target.window_target_id,
            "ResourceType": target.resource_type,
            "Targets": target.targets,
            "OwnerInformation": target.owner_information,
            "Name": target.name,
            "Description": target.description,
        }
    )


@correction(
    "RegisterTargetWithMaintenanceWindow",
    why="moto validates nothing (name pattern, at most 5 Targets, 50 tag values, lengths) and "
    "enforces no targets-per-window quota",
)
def _register_target_with_maintenance_window(response: Any) -> dict[str, Any]:
    params = request_params(response)
    validate_input("RegisterTargetWithMaintenanceWindow", params)
    window = _window(response, params.get("WindowId", ""))
    target_id = _idempotent(
        response, "RegisterTargetWithMaintenanceWindow", params, lambda: _new_target(response, window, params)
    )
    return {"WindowTargetId": target_id}


def _new_target(response: Any, window: Any, params: Mapping[str, Any]) -> str:
    if len(window.targets) >= quotas.MAX_TARGETS_PER_WINDOW:
        raise ResourceLimitExceededException(
            f"Maintenance window {window.id} already has the maximum of {quotas.MAX_TARGETS_PER_WINDOW} targets."
        )
    # moto keeps OwnerInformation on its target object; only its serialiser drops it.
    target_id: str = ssm_backend(response).register_target_with_maintenance_window(
        window_id=window.id,
        resource_type=params.get("ResourceType"),
        targets=params.get("Targets"),
        owner_information=params.get("OwnerInformation"),
        name=params.get("Name"),
        description=params.get("Description"),
    )
    return target_id


@correction(
    "DescribeMaintenanceWindowTargets",
    why="moto returns [] whenever Filters are given, returns OwnerInformation as '' and does not paginate",
)
def _describe_maintenance_window_targets(response: Any) -> dict[str, Any]:
    params = request_params(response)
    window = _window(response, params.get("WindowId", ""))
    filters = filters_of(params, ("Type", "WindowTargetId", "OwnerInformation"))
    targets = list(window.targets.values())
    for key, values in filters.items():
        attribute = {"Type": "resource_type", "WindowTargetId": "window_target_id"}.get(key, "owner_information")
        targets = [t for t in targets if getattr(t, attribute) in values]
    page, token = page_of("DescribeMaintenanceWindowTargets", targets, params, quotas.WINDOW_PAGE_BOUNDS)
    return drop_none({"Targets": [_target_output(t) for t in page], "NextToken": token})


_TARGET_UPDATABLE: Final = (
    ("Targets", "targets"),
    ("OwnerInformation", "owner_information"),
    ("Name", "name"),
    ("Description", "description"),
)


@operation("UpdateMaintenanceWindowTarget")
def _update_maintenance_window_target(response: Any) -> dict[str, Any]:
    params = request_params(response)
    validate_input("UpdateMaintenanceWindowTarget", params)
    window = _window(response, params.get("WindowId", ""))
    target = _target(window, params.get("WindowTargetId", ""))
    replace_all = bool(params.get("Replace"))
    if replace_all and "Targets" not in params:
        raise ValidationException("When Replace is true, these parameters are required: Targets.")
    _update_fields(target, params, _TARGET_UPDATABLE, replace_all)
    output = _target_output(target)
    output.pop("ResourceType")
    return output


@correction(
    "DeregisterTargetFromMaintenanceWindow",
    why="moto raises a bare KeyError for an unknown target and ignores Safe (TargetInUseException)",
)
def _deregister_target_from_maintenance_window(response: Any) -> dict[str, Any]:
    params = request_params(response)
    window = _window(response, params.get("WindowId", ""))
    target_id = params.get("WindowTargetId", "")
    _target(window, target_id)
    if params.get("Safe"):
        users = [
            task.window_task_id
            for task in window.tasks.values()
            for t in task.targets or ()
            if t.get("Key") == "WindowTargetIds" and target_id in (t.get("Values") or ())
        ]
        if users:
            raise TargetInUseException(
                f"Target {target_id} is referenced by task(s) {', '.join(users)} and Safe is true."
            )
    del window.targets[target_id]
    return {"WindowId": window.id, "WindowTargetId": target_id}


# --------------------------------------------------------------------------------------------------
# Maintenance window tasks


def _task(window: Any, task_id: str) -> Any:
    return _member(window, "tasks", task_id)


def _task_output(task: Any) -> dict[str, Any]:
    """The fields every task view shares (Describe adds Type, Get adds TaskType)."""
    return drop_none(
        {
            "WindowId": task.window_id,
            "WindowTaskId": task.window_task_id,
            "TaskArn": task.task_arn,
            "Targets": task.targets,
            "TaskParameters": task.task_parameters,
            "Priority": task.priority,
            "LoggingInfo": task.logging_info,
            "ServiceRoleArn": task.service_role_arn,
            "MaxConcurrency": task.max_concurrency,
            "MaxErrors": task.max_errors,
            "Name": task.name,
            "Description": task.description,
            "CutoffBehavior": task.cutoff_behavior,
            "AlarmConfiguration": task.alarm_configurations,
        }
    )


@correction(
    "RegisterTaskWithMaintenanceWindow",
    why="moto reads AlarmConfiguration under the wrong name (AlarmConfigurations) and drops it, "
    "validates nothing (name, MaxConcurrency/MaxErrors patterns, 5 Targets) and has no task quota",
)
def _register_task_with_maintenance_window(response: Any) -> dict[str, Any]:
    params = request_params(response)
    validate_input("RegisterTaskWithMaintenanceWindow", params)
    window = _window(response, params.get("WindowId", ""))
    task_id = _idempotent(
        response, "RegisterTaskWithMaintenanceWindow", params, lambda: _new_task(response, window, params)
    )
    return {"WindowTaskId": task_id}


def _new_task(response: Any, window: Any, params: Mapping[str, Any]) -> str:
    if len(window.tasks) >= quotas.MAX_TASKS_PER_WINDOW:
        raise ResourceLimitExceededException(
            f"Maintenance window {window.id} already has the maximum of {quotas.MAX_TASKS_PER_WINDOW} tasks."
        )
    # moto keeps TaskType on its task object; only its serialiser names it wrongly.
    task_id: str = ssm_backend(response).register_task_with_maintenance_window(
        window_id=window.id,
        targets=params.get("Targets"),
        task_arn=params.get("TaskArn"),
        service_role_arn=params.get("ServiceRoleArn") or service_linked_role_arn(response.current_account),
        task_type=params.get("TaskType"),
        task_parameters=params.get("TaskParameters"),
        task_invocation_parameters=params.get("TaskInvocationParameters"),
        priority=params.get("Priority", 1),  # SSM's default priority
        max_concurrency=params.get("MaxConcurrency"),
        max_errors=params.get("MaxErrors"),
        logging_info=params.get("LoggingInfo"),
        name=params.get("Name"),
        description=params.get("Description"),
        cutoff_behavior=params.get("CutoffBehavior"),
        alarm_configurations=params.get("AlarmConfiguration"),
    )
    return task_id


@correction(
    "DescribeMaintenanceWindowTasks",
    why="moto returns [] whenever Filters are given, serialises the task type as TaskType (dropped: "
    "the output member is Type) and does not paginate",
)
def _describe_maintenance_window_tasks(response: Any) -> dict[str, Any]:
    params = request_params(response)
    window = _window(response, params.get("WindowId", ""))
    filters = filters_of(params, ("WindowTaskId", "TaskArn", "Priority", "TaskType"))
    tasks = list(window.tasks.values())
    for key, values in filters.items():
        attribute = {"WindowTaskId": "window_task_id", "TaskArn": "task_arn", "TaskType": "task_type"}.get(
            key, "priority"
        )
        tasks = [t for t in tasks if str(getattr(t, attribute)) in values]
    page, token = page_of("DescribeMaintenanceWindowTasks", tasks, params, quotas.WINDOW_PAGE_BOUNDS)
    return drop_none({"Tasks": [{**_task_output(t), "Type": t.task_type} for t in page], "NextToken": token})


@operation("GetMaintenanceWindowTask")
def _get_maintenance_window_task(response: Any) -> dict[str, Any]:
    params = request_params(response)
    task = _task(_window(response, params.get("WindowId", "")), params.get("WindowTaskId", ""))
    return drop_none(
        {**_task_output(task), "TaskType": task.task_type, "TaskInvocationParameters": task.task_invocation_parameters}
    )


_TASK_UPDATABLE: Final = (
    ("Targets", "targets"),
    ("TaskArn", "task_arn"),
    ("ServiceRoleArn", "service_role_arn"),
    ("TaskParameters", "task_parameters"),
    ("TaskInvocationParameters", "task_invocation_parameters"),
    ("Priority", "priority"),
    ("MaxConcurrency", "max_concurrency"),
    ("MaxErrors", "max_errors"),
    ("LoggingInfo", "logging_info"),
    ("Name", "name"),
    ("Description", "description"),
    ("CutoffBehavior", "cutoff_behavior"),
    ("AlarmConfiguration", "alarm_configurations"),
)


@operation("UpdateMaintenanceWindowTask")
def _update_maintenance_window_task(response: Any) -> dict[str, Any]:
    params = request_params(response)
    validate_input("UpdateMaintenanceWindowTask", params)
    task = _task(_window(response, params.get("WindowId", "")), params.get("WindowTaskId", ""))
    replace_all = bool(params.get("Replace"))
    if replace_all and "TaskArn" not in params:
        raise ValidationException("When Replace is true, these parameters are required: TaskArn.")
    _update_fields(task, params, _TASK_UPDATABLE, replace_all)
    if not task.service_role_arn:
        task.service_role_arn = service_linked_role_arn(response.current_account)
    return drop_none({**_task_output(task), "TaskInvocationParameters": task.task_invocation_parameters})


@correction(
    "DeregisterTaskFromMaintenanceWindow",
    why="moto raises a bare KeyError for an unknown task instead of DoesNotExistException",
)
def _deregister_task_from_maintenance_window(response: Any) -> dict[str, Any]:
    params = request_params(response)
    window = _window(response, params.get("WindowId", ""))
    task_id = params.get("WindowTaskId", "")
    _task(window, task_id)
    del window.tasks[task_id]
    return {"WindowId": window.id, "WindowTaskId": task_id}
