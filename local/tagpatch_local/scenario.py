"""Scenarios: several cycles in one simulated account, with fleet and policy edits between them.

    fleet: ../fleets/demo.yaml          # or inline `instances:` / `generate:` as in a fleet file
    start: 2026-11-27T12:00:00Z         # the simulated clock at the first cycle (default: now)
    cycles:
      - name: first
      - name: rerun                     # nothing changed: expect zero writes
      - name: after-the-weekend
        advance: 3d                     # 90m, 36h, 8d: windows that fall due run, in time order
        edits:
          - patch: {select: {Name: db-1}, set: {result: failed, missing: 4}}
          - retag: {select: {"Patch Group": web-prod}, set: {"Maintenance Window": tue-2330}}
          - untag: {select: {Name: web-3}, keys: ["Patch Group"]}
          - add: {instances: [{tags: {...}, os: UBUNTU}]}
          - remove: {select: {Name: web-4}}
          - stop: {select: {Name: db-1}}
          - start: {select: {Name: db-1}}
          - policy: ../policy/strict-policy.yaml
          - exceptions: exceptions/vendor.yaml  # the patch exceptions file from here on
          - document: {name: app-health, commands: ["curl -fsS http://localhost/health"]}
        input: {"mode": "plan"}
    config_recorder: true               # AWS Config records instances and the stack's Config rules run

The whole file is checked when it is loaded, before any cycle runs: every cycle's input, every
edit's shape, every policy it names, and that each `select` still matches an instance at that point
of the scenario (the edits are played over the fleet's tags without AWS). A mistake in cycle 5 is
reported before cycle 1 starts.

Edits go through boto3 against the simulated account, as a person's console clicks would. A cycle's
`advance` moves the simulated clock before its edits; every maintenance window run that falls due
meanwhile runs, and the cycle's evaluation time is the clock's time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from tagpatch.cycle import check_sane_time
from tagpatch.errors import InvalidCycleInput, InvalidPatchExceptions
from tagpatch.exceptions import parse_exceptions, read_exceptions_file
from tagpatch_local.documents import DocPath, Document, InputError, load_document
from tagpatch_local.fleet import (
    FleetInstance,
    MemberAccount,
    load_fleet_file,
    parse_fleet_file_in,
    parse_fleet_in,
    parse_patch_in,
    parse_tags_in,
)
from tagpatch_local.preflight import check_execution_input, check_policy

if TYPE_CHECKING:
    from tagpatch_local.runner import SimulatedAccount
    from tagpatch_local.simulator import PingStatus

EDIT_KINDS: Final = ("retag", "untag", "add", "remove", "stop", "start", "policy", "patch", "exceptions", "document")
# The keys each edit that selects instances takes.
SELECTING_EDIT_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    "retag": ("select", "set"),
    "untag": ("select", "keys"),
    "remove": ("select",),
    "stop": ("select",),
    "start": ("select",),
    "patch": ("select", "set"),
}
CYCLE_KEYS: Final = ("name", "advance", "edits", "input")
TOP_KEYS: Final = ("fleet", "instances", "generate", "accounts", "start", "cycles", "config_recorder")
# How far a cycle moves the clock: a whole number of minutes, hours or days.
ADVANCE: Final = re.compile(r"^([1-9][0-9]{0,5})([mhd])$")
_UNITS: Final = {"m": "minutes", "h": "hours", "d": "days"}
MAX_ADVANCE: Final = timedelta(days=400)
# A cycle's name becomes the folder of its results: no separators, no "..".
CYCLE_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ScenarioError(InputError):
    """A malformed scenario file; the message names the cycle and edit at fault."""


@dataclass(frozen=True)
class Edit:
    kind: str
    where: str
    select: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)  # retag: the tags to set
    keys: tuple[str, ...] = ()  # untag: the tag keys to remove
    instances: tuple[FleetInstance, ...] = ()  # add
    policy: Path | None = None  # policy: the file, resolved
    policy_label: str = ""  # policy: as the scenario wrote it
    warnings: tuple[str, ...] = ()  # policy: the defaults it relies on
    patch: Mapping[str, Any] = field(default_factory=dict)  # patch: the fields of the `patch:` block to set
    exceptions: Path | None = None  # exceptions: the patch exceptions file, resolved
    document: str = ""  # document: the name of the Command document the operator creates
    commands: tuple[str, ...] = ()  # document: the shell commands it runs


@dataclass(frozen=True)
class ScenarioCycle:
    name: str
    edits: tuple[Edit, ...] = ()
    execution_input: Mapping[str, Any] = field(default_factory=dict)
    advance: timedelta | None = None  # moves the simulated clock before the edits


@dataclass(frozen=True)
class Scenario:
    fleet: tuple[FleetInstance, ...]
    cycles: tuple[ScenarioCycle, ...]
    base: Path
    start: datetime | None = None  # None: the clock starts at the current time
    config_recorder: bool = False  # AWS Config records EC2 instances and the stack's Config rules evaluate
    accounts: tuple[MemberAccount, ...] = ()  # the organization's member accounts (a fleet's `accounts:`)


def parse_advance(value: object, where: str) -> timedelta:
    """`90m`, `36h`, `8d` -> a timedelta; anything else is refused with an example."""
    match = ADVANCE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ScenarioError(f"{where}: advance must be a whole number of m, h or d, e.g. 90m, 36h, 8d (got {value!r})")
    delta = timedelta(**{_UNITS[match[2]]: int(match[1])})
    if delta > MAX_ADVANCE:
        raise ScenarioError(f"{where}: advance {value} is more than {MAX_ADVANCE.days} days; split it over cycles")
    return delta


def parse_start(value: object, where: str) -> datetime:
    """An ISO 8601 UTC time (YAML may already have read it as a datetime)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as error:
            raise ScenarioError(f"{where}: {value!r} is not an ISO 8601 time, e.g. 2026-11-29T01:00:00Z") from error
    else:
        raise ScenarioError(f"{where}: must be an ISO 8601 UTC time, e.g. 2026-11-29T01:00:00Z (got {value!r})")
    if moment.tzinfo is None or moment.utcoffset() != timedelta(0):
        raise ScenarioError(f"{where}: {value!s} must be in UTC, e.g. 2026-11-29T01:00:00Z")
    try:
        check_sane_time(moment, f"{value!s}")
    except InvalidCycleInput as error:
        raise ScenarioError(f"{where}: {error}") from error
    return moment.astimezone(UTC)


def load_scenario(path: Path) -> Scenario:
    return parse_scenario(load_document(path, "scenario", ScenarioError), path)


class _Reader:
    """Walks the scenario document; every error names the place and its line."""

    def __init__(self, document: Document) -> None:
        self.document = document
        self.instances = 0  # the fleet's and every `add` so far: all share one cap

    def fail(self, path: DocPath, message: str) -> ScenarioError:
        return ScenarioError(f"{self.document.where(path)}: {message}")

    def mapping(self, value: object, path: DocPath, allowed: Sequence[str], example: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping, e.g. {example} (got {_shown(value)})")
        for key in value:
            if key not in allowed:
                raise self.fail((*path, str(key)), f"unknown key {key!r}; expected {', '.join(allowed)}")
        return value


def _shown(value: object) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"[:80]


def parse_scenario(document: Document, path: Path) -> Scenario:
    reader = _Reader(document)
    top = reader.mapping(document.value, (), TOP_KEYS, "{fleet: fleet.yaml, cycles: [...]}")
    base = path.parent
    if "fleet" in top:
        if "instances" in top or "generate" in top or "accounts" in top:
            raise reader.fail(("fleet",), "give either `fleet` (a file) or `instances`/`generate`/`accounts`, not both")
        if not isinstance(top["fleet"], str):
            raise reader.fail(("fleet",), f"must be the path of a fleet file (got {_shown(top['fleet'])})")
        fleet_file = load_fleet_file(base / top["fleet"])
    elif "instances" not in top and "generate" not in top and "accounts" not in top:
        raise reader.fail((), "a scenario needs `fleet` (a fleet file) or inline `instances`/`generate`/`accounts`")
    else:
        fleet_keys = {key: value for key, value in top.items() if key not in ("cycles", "start", "config_recorder")}
        fleet_file = parse_fleet_file_in(Document(document.source, fleet_keys, document.lines), ())
    fleet = fleet_file.instances
    reader.instances = len(fleet)
    raw_cycles = top.get("cycles")
    if not isinstance(raw_cycles, list) or not raw_cycles:
        raise reader.fail(("cycles",), f"must be a non-empty list of cycles (got {_shown(raw_cycles)})")
    cycles = tuple(_parse_cycle(reader, raw, index, base) for index, raw in enumerate(raw_cycles))
    _check_selections(fleet, cycles)
    start = parse_start(top["start"], document.where(("start",))) if "start" in top else None
    recorder = top.get("config_recorder", False)
    if not isinstance(recorder, bool):
        raise reader.fail(("config_recorder",), f"must be true or false (got {_shown(recorder)})")
    return Scenario(tuple(fleet), cycles, base, start, recorder, fleet_file.accounts)


def _parse_cycle(reader: _Reader, raw: object, index: int, base: Path) -> ScenarioCycle:
    path: DocPath = ("cycles", index)
    cycle = reader.mapping(raw, path, CYCLE_KEYS, "{name: rerun, edits: [...], input: {mode: plan}}")
    name = cycle.get("name", f"cycle-{index + 1}")
    if not isinstance(name, str) or not CYCLE_NAME.match(name):
        raise reader.fail(
            (*path, "name"), f"must be 1-64 of A-Z a-z 0-9 _ . - (it names the results folder), got {name!r}"
        )
    raw_edits = cycle.get("edits")
    raw_edits = [] if raw_edits is None else raw_edits
    if not isinstance(raw_edits, list):
        raise reader.fail((*path, "edits"), f"must be a list of edits (got {_shown(raw_edits)})")
    edits = tuple(_parse_edit(reader, edit, (*path, "edits", i), base) for i, edit in enumerate(raw_edits))
    raw_input = cycle.get("input")
    execution_input = (
        {} if raw_input is None else check_execution_input(raw_input, reader.document.where((*path, "input")))
    )
    advance = parse_advance(cycle["advance"], reader.document.where((*path, "advance"))) if "advance" in cycle else None
    return ScenarioCycle(name, edits, execution_input, advance)


def _parse_edit(reader: _Reader, raw: object, path: DocPath, base: Path) -> Edit:
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in EDIT_KINDS:
        raise reader.fail(path, f"an edit is one mapping key of {', '.join(EDIT_KINDS)} (got {_shown(raw)})")
    ((kind, spec),) = raw.items()
    where = reader.document.where(path)
    spec_path: DocPath = (*path, kind)
    if kind == "policy":
        return _parse_policy_edit(reader, spec, spec_path, base, where)
    if kind == "exceptions":
        return _parse_exceptions_edit(reader, spec, spec_path, base, where)
    if kind == "document":
        return _parse_document_edit(reader, spec, spec_path, where)
    if kind == "add":
        reader.mapping(spec, spec_path, ("instances", "generate"), "{instances: [{tags: {...}, os: UBUNTU}]}")
        added = tuple(parse_fleet_in(reader.document, spec_path, reader.instances))
        reader.instances += len(added)
        return Edit(kind, where, instances=added)
    return _parse_selecting_edit(reader, kind, spec, spec_path, where)


def _parse_policy_edit(reader: _Reader, spec: object, spec_path: DocPath, base: Path, where: str) -> Edit:
    if not isinstance(spec, str) or not spec:
        raise reader.fail(spec_path, f"must be the path of a policy file (got {_shown(spec)})")
    policy = (base / spec).resolve()
    try:
        warnings = check_policy(policy)
    except InputError as error:
        raise ScenarioError(f"{where}: {error}") from error
    return Edit("policy", where, policy=policy, policy_label=spec, warnings=tuple(warnings))


# CreateDocument's Name pattern (SSM API Reference); a name AWS owns (AWS-, Amazon...) is refused as AWS does.
DOCUMENT_NAME: Final = re.compile(r"^[a-zA-Z0-9_\-.]{3,128}$")
RESERVED_DOCUMENT_PREFIXES: Final = ("aws", "amazon", "amzn")


def _parse_document_edit(reader: _Reader, spec: object, spec_path: DocPath, where: str) -> Edit:
    """An operator's own Command document (a patch task's hook, say): its name and shell commands."""
    body = reader.mapping(spec, spec_path, ("name", "commands"), '{name: app-health, commands: ["true"]}')
    name = body.get("name")
    if (
        not isinstance(name, str)
        or not DOCUMENT_NAME.match(name)
        or name.lower().startswith(RESERVED_DOCUMENT_PREFIXES)
    ):
        raise reader.fail(
            (*spec_path, "name"),
            f"must be 3-128 of a-z A-Z 0-9 _ - . not starting aws, amazon or amzn (got {_shown(name)})",
        )
    commands = body.get("commands")
    if not isinstance(commands, list) or not commands or not all(isinstance(c, str) and c for c in commands):
        raise reader.fail((*spec_path, "commands"), f"must be a list of shell commands (got {_shown(commands)})")
    return Edit("document", where, document=name, commands=tuple(commands))


def _parse_exceptions_edit(reader: _Reader, spec: object, spec_path: DocPath, base: Path, where: str) -> Edit:
    if not isinstance(spec, str) or not spec:
        raise reader.fail(spec_path, f"must be the path of a patch exceptions file (got {_shown(spec)})")
    exceptions = (base / spec).resolve()
    if not exceptions.exists():
        raise reader.fail(spec_path, f"{spec}: no such file")
    # Read as strictly as every other input: a bad entry is refused now. Only how far away an
    # expiry may be waits for each cycle, as it depends on that cycle's time.
    try:
        document, entries_read = read_exceptions_file(exceptions, spec)
        found = parse_exceptions(document, spec, None, entries_read)
    except InvalidPatchExceptions as error:
        raise ScenarioError(f"{where}: {error}") from error
    if found.errors:
        raise ScenarioError(f"{where}: {found.errors[0]}")
    return Edit("exceptions", where, exceptions=exceptions, policy_label=spec)


def _parse_selecting_edit(reader: _Reader, kind: str, spec: object, spec_path: DocPath, where: str) -> Edit:
    """An edit that acts on the instances its `select` tags match."""
    allowed = SELECTING_EDIT_KEYS[kind]
    body = reader.mapping(spec, spec_path, allowed, "{select: {Name: web-1}}")
    for key in allowed:
        if key not in body:
            raise reader.fail(spec_path, f"{kind} needs {' and '.join(allowed)}; {key!r} is missing")
    select = _nonempty_tags(reader, body, spec_path, "select", "{Name: web-1}")
    if kind == "patch":
        try:
            fields = parse_patch_in(reader.document, (*spec_path, "set"))
        except InputError as error:
            raise ScenarioError(str(error)) from error
        if not fields:
            raise reader.fail((*spec_path, "set"), "must set at least one of missing, critical, result")
        return Edit(kind, where, select=select, patch=fields)
    if kind == "retag":
        return Edit(kind, where, select=select, tags=_nonempty_tags(reader, body, spec_path, "set", "{Owner: ops}"))
    if kind == "untag":
        keys = body["keys"]
        if not isinstance(keys, list) or not keys or not all(isinstance(key, str) and key for key in keys):
            raise reader.fail(
                (*spec_path, "keys"), f'must be a list of tag keys, e.g. ["Patch Group"] (got {_shown(keys)})'
            )
        return Edit(kind, where, select=select, keys=tuple(keys))
    return Edit(kind, where, select=select)


def _nonempty_tags(reader: _Reader, body: Mapping[str, Any], path: DocPath, key: str, example: str) -> dict[str, str]:
    value = body[key]
    if not isinstance(value, dict) or not value:
        raise reader.fail((*path, key), f"must map tag keys to values, e.g. {example} (got {_shown(value)})")
    return parse_tags_in(reader.document, (*path, key))


def _check_selections(fleet: Sequence[FleetInstance], cycles: Sequence[ScenarioCycle]) -> None:
    """Play the edits over the fleet's tags, so a `select` that matches nothing fails before any cycle."""
    live = [dict(instance.tags) for instance in fleet]
    for cycle in cycles:
        for edit in cycle.edits:
            if edit.kind == "add":
                live.extend(dict(instance.tags) for instance in edit.instances)
            if not edit.select:
                continue
            chosen = [tags for tags in live if all(tags.get(k) == v for k, v in edit.select.items())]
            if not chosen:
                raise ScenarioError(
                    f"{edit.where}: no instance matches {dict(edit.select)} by then (cycle {cycle.name!r}); "
                    "check the tag values, and edits before this one"
                )
            if edit.kind == "retag":
                for tags in chosen:
                    tags.update(edit.tags)
            elif edit.kind == "untag":
                if not any(key in tags for key in edit.keys for tags in chosen):
                    raise ScenarioError(
                        f"{edit.where}: none of the {len(chosen)} selected instance(s) has tag(s) {list(edit.keys)}"
                    )
                for tags in chosen:
                    for key in edit.keys:
                        tags.pop(key, None)
            elif edit.kind == "remove":
                live = [tags for tags in live if not any(tags is gone for gone in chosen)]


def _selected(account: SimulatedAccount, edit: Edit) -> list[str]:
    filters = [{"Name": f"tag:{key}", "Values": [value]} for key, value in edit.select.items()]
    filters.append({"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]})
    ids = [
        instance["InstanceId"]
        for page in account.client("ec2").get_paginator("describe_instances").paginate(Filters=filters)
        for reservation in page["Reservations"]
        for instance in reservation["Instances"]
    ]
    if not ids:
        raise ScenarioError(f"{edit.where}: no instance matches {dict(edit.select)}")
    return ids


def apply_edit(account: SimulatedAccount, edit: Edit) -> str:
    """Apply one (checked) edit; returns a one-line description for the console.

    AWS Config (when the account records) notices the change at once, at the clock's time.
    """
    said = _apply_edit(account, edit)
    account.config_observe()
    return said


def _apply_edit(account: SimulatedAccount, edit: Edit) -> str:
    if edit.kind == "policy":
        assert edit.policy is not None
        account.use_policy(edit.policy)
        return f"policy is now {edit.policy_label}"
    if edit.kind == "exceptions":
        assert edit.exceptions is not None
        account.use_exceptions(edit.exceptions)
        return f"patch exceptions are now {edit.policy_label}"
    if edit.kind == "add":
        return f"added {len(account.seed(edit.instances))} instance(s)"
    if edit.kind == "document":
        account.client("ssm").create_document(
            Name=edit.document,
            DocumentType="Command",
            DocumentFormat="JSON",
            Content=json.dumps(command_document(edit.commands)),
        )
        return f"created Command document {edit.document}"
    return _apply_selecting_edit(account, edit, _selected(account, edit))


def command_document(commands: Sequence[str]) -> dict[str, Any]:
    """A Command document running `commands` on Linux (schema 2.2, aws:runShellScript)."""
    return {
        "schemaVersion": "2.2",
        "description": "An operator's script (a scenario's document edit)",
        "mainSteps": [{"action": "aws:runShellScript", "name": "run", "inputs": {"runCommand": list(commands)}}],
    }


def _apply_selecting_edit(account: SimulatedAccount, edit: Edit, ids: list[str]) -> str:
    """Apply an edit to the instances its `select` matched."""
    ec2 = account.client("ec2")
    if edit.kind == "patch":
        for instance_id in ids:
            account.set_patch_behaviour(instance_id, edit.patch)
        return f"patch behaviour of {len(ids)} instance(s): {dict(edit.patch)}"
    if edit.kind == "retag":
        ec2.create_tags(Resources=ids, Tags=[{"Key": k, "Value": v} for k, v in edit.tags.items()])
        return f"retagged {len(ids)} instance(s): {dict(edit.tags)}"
    if edit.kind == "untag":
        ec2.delete_tags(Resources=ids, Tags=[{"Key": key} for key in edit.keys])
        return f"removed tag(s) {list(edit.keys)} from {len(ids)} instance(s)"
    if edit.kind == "remove":
        ec2.terminate_instances(InstanceIds=ids)
        _forget_managed(account, ids)  # SSM forgets a terminated node
        return f"terminated {len(ids)} instance(s)"
    if edit.kind == "stop":
        ec2.stop_instances(InstanceIds=ids)
    else:
        ec2.start_instances(InstanceIds=ids)
    _set_ping_status(account, ids, "ConnectionLost" if edit.kind == "stop" else "Online")
    return f"{'stopped' if edit.kind == 'stop' else 'started'} {len(ids)} instance(s)"


def _forget_managed(account: SimulatedAccount, ids: Sequence[str]) -> None:
    from tagpatch_local import simulator  # noqa: PLC0415 - moto is loaded only once input is checked
    from tagpatch_local.runner import ACCOUNT_ID  # noqa: PLC0415

    for instance_id in ids:
        if instance_id in simulator.managed_instances(ACCOUNT_ID, account.region):
            simulator.deregister_managed_instance(ACCOUNT_ID, account.region, instance_id)


def _set_ping_status(account: SimulatedAccount, ids: Sequence[str], status: PingStatus) -> None:
    from tagpatch_local import simulator  # noqa: PLC0415 - moto is loaded only once input is checked
    from tagpatch_local.runner import ACCOUNT_ID  # noqa: PLC0415

    managed = simulator.managed_instances(ACCOUNT_ID, account.region)
    for instance_id in ids:
        if instance_id in managed:
            simulator.set_ping_status(ACCOUNT_ID, account.region, instance_id, status)
