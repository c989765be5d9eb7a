"""The patch scan association: what the policy asks for, and the plan that keeps SSM in step (pure)."""

from __future__ import annotations

from dataclasses import replace

from tagpatch.policy import ScanSettings, parse_policy
from tagpatch.scan import SCAN_ASSOCIATION_NAME, ActualScan, ScanAssociation, desired_scan, plan_scan

DAILY = ScanAssociation(schedule="rate(1 day)", targets=(("tag-key", ("Patch Group", "PatchGroup")),))
# TagValidation's lines, as far as the scan reads them.
GROUPED = [{"patch_group": "web", "patch_group_key": "Patch Group", "ping_status": "Online"}]
INVALID_GROUP = [{"patch_group": None, "patch_group_key": "PatchGroup", "ping_status": "Online"}]
UNGROUPED = [{"patch_group": None, "patch_group_key": None, "ping_status": "Online"}]
UNMANAGED = [{"patch_group": "web", "patch_group_key": "Patch Group", "ping_status": None}]


def test_the_default_policy_asks_for_a_daily_scan_of_every_patch_group_tag() -> None:
    wanted = desired_scan(parse_policy({"version": 1}).scan, GROUPED)
    assert wanted == DAILY
    assert desired_scan(parse_policy({"version": 1}).scan, INVALID_GROUP) == DAILY
    assert wanted.request() == {
        "AssociationName": SCAN_ASSOCIATION_NAME,
        "Parameters": {"Operation": ["Scan"], "RebootOption": ["NoReboot"]},
        "Targets": [{"Key": "tag-key", "Values": ["Patch Group", "PatchGroup"]}],
        "ScheduleExpression": "rate(1 day)",
        "MaxConcurrency": "10%",
        "MaxErrors": "100%",
    }


def test_all_managed_targets_every_managed_node_and_off_asks_for_none() -> None:
    every = desired_scan(ScanSettings(covers="all-managed", schedule="cron(0 4 ? * * *)"), UNGROUPED)
    assert every is not None
    assert (every.targets, every.schedule) == ((("InstanceIds", ("*",)),), "cron(0 4 ? * * *)")
    assert desired_scan(ScanSettings(enabled=False), GROUPED) is None


def test_a_fleet_with_nothing_the_scan_covers_needs_no_scan() -> None:
    assert desired_scan(ScanSettings(), UNGROUPED) is None
    assert desired_scan(ScanSettings(), []) is None
    assert desired_scan(ScanSettings(covers="all-managed"), UNMANAGED) is None


def test_settings_survive_the_plan_s_json() -> None:
    assert ScanAssociation.from_json(DAILY.to_json()) == DAILY


def actions(plan: object) -> list[tuple[str, str | None]]:
    return [(change.action, change.resource_id) for change in plan.changes]  # type: ignore[attr-defined]


def test_a_missing_scan_is_created_and_an_identical_one_left_alone() -> None:
    assert actions(plan_scan(DAILY, [])) == [("create", None)]
    assert plan_scan(DAILY, [ActualScan("a-1", DAILY)]).writes() == ()  # a rerun writes nothing


def test_a_changed_setting_is_an_update_of_the_owned_association() -> None:
    drifted = replace(DAILY, schedule="rate(2 days)")
    plan = plan_scan(DAILY, [ActualScan("a-1", drifted)])
    assert actions(plan) == [("update", "a-1")]
    (change,) = plan.changes
    assert (change.kind, change.before, change.after) == ("scan", drifted.to_json(), DAILY.to_json())


def test_switching_the_scan_off_deletes_only_what_tagpatch_owns() -> None:
    assert actions(plan_scan(None, [ActualScan("a-1", DAILY)])) == [("delete", "a-1")]
    assert plan_scan(None, []).changes == ()


def test_two_owned_scans_are_reduced_to_the_first() -> None:
    plan = plan_scan(DAILY, [ActualScan("b-2", DAILY), ActualScan("a-1", DAILY)])
    assert actions(plan) == [("delete", "b-2"), ("unchanged", "a-1")]
