"""Checks `tagpatch run` makes before it builds the simulated account: execution input and policies.

The execution input is checked with the same code PrepareCycle runs (`tagpatch.cycle.start_cycle`),
plus what the state machine cannot say well: that the input is a JSON object at all, and that
`patch_groups` fits in Step Functions' payload limit. A policy is parsed with the layer's own parser;
each top-level section it leaves out is reported as a warning naming the default used instead.
"""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from tagpatch.cycle import start_cycle
from tagpatch.errors import InvalidCycleInput, InvalidPatchPolicy
from tagpatch.policy import PatchPolicy, TaskSettings, WindowSettings, parse_policy
from tagpatch_local.documents import InputError, load_document, parse_json, read_text
from tagpatch_local.template import Template

# Step Functions caps every state's data at 256 KiB and each state carries the cycle (and so this
# list); a normal cycle's largest payload is under 5 KiB, so this leaves ample room for the rest.
MAX_PATCH_GROUPS_BYTES: Final = 64 * 1024
POLICY_PATH_VARIABLE: Final = "PATCH_POLICY_PATH"
INPUT_EXAMPLE: Final = '{"mode": "plan"}'


def read_input_option(value: str) -> dict[str, Any]:
    """`--input`: inline JSON, or the path of a JSON file such as events/cycle-plan.json."""
    text = value.strip()
    if not text:
        raise InputError(f"--input: is empty; give a JSON object such as '{INPUT_EXAMPLE}' or the path of a JSON file")
    if text.startswith(("{", "[", '"')) or text in {"null", "true", "false"} or _is_number(text):
        return check_execution_input(parse_json(value, "--input"), "--input")
    path = Path(value)
    try:
        exists = path.exists()
    except (OSError, ValueError):  # a name too long for the system, a NUL character
        exists = False
    if not exists:
        looks_like_a_path = path.suffix.lower() == ".json" or "/" in value or "\\" in value
        plain = len(value) <= 80 and value.isprintable()  # else escaped and cut: the error stays one line
        shown = json.dumps(value)[:80]
        problem = (
            f"no such file {value if plain else shown}"
            if looks_like_a_path
            else f"{repr(value) if plain else shown} is neither JSON nor an existing file"
        )
        raise InputError(f"--input: {problem}; give a JSON object such as '{INPUT_EXAMPLE}' or the path of a JSON file")
    document = parse_json(read_text(path, "JSON input file"), str(path))
    return check_execution_input(document, str(path))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_execution_input(value: object, where: str) -> dict[str, Any]:
    """The execution input as PrepareCycle will see it, or an InputError naming `where`."""
    if not isinstance(value, dict):
        got = "null" if value is None else json.dumps(value)[:80]
        raise InputError(f"{where}: the execution input must be a JSON object such as {INPUT_EXAMPLE} (got {got})")
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    try:
        start_cycle(value, execution_id="preflight", execution_name="preflight", start_time=now)
    except InvalidCycleInput as error:
        raise InputError(f"{where}: {error}") from error
    groups = value.get("patch_groups")
    if groups is not None:
        size = len(json.dumps(groups).encode())
        if size > MAX_PATCH_GROUPS_BYTES:
            raise InputError(
                f"{where}: patch_groups is {size:,} bytes as JSON ({len(groups):,} groups); keep it under "
                f"{MAX_PATCH_GROUPS_BYTES:,} bytes (every state carries it and Step Functions allows 256 KiB): "
                "split the groups over several cycles, or leave patch_groups out to cover all"
            )
    return value


# --- policies -----------------------------------------------------------------------------------


def check_policy(path: Path) -> list[str]:
    """Parse a policy file as the functions will; return a warning for each default it relies on."""
    document = load_document(path, "patch policy")
    try:
        policy = parse_policy(document.value, str(path))
    except InvalidPatchPolicy as error:
        raise InputError(str(error)) from error
    return policy_default_warnings(document.value, policy)


def policy_default_warnings(document: dict[str, Any], policy: PatchPolicy) -> list[str]:
    """One line per section the policy leaves out, saying which default the cycle uses instead."""
    source = policy.source
    warnings = []
    if "windows" not in document:
        warnings.append(
            f"{source}: no `windows` section: no named windows, so a `Maintenance Window` tag naming one "
            "(e.g. sun-0200) is invalid_tags; only schedule expressions work"
        )
    defaults = document.get("defaults", {})
    if "window" not in defaults:
        warnings.append(
            f"{source}: no `defaults.window`: windows given as a schedule use {_settings(policy.default_window)}"
        )
    if "task" not in defaults:
        warnings.append(f"{source}: no `defaults.task`: patch tasks use {_settings(policy.default_task)}")
    if "baselines" not in document:
        warnings.append(
            f"{source}: no `baselines` section: every operating system (WINDOWS too) uses its AWS default "
            "patch baseline (aws-default), not a custom one"
        )
    if "notifications" not in document:
        lead = ", ".join(str(hours) for hours in policy.notification_lead_hours)
        warnings.append(f"{source}: no `notifications` section: reminders go out {lead} hours before each window")
    if "reconcile" not in document:
        warnings.append(
            f"{source}: no `reconcile` section: a cycle stops rather than delete more than "
            f"{policy.max_window_deletion_share:.0%} of tagpatch's windows"
        )
    if "scan" not in document:
        warnings.append(
            f"{source}: no `scan` section: every managed instance with a patch group tag is scanned "
            f"{policy.scan.schedule}, and a scan older than {policy.scan.stale_after_days} days is stale"
        )
    return warnings


def _settings(settings: WindowSettings | TaskSettings) -> str:
    values = {item.name: getattr(settings, item.name) for item in fields(settings)}
    # Unset settings (no value, no hooks) say nothing about the default.
    return ", ".join(f"{name} {value}" for name, value in values.items() if value not in (None, "", ()))


def stack_policy_path(template_path: Path) -> Path:
    """The policy file the template's functions read, found in the layer that mounts it at /opt."""
    template = Template.load(template_path)
    for spec in template.functions().values():
        value = spec.environment.get(POLICY_PATH_VARIABLE)
        if isinstance(value, str) and value.startswith("/opt/"):
            for layer in spec.layer_ids:
                candidate = template.layer_dir(layer) / value.removeprefix("/opt/")
                if candidate.is_file():
                    return candidate
    raise InputError(f"{template_path}: no function reads a {POLICY_PATH_VARIABLE} from one of its layers")
