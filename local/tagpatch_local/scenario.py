"""Scenarios: several cycles in one simulated account, with fleet and policy edits between them.

    fleet: ../fleets/demo.yaml          # or inline `instances:` / `generate:` as in a fleet file
    cycles:
      - name: first
      - name: rerun                     # nothing changed: expect zero writes
      - name: move-web-to-tuesday
        edits:
          - retag: {select: {"Patch Group": web-prod}, set: {"Maintenance Window": tue-2330}}
          - untag: {select: {Name: web-3}, keys: ["Patch Group"]}
          - add: {instances: [{tags: {...}, os: UBUNTU}]}
          - remove: {select: {Name: web-4}}
          - stop: {select: {Name: db-1}}
          - start: {select: {Name: db-1}}
          - policy: ../policy/strict-policy.yaml
        input: {"mode": "plan"}

Edits go through boto3 against the simulated account, as a person's console clicks would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from tagpatch_local import simulator
from tagpatch_local.fleet import FleetError, FleetInstance, load_fleet, parse_fleet
from tagpatch_local.runner import ACCOUNT_ID, SimulatedAccount

EDIT_KINDS: Final = ("retag", "untag", "add", "remove", "stop", "start", "policy")
CYCLE_KEYS: Final = frozenset({"name", "edits", "input"})


class ScenarioError(ValueError):
    """A malformed scenario file; the message names the cycle and edit at fault."""


@dataclass(frozen=True)
class Edit:
    kind: str
    spec: Any
    where: str


@dataclass(frozen=True)
class ScenarioCycle:
    name: str
    edits: tuple[Edit, ...] = ()
    execution_input: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    fleet: tuple[FleetInstance, ...]
    cycles: tuple[ScenarioCycle, ...]
    base: Path


def load_scenario(path: Path) -> Scenario:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ScenarioError(f"{path}: cannot read the scenario: {error}") from error
    return parse_scenario(document, path)


def parse_scenario(document: Any, path: Path) -> Scenario:
    if not isinstance(document, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping with `fleet` and `cycles`")
    unknown = set(document) - {"fleet", "instances", "generate", "cycles"}
    if unknown:
        raise ScenarioError(f"{path}: unknown key(s) {sorted(unknown)}; expected fleet, instances, generate, cycles")
    base = path.parent
    if "fleet" in document:
        fleet = load_fleet(base / str(document["fleet"]))
    else:
        fleet = parse_fleet({k: v for k, v in document.items() if k in ("instances", "generate")}, str(path))
    raw_cycles = document.get("cycles")
    if not isinstance(raw_cycles, list) or not raw_cycles:
        raise ScenarioError(f"{path}: cycles must be a non-empty list")
    cycles = []
    for index, raw in enumerate(raw_cycles):
        where = f"{path}: cycles[{index}]"
        if not isinstance(raw, dict) or set(raw) - CYCLE_KEYS:
            raise ScenarioError(f"{where}: a cycle is a mapping with keys {sorted(CYCLE_KEYS)}")
        name = str(raw.get("name", f"cycle-{index + 1}"))
        edits = []
        for edit_index, edit in enumerate(raw.get("edits") or []):
            edit_where = f"{where}.edits[{edit_index}]"
            if not isinstance(edit, dict) or len(edit) != 1 or next(iter(edit)) not in EDIT_KINDS:
                raise ScenarioError(f"{edit_where}: an edit is one of {', '.join(EDIT_KINDS)} (got {edit!r})")
            ((kind, spec),) = edit.items()
            edits.append(Edit(kind, spec, edit_where))
        execution_input = raw.get("input") or {}
        if not isinstance(execution_input, dict):
            raise ScenarioError(f"{where}.input: must be a mapping (the execution input)")
        cycles.append(ScenarioCycle(name, tuple(edits), execution_input))
    return Scenario(tuple(fleet), tuple(cycles), base)


def _selected(account: SimulatedAccount, edit: Edit) -> list[str]:
    spec = edit.spec if isinstance(edit.spec, dict) else {}
    select = spec.get("select")
    if not isinstance(select, dict) or not select:
        raise ScenarioError(f"{edit.where}: `select` must map tag keys to values, e.g. {{Name: web-1}}")
    filters = [{"Name": f"tag:{key}", "Values": [str(value)]} for key, value in select.items()]
    filters.append({"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]})
    ids = [
        instance["InstanceId"]
        for page in account.client("ec2").get_paginator("describe_instances").paginate(Filters=filters)
        for reservation in page["Reservations"]
        for instance in reservation["Instances"]
    ]
    if not ids:
        raise ScenarioError(f"{edit.where}: no instance matches {select}")
    return ids


def apply_edit(account: SimulatedAccount, edit: Edit, base: Path) -> str:
    """Apply one edit; returns a one-line description for the console."""
    ec2 = account.client("ec2")
    if edit.kind == "policy":
        account.use_policy((base / str(edit.spec)).resolve())
        return f"policy is now {edit.spec}"
    if edit.kind == "add":
        try:
            added = parse_fleet(edit.spec, edit.where)
        except FleetError as error:
            raise ScenarioError(str(error)) from error
        return f"added {len(account.seed(added))} instance(s)"
    ids = _selected(account, edit)
    if edit.kind == "retag":
        tags = edit.spec.get("set") or {}
        ec2.create_tags(Resources=ids, Tags=[{"Key": str(k), "Value": str(v)} for k, v in tags.items()])
        return f"retagged {len(ids)} instance(s): {tags}"
    if edit.kind == "untag":
        keys = edit.spec.get("keys") or []
        ec2.delete_tags(Resources=ids, Tags=[{"Key": str(key)} for key in keys])
        return f"removed tag(s) {keys} from {len(ids)} instance(s)"
    if edit.kind == "remove":
        ec2.terminate_instances(InstanceIds=ids)
        for instance_id in ids:  # SSM forgets a terminated node
            if instance_id in simulator.managed_instances(ACCOUNT_ID, account.region):
                simulator.deregister_managed_instance(ACCOUNT_ID, account.region, instance_id)
        return f"terminated {len(ids)} instance(s)"
    if edit.kind == "stop":
        ec2.stop_instances(InstanceIds=ids)
        _set_ping(account, ids, "ConnectionLost")
        return f"stopped {len(ids)} instance(s)"
    ec2.start_instances(InstanceIds=ids)
    _set_ping(account, ids, "Online")
    return f"started {len(ids)} instance(s)"


def _set_ping(account: SimulatedAccount, ids: Sequence[str], status: simulator.PingStatus) -> None:
    managed = simulator.managed_instances(ACCOUNT_ID, account.region)
    for instance_id in ids:
        if instance_id in managed:
            simulator.set_ping_status(ACCOUNT_ID, account.region, instance_id, status)
