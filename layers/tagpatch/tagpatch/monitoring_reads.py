"""PatchMonitoring's SSM reads, in bounded invocations from a cursor (as Discovery lists the fleet).

At 100,000 instances the reads are about 2,000 DescribeInstancePatchStates calls and 2,000
ListCommandInvocations pages, plus the window reads; AWS documents no latency for any of them, so the
workflow calls PatchMonitoring again and again, each invocation reading a bounded share from a cursor
(docs/decisions.md, "PatchMonitoring in bounded invocations"). The reads go in three phases, each
written as parts under the run's prefix, in order:

- `windows`: per owned window (sorted by name) the executions that started in (since, until], their
  tasks and task invocations (`monitoring/runs/part-NNNNN.jsonl.gz`, one record per execution, with
  the Run Command commands its invocations started);
- `commands`: the command invocations of each of those commands, 50 a page
  (`monitoring/commands/part-NNNNN.jsonl.gz`);
- `patch_states`: DescribeInstancePatchStates, 50 in-scope instances a call, or, when the stack's
  resource data sync exists and has not failed, each instance's AWS:PatchSummary and AWS:ComplianceItem
  objects (tagpatch.sync_reads; an instance the sync has no object for is read through the API)
  (`monitoring/patch-states/part-NNNNN.jsonl.gz`).

The read window (`since`, `until`), the owned windows (`monitoring/windows.json`, each with the moment
its runs are read after: `since`, or earlier for a window whose run was still going last cycle) and
the in-scope instance ids (`monitoring/instance-ids.jsonl.gz`) are fixed by the first invocation, so every
invocation reads the same runs and instances. A retried invocation starts from the same
cursor, so it repeats the same reads into the same part key. The composing invocation reads the parts
back with `window_runs` and `patch_states`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, Final, Literal, cast, get_args

from tagpatch import read_loop
from tagpatch.aws import client, next_token, paginate
from tagpatch.cycle import Cycle, iso_z, parse_time
from tagpatch.errors import ArtifactError, InvalidCycleInput, MonitoringStalled
from tagpatch.history import check_turns
from tagpatch.inventory import get_bytes, get_jsonl_gz, put_json, put_jsonl_gz
from tagpatch.monitoring import (
    COMMAND_PAGE_SIZE,
    PAGE_SIZE,
    PATCH_STATE_BATCH,
    Backup,
    InstanceRun,
    PatchState,
    WindowRun,
    parameters_hooks,
    parameters_operation,
)
from tagpatch.observability import tracer
from tagpatch.read_loop import Budget, read_cursor
from tagpatch.reconcile import AUTOMATION_TASK
from tagpatch.sync_reads import (
    COMPLIANCE_ITEM,
    PATCH_SUMMARY,
    SyncLocation,
    patch_state_record,
    read_object,
    synced_ids,
)

# With a resource data sync: instances a turn of the patch_states phase reads (one listing of their
# AWS:PatchSummary keys, two objects each).
SYNC_BATCH: Final = 250
# Automation execution statuses of a backup task that ended without its patch (SSM API Reference).
AUTOMATION_ENDED_UNPATCHED: Final = frozenset({"Failed", "TimedOut", "Cancelled"})
# Automation step statuses that end a step without success (SSM API Reference, StepExecution).
STEP_ENDED_UNSUCCESSFUL: Final = frozenset({"Failed", "TimedOut", "Cancelled"})
Phase = Literal["windows", "commands", "patch_states", "done"]
PHASES: Final = get_args(Phase)
Listing = Literal["runs", "commands", "patch-states"]
COUNT_FIELDS: Final = (
    "position",
    "windows",
    "window_runs",
    "commands",
    "instances",
    "run_parts",
    "command_parts",
    "state_parts",
    "requests",
    "invocations",
)


@dataclass(frozen=True)
class MonitoringCursor:
    """Where a cycle's monitoring reads stand between two invocations (a few hundred bytes)."""

    phase: Phase = "windows"
    since: str | None = None  # the read window, fixed by the first invocation
    until: str | None = None
    token: str | None = None  # the next ListCommandInvocations page of the command at `position`
    position: int = 0  # the next owned window (by name), command, or in-scope instance (by id) of the phase
    windows: int = 0  # owned windows to read
    window_runs: int = 0  # their executions that started in (since, until]
    commands: int = 0  # the Run Command commands those executions started
    instances: int = 0  # in-scope instances whose patch state was asked for
    run_parts: int = 0
    command_parts: int = 0
    state_parts: int = 0
    requests: int = 0
    invocations: int = 0

    @classmethod
    def from_payload(cls, payload: Any) -> MonitoringCursor:
        if payload is None:
            return cls()
        payload, phase, counts = read_cursor(
            payload, "monitoring_reads", cls.__dataclass_fields__, PHASES, COUNT_FIELDS
        )
        texts: dict[str, str | None] = {}
        for name in ("since", "until", "token"):
            value = payload.get(name)
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidCycleInput(f"monitoring_reads.{name} must be a non-empty string or null")
            texts[name] = value
        since, until = texts["since"], texts["until"]
        if (since is None) != (until is None):
            raise InvalidCycleInput("monitoring_reads.since and .until are set together or not at all")
        if since is not None and until is not None:
            if parse_time(since, "monitoring_reads.since") > parse_time(until, "monitoring_reads.until"):
                raise InvalidCycleInput(f"monitoring_reads.since {since!r} is after .until {until!r}")
        elif phase != "windows":
            raise InvalidCycleInput(f"monitoring_reads in phase {phase!r} has no read window (since, until)")
        if texts["token"] is not None and phase != "commands":
            raise InvalidCycleInput(f"monitoring_reads.token is only read in phase 'commands', not {phase!r}")
        return cls(phase=cast(Phase, phase), since=since, until=until, token=texts["token"], **counts)

    def to_payload(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def started(self) -> bool:
        return self.since is not None

    def read_window(self) -> tuple[datetime, datetime]:
        if self.since is None or self.until is None:
            raise InvalidCycleInput("monitoring_reads has no read window (since, until)")
        return parse_time(self.since, "monitoring_reads.since"), parse_time(self.until, "monitoring_reads.until")


def part_key(cycle: Cycle, listing: Listing, part: int) -> str:
    return read_loop.part_key(cycle, f"monitoring/{listing}", part)


def windows_key(cycle: Cycle) -> str:
    return cycle.artifact_key("monitoring/windows.json")


def read_parts(bucket: str, cycle: Cycle, listing: Listing, parts: int) -> Iterator[Any]:
    return read_loop.read_parts(bucket, cycle, f"monitoring/{listing}", parts)


def instance_ids_key(cycle: Cycle) -> str:
    return cycle.artifact_key("monitoring/instance-ids.jsonl.gz")


def in_scope_ids(lines: Iterable[Mapping[str, Any]]) -> list[str]:
    """The in-scope instances of TagValidation's report, sorted: the ids whose patch state is read."""
    return sorted({str(line["instance_id"]) for line in lines if line.get("in_scope", True)})


def begin(
    cursor: MonitoringCursor,
    cycle: Cycle,
    bucket: str,
    since: datetime,
    until: datetime,
    windows: Mapping[str, str],
    instance_ids: Sequence[str],
    read_again: Mapping[str, datetime] | None = None,
    sync: SyncLocation | None = None,
) -> MonitoringCursor:
    """Fix what every invocation of this cycle reads: the read window, the owned windows (name -> id),
    each read after `since` or after its `read_again` moment (a run of it was still going), and the
    in-scope instance ids (written once, so no later invocation decodes the whole report)."""
    if cursor.started:
        return cursor
    earlier = read_again or {}
    put_json(
        bucket,
        windows_key(cycle),
        {
            name: {"window_id": window_id, "since": iso_z(min(since, earlier.get(name, since)))}
            for name, window_id in sorted(windows.items())
        },
    )
    put_jsonl_gz(bucket, instance_ids_key(cycle), instance_ids)
    put_json(bucket, patch_source_key(cycle), {"sync": sync.to_json() if sync else None})
    return replace(cursor, since=iso_z(since), until=iso_z(until), windows=len(windows))


def patch_source_key(cycle: Cycle) -> str:
    return cycle.artifact_key("monitoring/patch-source.json")


def patch_source(bucket: str, cycle: Cycle) -> SyncLocation | None:
    """The resource data sync the first invocation chose to read patch states from, or None (the API)."""
    found = json.loads(get_bytes(bucket, patch_source_key(cycle))).get("sync")
    return SyncLocation.from_json(found) if found else None


def _stalled_check(operation: str, sent: str | None, page: Mapping[str, Any]) -> str | None:
    return next_token(sent, page, MonitoringStalled, operation)


def _pages(operation: str, budget: Budget, result_key: str, **kwargs: Any) -> Iterator[Any]:
    """Every item of a listing read whole within one invocation (bounded by windows, not instances)."""

    def count(page: Mapping[str, Any]) -> None:
        budget.page(len(page.get(result_key, [])))

    return paginate(getattr(client("ssm"), operation), result_key, on_page=count, stalled=MonitoringStalled, **kwargs)


def _read_execution(name: str, execution: Mapping[str, Any], budget: Budget) -> dict[str, Any]:
    """One execution: its status and the commands (operation, command id) its task invocations started."""
    execution_id = str(execution["WindowExecutionId"])
    operations: set[str] = set()
    hooks: dict[str, str] = {}
    commands: list[list[str]] = []
    unpatched: list[list[str]] = []  # [operation, instance id, why]: a backup task that never patched
    backups: list[list[str | None]] = []  # [instance id, backup outcome, image id]: a backup task's image
    for task in _pages(
        "describe_maintenance_window_execution_tasks",
        budget,
        "WindowExecutionTaskIdentities",
        WindowExecutionId=execution_id,
        MaxResults=PAGE_SIZE,
    ):
        for invocation in _pages(
            "describe_maintenance_window_execution_task_invocations",
            budget,
            "WindowExecutionTaskInvocationIdentities",
            WindowExecutionId=execution_id,
            TaskId=task["TaskExecutionId"],
            MaxResults=PAGE_SIZE,
        ):
            operation = parameters_operation(invocation.get("Parameters"))
            operations.add(operation)
            hooks.update(parameters_hooks(invocation.get("Parameters")))
            command_id = invocation.get("ExecutionId")
            if command_id and invocation.get("TaskType") == AUTOMATION_TASK:
                # A backup task's invocation is an Automation execution: its patch is the command it sent.
                command_id, failed_before, backup = _patch_command(str(command_id), budget)
                if failed_before is not None:
                    unpatched.append([operation, *failed_before])
                if backup is not None:
                    backups.append(list(backup))
            if command_id:
                commands.append([operation, str(command_id)])
    return {
        "window": name,
        "execution_id": execution_id,
        "status": str(execution.get("Status", "")),
        "status_details": str(execution.get("StatusDetails", "")),
        "started": execution["StartTime"].isoformat(),
        "ended": execution["EndTime"].isoformat() if execution.get("EndTime") else None,
        "operations": sorted(operations),
        "hooks": dict(sorted(hooks.items())),
        "commands": commands,
        "unpatched": unpatched,
        "backups": backups,
    }


# The backup step of each runbook the stack ships, by its action, and the step output (named in the
# runbook's `outputs`) that carries what it made: the image, or each EBS snapshot of the instance.
BACKUP_STEP_OUTPUTS: Final = {"aws:createImage": "ImageId", "aws:executeAwsApi": "SnapshotIds"}


def _backup(execution: Mapping[str, Any], instance_id: str) -> tuple[str, str, str | None] | None:
    """The instance, the outcome of the runbook's backup step (succeeded, failed, in_progress) and, when
    it succeeded, what the runbook outputs it made (`<step name>.ImageId`, or `<step name>.SnapshotIds`
    comma-separated); None without one."""
    step = next((s for s in execution.get("StepExecutions", []) if s.get("Action") in BACKUP_STEP_OUTPUTS), None)
    status = str(step.get("StepStatus", "")) if step else ""
    if step is not None and status == "Success":
        made = (execution.get("Outputs") or {}).get(f"{step['StepName']}.{BACKUP_STEP_OUTPUTS[step['Action']]}")
        return instance_id, "succeeded", ",".join(str(i) for i in made) if made else None
    if status in STEP_ENDED_UNSUCCESSFUL or execution.get("AutomationExecutionStatus") in AUTOMATION_ENDED_UNPATCHED:
        # A backup that ended failed is no backup: its id is not reported.
        return instance_id, "failed", None
    return instance_id, "in_progress", None


def _patch_command(
    automation_execution_id: str, budget: Budget
) -> tuple[str | None, tuple[str, str] | None, tuple[str, str, str | None] | None]:
    """The command the backup runbook's aws:runCommand step sent, if it did; when the execution ended
    without sending it (the backup failed first), its instance and why; and its backup (see _backup)."""
    execution = client("ssm").get_automation_execution(AutomationExecutionId=automation_execution_id)[
        "AutomationExecution"
    ]
    budget.page(1)
    instance = str(((execution.get("Parameters") or {}).get("InstanceId") or [""])[0])
    backup = _backup(execution, instance) if instance else None
    for step in execution.get("StepExecutions", []):
        if step.get("Action") == "aws:runCommand":
            sent = (step.get("Outputs") or {}).get("CommandId")
            if sent:
                return str(sent[0]), None, backup
    if execution.get("AutomationExecutionStatus") in AUTOMATION_ENDED_UNPATCHED and instance:
        why = str(execution.get("FailureMessage") or execution["AutomationExecutionStatus"])
        return None, (instance, f"not patched: its backup failed ({why})"), backup
    return None, None, backup


def _read_windows(cursor: MonitoringCursor, cycle: Cycle, bucket: str, budget: Budget) -> MonitoringCursor:
    _, before = cursor.read_window()
    windows = sorted(json.loads(get_bytes(bucket, windows_key(cycle))).items())
    if len(windows) != cursor.windows:
        raise ArtifactError(f"{windows_key(cycle)} names {len(windows)} windows; the cursor expects {cursor.windows}")
    records: list[dict[str, Any]] = []
    read = 0
    while cursor.position + read < len(windows) and (read == 0 or budget.left):
        name, window = windows[cursor.position + read]
        window_id, after = str(window["window_id"]), parse_time(str(window["since"]), f"{windows_key(cycle)} {name}")
        for execution in _pages(
            "describe_maintenance_window_executions",
            budget,
            "WindowExecutions",
            WindowId=window_id,
            MaxResults=PAGE_SIZE,
            Filters=[
                {"Key": "ExecutedAfter", "Values": [iso_z(after)]},
                {"Key": "ExecutedBefore", "Values": [iso_z(before)]},
            ],
        ):
            started = execution.get("StartTime")
            if isinstance(started, datetime) and after < started <= before:
                records.append(_read_execution(name, execution, budget))
        read += 1
    if read:
        put_jsonl_gz(bucket, part_key(cycle, "runs", cursor.run_parts), records)
        cursor = replace(
            cursor,
            position=cursor.position + read,
            run_parts=cursor.run_parts + 1,
            window_runs=cursor.window_runs + len(records),
            commands=cursor.commands + sum(len(record["commands"]) for record in records),
        )
    return replace(cursor, phase="commands", position=0) if cursor.position >= len(windows) else cursor


def _commands(bucket: str, cycle: Cycle, cursor: MonitoringCursor) -> list[str]:
    """The command ids of the runs read, in the order they were read (an index names each)."""
    found = [
        command_id for run in read_parts(bucket, cycle, "runs", cursor.run_parts) for _, command_id in run["commands"]
    ]
    if len(found) != cursor.commands:
        raise ArtifactError(f"the run parts name {len(found)} commands; the cursor expects {cursor.commands}")
    return found


def _read_commands(cursor: MonitoringCursor, cycle: Cycle, bucket: str, budget: Budget) -> MonitoringCursor:
    commands = _commands(bucket, cycle, cursor)
    ssm = client("ssm")
    records: list[list[Any]] = []
    pages = 0
    while cursor.position < len(commands) and (pages == 0 or budget.left):
        page = ssm.list_command_invocations(
            CommandId=commands[cursor.position],
            MaxResults=COMMAND_PAGE_SIZE,
            **({"NextToken": cursor.token} if cursor.token else {}),
        )
        items = page.get("CommandInvocations", [])
        budget.page(len(items))
        pages += 1
        records.extend(
            [cursor.position, str(item["InstanceId"]), str(item.get("Status", "")), str(item.get("StatusDetails", ""))]
            for item in items
        )
        token = _stalled_check("list_command_invocations", cursor.token, page)
        cursor = replace(cursor, token=token, position=cursor.position + (token is None))
    if pages:
        put_jsonl_gz(bucket, part_key(cycle, "commands", cursor.command_parts), records)
        cursor = replace(cursor, command_parts=cursor.command_parts + 1)
    return replace(cursor, phase="patch_states", position=0) if cursor.position >= len(commands) else cursor


def _api_record(item: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "instance_id": str(item["InstanceId"]),
        "missing": int(item.get("MissingCount", 0)),
        "critical_missing": int(item.get("CriticalNonCompliantCount", 0)),
        "installed": int(item.get("InstalledCount", 0)),
        "failed": int(item.get("FailedCount", 0)),
        "pending_reboot": int(item.get("InstalledPendingRebootCount", 0)),
        "operation": str(item.get("Operation", "")),
        "operation_end": item["OperationEndTime"].isoformat(),
    }


def _api_states(ids: Sequence[str], budget: Budget) -> list[dict[str, Any]]:
    """DescribeInstancePatchStates, 50 instances a call."""
    records: list[dict[str, Any]] = []
    for start in range(0, len(ids), PATCH_STATE_BATCH):
        batch = list(ids[start : start + PATCH_STATE_BATCH])
        for item in _pages(
            "describe_instance_patch_states", budget, "InstancePatchStates", InstanceIds=batch, MaxResults=PAGE_SIZE
        ):
            records.append(_api_record(item))
    return records


def _synced_states(sync: SyncLocation, ids: Sequence[str], budget: Budget) -> tuple[list[dict[str, Any]], list[str]]:
    """The patch states of `ids` (sorted) that the sync has objects for, and the ids it has none for."""
    # A listing page counts as one item; a patch state as one item, whether from one call or two objects.
    found = synced_ids(sync, ids[0], ids[-1], lambda: budget.page(0))
    records: list[dict[str, Any]] = []
    unsynced: list[str] = []
    for instance_id in ids:
        record = None
        if instance_id in found:
            summary = read_object(sync, PATCH_SUMMARY, instance_id)
            budget.page(1)
            if summary:
                items = read_object(sync, COMPLIANCE_ITEM, instance_id)
                budget.request()
                record = patch_state_record(instance_id, summary, items) if items is not None else None
        if record is None:
            unsynced.append(instance_id)
        else:
            records.append(record)
    return records, unsynced


def _read_patch_states(cursor: MonitoringCursor, cycle: Cycle, bucket: str, budget: Budget) -> MonitoringCursor:
    ids = [str(instance_id) for instance_id in get_jsonl_gz(bucket, instance_ids_key(cycle))]
    sync = patch_source(bucket, cycle)
    step = SYNC_BATCH if sync is not None else PATCH_STATE_BATCH
    records: list[dict[str, Any]] = []
    batches = 0
    position = cursor.position
    while position < len(ids) and (batches == 0 or budget.left):
        batch = ids[position : position + step]
        unsynced = batch
        if sync is not None:
            synced, unsynced = _synced_states(sync, batch, budget)
            records += synced
        records += _api_states(unsynced, budget)
        position += len(batch)
        batches += 1
    if batches:
        put_jsonl_gz(bucket, part_key(cycle, "patch-states", cursor.state_parts), records)
        cursor = replace(cursor, state_parts=cursor.state_parts + 1)
    cursor = replace(cursor, position=position, instances=len(ids))
    return replace(cursor, phase="done", position=0) if position >= len(ids) else cursor


@tracer.capture_method
def read_some(
    cursor: MonitoringCursor,
    cycle: Cycle,
    bucket: str,
    *,
    items: int,
    seconds: float,
    clock: Callable[[], float] = time.monotonic,
) -> MonitoringCursor:
    """Read up to about `items` records (whole pages, whole windows, whole batches of 50 instances)
    from `cursor`, for at most about `seconds`; write them as parts; return the next cursor."""
    if cursor.phase == "done":
        return cursor
    if not cursor.started:
        raise InvalidCycleInput("monitoring_reads has no read window (since, until); begin() fixes it")
    check_turns("MonitoringReads", cursor.invocations, "MonitoringItemsPerInvocation", items)
    budget = Budget(share=items, deadline=clock() + seconds, clock=clock)
    cursor = replace(cursor, invocations=cursor.invocations + 1)
    if cursor.phase == "windows":
        cursor = _read_windows(cursor, cycle, bucket, budget)
    if cursor.phase == "commands" and (budget.requests == 0 or budget.left):
        cursor = _read_commands(cursor, cycle, bucket, budget)
    if cursor.phase == "patch_states" and (budget.requests == 0 or budget.left):
        cursor = _read_patch_states(cursor, cycle, bucket, budget)
    return replace(cursor, requests=cursor.requests + budget.requests)


# --- what the composing invocation reads back ---------------------------------------------------------


def window_runs(bucket: str, cycle: Cycle, cursor: MonitoringCursor) -> list[WindowRun]:
    """The executions read, with every instance their commands reached, oldest first."""
    records = list(read_parts(bucket, cycle, "runs", cursor.run_parts))
    owner: list[tuple[int, str]] = [
        (index, operation) for index, record in enumerate(records) for operation, _ in record["commands"]
    ]
    if len(owner) != cursor.commands:
        raise ArtifactError(f"the run parts name {len(owner)} commands; the cursor expects {cursor.commands}")
    instances: list[dict[str, tuple[str, InstanceRun]]] = [{} for _ in records]
    for command, instance_id, status, details in read_parts(bucket, cycle, "commands", cursor.command_parts):
        index, operation = owner[command]
        reached = instances[index]
        # An Install result outranks a Scan of the same node in the same window.
        if instance_id not in reached or operation == "Install":
            reached[instance_id] = (operation, InstanceRun(instance_id, status, details))
    for record, reached in zip(records, instances, strict=True):
        # A backup task that never sent its patch reached the instance and failed it there.
        for operation, instance_id, why in record.get("unpatched") or []:
            reached.setdefault(instance_id, (operation, InstanceRun(instance_id, "Failed", why)))
    runs = [
        WindowRun(
            window_name=str(record["window"]),
            window_execution_id=str(record["execution_id"]),
            status=str(record["status"]),
            status_details=str(record["status_details"]),
            started=datetime.fromisoformat(record["started"]),
            operations=frozenset(record["operations"]),
            instances=reached,
            ended=datetime.fromisoformat(record["ended"]) if record.get("ended") else None,
            hooks=dict(record.get("hooks") or {}),
            backups={
                str(instance_id): Backup(str(outcome), backup_id)
                for instance_id, outcome, backup_id in record.get("backups") or []
            },
        )
        for record, reached in zip(records, instances, strict=True)
    ]
    runs.sort(key=lambda run: run.started)
    return runs


def patch_states(bucket: str, cycle: Cycle, cursor: MonitoringCursor) -> dict[str, PatchState]:
    return {
        str(record["instance_id"]): PatchState(
            missing=record["missing"],
            critical_missing=record["critical_missing"],
            installed=record["installed"],
            failed=record["failed"],
            pending_reboot=record["pending_reboot"],
            operation=record["operation"],
            operation_end=datetime.fromisoformat(record["operation_end"]),
        )
        for record in read_parts(bucket, cycle, "patch-states", cursor.state_parts)
    }
