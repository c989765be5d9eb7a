"""Patch task hooks: the policy names pre-install, post-install and on-exit hook documents, and the task
then runs AWS-RunPatchBaselineWithHooks with them (the held Scan task never runs them)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tagpatch.desired import build_desired_state
from tagpatch.errors import InvalidPatchPolicy
from tagpatch.monitoring import InstanceOutcome, PatchState, WindowRun, hook_failure, hooks_ran, parameters_hooks
from tagpatch.policy import parse_policy
from tagpatch.reconcile import HOOKS_DOCUMENT, PATCH_DOCUMENT, ActualTask, actual_task_fields, task_fields


def policy(default_hooks: object = None, window_task: dict[str, Any] | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "version": 1,
        "windows": {"sun-0200": {"schedule": "cron(0 2 ? * SUN *)", **({"task": window_task} if window_task else {})}},
    }
    if default_hooks is not None:
        document["defaults"] = {"task": {"hooks": default_hooks}}
    return document


def test_hooks_are_read_and_each_document_is_named_once_with_its_key() -> None:
    found = parse_policy(
        policy({"post_install": "app-health", "pre_install": "app-drain"}, {"hooks": {"on_exit": "app-health"}})
    )
    assert found.default_task.hooks == (("post_install", "app-health"), ("pre_install", "app-drain"))
    assert found.windows["sun-0200"].task.hooks == (
        ("on_exit", "app-health"),
    )  # a window's hooks replace the defaults'
    assert found.hook_documents() == {
        "app-health": "defaults.task.hooks.post_install",
        "app-drain": "defaults.task.hooks.pre_install",
    }
    assert parse_policy(policy({"post_install": "x-y"}, {"hooks": {}})).windows["sun-0200"].task.hooks == ()


@pytest.mark.parametrize(
    ("hooks", "expected"),
    [
        pytest.param({"after": "x-y"}, "defaults.task.hooks.after: unknown key", id="unknown-hook"),
        pytest.param({"post_install": "a"}, "defaults.task.hooks.post_install: must be an SSM document", id="short"),
        pytest.param({"post_install": "has space"}, "must be an SSM document name or ARN", id="space"),
        pytest.param(["app-health"], "defaults.task.hooks: must be a mapping", id="list"),
    ],
)
def test_a_bad_hook_is_refused_naming_the_key(hooks: object, expected: str) -> None:
    with pytest.raises(InvalidPatchPolicy) as caught:
        parse_policy(policy(hooks), "patch-policy.yaml")
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def line(instance_id: str, held: bool = False) -> dict[str, Any]:
    return {
        "instance_id": instance_id,
        "class": "ready",
        "patch_group": "web",
        "patch_group_key": "Patch Group",
        "maintenance_window": "sun-0200",
        "window_key": "Maintenance Window",
        "os": "AMAZON_LINUX_2023",
        "held": held,
    }


def test_a_hooked_task_runs_the_hooks_document_and_the_held_scan_does_not() -> None:
    found = parse_policy(policy({"post_install": "app-health"}))
    (window,) = build_desired_state([line("i-1"), line("i-2", held=True)], found).windows
    install, scan = sorted(window.tasks, key=lambda task: task.name)
    fields = task_fields(install.settings, install.target_names)
    assert fields["document"] == HOOKS_DOCUMENT
    assert fields["hooks"] == {"pre_install": "AWS-Noop", "post_install": "app-health", "on_exit": "AWS-Noop"}
    scanned = task_fields(scan.settings, scan.target_names)
    assert (scanned["operation"], scanned["document"], "hooks" in scanned) == ("Scan", PATCH_DOCUMENT, False)


def test_a_registered_hooked_task_reads_back_equal_so_a_rerun_writes_nothing() -> None:
    settings = parse_policy(policy({"post_install": "app-health"})).default_task
    registered = ActualTask(
        window_task_id="t-1",
        name="tagpatch-install-reboot-01",
        description=None,
        task_arn=HOOKS_DOCUMENT,
        target_ids=("wt-1",),
        service_role_arn=None,
        max_concurrency=settings.max_concurrency,
        max_errors=settings.max_errors,
        priority=settings.priority,
        operation="Install",
        reboot_option="RebootIfNeeded",
        cutoff_behavior="CANCEL_TASK",
        hooks={"post_install": "app-health", "pre_install": "AWS-Noop", "on_exit": "AWS-Noop"},
    )
    read_back = actual_task_fields(registered, {"wt-1": "target"})
    wanted = task_fields(settings, ["target"])
    assert {k: v for k, v in read_back.items() if k != "owner_mark"} == {
        k: v for k, v in wanted.items() if k != "owner_mark"
    }
    # A task registered without hooks differs in its document: the change is an update.
    plain = actual_task_fields(registered.__class__(**{**registered.__dict__, "task_arn": PATCH_DOCUMENT}), {})
    assert plain["document"] == PATCH_DOCUMENT and "hooks" not in plain


def test_the_hooks_an_invocation_names_are_read_from_its_parameters() -> None:
    parameters = json.dumps(
        {
            "documentName": HOOKS_DOCUMENT,
            "parameters": {
                "Operation": ["Install"],
                "PreInstallHookDocName": ["AWS-Noop"],
                "PostInstallHookDocName": ["app-health"],
            },
        }
    )
    assert parameters_hooks(parameters) == {"post_install": "app-health"}
    assert parameters_hooks(json.dumps({"Operation": ["Install"]})) == {}
    assert parameters_hooks("not json") == {}


STARTED = datetime(2026, 12, 6, 2, tzinfo=UTC)
FAILED = InstanceOutcome("failed", "window w at 2026-12-06 02:00 UTC: Install ended Failed/Failed", "w", "Failed")


def hooked_run(**hooks: str) -> WindowRun:
    return WindowRun("w", "e-1", "SUCCESS", "", STARTED, frozenset({"Install"}), hooks=hooks)


def state(operation_end: datetime, failed: int = 0) -> PatchState:
    return PatchState(0, 0, 2, failed, 0, "Install", operation_end)


def scanned(missing: int) -> PatchState:
    """The daily patch scan's report, since the run: it replaced the Install's."""
    return PatchState(missing, 0, 2 - missing, 0, 0, "Scan", STARTED + timedelta(hours=4))


@pytest.mark.parametrize(
    ("run", "patch_state", "told"),
    [
        pytest.param(
            hooked_run(post_install="h", on_exit="x"),
            state(STARTED + timedelta(minutes=3)),
            ": failed in the post-install hook (h) or the on-exit hook (x), after its patches installed",
            id="after-install",
        ),
        pytest.param(
            hooked_run(pre_install="d"),
            state(STARTED - timedelta(days=7)),
            ": failed in the pre-install hook (d), nothing installed",
            id="before-install",
        ),
        pytest.param(hooked_run(post_install="h"), state(STARTED + timedelta(minutes=3), failed=1), "", id="patch"),
        pytest.param(hooked_run(), state(STARTED + timedelta(minutes=3)), "", id="no-hooks"),
        pytest.param(
            hooked_run(pre_install="d", post_install="h"),
            scanned(missing=0),
            ": failed in the post-install hook (h), after its patches installed",
            id="scan-since-finds-them-installed",
        ),
        pytest.param(
            hooked_run(pre_install="d", post_install="h"),
            scanned(missing=2),
            ": failed in the pre-install hook (d) or while installing (a patch scan since found its patches missing)",
            id="scan-since-finds-them-missing",
        ),
        pytest.param(hooked_run(post_install="h"), scanned(missing=2), "", id="scan-since-no-pre-hook"),
    ],
)
def test_a_failed_hooked_install_says_which_part_failed(run: WindowRun, patch_state: PatchState, told: str) -> None:
    assert hook_failure(FAILED, run, patch_state).reason == FAILED.reason + told


def test_a_macos_instance_in_a_hooked_window_is_a_shortfall_problem() -> None:
    found = parse_policy(policy({"post_install": "app-health"}))
    mac = {**line("i-mac"), "os": "MACOS", "name": "build-mac"}
    (problem,) = [p for p in build_desired_state([line("i-1"), mac], found).problems if p.kind == "hooks"]
    assert problem.name == "i-mac" and "build-mac runs MACOS" in problem.reason
    assert not [p for p in build_desired_state([mac], parse_policy(policy())).problems if p.kind == "hooks"]


def test_a_patched_instance_of_a_hooked_run_reports_the_hooks_that_ran() -> None:
    """AWS-RunPatchBaselineWithHooks fails its command when a hook fails, so a patched outcome of a
    hooked run ran every hook it named; a failed one names its hook in the reason instead."""
    patched = InstanceOutcome("patched", "window w at 2026-12-06 02:00 UTC: Install ended Success", "w", "Success")
    assert hooks_ran(patched, hooked_run(post_install="app-health")) == {"post_install": "app-health"}
    assert hooks_ran(FAILED, hooked_run(post_install="app-health")) is None
    assert hooks_ran(patched, hooked_run()) is None
    assert hooks_ran(patched, None) is None
