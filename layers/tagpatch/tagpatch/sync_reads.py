"""Patch states from the resource data sync's S3 objects, where the design reads compliance.

SSM's resource data sync (SyncToDestination, JsonSerDe) writes one object per managed node and inventory
type, `<prefix>/<type>/accountid=<account>/region=<region>/resourcetype=ManagedInstanceInventory/<node>.json`,
one JSON object per line (SSM User Guide, "Walkthrough: Use resource data sync to aggregate inventory
data"). A node's patch state is its AWS:PatchSummary line (counts, OperationType, OperationEndTime) and
its critical missing patches are its AWS:ComplianceItem lines of type Patch that are NON_COMPLIANT with
severity CRITICAL (DescribeInstancePatchStates' CriticalNonCompliantCount counts the same patches: those
the baseline reports as Critical and are not installed).

The sync is used only when ListResourceDataSync names it and its last sync did not fail; a node with
no object (new, or not synced yet) is read through DescribeInstancePatchStates. docs/decisions.md,
"Compliance read from the resource data sync".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

from botocore.exceptions import ClientError

from tagpatch.aws import client, error_code, paginate
from tagpatch.cycle import parse_time
from tagpatch.inventory import MISSING_KEY_CODES

PATCH_SUMMARY: Final = "AWS:PatchSummary"
COMPLIANCE_ITEM: Final = "AWS:ComplianceItem"
LIST_PAGE: Final = 1000  # ListObjectsV2 MaxKeys at most


@dataclass(frozen=True)
class SyncLocation:
    """Where one account and Region's sync objects are."""

    bucket: str
    prefix: str
    account_id: str
    region: str

    def type_prefix(self, data_type: str) -> str:
        base = f"{self.prefix}/" if self.prefix else ""
        return (
            f"{base}{data_type}/accountid={self.account_id}/region={self.region}/resourcetype=ManagedInstanceInventory/"
        )

    def key(self, data_type: str, instance_id: str) -> str:
        return f"{self.type_prefix(data_type)}{instance_id}.json"

    def to_json(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> SyncLocation:
        return cls(str(body["bucket"]), str(body["prefix"]), str(body["account_id"]), str(body["region"]))


def find_sync(name: str | None, account_id: str) -> tuple[SyncLocation | None, str]:
    """The sync named `name`, when it exists and its last sync did not fail; else None, and why."""
    if not name:
        return None, "the stack has no resource data sync (ResourceDataSync=DISABLED)"
    ssm = client("ssm")
    for item in paginate(ssm.list_resource_data_sync, "ResourceDataSyncItems", SyncType="SyncToDestination"):
        if item.get("SyncName") != name:
            continue
        if item.get("LastStatus") == "Failed":
            return None, f"resource data sync {name} failed its last sync: {item.get('LastSyncStatusMessage', '')}"
        destination = item["S3Destination"]
        region = str(destination.get("Region") or ssm.meta.region_name)
        location = SyncLocation(
            str(destination["BucketName"]), str(destination.get("Prefix") or ""), account_id, region
        )
        return location, f"resource data sync {name}"
    return None, f"resource data sync {name} does not exist"


def _lines(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body.decode().splitlines() if line.strip()]


def _count(item: Mapping[str, Any], name: str) -> int:
    """A count of an inventory item: its content is strings (PutInventory), read either way."""
    return int(item.get(name) or 0)


def patch_state_record(
    instance_id: str, summary: Sequence[Mapping[str, Any]], items: Iterable[Mapping[str, Any]]
) -> dict[str, Any] | None:
    """The patch-state record DescribeInstancePatchStates would give, from a node's sync objects."""
    if not summary or not summary[0].get("OperationEndTime"):
        return None
    line = summary[0]
    critical = sum(
        1
        for item in items
        if item.get("ComplianceType") == "Patch"
        and item.get("Status") == "NON_COMPLIANT"
        and item.get("Severity") == "CRITICAL"
    )
    return {
        "instance_id": instance_id,
        "missing": _count(line, "MissingCount"),
        "critical_missing": critical,
        "installed": _count(line, "InstalledCount"),
        "failed": _count(line, "FailedCount"),
        "pending_reboot": _count(line, "InstalledPendingRebootCount"),
        "operation": str(line.get("OperationType", "")),
        "operation_end": parse_time(str(line["OperationEndTime"]), "OperationEndTime").isoformat(),
    }


def synced_ids(location: SyncLocation, first: str, last: str, on_page: Callable[[], None]) -> set[str]:
    """The nodes between `first` and `last` (sorted ids, inclusive) that have an AWS:PatchSummary object:
    the prefix listed from just before `first`, 1,000 keys a page, until past `last`."""
    prefix = location.type_prefix(PATCH_SUMMARY)
    found: set[str] = set()
    kwargs: dict[str, Any] = {"Bucket": location.bucket, "Prefix": prefix, "MaxKeys": LIST_PAGE}
    # Keys sort as the ids do ("<id>.json"); StartAfter the prefix plus anything below `first`.
    kwargs["StartAfter"] = f"{prefix}{first[:-1]}"
    s3 = client("s3")
    while True:
        page = s3.list_objects_v2(**kwargs)
        contents = page.get("Contents", [])
        on_page()
        for item in contents:
            instance_id = str(item["Key"])[len(prefix) :].removesuffix(".json")
            if first <= instance_id <= last:
                found.add(instance_id)
        if not page.get("IsTruncated") or not contents or str(contents[-1]["Key"]) >= location.key(PATCH_SUMMARY, last):
            return found
        kwargs["ContinuationToken"] = page["NextContinuationToken"]


def read_object(location: SyncLocation, data_type: str, instance_id: str) -> list[dict[str, Any]] | None:
    """A node's object of one type as lines; None when the sync has not written it."""
    try:
        body: bytes = (
            client("s3").get_object(Bucket=location.bucket, Key=location.key(data_type, instance_id))["Body"].read()
        )
    except ClientError as error:
        if error_code(error) in MISSING_KEY_CODES:
            return None
        raise
    return _lines(body)
