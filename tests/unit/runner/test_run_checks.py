"""The local runner's pieces, without a cycle: input documents, preflight checks, the plan view, exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from tagpatch.policy import parse_policy
from tagpatch_local.cli import Marks, Progress, UsageError, earlier_run_files, exit_status, prepare_out_dir
from tagpatch_local.documents import MAX_ALIAS_EXPANSION, InputError, parse_json, parse_yaml
from tagpatch_local.outfiles import write_atomically, write_jsonl_atomically
from tagpatch_local.plan_view import count_lines, has_pending_changes, render_changes
from tagpatch_local.preflight import (
    MAX_PATCH_GROUPS_BYTES,
    check_execution_input,
    check_policy,
    policy_default_warnings,
    stack_policy_path,
)

REPO = Path(__file__).resolve().parents[3]

# --- documents -------------------------------------------------------------------------------------


def test_anchors_that_repeat_a_block_are_fine() -> None:
    document = parse_yaml("base: &tags {Owner: ops}\na: *tags\nb: *tags\n", "f.yaml")
    assert document.value == {"base": {"Owner": "ops"}, "a": {"Owner": "ops"}, "b": {"Owner": "ops"}}
    assert document.where(("b",)) == "f.yaml: b (line 3)"
    assert document.where(("b", "Owner")) == "f.yaml: b.Owner (line 1)"  # where the shared block is written


def test_aliases_just_past_the_limit_are_refused() -> None:
    width = 1000  # 1 + 1000 nodes per block; `MAX_ALIAS_EXPANSION / width` copies of it stay allowed
    block = "[" + ", ".join(["x"] * width) + "]"
    copies = MAX_ALIAS_EXPANSION // (width + 1)
    allowed = f"a: &a {block}\nb: [{', '.join(['*a'] * copies)}]\n"
    assert len(parse_yaml(allowed, "ok.yaml").value["b"]) == copies
    with pytest.raises(InputError, match="expand the document to"):
        parse_yaml(f"a: &a {block}\nb: [{', '.join(['*a'] * (copies + 2))}]\n", "bomb.yaml")


def test_json_duplicate_keys_are_found_at_any_depth() -> None:
    with pytest.raises(InputError, match=r'f\.json: duplicate key "Name"'):
        parse_json('{"instances": [{"tags": {"Name": "a", "Name": "b"}}]}', "f.json")
    assert parse_json('{"a": {"k": 1}, "b": {"k": 2}}', "f.json") == {"a": {"k": 1}, "b": {"k": 2}}


# --- execution input -------------------------------------------------------------------------------


def test_patch_groups_just_under_the_bound_pass_and_just_over_are_refused() -> None:
    def groups_of(size: int) -> list[str]:
        name_length = 100
        count = size // (name_length + 4)  # quotes, comma and space around each name
        return [f"{index:05d}".ljust(name_length, "g") for index in range(count)]

    under = groups_of(MAX_PATCH_GROUPS_BYTES - 500)
    assert len(json.dumps(under).encode()) <= MAX_PATCH_GROUPS_BYTES
    assert check_execution_input({"patch_groups": under}, "--input")["patch_groups"] == under
    over = groups_of(MAX_PATCH_GROUPS_BYTES + 500)
    assert len(json.dumps(over).encode()) > MAX_PATCH_GROUPS_BYTES
    with pytest.raises(InputError, match=r"--input: patch_groups is .* bytes as JSON"):
        check_execution_input({"patch_groups": over}, "--input")


@pytest.mark.parametrize("value", [{}, {"mode": "plan"}, {"mode": "apply", "patch_groups": ["web-prod"]}])
def test_good_execution_input_passes_unchanged(value: dict[str, Any]) -> None:
    assert check_execution_input(value, "--input") == value


# --- policies --------------------------------------------------------------------------------------


def test_the_shipped_policy_relies_on_no_default() -> None:
    assert stack_policy_path(REPO / "template.yaml") == REPO / "policy" / "patch-policy.yaml"
    assert check_policy(REPO / "policy" / "patch-policy.yaml") == []


@pytest.mark.parametrize(
    ("section", "expect"),
    [
        ("windows", "no `windows` section: no named windows"),
        ("baselines", "no `baselines` section: every operating system (WINDOWS too) uses its AWS default"),
        ("defaults", "no `defaults.window`: windows given as a schedule use timezone UTC, duration_hours 3"),
        ("notifications", "no `notifications` section: reminders go out 72, 24, 1 hours"),
        ("reconcile", "no `reconcile` section: a cycle stops rather than delete more than 25%"),
        ("scan", "no `scan` section: every managed instance with a patch group tag is scanned rate(1 day)"),
    ],
)
def test_each_missing_policy_section_is_one_warning(tmp_path: Path, section: str, expect: str) -> None:
    import yaml

    document = yaml.safe_load((REPO / "policy" / "patch-policy.yaml").read_text())
    del document[section]
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(document))
    warnings = check_policy(path)
    assert any(warning.startswith(f"{path}: {expect}") for warning in warnings), warnings
    assert len(warnings) == (2 if section == "defaults" else 1)  # defaults: its window and task parts


def test_a_missing_defaults_task_names_the_task_defaults() -> None:
    document = {"version": 1, "defaults": {"window": {"timezone": "UTC"}}}
    warnings = policy_default_warnings(document, parse_policy(document, "p.yaml"))
    assert [w for w in warnings if "defaults" in w] == [
        "p.yaml: no `defaults.task`: patch tasks use operation Install, reboot_option RebootIfNeeded, "
        "max_concurrency 10%, max_errors 5%, priority 1, service_role service-linked, cutoff_behavior CANCEL_TASK"
    ]


def test_a_broken_policy_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("version: 2\n")
    with pytest.raises(InputError, match=r"policy.yaml: version: must be 1"):
        check_policy(path)


# --- the plan view ---------------------------------------------------------------------------------

WINDOW = {"schedule": "cron(0 2 ? * SUN *)", "timezone": "UTC", "duration_hours": 3, "offset_days": None}


def change(kind: str, action: str, name: str, before: Any = None, after: Any = None, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "action": action, "name": name, "window": extra.pop("window", name), "before": before,
            "after": after, **extra}  # fmt: skip


def test_the_plan_reads_as_a_diff_most_consequential_first() -> None:
    changes = [
        change("window", "create", "w-new", after=WINDOW),
        change("target", "update", "t-1", {"values": ["a"]}, {"values": ["a", "b"]}, window="w-sun"),
        change("task", "delete", "task-1", before={"priority": 1}, window="w-old"),
        change("window", "blocked", "w-theirs", reason="not managed by tagpatch"),
        change("window", "unchanged", "w-same", WINDOW, WINDOW),
    ]
    assert render_changes(changes) == [
        "! window w-theirs: blocked: not managed by tagpatch",
        "- task task-1 in w-old: priority=1",
        "~ target t-1 in w-sun: values [a] → [a, b]",
        "+ window w-new: schedule=cron(0 2 ? * SUN *), timezone=UTC, duration_hours=3",
    ]
    assert render_changes(changes, arrow="->", limit=2)[-1] == "... and 2 more in changes.jsonl"
    assert "values [a] -> [a, b]" in render_changes(changes, arrow="->")[2]
    assert has_pending_changes(changes)
    assert not has_pending_changes([changes[-1]])


def test_registrations_do_not_repeat_what_their_name_says() -> None:
    line = change("registration", "create", "web/UBUNTU", after={"baseline_id": "pb-1", "operating_system": "UBUNTU",
                  "patch_group": "web"}, window=None)  # fmt: skip
    assert render_changes([line]) == ["+ registration web/UBUNTU: baseline_id=pb-1"]


def test_counts_say_would_in_plan_mode() -> None:
    counts = {"window": {"created": 1, "updated": 0, "deleted": 2, "unchanged": 3, "blocked": 0}, "task": {}}
    assert count_lines(counts, plan=True) == ["windows: would create 1, would delete 2, 3 unchanged", "tasks: none"]
    assert count_lines(counts, plan=False) == ["windows: 1 created, 2 deleted, 3 unchanged", "tasks: none"]


# --- exit codes, the output folder, the console -------------------------------------------------------


@pytest.mark.parametrize(
    ("outcomes", "detailed", "status"),
    [
        ([(True, False)], True, 0),
        ([(True, True)], False, 0),
        ([(True, True)], True, 3),
        ([(True, False), (True, True)], True, 3),
        ([(False, False), (True, True)], True, 1),
        ([(False, False)], False, 1),
    ],
)
def test_exit_status(outcomes: list[tuple[bool, bool]], detailed: bool, status: int) -> None:
    assert exit_status(outcomes, detailed=detailed) == status


def test_only_an_earlier_runs_own_files_are_cleared(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "01-first").mkdir(parents=True)
    (out / "01-first" / "changes.jsonl").write_text("")
    (out / "lambda.log").write_text("")
    (out / "02-mine").mkdir()
    (out / "02-mine" / "notes.txt").write_text("")  # a cycle-like folder holding someone's file is not ours
    with pytest.raises(UsageError, match=r"did not write \(02-mine\)"):
        earlier_run_files(out, force=False)
    earlier = earlier_run_files(out, force=True)
    assert [path.name for path in earlier] == ["01-first", "lambda.log"]
    prepare_out_dir(out, earlier)
    assert [path.name for path in out.iterdir()] == ["02-mine"]
    assert earlier_run_files(tmp_path / "new" / "out", force=False) == []


def test_an_unwritable_out_folder_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(UsageError, match=r"--out .*: cannot write there: Permission denied"):
        prepare_out_dir(tmp_path / "out", [])


def test_marks_fall_back_to_ascii_and_map_iterations_are_named() -> None:
    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    marks = Marks.for_stream(stream)
    assert (marks.done, marks.failed, marks.arrow) == ("ok", "FAILED", "->")
    assert Marks.for_stream(io.TextIOWrapper(io.BytesIO(), encoding="utf-8")).done == "✓"
    out = io.StringIO()
    progress = Progress(out, Marks())
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 1, 1, tzinfo=UTC)
    progress({"type": "TaskStateEntered", "timestamp": start,
              "stateEnteredEventDetails": {"name": "ApplyWindow", "input": '{"window": "w-1"}'}})  # fmt: skip
    progress({"type": "TaskStateEntered", "timestamp": start,
              "stateEnteredEventDetails": {"name": "ApplyWindow", "input": '{"window": "w-2"}'}})  # fmt: skip
    progress({"type": "TaskStateExited", "timestamp": start + timedelta(seconds=2),
              "stateExitedEventDetails": {"name": "ApplyWindow", "output": '{"window": "w-2"}'}})  # fmt: skip
    assert out.getvalue().splitlines() == ["  > ApplyWindow w-1", "  > ApplyWindow w-2", "  ✓ ApplyWindow w-2 (2.00 s)"]


# --- the output folder: unreadable, and written atomically (issue #21) -----------------------------


def test_an_out_folder_that_cannot_be_listed_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Root reads any folder, so the refusal a user sees is made here by the listing itself failing.
    (tmp_path / "out").mkdir()

    def denied(self: Path) -> Any:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "iterdir", denied)
    with pytest.raises(UsageError, match=r"--out .*out: cannot read it: Permission denied"):
        earlier_run_files(tmp_path / "out", force=False)


def test_a_file_is_replaced_whole_never_written_in_place(tmp_path: Path) -> None:
    # A hard link shares the file's contents: writing in place would change the other name too.
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text("theirs")
    target = tmp_path / "summary.json"
    target.hardlink_to(elsewhere)
    write_atomically(target, b"ours")
    assert target.read_text() == "ours" and elsewhere.read_text() == "theirs"


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "changes.jsonl"
    target.write_text("old\n")

    def lines() -> Any:
        yield {"a": 1}
        raise RuntimeError("the report failed midway")

    with pytest.raises(RuntimeError, match="midway"):
        write_jsonl_atomically(target, lines())
    assert target.read_text() == "old\n" and [path.name for path in tmp_path.iterdir()] == ["changes.jsonl"]
