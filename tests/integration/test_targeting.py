"""After a real cycle, each instance is selected by exactly the patch tasks its tags and the policy ask for.

The judge is the simulator's target resolution (`tagpatch_local.simulator.targets`), which reads the
windows, targets and tasks tagpatch registered and the instances' EC2 tags as SSM would when the
window runs. What each instance *should* get is worked out here from its tags, the fleet author's
`expect` and the policy file read as plain YAML, never from tagpatch's desired-state code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from tagpatch_local.fleet import FleetInstance, GeneratorSpec, generate_fleet, load_fleet
from tagpatch_local.report import instance_lines
from tagpatch_local.runner import ACCOUNT_ID, SimulatedAccount
from tagpatch_local.simulator.targets import TaskSelection, account_task_selections

from .support import reported, run_ok

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "policy" / "patch-policy.yaml"
WINDOW_TAG = "Maintenance Window"
SCHEDULE_PREFIXES = ("cron(", "rate(", "at(")


@dataclass(frozen=True)
class Intent:
    """A window definition and the task settings that matter to an instance."""

    schedule: str
    timezone: str
    duration: int
    cutoff: int
    offset: int | None
    operation: str
    reboot_option: str


def _spelling(schedule: str) -> str:
    # Schedule names are case-insensitive in SSM; compare spellings, not meanings.
    return " ".join(schedule.split()).upper()


def intent_of(window_tag: str, policy: Mapping[str, Any]) -> Intent | None:
    """What a `Maintenance Window` value asks for under a policy document (the policy file's rules)."""
    defaults = policy.get("defaults") or {}
    default_window = {"timezone": "UTC", "duration_hours": 3, "cutoff_hours": 1, **(defaults.get("window") or {})}
    default_task = {"operation": "Install", "reboot_option": "RebootIfNeeded", **(defaults.get("task") or {})}
    named = (policy.get("windows") or {}).get(window_tag)
    if named is not None:
        window = {**default_window, **named}
        task = {**default_task, **(named.get("task") or {})}
    elif window_tag.startswith(SCHEDULE_PREFIXES):
        window = {**default_window, "schedule": window_tag}
        task = default_task
    else:
        return None
    return Intent(
        schedule=_spelling(window["schedule"]),
        timezone=window["timezone"],
        duration=window["duration_hours"],
        cutoff=window["cutoff_hours"],
        offset=window.get("offset_days"),
        operation=task["operation"],
        reboot_option=task["reboot_option"],
    )


def intent_of_task(account: SimulatedAccount, selection: TaskSelection) -> Intent:
    window = account.client("ssm").get_maintenance_window(WindowId=selection.window_id)
    return Intent(
        schedule=_spelling(window["Schedule"]),
        timezone=window.get("ScheduleTimezone", "UTC"),
        duration=window["Duration"],
        cutoff=window["Cutoff"],
        offset=window.get("ScheduleOffset"),
        operation=selection.task_parameters["Operation"][0],
        reboot_option=selection.task_parameters["RebootOption"][0],
    )


def check_targeting(
    account: SimulatedAccount, fleet: Sequence[FleetInstance], ids: Sequence[str], policy: Mapping[str, Any]
) -> dict[str, int]:
    """Run a cycle and check every instance's selection; returns counts of what was checked."""
    result = run_ok(account)
    selections = account_task_selections(ACCOUNT_ID, account.region)
    lines = {line["instance_id"]: line for line in instance_lines(account, result)}
    named_in_report: dict[str, str] = {}
    for problem in reported(account, result):
        if problem["kind"] == "instance":
            named_in_report[problem["name"]] = named_in_report.get(problem["name"], "") + problem["reason"]
    selecting: dict[str, list[TaskSelection]] = {}
    for selection in selections:
        # A task reaches a node through two of its targets only when the node carries both patch
        # group keys; AWS does not say whether it is then invoked twice, so the report must warn.
        reached = Counter(node for nodes in selection.by_target.values() for node in nodes)
        for node in (node for node, times in reached.items() if times > 1):
            said = [*lines[node]["warnings"], named_in_report.get(node, "")]
            assert any("twice" in text for text in said), lines[node]
        for node in selection.instances:
            selecting.setdefault(node, []).append(selection)
    intents = {selection.task_id: intent_of_task(account, selection) for selection in selections}

    counts = {"selected": 0, "not_selected": 0, "reported": 0}
    for instance_id, planned in zip(ids, fleet, strict=True):
        tasks = selecting.get(instance_id, [])
        names = sorted(f"{s.window_name}/{s.task_name}" for s in tasks)
        where = (planned.tags, names)
        if planned.ssm == "unmanaged":
            # SSM never selects a node that is not registered with it.
            assert not tasks, where
        elif planned.expect in ("ready", "stopped"):
            # Exactly one task, in the window and with the settings the tag asks for. A stopped
            # instance is selected too: its invocation is undeliverable (Delayed), which the
            # validation report says.
            wanted = intent_of(planned.tags[WINDOW_TAG], policy)
            assert len(tasks) == 1, where
            assert intents[tasks[0].task_id] == wanted, where
        elif planned.expect == "unmanaged":
            # Registered but disconnected: a tag target may select it (undeliverable), never wrongly.
            wanted = intent_of(planned.tags[WINDOW_TAG], policy)
            assert len(tasks) <= 1, where
            assert all(intents[t.task_id] == wanted for t in tasks), where
        else:
            # Tags tagpatch rejects: selected by nothing, or the report names exactly what SSM will
            # still run on it.
            report = named_in_report.get(instance_id, "")
            every_task = {f"{s.window_name}/{s.task_name}" for s in selections}
            assert sorted(name for name in every_task if name in report) == names, (where, report)
            counts["reported"] += bool(tasks)
        counts["selected" if tasks else "not_selected"] += 1
    return counts


def test_demo_fleet_each_instance_is_selected_by_exactly_the_tasks_it_asks_for(account: SimulatedAccount) -> None:
    fleet = load_fleet(REPO / "fleets" / "demo.yaml")
    ids = account.seed(fleet)
    counts = check_targeting(account, fleet, ids, yaml.safe_load(POLICY.read_text()))
    assert counts["selected"] > 250
    # web-prod-03 carries "Patch Group" = web-prod and "PatchGroup" = web-staging: SSM still selects it.
    assert counts["reported"] >= 1


def _policy_with_shared_scan_window(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """The repo's policy, with scan-daily's definition equal to the defaults for cron(0 6 ? * * *)."""
    policy = yaml.safe_load(POLICY.read_text())
    policy["windows"]["scan-daily"].update({"timezone": "UTC", "duration_hours": 3, "cutoff_hours": 1})
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    return path, policy


def _explicit(tags: dict[str, str], expect: str, **kwargs: Any) -> FleetInstance:
    return FleetInstance(tags=MappingProxyType(tags), os="AMAZON_LINUX_2023", expect=expect, **kwargs)  # type: ignore[arg-type]


def test_generated_fleet_each_instance_is_selected_by_exactly_the_tasks_it_asks_for(
    account: SimulatedAccount, tmp_path: Path
) -> None:
    path, policy = _policy_with_shared_scan_window(tmp_path)
    account.use_policy(path)
    fleet = generate_fleet(
        GeneratorSpec(
            count=400,
            seed=11,
            patch_groups={"web": 3, "db": 2, "batch": 1},
            # scan-daily (Scan) and cron(0 6 ? * * *) (Install, from defaults) share one window.
            schedules={"scan-daily": 2, "cron(0 6 ? * * *)": 2, "sun-0200": 2, "cron(0 2 ? * SUN *)": 1, "tue-2330": 1},
            os={"AMAZON_LINUX_2023": 2, "UBUNTU": 1, "WINDOWS": 1},
            owners={"team-a": 1},
            patch_group_key={"Patch Group": 2, "PatchGroup": 1},
            bad_tag_share=0.08,
            stopped_share=0.04,
            unmanaged_share=0.04,
            connection_lost_share=0.03,
        )
    )
    fleet += [
        # SSM matches tag values exactly: a padded value never matches a target written without it.
        _explicit({"Name": "pad-window", "Patch Group": "web", WINDOW_TAG: " sun-0200"}, "invalid_tags"),
        _explicit({"Name": "pad-window-2", "Patch Group": "web", WINDOW_TAG: "cron(0 6 ? * * *) "}, "invalid_tags"),
        _explicit({"Name": "pad-group", "Patch Group": "web ", WINDOW_TAG: "sun-0200"}, "invalid_tags"),
        _explicit(
            {"Name": "conflict", "Patch Group": "web", "PatchGroup": "db", WINDOW_TAG: "scan-daily"}, "invalid_tags"
        ),
    ]
    ids = account.seed(fleet)
    counts = check_targeting(account, fleet, ids, policy)
    assert counts["selected"] > 300
    assert counts["reported"] >= 1
