"""Desired state: the maintenance windows, targets, tasks and baseline registrations the tags ask for.

Pure code: validated instance reports and the patch policy in, a frozen description of SSM out.
No clock, no I/O, so every rule here is unit-tested directly.

Shape of what is built, and why:
- one window per distinct window definition (schedule, timezone, duration, cutoff, offset), not one
  per patch group, because an account has 50 windows per Region;
- targets select by tag value (`tag:Patch Group` or `tag:PatchGroup`, whichever key the instances
  carry), so instances launched later are patched without another cycle; at most 50 values a
  target and 100 targets a window;
- one AWS-RunPatchBaseline task per distinct task setting and per 10 targets (a task's quota).
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from tagpatch.classes import behaviour_of
from tagpatch.policy import SERVICE_LINKED, PatchPolicy, TaskSettings, WindowSettings
from tagpatch.schedule import InvalidSchedule, parse_schedule

MANAGED_PREFIX: Final = "tagpatch-"
OWNER_INFORMATION: Final = "tagpatch"  # set on every target and task tagpatch registers
MANAGED_TAG_KEY: Final = "tagpatch:managed"
MANAGED_TAG_VALUE: Final = "true"
# SSM cannot tag a window's tasks, so a task carries the windows' mark at the end of its description:
# an operator's own task (even one named tagpatch-backup, described "tagpatch backup") never has it.
TASK_OWNER_MARK: Final = f"[{MANAGED_TAG_KEY}={MANAGED_TAG_VALUE}]"


def task_description(operation: str, reboot_option: str) -> str:
    """The description tagpatch gives each task it registers, ending with its owner mark."""
    return f"{OWNER_INFORMATION}: {operation} with {reboot_option} {TASK_OWNER_MARK}"


MAX_WINDOWS_PER_ACCOUNT: Final = 50
MAX_TARGETS_PER_WINDOW: Final = 100
MAX_VALUES_PER_TARGET: Final = 50
MAX_TARGETS_PER_TASK: Final = 10
MAX_TASKS_PER_WINDOW: Final = 20
MAX_NAME_LENGTH: Final = 128

TAG_KEY_SLUG: Final = {"Patch Group": "patch-group", "PatchGroup": "patchgroup"}


INSTANCE_IDS_KEY: Final = "InstanceIds"  # the target key that selects instances by id
# Operating systems AWS-RunPatchBaselineWithHooks does not support (Patch Manager user guide).
HOOKS_UNSUPPORTED: Final = frozenset({"MACOS"})


@dataclass(frozen=True)
class DesiredTarget:
    """Instances whose patch group is one of `values` AND whose window tag is one of `window_values`.

    Both conditions: selecting by patch group alone would patch a group's instances in every window
    any of its members asked for. A target with `instance_ids` selects those instances instead (a
    patch group with a held instance, see `Hold`); `values` and `window_values` are then empty.
    """

    name: str
    tag_key: str  # "Patch Group" or "PatchGroup"
    values: tuple[str, ...]  # sorted patch group names, at most 50
    window_key: str = "Maintenance Window"  # or "MaintenanceWindow"
    window_values: tuple[str, ...] = ()  # the window tag values that resolve to this window
    instance_ids: tuple[str, ...] = ()  # sorted, at most 50: selects these instances, not tags

    def ssm_targets(self) -> list[dict[str, Any]]:
        if self.instance_ids:
            return [{"Key": INSTANCE_IDS_KEY, "Values": list(self.instance_ids)}]
        return [
            {"Key": f"tag:{self.tag_key}", "Values": list(self.values)},
            {"Key": f"tag:{self.window_key}", "Values": list(self.window_values)},
        ]


@dataclass(frozen=True)
class DesiredTask:
    name: str
    settings: TaskSettings
    target_names: tuple[str, ...]  # at most 10


@dataclass(frozen=True)
class DesiredWindow:
    name: str
    settings: WindowSettings
    description: str
    targets: tuple[DesiredTarget, ...]
    tasks: tuple[DesiredTask, ...]
    instance_count: int


@dataclass(frozen=True)
class Registration:
    """A patch group registered with one baseline for one operating system."""

    patch_group: str
    operating_system: str
    baseline: str  # policy form: "aws-default", "custom:<name>" or a baseline id


@dataclass(frozen=True)
class Problem:
    """Something the tags ask for that cannot be built; reported, never fatal."""

    kind: str
    name: str
    reason: str


@dataclass(frozen=True)
class Hold:
    """A patch group whose instances in one window route are selected by id, so some can be held back.

    SSM's targets select by tag and cannot exclude an instance, so the group leaves the route's tag
    targets: its other instances are selected by id for the route's Install task (`installed`), and
    the held ones by id for a Scan task with the same settings (`held`, task `scan_task`).
    """

    window: str
    task: str  # the route's Install task settings, as a task name prefix (e.g. tagpatch-install-reboot)
    scan_task: str
    tag_key: str
    patch_group: str
    held: tuple[str, ...]  # instance ids
    installed: tuple[str, ...]  # instance ids


@dataclass(frozen=True)
class DesiredState:
    windows: tuple[DesiredWindow, ...]
    registrations: tuple[Registration, ...]
    problems: tuple[Problem, ...] = ()
    holds: tuple[Hold, ...] = ()


@dataclass
class _Route:
    """The instances that reach one window with one task setting, by one pair of tag keys."""

    # patch group -> the window tag values its instances in this route carry. Only this route's
    # values: a value that asks for another task setting in the same window must not be selected by
    # this route's targets.
    window_values: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    # patch group -> instance id -> held (a live exception with hold: true covers it)
    members: dict[str, dict[str, bool]] = field(default_factory=lambda: defaultdict(dict))
    # patch groups held by a closed rollout gate: these must never install, whatever the quotas allow
    gated: set[str] = field(default_factory=set)

    @property
    def groups(self) -> set[str]:
        return set(self.window_values)

    def held_groups(self) -> list[str]:
        return sorted(group for group, members in self.members.items() if any(members.values()))

    def wholly_gated(self, group: str) -> bool:
        """Every instance of the group here is held by its wave's gate: the group can be held by tag."""
        return group in self.gated and all(self.members[group].values())


@dataclass
class _WindowDemand:
    settings: WindowSettings
    policy_name: str | None = None
    instance_count: int = 0
    # task settings -> (patch group key, window key) -> route
    routes: dict[TaskSettings, dict[tuple[str, str], _Route]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(_Route))
    )


def _slug(text: str) -> str:
    replaced = text.replace("?", "x").replace("*", "all").replace("#", "n").replace("/", "every")
    return re.sub(r"[^A-Za-z0-9]+", "-", replaced).strip("-").lower()


def _short_hash(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:6]


def window_name(settings: WindowSettings, policy_name: str | None) -> str:
    """Readable, stable and valid (`^[a-zA-Z0-9_.-]{3,128}$`).

    A policy window keeps its policy name; a schedule from a tag is spelled out, with a hash of the
    whole definition so two definitions never share a name, e.g.
    `tagpatch-cron-0-2-x-all-sun-all-utc-3h-c1-5f2a1b`.
    """
    if policy_name is not None:
        return f"{MANAGED_PREFIX}{policy_name}"[:MAX_NAME_LENGTH]
    offset = f"-o{settings.offset_days}" if settings.offset_days else ""
    length = f"{settings.duration_hours}h-c{settings.cutoff_hours}{offset}"
    readable = f"{_slug(settings.schedule)}-{re.sub(r'[^A-Za-z0-9]+', '-', settings.timezone).lower()}-{length}"
    digest = _short_hash(
        settings.schedule,
        settings.timezone,
        settings.duration_hours,
        settings.cutoff_hours,
        settings.offset_days,
    )
    room = MAX_NAME_LENGTH - len(MANAGED_PREFIX) - len(digest) - 1
    return f"{MANAGED_PREFIX}{readable[:room].rstrip('-')}-{digest}"


def task_slug(settings: TaskSettings) -> str:
    reboot = "reboot" if settings.reboot_option == "RebootIfNeeded" else "noreboot"
    # A backup task is an AUTOMATION task, and SSM cannot update a task's type: its own name makes the
    # switch a delete and a create.
    backup = f"-backup-{settings.backup}" if settings.backup else ""
    return f"{settings.operation.lower()}-{reboot}{backup}"


def task_slugs(all_settings: Iterable[TaskSettings]) -> dict[TaskSettings, str]:
    """Names for the task settings of one window.

    Usually a window has one task setting and its name stays the same when a setting changes, so
    the change is an update, not a delete and create. Only when two settings in one window would
    share a name does each get a hash of all its settings.
    """
    settings_list = list(all_settings)
    plain = Counter(task_slug(settings) for settings in settings_list)
    slugs = {}
    for settings in settings_list:
        slug = task_slug(settings)
        if plain[slug] > 1:
            slug += "-" + _short_hash(
                settings.operation,
                settings.reboot_option,
                settings.max_concurrency,
                settings.max_errors,
                settings.priority,
                settings.service_role,
                settings.hooks,
                # Only when asked for: the names of tasks without a backup stay as they were.
                *((settings.backup,) if settings.backup else ()),
            )
        slugs[settings] = slug
    return slugs


def _resolve_window_tag(window_tag: str, policy: PatchPolicy) -> tuple[WindowSettings, TaskSettings] | Problem:
    """The window and task a `Maintenance Window` tag value asks for, or why SSM would reject it."""
    named = policy.windows.get(window_tag)
    if named is not None:
        return named.window, named.task
    settings = policy.window_for_tag(window_tag)
    try:
        # The normalised spelling, so `cron(0 2 ? * sun *)` and `cron(0 2 ? * SUN *)` share a window.
        normalised = parse_schedule(settings.schedule).expression
    except InvalidSchedule as error:  # tag validation should have caught it; never fatal here
        return Problem("window", window_tag, f"SSM would reject this schedule: {error}")
    return replace(settings, schedule=normalised), policy.default_task


def build_desired_state(instances: Iterable[Mapping[str, Any]], policy: PatchPolicy) -> DesiredState:
    """From instance report lines (instances.jsonl) to the SSM setup they ask for."""
    problems: list[Problem] = []
    demands: dict[WindowSettings, _WindowDemand] = {}
    policy_window_by_settings = {named.window: name for name, named in sorted(policy.windows.items())}
    registrations: set[Registration] = set()
    invalid_windows: set[str] = set()
    resolved: dict[str, tuple[WindowSettings, TaskSettings] | Problem] = {}

    rejected: list[Mapping[str, Any]] = []

    for line in instances:
        # The whole fleet, whatever the cycle's patch_groups scope: a scoped run must never
        # read the other groups' absence as a reason to delete their windows.
        # An excepted instance keeps its windows (its tag class decides): an exception reports it
        # differently, it does not take its window away from the other instances (docs/decisions.md).
        behaviour = behaviour_of(line.get("tag_class", line.get("class")))
        if behaviour is None or not behaviour.schedulable:
            # A node SSM knows (it has a ping status) is selected by tags whatever tagpatch thinks of them.
            if (
                behaviour is not None
                and behaviour.selected_by_tags_as_written
                and line.get("targeting_tags")
                and line.get("ping_status")
            ):
                rejected.append(line)
            continue
        group, key, window_tag = (
            line.get("patch_group"),
            line.get("patch_group_key"),
            line.get("maintenance_window"),
        )
        if not group or not key or not window_tag:
            continue
        # A fleet has a handful of distinct window tags: resolve each once, not once per instance.
        if window_tag not in resolved:
            resolved[window_tag] = _resolve_window_tag(window_tag, policy)
        found = resolved[window_tag]
        if isinstance(found, Problem):
            if window_tag not in invalid_windows:
                invalid_windows.add(window_tag)
                problems.append(found)
            continue
        settings, window_task = found
        # A patch group's own backup makes its task differ from the window's: a task, and targets, of its own.
        task = policy.task_for_group(window_task, group)
        demand = demands.get(settings)
        if demand is None:
            demand = demands[settings] = _WindowDemand(settings, policy_window_by_settings.get(settings))
        demand.instance_count += 1
        window_key = line.get("window_key") or "Maintenance Window"
        route = demand.routes[task][(key, window_key)]
        route.window_values[group].add(window_tag)
        route.members[group][str(line.get("instance_id"))] = bool(line.get("held"))
        gate = line.get("gate")
        if line.get("held") and isinstance(gate, Mapping) and not gate.get("open"):
            route.gated.add(group)
        operating_system = line.get("os")
        if task.hooks and task.operation == "Install" and operating_system in HOOKS_UNSUPPORTED:
            problems.append(
                Problem(
                    "hooks",
                    str(line.get("instance_id")),
                    f"{line.get('name') or line.get('instance_id')} runs {operating_system}, which "
                    "AWS-RunPatchBaselineWithHooks does not support, so the hooked patch task of its window fails "
                    "on it; give it a window whose task has no hooks",
                )
            )
        if operating_system:
            registrations.add(Registration(group, operating_system, policy.baseline_for(operating_system).describe()))
        else:
            problems.append(
                Problem(
                    "registration",
                    group,
                    f"instance {line.get('instance_id')} has no known operating system, so patch group "
                    f"{group!r} cannot be registered with a baseline for it",
                )
            )

    holds: list[Hold] = []
    windows = [_build_window(demand, problems, holds) for demand in demands.values()]
    windows.sort(key=lambda window: window.name)
    problems.extend(_rejected_but_selected(rejected, windows))
    return DesiredState(
        windows=tuple(windows),
        registrations=tuple(sorted(registrations, key=lambda r: (r.patch_group, r.operating_system))),
        problems=tuple(problems),
        holds=tuple(sorted(holds, key=lambda hold: (hold.window, hold.task, hold.tag_key, hold.patch_group))),
    )


# A held group: (task settings, (patch group key, window key), patch group).
_HeldGroup = tuple[TaskSettings, tuple[str, str], str]


def _quota_text() -> str:
    return (
        f"{MAX_TARGETS_PER_WINDOW} targets and {MAX_TASKS_PER_WINDOW} tasks per window, "
        f"{MAX_TARGETS_PER_TASK} targets per task, {MAX_VALUES_PER_TARGET} ids per target"
    )


def _build_window(demand: _WindowDemand, problems: list[Problem], holds: list[Hold] | None = None) -> DesiredWindow:
    """The window's targets and tasks, with every hold that fits SSM's quotas.

    A hold never costs the other instances their patching: the window is first laid out with no
    hold, then each held group (in a stable order) is taken out of the tag targets only if the
    layout with it fits every quota (no target or task left out). In a window already over a quota
    no id hold is applied, so a hold can never shift the cut onto other instances. An exception's
    hold that does not fit keeps its group tag-based (its held instances are then patched) and is
    reported as a `hold` problem.

    A rollout wave held by its gate fails safe instead: where its group does not fit by id, the
    group's tag targets move to the Scan task (the whole group is held, so no id is needed); where
    that does not fit either, the route's Install task is not registered at all (its targets are
    scanned) and the `hold` problem names every patch group that is therefore not patched.
    """
    name = window_name(demand.settings, demand.policy_name)
    slugs = task_slugs(demand.routes)
    targets, tasks, layout_problems = _layout(demand, name, slugs, frozenset())
    candidates: list[_HeldGroup] = [
        (task_settings, keys, group)
        for task_settings in sorted(demand.routes, key=slugs.__getitem__)
        # Only an Install task patches; a Scan route already holds every instance back.
        if task_settings.operation == "Install"
        for keys, route in sorted(demand.routes[task_settings].items())
        for group in route.held_groups()
    ]
    accepted: frozenset[_HeldGroup] = frozenset()
    by_tag: frozenset[_HeldGroup] = frozenset()
    refused: list[_HeldGroup] = []  # exception holds that do not fit: patched, and said so
    unholdable: list[_HeldGroup] = []  # gated groups that fit neither by id nor by tag
    for candidate in candidates:
        trial_targets, trial_tasks, trial_problems = _layout(demand, name, slugs, accepted | {candidate}, by_tag)
        if not trial_problems:
            accepted, targets, tasks, layout_problems = accepted | {candidate}, trial_targets, trial_tasks, []
            continue
        if not demand.routes[candidate[0]][candidate[1]].wholly_gated(candidate[2]):
            refused.append(candidate)
            continue
        trial_targets, trial_tasks, trial_problems = _layout(demand, name, slugs, accepted, by_tag | {candidate})
        if not trial_problems:
            by_tag, targets, tasks, layout_problems = by_tag | {candidate}, trial_targets, trial_tasks, []
            continue
        unholdable.append(candidate)
    scan_only = frozenset(candidate[0] for candidate in unholdable)
    if scan_only:
        # Every target of these Install tasks goes to their Scan task: as many targets and no more tasks
        # than the layout with no hold, so this never pushes the window over a quota it was within.
        accepted = frozenset(held for held in accepted if held[0] not in scan_only)
        by_tag = frozenset(held for held in by_tag if held[0] not in scan_only)
        targets, tasks, layout_problems = _layout(demand, name, slugs, accepted, by_tag, scan_only)
        problems.extend(
            _unregistered_install(demand, name, slugs, task_settings)
            for task_settings in sorted({candidate[0] for candidate in unholdable}, key=slugs.__getitem__)
        )
    for task_settings, keys, group in refused:
        if task_settings in scan_only:
            continue  # its Install task is not registered: the held instances are scanned after all
        members = demand.routes[task_settings][keys].members[group]
        held, _ = _held_and_installed(members)
        problems.append(
            Problem(
                "hold",
                f"{name}/{group}",
                f"patch group {group!r} ({keys[0]}) in window {name}: its {len(held)} held instance(s) "
                f"({', '.join(held[:5])}{' ...' if len(held) > 5 else ''}) are NOT held back, because selecting "
                f"the group's {len(members)} instances by id would need more targets or tasks than SSM allows "
                f"({_quota_text()}); the group stays selected by tag and is patched. Narrow the exception, or "
                "move the held instances to a patch group of their own",
            )
        )
    problems.extend(layout_problems)
    if holds is not None:
        scanned = [
            (task_settings, keys, group)
            for task_settings in scan_only
            for keys, route in demand.routes[task_settings].items()
            for group in route.held_groups()
        ]
        for task_settings, keys, group in sorted(
            [*accepted, *by_tag, *scanned], key=lambda held: (slugs[held[0]], held[1], held[2])
        ):
            held, installed = _held_and_installed(demand.routes[task_settings][keys].members[group])
            holds.append(
                Hold(
                    window=name,
                    task=f"{MANAGED_PREFIX}{slugs[task_settings]}",
                    scan_task=f"{MANAGED_PREFIX}{slugs[task_settings]}-held",
                    tag_key=keys[0],
                    patch_group=group,
                    held=held,
                    installed=() if task_settings in scan_only else installed,
                )
            )
    description = f"tagpatch: {demand.settings.schedule} {demand.settings.timezone}"[:128]
    return DesiredWindow(name, demand.settings, description, tuple(targets), tuple(tasks), demand.instance_count)


def _unregistered_install(
    demand: _WindowDemand, name: str, slugs: Mapping[TaskSettings, str], task_settings: TaskSettings
) -> Problem:
    """The shortfall of an Install task left unregistered so that a held wave is not patched."""
    routes = demand.routes[task_settings].values()
    gated = sorted({group for route in routes for group in route.gated})
    others = sorted({group for route in routes for group in route.groups} - set(gated))
    task = f"{MANAGED_PREFIX}{slugs[task_settings]}"
    not_patched = f"; not patched either: patch group(s) {', '.join(others)}" if others else ""
    return Problem(
        "hold",
        f"{name}/{task}",
        f"window {name}: the Install task {task} is NOT registered and its targets are only scanned (task "
        f"{task}-held), because the rollout gate's hold of patch group(s) {', '.join(gated)} fits SSM's quotas "
        f"neither by id nor by tag ({_quota_text()}){not_patched}. Split the wave into smaller patch groups, or "
        "give its patch groups a window of their own",
    )


def _held_and_installed(members: Mapping[str, bool]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A held group's instance ids, sorted: those held back, and the others."""
    return (
        tuple(sorted(i for i, is_held in members.items() if is_held)),
        tuple(sorted(i for i, is_held in members.items() if not is_held)),
    )


def _layout(
    demand: _WindowDemand,
    name: str,
    slugs: Mapping[TaskSettings, str],
    held_groups: frozenset[_HeldGroup],
    held_by_tag: frozenset[_HeldGroup] = frozenset(),
    scan_only: frozenset[TaskSettings] = frozenset(),
) -> tuple[list[DesiredTarget], list[DesiredTask], list[Problem]]:
    """Targets and tasks for the window, with `held_groups` selected by id, `held_by_tag` selected by tag
    for the Scan task, and every target of the `scan_only` Install tasks given to their Scan task; and
    the quota problems."""
    targets: list[DesiredTarget] = []
    tasks: list[DesiredTask] = []
    problems: list[Problem] = []
    for task_settings in sorted(demand.routes, key=slugs.__getitem__):
        task_targets: list[DesiredTarget] = []
        held_targets: list[DesiredTarget] = []
        for (tag_key, window_key), route in sorted(demand.routes[task_settings].items()):
            key_slug = TAG_KEY_SLUG.get(tag_key, _slug(tag_key))
            if window_key != "Maintenance Window":
                key_slug += "-" + _slug(window_key)
            held_here = {
                group
                for settings, keys, group in held_groups
                if (settings, keys) == (task_settings, (tag_key, window_key))
            }
            tag_held_here = {
                group
                for settings, keys, group in held_by_tag
                if (settings, keys) == (task_settings, (tag_key, window_key))
            }
            by_tag = [group for group in route.window_values if group not in held_here | tag_held_here]
            prefix = f"{MANAGED_PREFIX}{slugs[task_settings]}-{key_slug}"
            task_targets.extend(_tag_targets(prefix, by_tag, route, tag_key, window_key))
            # A group its wave's gate holds whole: selected by tag for the Scan task, no ids needed.
            held_targets.extend(_tag_targets(f"{prefix}-held-tags", tag_held_here, route, tag_key, window_key))
            # A held group's instances, by id: the others for this task, the held ones for the Scan task.
            by_id = [route.members[group] for group in sorted(held_here)]
            installed = [i for found in by_id for i, is_held in found.items() if not is_held]
            held = [i for found in by_id for i, is_held in found.items() if is_held]
            for chunk, ids in enumerate(_chunks(installed), start=1):
                target_name = f"{MANAGED_PREFIX}{slugs[task_settings]}-{key_slug}-ids-{chunk:02d}"
                task_targets.append(DesiredTarget(target_name, tag_key, (), window_key, (), ids))
            for chunk, ids in enumerate(_chunks(held), start=1):
                target_name = f"{MANAGED_PREFIX}{slugs[task_settings]}-{key_slug}-held-{chunk:02d}"
                held_targets.append(DesiredTarget(target_name, tag_key, (), window_key, (), ids))
        if task_settings in scan_only:
            task_targets, held_targets = [], task_targets + held_targets
        task_names = (f"{MANAGED_PREFIX}{slugs[task_settings]}", f"{MANAGED_PREFIX}{slugs[task_settings]}-held")
        # The held instances are scanned, never installed on or rebooted: Operation Scan, NoReboot.
        scan_settings = replace(task_settings, operation="Scan", reboot_option="NoReboot", hooks=(), backup=None)
        for settings, prefix, wanted in (
            (task_settings, task_names[0], task_targets),
            (scan_settings, task_names[1], held_targets),
        ):
            members = wanted  # cut below to what the window's quota leaves room for
            room = MAX_TARGETS_PER_WINDOW - len(targets)
            if len(members) > room:
                for target in members[room:]:
                    selects = (
                        f"patch groups not scheduled: {', '.join(target.values[:5])}"
                        f"{' ...' if len(target.values) > 5 else ''}"
                        if not target.instance_ids
                        else f"{len(target.instance_ids)} instances by id not scheduled"
                    )
                    problems.append(
                        Problem(
                            "target",
                            f"{name}/{target.name}",
                            f"window {name} would need more than {MAX_TARGETS_PER_WINDOW} targets (SSM quota: "
                            f"{MAX_TARGETS_PER_WINDOW} targets per window); {selects}",
                        )
                    )
                members = members[: max(room, 0)]
            targets.extend(members)
            for chunk, start in enumerate(range(0, len(members), MAX_TARGETS_PER_TASK), start=1):
                if len(tasks) >= MAX_TASKS_PER_WINDOW:
                    problems.append(
                        Problem(
                            "task",
                            name,
                            f"window {name} would need more than {MAX_TASKS_PER_WINDOW} tasks (SSM quota)",
                        )
                    )
                    break
                names = tuple(target.name for target in members[start : start + MAX_TARGETS_PER_TASK])
                tasks.append(DesiredTask(f"{prefix}-{chunk:02d}", settings, names))
    return targets, tasks, problems


def _tag_targets(
    prefix: str, groups: Collection[str], route: _Route, tag_key: str, window_key: str
) -> list[DesiredTarget]:
    """Targets selecting `groups` of the route by tag (patch group AND window tag value)."""
    window_values = set().union(*(route.window_values[group] for group in groups)) if groups else set()
    # Both lists are cut into chunks of 50 (a target's Values limit) and every pair of chunks
    # gets a target, so each (group, window value) pair is selected once and none is dropped.
    pairs = itertools.product(_chunks(groups), _chunks(window_values))
    return [
        DesiredTarget(f"{prefix}-{chunk:02d}", tag_key, chunk_groups, window_key, values)
        for chunk, (chunk_groups, values) in enumerate(pairs, start=1)
    ]


def _chunks(values: Iterable[str]) -> list[tuple[str, ...]]:
    ordered = sorted(values)
    return [
        tuple(ordered[start : start + MAX_VALUES_PER_TARGET]) for start in range(0, len(ordered), MAX_VALUES_PER_TARGET)
    ]


def _rejected_but_selected(lines: Iterable[Mapping[str, Any]], windows: Sequence[DesiredWindow]) -> list[Problem]:
    """Instances whose tags are rejected but that these targets still select when the window runs.

    SSM matches each target's tags as written, on either patch group key, so an instance with, say,
    "Patch Group" = web and "PatchGroup" = db is selected by any target for web or for db in the
    window its window tag names. No target can exclude it, so the report says what SSM will do.
    """
    by_keys: dict[tuple[str, str], list[tuple[DesiredWindow, DesiredTarget]]] = defaultdict(list)
    for window in windows:
        for target in window.targets:
            by_keys[(target.tag_key, target.window_key)].append((window, target))
    problems = []
    for line in lines:
        tags: Mapping[str, str] = line["targeting_tags"]
        hits: list[str] = []
        for (tag_key, window_key), candidates in sorted(by_keys.items()):
            group, window_tag = tags.get(tag_key), tags.get(window_key)
            if group is None or window_tag is None:
                continue
            for window, target in candidates:
                if group in target.values and window_tag in target.window_values:
                    tasks = [task.name for task in window.tasks if target.name in task.target_names]
                    hits.extend(f"{window.name}/{task}" for task in tasks)
        if hits:
            twice = (
                " (some through two of their targets; AWS does not say whether a task then runs twice)"
                if len(hits) > len(set(hits))
                else ""
            )
            problems.append(
                Problem(
                    "instance",
                    str(line.get("instance_id")),
                    f"{line.get('name') or line.get('instance_id')} has invalid patching tags but SSM will still run "
                    f"{', '.join(sorted(set(hits)))} on it{twice}, because those targets match its tags as written; "
                    "fix its tags (see the validation report) so that it is patched as intended",
                )
            )
    return problems


def unpassable_roles(windows: Iterable[DesiredWindow], passable_role_arn: str | None) -> tuple[Problem, ...]:
    """Tasks whose service role the stack was not deployed to pass (registering them would be denied)."""
    problems = []
    for window in windows:
        for task in window.tasks:
            role = task.settings.service_role
            if role not in (SERVICE_LINKED, passable_role_arn):
                problems.append(
                    Problem(
                        "task",
                        f"{window.name}/{task.name}",
                        f"the policy gives this task the role {role}, but the stack was deployed with "
                        f"PatchTaskServiceRoleArn={passable_role_arn or '(empty)'}; redeploy with that parameter "
                        "set to this role, or use service-linked",
                    )
                )
    return tuple(problems)


def fit_to_quota(
    windows: Iterable[DesiredWindow], available_slots: int
) -> tuple[tuple[DesiredWindow, ...], tuple[Problem, ...]]:
    """Keep what fits in the account's window quota, biggest windows first, ties by name."""
    ranked = sorted(windows, key=lambda window: (-window.instance_count, window.name))
    kept = ranked[: max(available_slots, 0)]
    problems = tuple(
        Problem(
            "window",
            window.name,
            f"not created: the account's quota of {MAX_WINDOWS_PER_ACCOUNT} maintenance windows per Region is "
            f"reached ({window.instance_count} instances on schedule {window.settings.schedule} are not scheduled); "
            "merge schedules in the tags or raise the quota",
        )
        for window in ranked[max(available_slots, 0) :]
    )
    return tuple(sorted(kept, key=lambda window: window.name)), problems
