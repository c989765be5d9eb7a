"""The compliance tables' registered partitions in the simulated account: a Glue refusal fails the cycle
and reaches the alerts topic after the snapshot is written, and the snapshot dates past the exports'
retention lose their partitions (the grant only that uses is proven here, as test_iam_policies says)."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from typing import Any

from tagpatch.export import latest_key, snapshot_key
from tagpatch.inventory import decode_jsonl_gz
from tagpatch.targets import Target
from tagpatch_local.runner import ACCOUNT_ID, SimulatedAccount
from tagpatch_local.simulator import iam

from .support import REPO, instance, run_ok, template_variant, topic_queue
from .test_iam_policies import RETENTION_SIDS, UPGRADE_SIDS

LEGACY_LATEST = "compliance/latest/snapshot.jsonl.gz"  # home's, before the partitions by account and Region


def snapshot_dates(account: SimulatedAccount) -> list[str]:
    glue = account.client("glue")
    database = account.physical_id("ComplianceDatabase")
    pages = glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName="snapshots")
    return sorted(p["Values"][0] for page in pages for p in page["Partitions"])


def assert_statement_used(account: SimulatedAccount, sids: frozenset[str]) -> None:
    """The grants only this path uses (test_iam_policies skips them): every resource of each statement
    was checked and allowed for ComplianceExport's calls since the allowed checks were reset."""
    role = account.role_arn("ComplianceExportFunction").rsplit("/", 1)[1]
    checked = [check for name, check in iam.allowed_checks() if name == role]
    client = account.client("iam")
    statements = [
        statement
        for name in client.list_role_policies(RoleName=role)["PolicyNames"]
        for statement in client.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]["Statement"]
        if statement.get("Sid") in sids
    ]
    assert {statement["Sid"] for statement in statements} == sids
    for statement in statements:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in resources:
            narrowed = {**statement, "Resource": resource}
            assert any(iam.statement_applies(narrowed, check) for check in checked), (statement["Sid"], resource)


def test_a_glue_refusal_fails_the_cycle_after_the_snapshot_is_written_and_is_alerted() -> None:
    def without_registration(document: dict[str, Any]) -> None:
        statements = document["Resources"]["ComplianceExportFunction"]["Properties"]["Policies"][0]["Statement"]
        statements[:] = [s for s in statements if s.get("Sid") != "RegisterCompliancePartitions"]

    with template_variant(without_registration) as template, SimulatedAccount(template) as account:
        account.seed([instance("web", "sun-0200", name="a")])
        alerts = topic_queue(account)
        failed = account.run_cycle()
        assert (failed.status, failed.error) == ("FAILED", "CatalogRegistrationRefused"), failed.cause
        assert "snapshots: AccessDeniedException" in str(failed.cause)
        assert "aws_patchsummary: AccessDeniedException" in str(failed.cause)
        (alert,) = [m for m in alerts() if "CatalogRegistrationRefused" in m["Message"]]
        assert "refused by Glue" in alert["Message"] or "AccessDeniedException" in alert["Message"], alert
        # The export itself was written before the refusal failed the cycle.
        key = snapshot_key(account.now(), Target(ACCOUNT_ID, account.region))
        assert account.client("s3").head_object(Bucket=account.artifact_bucket, Key=key)


def test_the_dates_past_retention_lose_their_partitions_and_a_rerun_writes_nothing_to_glue() -> None:
    overrides = {"ComplianceExportRetentionDays": "2"}
    with SimulatedAccount(REPO / "template.yaml", parameter_overrides=overrides) as account:
        account.seed([instance("web", "sun-0200", name="a")])
        first_day = f"{account.now():%Y-%m-%d}"
        run_ok(account)
        account.advance(timedelta(days=1))
        run_ok(account)
        assert snapshot_dates(account)[0] == first_day
        account.advance(timedelta(days=2))
        iam.reset_allowed_checks()
        later = run_ok(account)
        today = f"{account.now():%Y-%m-%d}"
        assert first_day not in snapshot_dates(account)
        assert snapshot_dates(account)[-1] == today
        assert later.calls["glue:BatchDeletePartition"] == 1
        assert_statement_used(account, RETENTION_SIDS)
        rerun = run_ok(account)
        assert not {call for call in rerun.calls if call.startswith("glue:Batch")}


def test_an_upgrade_carries_each_instance_s_facts_over_from_the_latest_snapshot_s_old_key() -> None:
    with SimulatedAccount(REPO / "template.yaml") as account:
        (web,) = account.seed([instance("web", "sun-0200", name="a")])
        # What a cycle before the partitions by account and Region left: home's latest at the old key.
        before = {"instance_id": web, "last_success_time": "2026-01-02T03:04:05Z", "last_outcome": "succeeded"}
        before |= {"last_outcome_time": "2026-01-02T03:04:05Z", "last_outcome_reason": "patched"}
        account.client("s3").put_object(
            Bucket=account.artifact_bucket, Key=LEGACY_LATEST, Body=gzip.compress(json.dumps(before).encode())
        )
        iam.reset_allowed_checks()
        run_ok(account)
        key = latest_key(Target(ACCOUNT_ID, account.region))
        body = account.client("s3").get_object(Bucket=account.artifact_bucket, Key=key)["Body"].read()
        (record,) = decode_jsonl_gz(body)
        assert (record["last_success_time"], record["last_outcome"]) == ("2026-01-02T03:04:05Z", "succeeded")
        assert_statement_used(account, UPGRADE_SIDS)
