"""Maintenance window runs in the simulated account: executions, Run Command, patch state, compliance.

`run_window` does what SSM does when a window's start time comes: a window execution, one task
execution per task (by Priority), one task invocation per window target the task names, each a Run
Command command with one command invocation per instance, and afterwards the patch state and Patch
compliance of every instance AWS-RunPatchBaseline reached. Which instances a target selects is the
caller's input (from target resolution), so this module only models what happens to them.

Rules, from the Run Command and Patch Manager sections of the Systems Manager User Guide:

- A running node whose agent is online runs the document. How AWS-RunPatchBaseline behaves on it is the
  node's simulated `PatchProfile` (missing patches, critical ones among them, and what the next Install
  does: succeed, fail or time out).
- A stopped node is never reached: Delivery Timed Out (Status TimedOut). A running node whose agent is
  not online: Undeliverable (Status Failed). Neither counts toward MaxErrors.
- MaxConcurrency splits the targets into batches; after each batch, once errors (Failed and Execution
  Timed Out) exceed MaxErrors, the invocations not yet sent end Cancelled/Terminated and the command
  fails.
- Scan reports what is missing and changes nothing. An Install that succeeds leaves nothing missing
  (with NoReboot the installs are pending a reboot); one that fails leaves the patches missing and counts
  them failed; one that times out reports nothing new.

What the documents leave open is in docs/simulator.md. Never imports tagpatch.
"""

from __future__ import annotations

import functools
import heapq
import json
import math
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from moto.ec2.models import ec2_backends
from moto.events.models import events_backends
from moto.ssm.exceptions import SSMException, ValidationException
from moto.ssm.models import ssm_backends

from tagpatch_local.simulator import clock, data_sync
from tagpatch_local.simulator.core import (
    DoesNotExistException,
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
from tagpatch_local.simulator.instances import simulator_state
from tagpatch_local.simulator.occurrences import occurrences

PatchResult = Literal["success", "failed", "timeout"]
PATCH_RESULTS: Final = frozenset({"success", "failed", "timeout"})
_STATE_ATTR: Final = "tagpatch_runs"
# How long AWS-RunPatchBaseline runs on a node, by Operation, unless its profile says otherwise. AWS
# documents no figure; a Scan only compares, an Install downloads and installs (docs/simulator.md).
RUN_MINUTES: Final[Mapping[str, int]] = {"Install": 5, "Scan": 2}
# How long SSM tries to deliver a command to a node that cannot be reached when the task sets no
# TimeoutSeconds: AWS documents no default for a window's Run Command task (docs/simulator.md).
DELIVERY_TIMEOUT: Final = timedelta(minutes=10)
PATCH_DOCUMENT: Final = "AWS-RunPatchBaseline"


@dataclass(frozen=True)
class PatchProfile:
    """How AWS-RunPatchBaseline behaves on one node (the fleet file's `patch:` block)."""

    operating_system: str
    missing: int = 0
    critical: int = 0
    result: PatchResult = "success"
    installed: int = 0
    minutes: int | None = None  # how long AWS-RunPatchBaseline runs on the node; None: RUN_MINUTES
    # The AWS-RunPatchBaselineWithHooks hook whose document fails on the node (pre_install, post_install,
    # on_exit), when the task names a document for it; AWS-Noop never fails.
    failing_hook: str | None = None


# AWS-RunPatchBaselineWithHooks's hook parameters (Patch Manager user guide), in the order they run:
# the pre-install hook, Install with NoReboot (which reports the patch state), the post-install hook,
# the reboot if needed, then the on-exit hook.
HOOK_PARAMETERS: Final = {
    "pre_install": "PreInstallHookDocName",
    "post_install": "PostInstallHookDocName",
    "on_exit": "OnExitHookDocName",
}
NO_HOOK: Final = "AWS-Noop"


def failing_hook(profile: PatchProfile, operation_name: str, parameters: Mapping[str, list[str]]) -> str | None:
    """The hook that fails this Install on the node: the profile says so and the task names a document
    for it (hooks run on Install only)."""
    if operation_name != "Install" or profile.failing_hook not in HOOK_PARAMETERS:
        return None
    named = (parameters.get(HOOK_PARAMETERS[profile.failing_hook]) or [NO_HOOK])[0]
    return profile.failing_hook if named != NO_HOOK else None


@dataclass
class PatchState:
    """What DescribeInstancePatchStates reports for a node after its last Scan or Install."""

    instance_id: str
    patch_group: str
    baseline_id: str
    operation: str
    started: datetime
    ended: datetime
    reboot_option: str
    installed: int
    installed_pending_reboot: int
    missing: int
    failed: int
    critical_missing: int
    execution_id: str
    severity_of_missing: str  # the baseline's compliance level for patches it approves

    @property
    def compliant(self) -> bool:
        return self.missing == 0 and self.failed == 0

    def to_output(self) -> dict[str, Any]:
        other = max(0, self.missing + self.failed - self.critical_missing)
        return {
            "InstanceId": self.instance_id,
            "PatchGroup": self.patch_group,
            "BaselineId": self.baseline_id,
            "InstalledCount": self.installed,
            "InstalledOtherCount": 0,
            "InstalledPendingRebootCount": self.installed_pending_reboot,
            "InstalledRejectedCount": 0,
            "MissingCount": self.missing,
            "FailedCount": self.failed,
            "UnreportedNotApplicableCount": 0,
            "NotApplicableCount": 0,
            "OperationStartTime": self.started,
            "OperationEndTime": self.ended,
            "Operation": self.operation,
            "RebootOption": self.reboot_option,
            "CriticalNonCompliantCount": self.critical_missing,
            "SecurityNonCompliantCount": self.critical_missing,
            "OtherNonCompliantCount": other,
        }


@dataclass
class CommandInvocation:
    """One node's part in a Run Command command, planned when the command starts.

    SSM shows it Pending until it is sent (`sent`), then `waiting` (InProgress while the document runs on
    the node; Pending or Delayed while a node that cannot be reached waits out the delivery timeout),
    then its end state from `ended`.
    """

    command_id: str
    instance_id: str
    requested: datetime
    status: str
    status_details: str
    document: str
    parameters: Mapping[str, list[str]]
    sent: datetime
    ended: datetime
    waiting: str = "InProgress"

    def status_at(self, now: datetime) -> tuple[str, str]:
        if now >= self.ended:
            return self.status, self.status_details
        if now >= self.sent:
            return self.waiting, self.waiting
        return "Pending", "Pending"

    @property
    def ran(self) -> bool:
        """Whether the document ran on the node (it was delivered and started)."""
        return self.waiting == "InProgress" and self.status_details not in _NOT_RUN

    def output_at(self, now: datetime) -> dict[str, Any]:
        status, details = self.status_at(now)
        return {
            "CommandId": self.command_id,
            "InstanceId": self.instance_id,
            "DocumentName": self.document,
            "DocumentVersion": "$DEFAULT",
            "RequestedDateTime": self.requested,
            "Status": status,
            "StatusDetails": details,
        }


@dataclass
class TaskInvocation:
    invocation_id: str
    command_id: str
    window_target_id: str
    owner_information: str | None
    parameters: str
    status: str
    status_details: str
    started: datetime
    ended: datetime

    def status_at(self, now: datetime) -> tuple[str, str]:
        return (self.status, self.status_details) if now >= self.ended else ("IN_PROGRESS", "")


@dataclass
class TaskExecution:
    task_execution_id: str
    window_task_id: str
    task_arn: str
    task_type: str
    priority: int
    max_concurrency: str
    max_errors: str
    service_role: str | None
    status: str
    status_details: str
    started: datetime
    ended: datetime
    invocations: list[TaskInvocation] = field(default_factory=list)

    def status_at(self, now: datetime) -> tuple[str, str]:
        return (self.status, self.status_details) if now >= self.ended else ("IN_PROGRESS", "")


@dataclass
class WindowExecution:
    window_execution_id: str
    window_id: str
    status: str
    status_details: str
    started: datetime
    ended: datetime
    tasks: list[TaskExecution] = field(default_factory=list)

    def status_at(self, now: datetime) -> tuple[str, str]:
        return (self.status, self.status_details) if now >= self.ended else ("IN_PROGRESS", "")


@dataclass(order=True)
class _Due:
    """Something a run does at a moment: a node's patch state written, or an event put on the bus."""

    at: datetime
    sequence: int
    action: Callable[[], dict[str, Any] | None] = field(compare=False)  # an event entry to emit, or None


@dataclass
class RunState:
    """Everything window runs leave behind, for one account and Region."""

    profiles: dict[str, PatchProfile] = field(default_factory=dict)
    executions: dict[str, WindowExecution] = field(default_factory=dict)  # in start order
    commands: dict[str, list[CommandInvocation]] = field(default_factory=dict)
    patch_states: dict[str, PatchState] = field(default_factory=dict)
    due: list[_Due] = field(default_factory=list)  # a heap, earliest first
    scheduled: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)


def run_state(account_id: str, region: str) -> RunState:
    backend = ssm_backends[account_id][region]
    return backend_state(backend, _STATE_ATTR, RunState)


def set_patch_profile(account_id: str, region: str, instance_id: str, profile: PatchProfile) -> None:
    if profile.result not in PATCH_RESULTS:
        raise ValueError(f"patch result {profile.result!r} is not one of {sorted(PATCH_RESULTS)}")
    if not 0 <= profile.critical <= profile.missing:
        raise ValueError("critical counts patches among the missing ones: 0 <= critical <= missing")
    if profile.minutes is not None and profile.minutes < 1:
        raise ValueError(f"AWS-RunPatchBaseline runs for at least a minute, not {profile.minutes}")
    run_state(account_id, region).profiles[instance_id] = profile


# --- running a window ---------------------------------------------------------------------------------


def _limit(value: str | None, total: int, *, default: int) -> int:
    """MaxConcurrency or MaxErrors as a number of targets ("10", or "10%" of `total`)."""
    if not value:
        return default
    if value.endswith("%"):
        return math.floor(int(value[:-1]) * total / 100)
    return int(value)


def _tag(tags: Mapping[str, str], *keys: str) -> str:
    return next((tags[key] for key in keys if key in tags), "")


def _baseline_for(account_id: str, region: str, patch_group: str, operating_system: str) -> tuple[str, str]:
    """(baseline id, compliance level) that applies: the group's registration, else the OS default."""
    from tagpatch_local.simulator.baselines import baseline_for_patch_group  # noqa: PLC0415 - import cycle

    return baseline_for_patch_group(account_id, region, patch_group, operating_system)


def _instance_states(account_id: str, region: str) -> dict[str, str]:
    """Instance id -> EC2 state name, read once per command.

    moto's get_instance copies every reservation on each call, which made a window run over 10,000
    nodes quadratic; the reservations themselves are read here without copying.
    """
    reservations = ec2_backends[account_id][region].reservations.values()
    return {instance.id: instance.state for reservation in reservations for instance in reservation.instances}


@dataclass(frozen=True)
class _Target:
    """One node of a command, as the command finds it when it starts."""

    instance_id: str
    # (waiting status, end Status, end StatusDetails) for a node Run Command cannot reach, else None
    unreachable: tuple[str, str, str] | None
    result: tuple[str, str]  # what the document ends with on a reachable node
    duration: timedelta


def _reach(account_id: str, region: str, instance_id: str, ec2_state: str | None) -> tuple[str, str, str] | None:
    """How Run Command fails to reach a node, or None if the node runs the command.

    A stopped node never receives it: Pending until the delivery timeout, then Delivery Timed Out. A
    running node whose agent is not online: Delayed (SSM retries) until then, then Undeliverable.
    """
    if ec2_state != "running":
        return "Pending", "TimedOut", "Delivery Timed Out"
    managed = simulator_state(account_id, region).managed_instances.get(instance_id)
    if managed is None or managed.ping_status != "Online":
        return "Delayed", "Failed", "Undeliverable"
    return None


def _result(profile: PatchProfile, operation_name: str, parameters: Mapping[str, list[str]]) -> tuple[str, str]:
    """How AWS-RunPatchBaseline ends on a node it ran on (Status, StatusDetails); a failing hook fails it."""
    if failing_hook(profile, operation_name, parameters) is not None:
        return "Failed", "Failed"
    if operation_name != "Install" or profile.result == "success":
        return "Success", "Success"
    if profile.result == "timeout":
        return "TimedOut", "Execution Timed Out"
    return "Failed", "Failed"


def _record_patch_state(
    account_id: str,
    region: str,
    instance_id: str,
    operation_name: str,
    reboot_option: str,
    started: datetime,
    ended: datetime,
    command_id: str,
    parameters: Mapping[str, list[str]] | None = None,
) -> None:
    """What a node reports when AWS-RunPatchBaseline ends on it: its patch state and Patch compliance.

    Applied at the invocation's end, never before: until then the node reports its previous state.
    """
    state = run_state(account_id, region)
    profile = state.profiles.get(instance_id) or PatchProfile(operating_system="AMAZON_LINUX_2023")
    if operation_name == "Install" and profile.result == "timeout":
        return  # nothing reported: the operation never finished
    if failing_hook(profile, operation_name, parameters or {}) == "pre_install":
        return  # the pre-install hook failed: the Install never ran, so nothing new is reported
    tags = ec2_backends[account_id][region].tags.get(instance_id, {})
    group = _tag(tags, "Patch Group", "PatchGroup")
    baseline_id, severity = _baseline_for(account_id, region, group, profile.operating_system)
    previous = state.patch_states.get(instance_id)
    pending = previous.installed_pending_reboot if previous is not None else 0
    installed, failed, missing, critical = profile.installed, 0, profile.missing, profile.critical
    if operation_name == "Install":
        if profile.result == "success":
            installed, missing, critical = profile.installed + profile.missing, 0, 0
            pending = pending + profile.missing if reboot_option == "NoReboot" else 0
            state.profiles[instance_id] = replace(profile, installed=installed, missing=0, critical=0)
        else:
            failed = profile.missing
    state.patch_states[instance_id] = PatchState(
        instance_id=instance_id,
        patch_group=group,
        baseline_id=baseline_id,
        operation=operation_name,
        started=started,
        ended=ended,
        reboot_option=reboot_option,
        installed=installed,
        installed_pending_reboot=pending,
        missing=missing if not failed else 0,
        failed=failed,
        critical_missing=critical,
        execution_id=command_id,
        severity_of_missing=severity,
    )
    patched = state.patch_states[instance_id]
    data_sync.patch_state_changed(
        account_id, region, patched.to_output(), _resource_summary(patched), tags, profile.operating_system
    )


@dataclass(frozen=True)
class _Command:
    """A Run Command command as it will unfold, planned when it starts."""

    command_id: str
    invocations: list[CommandInvocation]
    status: str
    status_details: str
    ended: datetime


def _plan_command(
    command_id: str,
    targets: list[_Target],
    parameters: Mapping[str, list[str]],
    max_concurrency: str | None,
    max_errors: str | None,
    started: datetime,
    cancel_at: datetime | None,
    delivery_timeout: timedelta,
) -> _Command:
    """When each node's invocation is sent and ends, in the order SSM paces them.

    SSM sends the command to one node, waits for it, then to two more, doubling until MaxConcurrency
    nodes run at once, and sends the next node as each one ends ("Using concurrency controls", Run
    Command). Once errors (Failed, Execution Timed Out) exceed MaxErrors it sends no more: the rest end
    Cancelled/Terminated. `cancel_at`: the window's cutoff under CANCEL_TASK; SSM then cancels the
    command, so nothing is sent after it and what still runs ends Cancelled.
    """
    total = len(targets)
    concurrency = max(1, _limit(max_concurrency, total, default=50))
    allowed_errors = _limit(max_errors, total, default=0)
    planned: list[CommandInvocation | None] = [None] * total
    running: list[tuple[datetime, int]] = []  # (end, index) of the nodes running the document
    now, sent, finished, errors = started, 0, 0, 0
    stopped_sending: datetime | None = None  # when errors passed MaxErrors

    def plan(index: int, at: datetime, ended: datetime, end: tuple[str, str], waiting: str) -> CommandInvocation:
        if cancel_at is not None and ended > cancel_at:
            ended, end = cancel_at, ("Cancelled", "Cancelled")
        invocation = CommandInvocation(
            command_id, targets[index].instance_id, started, *end, PATCH_DOCUMENT, parameters, at, ended, waiting
        )
        planned[index] = invocation
        return invocation

    while True:
        while (
            sent < total
            and len(running) < min(concurrency, finished + 1)
            and stopped_sending is None
            and (cancel_at is None or now < cancel_at)
        ):
            target = targets[sent]
            if target.unreachable is not None:
                # An undelivered node holds no concurrency slot and never counts toward MaxErrors.
                waiting, *end = target.unreachable
                plan(sent, now, now + delivery_timeout, (end[0], end[1]), waiting)
            else:
                invocation = plan(sent, now, now + target.duration, target.result, "InProgress")
                heapq.heappush(running, (invocation.ended, sent))
            sent += 1
        if not running:
            break
        now, index = heapq.heappop(running)
        finished += 1
        done = planned[index]
        assert done is not None
        if done.status in ("Failed", "TimedOut") and stopped_sending is None:
            errors += 1
            if errors > allowed_errors:
                stopped_sending = now
    for index in range(sent, total):  # never sent: MaxErrors was passed, or the cutoff came first
        if stopped_sending is not None:
            plan(index, stopped_sending, stopped_sending, ("Cancelled", "Terminated"), "Pending")
        else:
            assert cancel_at is not None
            plan(index, cancel_at, cancel_at, ("Cancelled", "Cancelled"), "Pending")
    invocations = [i for i in planned if i is not None]
    ended = max((i.ended for i in invocations), default=started)
    status, status_details = _command_status(invocations, passed_max_errors=stopped_sending is not None)
    return _Command(command_id, invocations, status, status_details, ended)


def _command_status(invocations: Sequence[CommandInvocation], *, passed_max_errors: bool) -> tuple[str, str]:
    """The command's (Status, StatusDetails) from how its invocations ended."""
    if any(i.status_details == "Cancelled" for i in invocations):
        return "Cancelled", "Cancelled"
    if passed_max_errors:
        return "Failed", "Failed"
    if any(i.status != "Success" for i in invocations):
        # Attempted everywhere, not all Success, but not enough errors to fail the command.
        return "Failed", "Incomplete"
    return "Success", "Success"


def _start_command(
    account_id: str,
    region: str,
    instance_ids: list[str],
    parameters: Mapping[str, list[str]],
    task: Any,
    started: datetime,
    cancel_at: datetime | None,
) -> _Command:
    """One Run Command command over `instance_ids`, started at `started`; its effects fall due in time."""
    state = run_state(account_id, region)
    operation_name = (parameters.get("Operation") or ["Scan"])[0]
    reboot_option = (parameters.get("RebootOption") or ["RebootIfNeeded"])[0]
    ec2_states = _instance_states(account_id, region)
    default = PatchProfile(operating_system="AMAZON_LINUX_2023")
    targets = []
    for instance_id in instance_ids:
        profile = state.profiles.get(instance_id) or default
        targets.append(
            _Target(
                instance_id,
                _reach(account_id, region, instance_id, ec2_states.get(instance_id)),
                _result(profile, operation_name, parameters),
                timedelta(minutes=profile.minutes or RUN_MINUTES.get(operation_name, RUN_MINUTES["Install"])),
            )
        )
    run_command = (task.task_invocation_parameters or {}).get("RunCommand") or {}
    timeout = run_command.get("TimeoutSeconds")
    command = _plan_command(
        str(uuid.uuid4()),
        targets,
        parameters,
        task.max_concurrency,
        task.max_errors,
        started,
        cancel_at,
        timedelta(seconds=int(timeout)) if timeout else DELIVERY_TIMEOUT,
    )
    state.commands[command.command_id] = command.invocations
    for invocation in command.invocations:
        if invocation.ran and invocation.status in ("Success", "Failed"):
            _schedule(
                state,
                invocation.ended,
                functools.partial(
                    _record_patch_state,
                    account_id,
                    region,
                    invocation.instance_id,
                    operation_name,
                    reboot_option,
                    invocation.sent,
                    invocation.ended,
                    command.command_id,
                    parameters,
                ),
            )
    return command


def start_command(
    account_id: str,
    region: str,
    instance_ids: list[str],
    parameters: Mapping[str, list[str]],
    task: Any,
    started: datetime,
) -> _Command:
    """A command outside any window (a State Manager association's run): no cutoff cancels it."""
    state = run_state(account_id, region)
    with state.lock:
        command = _start_command(account_id, region, instance_ids, parameters, task, started, None)
    settle(account_id, region, clock.now(account_id, region))
    return command


# A command cancelled at the cutoff leaves its task TIMED_OUT (CutoffBehavior in the API reference).
_TASK_STATUS: Final = {"Success": "SUCCESS", "Failed": "FAILED", "TimedOut": "TIMED_OUT", "Cancelled": "TIMED_OUT"}


def _schedule(state: RunState, at: datetime, action: Callable[[], dict[str, Any] | None]) -> None:
    state.scheduled += 1
    heapq.heappush(state.due, _Due(at, state.scheduled, action))


def _put_on_bus(entry: dict[str, Any]) -> dict[str, Any]:
    return entry


def settle(account_id: str, region: str, until: datetime) -> None:
    """Do, in time order, what the runs under way do up to `until`: patch states and compliance written
    as invocations end, and the state-change events put on the bus when each change happens."""
    state = run_state(account_id, region)
    events: list[dict[str, Any]] = []
    with state.lock:
        while state.due and state.due[0].at <= until:
            entry = heapq.heappop(state.due).action()
            if entry is not None:
                events.append(entry)
    _emit(account_id, region, events)


def run_window(
    account_id: str, region: str, window_id: str, started: datetime, selected: Mapping[str, Iterable[str]]
) -> WindowExecution:
    """Start one window run at `started`. `selected`: WindowTargetId -> the instance ids it selects now.

    The run is planned whole when it starts (each node as Run Command finds it then); what SSM shows of
    it, and what it changes on the nodes, follow the simulated clock (`settle`, `advance_clock`).
    """
    window = ssm_backends[account_id][region].get_maintenance_window(window_id)
    execution = WindowExecution(str(uuid.uuid4()), window_id, "IN_PROGRESS", "", started, started)
    # "No maintenance window tasks are permitted to start after the resulting end time minus the number
    # of hours you specify for Cutoff" (CreateMaintenanceWindow).
    cutoff_at = started + timedelta(hours=int(window.duration) - int(window.cutoff))
    tasks = sorted(window.tasks.values(), key=lambda t: (t.priority if t.priority is not None else 1, t.window_task_id))
    not_started = 0
    state = run_state(account_id, region)
    with state.lock:
        for task in tasks:
            task_started = execution.ended
            if task_started >= cutoff_at:
                not_started += 1
                continue
            cancel_at = cutoff_at if task.cutoff_behavior == "CANCEL_TASK" else None
            target_ids = [
                v for t in task.targets or () if t.get("Key") == "WindowTargetIds" for v in t.get("Values", [])
            ]
            run_command = (task.task_invocation_parameters or {}).get("RunCommand") or {}
            parameters: dict[str, list[str]] = dict(run_command.get("Parameters") or task.task_parameters or {})
            task_execution = TaskExecution(
                str(uuid.uuid4()),
                task.window_task_id,
                task.task_arn,
                task.task_type,
                task.priority if task.priority is not None else 1,
                task.max_concurrency or "",
                task.max_errors or "",
                task.service_role_arn,
                "IN_PROGRESS",
                "",
                task_started,
                task_started,
            )
            for target_id in target_ids:
                target = window.targets.get(target_id)
                instance_ids = sorted(selected.get(target_id, ()))
                if not instance_ids:
                    continue  # SSM creates no invocation for a target that selects nothing
                command = _start_command(account_id, region, instance_ids, parameters, task, task_started, cancel_at)
                task_execution.invocations.append(
                    TaskInvocation(
                        str(uuid.uuid4()),
                        command.command_id,
                        target_id,
                        getattr(target, "owner_information", None),
                        json.dumps({"documentName": task.task_arn, "parameters": parameters}),
                        _TASK_STATUS.get(command.status, "FAILED"),
                        command.status_details,
                        task_started,
                        command.ended,
                    )
                )
                task_execution.ended = max(task_execution.ended, command.ended)
            failed = [i for i in task_execution.invocations if i.status != "SUCCESS"]
            cut_off = [
                i for i in task_execution.invocations if i.status == "TIMED_OUT" and i.status_details == "Cancelled"
            ]
            task_execution.status = "TIMED_OUT" if cut_off else "FAILED" if failed else "SUCCESS"
            task_execution.status_details = (
                f"{len(failed)} of {len(task_execution.invocations)} invocations did not succeed" if failed else ""
            )
            execution.tasks.append(task_execution)
            execution.ended = task_execution.ended
        failed_tasks = [t for t in execution.tasks if t.status != "SUCCESS"]
        if not_started or any(t.status == "TIMED_OUT" for t in execution.tasks):
            execution.status = "TIMED_OUT"
            execution.status_details = (
                f"The maintenance window reached its cutoff at {_iso(cutoff_at)}; "
                f"{not_started} task(s) not started, {len(failed_tasks)} did not succeed."
            )
        else:
            execution.status = "FAILED" if failed_tasks else "SUCCESS"
            execution.status_details = (
                f"One or more tasks in the orchestration failed ({len(failed_tasks)})." if failed_tasks else ""
            )
        state.executions[execution.window_execution_id] = execution
        for at, event in _window_events(account_id, region, execution):
            _schedule(state, at, functools.partial(_put_on_bus, event))
    settle(account_id, region, clock.now(account_id, region))
    return execution


# --- reading it back through the SSM API ------------------------------------------------------------


def _state(response: Any) -> RunState:
    """The runs as they stand at the simulated minute of the request (what fell due is done first)."""
    settle(response.current_account, response.region, _now(response))
    return run_state(response.current_account, response.region)


def _now(response: Any) -> datetime:
    return clock.now(response.current_account, response.region)


def _time_filter(filters: Mapping[str, frozenset[str]], key: str) -> datetime | None:
    values = filters.get(key)
    if not values:
        return None
    (text,) = sorted(values)[:1]
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise ValidationException(f"Filter {key} value {text!r} is not an ISO 8601 timestamp.") from error


def _execution(response: Any, execution_id: str) -> WindowExecution:
    execution = _state(response).executions.get(execution_id)
    if execution is None:
        raise DoesNotExistException(f"Maintenance window execution {execution_id} does not exist.")
    return execution


def _started_tasks(execution: WindowExecution, now: datetime) -> list[TaskExecution]:
    """The tasks that have started by `now` (a later task starts when the one before it ends)."""
    return [task for task in execution.tasks if task.started <= now]


def _task_execution(execution: WindowExecution, task_execution_id: str, now: datetime) -> TaskExecution:
    for task in _started_tasks(execution, now):
        if task.task_execution_id == task_execution_id:
            return task
    raise DoesNotExistException(
        f"Task execution {task_execution_id} does not exist in window execution {execution.window_execution_id}."
    )


def _execution_output(execution: WindowExecution, now: datetime) -> dict[str, Any]:
    status, details = execution.status_at(now)
    return drop_none(
        {
            "WindowId": execution.window_id,
            "WindowExecutionId": execution.window_execution_id,
            "Status": status,
            "StatusDetails": details or None,
            "StartTime": execution.started,
            "EndTime": execution.ended if now >= execution.ended else None,  # none while it runs
        }
    )


_PAGE: Final = (10, 100)


@operation("DescribeMaintenanceWindowExecutions")
def _describe_maintenance_window_executions(response: Any) -> dict[str, Any]:
    params = request_params(response)
    validate_input("DescribeMaintenanceWindowExecutions", params)
    window_id = params.get("WindowId", "")
    ssm_backend(response).get_maintenance_window(window_id)  # moto: DoesNotExistException
    filters = filters_of(params, ("ExecutedBefore", "ExecutedAfter"))
    before, after = _time_filter(filters, "ExecutedBefore"), _time_filter(filters, "ExecutedAfter")
    found = [
        e
        for e in _state(response).executions.values()
        if e.window_id == window_id
        and (before is None or e.started <= before)
        and (after is None or e.started >= after)
    ]
    found.sort(key=lambda e: e.started, reverse=True)  # newest first, as the console shows them
    page, token = page_of("DescribeMaintenanceWindowExecutions", found, params, _PAGE)
    now = _now(response)
    return drop_none({"WindowExecutions": [_execution_output(e, now) for e in page], "NextToken": token})


@operation("GetMaintenanceWindowExecution")
def _get_maintenance_window_execution(response: Any) -> dict[str, Any]:
    execution = _execution(response, request_params(response).get("WindowExecutionId", ""))
    now = _now(response)
    output = _execution_output(execution, now)
    output.pop("WindowId")
    return {**output, "TaskIds": [t.task_execution_id for t in _started_tasks(execution, now)]}


def _task_output(execution: WindowExecution, task: TaskExecution, now: datetime) -> dict[str, Any]:
    status, details = task.status_at(now)
    return drop_none(
        {
            "WindowExecutionId": execution.window_execution_id,
            "TaskExecutionId": task.task_execution_id,
            "Status": status,
            "StatusDetails": details or None,
            "StartTime": task.started,
            "EndTime": task.ended if now >= task.ended else None,
            "TaskArn": task.task_arn,
            "TaskType": task.task_type,
        }
    )


@operation("DescribeMaintenanceWindowExecutionTasks")
def _describe_maintenance_window_execution_tasks(response: Any) -> dict[str, Any]:
    params = request_params(response)
    execution = _execution(response, params.get("WindowExecutionId", ""))
    now = _now(response)
    statuses = filters_of(params, ("Status",)).get("Status")
    tasks = [t for t in _started_tasks(execution, now) if statuses is None or t.status_at(now)[0] in statuses]
    page, token = page_of("DescribeMaintenanceWindowExecutionTasks", tasks, params, _PAGE)
    return drop_none(
        {"WindowExecutionTaskIdentities": [_task_output(execution, t, now) for t in page], "NextToken": token}
    )


@operation("GetMaintenanceWindowExecutionTask")
def _get_maintenance_window_execution_task(response: Any) -> dict[str, Any]:
    params = request_params(response)
    execution = _execution(response, params.get("WindowExecutionId", ""))
    now = _now(response)
    task = _task_execution(execution, params.get("TaskId", ""), now)
    output = _task_output(execution, task, now)
    output.pop("TaskType")
    return drop_none(
        {
            **output,
            "ServiceRole": task.service_role,
            "Type": task.task_type,
            "Priority": task.priority,
            "MaxConcurrency": task.max_concurrency or None,
            "MaxErrors": task.max_errors or None,
        }
    )


@operation("DescribeMaintenanceWindowExecutionTaskInvocations")
def _describe_maintenance_window_execution_task_invocations(response: Any) -> dict[str, Any]:
    params = request_params(response)
    execution = _execution(response, params.get("WindowExecutionId", ""))
    now = _now(response)
    task = _task_execution(execution, params.get("TaskId", ""), now)
    statuses = filters_of(params, ("Status",)).get("Status")
    invocations = [i for i in task.invocations if statuses is None or i.status_at(now)[0] in statuses]
    page, token = page_of("DescribeMaintenanceWindowExecutionTaskInvocations", invocations, params, _PAGE)
    identities = [
        drop_none(
            {
                "WindowExecutionId": execution.window_execution_id,
                "TaskExecutionId": task.task_execution_id,
                "InvocationId": i.invocation_id,
                "ExecutionId": i.command_id,
                "TaskType": task.task_type,
                "Parameters": i.parameters,
                "Status": i.status_at(now)[0],
                "StatusDetails": i.status_at(now)[1] or None,
                "StartTime": i.started,
                "EndTime": i.ended if now >= i.ended else None,
                "OwnerInformation": i.owner_information,
                "WindowTargetId": i.window_target_id,
            }
        )
        for i in page
    ]
    return drop_none({"WindowExecutionTaskInvocationIdentities": identities, "NextToken": token})


@operation("ListCommandInvocations")
def _list_command_invocations(response: Any) -> dict[str, Any]:
    params = request_params(response)
    validate_input("ListCommandInvocations", params)
    commands = _state(response).commands
    now = _now(response)
    command_id, instance_id = params.get("CommandId"), params.get("InstanceId")
    if command_id is not None and command_id not in commands:
        return {"CommandInvocations": []}
    chosen = [commands[command_id]] if command_id is not None else list(commands.values())
    invocations = [
        i
        for group in chosen
        for i in group
        if i.requested <= now and (instance_id is None or i.instance_id == instance_id)
    ]
    for item in params.get("Filters") or ():
        if item.get("key") == "Status":
            invocations = [i for i in invocations if i.status_at(now)[0] == item.get("value")]
        else:
            raise ValidationException(
                f"The simulated account filters ListCommandInvocations by Status only, not {item}."
            )
    page, token = page_of("ListCommandInvocations", invocations, params, (1, 50))
    return drop_none({"CommandInvocations": [i.output_at(now) for i in page], "NextToken": token})


class InvocationDoesNotExist(SSMException):
    code = "InvocationDoesNotExist"


# The Run Command statuses of a node the command never ran on (not delivered, or not sent).
_NOT_RUN: Final = frozenset({"Undeliverable", "Delivery Timed Out", "Terminated"})


@correction(
    "GetCommandInvocation",
    why="moto knows only the commands SendCommand sent, not those a maintenance window's Run Command task sends",
)
def _get_command_invocation(response: Any) -> dict[str, Any]:
    params = request_params(response)
    validate_input("GetCommandInvocation", params)
    command_id, instance_id = str(params["CommandId"]), str(params["InstanceId"])
    invocations = _state(response).commands.get(command_id)
    if invocations is None:  # a command someone sent with SendCommand: moto's own answer
        found: dict[str, Any] = ssm_backend(response).get_command_invocation(
            command_id, instance_id, params.get("PluginName")
        )
        return found
    if params.get("PluginName"):
        raise ValidationException("The simulated account does not model AWS-RunPatchBaseline's plugins by name.")
    now = _now(response)
    invocation = next((i for i in invocations if i.instance_id == instance_id and i.requested <= now), None)
    if invocation is None:
        raise InvocationDoesNotExist(f"Command {command_id} has no invocation for instance {instance_id}.")
    status, details = invocation.status_at(now)
    # A command that never ran on the node has no execution times; one still running has no end yet.
    started = invocation.ran and now >= invocation.sent
    ended = invocation.ran and now >= invocation.ended
    stamp = "%Y-%m-%dT%H:%M:%SZ"  # the output shape's ISO 8601 pattern allows one decimal digit at most
    return drop_none(
        {
            "CommandId": command_id,
            "InstanceId": instance_id,
            "DocumentName": invocation.document,
            "DocumentVersion": "$DEFAULT",
            "Status": status,
            "StatusDetails": details,
            "ResponseCode": {"Success": 0, "Failed": 1}.get(status, -1) if ended else -1,
            "ExecutionStartDateTime": invocation.sent.strftime(stamp) if started else None,
            "ExecutionEndDateTime": invocation.ended.strftime(stamp) if ended else None,
            "StandardOutputContent": "",
            "StandardErrorContent": "",
        }
    )


def _patch_states_page(operation_name: str, states: list[PatchState], params: Mapping[str, Any]) -> dict[str, Any]:
    page, token = page_of(operation_name, states, params, _PAGE)
    return drop_none({"InstancePatchStates": [s.to_output() for s in page], "NextToken": token})


@operation("DescribeInstancePatchStates")
def _describe_instance_patch_states(response: Any) -> dict[str, Any]:
    params = request_params(response)
    validate_input("DescribeInstancePatchStates", params)
    known = _state(response).patch_states
    states = [known[i] for i in params.get("InstanceIds") or () if i in known]
    return _patch_states_page("DescribeInstancePatchStates", states, params)


@operation("DescribeInstancePatchStatesForPatchGroup")
def _describe_instance_patch_states_for_patch_group(response: Any) -> dict[str, Any]:
    params = request_params(response)
    validate_input("DescribeInstancePatchStatesForPatchGroup", params)
    if params.get("Filters"):
        raise ValidationException("The simulated account does not filter DescribeInstancePatchStatesForPatchGroup.")
    group = params.get("PatchGroup")
    states = sorted(
        (s for s in _state(response).patch_states.values() if s.patch_group == group), key=lambda s: s.instance_id
    )
    return _patch_states_page("DescribeInstancePatchStatesForPatchGroup", states, params)


def _severity_summary(state: PatchState) -> dict[str, int]:
    summary = dict.fromkeys(
        (
            "CriticalCount",
            "HighCount",
            "MediumCount",
            "LowCount",
            "InformationalCount",
            "UnspecifiedCount",
        ),
        0,
    )
    summary["CriticalCount"] = state.critical_missing
    level = {"CRITICAL": "CriticalCount", "HIGH": "HighCount", "MEDIUM": "MediumCount", "LOW": "LowCount"}.get(
        state.severity_of_missing, "UnspecifiedCount"
    )
    summary[level] += max(0, state.missing + state.failed - state.critical_missing)
    return summary


def _resource_summary(state: PatchState) -> dict[str, Any]:
    non_compliant = state.missing + state.failed
    severity = _severity_summary(state)
    overall = next(
        (name.removesuffix("Count").upper() for name, count in severity.items() if count),
        "UNSPECIFIED",
    )
    return {
        "ComplianceType": "Patch",
        "ResourceType": "ManagedInstance",
        "ResourceId": state.instance_id,
        "Status": "COMPLIANT" if state.compliant else "NON_COMPLIANT",
        "OverallSeverity": overall,
        "ExecutionSummary": {
            "ExecutionTime": state.ended,
            "ExecutionId": state.execution_id,
            "ExecutionType": "Command",
        },
        "CompliantSummary": {"CompliantCount": state.installed, "SeveritySummary": dict.fromkeys(severity, 0)},
        "NonCompliantSummary": {"NonCompliantCount": non_compliant, "SeveritySummary": severity},
    }


def _compliance_filters(params: Mapping[str, Any]) -> dict[str, set[str]]:
    result: dict[str, set[str]] = {}
    for item in params.get("Filters") or ():
        key, kind = item.get("Key"), item.get("Type", "EQUAL")
        if key not in ("ComplianceType", "Status", "InstanceId") or kind != "EQUAL":
            raise ValidationException(
                f"The simulated account filters compliance summaries on ComplianceType, Status and InstanceId with "
                f"EQUAL only, not {key} {kind}."
            )
        result[str(key)] = set(item.get("Values") or ())
    return result


@operation("ListResourceComplianceSummaries")
def _list_resource_compliance_summaries(response: Any) -> dict[str, Any]:
    params = request_params(response)
    filters = _compliance_filters(params)
    if "ComplianceType" in filters and "Patch" not in filters["ComplianceType"]:
        return {"ResourceComplianceSummaryItems": []}
    items = [_resource_summary(s) for _, s in sorted(_state(response).patch_states.items())]
    if "Status" in filters:
        items = [i for i in items if i["Status"] in filters["Status"]]
    if "InstanceId" in filters:
        items = [i for i in items if i["ResourceId"] in filters["InstanceId"]]
    page, token = page_of("ListResourceComplianceSummaries", items, params, (1, 50))
    return drop_none({"ResourceComplianceSummaryItems": page, "NextToken": token})


@operation("ListComplianceSummaries")
def _list_compliance_summaries(response: Any) -> dict[str, Any]:
    params = request_params(response)
    filters = _compliance_filters(params)
    states = list(_state(response).patch_states.values())
    if not states or ("ComplianceType" in filters and "Patch" not in filters["ComplianceType"]):
        return {"ComplianceSummaryItems": []}
    compliant = [s for s in states if s.compliant]
    non_compliant = [s for s in states if not s.compliant]
    severity = dict.fromkeys(_severity_summary(states[0]), 0)
    for state in non_compliant:
        for name, count in _severity_summary(state).items():
            severity[name] += 1 if count else 0
    return {
        "ComplianceSummaryItems": [
            {
                "ComplianceType": "Patch",
                "CompliantSummary": {
                    "CompliantCount": len(compliant),
                    "SeveritySummary": dict.fromkeys(severity, 0),
                },
                "NonCompliantSummary": {"NonCompliantCount": len(non_compliant), "SeveritySummary": severity},
            }
        ]
    }


# --- the events a run emits on the default event bus ---------------------------------------------------

_EVENT_SOURCE: Final = "aws.ssm"
_EVENTS_PER_CALL: Final = 10  # PutEvents takes at most 10 entries


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _window_events(account_id: str, region: str, execution: WindowExecution) -> list[tuple[datetime, dict[str, Any]]]:
    """The terminal state-change events of one run, each with the moment its change happens, as the
    User Guide's event examples show them."""
    window_arn = f"arn:aws:ssm:{region}:{account_id}:maintenancewindow/{execution.window_id}"
    common = {"window-id": execution.window_id, "window-execution-id": execution.window_execution_id}
    events: list[tuple[datetime, dict[str, Any]]] = []

    def add(detail_type: str, detail: dict[str, Any], resources: list[str], at: datetime) -> None:
        events.append(
            (
                at,
                {
                    "Source": _EVENT_SOURCE,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail),
                    "Resources": resources,
                    "Time": at.timestamp(),  # moto formats a number as AWS does; a string it would not quote
                    "EventBusName": "default",
                },
            )
        )

    for task in execution.tasks:
        task_detail = {**common, "task-execution-id": task.task_execution_id}
        for invocation in task.invocations:
            for item in run_state(account_id, region).commands.get(invocation.command_id, []):
                add(
                    "EC2 Command Invocation Status-change Notification",
                    {
                        "command-id": item.command_id,
                        "document-name": item.document,
                        "instance-id": item.instance_id,
                        "requested-date-time": _iso(item.requested),
                        "status": item.status,
                    },
                    [f"arn:aws:ec2:{region}:{account_id}:instance/{item.instance_id}"],
                    item.ended,
                )
            add(
                "EC2 Command Status-change Notification",
                {
                    "command-id": invocation.command_id,
                    "document-name": task.task_arn,
                    "requested-date-time": _iso(invocation.started),
                    "status": invocation.status_details if invocation.status != "SUCCESS" else "Success",
                },
                [],
                invocation.ended,
            )
            add(
                "Maintenance Window Task Target Invocation State-change Notification",
                {
                    **task_detail,
                    "window-target-id": invocation.window_target_id,
                    "owner-information": invocation.owner_information or "",
                    "status": invocation.status,
                    "start-time": _iso(invocation.started),
                    "end-time": _iso(invocation.ended),
                },
                [window_arn],
                invocation.ended,
            )
        add(
            "Maintenance Window Task Execution State-change Notification",
            {**task_detail, "status": task.status, "start-time": _iso(task.started), "end-time": _iso(task.ended)},
            [window_arn],
            task.ended,
        )
    add(
        "Maintenance Window Execution State-change Notification",
        {
            **common,
            "status": execution.status,
            "start-time": _iso(execution.started),
            "end-time": _iso(execution.ended),
        },
        [window_arn],
        execution.ended,
    )
    return events


def _emit(account_id: str, region: str, events: list[dict[str, Any]]) -> None:
    if not events:
        return
    backend = events_backends[account_id][region]
    for start in range(0, len(events), _EVENTS_PER_CALL):
        backend.put_events(events[start : start + _EVENTS_PER_CALL])


# --- the clock moves: windows that fall due run ------------------------------------------------------


def _busy_until(account_id: str, region: str, window_id: str) -> datetime | None:
    """When the window's latest execution ends (its tasks may outlast the window's Duration)."""
    ends = [e.ended for e in run_state(account_id, region).executions.values() if e.window_id == window_id]
    return max(ends, default=None)


def _skip_overlapping(
    account_id: str, region: str, window_id: str, run: datetime, busy_until: datetime
) -> WindowExecution:
    """A run that falls due while the window's previous execution is still running is not started."""
    execution = WindowExecution(
        str(uuid.uuid4()),
        window_id,
        "SKIPPED_OVERLAPPING",
        f"The previous execution of this maintenance window runs until {_iso(busy_until)}.",
        run,
        run,
    )
    state = run_state(account_id, region)
    with state.lock:
        state.executions[execution.window_execution_id] = execution
    _emit(account_id, region, [entry for _, entry in _window_events(account_id, region, execution)])
    return execution


def advance_clock(account_id: str, region: str, until: datetime) -> list[WindowExecution]:
    """Move the simulated clock to `until`, running in time order every window run and every State
    Manager association run (`associations`) that falls due.

    Each run resolves its targets at its own start time, as SSM does, so a node tagged or registered
    after one run and before the next is picked up by the next.
    """
    from tagpatch_local.simulator.scheduler import fire_due  # noqa: PLC0415 - import cycle
    from tagpatch_local.simulator.targets import instances_selected_by_targets  # noqa: PLC0415 - import cycle
    from tagpatch_local.simulator.windows import window_enabled, window_timing  # noqa: PLC0415

    current = clock.now(account_id, region)
    if until < current:
        raise ValueError(f"the simulated clock is at {current.isoformat()}; it cannot go back to {until.isoformat()}")
    from tagpatch_local.simulator import associations  # noqa: PLC0415 - import cycle

    backend = ssm_backends[account_id][region]
    due = sorted(
        [
            *(
                (run, "window", window_id)
                for window_id, window in backend.windows.items()
                if window_enabled(window)
                for run in occurrences(window_timing(window), current, until)
            ),
            *(
                (run, "association", association_id)
                for run, association_id in associations.due_runs(account_id, region, current, until)
            ),
        ]
    )
    ran = []
    for run, kind, window_id in due:
        fire_due(account_id, region, run)  # EventBridge Scheduler's one-time schedules due by then
        settle(account_id, region, run)  # what the runs under way did by then
        clock.set_now(account_id, region, run)
        if kind == "association":
            associations.run_due(account_id, region, window_id, run)  # State Manager, beside the windows
            continue
        if window_id not in backend.windows:
            continue
        busy_until = _busy_until(account_id, region, window_id)
        if busy_until is not None and run < busy_until:
            ran.append(_skip_overlapping(account_id, region, window_id, run, busy_until))
            continue
        selected = instances_selected_by_targets(account_id, region, window_id)
        ran.append(run_window(account_id, region, window_id, run, selected))
    fire_due(account_id, region, until)
    settle(account_id, region, until)
    clock.set_now(account_id, region, until)
    return ran
