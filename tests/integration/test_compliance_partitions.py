"""The compliance tables' registered partitions in the simulated account: a Glue refusal fails the cycle
and reaches the alerts topic after the snapshot is written, and the snapshot dates past the exports'
retention lose their partitions (the grant only that uses is proven here, as test_iam_policies says)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tagpatch.export import snapshot_key
from tagpatch.targets import Target
from tagpatch_local.runner import ACCOUNT_ID, SimulatedAccount
from tagpatch_local.simulator import iam

from .support import REPO, instance, run_ok, template_variant, topic_queue
from .test_iam_policies import RETENTION_SIDS


def snapshot_dates(account: SimulatedAccount) -> list[str]:
    glue = account.client("glue")
    database = account.physical_id("ComplianceDatabase")
    pages = glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName="snapshots")
    return sorted(p["Values"][0] for page in pages for p in page["Partitions"])


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
        # The grant only this path uses: every resource of its statement was checked and allowed.
        role = account.role_arn("ComplianceExportFunction").rsplit("/", 1)[1]
        checked = [check for name, check in iam.allowed_checks() if name == role]
        document = next(
            account.client("iam").get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
            for name in account.client("iam").list_role_policies(RoleName=role)["PolicyNames"]
        )
        (statement,) = [s for s in document["Statement"] if s.get("Sid") in RETENTION_SIDS]
        for resource in statement["Resource"]:
            narrowed = {**statement, "Resource": resource}
            assert any(iam.statement_applies(narrowed, check) for check in checked), resource
        rerun = run_ok(account)
        assert not {call for call in rerun.calls if call.startswith("glue:Batch")}
