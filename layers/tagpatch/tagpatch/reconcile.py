"""Diff what SSM has against what the tags ask for, touching only what tagpatch owns.

Pure code. The actual state is read elsewhere (tagpatch.ssm_windows) into the dataclasses below;
the result is a list of `Change`s, the same form in plan mode and apply mode.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

from tagpatch.desired import (
    INSTANCE_IDS_KEY,
    MANAGED_PREFIX,
    OWNER_INFORMATION,
    TASK_OWNER_MARK,
    DesiredState,
    DesiredTarget,
    DesiredWindow,
    Problem,
)
from tagpatch.errors import ConfigurationError
from tagpatch.policy import HOOK_PARAMETERS, NO_HOOK, SERVICE_LINKED, Backup, TaskSettings, WindowSettings

Kind = Literal["window", "target", "task", "registration", "scan"]
Action = Literal["create", "update", "delete", "unchanged", "blocked"]
MAX_PATCH_GROUPS_PER_BASELINE: Final = 25
KINDS: Final[tuple[Kind, ...]] = ("window", "target", "task", "registration", "scan")
WRITE_ACTIONS: Final = frozenset({"create", "update", "delete"})
# How summaries name each action's count.
PAST_TENSE: Final[Mapping[str, str]] = {
    "create": "created",
    "update": "updated",
    "delete": "deleted",
    "unchanged": "unchanged",
    "blocked": "blocked",
}
PATCH_DOCUMENT: Final = "AWS-RunPatchBaseline"
# The patch document with pre-install, post-install and on-exit hooks (each a Command document).
HOOKS_DOCUMENT: Final = "AWS-RunPatchBaselineWithHooks"


# A task of the stack's backup runbook (BackupThenPatchRunbook): image, then patch, on each instance.
AUTOMATION_TASK: Final = "AUTOMATION"
# The runbook's parameter naming the instance: SSM puts each target instance's id in its place.
RESOURCE_ID: Final = "{{RESOURCE_ID}}"


@dataclass(frozen=True)
class BackupRunbook:
    """The stack's backup-then-patch runbooks and the role Automation assumes to run them."""

    document: str  # `backup: image`: an AMI, then the patch (BackupThenPatchRunbook)
    role_arn: str
    snapshot_document: str  # `backup: snapshot`: EBS snapshots, then the patch (BackupSnapshotsThenPatchRunbook)

    def document_for(self, backup: Backup) -> str:
        return self.document if backup == "image" else self.snapshot_document


def hook_parameters(hooks: Mapping[str, str]) -> dict[str, str]:
    """Every hook of a hooked task, by the policy's key: the named document, or AWS-Noop."""
    return {key: hooks.get(key, NO_HOOK) for key in HOOK_PARAMETERS}


# The description tagpatch wrote on its tasks before TASK_OWNER_MARK (recognised to migrate them).
LEGACY_TASK_DESCRIPTION: Final = re.compile(rf"{OWNER_INFORMATION}: (Scan|Install) with [A-Za-z]+")


@dataclass(frozen=True)
class Change:
    kind: Kind
    action: Action
    name: str
    window: str | None = None
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    reason: str | None = None
    resource_id: str | None = None  # the existing window, target or task, when there is one

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Change:
        return cls(**data)


@dataclass(frozen=True)
class ActualTarget:
    window_target_id: str
    name: str
    targets: tuple[tuple[str, tuple[str, ...]], ...]  # (Key, sorted Values)
    owner_information: str | None

    @property
    def owned(self) -> bool:
        return self.owner_information == OWNER_INFORMATION and self.name.startswith(MANAGED_PREFIX)


@dataclass(frozen=True)
class ActualTask:
    window_task_id: str
    name: str
    description: str | None
    task_arn: str
    target_ids: tuple[str, ...]
    service_role_arn: str | None
    max_concurrency: str | None
    max_errors: str | None
    priority: int | None
    operation: str | None
    reboot_option: str | None
    cutoff_behavior: str | None  # None: registered without one, so SSM's default (CONTINUE_TASK)
    hooks: Mapping[str, str] = field(default_factory=dict)  # its hook parameters, by the policy's key
    task_type: str = "RUN_COMMAND"
    automation_role: str | None = None  # an AUTOMATION task's AutomationAssumeRole parameter

    @property
    def marked(self) -> bool:
        return (self.description or "").endswith(TASK_OWNER_MARK)

    @property
    def owned(self) -> bool:
        """Named by tagpatch and carrying its mark; or, once, a patch task written before the mark
        (exactly tagpatch's old description, running the patch document), which is then given it."""
        legacy = LEGACY_TASK_DESCRIPTION.fullmatch(self.description or "") is not None and (
            self.task_arn == PATCH_DOCUMENT
        )
        return self.name.startswith(MANAGED_PREFIX) and (self.marked or legacy)


@dataclass(frozen=True)
class ActualWindow:
    window_id: str
    name: str
    owned: bool  # carries the tagpatch:managed tag
    schedule: str
    timezone: str | None
    duration_hours: int
    cutoff_hours: int
    offset_days: int | None
    description: str | None
    enabled: bool
    targets: tuple[ActualTarget, ...] = ()
    tasks: tuple[ActualTask, ...] = ()


# Why the plan leaves a window alone although the tags need a change to it: its name is held by a window
# tagpatch does not own, or its deletion is one of more than the mass-deletion safety limit allows.
WindowBlock = Literal["name taken", "safety limit"]


@dataclass(frozen=True)
class BlockedWindow:
    name: str
    block: WindowBlock
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"kind": "window", "name": self.name, "block": self.block, "reason": self.reason}


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    problems: tuple[Problem, ...] = ()
    # Windows the cycle leaves alone although the tags need the change: each is a shortfall, counted
    # for the alarm and named in the alert and the report.
    blocked_windows: tuple[BlockedWindow, ...] = ()

    def counts(self) -> dict[str, dict[str, int]]:
        """kind -> {created, updated, deleted, unchanged, blocked}, for summary.json."""
        counts: dict[str, dict[str, int]] = {kind: dict.fromkeys(PAST_TENSE.values(), 0) for kind in KINDS}
        for change in self.changes:
            counts[change.kind][PAST_TENSE[change.action]] += 1
        return counts

    def writes(self) -> tuple[Change, ...]:
        return tuple(change for change in self.changes if change.action in WRITE_ACTIONS)


def write_counts(changes: Iterable[Change]) -> dict[str, int]:
    """{created, updated, deleted} over the writes among `changes` (what applying them does)."""
    counts = {PAST_TENSE[action]: 0 for action in ("create", "update", "delete")}
    for change in changes:
        if change.action in WRITE_ACTIONS:
            counts[PAST_TENSE[change.action]] += 1
    return counts


# --- comparable forms ----------------------------------------------------------------------------------


def window_fields(settings: WindowSettings, description: str) -> dict[str, Any]:
    return {
        "schedule": settings.schedule,
        "timezone": settings.timezone,
        "duration_hours": settings.duration_hours,
        "cutoff_hours": settings.cutoff_hours,
        "offset_days": settings.offset_days,
        "description": description,
        "enabled": True,
    }


def actual_window_fields(window: ActualWindow) -> dict[str, Any]:
    return {
        "schedule": window.schedule,
        "timezone": window.timezone or "UTC",
        "duration_hours": window.duration_hours,
        "cutoff_hours": window.cutoff_hours,
        "offset_days": window.offset_days,
        "description": window.description,
        "enabled": window.enabled,
    }


PATCH_GROUP_TAG_KEYS: Final = frozenset({"tag:Patch Group", "tag:PatchGroup"})
WINDOW_TAG_KEYS: Final = frozenset({"tag:Maintenance Window", "tag:MaintenanceWindow"})


def target_fields(target: DesiredTarget) -> dict[str, Any]:
    if target.instance_ids:
        return {"instance_ids": list(target.instance_ids)}
    return {
        "tag_key": target.tag_key,
        "values": list(target.values),
        "window_key": target.window_key,
        "window_values": list(target.window_values),
    }


def actual_target_fields(target: ActualTarget) -> dict[str, Any]:
    keys = {key for key, _ in target.targets}
    if len(target.targets) == 2 and keys & PATCH_GROUP_TAG_KEYS and keys & WINDOW_TAG_KEYS:
        found = dict(target.targets)
        (group_key,) = keys & PATCH_GROUP_TAG_KEYS
        (window_key,) = keys & WINDOW_TAG_KEYS
        return {
            "tag_key": group_key.removeprefix("tag:"),
            "values": list(found[group_key]),
            "window_key": window_key.removeprefix("tag:"),
            "window_values": list(found[window_key]),
        }
    if len(target.targets) == 1 and target.targets[0][0] == INSTANCE_IDS_KEY:
        return {"instance_ids": list(target.targets[0][1])}
    return {"targets": [{"Key": key, "Values": list(values)} for key, values in target.targets]}


def task_fields(
    settings: TaskSettings, target_names: Sequence[str], backup_runbook: BackupRunbook | None = None
) -> dict[str, Any]:
    fields = {
        "operation": settings.operation,
        "reboot_option": settings.reboot_option,
        "max_concurrency": settings.max_concurrency,
        "max_errors": settings.max_errors,
        "priority": settings.priority,
        "service_role": _service_role(settings.service_role),
        "cutoff_behavior": settings.cutoff_behavior,
        "targets": sorted(target_names),
        "document": HOOKS_DOCUMENT if settings.hooks else PATCH_DOCUMENT,
        "owner_mark": True,
    } | ({"hooks": hook_parameters(dict(settings.hooks))} if settings.hooks else {})
    if settings.backup is None:
        return fields
    if backup_runbook is None:
        raise ConfigurationError(
            f"a task asks for backup: {settings.backup} but the function was not given the stack's backup runbooks "
            "(BACKUP_RUNBOOK_NAME, BACKUP_SNAPSHOT_RUNBOOK_NAME, BACKUP_AUTOMATION_ROLE_ARN in template.yaml)"
        )
    # The runbook always runs the hooked patch document, so its hook parameters are always set.
    return fields | {
        "task_type": AUTOMATION_TASK,
        "document": backup_runbook.document_for(settings.backup),
        "automation_role": backup_runbook.role_arn,
        "hooks": hook_parameters(dict(settings.hooks)),
    }


# What SSM does at the cutoff with a task registered without CutoffBehavior (the API reference's default).
SSM_CUTOFF_BEHAVIOR: Final = "CONTINUE_TASK"
# SSM reports a task registered without ServiceRoleArn with the service-linked role it then uses.
SERVICE_LINKED_ROLE_SUFFIX: Final = ":role/aws-service-role/ssm.amazonaws.com/AWSServiceRoleForAmazonSSM"


def _service_role(arn: str | None) -> str:
    return SERVICE_LINKED if not arn or arn.endswith(SERVICE_LINKED_ROLE_SUFFIX) else arn


def actual_task_fields(task: ActualTask, target_names_by_id: Mapping[str, str]) -> dict[str, Any]:
    fields = {
        "operation": task.operation,
        "reboot_option": task.reboot_option,
        "max_concurrency": task.max_concurrency,
        "max_errors": task.max_errors,
        "priority": task.priority,
        "service_role": _service_role(task.service_role_arn),
        "cutoff_behavior": task.cutoff_behavior or SSM_CUTOFF_BEHAVIOR,
        "targets": sorted(target_names_by_id.get(target_id, target_id) for target_id in task.target_ids),
        "document": task.task_arn,
        "owner_mark": task.marked,
    } | ({"hooks": hook_parameters(task.hooks)} if task.task_arn == HOOKS_DOCUMENT else {})
    if task.task_type != AUTOMATION_TASK:
        return fields
    return fields | {
        "task_type": AUTOMATION_TASK,
        "automation_role": task.automation_role,
        "hooks": hook_parameters(task.hooks),
    }


# --- the diff --------------------------------------------------------------------------------------------


def _diff_members(
    window: DesiredWindow, actual: ActualWindow | None, backup_runbook: BackupRunbook | None
) -> list[Change]:
    """Targets and tasks inside one window tagpatch owns (or is about to create)."""
    changes: list[Change] = []
    actual_targets = {target.name: target for target in (actual.targets if actual else ())}
    actual_tasks = {task.name: task for task in (actual.tasks if actual else ())}
    names_by_id = {target.window_target_id: target.name for target in actual_targets.values()}

    desired_target_names = {target.name for target in window.targets}
    for target in window.targets:
        changes.append(
            _diff_one(
                "target",
                target.name,
                window.name,
                target_fields(target),
                actual_targets.get(target.name),
                actual_target_fields,
            )
        )
    desired_task_names = {task.name for task in window.tasks}
    for task in window.tasks:
        after = task_fields(task.settings, task.target_names, backup_runbook)
        current = actual_tasks.get(task.name)
        changes.append(
            _diff_one(
                "task",
                task.name,
                window.name,
                after,
                current,
                lambda found: actual_task_fields(found, names_by_id),
            )
        )
    changes.extend(
        _deletions(
            "task",
            window.name,
            actual_tasks,
            desired_task_names,
            lambda task: actual_task_fields(task, names_by_id),
            lambda task: task.window_task_id,
        )
    )
    changes.extend(
        _deletions(
            "target",
            window.name,
            actual_targets,
            desired_target_names,
            actual_target_fields,
            lambda target: target.window_target_id,
        )
    )
    return changes


def _deletions(
    kind: Kind,
    window: str,
    actual: Mapping[str, Any],
    desired_names: set[str],
    read: Callable[[Any], dict[str, Any]],
    resource_id: Callable[[Any], str],
) -> list[Change]:
    """Owned members of a window that nothing asks for any more; unowned ones are never touched."""
    return [
        Change(kind, "delete", name, window, read(current), None, resource_id=resource_id(current))
        for name, current in sorted(actual.items())
        if name not in desired_names and current.owned
    ]


def _diff_one(kind: Kind, name: str, window: str, after: dict[str, Any], current: Any, read: Any) -> Change:
    if current is None:
        return Change(kind, "create", name, window, None, after)
    resource_id = current.window_target_id if kind == "target" else current.window_task_id
    if not current.owned:
        return Change(
            kind,
            "blocked",
            name,
            window,
            read(current),
            after,
            reason=f"a {kind} named {name} in window {window} was not made by tagpatch; left unchanged",
            resource_id=resource_id,
        )
    before = read(current)
    action: Action = "unchanged" if before == after else "update"
    return Change(kind, action, name, window, before, after, resource_id=resource_id)


def plan_windows(
    desired: DesiredState,
    actual: Iterable[ActualWindow],
    *,
    max_deletion_share: float,
    allow_mass_deletion: bool,
    backup_runbook: BackupRunbook | None = None,
) -> Plan:
    windows_by_name: dict[str, list[ActualWindow]] = {}
    for found in sorted(actual, key=lambda w: w.window_id):
        windows_by_name.setdefault(found.name, []).append(found)
    changes: list[Change] = []
    problems: list[Problem] = list(desired.problems)
    blocked: list[BlockedWindow] = []
    desired_names = {window.name for window in desired.windows}

    # Ownership needs both marks: the tag and the name prefix.
    owned_by_name = {
        name: [window for window in same_name if window.owned and name.startswith(MANAGED_PREFIX)]
        for name, same_name in windows_by_name.items()
    }
    kept: dict[str, ActualWindow] = {}
    for name, owned_windows in sorted(owned_by_name.items()):
        if not owned_windows:
            continue
        # Two owned windows with one name are left by a past race: keep the lowest id (any stable choice
        # will do: ids are random), remove the rest.
        kept[name], *duplicates = owned_windows
        for duplicate in duplicates:
            changes.extend(_remove_duplicate(duplicate, kept[name], problems))

    for window in desired.windows:
        unowned = [other for other in windows_by_name.get(window.name, []) if not other.owned]
        current = kept.get(window.name)
        after = window_fields(window.settings, window.description)
        if unowned:
            blocker = unowned[0]
            reason = (
                f"a maintenance window named {window.name} exists ({blocker.window_id}) but is not tagged "
                "tagpatch:managed=true; tagpatch will not change it. Rename or delete it, or tag it to hand it over"
            )
            changes.append(
                Change(
                    "window",
                    "blocked",
                    window.name,
                    window.name,
                    actual_window_fields(blocker),
                    after,
                    reason,
                    resource_id=blocker.window_id,
                )
            )
            problems.append(Problem("window", window.name, reason))
            blocked.append(BlockedWindow(window.name, "name taken", reason))
        elif current is None:
            changes.append(Change("window", "create", window.name, window.name, None, after))
            changes.extend(_diff_members(window, None, backup_runbook))
        else:
            # An operator pauses a window by disabling it; tagpatch never enables it again.
            after["enabled"] = current.enabled
            if not current.enabled:
                problems.append(
                    Problem(
                        "window",
                        window.name,
                        f"paused: maintenance window {window.name} ({current.window_id}) is disabled, so its "
                        "instances are not patched; tagpatch keeps it disabled. Enable it to resume patching",
                    )
                )
            before = actual_window_fields(current)
            action: Action = "unchanged" if before == after else "update"
            changes.append(
                Change("window", action, window.name, window.name, before, after, resource_id=current.window_id)
            )
            changes.extend(_diff_members(window, current, backup_runbook))

    owned = sorted(kept.values(), key=lambda w: w.name)
    doomed = [gone for gone in owned if gone.name not in desired_names]
    limit = max(1, math.floor(max_deletion_share * len(owned)))
    if doomed and len(doomed) > limit and not allow_mass_deletion:
        reason = (
            f"safety limit: this cycle would delete {len(doomed)} of the {len(owned)} maintenance windows tagpatch "
            f"owns (more than {max_deletion_share:.0%}, i.e. {limit}); nothing was deleted. If that is intended, "
            'start a cycle with {"allow_mass_deletion": true}'
        )
        problems.append(Problem("window", "safety-limit", reason))
        blocked.extend(BlockedWindow(gone.name, "safety limit", reason) for gone in doomed)
        changes.extend(
            Change(
                "window",
                "blocked",
                gone.name,
                gone.name,
                actual_window_fields(gone),
                None,
                reason,
                resource_id=gone.window_id,
            )
            for gone in doomed
        )
    else:
        for gone in doomed:
            changes.extend(_delete_window(gone, problems))
    return Plan(tuple(changes), tuple(problems), tuple(blocked))


def _foreign_members(window: ActualWindow) -> list[str]:
    return [f"target {t.name or t.window_target_id}" for t in window.targets if not t.owned] + [
        f"task {t.name or t.window_task_id}" for t in window.tasks if not t.owned
    ]


def _delete_window(window: ActualWindow, problems: list[Problem], reason: str | None = None) -> list[Change]:
    """Delete an owned window, unless someone else registered targets or tasks in it.

    Deleting a window deletes everything in it, so a window holding members tagpatch does not own is
    left in place and reported; the members tagpatch owns in it are deregistered.
    """
    foreign = _foreign_members(window)
    if not foreign:
        return [
            Change(
                "window",
                "delete",
                window.name,
                window.name,
                actual_window_fields(window),
                None,
                reason,
                resource_id=window.window_id,
            )
        ]
    blocked_reason = (
        f"maintenance window {window.name} ({window.window_id}) is no longer needed, but it holds "
        f"{', '.join(sorted(foreign))}, which tagpatch did not register; the window is left in place and only "
        "tagpatch's own targets and tasks are removed. Move or deregister the others, then the next cycle deletes it"
    )
    problems.append(Problem("window", window.name, blocked_reason))
    names_by_id = {target.window_target_id: target.name for target in window.targets}
    return [
        Change(
            "window",
            "blocked",
            window.name,
            window.name,
            actual_window_fields(window),
            None,
            blocked_reason,
            resource_id=window.window_id,
        ),
        *(
            Change(
                "task",
                "delete",
                task.name,
                window.name,
                actual_task_fields(task, names_by_id),
                None,
                resource_id=task.window_task_id,
            )
            for task in sorted(window.tasks, key=lambda t: t.name)
            if task.owned
        ),
        *(
            Change(
                "target",
                "delete",
                target.name,
                window.name,
                actual_target_fields(target),
                None,
                resource_id=target.window_target_id,
            )
            for target in sorted(window.targets, key=lambda t: t.name)
            if target.owned
        ),
    ]


def _remove_duplicate(duplicate: ActualWindow, kept: ActualWindow, problems: list[Problem]) -> list[Change]:
    reason = (
        f"duplicate: {duplicate.window_id} is a second maintenance window named {duplicate.name} that tagpatch "
        f"owns (left by two cycles that ran at once); {kept.window_id} is kept"
    )
    foreign = _foreign_members(duplicate)
    if foreign:
        # Deleting it would delete what others registered in it; a person has to sort it out.
        problems.append(
            Problem(
                "window",
                duplicate.name,
                f"{reason}. The duplicate also holds {', '.join(sorted(foreign))}, which tagpatch did not "
                "register, so it is left in place: move those to another window and delete it",
            )
        )
        return []
    problems.append(Problem("window", duplicate.name, f"{reason}; the duplicate is deleted"))
    return _delete_window(duplicate, problems, reason)


@dataclass
class RegistrationState:
    """What DescribePatchGroups shows, and which of it tagpatch registered (its ledger)."""

    actual: dict[tuple[str, str], str] = field(default_factory=dict)  # (group, os) -> baseline id
    ledger: dict[tuple[str, str], str] = field(default_factory=dict)  # what tagpatch registered
    # (group, os) -> (run id, action) of the cycle that made the ledger entry: a retried step knows
    # what an earlier attempt of its own cycle made, though its outcomes were lost with that attempt.
    made_by: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    # Entries stored with a pending mark (intended, not yet confirmed when the ledger was last saved).
    pending: set[tuple[str, str]] = field(default_factory=set)
    # (group, os) -> run id of the cycle about to deregister it (marked before the request is sent).
    removing: dict[tuple[str, str], str] = field(default_factory=dict)


def made_by_earlier_attempt(plan: Plan, state: RegistrationState, run_id: str) -> tuple[Plan, tuple[Change, ...]]:
    """The plan with what an earlier attempt of this cycle did (the workflow retried the step) given
    back as that attempt's writes, and those writes: a registration it made plans as unchanged now, and
    one it deregistered (marked removing before the request) is gone from SSM and planned not at all."""
    changes: list[Change] = []
    carried: list[Change] = []
    for change in plan.changes:
        key = registration_key(change)
        made = state.made_by.get(key) if change.action == "unchanged" and key is not None else None
        if made is not None and made[0] == run_id and made[1] in ("create", "update"):
            action: Action = "create" if made[1] == "create" else "update"
            before = None if action == "create" else change.before
            change = Change(change.kind, action, change.name, change.window, before, change.after)  # noqa: PLW2901
            carried.append(change)
        changes.append(change)
    planned = {registration_key(change) for change in plan.changes}
    for (group, operating_system), remover in sorted(state.removing.items()):
        key = (group, operating_system)
        if remover != run_id or key in state.actual or key in planned or key not in state.ledger:
            continue
        before = {"patch_group": group, "operating_system": operating_system, "baseline_id": state.ledger[key]}
        gone = Change("registration", "delete", f"{group}/{operating_system}", None, before, None)
        changes.append(gone)
        carried.append(gone)
    return Plan(tuple(changes), plan.problems, plan.blocked_windows), tuple(carried)


def registration_key(change: Change) -> tuple[str, str] | None:
    """(patch group, OS) of a registration change."""
    found = change.after or change.before
    return None if found is None else (str(found["patch_group"]), str(found["operating_system"]))


def plan_registrations(
    desired: Mapping[tuple[str, str], str],
    state: RegistrationState,
    *,
    problems: Sequence[Problem] = (),
    max_groups_per_baseline: int = MAX_PATCH_GROUPS_PER_BASELINE,
    max_deletion_share: float = 0.25,
    allow_mass_deletion: bool = False,
) -> Plan:
    """desired: (patch group, OS) -> baseline id, already resolved from the policy.

    A baseline holds at most 25 patch groups: registrations beyond that are reported as blocked
    (in patch group order, so the same groups are blocked every cycle), never attempted.
    Deregistrations obey the same safety limit as window deletions.
    """
    changes: list[Change] = []
    found = list(problems)
    deleted = {
        key for key, registered in state.ledger.items() if key not in desired and state.actual.get(key) == registered
    }
    owned = sum(1 for key, registered in state.ledger.items() if state.actual.get(key) == registered)
    limit = max(1, math.floor(max_deletion_share * owned))
    blocked_reason = None
    if len(deleted) > limit and not allow_mass_deletion:
        blocked_reason = (
            f"safety limit: this cycle would deregister {len(deleted)} of the {owned} patch group registrations "
            f"tagpatch owns (more than {max_deletion_share:.0%}, i.e. {limit}); nothing was deregistered. If that "
            'is intended, start a cycle with {"allow_mass_deletion": true}'
        )
        found.append(Problem("registration", "safety-limit", blocked_reason))
    moving = {
        key
        for key, baseline_id in desired.items()
        if key in state.actual and state.actual[key] != baseline_id and state.ledger.get(key) == state.actual[key]
    }
    # Groups each baseline will hold once this plan is applied, before any new registration.
    freed = deleted if blocked_reason is None else set()
    load = Counter(baseline for key, baseline in state.actual.items() if key not in freed and key not in moving)
    for (group, operating_system), baseline_id in sorted(desired.items()):
        name = f"{group}/{operating_system}"
        after = {"patch_group": group, "operating_system": operating_system, "baseline_id": baseline_id}
        current = state.actual.get((group, operating_system))
        before = None if current is None else {**after, "baseline_id": current}
        if current == baseline_id:
            changes.append(Change("registration", "unchanged", name, None, before, after))
            continue
        if current is not None and state.ledger.get((group, operating_system)) != current:
            reason = (
                f"patch group {group!r} is registered for {operating_system} with baseline {current}, "
                "which tagpatch did not register; deregister it by hand to let tagpatch manage it"
            )
            changes.append(Change("registration", "blocked", name, None, before, after, reason))
            found.append(Problem("registration", name, reason))
            continue
        if load[baseline_id] >= max_groups_per_baseline:
            reason = (
                f"baseline {baseline_id} already holds {max_groups_per_baseline} patch groups (SSM quota: "
                f"{max_groups_per_baseline} patch groups per baseline); {group!r} is not registered for "
                f"{operating_system} and uses the account's default baseline for it"
            )
            changes.append(Change("registration", "blocked", name, None, before, after, reason))
            found.append(Problem("registration", name, reason))
            continue
        load[baseline_id] += 1
        changes.append(Change("registration", "create" if current is None else "update", name, None, before, after))
    for group, operating_system in sorted(deleted):
        before = {
            "patch_group": group,
            "operating_system": operating_system,
            "baseline_id": state.ledger[(group, operating_system)],
        }
        action: Action = "delete" if blocked_reason is None else "blocked"
        changes.append(
            Change("registration", action, f"{group}/{operating_system}", None, before, None, blocked_reason)
        )
    return Plan(tuple(changes), tuple(found))
