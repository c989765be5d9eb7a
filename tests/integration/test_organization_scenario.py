"""scenarios/organization.yaml (#26): one hub stack, the organization of fleets/organization.yaml, 3
accounts (the hub, payments, analytics) in 2 Regions each; analytics has no spoke and legacy is
SUSPENDED. The org cycle processes every target, isolates each failure to its target, alerts once
naming every failed target, ends FAILED, and a rerun with nothing changed writes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tagpatch.org_targets import target_label
from tagpatch_local import cli
from tagpatch_local.fleet import load_fleet_file
from tagpatch_local.runner import ACCOUNT_ID, OrgCycleResult, SimulatedAccount
from tests.compliance_sql import connect, named_queries, run

from .support import REPO, changes, topic_queue

SCENARIO = REPO / "scenarios" / "organization.yaml"
HUB, PAYMENTS, ANALYTICS, LEGACY = ACCOUNT_ID, "111111111111", "222222222222", "333333333333"
REGIONS = ("us-east-1", "eu-west-1")
TARGETS = {f"{account}/{region}" for account in (HUB, PAYMENTS, ANALYTICS) for region in REGIONS}
SYNC_TABLES = ("aws_patchsummary", "aws_complianceitem", "aws_compliancesummary", "aws_instanceinformation", "aws_tag")


@pytest.fixture(scope="module")
def exported_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("exported")


@pytest.fixture(scope="module")
def cycles(
    exported_folder: Path,
) -> tuple[OrgCycleResult, OrgCycleResult, list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    scenario = yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))
    fleet = load_fleet_file((SCENARIO.parent / scenario["fleet"]).resolve())
    policy = (SCENARIO.parent / scenario["cycles"][0]["edits"][0]["policy"]).resolve()
    with SimulatedAccount(REPO / "template.yaml") as account:
        account.set_clock(scenario["start"])  # YAML reads the timestamp
        account.seed(fleet.instances)
        account.seed_accounts(fleet.accounts)
        account.use_policy(policy)
        alerts = topic_queue(account)
        first = account.run_org_cycle({})
        first_alerts = alerts()
        rerun = account.run_org_cycle({})
        rerun_alerts = alerts()
        summary_key = (rerun.org.output or {})["summary"]["summary_key"]
        body = account.client("s3").get_object(Bucket=account.artifact_bucket, Key=summary_key)["Body"].read()
        report = (
            account.client("s3")
            .get_object(Bucket=account.artifact_bucket, Key="compliance/reports/latest/report.html")["Body"]
            .read()
        )
        # The hub catalog's partitions of every compliance table, and the exported files, for Athena's view.
        glue = account.client("glue")
        database = account.physical_id("ComplianceDatabase")
        partitions = {
            table["Name"]: [
                (tuple(p["Values"]), p["StorageDescriptor"]["Location"])
                for page in glue.get_paginator("get_partitions").paginate(
                    DatabaseName=database, TableName=table["Name"]
                )
                for p in page["Partitions"]
            ]
            for table in glue.get_tables(DatabaseName=database)["TableList"]
        }
        exported = copy_compliance_files(account, exported_folder)
        # What each converged target's rerun changed (every change line but `unchanged`).
        rerun_changes = {
            label: [line for line in changes(account, child) if line["action"] != "unchanged"]
            for label, child in rerun.children.items()
            if child.status == "SUCCEEDED"
        }
    return (
        first,
        rerun,
        first_alerts,
        rerun_alerts,
        {
            **json.loads(body),
            "rerun_changes": rerun_changes,
            "report_html": report.decode(),
            "partitions": partitions,
            "exported": exported,
        },
    )


def copy_compliance_files(account: SimulatedAccount, folder: Path) -> set[str]:
    """The bucket's compliance snapshots, copied under `folder` at their keys; returns the keys."""
    s3 = account.client("s3")
    keys = set()
    for prefix in ("compliance/snapshots/", "compliance/latest/"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=account.artifact_bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                path = folder / item["Key"]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(s3.get_object(Bucket=account.artifact_bucket, Key=item["Key"])["Body"].read())
                keys.add(str(item["Key"]))
    return keys


def labels(result: OrgCycleResult, status: str | None = None) -> set[str]:
    return {
        f"{item['target']['account_id']}/{item['target']['region']}"
        for item in result.targets
        if status is None or (item["status"] == "SUCCEEDED") == (status == "SUCCEEDED")
    }


def test_every_active_account_is_a_target_in_each_region_and_the_suspended_one_is_skipped(cycles: Any) -> None:
    first, _, _, _, summary = cycles
    assert labels(first) == TARGETS
    assert [(item["account_id"], item["state"]) for item in summary["skipped_accounts"]] == [(LEGACY, "SUSPENDED")]


def test_the_targets_without_a_spoke_fail_alone_and_one_alert_names_each(cycles: Any) -> None:
    first, _, first_alerts, _, _ = cycles
    assert first.status == "FAILED"
    assert first.org.error == "TargetsFailed"
    failed = labels(first, "FAILED")
    assert {f"{ANALYTICS}/{region}" for region in REGIONS} <= failed
    assert f"{HUB}/us-east-1" not in failed  # home converged, whatever the others did
    assert first.child(HUB, "us-east-1").status == "SUCCEEDED"
    (alert,) = [message for message in first_alerts if message["Subject"].startswith("tagpatch org cycle")]
    assert alert["Subject"] == f"tagpatch org cycle: {len(failed)} of 6 targets failed"
    for label in failed:
        assert f"- {label}: its patch cycle ended FAILED" in alert["Message"]
    for region in REGIONS:
        assert (
            f"- {ANALYTICS}/{region}: its patch cycle ended FAILED in state Discovery: TargetAccessDenied: "
            "Discovery cannot act in "
            f"account {ANALYTICS} ({region}): sts:AssumeRole on arn:aws:iam::{ANALYTICS}:role/tagpatch-spoke-discovery"
        ) in alert["Message"]
    assert f"- {HUB}/us-east-1" not in alert["Message"]


def test_a_rerun_with_nothing_changed_writes_nothing_where_the_cycle_converged(cycles: Any) -> None:
    _, rerun, _, rerun_alerts, summary = cycles
    converged = {label: child for label, child in rerun.children.items() if child.status == "SUCCEEDED"}
    assert f"{HUB}/us-east-1" in converged
    # Each target's cycle has the calls its functions made for it (their payload names its execution).
    assert {label: child.resource_write_calls for label, child in converged.items()} == {
        label: {} for label in converged
    }
    assert summary["rerun_changes"] == {label: [] for label in summary["rerun_changes"]}
    assert len([m for m in rerun_alerts if m["Subject"].startswith("tagpatch org cycle")]) == 1  # still failing


def test_every_target_with_a_spoke_converges(cycles: Any) -> None:
    first, _, _, _, _ = cycles
    assert labels(first, "FAILED") == {f"{ANALYTICS}/{region}" for region in REGIONS}


def test_the_scenario_runs_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert cli.main(["run", "--scenario", str(SCENARIO), "--out", str(out)]) == cli.EXIT_CYCLE_FAILED
    summary = json.loads((out / "01-first" / "summary.json").read_text(encoding="utf-8"))
    assert summary["org"]["status"] == "FAILED"
    assert {label.replace("/", "-") for label in TARGETS} <= {
        path.name for path in (out / "01-first" / "targets").iterdir()
    }


def test_one_report_html_names_all_six_targets_with_the_rows_of_each_reported_one(cycles: Any) -> None:
    _, rerun, _, _, summary = cycles
    page = summary["report_html"]
    reported = [
        label
        for label in (target_label(item["target"]) for item in rerun.targets)
        if label in labels(rerun, "SUCCEEDED")
    ]
    failed = labels(rerun, "FAILED")
    assert reported and failed and set(reported) | failed == TARGETS
    assert f"Rows of {len(reported)} targets: {', '.join(reported)}." in page
    assert f"Not reported: {len(failed)}" in page
    for label in failed:
        assert f'<td data-label="target">{label}</td><td data-label="not reported">not reported: ' in page
    assert "hub-web-01" in page  # the hub's rows, beside the members' (account/Region on each)
    assert f'<td data-label="account/Region">{HUB}/us-east-1</td>' in page


def test_each_succeeded_target_s_partitions_are_registered_where_its_files_are(cycles: Any) -> None:
    first, _, _, _, summary = cycles
    partitions, exported = summary["partitions"], summary["exported"]
    succeeded = {
        (item["target"]["account_id"], item["target"]["region"])
        for item in first.targets
        if item["status"] == "SUCCEEDED"
    }
    assert len(succeeded) == 4
    assert {values[1:] for values, _ in partitions["snapshots"]} == succeeded
    assert {values for values, _ in partitions["latest"]} == succeeded
    for table in SYNC_TABLES:
        assert {values for values, _ in partitions[table]} == {(*t, "ManagedInstanceInventory") for t in succeeded}
    for values, location in [*partitions["snapshots"], *partitions["latest"]]:
        folder = location.removeprefix("s3://").split("/", 1)[1]  # s3://<bucket>/<folder>/
        assert f"{folder}snapshot.jsonl.gz" in exported, (values, location)


def test_athena_reads_every_reported_target_s_rows_from_its_partition(cycles: Any, exported_folder: Path) -> None:
    first, _, _, _, _ = cycles
    rows = run(connect(exported_folder), str(named_queries()["ComplianceByAccountQuery"]["QueryString"]))
    counted = {f"{row['account_id']}/{row['region']}": row["instances"] for row in rows}
    # Every target its ComplianceExport counted instances in, with that count (an empty file has no rows).
    exported = {
        target_label(item["target"]): item["compliance"]["counts"]["instances"]
        for item in first.targets
        if item["status"] == "SUCCEEDED" and item["compliance"]["counts"]["instances"]
    }
    assert len(exported) >= 3 and counted == exported


def test_a_rerun_registers_no_partition(cycles: Any) -> None:
    first, rerun, _, _, _ = cycles
    registered = sum(child.calls["glue:BatchCreatePartition"] for child in first.children.values())
    # The first cycle: one batch per table and target (snapshots, latest and the five sync tables).
    assert registered == (2 + len(SYNC_TABLES)) * len(labels(first, "SUCCEEDED"))
    assert [label for label, child in rerun.children.items() if child.calls["glue:BatchCreatePartition"]] == []
    assert all(child.calls["glue:GetPartitions"] for child in rerun.children.values() if child.status == "SUCCEEDED")
