"""Property tests (issue #21): malformed fleet, policy, exceptions, scenario and input documents.

Whatever a document holds, reading it either works or ends in one `InputError` line (exit 2 at the
CLI: `tagpatch_local.cli.main` turns exactly these into one line), never another exception, which
would be a traceback. No example can hang: every file read is capped (documents.MAX_FILE_BYTES),
aliases are capped (MAX_ALIAS_EXPANSION), and a fleet is capped at MAX_INSTANCES; the strategies
stay well inside those caps so each example is quick, and the caps themselves are tested by name in
tests/integration/test_cli_hostile_input.py. Nothing is written outside the folder given as --out.

Documents start from the real keys, so most examples get past the first check and into the nested
ones, and are then spliced with hostile text: YAML tags and anchors, impossible dates, control
characters, bytes that are not UTF-8.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tagpatch.errors import InvalidPatchExceptions
from tagpatch.exceptions import ExceptionSet, load_exceptions
from tagpatch_local.cli import (
    CheckedRun,
    UsageError,
    check_arguments,
    check_local_run,
    earlier_run_files,
    prepare_out_dir,
)
from tagpatch_local.documents import InputError
from tagpatch_local.fleet import load_fleet
from tagpatch_local.preflight import check_policy, read_input_option
from tagpatch_local.scenario import load_scenario
from tagpatch_local.template import TemplateError

REPO = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 11, 29, 6, tzinfo=UTC)
EXAMPLES = settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

FLEET_KEYS = [
    "instances", "generate", "tags", "os", "ssm", "state", "patch", "count", "seed", "name_prefix",
    "patch_groups", "schedules", "owners", "patch_group_key", "stopped_share", "missing", "critical",
    "result", "Patch Group", "Maintenance Window", "Name", "Owner", "UBUNTU", "WINDOWS", "web", "sun-0200",
]  # fmt: skip
POLICY_KEYS = [
    "version", "windows", "defaults", "window", "task", "baselines", "notifications", "reconcile",
    "schedule", "timezone", "duration_hours", "cutoff_hours", "offset_days", "operation", "reboot_option",
    "max_concurrency", "max_errors", "priority", "lead_hours", "max_window_deletion_share", "sun-0200",
    "scan", "enabled", "covers", "stale_after_days",
]  # fmt: skip
EXCEPTION_KEYS = [
    "version", "settings", "exceptions", "max_days", "notice_days", "governance_owner", "instance_id",
    "name", "patch_group", "tag", "reason", "approved_by", "expires", "until", "ticket", "hold",
]  # fmt: skip
SCENARIO_KEYS = [
    "fleet", "instances", "generate", "cycles", "start", "config_recorder", "name", "edits", "input",
    "advance", "retag", "untag", "add", "remove", "stop", "start", "policy", "patch", "exceptions",
    "select", "set", "keys", "mode", "now", "patch_groups", "allow_mass_deletion",
]  # fmt: skip
INPUT_KEYS = ["mode", "patch_groups", "now", "allow_mass_deletion", "plan", "apply"]

HOSTILE = [
    "2026-02-30", "2026-12-01T25:00", "1999-12-31T00:00:00Z", "2150-01-01T00:00:00Z", "yes", "no", "~",
    "null", "&a", "*a", "*missing", "!!python/object:os.system", "!!binary AAAA", "!!timestamp x",
    "\t", "\x00", "\x1b[31m", "\u202e", "é", "{", "[", "]", "}", ":", "- ", "? ", "|", ">", "'", '"',
    "\n  ", "\n- ", "9" * 40, "-1", "1e999", ".nan", "0x1F", "../../etc/passwd", "/dev/zero",
    "cron(0 2 ? * SUN *)", "at(2000-01-01T00:00:00)", "rate(0 minutes)",
]  # fmt: skip

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-5, max_value=60)
    # Large numbers past every cap (a count of 10**6 is refused at once), never a large valid fleet:
    # each example stays quick; the caps themselves are tested by name.
    | st.integers(min_value=10**6)
    | st.integers(max_value=-6)
    | st.floats(allow_nan=True)
    | st.sampled_from(HOSTILE)
    | st.text(max_size=12)
)


def documents(keys: list[str]) -> st.SearchStrategy[Any]:
    """Nested values whose mapping keys are mostly the real ones."""
    key = st.sampled_from(keys) | st.text(max_size=8)
    return st.recursive(
        SCALARS,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(key, inner, max_size=5),
        max_leaves=25,
    )


@st.composite
def texts(draw: st.DrawFn, keys: list[str]) -> bytes:
    """A document as bytes: YAML or JSON of a nested value, then spliced with hostile text or bytes."""
    value = draw(documents(keys))
    as_json = draw(st.booleans())
    text = json.dumps(value, default=str) if as_json else yaml.safe_dump(value, allow_unicode=True)
    data = text.encode("utf-8", errors="surrogatepass")
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        at = draw(st.integers(min_value=0, max_value=len(data)))
        splice = draw(st.sampled_from(HOSTILE).map(str.encode) | st.binary(max_size=6))
        data = data[:at] + splice + data[at + draw(st.integers(min_value=0, max_value=4)) :]
    return data


def one_line(error: Exception) -> None:
    """What the CLI prints: one line, no traceback text."""
    message = str(error)
    assert message and "\n" not in message and "Traceback" not in message, message


def files_under(folder: Path) -> dict[str, bytes | None]:
    return {
        str(path.relative_to(folder)): (path.read_bytes() if path.is_file() and not path.is_symlink() else None)
        for path in sorted(folder.rglob("*"))
    }


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


# --- each kind of document, read on its own ------------------------------------------------------------


@EXAMPLES
@given(data=texts(FLEET_KEYS), suffix=st.sampled_from([".yaml", ".json"]))
def test_any_fleet_file_loads_or_is_refused_in_one_line(tmp_path: Path, data: bytes, suffix: str) -> None:
    try:
        fleet = load_fleet(write(tmp_path, f"fleet{suffix}", data))
    except InputError as error:
        one_line(error)
    else:
        assert all(isinstance(instance.tags, dict) for instance in fleet)


@EXAMPLES
@given(data=texts(POLICY_KEYS), suffix=st.sampled_from([".yaml", ".json"]))
def test_any_policy_file_is_read_or_refused_in_one_line(tmp_path: Path, data: bytes, suffix: str) -> None:
    try:
        warnings = check_policy(write(tmp_path, f"policy{suffix}", data))
    except InputError as error:
        one_line(error)
    else:
        assert all(isinstance(warning, str) for warning in warnings)


@EXAMPLES
@given(data=texts(EXCEPTION_KEYS))
def test_any_exceptions_file_never_stops_a_cycle_and_is_refused_in_one_line_before_deploy(
    tmp_path: Path, data: bytes
) -> None:
    path = write(tmp_path, "patch-exceptions.yaml", data)
    found = load_exceptions(path, NOW)  # at run time: never raises, whatever the file holds
    assert isinstance(found, ExceptionSet)
    assert all(error and "\n" not in error for error in found.errors), found.errors
    try:
        load_exceptions(path, NOW, strict=True)
    except InvalidPatchExceptions as error:
        assert str(error)


@EXAMPLES
@given(data=texts(SCENARIO_KEYS))
def test_any_scenario_file_loads_or_is_refused_in_one_line(tmp_path: Path, data: bytes) -> None:
    write(tmp_path, "fleet.yaml", b"instances:\n  - os: UBUNTU\n    tags: {Name: web-1, Owner: ops}\n")
    write(tmp_path, "exceptions.yaml", b"exceptions: []\n")
    try:
        scenario = load_scenario(write(tmp_path, "scenario.yaml", data))
    except InputError as error:
        one_line(error)
    else:
        assert scenario.cycles


@EXAMPLES
@given(value=documents(INPUT_KEYS), spliced=texts(INPUT_KEYS))
def test_any_execution_input_is_accepted_or_refused_in_one_line(value: Any, spliced: bytes) -> None:
    for text in (json.dumps(value, default=str), spliced.decode("utf-8", errors="replace")):
        try:
            accepted = read_input_option(text)
        except InputError as error:
            one_line(error)
        else:
            assert isinstance(accepted, dict)


# --- the whole command line, up to building the account ----------------------------------------------


@pytest.mark.slow  # 25 whole command lines, each up to building the account
@settings(EXAMPLES, max_examples=25)  # each example parses the template for the stack's policy
@given(
    fleet=texts(FLEET_KEYS),
    execution_input=documents(INPUT_KEYS),
    now=st.none() | st.sampled_from(HOSTILE) | st.just("2026-11-29T03:00:00Z"),
    out=st.sampled_from(["out", "out/nested", "fleet.yaml/out", "x" * 300, "link", "link/below"]),
    force=st.booleans(),
)
def test_any_local_run_is_checked_or_refused_in_one_line_and_writes_only_into_out(
    tmp_path: Path, fleet: bytes, execution_input: Any, now: str | None, out: str, force: bool
) -> None:
    work = tmp_path / "work"
    outside = tmp_path / "outside"
    work.mkdir(exist_ok=True)
    outside.mkdir(exist_ok=True)
    (outside / "victim.txt").write_text("keep")
    link = work / "link"
    if not link.is_symlink():
        link.symlink_to(outside)
    write(work, "fleet.yaml", fleet)
    before = files_under(outside)
    args = argparse.Namespace(
        stack=None,
        region=None,
        scenario=None,
        fleet=str(work / "fleet.yaml"),
        input=json.dumps(execution_input, default=str),
        now=now,
        out=str(work / out),
        force=force,
        template=str(REPO / "template.yaml"),
    )
    try:
        # What `tagpatch run` does before it builds the simulated account, in its order.
        check_arguments(args)
        checked = check_local_run(args)
        earlier = earlier_run_files(Path(args.out), force=force)
        prepare_out_dir(Path(args.out), earlier)
    except (InputError, TemplateError) as error:  # exactly what main() turns into exit 2
        one_line(error)
        assert not isinstance(error, UsageError) or str(error).startswith(("--", "tagpatch")), error
    else:
        assert isinstance(checked, CheckedRun)
    # The output folder may be made (through the user's own link, as they asked); nothing else changes.
    assert {name: body for name, body in files_under(outside).items() if name in before} == before
