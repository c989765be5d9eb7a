"""Window upsert and baseline association through the real state machine, cycle after cycle."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from tagpatch_local import simulator
from tagpatch_local.runner import SimulatedAccount

from .support import change_keys, changes, instance, registrations, reported, run_ok, ssm_windows, window_targets

REPO = Path(__file__).resolve().parents[2]
SAT = "cron(0 3 ? * SAT *)"
SSM_WRITES = ("ssm:Create", "ssm:Update", "ssm:Delete", "ssm:Register", "ssm:Deregister", "ssm:AddTags")


def ssm_writes(result: object) -> dict[str, int]:
    calls = result.calls  # type: ignore[attr-defined]
    return {call: n for call, n in calls.items() if call.startswith(SSM_WRITES)}


def test_first_run_builds_what_the_tags_ask_for_and_a_rerun_writes_nothing(account: SimulatedAccount) -> None:
    account.seed(
        [
            instance("web", "sun-0200"),
            instance("web", "sun-0200", key="PatchGroup"),
            instance("db", SAT, os="REDHAT_ENTERPRISE_LINUX"),
            instance("db", SAT, os="WINDOWS", state="stopped", ssm="connection_lost"),
            instance("broken", "cron(0 2 * * SUN *)"),  # invalid: reported, not scheduled
        ]
    )
    first = run_ok(account)
    windows = ssm_windows(account)
    assert len(windows) == 2
    (sat_name,) = set(windows) - {"tagpatch-sun-0200"}
    assert sat_name.startswith("tagpatch-cron-0-3-x-all-sat-all-utc-3h-c1-")
    assert windows[sat_name]["Schedule"] == SAT
    sun = windows["tagpatch-sun-0200"]
    assert (sun["Schedule"], sun["Duration"], sun["Cutoff"]) == ("cron(0 2 ? * SUN *)", 3, 1)
    targets = {t["Targets"][0]["Key"]: t for t in window_targets(account, sun["WindowId"])}
    assert targets["tag:Patch Group"]["Targets"][0]["Values"] == ["web"]
    assert targets["tag:PatchGroup"]["Targets"][0]["Values"] == ["web"]
    assert all(t["OwnerInformation"] == "tagpatch" for t in targets.values())
    tags = account.client("ssm").list_tags_for_resource(ResourceType="MaintenanceWindow", ResourceId=sun["WindowId"])
    assert {"Key": "tagpatch:managed", "Value": "true"} in tags["TagList"]
    task = account.client("ssm").describe_maintenance_window_tasks(WindowId=sun["WindowId"])["Tasks"][0]
    assert task["TaskArn"] == "AWS-RunPatchBaseline"
    assert task["Type"] == "RUN_COMMAND"
    # The stopped Windows instance still counts: its group is registered for WINDOWS.
    assert set(registrations(account)) == {
        ("web", "AMAZON_LINUX_2023"),
        ("db", "REDHAT_ENTERPRISE_LINUX"),
        ("db", "WINDOWS"),
    }
    assert first.output is not None
    assert first.output["windows"]["counts"]["window"]["created"] == 2

    second = run_ok(account)
    assert ssm_writes(second) == {}
    assert second.resource_write_calls == {}
    assert changes(account, second) == []
    assert second.output is not None
    assert second.output["windows"]["windows_to_apply"] == []
    assert second.output["windows"]["counts"]["window"]["unchanged"] == 2
    assert second.output["baselines"]["counts"]["unchanged"] == 3


def test_plan_mode_writes_nothing_and_lists_what_the_next_apply_does(account: SimulatedAccount) -> None:
    account.seed([instance("web", "sun-0200"), instance("db", "tue-2330", os="WINDOWS")])
    planned = run_ok(account, {"mode": "plan"})
    assert ssm_writes(planned) == {}
    assert ssm_windows(account) == {}
    applied = run_ok(account)
    assert change_keys(account, planned) == change_keys(account, applied)
    assert len(change_keys(account, applied)) > 0
    # The plan shows before and after for every change.
    window_change = next(c for c in changes(account, planned) if c["kind"] == "window")
    assert window_change["action"] == "create" and window_change["before"] is None
    assert window_change["after"]["schedule"]


def test_one_retag_changes_only_what_it_implies(account: SimulatedAccount) -> None:
    account.seed([instance("web", "sun-0200", name="web-1"), instance("db", "sun-0200"), instance("api", "tue-2330")])
    run_ok(account)
    account.client("ec2").create_tags(
        Resources=[_instance_id(account, "web-1")], Tags=[{"Key": "Maintenance Window", "Value": "tue-2330"}]
    )
    result = run_ok(account)
    assert {(c["kind"], c["action"], c["window"]) for c in changes(account, result)} == {
        ("target", "update", "tagpatch-sun-0200"),
        ("target", "update", "tagpatch-tue-2330"),
    }
    assert set(ssm_writes(result)) == {"ssm:UpdateMaintenanceWindowTarget"}
    windows = ssm_windows(account)
    values = window_targets(account, windows["tagpatch-tue-2330"]["WindowId"])[0]["Targets"][0]["Values"]
    assert values == ["api", "web"]


def test_removing_the_last_instance_of_a_schedule_deletes_its_window(account: SimulatedAccount) -> None:
    account.seed([instance("web", "sun-0200"), instance("db", "tue-2330", name="db-1")])
    run_ok(account)
    account.client("ec2").terminate_instances(InstanceIds=[_instance_id(account, "db-1")])
    result = run_ok(account)
    assert ("window", "delete", "tagpatch-tue-2330", "tagpatch-tue-2330") in change_keys(account, result)
    assert set(ssm_windows(account)) == {"tagpatch-sun-0200"}
    assert ("db", "AMAZON_LINUX_2023") not in registrations(account)


def test_an_unowned_window_with_the_same_name_is_reported_and_left_alone(account: SimulatedAccount) -> None:
    ssm = account.client("ssm")
    hand_made = ssm.create_maintenance_window(
        Name="tagpatch-sun-0200", Schedule="cron(0 4 ? * SAT *)", Duration=2, Cutoff=0, AllowUnassociatedTargets=True
    )["WindowId"]
    ssm.create_maintenance_window(
        Name="team-db-window", Schedule="cron(0 5 ? * SAT *)", Duration=2, Cutoff=0, AllowUnassociatedTargets=True
    )
    account.seed([instance("web", "sun-0200"), instance("db", "tue-2330")])
    result = run_ok(account)
    assert any("not tagged tagpatch:managed=true" in p["reason"] for p in reported(account, result))
    windows = ssm_windows(account)
    assert windows["tagpatch-sun-0200"]["WindowId"] == hand_made
    assert windows["tagpatch-sun-0200"]["Schedule"] == "cron(0 4 ? * SAT *)"
    assert window_targets(account, hand_made) == []
    assert "tagpatch-tue-2330" in windows and "team-db-window" in windows
    # And the hand-made window survives even when tagpatch wants nothing at all.
    assert all(c["window"] != "team-db-window" for c in changes(account, result))


def test_more_schedules_than_the_window_quota_fits_what_it_can_and_reports_the_rest(
    account: SimulatedAccount,
) -> None:
    fleet = [
        instance(f"g{hour:02d}-{minute}", f"cron({minute} {hour} ? * MON *)")
        for hour in range(24)
        for minute in (0, 30)
    ]
    fleet += [instance("big", "sun-0200") for _ in range(3)]
    fleet += [instance("g00-0", "cron(15 1 ? * FRI *)"), instance("g00-0", "cron(45 1 ? * FRI *)")]
    account.seed(fleet)  # 51 distinct schedules
    result = run_ok(account)
    windows = ssm_windows(account)
    assert len(windows) == 50
    assert "tagpatch-sun-0200" in windows  # the biggest window is kept
    quota = [p for p in reported(account, result) if "quota of 50 maintenance windows" in p["reason"]]
    assert len(quota) == 1


def test_a_patch_group_with_three_operating_systems_is_registered_for_each(account: SimulatedAccount) -> None:
    account.seed([instance("mixed", "sun-0200", os=os) for os in ("AMAZON_LINUX_2023", "UBUNTU", "WINDOWS")])
    run_ok(account)
    registered = registrations(account)
    assert set(registered) == {("mixed", "AMAZON_LINUX_2023"), ("mixed", "UBUNTU"), ("mixed", "WINDOWS")}
    # The policy's defaults: the stack's own baseline for every OS.
    assert registered == {
        ("mixed", "AMAZON_LINUX_2023"): account.physical_id("AmazonLinux2023Baseline"),
        ("mixed", "UBUNTU"): account.physical_id("UbuntuBaseline"),
        ("mixed", "WINDOWS"): account.physical_id("WindowsCriticalBaseline"),
    }


def test_aws_default_leaves_the_group_unregistered_and_says_so(account: SimulatedAccount, tmp_path: Path) -> None:
    policy = yaml.safe_load((REPO / "policy" / "patch-policy.yaml").read_text())
    policy["baselines"]["UBUNTU"] = "aws-default"
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    account.use_policy(path)
    account.seed([instance("mixed", "sun-0200", os=os) for os in ("AMAZON_LINUX_2023", "UBUNTU", "SUSE")])
    result = run_ok(account)
    # Neither the listed aws-default nor an OS the policy does not list is registered with anything.
    assert set(registrations(account)) == {("mixed", "AMAZON_LINUX_2023")}
    reasons = [p["reason"] for p in reported(account, result) if p["kind"] == "registration"]
    for os in ("UBUNTU", "SUSE"):
        assert any(f"leaves {os} on aws-default" in reason for reason in reasons), os


def test_a_registration_tagpatch_did_not_make_is_never_moved(account: SimulatedAccount) -> None:
    ssm = account.client("ssm")
    own = ssm.create_patch_baseline(Name="team-ubuntu", OperatingSystem="UBUNTU")["BaselineId"]
    ssm.register_patch_baseline_for_patch_group(BaselineId=own, PatchGroup="web")
    account.seed([instance("web", "sun-0200", os="UBUNTU")])
    result = run_ok(account)
    assert registrations(account)[("web", "UBUNTU")] == own
    assert any("which tagpatch did not register" in p["reason"] for p in reported(account, result))


def test_a_policy_that_names_a_missing_baseline_is_reported_and_the_rest_goes_on(
    account: SimulatedAccount, tmp_path: Path
) -> None:
    policy = yaml.safe_load((REPO / "policy" / "patch-policy.yaml").read_text())
    policy["baselines"]["UBUNTU"] = "pb-0123456789abcdef0"
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    account.use_policy(path)
    account.seed([instance("web", "sun-0200", os="UBUNTU"), instance("web", "sun-0200")])
    result = run_ok(account)
    assert any(
        "pb-0123456789abcdef0" in p["reason"] and "does not exist" in p["reason"] for p in reported(account, result)
    )
    assert set(registrations(account)) == {("web", "AMAZON_LINUX_2023")}
    assert "tagpatch-sun-0200" in ssm_windows(account)


def test_a_window_ssm_rejects_does_not_stop_the_others_and_the_cycle_fails(
    account: SimulatedAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(simulator.quotas, "MAX_TARGETS_PER_WINDOW", 1)
    # sun-0200 needs two targets (both tag keys); tue-2330 needs one.
    account.seed(
        [instance("web", "sun-0200"), instance("web", "sun-0200", key="PatchGroup"), instance("db", "tue-2330")]
    )
    result = account.run_cycle()
    assert (result.status, result.error) == ("FAILED", "WindowChangesRejected")
    assert result.output is not None  # what the Fail state received
    failed = [item for item in result.output["window_results"] if "error" in item]
    assert [item["window"] for item in failed] == ["tagpatch-sun-0200"]
    assert failed[0]["error"] == "WindowChangeRejected"
    problem = next(p for p in reported(account, result) if p["name"] == "tagpatch-sun-0200")
    assert "ResourceLimitExceededException" in problem["reason"]
    tue = ssm_windows(account)["tagpatch-tue-2330"]
    assert len(window_targets(account, tue["WindowId"])) == 1
    assert result.output["baselines"]["counts"]["created"] == 2


def test_the_safety_limit_stops_mass_deletion_until_the_input_allows_it(account: SimulatedAccount) -> None:
    keep = instance("web", "sun-0200")
    others = [instance(f"g{i}", f"cron(0 {i} ? * MON *)", name=f"gone-{i}") for i in range(4)]
    account.seed([keep, *others])
    run_ok(account)
    assert len(ssm_windows(account)) == 5
    account.client("ec2").terminate_instances(InstanceIds=[_instance_id(account, f"gone-{i}") for i in range(4)])

    blocked = run_ok(account)
    assert len(ssm_windows(account)) == 5
    assert any(
        "safety limit" in p["reason"] and "allow_mass_deletion" in p["reason"] for p in reported(account, blocked)
    )

    allowed = run_ok(account, {"allow_mass_deletion": True})
    assert set(ssm_windows(account)) == {"tagpatch-sun-0200"}
    assert allowed.output is not None
    assert allowed.output["windows"]["counts"]["window"]["deleted"] == 4


def test_a_scoped_cycle_never_deletes_another_groups_setup(account: SimulatedAccount) -> None:
    account.seed([instance("web", "sun-0200"), instance("db", "tue-2330", os="UBUNTU")])
    run_ok(account)
    result = run_ok(account, {"patch_groups": ["web"]})
    assert ssm_writes(result) == {}
    assert set(ssm_windows(account)) == {"tagpatch-sun-0200", "tagpatch-tue-2330"}
    assert ("db", "UBUNTU") in registrations(account)


def _instance_id(account: SimulatedAccount, name: str) -> str:
    reservations = account.client("ec2").describe_instances(
        Filters=[
            {"Name": "tag:Name", "Values": [name]},
            {"Name": "instance-state-name", "Values": ["running", "stopped"]},
        ]
    )["Reservations"]
    (instance_id,) = [i["InstanceId"] for r in reservations for i in r["Instances"]]
    return str(instance_id)


@pytest.mark.parametrize("size", [30, 600])
def test_ssm_reads_depend_on_windows_not_instances(size: int) -> None:
    groups, windows = ["web", "db", "api"], ["sun-0200", "tue-2330", "scan-daily"]
    fleet = [instance(groups[i % 3], windows[i % 3]) for i in range(size)]
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.seed(fleet)
        run_ok(account)
        rerun = run_ok(account)
    # Summed over both functions (both read tags: the windows' and the scan association's).
    reconcile_reads = dict(
        sum(
            (
                Counter(
                    {
                        call: count
                        for call, count in rerun.calls_by_function[function].items()
                        if call.startswith("ssm:")
                    }
                )
                for function in ("WindowUpsertFunction", "BaselineAssociationFunction")
            ),
            Counter(),
        )
    )
    # The same for 30 and for 600 instances: 1 listing, 3 tag lookups, 3 x (targets, tasks, task details);
    # and the patch scan's: 1 listing by name, 1 tag lookup, 1 description.
    assert reconcile_reads == {
        "ssm:DescribeMaintenanceWindows": 1,
        "ssm:ListTagsForResource": 4,
        "ssm:ListAssociations": 1,
        "ssm:DescribeAssociation": 1,
        "ssm:DescribeMaintenanceWindowTargets": 3,
        "ssm:DescribeMaintenanceWindowTasks": 3,
        "ssm:GetMaintenanceWindowTask": 3,
        "ssm:DescribePatchGroups": 1,
    }


def test_a_patch_task_left_to_continue_past_the_cutoff_is_updated_once_to_cancel(account: SimulatedAccount) -> None:
    """The policy's default cutoff_behavior, CANCEL_TASK, reaches a task an earlier version registered
    with SSM's default, once; the rerun writes nothing."""
    account.seed([instance("web", "sun-0200")])
    run_ok(account)
    ssm = account.client("ssm")
    window_id = ssm_windows(account)["tagpatch-sun-0200"]["WindowId"]
    (task,) = ssm.describe_maintenance_window_tasks(WindowId=window_id)["Tasks"]
    assert task["CutoffBehavior"] == "CANCEL_TASK"
    ssm.update_maintenance_window_task(
        WindowId=window_id, WindowTaskId=task["WindowTaskId"], CutoffBehavior="CONTINUE_TASK"
    )

    updated = run_ok(account)
    assert ssm_writes(updated) == {"ssm:UpdateMaintenanceWindowTask": 1}
    got = ssm.get_maintenance_window_task(WindowId=window_id, WindowTaskId=task["WindowTaskId"])
    assert got["CutoffBehavior"] == "CANCEL_TASK"
    assert ssm_writes(run_ok(account)) == {}
