"""Which managed nodes a maintenance window's targets and tasks select, resolved as SSM does it.

Written from the SSM API reference (`Target`, `RegisterTargetWithMaintenanceWindow`,
`RegisterTaskWithMaintenanceWindow`) and the User Guide ("Targeting multiple managed nodes",
"Register targets with a maintenance window"), never from tagpatch:

- `tag:<key>` selects nodes whose EC2 tag `<key>` equals one of the Values. Keys and values are
  compared exactly: case-sensitive, no trimming (EC2 tags are case-sensitive and SSM does no fuzzy
  matching).
- `tag-key` selects nodes that carry any of the given tag keys, whatever the value.
- `InstanceIds` selects the listed nodes.
- One window target's Targets entries are combined with AND; the Values of one entry with OR.
- Only nodes registered with SSM (managed nodes) are selected. A registered node that is stopped or
  whose agent lost its connection is still selected: its invocation is then undeliverable (Run
  Command reports Delayed or Delivery Timed Out), it is not skipped at selection time.
- A task's Targets name window targets (`WindowTargetIds`) or nodes (`InstanceIds`); the task runs on
  the union of what they select.

`resource-groups:*` keys and `RESOURCE_GROUP` targets are not modelled (the simulator has no
Resource Groups): resolving one raises `UnsupportedTarget`, so a test can never pass by ignoring it.
Resolution reads moto's backends directly and builds one tag index per call, so resolving every
window of a 100,000-node account is a dictionary lookup per tag value, not a scan per target.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from moto.ec2.models import ec2_backends
from moto.ssm.models import ssm_backends

from tagpatch_local.simulator.core import SimulatorError
from tagpatch_local.simulator.instances import simulator_state

TAG_PREFIX: Final = "tag:"
TAG_KEY: Final = "tag-key"
INSTANCE_IDS: Final = "InstanceIds"
WINDOW_TARGET_IDS: Final = "WindowTargetIds"
RESOURCE_GROUPS_PREFIX: Final = "resource-groups:"
# EC2 states in which an instance no longer exists as a node: SSM removes terminated instances from
# its managed nodes, so they are never selected even if the simulator still holds their registration.
_GONE_STATES: Final = frozenset({"shutting-down", "terminated"})


class UnsupportedTarget(SimulatorError):
    """A target the simulator cannot resolve (for example a resource group)."""


@dataclass(frozen=True)
class TargetIndex:
    """Managed nodes of one account and Region, indexed by their EC2 tags."""

    managed: frozenset[str]
    by_tag: Mapping[tuple[str, str], frozenset[str]]  # (key, value) -> node ids
    by_key: Mapping[str, frozenset[str]]  # key -> node ids carrying it

    def select(
        self, targets: Sequence[Mapping[str, Any]] | None, *, resource_type: str | None = None
    ) -> frozenset[str]:
        """The nodes one window target's Targets select (AND across entries, OR across values)."""
        if resource_type not in (None, "INSTANCE"):
            raise UnsupportedTarget(f"ResourceType {resource_type} is not modelled by the simulator")
        selected: frozenset[str] | None = None
        for entry in targets or ():
            matched = self._select_entry(str(entry.get("Key", "")), [str(v) for v in entry.get("Values") or ()])
            selected = matched if selected is None else selected & matched
            if not selected:
                return frozenset()
        return selected or frozenset()

    def _select_entry(self, key: str, values: Sequence[str]) -> frozenset[str]:
        if key.startswith(TAG_PREFIX):
            tag_key = key[len(TAG_PREFIX) :]
            return frozenset().union(*(self.by_tag.get((tag_key, value), frozenset()) for value in values))
        if key == TAG_KEY:
            return frozenset().union(*(self.by_key.get(value, frozenset()) for value in values))
        if key == INSTANCE_IDS:
            return self.managed.intersection(values)
        if key.startswith(RESOURCE_GROUPS_PREFIX):
            raise UnsupportedTarget(f"target key {key!r}: resource groups are not modelled by the simulator")
        raise UnsupportedTarget(f"target key {key!r} is not one SSM accepts for a maintenance window target")


def build_index(account_id: str, region: str) -> TargetIndex:
    """Index the managed nodes of an account and Region by tag, reading moto's EC2 tag store."""
    ec2 = ec2_backends[account_id][region]
    gone = {
        instance.id
        for reservation in ec2.reservations.values()
        for instance in reservation.instances
        if instance.state in _GONE_STATES
    }
    managed = frozenset(simulator_state(account_id, region).managed_instances) - gone
    tags_of: Mapping[str, Mapping[str, str]] = ec2.tags
    by_tag: dict[tuple[str, str], set[str]] = defaultdict(set)
    by_key: dict[str, set[str]] = defaultdict(set)
    for node in managed:
        for key, value in (tags_of.get(node) or {}).items():
            by_tag[(key, value)].add(node)
            by_key[key].add(node)
    return TargetIndex(
        managed=managed,
        by_tag={k: frozenset(v) for k, v in by_tag.items()},
        by_key={k: frozenset(v) for k, v in by_key.items()},
    )


def _window(account_id: str, region: str, window_id: str) -> Any:
    window = ssm_backends[account_id][region].windows.get(window_id)
    if window is None:
        raise KeyError(f"no maintenance window {window_id} in {account_id}/{region}")
    return window


def instances_selected_by_targets(
    account_id: str, region: str, window_id: str, *, index: TargetIndex | None = None
) -> dict[str, frozenset[str]]:
    """{window target id: the node ids it selects} for one window."""
    window = _window(account_id, region, window_id)
    index = index or build_index(account_id, region)
    return {
        target_id: index.select(target.targets, resource_type=target.resource_type)
        for target_id, target in window.targets.items()
    }


def _task_selection(
    task: Any, by_target: Mapping[str, frozenset[str]], index: TargetIndex
) -> dict[str, frozenset[str]]:
    """{window target id or "InstanceIds": nodes} that one task's Targets reach."""
    reached: dict[str, frozenset[str]] = {}
    for entry in task.targets or ():
        key, values = str(entry.get("Key", "")), [str(v) for v in entry.get("Values") or ()]
        if key == WINDOW_TARGET_IDS:
            for target_id in values:
                if target_id not in by_target:
                    # SSM refuses to register a task naming an unknown target, and a target in use
                    # can only be removed with Safe=false; a dangling id selects nothing.
                    continue
                reached[target_id] = by_target[target_id]
        elif key == INSTANCE_IDS:
            reached[INSTANCE_IDS] = reached.get(INSTANCE_IDS, frozenset()) | index.managed.intersection(values)
        else:
            raise UnsupportedTarget(f"task {task.window_task_id}: target key {key!r} is not modelled")
    return reached


def instances_selected_by_task_targets(
    account_id: str, region: str, window_id: str, *, index: TargetIndex | None = None
) -> dict[str, dict[str, frozenset[str]]]:
    """{window task id: {window target id: nodes}}: which of a task's targets reach which nodes.

    Kept per target because the API reference says a task with several targets invokes them one
    after another; it does not say whether a node two of them select is invoked twice, so tests
    should require that it never is.
    """
    window = _window(account_id, region, window_id)
    index = index or build_index(account_id, region)
    by_target = instances_selected_by_targets(account_id, region, window_id, index=index)
    return {task_id: _task_selection(task, by_target, index) for task_id, task in window.tasks.items()}


def instances_selected_by_tasks(
    account_id: str, region: str, window_id: str, *, index: TargetIndex | None = None
) -> dict[str, frozenset[str]]:
    """{window task id: the node ids the task runs on when the window runs}."""
    per_target = instances_selected_by_task_targets(account_id, region, window_id, index=index)
    return {task_id: frozenset().union(*reached.values()) for task_id, reached in per_target.items()}


@dataclass(frozen=True)
class TaskSelection:
    window_id: str
    window_name: str
    task_id: str
    task_name: str | None
    task_parameters: Mapping[str, Any]
    instances: frozenset[str]
    by_target: Mapping[str, frozenset[str]]


def account_task_selections(account_id: str, region: str, windows: Iterable[str] | None = None) -> list[TaskSelection]:
    """Every task of every window (or of `windows`) in the account, with the nodes it selects."""
    index = build_index(account_id, region)
    backend = ssm_backends[account_id][region]
    selections: list[TaskSelection] = []
    for window_id in windows if windows is not None else list(backend.windows):
        window = _window(account_id, region, window_id)
        per_target = instances_selected_by_task_targets(account_id, region, window_id, index=index)
        for task_id, reached in per_target.items():
            task = window.tasks[task_id]
            invocation = task.task_invocation_parameters or {}
            parameters = (invocation.get("RunCommand") or {}).get("Parameters") or task.task_parameters or {}
            selections.append(
                TaskSelection(
                    window_id=window_id,
                    window_name=window.name,
                    task_id=task_id,
                    task_name=task.name,
                    task_parameters=parameters,
                    instances=frozenset().union(*reached.values()),
                    by_target=reached,
                )
            )
    return selections


def tasks_selecting_each_instance(account_id: str, region: str) -> dict[str, list[TaskSelection]]:
    """{node id: the tasks, across the account, that select it}; nodes no task selects are absent."""
    found: dict[str, list[TaskSelection]] = defaultdict(list)
    for selection in account_task_selections(account_id, region):
        for node in selection.instances:
            found[node].append(selection)
    return dict(found)
