"""Reconcile: the diff between what SSM has and what the tags ask for, touching only what tagpatch owns.

The actual state is built here directly from ActualWindow/ActualTarget/ActualTask, both as tagpatch
would have left it (`as_actual`) and with hand-made windows, targets and tasks mixed in.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tagpatch.desired import OWNER_INFORMATION, DesiredState, Problem, build_desired_state, task_description
from tagpatch.errors import ConfigurationError
from tagpatch.inventory import InstanceReport
from tagpatch.policy import SERVICE_LINKED, PatchPolicy, parse_policy
from tagpatch.reconcile import (
    PATCH_DOCUMENT,
    ActualTarget,
    ActualTask,
    ActualWindow,
    BackupRunbook,
    Change,
    Plan,
    RegistrationState,
    hook_parameters,
    plan_registrations,
    plan_windows,
)

from .builders import instance_line

REPO_ROOT = Path(__file__).resolve().parents[3]
_DOCUMENT = yaml.safe_load((REPO_ROOT / "policy" / "patch-policy.yaml").read_text(encoding="utf-8"))
_DOCUMENT["windows"]["roled"] = {
    "schedule": "cron(0 4 ? * SAT *)",
    "task": {"service_role": "arn:aws:iam::123456789012:role/patching", "max_errors": "1", "priority": 3},
}
POLICY: PatchPolicy = parse_policy(_DOCUMENT, "<test>")

SUN = "cron(0 2 ? * SUN *)"
MON = "cron(0 2 ? * MON *)"
PG_TARGET = "tagpatch-install-reboot-patch-group-01"
PGK_TARGET = "tagpatch-install-reboot-patchgroup-01"
TASK = "tagpatch-install-reboot-01"
SHARE = 0.25

line = instance_line


def desired(*lines: InstanceReport) -> DesiredState:
    return build_desired_state(lines, POLICY)


def target_id(window: str, target: str) -> str:
    return f"{window}/target/{target}"


def task_id(window: str, task: str) -> str:
    return f"{window}/task/{task}"


def window_id(index: int) -> str:
    return f"mw-{index:017x}"


def as_actual(state: DesiredState) -> list[ActualWindow]:
    """What SSM holds after the plan for `state` was applied to an empty account."""
    windows: list[ActualWindow] = []
    for index, window in enumerate(state.windows):
        targets = tuple(
            ActualTarget(
                target_id(window.name, target.name),
                target.name,
                tuple((item["Key"], tuple(sorted(item["Values"]))) for item in target.ssm_targets()),
                OWNER_INFORMATION,
            )
            for target in window.targets
        )
        tasks = tuple(
            ActualTask(
                window_task_id=task_id(window.name, task.name),
                name=task.name,
                description=task_description(task.settings.operation, task.settings.reboot_option),
                task_arn=PATCH_DOCUMENT,
                target_ids=tuple(target_id(window.name, name) for name in task.target_names),
                service_role_arn=None if task.settings.service_role == SERVICE_LINKED else task.settings.service_role,
                max_concurrency=task.settings.max_concurrency,
                max_errors=task.settings.max_errors,
                priority=task.settings.priority,
                operation=task.settings.operation,
                reboot_option=task.settings.reboot_option,
                cutoff_behavior=task.settings.cutoff_behavior,
            )
            for task in window.tasks
        )
        windows.append(
            ActualWindow(
                window_id=window_id(index),
                name=window.name,
                owned=True,
                schedule=window.settings.schedule,
                timezone=window.settings.timezone,
                duration_hours=window.settings.duration_hours,
                cutoff_hours=window.settings.cutoff_hours,
                offset_days=window.settings.offset_days,
                description=window.description,
                enabled=True,
                targets=targets,
                tasks=tasks,
            )
        )
    return windows


def plan(
    state: DesiredState,
    actual: list[ActualWindow],
    *,
    share: float = SHARE,
    allow_mass_deletion: bool = False,
) -> Plan:
    return plan_windows(state, actual, max_deletion_share=share, allow_mass_deletion=allow_mass_deletion)


def groups_of(fields: Any) -> dict[str, Any]:
    """The patch-group half of a target's fields (the window half is checked where it matters)."""
    if fields is None or "tag_key" not in fields:
        return dict(fields or {})
    return {"tag_key": fields["tag_key"], "values": fields["values"]}


def summary(changes: tuple[Change, ...]) -> list[tuple[str, str, str, str | None]]:
    return [(change.kind, change.action, change.name, change.window) for change in changes]


def replace_window(windows: list[ActualWindow], name: str, **fields: Any) -> list[ActualWindow]:
    return [dataclasses.replace(window, **fields) if window.name == name else window for window in windows]


def hand_made_window(name: str, *, owned: bool = False, index: int = 900) -> ActualWindow:
    return ActualWindow(
        window_id=window_id(index),
        name=name,
        owned=owned,
        schedule="rate(7 days)",
        timezone=None,
        duration_hours=2,
        cutoff_hours=0,
        offset_days=None,
        description="made by hand",
        enabled=True,
        targets=(ActualTarget("hand-target", "hand-target", (("InstanceIds", ("i-1",)),), None),),
    )


# --- first run ----------------------------------------------------------------------------------------------


def test_first_run_creates_everything() -> None:
    state = desired(line("web"), line("db", key="PatchGroup"), line("reports", window="scan-daily"))
    result = plan(state, [])
    assert summary(result.changes) == [
        ("window", "create", "tagpatch-scan-daily", "tagpatch-scan-daily"),
        ("target", "create", "tagpatch-scan-noreboot-patch-group-01", "tagpatch-scan-daily"),
        ("task", "create", "tagpatch-scan-noreboot-01", "tagpatch-scan-daily"),
        ("window", "create", "tagpatch-sun-0200", "tagpatch-sun-0200"),
        ("target", "create", PG_TARGET, "tagpatch-sun-0200"),
        ("target", "create", PGK_TARGET, "tagpatch-sun-0200"),
        ("task", "create", TASK, "tagpatch-sun-0200"),
    ]
    assert all(change.before is None and change.resource_id is None for change in result.changes)
    assert result.writes() == result.changes
    counts = result.counts()
    assert counts["window"] == {"created": 2, "updated": 0, "deleted": 0, "unchanged": 0, "blocked": 0}
    assert counts["target"] == {"created": 3, "updated": 0, "deleted": 0, "unchanged": 0, "blocked": 0}
    assert counts["task"] == {"created": 2, "updated": 0, "deleted": 0, "unchanged": 0, "blocked": 0}
    assert counts["registration"] == {"created": 0, "updated": 0, "deleted": 0, "unchanged": 0, "blocked": 0}
    assert result.problems == ()


def test_first_run_change_contents() -> None:
    result = plan(desired(line("web", window="tue-2330"), line("db", window="roled")), [])
    by_name = {(change.kind, change.name, change.window): change for change in result.changes}
    assert by_name[("window", "tagpatch-tue-2330", "tagpatch-tue-2330")].after == {
        "schedule": "cron(30 23 ? * TUE#2 *)",
        "timezone": "Europe/Berlin",
        "duration_hours": 4,
        "cutoff_hours": 1,
        "offset_days": 2,
        "description": "tagpatch: cron(30 23 ? * TUE#2 *) Europe/Berlin",
        "enabled": True,
    }
    assert by_name[("target", PG_TARGET, "tagpatch-tue-2330")].after == {
        "tag_key": "Patch Group",
        "values": ["web"],
        "window_key": "Maintenance Window",
        "window_values": ["tue-2330"],
    }
    (roled_task,) = [c for c in result.changes if c.kind == "task" and c.window == "tagpatch-roled"]
    (roled_target,) = [c for c in result.changes if c.kind == "target" and c.window == "tagpatch-roled"]
    assert roled_task.action == "create"
    assert roled_task.after == {
        "operation": "Install",
        "reboot_option": "RebootIfNeeded",
        "max_concurrency": "10%",
        "max_errors": "1",
        "priority": 3,
        "service_role": "arn:aws:iam::123456789012:role/patching",
        "cutoff_behavior": "CANCEL_TASK",
        "targets": [roled_target.name],
        "document": "AWS-RunPatchBaseline",
        "owner_mark": True,
    }


def test_desired_problems_are_carried_into_the_plan() -> None:
    state = desired(line("web"), line("bad", window="cron(bad)"))
    result = plan(state, [])
    assert [(problem.kind, problem.name) for problem in result.problems] == [("window", "cron(bad)")]


# --- idempotence --------------------------------------------------------------------------------------------

fleets = st.lists(
    st.builds(
        line,
        group=st.sampled_from(["web", "db", "api", "batch", "Üml-ä", "日本", "a b", "x/y"]),
        key=st.sampled_from(["Patch Group", "PatchGroup"]),
        window=st.sampled_from(
            ["sun-0200", "tue-2330", "scan-daily", "roled", SUN, MON, "cron(30 1 ? * WED *)", "rate(7 days)"]
        ),
        os=st.sampled_from(["AMAZON_LINUX_2023", "UBUNTU", "WINDOWS"]),
        cls=st.sampled_from(["ready", "stopped"]),
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(fleets)
def test_applying_the_plan_then_planning_again_writes_nothing(lines: list[InstanceReport]) -> None:
    state = desired(*lines)
    first = plan(state, [])
    assert all(change.action == "create" for change in first.changes)
    again = plan(state, as_actual(state))
    assert again.writes() == ()
    counts = again.counts()
    assert counts["window"]["unchanged"] == len(state.windows)
    assert counts["target"]["unchanged"] == sum(len(window.targets) for window in state.windows)
    assert counts["task"]["unchanged"] == sum(len(window.tasks) for window in state.windows)
    assert sum(counts[kind]["blocked"] for kind in counts) == 0


@settings(max_examples=100, deadline=None)
@given(fleets, fleets)
def test_a_change_of_tags_only_touches_windows_that_changed(
    before: list[InstanceReport], after: list[InstanceReport]
) -> None:
    old, new = desired(*before), desired(*after)
    result = plan(new, as_actual(old), allow_mass_deletion=True)
    old_windows = {window.name: window for window in old.windows}
    new_windows = {window.name: window for window in new.windows}
    touched = {change.window for change in result.writes() if change.window is not None}
    for name in touched:
        assert old_windows.get(name) != new_windows.get(name), name
    for change in result.changes:
        if change.kind == "window" and change.action == "delete":
            assert change.name in old_windows
            assert change.name not in new_windows
        if change.kind == "window" and change.action == "create":
            assert change.name not in old_windows


# --- one retag ----------------------------------------------------------------------------------------------


def test_moving_a_group_to_another_existing_window_updates_two_targets() -> None:
    old = desired(line("web"), line("db"), line("api", window="tue-2330"))
    new = desired(line("web"), line("db", window="tue-2330"), line("api", window="tue-2330"))
    result = plan(new, as_actual(old))
    writes = result.writes()
    assert summary(writes) == [
        ("target", "update", PG_TARGET, "tagpatch-sun-0200"),
        ("target", "update", PG_TARGET, "tagpatch-tue-2330"),
    ]
    assert groups_of(writes[0].before) == {"tag_key": "Patch Group", "values": ["db", "web"]}
    assert groups_of(writes[0].after) == {"tag_key": "Patch Group", "values": ["web"]}
    assert writes[0].resource_id == target_id("tagpatch-sun-0200", PG_TARGET)
    assert groups_of(writes[1].before) == {"tag_key": "Patch Group", "values": ["api"]}
    assert groups_of(writes[1].after) == {"tag_key": "Patch Group", "values": ["api", "db"]}
    assert result.counts()["window"]["unchanged"] == 2
    assert result.counts()["task"]["unchanged"] == 2


def test_moving_the_only_group_of_a_tag_key_moves_its_target() -> None:
    old = desired(line("web"), line("db", key="PatchGroup"), line("api", window="tue-2330"))
    new = desired(line("web"), line("db", key="PatchGroup", window="tue-2330"), line("api", window="tue-2330"))
    result = plan(new, as_actual(old))
    writes = result.writes()
    assert summary(writes) == [
        ("task", "update", TASK, "tagpatch-sun-0200"),
        ("target", "delete", PGK_TARGET, "tagpatch-sun-0200"),
        ("target", "create", PGK_TARGET, "tagpatch-tue-2330"),
        ("task", "update", TASK, "tagpatch-tue-2330"),
    ]
    sun_task, sun_target, tue_target, tue_task = writes
    assert sun_task.before is not None and sun_task.after is not None
    assert sun_task.before["targets"] == [PG_TARGET, PGK_TARGET]
    assert sun_task.after["targets"] == [PG_TARGET]
    assert sun_target.resource_id == target_id("tagpatch-sun-0200", PGK_TARGET)
    assert groups_of(sun_target.before) == {"tag_key": "PatchGroup", "values": ["db"]}
    assert groups_of(tue_target.after) == {"tag_key": "PatchGroup", "values": ["db"]}
    assert tue_task.after is not None
    assert tue_task.after["targets"] == [PG_TARGET, PGK_TARGET]
    assert plan(new, as_actual(new)).writes() == ()


def test_moving_a_group_to_a_new_schedule_creates_that_window_only() -> None:
    old = desired(line("web"), line("db"))
    new = desired(line("web"), line("db", window=MON))
    result = plan(new, as_actual(old))
    mon = next(window.name for window in new.windows if window.settings.schedule == MON)
    assert summary(result.writes()) == [
        ("window", "create", mon, mon),
        ("target", "create", PG_TARGET, mon),
        ("task", "create", TASK, mon),
        ("target", "update", PG_TARGET, "tagpatch-sun-0200"),
    ]


def test_removing_the_last_instance_of_a_schedule_deletes_its_window() -> None:
    old = desired(line("web"), line("api", window="tue-2330"))
    new = desired(line("web"))
    result = plan(new, as_actual(old))
    writes = result.writes()
    assert summary(writes) == [("window", "delete", "tagpatch-tue-2330", "tagpatch-tue-2330")]
    assert writes[0].resource_id == window_id(1)
    assert writes[0].before is not None
    assert writes[0].before["schedule"] == "cron(30 23 ? * TUE#2 *)"
    assert writes[0].after is None
    assert result.problems == ()


# --- ownership ----------------------------------------------------------------------------------------------


def test_an_unowned_window_with_the_desired_name_is_blocked_and_left_alone() -> None:
    state = desired(line("web"), line("api", window="tue-2330"))
    actual = replace_window(as_actual(desired(line("other"))), "tagpatch-sun-0200", owned=False, duration_hours=5)
    result = plan(state, actual)
    sun = [change for change in result.changes if change.window == "tagpatch-sun-0200"]
    assert summary(tuple(sun)) == [("window", "blocked", "tagpatch-sun-0200", "tagpatch-sun-0200")]
    blocked = sun[0]
    assert blocked.resource_id == window_id(0)
    assert blocked.reason is not None
    assert "is not tagged tagpatch:managed=true" in blocked.reason
    assert f"({window_id(0)})" in blocked.reason
    assert blocked.before is not None and blocked.after is not None
    assert (blocked.before["duration_hours"], blocked.after["duration_hours"]) == (5, 3)
    assert result.problems == (Problem("window", "tagpatch-sun-0200", blocked.reason),)
    # the other window goes ahead; the unowned one is never counted for deletion
    assert summary(result.writes()) == [
        ("window", "create", "tagpatch-tue-2330", "tagpatch-tue-2330"),
        ("target", "create", PG_TARGET, "tagpatch-tue-2330"),
        ("task", "create", TASK, "tagpatch-tue-2330"),
    ]


def test_an_unowned_tagpatch_named_window_nobody_asks_for_is_ignored() -> None:
    result = plan(desired(line("web")), [hand_made_window("tagpatch-old", owned=False)])
    assert "tagpatch-old" not in {change.name for change in result.changes}
    assert "tagpatch-old" not in {change.window for change in result.changes}


def test_unowned_targets_and_tasks_in_an_owned_window_are_never_changed() -> None:
    state = desired(line("web"), line("db"))
    (window,) = as_actual(desired(line("web")))
    foreign_target = dataclasses.replace(window.targets[0], owner_information="someone-else")
    hand_target = ActualTarget("t-hand", "manual-target", (("tag:Patch Group", ("x",)),), None)
    prefixed_hand_target = ActualTarget("t-pre", "tagpatch-legacy", (("tag:Patch Group", ("y",)),), "ops")
    stale_target = ActualTarget("t-stale", "tagpatch-stale", (("tag:Patch Group", ("z",)),), OWNER_INFORMATION)
    foreign_task = dataclasses.replace(window.tasks[0], description="ops: weekly", max_concurrency="1")
    hand_task = dataclasses.replace(window.tasks[0], window_task_id="k-hand", name="manual-task", description=None)
    prefixed_hand_task = dataclasses.replace(
        window.tasks[0], window_task_id="k-pre", name="tagpatch-old-01", description="hand-made"
    )
    stale_task = dataclasses.replace(window.tasks[0], window_task_id="k-stale", name="tagpatch-stale-01")
    actual = dataclasses.replace(
        window,
        targets=(foreign_target, hand_target, prefixed_hand_target, stale_target),
        tasks=(foreign_task, hand_task, prefixed_hand_task, stale_task),
    )
    result = plan(state, [actual])
    assert summary(result.changes) == [
        ("window", "unchanged", "tagpatch-sun-0200", "tagpatch-sun-0200"),
        ("target", "blocked", PG_TARGET, "tagpatch-sun-0200"),
        ("task", "blocked", TASK, "tagpatch-sun-0200"),
        ("task", "delete", "tagpatch-stale-01", "tagpatch-sun-0200"),
        ("target", "delete", "tagpatch-stale", "tagpatch-sun-0200"),
    ]
    target_change, task_change = result.changes[1], result.changes[2]
    assert target_change.reason == (
        f"a target named {PG_TARGET} in window tagpatch-sun-0200 was not made by tagpatch; left unchanged"
    )
    assert target_change.resource_id == target_id("tagpatch-sun-0200", PG_TARGET)
    assert task_change.reason is not None
    assert "was not made by tagpatch" in task_change.reason
    assert result.changes[3].resource_id == "k-stale"
    assert result.changes[4].resource_id == "t-stale"
    untouchable = {"manual-target", "tagpatch-legacy", "manual-task", "tagpatch-old-01"}
    assert not untouchable & {change.name for change in result.changes}


def test_windows_not_named_tagpatch_never_appear_in_changes() -> None:
    actual = [
        *as_actual(desired(line("web"))),
        hand_made_window("prod-patching", index=901),
        hand_made_window("sun-0200", index=902),
    ]
    for state in (desired(line("web")), desired(line("api", window="tue-2330")), desired()):
        result = plan(state, actual, allow_mass_deletion=True)
        names = {change.name for change in result.changes} | {change.window for change in result.changes}
        assert not {"prod-patching", "sun-0200"} & names
        assert all(change.name.startswith("tagpatch-") for change in result.changes)


def test_a_tagged_window_without_the_tagpatch_prefix_is_never_deleted() -> None:
    actual = [*as_actual(desired(line("web"))), hand_made_window("legacy", owned=True, index=903)]
    result = plan(desired(line("web")), actual)
    assert result.writes() == ()


# --- the safety limit ---------------------------------------------------------------------------------------


def fleet_of(hours: range) -> DesiredState:
    return desired(*(line(f"g{hour}", window=f"cron(0 {hour} ? * THU *)") for hour in hours))


def doomed_ids(kept: range, before: range) -> set[str]:
    keep = {window.name for window in fleet_of(kept).windows}
    return {window.window_id for window in as_actual(fleet_of(before)) if window.name not in keep}


def test_deleting_more_than_the_share_of_owned_windows_is_blocked() -> None:
    actual = as_actual(fleet_of(range(8)))
    result = plan(fleet_of(range(5)), actual)
    assert result.writes() == ()
    doomed = [change for change in result.changes if change.action == "blocked"]
    assert {change.name for change in doomed} == {window.name for window in fleet_of(range(5, 8)).windows}
    assert all(change.kind == "window" and change.after is None for change in doomed)
    assert {change.resource_id for change in doomed} == doomed_ids(range(5), range(8))
    assert result.counts()["window"] == {"created": 0, "updated": 0, "deleted": 0, "unchanged": 5, "blocked": 3}
    (problem,) = result.problems
    assert (problem.kind, problem.name) == ("window", "safety-limit")
    assert "safety limit: this cycle would delete 3 of the 8 maintenance windows tagpatch owns" in problem.reason
    assert "(more than 25%, i.e. 2); nothing was deleted" in problem.reason
    assert '{"allow_mass_deletion": true}' in problem.reason
    assert all(change.reason == problem.reason for change in doomed)


def test_deleting_up_to_the_share_is_allowed() -> None:
    result = plan(fleet_of(range(6)), as_actual(fleet_of(range(8))))
    assert [change.action for change in result.writes()] == ["delete", "delete"]
    assert {change.resource_id for change in result.writes()} == doomed_ids(range(6), range(8))
    assert len(doomed_ids(range(6), range(8))) == 2
    assert result.problems == ()


def test_allow_mass_deletion_deletes_them_all() -> None:
    result = plan(desired(), as_actual(fleet_of(range(8))), allow_mass_deletion=True)
    assert result.counts()["window"]["deleted"] == 8
    assert [change.action for change in result.changes] == ["delete"] * 8
    assert result.problems == ()


def test_deleting_the_only_owned_window_is_allowed() -> None:
    result = plan(desired(), as_actual(fleet_of(range(1))))
    assert summary(result.writes()) == [("window", "delete", result.changes[0].name, result.changes[0].name)]
    assert result.problems == ()


def test_unowned_windows_do_not_raise_the_limit() -> None:
    actual = [
        *as_actual(fleet_of(range(4))),
        *(hand_made_window(f"tagpatch-hand-{index}", index=910 + index) for index in range(8)),
    ]
    result = plan(fleet_of(range(2)), actual)  # 2 of 4 owned: limit is max(1, floor(0.25 * 4)) = 1
    assert result.counts()["window"]["blocked"] == 2
    assert "delete 2 of the 4 maintenance windows" in result.problems[0].reason


# --- updates ------------------------------------------------------------------------------------------------


def test_a_changed_duration_updates_the_window() -> None:
    state = desired(line("web"))
    actual = replace_window(as_actual(state), "tagpatch-sun-0200", duration_hours=4)
    result = plan(state, actual)
    (write,) = result.writes()
    assert (write.kind, write.action, write.name, write.resource_id) == (
        "window",
        "update",
        "tagpatch-sun-0200",
        window_id(0),
    )
    assert write.before is not None and write.after is not None
    assert (write.before["duration_hours"], write.after["duration_hours"]) == (4, 3)
    assert {key for key in write.after if write.before[key] != write.after[key]} == {"duration_hours"}


def test_a_missing_timezone_reads_as_utc() -> None:
    state = desired(line("web"))
    assert plan(state, replace_window(as_actual(state), "tagpatch-sun-0200", timezone=None)).writes() == ()


def test_a_window_an_operator_disabled_stays_disabled_and_is_reported_as_paused() -> None:
    state = desired(line("web"))
    result = plan(state, replace_window(as_actual(state), "tagpatch-sun-0200", enabled=False))
    assert result.writes() == ()
    (window,) = [change for change in result.changes if change.kind == "window"]
    assert window.after is not None and window.after["enabled"] is False
    (paused,) = result.problems
    assert (paused.kind, paused.name) == ("window", "tagpatch-sun-0200")
    assert paused.reason.startswith("paused: ")


def test_a_paused_window_whose_settings_change_is_updated_and_stays_paused() -> None:
    state = desired(line("web"))
    actual = replace_window(as_actual(state), "tagpatch-sun-0200", enabled=False, duration_hours=5)
    (write,) = plan(state, actual).writes()
    assert write.before is not None and write.after is not None
    assert (write.action, write.before["enabled"], write.after["enabled"]) == ("update", False, False)


def test_a_changed_max_concurrency_updates_the_task() -> None:
    state = desired(line("web"))
    (window,) = as_actual(state)
    task = dataclasses.replace(window.tasks[0], max_concurrency="5%")
    (write,) = plan(state, [dataclasses.replace(window, tasks=(task,))]).writes()
    assert (write.kind, write.action, write.name, write.window) == ("task", "update", TASK, "tagpatch-sun-0200")
    assert write.resource_id == task_id("tagpatch-sun-0200", TASK)
    assert write.before is not None and write.after is not None
    assert (write.before["max_concurrency"], write.after["max_concurrency"]) == ("5%", "10%")


def test_a_task_registered_without_cutoff_behavior_is_updated_once_to_cancel_at_the_cutoff() -> None:
    """SSM's default, CONTINUE_TASK, patches and reboots past the window's cutoff; tagpatch's default is
    CANCEL_TASK, so a task an earlier version registered is updated, and then left alone."""
    state = desired(line("web"))
    (window,) = as_actual(state)
    task = dataclasses.replace(window.tasks[0], cutoff_behavior=None)  # SSM reports none: CONTINUE_TASK
    (write,) = plan(state, [dataclasses.replace(window, tasks=(task,))]).writes()
    assert (write.kind, write.action, write.name) == ("task", "update", TASK)
    assert write.before is not None and write.after is not None
    assert (write.before["cutoff_behavior"], write.after["cutoff_behavior"]) == ("CONTINUE_TASK", "CANCEL_TASK")
    assert plan(state, as_actual(state)).writes() == ()


def test_changed_target_values_update_the_target() -> None:
    state = desired(line("web"), line("db"))
    (window,) = as_actual(state)
    target = dataclasses.replace(window.targets[0], targets=(("tag:Patch Group", ("old",)),))
    (write,) = plan(state, [dataclasses.replace(window, targets=(target,))]).writes()
    assert (write.kind, write.action, write.name) == ("target", "update", PG_TARGET)
    assert write.before == {"targets": [{"Key": "tag:Patch Group", "Values": ["old"]}]}
    assert groups_of(write.after) == {"tag_key": "Patch Group", "values": ["db", "web"]}


def test_a_target_selecting_by_something_else_is_updated() -> None:
    state = desired(line("web"))
    (window,) = as_actual(state)
    target = dataclasses.replace(window.targets[0], targets=(("InstanceIds", ("i-1", "i-2")),))
    (write,) = plan(state, [dataclasses.replace(window, targets=(target,))]).writes()
    assert write.action == "update"
    assert write.before == {"instance_ids": ["i-1", "i-2"]}
    assert groups_of(write.after) == {"tag_key": "Patch Group", "values": ["web"]}


def held(group: str, instance_id: str) -> InstanceReport:
    found = line(group, cls="excepted", instance_id=instance_id)
    found["tag_class"], found["held"] = "ready", True
    return found


def test_a_hold_switches_a_same_named_target_from_tags_to_ids_by_update_and_back() -> None:
    plain = desired(line("web", instance_id="i-00000000000000001"))
    holding = desired(line("web", instance_id="i-00000000000000001"), held("web", "i-00000000000000002"))
    # The group's only tag target and its id target, had they one name, differ by Targets only.
    (ids_target,) = [t for t in holding.windows[0].targets if "-ids-" in t.name]
    (window,) = as_actual(plain)
    renamed = dataclasses.replace(ids_target, name=PG_TARGET)
    switched = dataclasses.replace(
        holding.windows[0],
        targets=(renamed,),
        tasks=(dataclasses.replace(holding.windows[0].tasks[0], target_names=(PG_TARGET,)),),
    )
    (write,) = plan(dataclasses.replace(holding, windows=(switched,)), [window]).writes()
    assert (write.kind, write.action, write.name) == ("target", "update", PG_TARGET)
    assert write.after == {"instance_ids": ["i-00000000000000001"]}


def test_a_hold_creates_id_targets_and_a_scan_task_and_its_end_deletes_them() -> None:
    plain = desired(line("web", instance_id="i-00000000000000001"), line("db"))
    holding = desired(line("web", instance_id="i-00000000000000001"), held("web", "i-00000000000000002"), line("db"))
    writes = plan(holding, as_actual(plain)).writes()
    assert sorted((w.kind, w.action, w.name) for w in writes) == [
        ("target", "create", "tagpatch-install-reboot-patch-group-held-01"),
        ("target", "create", "tagpatch-install-reboot-patch-group-ids-01"),
        ("target", "update", PG_TARGET),
        ("task", "create", "tagpatch-install-reboot-held-01"),
        ("task", "update", TASK),
    ]
    (scan,) = [w for w in writes if w.name == "tagpatch-install-reboot-held-01"]
    assert scan.after is not None and (scan.after["operation"], scan.after["reboot_option"]) == ("Scan", "NoReboot")
    assert plan(holding, as_actual(holding)).writes() == ()  # a rerun writes nothing
    back = plan(plain, as_actual(holding)).writes()
    assert sorted((w.kind, w.action, w.name) for w in back) == [
        ("target", "delete", "tagpatch-install-reboot-patch-group-held-01"),
        ("target", "delete", "tagpatch-install-reboot-patch-group-ids-01"),
        ("target", "update", PG_TARGET),
        ("task", "delete", "tagpatch-install-reboot-held-01"),
        ("task", "update", TASK),
    ]


# --- baseline registrations ---------------------------------------------------------------------------------


def test_registrations_create_unchanged_update_and_blocked() -> None:
    wanted = {
        ("new", "UBUNTU"): "pb-new",
        ("same", "UBUNTU"): "pb-same",
        ("ours", "WINDOWS"): "pb-win2",
        ("theirs", "WINDOWS"): "pb-win2",
        ("stale-ledger", "UBUNTU"): "pb-u2",
    }
    state = RegistrationState(
        actual={
            ("same", "UBUNTU"): "pb-same",
            ("ours", "WINDOWS"): "pb-win1",
            ("theirs", "WINDOWS"): "pb-manual",
            ("stale-ledger", "UBUNTU"): "pb-u1",
        },
        ledger={("ours", "WINDOWS"): "pb-win1", ("stale-ledger", "UBUNTU"): "pb-u0"},
    )
    result = plan_registrations(wanted, state)
    assert [(change.action, change.name) for change in result.changes] == [
        ("create", "new/UBUNTU"),
        ("update", "ours/WINDOWS"),
        ("unchanged", "same/UBUNTU"),
        ("blocked", "stale-ledger/UBUNTU"),
        ("blocked", "theirs/WINDOWS"),
    ]
    create, update, unchanged, stale, theirs = result.changes
    assert create.before is None
    assert create.after == {"patch_group": "new", "operating_system": "UBUNTU", "baseline_id": "pb-new"}
    assert update.before == {"patch_group": "ours", "operating_system": "WINDOWS", "baseline_id": "pb-win1"}
    assert update.after == {"patch_group": "ours", "operating_system": "WINDOWS", "baseline_id": "pb-win2"}
    assert unchanged.before == unchanged.after
    assert theirs.reason == (
        "patch group 'theirs' is registered for WINDOWS with baseline pb-manual, which tagpatch did not register; "
        "deregister it by hand to let tagpatch manage it"
    )
    assert stale.reason is not None
    assert "baseline pb-u1, which tagpatch did not register" in stale.reason
    assert all(change.kind == "registration" and change.window is None for change in result.changes)
    assert result.counts()["registration"] == {"created": 1, "updated": 1, "deleted": 0, "unchanged": 1, "blocked": 2}


def test_registrations_delete_only_what_the_ledger_recorded_and_is_still_there() -> None:
    state = RegistrationState(
        actual={
            ("old", "UBUNTU"): "pb-1",
            ("moved", "UBUNTU"): "pb-2",
            ("manual", "WINDOWS"): "pb-3",
            ("kept", "UBUNTU"): "pb-4",
        },
        ledger={
            ("old", "UBUNTU"): "pb-1",
            ("moved", "UBUNTU"): "pb-1",
            ("gone", "UBUNTU"): "pb-1",
            ("kept", "UBUNTU"): "pb-4",
        },
    )
    result = plan_registrations({("kept", "UBUNTU"): "pb-4"}, state)
    assert [(change.action, change.name) for change in result.changes] == [
        ("unchanged", "kept/UBUNTU"),
        ("delete", "old/UBUNTU"),
    ]
    delete = result.changes[1]
    assert delete.before == {"patch_group": "old", "operating_system": "UBUNTU", "baseline_id": "pb-1"}
    assert delete.after is None


def test_registrations_never_delete_what_is_not_in_the_ledger() -> None:
    state = RegistrationState(actual={("manual", "WINDOWS"): "pb-3", ("x", "UBUNTU"): "pb-1"}, ledger={})
    assert plan_registrations({}, state).changes == ()


def test_registration_problems_are_passed_through() -> None:
    problem = Problem("registration", "web", "no OS")
    result = plan_registrations({}, RegistrationState(), problems=[problem])
    assert result.problems == (problem,)
    assert result.changes == ()


# --- the wire form ------------------------------------------------------------------------------------------


def test_change_json_round_trip() -> None:
    old = desired(line("web"), line("db", key="PatchGroup"), line("api", window="tue-2330"))
    new = desired(line("web", window="roled"), line("db", key="PatchGroup", window="tue-2330"))
    actual = [*replace_window(as_actual(old), "tagpatch-sun-0200", owned=False), hand_made_window("tagpatch-x")]
    changes = [
        *plan(new, actual).changes,
        *plan_registrations(
            {("a", "UBUNTU"): "pb-1", ("b", "UBUNTU"): "pb-2"},
            RegistrationState({("b", "UBUNTU"): "pb-0", ("c", "UBUNTU"): "pb-9"}, {("c", "UBUNTU"): "pb-9"}),
        ).changes,
    ]
    assert {change.action for change in changes} == {"create", "update", "delete", "unchanged", "blocked"}
    for change in changes:
        data = change.to_json()
        assert set(data) == {"kind", "action", "name", "window", "before", "after", "reason", "resource_id"}
        assert Change.from_json(data) == change
        assert Change.from_json(json.loads(json.dumps(data))) == change


def test_a_baseline_takes_at_most_25_patch_groups_and_the_rest_are_reported() -> None:
    desired = {(f"group-{index:02d}", "UBUNTU"): "pb-0123456789abcdef0" for index in range(30)}
    state = RegistrationState(actual={("other", "UBUNTU"): "pb-0123456789abcdef0"})
    result = plan_registrations(desired, state)
    created = [change.name for change in result.changes if change.action == "create"]
    blocked = [change for change in result.changes if change.action == "blocked"]
    # One slot is taken by a registration tagpatch does not own.
    assert created == [f"group-{index:02d}/UBUNTU" for index in range(24)]
    assert [change.name for change in blocked] == [f"group-{index:02d}/UBUNTU" for index in range(24, 30)]
    assert "SSM quota: 25 patch groups per baseline" in str(blocked[0].reason)
    assert len(result.problems) == 6


def test_deregistering_frees_a_slot_on_the_baseline_in_the_same_plan() -> None:
    full = {(f"old-{index:02d}", "UBUNTU"): "pb-0123456789abcdef0" for index in range(25)}
    state = RegistrationState(actual=dict(full), ledger=dict(full))
    desired = {key: value for key, value in list(full.items())[1:]} | {("new", "UBUNTU"): "pb-0123456789abcdef0"}
    actions = {change.name: change.action for change in plan_registrations(desired, state).changes}
    assert actions["old-00/UBUNTU"] == "delete"
    assert actions["new/UBUNTU"] == "create"


def test_a_changed_task_setting_in_the_policy_is_an_update_not_a_recreate() -> None:
    before = desired(line("web"))
    document = copy.deepcopy(_DOCUMENT)
    document["defaults"]["task"]["max_concurrency"] = "25%"
    after = build_desired_state([line("web")], parse_policy(document, "<test>"))
    changed = plan_windows(after, as_actual(before), max_deletion_share=SHARE, allow_mass_deletion=False)
    (update,) = changed.writes()
    assert summary((update,)) == [("task", "update", TASK, update.window)]
    assert update.before is not None
    assert update.after is not None
    assert (update.before["max_concurrency"], update.after["max_concurrency"]) == ("10%", "25%")


# --- ownership inside a window, duplicates, and the safety limit for registrations ---------------------


def with_foreign_members(window: ActualWindow) -> ActualWindow:
    foreign_target = ActualTarget("their-target", "their-target", (("InstanceIds", ("i-1",)),), None)
    foreign_task = dataclasses.replace(window.tasks[0], window_task_id="their-task", name="their-task", description="x")
    return dataclasses.replace(window, targets=(*window.targets, foreign_target), tasks=(*window.tasks, foreign_task))


def test_a_window_no_longer_needed_that_holds_foreign_members_is_left_and_reported() -> None:
    before = desired(line("web"), line("db", window="tue-2330"))
    actual = [
        with_foreign_members(window) if window.name == "tagpatch-tue-2330" else window for window in as_actual(before)
    ]
    result = plan(desired(line("web")), actual, share=1.0)
    changes = [change for change in result.changes if change.window == "tagpatch-tue-2330"]
    assert summary(tuple(changes)) == [
        ("window", "blocked", "tagpatch-tue-2330", "tagpatch-tue-2330"),
        ("task", "delete", TASK, "tagpatch-tue-2330"),
        ("target", "delete", PG_TARGET, "tagpatch-tue-2330"),
    ]
    (kept,) = [window for window in actual if window.name == "tagpatch-tue-2330"]
    assert changes[0].resource_id == kept.window_id
    (problem,) = [p for p in result.problems if p.name == "tagpatch-tue-2330"]
    assert "target their-target" in problem.reason and "task their-task" in problem.reason
    # Only tagpatch's own members are written: nothing of theirs, and not the window.
    assert {change.resource_id for change in result.writes()} == {
        task_id("tagpatch-tue-2330", TASK),
        target_id("tagpatch-tue-2330", PG_TARGET),
    }


def test_an_unneeded_window_with_only_owned_members_is_deleted() -> None:
    before = desired(line("web"), line("db", window="tue-2330"))
    result = plan(desired(line("web")), as_actual(before), share=1.0)
    assert summary(result.writes()) == [("window", "delete", "tagpatch-tue-2330", "tagpatch-tue-2330")]
    assert result.problems == ()


def test_owned_windows_sharing_a_name_are_reduced_to_one_and_reported() -> None:
    state = desired(line("web"))
    (window,) = as_actual(state)
    duplicate = dataclasses.replace(window, window_id=window_id(7))
    result = plan(state, [duplicate, window])
    (write,) = result.writes()
    assert (write.kind, write.action, write.name, write.resource_id) == (
        "window",
        "delete",
        "tagpatch-sun-0200",
        window_id(7),
    )
    assert write.reason is not None and write.reason.startswith("duplicate:")
    (problem,) = result.problems
    assert window_id(7) in problem.reason and window_id(0) in problem.reason
    # The kept window is compared as usual.
    assert [c.action for c in result.changes if c.resource_id == window_id(0)] == ["unchanged"]


def test_a_duplicate_holding_foreign_members_is_left_and_reported() -> None:
    state = desired(line("web"))
    (window,) = as_actual(state)
    duplicate = with_foreign_members(dataclasses.replace(window, window_id=window_id(7)))
    result = plan(state, [window, duplicate])
    assert result.writes() == ()
    (problem,) = result.problems
    assert problem.reason.startswith("duplicate:") and "left in place" in problem.reason


def test_duplicates_do_not_count_against_the_deletion_limit() -> None:
    web = desired(line("web"))
    (window,) = as_actual(web)
    duplicates = [dataclasses.replace(window, window_id=window_id(index)) for index in (1, 2, 3)]
    result = plan(web, [window, *duplicates], share=0.25)
    assert [change.action for change in result.writes()] == ["delete", "delete", "delete"]


def test_a_mass_deregistration_is_blocked_by_the_safety_limit() -> None:
    owned = {(f"group-{index}", "UBUNTU"): "pb-1" for index in range(8)}
    state = RegistrationState(actual=dict(owned), ledger=dict(owned))
    result = plan_registrations({}, state, max_deletion_share=0.25, allow_mass_deletion=False)
    assert result.writes() == ()
    assert {change.action for change in result.changes} == {"blocked"}
    (problem,) = result.problems
    assert problem.name == "safety-limit"
    assert "deregister 8 of the 8 patch group registrations" in problem.reason
    allowed = plan_registrations({}, state, max_deletion_share=0.25, allow_mass_deletion=True)
    assert [change.action for change in allowed.writes()] == ["delete"] * 8


def test_deregistrations_within_the_safety_limit_go_ahead() -> None:
    owned = {(f"group-{index}", "UBUNTU"): "pb-1" for index in range(8)}
    state = RegistrationState(actual=dict(owned), ledger=dict(owned))
    wanted = {key: value for key, value in owned.items() if key != ("group-0", "UBUNTU")}
    wanted.pop(("group-1", "UBUNTU"))
    result = plan_registrations(wanted, state, max_deletion_share=0.25)
    assert [change.name for change in result.writes()] == ["group-0/UBUNTU", "group-1/UBUNTU"]
    assert result.problems == ()


# --- task ownership rests on tagpatch's own mark (issue #21) ------------------------------------------


def test_an_operators_tagpatch_named_task_is_never_touched_in_an_owned_window() -> None:
    # Once: any task named tagpatch-* whose description started with "tagpatch" counted as owned.
    state = desired(line("web"))
    (window,) = as_actual(state)
    backup = dataclasses.replace(
        window.tasks[0], window_task_id="k-backup", name="tagpatch-backup", description="tagpatch backup of /data"
    )
    result = plan(state, [dataclasses.replace(window, tasks=(*window.tasks, backup))])
    assert [change for change in result.changes if change.name == "tagpatch-backup"] == []
    assert {change.action for change in result.changes} == {"unchanged"}


def test_a_task_written_before_the_mark_is_recognised_once_and_given_the_mark() -> None:
    state = desired(line("web"))
    (window,) = as_actual(state)
    task = window.tasks[0]
    legacy = dataclasses.replace(task, description=f"tagpatch: {task.operation} with {task.reboot_option}")
    assert legacy.owned and not dataclasses.replace(legacy, task_arn="AWS-RunShellScript").owned
    (change,) = [c for c in plan(state, [dataclasses.replace(window, tasks=(legacy,))]).changes if c.kind == "task"]
    assert (change.action, change.name) == ("update", task.name)
    assert change.before is not None and change.after is not None
    assert (change.before["owner_mark"], change.after["owner_mark"]) == (False, True)
    # Marked, it is unchanged from then on.
    assert {c.action for c in plan(state, [window]).changes} == {"unchanged"}


RUNBOOK = BackupRunbook(
    "tagpatch-local-BackupThenPatchRunbook",
    "arn:aws:iam::123456789012:role/backup",
    "tagpatch-local-BackupSnapshotsThenPatchRunbook",
)


def backup_state() -> DesiredState:
    document = yaml.safe_load((REPO_ROOT / "policy" / "patch-policy.yaml").read_text())
    document["windows"]["sun-0200"]["task"] = {"backup": "image"}
    line = instance_line("web", window="sun-0200")
    return build_desired_state([line], parse_policy(document))


def test_a_backup_task_is_planned_as_the_runbooks_automation_task_and_its_read_back_is_unchanged() -> None:
    state = backup_state()
    created = plan_windows(state, [], max_deletion_share=SHARE, allow_mass_deletion=False, backup_runbook=RUNBOOK)
    (task,) = [change for change in created.changes if change.kind == "task"]
    assert task.after is not None
    assert (task.action, task.after["task_type"], task.after["document"], task.after["automation_role"]) == (
        "create",
        "AUTOMATION",
        RUNBOOK.document,
        RUNBOOK.role_arn,
    )
    (window,) = as_actual(state)
    (actual_task,) = window.tasks
    read_back = dataclasses.replace(
        actual_task,
        task_arn=RUNBOOK.document,
        task_type="AUTOMATION",
        automation_role=RUNBOOK.role_arn,
        hooks=hook_parameters({}),
    )
    for role, expected in ((RUNBOOK.role_arn, "unchanged"), ("arn:aws:iam::123456789012:role/other", "update")):
        actual = [dataclasses.replace(window, tasks=(dataclasses.replace(read_back, automation_role=role),))]
        rerun = plan_windows(state, actual, max_deletion_share=SHARE, allow_mass_deletion=False, backup_runbook=RUNBOOK)
        assert [change.action for change in rerun.changes if change.kind == "task"] == [expected]


def test_a_backup_task_without_the_stacks_runbook_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="BACKUP_RUNBOOK_NAME"):
        plan(backup_state(), [])
