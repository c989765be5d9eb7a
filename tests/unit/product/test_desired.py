"""Desired state: from validated instance lines and the patch policy to the SSM setup they ask for.

Pure code, so every rule is checked directly: window sharing, which instances count, target and
task chunking against the SSM quotas, stable valid names, baseline registrations, and that nothing
in the fleet's tags can make the build raise.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tagpatch import desired as desired_module
from tagpatch.classes import ReportClass
from tagpatch.desired import (
    MAX_NAME_LENGTH,
    DesiredState,
    DesiredWindow,
    build_desired_state,
    fit_to_quota,
    unpassable_roles,
    window_name,
)
from tagpatch.inventory import InstanceReport
from tagpatch.policy import PatchPolicy, TaskSettings, WindowSettings, load_policy, parse_policy

from .builders import instance_line

REPO_ROOT = Path(__file__).resolve().parents[3]
POLICY = load_policy(REPO_ROOT / "policy" / "patch-policy.yaml")

SSM_NAME = re.compile(r"^[a-zA-Z0-9_\-.]{3,128}$")
SUN = "cron(0 2 ? * SUN *)"  # the schedule of the policy window sun-0200, spelled inline
MON = "cron(0 2 ? * MON *)"
WED = "cron(0 3 ? * WED *)"
OPERATING_SYSTEMS = ("AMAZON_LINUX_2023", "AMAZON_LINUX_2", "UBUNTU", "REDHAT_ENTERPRISE_LINUX", "WINDOWS")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
TIMEZONES = (
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "America/Argentina/Buenos_Aires",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "Etc/GMT+5",
    "Etc/GMT-5",
)


def line(
    group: str | None = "web",
    key: str | None = "Patch Group",
    window: str | None = SUN,
    os: str | None = "AMAZON_LINUX_2023",
    cls: ReportClass = "ready",
    *,
    in_scope: bool = True,
    instance_id: str | None = None,
) -> InstanceReport:
    """An instance line; here the default window is the sun-0200 schedule spelled inline."""
    return instance_line(group, key, window, os, cls, in_scope=in_scope, instance_id=instance_id)


def build(*lines: InstanceReport, policy: PatchPolicy = POLICY) -> DesiredState:
    return build_desired_state(lines, policy)


def only_window(state: DesiredState) -> DesiredWindow:
    assert len(state.windows) == 1, [window.name for window in state.windows]
    return state.windows[0]


def all_names(state: DesiredState) -> list[str]:
    names: list[str] = []
    for window in state.windows:
        names.append(window.name)
        names.extend(target.name for target in window.targets)
        names.extend(task.name for task in window.tasks)
    return names


def custom_policy(windows: dict[str, Any]) -> PatchPolicy:
    return parse_policy({"version": 1, "windows": windows}, "<test>")


# --- one window per window definition ----------------------------------------------------------------


def test_two_groups_on_the_same_schedule_share_one_window() -> None:
    state = build(line("web", window=MON), line("db", window=MON), line("db", window=MON))
    window = only_window(state)
    assert window.settings == WindowSettings(MON, "UTC", 3, 1, None)
    assert window.name.startswith("tagpatch-cron-0-2-x-all-mon-all-utc-3h-c1-")
    assert window.instance_count == 3
    assert window.description == f"tagpatch: {MON} UTC"
    assert [(target.name, target.values) for target in window.targets] == [
        ("tagpatch-install-reboot-patch-group-01", ("db", "web"))
    ]
    assert state.problems == ()


def test_policy_window_and_identical_inline_definition_are_one_window_named_by_the_policy() -> None:
    state = build(line("web", window="sun-0200"), line("db", window=SUN))
    window = only_window(state)
    assert window.name == "tagpatch-sun-0200"
    assert window.settings == POLICY.windows["sun-0200"].window
    assert window.instance_count == 2
    assert window.targets[0].values == ("db", "web")


def test_every_policy_window_keeps_its_policy_name() -> None:
    state = build(line("a", window="sun-0200"), line("b", window="tue-2330"), line("c", window="scan-daily"))
    assert [window.name for window in state.windows] == [
        "tagpatch-scan-daily",
        "tagpatch-sun-0200",
        "tagpatch-tue-2330",
    ]
    tue = state.windows[2]
    assert tue.settings == WindowSettings("cron(30 23 ? * TUE#2 *)", "Europe/Berlin", 4, 1, 2)
    assert tue.description == "tagpatch: cron(30 23 ? * TUE#2 *) Europe/Berlin"


def test_different_timezone_or_duration_make_different_windows() -> None:
    policy = custom_policy(
        {
            "berlin": {"schedule": MON, "timezone": "Europe/Berlin"},
            "long": {"schedule": MON, "duration_hours": 4},
            "late-cutoff": {"schedule": MON, "duration_hours": 4, "cutoff_hours": 2},
        }
    )
    state = build(
        line("a", window="berlin"),
        line("b", window="long"),
        line("c", window="late-cutoff"),
        line("d", window=MON),  # inline: the policy's default window (UTC, 3h, cutoff 1)
        policy=policy,
    )
    by_name = {window.name: window for window in state.windows}
    assert set(by_name) >= {"tagpatch-berlin", "tagpatch-long", "tagpatch-late-cutoff"}
    assert len(by_name) == 4
    assert len({window.settings for window in state.windows}) == 4
    assert by_name["tagpatch-berlin"].settings.timezone == "Europe/Berlin"
    assert by_name["tagpatch-long"].settings.duration_hours == 4
    assert {window.targets[0].values for window in state.windows} == {("a",), ("b",), ("c",), ("d",)}


def test_inline_schedules_differing_only_in_schedule_are_different_windows() -> None:
    state = build(line("a", window=MON), line("b", window=WED))
    assert [window.settings.schedule for window in state.windows] == [MON, WED]
    assert state.windows[0].name != state.windows[1].name


def test_equivalent_spellings_of_a_schedule_share_the_window() -> None:
    state = build(line("web", window="sun-0200"), line("db", window="cron(0 2 ? * sun *)"))
    assert [window.name for window in state.windows] == ["tagpatch-sun-0200"]


# --- which instances count ----------------------------------------------------------------------------


def test_only_ready_and_stopped_instances_count() -> None:
    state = build(
        line("ready-group", cls="ready"),
        line("stopped-group", cls="stopped"),
        line("missing", cls="missing_tags"),
        line("invalid", cls="invalid_tags"),
        line("unmanaged", cls="unmanaged"),
    )
    window = only_window(state)
    assert window.instance_count == 2
    assert window.targets[0].values == ("ready-group", "stopped-group")
    assert {registration.patch_group for registration in state.registrations} == {"ready-group", "stopped-group"}


def test_instances_out_of_scope_still_define_the_windows() -> None:
    state = build(line("in", in_scope=True), line("out", in_scope=False), line("late", window=MON, in_scope=False))
    assert len(state.windows) == 2
    assert sum(window.instance_count for window in state.windows) == 3
    sun = next(window for window in state.windows if window.name == "tagpatch-sun-0200")
    assert sun.targets[0].values == ("in", "out")


def test_lines_without_group_key_or_window_are_skipped() -> None:
    state = build(line(group=None), line(group=""), line(key=None), line(window=None), line(window=""))
    assert state == DesiredState((), (), ())


# --- targets and tasks -----------------------------------------------------------------------------------


def test_targets_select_by_the_tag_key_the_instances_carry() -> None:
    state = build(line("web", key="Patch Group"), line("db", key="PatchGroup"), line("api", key="Patch Group"))
    window = only_window(state)
    assert [(target.name, target.tag_key, target.values) for target in window.targets] == [
        ("tagpatch-install-reboot-patch-group-01", "Patch Group", ("api", "web")),
        ("tagpatch-install-reboot-patchgroup-01", "PatchGroup", ("db",)),
    ]
    # Patch group AND window tag: a group split over two windows is patched once, in each member's own.
    assert window.targets[0].ssm_targets() == [
        {"Key": "tag:Patch Group", "Values": ["api", "web"]},
        {"Key": "tag:Maintenance Window", "Values": [SUN]},
    ]
    assert window.targets[1].ssm_targets() == [
        {"Key": "tag:PatchGroup", "Values": ["db"]},
        {"Key": "tag:Maintenance Window", "Values": [SUN]},
    ]
    assert len(window.tasks) == 1
    assert window.tasks[0].target_names == (
        "tagpatch-install-reboot-patch-group-01",
        "tagpatch-install-reboot-patchgroup-01",
    )


def test_target_values_are_sorted_and_unique() -> None:
    state = build(*(line(group) for group in ["zeta", "Alpha", "beta", "alpha", "beta", "ßeta", "10", "9"]))
    assert only_window(state).targets[0].values == ("10", "9", "Alpha", "alpha", "beta", "zeta", "ßeta")


def test_targets_are_chunked_at_50_values() -> None:
    groups = [f"g{index:03d}" for index in range(120)]
    window = only_window(build(*(line(group) for group in reversed(groups))))
    assert [target.name for target in window.targets] == [
        "tagpatch-install-reboot-patch-group-01",
        "tagpatch-install-reboot-patch-group-02",
        "tagpatch-install-reboot-patch-group-03",
    ]
    assert [len(target.values) for target in window.targets] == [50, 50, 20]
    assert [value for target in window.targets for value in target.values] == groups
    assert window.targets[1].values[0] == "g050"
    assert [(task.name, len(task.target_names)) for task in window.tasks] == [("tagpatch-install-reboot-01", 3)]


def test_tasks_take_at_most_10_targets() -> None:
    window = only_window(build(*(line(f"g{index:04d}") for index in range(1050))))  # 21 targets
    assert len(window.targets) == 21
    assert [(task.name, len(task.target_names)) for task in window.tasks] == [
        ("tagpatch-install-reboot-01", 10),
        ("tagpatch-install-reboot-02", 10),
        ("tagpatch-install-reboot-03", 1),
    ]
    assert window.tasks[2].target_names == ("tagpatch-install-reboot-patch-group-21",)


def test_more_than_100_targets_in_a_window_are_dropped_with_a_problem() -> None:
    groups = [f"g{index:05d}" for index in range(5060)]  # 102 targets of 50 values (the last has 10)
    state = build(*(line(group) for group in groups))
    window = only_window(state)
    assert len(window.targets) == 100
    assert window.targets[-1].name == "tagpatch-install-reboot-patch-group-100"
    assert window.targets[-1].values[-1] == "g04999"
    assert len(window.tasks) == 10
    assert all(len(task.target_names) == 10 for task in window.tasks)
    assert [problem.name for problem in state.problems] == [
        "tagpatch-sun-0200/tagpatch-install-reboot-patch-group-101",
        "tagpatch-sun-0200/tagpatch-install-reboot-patch-group-102",
    ]
    first, second = state.problems
    assert first.kind == "target"
    assert "SSM quota: 100 targets per window" in first.reason
    assert "window tagpatch-sun-0200 would need more than 100 targets" in first.reason
    assert "g05000, g05001, g05002, g05003, g05004 ..." in first.reason
    assert second.reason.endswith("g05050, g05051, g05052, g05053, g05054 ...")
    # all instances still counted, even those left out of the targets
    assert window.instance_count == 5060


def test_scan_daily_window_runs_a_scan_without_reboot() -> None:
    window = only_window(build(line("reports", window="scan-daily")))
    assert window.name == "tagpatch-scan-daily"
    assert [task.name for task in window.tasks] == ["tagpatch-scan-noreboot-01"]
    assert window.tasks[0].settings == TaskSettings("Scan", "NoReboot", "10%", "5%", 1, "service-linked")
    assert [target.name for target in window.targets] == ["tagpatch-scan-noreboot-patch-group-01"]
    assert window.tasks[0].target_names == ("tagpatch-scan-noreboot-patch-group-01",)


def test_one_task_per_distinct_task_settings() -> None:
    # Two policy windows with the same definition but different tasks share one window.
    policy = custom_policy(
        {
            "install": {"schedule": MON},
            "scan": {"schedule": MON, "task": {"operation": "Scan", "reboot_option": "NoReboot"}},
        }
    )
    window = only_window(build(line("a", window="install"), line("b", window="scan"), policy=policy))
    assert [(task.name, task.settings.operation, task.target_names) for task in window.tasks] == [
        ("tagpatch-install-reboot-01", "Install", ("tagpatch-install-reboot-patch-group-01",)),
        ("tagpatch-scan-noreboot-01", "Scan", ("tagpatch-scan-noreboot-patch-group-01",)),
    ]
    assert [target.values for target in window.targets] == [("a",), ("b",)]


def test_task_settings_differing_beyond_the_slug_get_distinct_names() -> None:
    policy = custom_policy({"fast": {"schedule": MON, "task": {"max_concurrency": "50%"}}})
    window = only_window(build(line("a", window="fast"), line("b", window=MON), policy=policy))
    assert len(window.tasks) == 2
    assert len({target.name for target in window.targets}) == len(window.targets)
    assert len({task.name for task in window.tasks}) == len(window.tasks)


def test_task_targets_are_targets_of_the_window() -> None:
    state = build(
        *(line(f"pg{index}", key="PatchGroup") for index in range(260)),
        *(line(f"g{index}") for index in range(70)),
        line("r", window="scan-daily"),
        line("t", window="tue-2330"),
    )
    for window in state.windows:
        target_names = [target.name for target in window.targets]
        assert len(set(target_names)) == len(target_names)
        used = [name for task in window.tasks for name in task.target_names]
        assert set(used) <= set(target_names)
        assert sorted(used) == sorted(target_names)  # every target is run by exactly one task
    sun = next(window for window in state.windows if window.name == "tagpatch-sun-0200")
    assert len(sun.targets) == 8  # 2 for "Patch Group" (50/20) + 6 for "PatchGroup" (5x50 + 10)
    assert [len(task.target_names) for task in sun.tasks] == [8]


# --- names -----------------------------------------------------------------------------------------------


def test_names_are_valid_ssm_names_with_the_tagpatch_prefix() -> None:
    state = build(
        line("a", window="sun-0200"),
        line("b", key="PatchGroup", window="scan-daily"),
        line("c", window="cron(15 10 ? * 6L 2022-2030)"),
        line("d", window="rate(7 days)"),
        line("e", window="at(2030-01-01T00:00:00)"),
        line("f", window="cron(0 0/4 ? * MON-FRI *)"),
    )
    names = all_names(state)
    assert len(state.windows) == 6
    for name in names:
        assert SSM_NAME.match(name), name
        assert name.startswith("tagpatch-"), name


def test_window_name_spells_out_an_inline_schedule() -> None:
    settings_ = WindowSettings("cron(0 2 ? * SUN#2 *)", "Europe/Berlin", 4, 1, 2)
    name = window_name(settings_, None)
    assert re.fullmatch(r"tagpatch-cron-0-2-x-all-sunn2-all-europe-berlin-4h-c1-o2-[0-9a-f]{6}", name), name
    assert window_name(settings_, "maint") == "tagpatch-maint"


def test_window_name_of_a_very_long_schedule_fits_128_characters() -> None:
    schedule = "cron(" + ",".join(str(minute) for minute in range(0, 60, 2)) + " 2 ? * SUN *)"
    name = window_name(WindowSettings(schedule, "America/Argentina/Buenos_Aires", 3, 1), None)
    assert len(name) <= MAX_NAME_LENGTH
    assert SSM_NAME.match(name)
    assert window_name(WindowSettings(schedule, "UTC", 3, 1), None) != name


@st.composite
def window_settings(draw: st.DrawFn) -> WindowSettings:
    schedule = draw(
        st.one_of(
            st.builds(
                "cron({} {} ? * {} *)".format,
                st.integers(0, 59),
                st.integers(0, 23),
                st.sampled_from(DAYS),
            ),
            st.builds("rate({} days)".format, st.integers(2, 30)),
            st.sampled_from(["rate(1 day)", "at(2030-01-01T00:00:00)", "cron(0 0/4 ? * MON-FRI *)"]),
        )
    )
    duration = draw(st.integers(1, 24))
    cutoff = draw(st.integers(0, duration - 1))
    offset = draw(st.none() | st.integers(1, 6)) if schedule.startswith("cron(") else None
    return WindowSettings(schedule, draw(st.sampled_from(TIMEZONES)), duration, cutoff, offset)


@settings(max_examples=200, deadline=None)
@given(window_settings())
def test_window_names_are_valid_and_stable(settings_: WindowSettings) -> None:
    name = window_name(settings_, None)
    assert SSM_NAME.match(name), name
    assert name.startswith("tagpatch-")
    copy = WindowSettings(
        settings_.schedule,
        settings_.timezone,
        settings_.duration_hours,
        settings_.cutoff_hours,
        settings_.offset_days,
    )
    assert window_name(copy, None) == name


@settings(max_examples=200, deadline=None)
@given(window_settings(), window_settings())
def test_distinct_window_definitions_get_distinct_names(first: WindowSettings, second: WindowSettings) -> None:
    if first != second:
        assert window_name(first, None) != window_name(second, None)
    else:
        assert window_name(first, None) == window_name(second, None)


fleet_lines = st.lists(
    st.builds(
        line,
        group=st.sampled_from(["web", "db", "api", "batch", "Üml-ä", "日本"]),
        key=st.sampled_from(["Patch Group", "PatchGroup"]),
        window=st.sampled_from(["sun-0200", "tue-2330", "scan-daily", SUN, MON, WED, "rate(7 days)"]),
        os=st.sampled_from(OPERATING_SYSTEMS),
        cls=st.sampled_from(["ready", "stopped"]),
    ),
    max_size=30,
)


@settings(max_examples=100, deadline=None)
@given(fleet_lines, st.randoms(use_true_random=False))
def test_same_fleet_in_any_order_gives_the_same_state(lines: list[InstanceReport], random: Any) -> None:
    shuffled = list(lines)
    random.shuffle(shuffled)
    first, second = build_desired_state(lines, POLICY), build_desired_state(shuffled, POLICY)
    assert first.windows == second.windows
    assert first.registrations == second.registrations
    for name in all_names(first):
        assert SSM_NAME.match(name), name
        assert name.startswith("tagpatch-")


# --- baseline registrations --------------------------------------------------------------------------------


def test_one_registration_per_group_and_os_with_the_policy_baseline() -> None:
    state = build(
        line("web", os="AMAZON_LINUX_2023"),
        line("web", os="AMAZON_LINUX_2023"),
        line("win", os="WINDOWS", window="tue-2330"),
        line("db", os="UBUNTU", cls="stopped"),
        line("skipped", os="UBUNTU", cls="unmanaged"),
    )
    assert [(r.patch_group, r.operating_system, r.baseline) for r in state.registrations] == [
        ("db", "UBUNTU", "custom:tagpatch-ubuntu"),
        ("web", "AMAZON_LINUX_2023", "custom:tagpatch-amazon-linux-2023"),
        ("win", "WINDOWS", "custom:tagpatch-windows-critical"),
    ]


def test_a_group_with_three_operating_systems_gets_three_registrations() -> None:
    state = build(line("mixed", os="WINDOWS"), line("mixed", os="UBUNTU"), line("mixed", os="AMAZON_LINUX_2"))
    assert [(r.operating_system, r.baseline) for r in state.registrations] == [
        ("AMAZON_LINUX_2", "custom:tagpatch-amazon-linux-2"),
        ("UBUNTU", "custom:tagpatch-ubuntu"),
        ("WINDOWS", "custom:tagpatch-windows-critical"),
    ]
    assert only_window(state).targets[0].values == ("mixed",)


def test_an_instance_without_os_is_a_problem_not_a_crash() -> None:
    state = build(line("web", os=None, instance_id="i-0abc"), line("web", os="UBUNTU"))
    assert [(r.patch_group, r.operating_system) for r in state.registrations] == [("web", "UBUNTU")]
    assert len(state.problems) == 1
    problem = state.problems[0]
    assert (problem.kind, problem.name) == ("registration", "web")
    assert "instance i-0abc has no known operating system" in problem.reason
    assert "'web'" in problem.reason
    # the instance is still patched by the window
    assert only_window(state).instance_count == 2


# --- schedules that should not have got this far ------------------------------------------------------------


def test_an_invalid_schedule_is_a_problem_and_no_window() -> None:
    state = build(line("a", window="cron(bad)"), line("b", window="cron(bad)"), line("c", window="sun-0200"))
    assert [window.name for window in state.windows] == ["tagpatch-sun-0200"]
    assert only_window(state).targets[0].values == ("c",)
    assert len(state.problems) == 1  # reported once per tag value
    problem = state.problems[0]
    assert (problem.kind, problem.name) == ("window", "cron(bad)")
    assert problem.reason.startswith("SSM would reject this schedule: ")
    assert [r.patch_group for r in state.registrations] == ["c"]


def test_an_unknown_window_name_is_a_problem() -> None:
    state = build(line("a", window="no-such-window"))
    assert state.windows == ()
    assert [(problem.kind, problem.name) for problem in state.problems] == [("window", "no-such-window")]
    assert "must be cron(...), rate(...) or at(...)" in state.problems[0].reason


# --- the account quota ------------------------------------------------------------------------------------


def desired_window(name: str, instance_count: int) -> DesiredWindow:
    return DesiredWindow(name, WindowSettings(SUN), "tagpatch: test", (), (), instance_count)


def test_fit_to_quota_keeps_the_biggest_windows_ties_by_name() -> None:
    windows = [
        desired_window("tagpatch-a", 5),
        desired_window("tagpatch-d", 10),
        desired_window("tagpatch-c", 10),
        desired_window("tagpatch-b", 1),
        desired_window("tagpatch-e", 5),
    ]
    kept, problems = fit_to_quota(windows, 3)
    assert [window.name for window in kept] == ["tagpatch-a", "tagpatch-c", "tagpatch-d"]
    assert [(problem.kind, problem.name) for problem in problems] == [
        ("window", "tagpatch-e"),
        ("window", "tagpatch-b"),
    ]
    assert "quota of 50 maintenance windows per Region is reached" in problems[0].reason
    assert f"(5 instances on schedule {SUN} are not scheduled)" in problems[0].reason
    assert "(1 instances" in problems[1].reason
    assert problems[0].reason.endswith("merge schedules in the tags or raise the quota")


def test_fit_to_quota_keeps_everything_that_fits() -> None:
    windows = [desired_window("tagpatch-b", 1), desired_window("tagpatch-a", 2)]
    kept, problems = fit_to_quota(windows, 50)
    assert [window.name for window in kept] == ["tagpatch-a", "tagpatch-b"]
    assert problems == ()


@pytest.mark.parametrize("slots", [0, -1, -40])
def test_fit_to_quota_without_slots_keeps_nothing(slots: int) -> None:
    windows = [desired_window("tagpatch-a", 2), desired_window("tagpatch-b", 7)]
    kept, problems = fit_to_quota(windows, slots)
    assert kept == ()
    assert [problem.name for problem in problems] == ["tagpatch-b", "tagpatch-a"]


# --- nothing in the tags can make it raise -------------------------------------------------------------------

valid_crons = st.builds("cron({} {} ? * {} *)".format, st.integers(0, 59), st.integers(0, 23), st.sampled_from(DAYS))
garbage_windows = st.sampled_from(
    ["cron(bad)", "cron(0 2 ? * SUN *", "rate(0 days)", "rate(1 days)", "at(nope)", "cron()", "(", "cron(0 2 * * * *)"]
)
window_values = st.one_of(
    st.none(), valid_crons, st.sampled_from(sorted(POLICY.windows)), garbage_windows, st.text(max_size=30)
)
random_lines = st.lists(
    st.builds(
        line,
        group=st.none() | st.text(max_size=20),
        key=st.none() | st.sampled_from(["Patch Group", "PatchGroup"]),
        window=window_values,
        os=st.none() | st.sampled_from(OPERATING_SYSTEMS) | st.text(max_size=12),
        cls=st.sampled_from(["ready", "stopped", "missing_tags", "invalid_tags", "unmanaged", "", "READY"]),
        in_scope=st.booleans(),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(random_lines)
def test_build_desired_state_never_raises(lines: list[InstanceReport]) -> None:
    state = build_desired_state(lines, POLICY)
    schedulable = [
        entry
        for entry in lines
        if entry["class"] in {"ready", "stopped"}
        and entry["patch_group"]
        and entry["patch_group_key"]
        and entry["maintenance_window"]
    ]
    assert sum(window.instance_count for window in state.windows) <= len(schedulable)
    assert len({window.name for window in state.windows}) == len(state.windows)
    for name in all_names(state):
        assert SSM_NAME.match(name), name
        assert name.startswith("tagpatch-")
    for window in state.windows:
        assert 1 <= len(window.targets) <= 100
        assert all(1 <= len(target.values) <= 50 for target in window.targets)
        assert all(1 <= len(task.target_names) <= 10 for task in window.tasks)
    for problem in state.problems:
        assert problem.kind in {"window", "registration", "target", "task"}
        assert problem.reason


def test_a_group_split_over_two_windows_is_targeted_in_each_by_its_members_window_tag() -> None:
    state = build(line("web", window="sun-0200"), line("web", window="tue-2330"), line("web", window=SUN))
    targets = {window.name: window.targets for window in state.windows}
    assert set(targets) == {"tagpatch-sun-0200", "tagpatch-tue-2330"}
    # sun-0200 and the identical inline schedule are one window: both tag spellings select it.
    (sun,) = targets["tagpatch-sun-0200"]
    assert sun.values == ("web",) and sun.window_values == (SUN, "sun-0200")
    (tue,) = targets["tagpatch-tue-2330"]
    assert tue.values == ("web",) and tue.window_values == ("tue-2330",)


def test_the_window_key_without_a_space_gets_its_own_target() -> None:
    (window,) = build(line("web"), {**line("db"), "window_key": "MaintenanceWindow"}).windows
    assert [(t.name, t.window_key, t.values) for t in window.targets] == [
        ("tagpatch-install-reboot-patch-group-01", "Maintenance Window", ("web",)),
        ("tagpatch-install-reboot-patch-group-maintenancewindow-01", "MaintenanceWindow", ("db",)),
    ]


def test_a_task_role_the_stack_cannot_pass_is_reported() -> None:
    document = yaml.safe_load((REPO_ROOT / "policy" / "patch-policy.yaml").read_text())
    document["defaults"]["task"]["service_role"] = "arn:aws:iam::123456789012:role/patching"
    state = build_desired_state([line("web")], parse_policy(document, "<test>"))
    (problem,) = unpassable_roles(state.windows, None)
    assert "PatchTaskServiceRoleArn=(empty)" in problem.reason
    assert unpassable_roles(state.windows, "arn:aws:iam::123456789012:role/patching") == ()
    assert unpassable_roles(build(line("web")).windows, None) == ()  # service-linked needs no role


# --- what the targets select -------------------------------------------------------------------------


def selects(target: Any, group: str, window_tag: str) -> bool:
    """SSM's rule for one of tagpatch's targets: both tag values, exactly as written."""
    return group in target.values and window_tag in target.window_values


def test_each_route_into_a_shared_window_carries_only_its_own_window_values() -> None:
    # A Scan window and an inline schedule with the same definition share one window, with a Scan
    # and an Install task. A Scan-route instance must not be selected by the Install task.
    policy = custom_policy({"scan": {"schedule": MON, "task": {"operation": "Scan", "reboot_option": "NoReboot"}}})
    window = only_window(build(line("web", window="scan"), line("web", window=MON), policy=policy))
    tasks = {task.settings.operation: task for task in window.tasks}
    targets = {target.name: target for target in window.targets}

    def operations_selecting(window_tag: str) -> list[str]:
        return sorted(
            operation
            for operation, task in tasks.items()
            if any(selects(targets[name], "web", window_tag) for name in task.target_names)
        )

    assert operations_selecting("scan") == ["Scan"]
    assert operations_selecting(MON) == ["Install"]


def test_more_than_50_window_values_are_split_across_targets_not_dropped() -> None:
    # 60 spellings of one schedule (extra spaces inside are the same SSM schedule) and 55 groups.
    spellings = ["cron(0" + " " * width + "2 ? * SUN *)" for width in range(1, 61)]
    groups = [f"g{index:02d}" for index in range(55)]
    lines = [line(groups[index % 55], window=spelling) for index, spelling in enumerate(spellings)]
    lines += [line(group) for group in groups]
    state = build(*lines)
    window = only_window(state)
    assert not state.problems
    assert all(len(t.values) <= 50 and len(t.window_values) <= 50 for t in window.targets)
    # Every (group, window value) pair an instance carries is selected by exactly one target.
    for instance in lines:
        assert instance["patch_group"] is not None and instance["maintenance_window"] is not None
        hits = [t for t in window.targets if selects(t, instance["patch_group"], instance["maintenance_window"])]
        assert len(hits) == 1, instance
    assert len(window.targets) == 4  # 2 chunks of groups x 2 chunks of window values
    assert sum(len(task.target_names) for task in window.tasks) == 4


def rejected_line(tags: dict[str, str], *, registered: bool = True) -> InstanceReport:
    result = line(tags.get("Patch Group"), window=tags.get("Maintenance Window"), cls="invalid_tags")
    result["targeting_tags"] = tags
    result["ping_status"] = "Online" if registered else None
    return result


def test_an_invalid_instance_that_the_targets_still_select_is_reported_with_the_task() -> None:
    conflict = rejected_line({"Patch Group": "web", "PatchGroup": "db", "Maintenance Window": SUN})
    unregistered = rejected_line(
        {"Patch Group": "web", "PatchGroup": "db", "Maintenance Window": SUN}, registered=False
    )
    padded = rejected_line({"Patch Group": "web", "Maintenance Window": f" {SUN}"})
    state = build(line("web"), line("db", key="PatchGroup"), conflict, unregistered, padded)
    window = only_window(state)
    reported = {problem.name: problem.reason for problem in state.problems if problem.kind == "instance"}
    # Only the conflict is selected (by both targets); SSM never selects an unregistered node and
    # matches the padded value as written.
    assert set(reported) == {conflict["instance_id"]}
    assert f"{window.name}/{window.tasks[0].name}" in reported[conflict["instance_id"]]
    assert "twice" in reported[conflict["instance_id"]]


# --- holds: a patch exception with hold: true ------------------------------------------------------------


def held_line(group: str = "web", *, instance_id: str | None = None, window: str | None = SUN) -> InstanceReport:
    found = line(group, window=window, cls="excepted", instance_id=instance_id)
    found["tag_class"] = "ready"
    found["held"] = True
    return found


def test_a_held_instance_takes_its_group_out_of_the_tag_targets_into_id_targets() -> None:
    state = build(
        line("db"),
        line("web", instance_id="i-00000000000000003"),
        line("web", instance_id="i-00000000000000001"),
        held_line(instance_id="i-00000000000000002"),
    )
    window = only_window(state)
    by_name = {target.name: target for target in window.targets}
    assert by_name["tagpatch-install-reboot-patch-group-01"].values == ("db",)  # web left the tag target
    others = by_name["tagpatch-install-reboot-patch-group-ids-01"]
    assert others.instance_ids == ("i-00000000000000001", "i-00000000000000003")
    assert others.ssm_targets() == [{"Key": "InstanceIds", "Values": ["i-00000000000000001", "i-00000000000000003"]}]
    held = by_name["tagpatch-install-reboot-patch-group-held-01"]
    assert held.ssm_targets() == [{"Key": "InstanceIds", "Values": ["i-00000000000000002"]}]
    install, scan = window.tasks
    assert (install.name, install.settings.operation) == ("tagpatch-install-reboot-01", "Install")
    assert install.target_names == (
        "tagpatch-install-reboot-patch-group-01",
        "tagpatch-install-reboot-patch-group-ids-01",
    )
    # Same settings but Scan, and never a reboot: a held instance is reported on, not touched.
    assert scan.name == "tagpatch-install-reboot-held-01"
    assert scan.settings == TaskSettings("Scan", "NoReboot", "10%", "5%", 1, "service-linked")
    assert scan.target_names == ("tagpatch-install-reboot-patch-group-held-01",)
    (hold,) = state.holds
    assert (hold.window, hold.patch_group, hold.held) == ("tagpatch-sun-0200", "web", ("i-00000000000000002",))
    assert hold.installed == ("i-00000000000000001", "i-00000000000000003")
    assert state.problems == ()


def test_id_targets_are_chunked_at_50_sorted_and_the_same_in_any_order() -> None:
    ids = [f"i-{index:017x}" for index in range(1, 131)]
    lines = [line("web", instance_id=instance_id) for instance_id in ids[:120]]
    lines += [held_line(instance_id=instance_id) for instance_id in ids[120:]]
    window = only_window(build(*lines))
    chunks = [t.instance_ids for t in window.targets if "-ids-" in t.name]
    assert [len(chunk) for chunk in chunks] == [50, 50, 20]
    assert [i for chunk in chunks for i in chunk] == ids[:120]
    assert [t.name for t in window.targets] == [
        "tagpatch-install-reboot-patch-group-ids-01",
        "tagpatch-install-reboot-patch-group-ids-02",
        "tagpatch-install-reboot-patch-group-ids-03",
        "tagpatch-install-reboot-patch-group-held-01",
    ]
    # No tag target is left for the route: web was its only group.
    assert [task.name for task in window.tasks] == ["tagpatch-install-reboot-01", "tagpatch-install-reboot-held-01"]
    assert build(*reversed(lines)) == build(*lines)


def test_without_a_held_instance_nothing_changes() -> None:
    plain = build(line("web", instance_id="i-00000000000000001"), line("db"))
    excepted = line("web", cls="excepted", instance_id="i-00000000000000001")
    excepted["tag_class"] = "ready"
    assert build(excepted, line("db")).windows == plain.windows
    assert plain.holds == ()


def test_a_hold_in_a_scan_route_changes_nothing() -> None:
    state = build(held_line("reports", window="scan-daily"), line("reports", window="scan-daily"))
    window = only_window(state)
    assert [target.name for target in window.targets] == ["tagpatch-scan-noreboot-patch-group-01"]
    assert state.holds == () and state.problems == ()


def test_a_hold_too_large_for_the_quota_keeps_the_group_tag_based_and_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:

    monkeypatch.setattr(desired_module, "MAX_TARGETS_PER_WINDOW", 2)
    lines = [line("db"), line("web"), held_line("web", instance_id="i-00000000000000009")]
    state = build(*lines)
    window = only_window(state)
    # web needs an id target and a held target beside db's tag target: 3 > 2. Patching goes on.
    assert [(t.name, t.values) for t in window.targets] == [("tagpatch-install-reboot-patch-group-01", ("db", "web"))]
    assert [task.name for task in window.tasks] == ["tagpatch-install-reboot-01"]
    (problem,) = state.problems
    assert (problem.kind, problem.name) == ("hold", "tagpatch-sun-0200/web")
    assert "i-00000000000000009" in problem.reason and "NOT held back" in problem.reason
    assert state.holds == ()


def test_holds_that_fit_are_kept_when_a_later_one_does_not(monkeypatch: pytest.MonkeyPatch) -> None:

    monkeypatch.setattr(desired_module, "MAX_TARGETS_PER_WINDOW", 3)
    lines = [line("db"), line("app"), held_line("app"), held_line("web"), *(line("web") for _ in range(50))]
    state = build(*lines)
    # Held groups of a route share their id targets. app's hold fits in 3 targets beside the tag
    # target of db and web; web's 50 others would make the ids 51, two targets: 4 in all.
    assert [hold.patch_group for hold in state.holds] == ["app"]
    assert [(p.kind, p.name) for p in state.problems] == [("hold", "tagpatch-sun-0200/web")]
    by_name = {t.name: t for t in only_window(state).targets}
    assert set(by_name) == {
        "tagpatch-install-reboot-patch-group-01",
        "tagpatch-install-reboot-patch-group-ids-01",
        "tagpatch-install-reboot-patch-group-held-01",
    }
    assert by_name["tagpatch-install-reboot-patch-group-01"].values == ("db", "web")


def test_held_groups_of_a_route_share_their_id_targets() -> None:
    state = build(line("app"), held_line("app"), line("web"), held_line("web"))
    assert [hold.patch_group for hold in state.holds] == ["app", "web"]
    assert [(t.name, len(t.instance_ids)) for t in only_window(state).targets] == [
        ("tagpatch-install-reboot-patch-group-ids-01", 2),
        ("tagpatch-install-reboot-patch-group-held-01", 2),
    ]


def test_no_hold_is_applied_in_a_window_already_over_a_quota(monkeypatch: pytest.MonkeyPatch) -> None:

    monkeypatch.setattr(desired_module, "MAX_TARGETS_PER_WINDOW", 1)
    # Two routes (one per patch group key) need two tag targets: one is already cut. Holding web would
    # only move the cut, so it is not applied, and both problems are said.
    state = build(line("db", key="PatchGroup"), line("web"), held_line("web"))
    assert state.holds == ()
    assert sorted(problem.kind for problem in state.problems) == ["hold", "target"]
    assert [t.name for t in only_window(state).targets] == ["tagpatch-install-reboot-patch-group-01"]


def test_an_install_task_asking_for_a_snapshot_is_its_own_backup_task() -> None:
    # The stack's snapshot runbook snapshots, then patches: the Install task stays, named for its backup.
    document = yaml.safe_load((REPO_ROOT / "policy" / "patch-policy.yaml").read_text())
    document["windows"]["sun-0200"]["task"] = {"backup": "snapshot"}
    state = build(line("web", window="sun-0200"), line("db", window="sun-0200"), policy=parse_policy(document))
    window = only_window(state)
    assert [(task.name, task.settings.operation, task.settings.backup) for task in window.tasks] == [
        ("tagpatch-install-reboot-backup-snapshot-01", "Install", "snapshot")
    ]
    assert state.problems == ()


def test_an_install_task_asking_for_an_image_is_its_own_backup_task() -> None:
    # The stack's runbook images, then patches: the Install task stays, named apart from one without a backup.
    document = yaml.safe_load((REPO_ROOT / "policy" / "patch-policy.yaml").read_text())
    document["windows"]["sun-0200"]["task"] = {"backup": "image"}
    state = build(line("web", window="sun-0200"), policy=parse_policy(document))
    window = only_window(state)
    assert [(task.name, task.settings.operation, task.settings.backup) for task in window.tasks] == [
        ("tagpatch-install-reboot-backup-image-01", "Install", "image")
    ]
    assert state.problems == ()


def test_patch_groups_whose_backups_differ_get_tasks_of_their_own_in_one_window() -> None:
    # The window asks for an image; db's entry asks for snapshots and web's takes the backup away: three
    # tasks, each targeting only its own groups (split targets), so no group gets a backup it did not ask for.
    document = yaml.safe_load((REPO_ROOT / "policy" / "patch-policy.yaml").read_text())
    document["windows"]["sun-0200"]["task"] = {"backup": "image"}
    document["patch_groups"] = {"db": {"backup": "snapshot"}, "web": {"backup": "none"}}
    state = build(
        line("web", window="sun-0200"),
        line("db", window="sun-0200"),
        line("app", window="sun-0200"),
        policy=parse_policy(document),
    )
    window = only_window(state)
    targets = {target.name: target for target in window.targets}
    groups = {
        task.settings.backup: sorted(group for name in task.target_names for group in targets[name].values)
        for task in window.tasks
    }
    assert groups == {"image": ["app"], "snapshot": ["db"], None: ["web"]}
    assert all(task.settings.operation == "Install" for task in window.tasks)
    assert state.problems == ()


def gated_line(group: str, instance_id: str | None = None) -> InstanceReport:
    """An instance of a rollout wave whose gate is closed, as TagValidation writes it."""
    found = line(group, instance_id=instance_id)
    found["held"] = True
    found["gate"] = {"wave": "prod", "after": "canary", "open": False, "reason": "held until wave canary passes"}
    return found


def test_a_gated_group_too_large_by_id_is_held_by_tag_for_the_scan_task(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(desired_module, "MAX_TARGETS_PER_WINDOW", 2)
    # db's tag target plus web's held id target would fit, but not beside web's 51 held ids (two targets).
    state = build(line("db"), *(gated_line("web") for _ in range(51)))
    window = only_window(state)
    assert [(t.name, t.values, len(t.instance_ids)) for t in window.targets] == [
        ("tagpatch-install-reboot-patch-group-01", ("db",), 0),
        ("tagpatch-install-reboot-patch-group-held-tags-01", ("web",), 0),
    ]
    assert [(task.name, task.settings.operation, task.target_names) for task in window.tasks] == [
        ("tagpatch-install-reboot-01", "Install", ("tagpatch-install-reboot-patch-group-01",)),
        ("tagpatch-install-reboot-held-01", "Scan", ("tagpatch-install-reboot-patch-group-held-tags-01",)),
    ]
    assert state.problems == ()
    (hold,) = state.holds
    assert (hold.patch_group, len(hold.held), hold.installed) == ("web", 51, ())


def test_an_exception_hold_too_large_is_still_patched_where_a_gated_one_would_not_be(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(desired_module, "MAX_TARGETS_PER_WINDOW", 1)
    excepted = build(line("db"), held_line("web"), line("web"))
    assert [task.settings.operation for task in only_window(excepted).tasks] == ["Install"]
    assert "NOT held back" in excepted.problems[0].reason
    gated = build(line("db"), gated_line("web"), gated_line("web"))
    window = only_window(gated)
    assert [(task.name, task.settings.operation) for task in window.tasks] == [
        ("tagpatch-install-reboot-held-01", "Scan")
    ]
    (problem,) = gated.problems
    assert (problem.kind, problem.name) == ("hold", "tagpatch-sun-0200/tagpatch-install-reboot")
    assert "not patched either: patch group(s) db" in problem.reason
    assert [hold.patch_group for hold in gated.holds] == ["web"]


def test_a_task_name_hash_is_unchanged_by_the_backup_key_unless_a_backup_is_asked_for() -> None:
    # Two settings sharing a slug get a hash of their settings: a stack upgraded to know `backup` must
    # not rename (delete and re-create) the tasks of policies that never ask for one.
    first, second = TaskSettings(priority=1), TaskSettings(priority=2)
    slugs = desired_module.task_slugs([first, second])
    fields = ("operation", "reboot_option", "max_concurrency", "max_errors", "priority", "service_role", "hooks")
    assert slugs[first] == "install-reboot-" + desired_module._short_hash(*(getattr(first, f) for f in fields))
    imaged = replace(first, backup="image")
    with_backup = desired_module.task_slugs([first, second, imaged])
    assert len(set(with_backup.values())) == 3 and with_backup[first] == slugs[first]
    # A backup task is an AUTOMATION task, named apart: SSM cannot update a task's type.
    assert with_backup[imaged] == "install-reboot-backup-image"
