"""Patch exceptions through the real state machine: an excepted instance is reported, not alerted,
its owner and governance are told before and at expiry, and after expiry the rules apply again."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from tagpatch.inventory import decode_jsonl_gz
from tagpatch_local.cli import Console, Marks, report_cycle
from tagpatch_local.fleet import GeneratorSpec, generate_fleet
from tagpatch_local.runner import SimulatedAccount

from .support import instance, reported, run_ok
from .test_cycle_safety import metric_values
from .test_patch_monitoring import FRIDAY_NOON, owner_queue

REPO = Path(__file__).resolve().parents[2]


def artifact(account: SimulatedAccount, key: str) -> list[dict[str, Any]]:
    body = account.client("s3").get_object(Bucket=account.artifact_bucket, Key=key)["Body"].read()
    return list(decode_jsonl_gz(body))


def by_name(account: SimulatedAccount, key: str) -> dict[str, dict[str, Any]]:
    names = {line["instance_id"]: line.get("name") for line in artifact(account, key)}
    return {str(names[line["instance_id"]]): line for line in artifact(account, key)}


def write_exceptions(path: Path, *entries: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({"version": 1, "settings": {"notice_days": [7]}, "exceptions": list(entries)}))
    return path


def test_an_excepted_instance_is_reported_not_alerted_until_its_exception_expires(tmp_path: Path) -> None:  # noqa: PLR0915 - one story over four cycles, read top to bottom
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.set_clock(FRIDAY_NOON)
        ids = dict(
            zip(
                ("web-bad", "vendor-box"),
                account.seed(
                    [instance("web", "sun-0200", name="web-bad"), instance("web", "sun-0200", name="vendor-box")]
                ),
                strict=True,
            )
        )
        for instance_id in ids.values():
            account.set_patch_behaviour(instance_id, {"missing": 3, "result": "failed"})
        exception = {
            "name": "vendor-box",
            "reason": "vendor appliance",
            "approved_by": "gov-lead",
            "expires": "2026-12-01",
            "ticket": "CHG-7",
        }
        # A malformed entry next to it is skipped with its reason; the cycle goes on.
        account.use_exceptions(
            write_exceptions(tmp_path / "exceptions.yaml", exception, {"name": "web-bad", "reason": "x"})
        )
        team, governance = owner_queue(account, "team-test"), owner_queue(account, "governance")

        friday = run_ok(account)
        validation = friday.output["validation"]  # type: ignore[index]
        assert validation["by_class"]["excepted"] == 1 and validation["exception_errors"] == 1
        lines = by_name(account, validation["instances_key"])
        assert (lines["vendor-box"]["class"], lines["vendor-box"]["tag_class"]) == ("excepted", "ready")
        assert lines["vendor-box"]["exception"]["expires"] == "2026-12-01"
        assert lines["web-bad"]["class"] == "ready"
        report = json.loads(
            account.client("s3").get_object(Bucket=account.artifact_bucket, Key=validation["report_key"])["Body"].read()
        )
        assert "approved_by must be" in report["exception_errors"][0]
        # Four days before expiry, inside the 7-day notice: the owner and governance are told once each.
        (notice,) = team()
        assert "expires in 4 days" in notice["Subject"] and "vendor-box" in notice["Message"]
        assert notice["MessageAttributes"]["owner"]["Value"] == "team-test"
        assert len(governance()) == 1

        account.advance(timedelta(hours=40))  # Sunday: the window runs and both instances fail
        sunday = run_ok(account)
        monitoring = sunday.output["monitoring"]  # type: ignore[index]
        # MaxErrors lets no error through: whichever SSM tries first fails, the other is not sent (missed).
        assert monitoring["by_outcome"]["excepted"] == 1
        assert monitoring["by_outcome"]["failed"] + monitoring["by_outcome"]["missed"] == 1
        results = by_name(account, monitoring["results_key"])
        assert results["vendor-box"]["outcome"] == "excepted"
        assert "until 2026-12-01" in results["vendor-box"]["reason"]
        assert any(f"without it: {o}" in results["vendor-box"]["reason"] for o in ("failed", "missed"))
        # The compliance export marks it excepted, with the exception, and asks its owner for nothing.
        compliance = sunday.output["compliance"]  # type: ignore[index]
        assert compliance["counts"]["excepted"] == 1
        records = by_name(account, compliance["snapshot_key"])
        assert (records["vendor-box"]["class"], records["vendor-box"]["tag_class"]) == ("excepted", "ready")
        assert records["vendor-box"]["exception"]["ticket"] == "CHG-7"
        assert records["web-bad"]["exception"] is None and records["web-bad"]["tag_class"] == "ready"
        page = account.client("s3").get_object(Bucket=account.artifact_bucket, Key=compliance["report_key"])
        html = page["Body"].read().decode()
        assert '<div class=big id="excepted">1</div>' in html
        # The actions table alone: the per-owner sections below it list every instance.
        needing_action = html.split('id="actions"', 1)[1].split("</table>", 1)[0]
        assert "web-bad" in needing_action and "vendor-box" not in needing_action
        (alert,) = team()  # the failure alert names web-bad only; no second expiry notice
        assert "web-bad" in alert["Message"] and "vendor-box" not in alert["Message"]
        assert governance() == []

        account.advance(timedelta(days=3))  # Wednesday 2 December: the exception has expired
        after = run_ok(account)
        lines = by_name(account, after.output["validation"]["instances_key"])  # type: ignore[index]
        assert lines["vendor-box"]["class"] == "ready" and "exception" not in lines["vendor-box"]
        assert lines["vendor-box"]["expired_exception"]["expires"] == "2026-12-01"
        assert after.output["validation"]["expired_exceptions"] == 1  # type: ignore[index]
        expired = [m for m in team() if "has expired" in m["Subject"]]
        assert len(expired) == 1 and "held to the patching rules again" in expired[0]["Message"]
        assert len(governance()) == 1
        # Told once: the next cycle says nothing more about it.
        run_ok(account)
        assert [m for m in team() if "exception" in m["Subject"]] == [] and governance() == []


# --- hold: true: the exception holds patching back ------------------------------------------------------

HOLD = {
    "name": "vendor-box",
    "reason": "vendor certifies patches quarterly",
    "approved_by": "gov-lead",
    "expires": "2026-12-01",
    "hold": True,
}


def members(account: SimulatedAccount, window: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """{target name: its Targets}, {task name: (Operation, its target names)} of a window, as SSM has them."""
    ssm = account.client("ssm")
    (identity,) = [w for w in ssm.describe_maintenance_windows()["WindowIdentities"] if w["Name"] == window]
    window_id = identity["WindowId"]
    targets = ssm.describe_maintenance_window_targets(WindowId=window_id)["Targets"]
    names = {t["WindowTargetId"]: t["Name"] for t in targets}
    tasks = {}
    for summary in ssm.describe_maintenance_window_tasks(WindowId=window_id)["Tasks"]:
        task = ssm.get_maintenance_window_task(WindowId=window_id, WindowTaskId=summary["WindowTaskId"])
        operation = task["TaskInvocationParameters"]["RunCommand"]["Parameters"]["Operation"]
        tasks[task["Name"]] = (operation, sorted(names[v] for t in task["Targets"] for v in t["Values"]))
    return {t["Name"]: t["Targets"] for t in targets}, tasks


def patch_state(account: SimulatedAccount, instance_id: str) -> dict[str, Any]:
    (state,) = account.client("ssm").describe_instance_patch_states(InstanceIds=[instance_id])["InstancePatchStates"]
    return dict(state)


def seed_hold_fleet(account: SimulatedAccount, tmp_path: Path) -> dict[str, str]:
    account.set_clock(FRIDAY_NOON)
    names = ("web-1", "web-2", "vendor-box", "db-1")
    groups = ("web", "web", "web", "db")
    ids = dict(
        zip(
            names,
            account.seed([instance(g, "sun-0200", name=n) for n, g in zip(names, groups, strict=True)]),
            strict=True,
        )
    )
    for instance_id in ids.values():
        account.set_patch_behaviour(instance_id, {"missing": 3, "result": "success"})
    account.use_exceptions(write_exceptions(tmp_path / "exceptions.yaml", HOLD))
    return ids


PG = "tagpatch-install-reboot-patch-group"


def assert_web_and_db_selected_by_tag(account: SimulatedAccount) -> None:
    """The window as it is with no hold: one tag target for both groups, one Install task."""
    targets, tasks = members(account, "tagpatch-sun-0200")
    assert targets == {
        f"{PG}-01": [
            {"Key": "tag:Patch Group", "Values": ["db", "web"]},
            {"Key": "tag:Maintenance Window", "Values": ["sun-0200"]},
        ]
    }
    assert tasks == {"tagpatch-install-reboot-01": (["Install"], [f"{PG}-01"])}


def test_a_hold_scans_the_held_instance_patches_the_rest_by_id_and_ends_with_its_exception(tmp_path: Path) -> None:
    with SimulatedAccount(REPO / "template.yaml") as account:
        ids = seed_hold_fleet(account, tmp_path)
        friday = run_ok(account)
        output: dict[str, Any] = friday.output  # type: ignore[assignment]
        lines = by_name(account, output["validation"]["instances_key"])
        assert lines["vendor-box"]["held"] is True and lines["vendor-box"]["exception"]["hold"] is True
        assert "held" not in lines["web-1"]
        assert output["windows"]["held_instances"] == 1
        targets, tasks = members(account, "tagpatch-sun-0200")
        others = sorted([ids["web-1"], ids["web-2"]])
        assert targets == {
            f"{PG}-01": [
                {"Key": "tag:Patch Group", "Values": ["db"]},
                {"Key": "tag:Maintenance Window", "Values": ["sun-0200"]},
            ],
            f"{PG}-ids-01": [{"Key": "InstanceIds", "Values": others}],
            f"{PG}-held-01": [{"Key": "InstanceIds", "Values": [ids["vendor-box"]]}],
        }
        assert tasks == {
            "tagpatch-install-reboot-01": (["Install"], [f"{PG}-01", f"{PG}-ids-01"]),
            "tagpatch-install-reboot-held-01": (["Scan"], [f"{PG}-held-01"]),
        }
        report = json.loads(
            account.client("s3")
            .get_object(Bucket=account.artifact_bucket, Key=output["windows"]["report_key"])["Body"]
            .read()
        )
        (hold,) = report["holds"]
        assert (hold["patch_group"], hold["held"], hold["installed_by_id"]) == ("web", [ids["vendor-box"]], others)
        assert report["problems"] == []

        # (2) Nothing changed: a rerun writes nothing to SSM.
        assert run_ok(account).resource_write_calls == {}

        # Sunday 02:00 the window runs: the held instance is scanned, the others installed on.
        runs = account.advance(timedelta(hours=40))
        assert [run.window_name for run in runs] == ["tagpatch-sun-0200"]
        held_state = patch_state(account, ids["vendor-box"])
        assert (held_state["Operation"], held_state["MissingCount"]) == ("Scan", 3)
        for name in ("web-1", "web-2", "db-1"):
            state = patch_state(account, ids[name])
            assert (state["Operation"], state["MissingCount"]) == ("Install", 0), name
        sunday = run_ok(account)
        results = by_name(account, sunday.output["monitoring"]["results_key"])  # type: ignore[index]
        assert {name: results[name]["outcome"] for name in ("web-1", "web-2", "db-1")} == dict.fromkeys(
            ("web-1", "web-2", "db-1"), "patched"
        )
        held = results["vendor-box"]
        assert (held["outcome"], held["window"], held["operation"]) == ("excepted", "tagpatch-sun-0200", "Scan")
        assert "patching held back (scan only); scanned" in held["reason"]
        assert sunday.output["monitoring"]["by_outcome"]["missed"] == 0  # type: ignore[index]
        assert sunday.output["monitoring"]["by_outcome"]["failed"] == 0  # type: ignore[index]
        assert sunday.resource_write_calls == {}

        # (3) Wednesday: the exception has expired; the group is selected by tag again.
        account.advance(timedelta(days=3))
        after = run_ok(account)
        assert_web_and_db_selected_by_tag(account)
        assert after.output["windows"]["held_instances"] == 0  # type: ignore[index]
        assert run_ok(account).resource_write_calls == {}


def test_a_hold_too_large_for_the_quotas_is_reported_alarmed_and_the_group_is_still_patched(tmp_path: Path) -> None:
    # SSM's own quotas, no smaller stand-in: web holds 5,002 instances besides the held one, which
    # selected by id would need 101 targets of 50 (plus db's and the held one's), over the 100 a
    # window may have. So the hold is not applied, said so, counted for the alarm, and web stays
    # selected by tag: every web instance, the one to be held too, is patched.
    log = io.StringIO()
    with SimulatedAccount(REPO / "template.yaml", log_stream=log) as account:
        ids = seed_hold_fleet(account, tmp_path)
        crowd = generate_fleet(
            GeneratorSpec(count=5_000, patch_groups={"web": 1}, schedules={"sun-0200": 1}, os={"UBUNTU": 1}, seed=9)
        )
        account.seed(crowd)
        friday = run_ok(account)
        (problem,) = [p for p in reported(account, friday) if p["kind"] == "hold"]
        assert problem["name"] == "tagpatch-sun-0200/web"
        assert ids["vendor-box"] in problem["reason"] and "NOT held back" in problem["reason"]
        assert metric_values(log.getvalue(), "PlanShortfalls") == [1.0]
        assert_web_and_db_selected_by_tag(account)
        account.advance(timedelta(hours=40))
        for name in ("web-1", "web-2", "db-1", "vendor-box"):
            assert patch_state(account, ids[name])["Operation"] == "Install", name
        results = by_name(account, run_ok(account).output["monitoring"]["results_key"])  # type: ignore[index]
        assert results["vendor-box"]["outcome"] == "excepted"
        assert "hold NOT applied" in results["vendor-box"]["reason"]
        assert results["web-1"]["outcome"] == "patched"


def test_a_hold_that_fits_is_not_a_shortfall(tmp_path: Path) -> None:
    log = io.StringIO()
    with SimulatedAccount(REPO / "template.yaml", log_stream=log) as account:
        seed_hold_fleet(account, tmp_path)
        run_ok(account)
        assert metric_values(log.getvalue(), "PlanShortfalls") == [0.0]


def test_a_bad_entry_is_dropped_and_reported_in_the_problems_and_the_console(tmp_path: Path) -> None:
    # An impossible date once failed TagValidation and so the whole cycle (PyYAML's ValueError).
    path = tmp_path / "exceptions.yaml"
    path.write_text(
        "exceptions:\n"
        "  - {name: vendor-box, reason: vendor, approved_by: gov, expires: 2026-12-01}\n"
        "  - {name: web-bad, reason: typo, approved_by: gov, expires: 2026-02-30}\n"
    )
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.set_clock(FRIDAY_NOON)
        account.seed([instance("web", "sun-0200", name="web-bad"), instance("web", "sun-0200", name="vendor-box")])
        account.use_exceptions(path)
        result = run_ok(account)
        assert result.output["validation"]["by_class"]["excepted"] == 1  # type: ignore[index]
        (problem,) = [p for p in reported(account, result) if p["kind"] == "exception"]
        assert "exceptions[1] (line 3): expires '2026-02-30' is not an ISO date" in problem["reason"]
        console = Console(io.StringIO(), Marks())
        report_cycle(account, result, tmp_path / "out", "apply", (), console)
        shown = console.stream.getvalue()  # type: ignore[attr-defined]
        assert "patch exception dropped: exceptions.yaml: exceptions[1] (line 3): expires '2026-02-30'" in shown
