"""Maintenance windows in SSM: read what exists, and apply one window's planned changes.

Reads grow with the number of windows, never with the number of instances: one listing of
windows, one tag lookup per `tagpatch-` window, and the targets and tasks of the windows tagpatch
owns. Writes happen only in apply mode, one window at a time (the workflow fans out over windows).
"""

from __future__ import annotations

import hashlib
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from tagpatch.aws import client, describe_error, error_code, is_transient, paginate
from tagpatch.changes import DONE, ChangeOutcome, Outcome
from tagpatch.desired import (
    INSTANCE_IDS_KEY,
    MANAGED_PREFIX,
    MANAGED_TAG_KEY,
    MANAGED_TAG_VALUE,
    OWNER_INFORMATION,
    task_description,
)
from tagpatch.errors import ScheduleTimeUnreadable
from tagpatch.observability import tracer
from tagpatch.policy import HOOK_PARAMETERS, SERVICE_LINKED
from tagpatch.reconcile import (
    AUTOMATION_TASK,
    PATCH_DOCUMENT,
    RESOURCE_ID,
    WRITE_ACTIONS,
    ActualTarget,
    ActualTask,
    ActualWindow,
    Change,
)

WINDOW_PAGE_SIZE: Final = 100  # DescribeMaintenanceWindows maximum
MEMBER_PAGE_SIZE: Final = 100
AUTOMATION_ROLE_PARAMETER: Final = "AutomationAssumeRole"  # the backup runbook's role parameter


def window_run_time(value: object, timezone: str | None) -> datetime:
    """A window run's time as SSM spells it (ExecutionTime, NextExecutionTime), as an instant in UTC.

    The API reference says only "ISO-8601 Extended format". Seen: `2020-02-19T16:00Z` (its example),
    `2020-02-25T00:08:15.099Z`, and a window with a ScheduleTimezone in its local time with the offset,
    `2024-03-12T09:00-05:00`. A value with no zone is read in the window's ScheduleTimezone (UTC when it
    has none), the zone its schedule is written in.
    """
    if not isinstance(value, str):
        raise ScheduleTimeUnreadable(f"SSM gave the window run time {value!r}, which is not an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as error:
        raise ScheduleTimeUnreadable(f"SSM gave the window run time {value!r}, which is not ISO 8601") from error
    if parsed.tzinfo is None:
        try:
            parsed = parsed.replace(tzinfo=zoneinfo.ZoneInfo(timezone or "UTC"))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
            raise ScheduleTimeUnreadable(
                f"SSM gave the window run time {value!r} with no zone, "
                f"and the window's time zone {timezone!r} is unknown"
            ) from error
    return parsed.astimezone(UTC)


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
        owned = name.startswith(MANAGED_PREFIX) and is_owned_window(identity["WindowId"])
        if not owned:
            unowned += 1
        if not name.startswith(MANAGED_PREFIX):
            continue  # never looked at further, never touched
        window = _window(identity, owned)
        if owned:
            window = _with_members(window)
        windows.append(window)
    return AccountWindows(tuple(windows), unowned)


def is_owned_window(window_id: str) -> bool:
    """Whether the window carries tagpatch's ownership tag."""
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
        invocation = task.get("TaskInvocationParameters", {})
        # A backup task runs the runbook, whose parameters carry the patch's as a Run Command task's do.
        parameters = invocation.get("Automation", invocation.get("RunCommand", {})).get("Parameters", {})
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
                cutoff_behavior=task.get("CutoffBehavior"),
                hooks={
                    key: hook
                    for key, parameter in HOOK_PARAMETERS.items()
                    if (hook := _first(parameters.get(parameter))) is not None
                },
                task_type=task.get("TaskType", "RUN_COMMAND"),
                automation_role=_first(parameters.get(AUTOMATION_ROLE_PARAMETER)),
            )
        )
    return ActualWindow(**{**window.__dict__, "targets": targets, "tasks": tuple(tasks)})


def _first(values: Sequence[str] | None) -> str | None:
    return values[0] if values else None


# --- applying ----------------------------------------------------------------------------------------


def client_token(*parts: str) -> str:
    """Idempotency token: a retried Lambda re-sends the same create and SSM does it once.

    Built from the run id (the execution name, the same for every Lambda retry of the cycle) and
    the names, so it is stable within a cycle and differs between cycles. SSM allows 64 characters.
    """
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
    if "instance_ids" in after:
        # A patch group with a held instance: its instances by id (at most 50 a target).
        return {
            "Targets": [{"Key": INSTANCE_IDS_KEY, "Values": list(after["instance_ids"])}],
            "OwnerInformation": OWNER_INFORMATION,
            "Name": name,
            "Description": f"{OWNER_INFORMATION}: {len(after['instance_ids'])} instances by id (patch exception hold)",
        }
    return {
        "Targets": [
            {"Key": f"tag:{after['tag_key']}", "Values": list(after["values"])},
            {"Key": f"tag:{after['window_key']}", "Values": list(after["window_values"])},
        ],
        "OwnerInformation": OWNER_INFORMATION,
        "Name": name,
        "Description": f"{OWNER_INFORMATION}: instances tagged {after['tag_key']} in {len(after['values'])} groups",
    }


def task_type(after: Mapping[str, Any]) -> str:
    return str(after.get("task_type", "RUN_COMMAND"))


def _task_request(name: str, after: Mapping[str, Any], target_ids: Sequence[str]) -> dict[str, Any]:
    parameters = {"Operation": [after["operation"]], "RebootOption": [after["reboot_option"]]}
    for key, document in (after.get("hooks") or {}).items():
        parameters[HOOK_PARAMETERS[key]] = [document]
    if task_type(after) == AUTOMATION_TASK:
        # One execution of the runbook per target instance, under the stack's automation role.
        parameters |= {"InstanceId": [RESOURCE_ID], AUTOMATION_ROLE_PARAMETER: [after["automation_role"]]}
        invocation = {"Automation": {"Parameters": parameters, "DocumentVersion": "$DEFAULT"}}
    else:
        invocation = {"RunCommand": {"Parameters": parameters, "DocumentVersion": "$DEFAULT"}}
    request: dict[str, Any] = {
        "Targets": [{"Key": "WindowTargetIds", "Values": list(target_ids)}],
        "TaskArn": after.get("document", PATCH_DOCUMENT),
        "TaskInvocationParameters": invocation,
        "Priority": after["priority"],
        "MaxConcurrency": after["max_concurrency"],
        "MaxErrors": after["max_errors"],
        "CutoffBehavior": after["cutoff_behavior"],
        "Name": name,
        "Description": task_description(after["operation"], after["reboot_option"]),
    }
    if after["service_role"] != SERVICE_LINKED:
        request["ServiceRoleArn"] = after["service_role"]
    return request


class NotOwnedByTagpatch(Exception):
    """SSM would accept the request, but doing it would touch something tagpatch does not own."""


@dataclass(frozen=True)
class WindowApplication:
    """What applying one window's changes did, change by change, in the order they were tried."""

    window: str
    outcomes: tuple[ChangeOutcome, ...]
    failure: ChangeOutcome | None = None  # the change that stopped the window, if one did
    retryable: bool = False  # the failure was throttling or a 5xx that outlived botocore's retries

    def describe_failure(self) -> str:
        if self.failure is None:
            return ""
        done = sum(1 for item in self.outcomes if item.outcome in DONE)
        skipped = sum(1 for item in self.outcomes if item.outcome == "not_attempted")
        # Throttling or a 5xx that outlived botocore's retries is not a refusal: say which it was.
        what = "gave up after retries on" if self.retryable else "SSM rejected"
        return (
            f"{what} {self.failure.action} of {self.failure.kind} {self.failure.name} in maintenance window "
            f"{self.window}: {self.failure.error}. {done} change(s) of this window are in SSM; "
            f"{skipped} were not attempted"
        )


@tracer.capture_method
def apply_window(changes: Iterable[Change], run_id: str) -> WindowApplication:
    """Apply one window's changes in an order SSM accepts, safely more than once.

    Targets exist before the tasks that point at them; tasks stop pointing at targets before those
    targets go. Deleting a window takes its targets and tasks with it. A Lambda retry runs the same
    plan again, so a create first looks for the owned resource of that name (an earlier attempt may
    have made it), creates carry a ClientToken stable within the cycle (a request SSM did but whose
    answer was lost is not done twice), and deleting something already gone counts as done. The
    first change SSM refuses stops the window: what came before it stays, what follows is not tried.
    """
    return _WindowApplier(list(changes), run_id).run()


class _WindowApplier:
    def __init__(self, changes: list[Change], run_id: str) -> None:
        self.ssm = client("ssm")
        self.run_id = run_id
        by_kind: dict[str, list[Change]] = {"window": [], "target": [], "task": []}
        for change in changes:
            by_kind[change.kind].append(change)
        # Deletes first: the window itself, or owned duplicates of its name (left by a past race).
        deletes = [change for change in by_kind["window"] if change.action == "delete"]
        remaining = [change for change in by_kind["window"] if change.action != "delete"]
        self.window_change = remaining[0] if remaining else deletes[0]
        self.window_id = self.window_change.resource_id
        self.target_ids = {change.name: change.resource_id for change in by_kind["target"] if change.resource_id}
        self._members: dict[str, dict[str, tuple[str, bool]]] | None = None
        # The order SSM needs: window, target upserts, task upserts, task deletes, target deletes. A
        # blocked window may still hold tagpatch's own members to deregister: go on with its id.
        self.ordered = [
            *deletes,
            *([self.window_change] if remaining and self.window_change.action in WRITE_ACTIONS else []),
            *(c for c in by_kind["target"] if c.action in ("create", "update")),
            *(c for c in by_kind["task"] if c.action in ("create", "update")),
            *(c for c in by_kind["task"] if c.action == "delete"),
            *(c for c in by_kind["target"] if c.action == "delete"),
        ]
        if not remaining:
            self.ordered = deletes

    def run(self) -> WindowApplication:
        outcomes: list[ChangeOutcome] = []
        for index, change in enumerate(self.ordered):
            try:
                outcome, resource_id = self._apply(change)
            except (ClientError, NotOwnedByTagpatch, BotoCoreError) as error:
                failure = ChangeOutcome.of(change, "failed", change.resource_id, describe_error(error))
                rest = [
                    ChangeOutcome.of(later, "not_attempted", later.resource_id) for later in self.ordered[index + 1 :]
                ]
                return WindowApplication(
                    self.window_change.name, (*outcomes, failure, *rest), failure, retryable=is_transient(error)
                )
            outcomes.append(ChangeOutcome.of(change, outcome, resource_id))
        return WindowApplication(self.window_change.name, tuple(outcomes))

    def _apply(self, change: Change) -> tuple[Outcome, str | None]:
        if change.kind == "window":
            return self._window(change)
        if change.action == "delete":
            return self._deregister(change)
        if change.action == "update":
            self._update_member(change)
            return "applied", change.resource_id
        return self._create_member(change)

    # -- the window --
    def _window(self, change: Change) -> tuple[Outcome, str | None]:
        if change.action == "delete":
            return delete_window(str(change.resource_id)), change.resource_id
        assert change.after is not None
        if change.action == "update":
            self.ssm.update_maintenance_window(
                WindowId=self.window_id,
                Name=change.name,
                # The plan keeps the window's actual state: an operator's pause is never undone.
                Enabled=bool(change.after.get("enabled", True)),
                Replace=True,
                **_window_request(change.after),
            )
            return "applied", self.window_id
        existing = _owned_window_named(change.name)
        if existing is not None:
            self.window_id = existing
            return "already_done", existing
        self.window_id = self.ssm.create_maintenance_window(
            Name=change.name,
            Tags=[{"Key": MANAGED_TAG_KEY, "Value": MANAGED_TAG_VALUE}],
            ClientToken=client_token(self.run_id, change.name),
            **_window_request(change.after),
        )["WindowId"]
        return "applied", self.window_id

    # -- targets and tasks --
    def _members_by_name(self, kind: str) -> dict[str, tuple[str, bool]]:
        """The window's targets or tasks as SSM has them now: name -> (id, owned by tagpatch).

        Listings only: the names and ownership marks are all there (no GetMaintenanceWindowTask).
        """
        if self._members is None:
            ssm, window_id = self.ssm, self.window_id
            targets = paginate(
                ssm.describe_maintenance_window_targets, "Targets", WindowId=window_id, MaxResults=MEMBER_PAGE_SIZE
            )
            tasks = paginate(
                ssm.describe_maintenance_window_tasks, "Tasks", WindowId=window_id, MaxResults=MEMBER_PAGE_SIZE
            )
            owned_target = (
                ActualTarget(t["WindowTargetId"], t.get("Name", ""), (), t.get("OwnerInformation")) for t in targets
            )
            owned_task = (_listed_task(t) for t in tasks)
            self._members = {
                "target": {t.name: (t.window_target_id, t.owned) for t in owned_target},
                "task": {t.name: (t.window_task_id, t.owned) for t in owned_task},
            }
        return self._members[kind]

    def _create_member(self, change: Change) -> tuple[Outcome, str | None]:
        assert change.after is not None
        found = self._members_by_name(change.kind).get(change.name)
        if found is not None:
            member_id, owned = found
            if not owned:
                raise NotOwnedByTagpatch(
                    f"a {change.kind} named {change.name} appeared in the window and is not tagpatch's"
                )
            if change.kind == "target":
                self.target_ids[change.name] = member_id
            return "already_done", member_id
        token = client_token(self.run_id, self.window_change.name, change.name)
        if change.kind == "target":
            member_id = self.ssm.register_target_with_maintenance_window(
                WindowId=self.window_id,
                ResourceType="INSTANCE",
                ClientToken=token,
                **_target_request(change.name, change.after),
            )["WindowTargetId"]
            self.target_ids[change.name] = member_id
        else:
            member_id = self.ssm.register_task_with_maintenance_window(
                WindowId=self.window_id,
                TaskType=task_type(change.after),
                ClientToken=token,
                **self._task_request(change),
            )["WindowTaskId"]
        return "applied", member_id

    def _task_request(self, change: Change) -> dict[str, Any]:
        assert change.after is not None
        return _task_request(change.name, change.after, [self.target_ids[name] for name in change.after["targets"]])

    def _update_member(self, change: Change) -> None:
        assert change.after is not None
        if change.kind == "target":
            self.ssm.update_maintenance_window_target(
                WindowId=self.window_id,
                WindowTargetId=change.resource_id,
                Replace=True,
                **_target_request(change.name, change.after),
            )
        else:
            self.ssm.update_maintenance_window_task(
                WindowId=self.window_id, WindowTaskId=change.resource_id, Replace=True, **self._task_request(change)
            )

    def _deregister(self, change: Change) -> tuple[Outcome, str | None]:
        try:
            if change.kind == "task":
                self.ssm.deregister_task_from_maintenance_window(
                    WindowId=self.window_id, WindowTaskId=change.resource_id
                )
            else:
                self.ssm.deregister_target_from_maintenance_window(
                    WindowId=self.window_id, WindowTargetId=change.resource_id, Safe=True
                )
        except ClientError as error:
            if error_code(error) == "DoesNotExistException":
                return "already_done", change.resource_id  # an earlier attempt did it
            raise
        return "applied", change.resource_id


def _listed_task(summary: Mapping[str, Any]) -> ActualTask:
    """A task as the listing shows it: enough to know its name and owner, not its settings."""
    return ActualTask(
        window_task_id=summary["WindowTaskId"],
        name=summary.get("Name", ""),
        description=summary.get("Description"),
        task_arn=summary.get("TaskArn", ""),
        target_ids=(),
        service_role_arn=None,
        max_concurrency=None,
        max_errors=None,
        priority=None,
        operation=None,
        reboot_option=None,
        cutoff_behavior=None,
    )


def delete_window(window_id: str) -> Outcome:
    """Delete a window; one that is already gone (an earlier attempt deleted it) counts as done."""
    try:
        client("ssm").delete_maintenance_window(WindowId=window_id)
    except ClientError as error:
        if error_code(error) == "DoesNotExistException":
            return "already_done"
        raise
    return "applied"


def _owned_window_named(name: str) -> str | None:
    """The id of the window tagpatch owns with this name, if an earlier attempt already created it."""
    ssm = client("ssm")
    for identity in paginate(
        ssm.describe_maintenance_windows,
        "WindowIdentities",
        Filters=[{"Key": "Name", "Values": [name]}],
        MaxResults=WINDOW_PAGE_SIZE,
    ):
        if identity.get("Name") != name:
            continue
        if not is_owned_window(identity["WindowId"]):
            raise NotOwnedByTagpatch(
                f"a maintenance window named {name} ({identity['WindowId']}) exists and is not tagpatch's"
            )
        return str(identity["WindowId"])
    return None
