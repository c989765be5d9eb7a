"""Planning a target's partitions of the compliance tables (tagpatch.partitions): its values from the
table's keys, the location under the table's, only what is missing created, only its own expired dates
dropped, and a table tagpatch cannot fill refused."""

from __future__ import annotations

from datetime import date

import pytest

from tagpatch.errors import ConfigurationError
from tagpatch.partitions import CREATED, DROPPED, TableShape, entry_refusals, plan_table
from tagpatch.targets import Target

TARGET = Target("222222222222", "eu-west-1")
DAY = date(2026, 12, 7)
STORAGE = {"Location": "s3://bucket/compliance/snapshots/", "Compressed": True, "SerdeInfo": {"Name": "json"}}


def table(name: str, *keys: str, location: str = "s3://bucket/compliance/snapshots/") -> TableShape:
    return TableShape.of(
        {
            "Name": name,
            "PartitionKeys": [{"Name": key, "Type": "string"} for key in keys],
            "StorageDescriptor": {**STORAGE, "Location": location},
        }
    )


def test_a_partition_copies_its_table_s_storage_at_the_folder_its_values_name() -> None:
    snapshots = table("snapshots", "dt", "account_id", "region")
    values = snapshots.values(TARGET, DAY)
    assert values == ("2026-12-07", "222222222222", "eu-west-1")
    partition = snapshots.partition_input(values)
    assert partition["Values"] == ["2026-12-07", "222222222222", "eu-west-1"]
    assert partition["StorageDescriptor"] == {
        **STORAGE,
        "Location": "s3://bucket/compliance/snapshots/dt=2026-12-07/account_id=222222222222/region=eu-west-1/",
    }
    sync = table("aws_patchsummary", "accountid", "region", "resourcetype", location="s3://b/sync/AWS:PatchSummary")
    assert sync.values(TARGET, DAY) == ("222222222222", "eu-west-1", "ManagedInstanceInventory")
    assert sync.partition_input(sync.values(TARGET, DAY))["StorageDescriptor"]["Location"] == (
        "s3://b/sync/AWS:PatchSummary/accountid=222222222222/region=eu-west-1/resourcetype=ManagedInstanceInventory/"
    )
    assert sync.target_filter(TARGET) == "accountid = '222222222222' AND region = 'eu-west-1'"


def test_only_what_is_missing_is_created_and_only_dates_past_retention_are_dropped() -> None:
    snapshots = table("snapshots", "dt", "account_id", "region")
    today = snapshots.values(TARGET, DAY)
    kept = ("2026-12-01", *today[1:])
    expired = [("2026-11-29", *today[1:]), ("2026-11-30", *today[1:])]
    plan = plan_table(snapshots, [*expired, kept], TARGET, DAY, oldest_kept=date(2026, 12, 1))
    assert (plan.create, plan.delete) == ((today,), tuple(expired))
    rerun = plan_table(snapshots, [today, kept], TARGET, DAY, oldest_kept=date(2026, 12, 1))
    assert (rerun.create, rerun.delete) == ((), ())
    latest = table("latest", "account_id", "region")
    assert plan_table(latest, [latest.values(TARGET, DAY)], TARGET, DAY, oldest_kept=DAY).delete == ()


@pytest.mark.parametrize("keys", [(), ("dt", "owner")])
def test_a_table_partitioned_otherwise_is_a_configuration_error(keys: tuple[str, ...]) -> None:
    with pytest.raises(ConfigurationError, match="partitioned by"):
        table("odd", *keys).values(TARGET, DAY)


def test_only_the_answer_that_means_done_is_not_a_refusal() -> None:
    def entry(code: str) -> dict[str, object]:
        return {"PartitionValues": ["a", "r"], "ErrorDetail": {"ErrorCode": code, "ErrorMessage": "m"}}

    errors = [entry("AlreadyExistsException"), entry("EntityNotFoundException"), entry("InvalidInputException")]
    # Created: one that exists is done; one Glue could not find is not.
    assert entry_refusals("latest", errors, CREATED) == [
        "latest (a/r): EntityNotFoundException: m",
        "latest (a/r): InvalidInputException: m",
    ]
    # Dropped: one already gone is done.
    assert entry_refusals("snapshots", errors, DROPPED) == [
        "snapshots (a/r): AlreadyExistsException: m",
        "snapshots (a/r): InvalidInputException: m",
    ]
