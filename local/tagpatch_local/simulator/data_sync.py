"""SSM resource data sync (SyncToDestination, S3), which moto lacks.

From the SSM User Guide ("Walkthrough: Use resource data sync to aggregate inventory data", "Creating
a resource data sync for Inventory") and the API reference (CreateResourceDataSync,
ListResourceDataSync, DeleteResourceDataSync):
- an account has at most 5 syncs per Region (ResourceDataSyncCountExceededException past that);
  a second sync of one name is ResourceDataSyncAlreadyExistsException; deleting an unknown one is
  ResourceDataSyncNotFoundException;
- SSM writes one object per managed node and data type, at
  `<prefix>/<type>/accountid=<account>/region=<region>/resourcetype=ManagedInstanceInventory/<node>.json`,
  in the JsonSerDe format: one JSON object per line, each with `resourceId`, `captureTime` and
  `schemaVersion` beside the type's own fields;
- SSM writes as ssm.amazonaws.com, which the bucket policy must allow: s3:GetBucketAcl on the bucket
  and s3:PutObject with the `bucket-owner-full-control` ACL, its requests carrying aws:SourceAccount
  and aws:SourceArn (the sync's ARN), the keys the User Guide's bucket policy conditions on. The
  simulator judges both through `resource_policies` before it writes; a refused sync writes nothing
  and ListResourceDataSync answers LastStatus Failed with the reason (AWS's wording is not documented).
- The bucket may be another account's (the hub's, for a member account's sync): it is judged by that
  bucket's policy and written there. A sync created with `DestinationDataSharing` of type
  `Organization` ("Creating an inventory resource data sync for accounts defined in AWS Organizations")
  tags each object `OrgId=<the sync's account's organization id>`, so its s3:PutObject carries
  s3:RequestObjectTag/OrgId, and it also calls s3:PutObjectTagging, the two statements the guide's
  bucket policy for an organization allows. The guide does not say whether these requests also carry
  aws:SourceOrgID; the simulator sends it neither, so a policy conditioned on it refuses the sync.

The sync is updated when a node's patch state changes (executions.py calls `patch_state_changed`);
AWS updates a sync "when new data is available" and does not document the delay, so the simulator
writes at once. AWS:ComplianceItem lines are one per missing critical patch with simulated ids: the
simulator models counts of patches, not the patches themselves.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from moto.s3.models import s3_backends
from moto.ssm.exceptions import SSMException
from moto.ssm.models import ssm_backends

from tagpatch_local.simulator.assume_role import organization_id
from tagpatch_local.simulator.core import (
    backend_state,
    drop_none,
    operation,
    request_params,
    ssm_backend,
    validate_input,
)
from tagpatch_local.simulator.iam import PARTITION, Authorization, Decision
from tagpatch_local.simulator.resource_policies import decide_for_service

SYNCS_PER_REGION: Final = 5
SSM_PRINCIPAL: Final = "ssm.amazonaws.com"
ORGANIZATION_SHARING: Final = "Organization"  # DestinationDataSharingType's one value (API reference)
ORG_TAG: Final = "OrgId"  # the tag an organization sync's objects carry (the User Guide's bucket policy)
_STATE_ATTR: Final = "_tagpatch_data_syncs"
_STATUS_ATTR: Final = "_tagpatch_data_sync_status"
_LOCK = threading.Lock()


class ResourceDataSyncAlreadyExistsException(SSMException):
    code = "ResourceDataSyncAlreadyExistsException"


class ResourceDataSyncCountExceededException(SSMException):
    code = "ResourceDataSyncCountExceededException"


class ResourceDataSyncNotFoundException(SSMException):
    code = "ResourceDataSyncNotFoundException"


@dataclass(frozen=True)
class Sync:
    name: str
    bucket: str
    prefix: str
    region: str
    created: datetime
    sharing: str | None = None  # DestinationDataSharingType: "Organization", or None


def _syncs(backend: Any) -> dict[str, Sync]:
    return backend_state(backend, _STATE_ATTR, dict[str, Sync])


def _statuses(backend: Any) -> dict[str, str]:
    """Sync name -> why its last write failed (absent: it succeeded, or has not written yet)."""
    return backend_state(backend, _STATUS_ATTR, dict[str, str])


@operation("CreateResourceDataSync")
def _create(response: Any) -> dict[str, Any]:
    params = request_params(response)
    validate_input("CreateResourceDataSync", params)
    name = str(params["SyncName"])
    destination = params.get("S3Destination")
    if params.get("SyncType", "SyncToDestination") != "SyncToDestination" or not destination:
        raise SSMException("ValidationException", "The simulated account supports SyncToDestination to S3 only.")
    sharing = (destination.get("DestinationDataSharing") or {}).get("DestinationDataSharingType")
    syncs = _syncs(ssm_backend(response))
    with _LOCK:
        if name in syncs:
            raise ResourceDataSyncAlreadyExistsException(f"Sync {name} already exists.")
        if len(syncs) >= SYNCS_PER_REGION:
            raise ResourceDataSyncCountExceededException(f"You can have at most {SYNCS_PER_REGION} syncs.")
        syncs[name] = Sync(
            name,
            str(destination["BucketName"]),
            str(destination.get("Prefix") or ""),
            str(destination["Region"]),
            datetime.now(),
            str(sharing) if sharing else None,
        )
    return {}


@operation("DeleteResourceDataSync")
def _delete(response: Any) -> dict[str, Any]:
    params = request_params(response)
    validate_input("DeleteResourceDataSync", params)
    with _LOCK:
        if _syncs(ssm_backend(response)).pop(str(params["SyncName"]), None) is None:
            raise ResourceDataSyncNotFoundException(f"Sync {params['SyncName']} does not exist.")
    return {}


@operation("ListResourceDataSync")
def _list(response: Any) -> dict[str, Any]:
    params = request_params(response)
    validate_input("ListResourceDataSync", params)
    items = [
        {
            "SyncName": sync.name,
            "SyncType": "SyncToDestination",
            "S3Destination": drop_none(
                {
                    "BucketName": sync.bucket,
                    "Prefix": sync.prefix or None,
                    "SyncFormat": "JsonSerDe",
                    "Region": sync.region,
                    "DestinationDataSharing": ({"DestinationDataSharingType": sync.sharing} if sync.sharing else None),
                }
            ),
            "SyncCreatedTime": sync.created,
            **_status_fields(_statuses(ssm_backend(response)).get(sync.name)),
        }
        for sync in _syncs(ssm_backend(response)).values()
    ]
    return {"ResourceDataSyncItems": items}


def _status_fields(failure: str | None) -> dict[str, str]:
    if failure is None:
        return {"LastStatus": "Successful"}
    return {"LastStatus": "Failed", "LastSyncStatusMessage": failure}


def object_tags(account_id: str, sync: Sync) -> dict[str, str]:
    """The tags SSM puts on a sync's objects: an organization sync's carry its organization's id."""
    if sync.sharing != ORGANIZATION_SHARING:
        return {}
    organization = organization_id(account_id)
    return {ORG_TAG: organization} if organization else {}


def delivery_refusal(account_id: str, region: str, sync: Sync, keys: Sequence[str]) -> str | None:
    """Why the bucket policy refuses SSM's writes for a sync, or None when it allows them all."""
    if sync.bucket not in s3_backends.bucket_accounts:
        return f"the bucket {sync.bucket} does not exist"
    source = {
        "aws:SourceAccount": (account_id,),
        "aws:SourceArn": (f"arn:{PARTITION}:ssm:{region}:{account_id}:resource-data-sync/{sync.name}",),
    }
    bucket = f"arn:{PARTITION}:s3:::{sync.bucket}"
    checks = [Authorization("s3:GetBucketAcl", bucket, source)]
    tags = object_tags(account_id, sync)
    put = {
        **source,
        "s3:x-amz-acl": ("bucket-owner-full-control",),
        **{f"s3:RequestObjectTag/{key}": (value,) for key, value in tags.items()},
    }
    checks += [Authorization("s3:PutObject", f"{bucket}/{key}", put) for key in keys]
    if sync.sharing == ORGANIZATION_SHARING:
        checks += [Authorization("s3:PutObjectTagging", f"{bucket}/{key}", source) for key in keys]
    for check in checks:
        decision = decide_for_service(SSM_PRINCIPAL, account_id, check)
        if decision is not Decision.ALLOW:
            return f"{SSM_PRINCIPAL} may not {check.action} on {check.resource} ({decision.value})"
    return None


def _lines(records: Sequence[Mapping[str, Any]], instance_id: str, capture_time: str) -> bytes:
    meta = {"resourceId": instance_id, "captureTime": capture_time, "schemaVersion": "1.0"}
    return "".join(json.dumps({**record, **meta}, default=str) + "\n" for record in records).encode()


# AWS:PatchSummary's attributes (the inventory type's names, as the stack's Glue table declares them;
# DescribeInstancePatchStates names the operation `Operation`, the inventory type `OperationType`).
_PATCH_SUMMARY_COUNTS: Final = (
    "InstalledCount",
    "InstalledPendingRebootCount",
    "InstalledOtherCount",
    "InstalledRejectedCount",
    "NotApplicableCount",
    "MissingCount",
    "FailedCount",
)


def _timestamp(value: Any) -> str:
    return f"{value:%Y-%m-%dT%H:%M:%SZ}" if isinstance(value, datetime) else str(value)


def _patch_summary_item(patch_summary: Mapping[str, Any]) -> dict[str, str]:
    """A node's AWS:PatchSummary item: inventory content is a map of strings to strings (PutInventory's
    InventoryItem.Content), so every value is written as a string."""
    item = {
        "PatchGroup": str(patch_summary["PatchGroup"]),
        "BaselineId": str(patch_summary["BaselineId"]),
        "SnapshotId": "",
        **{name: str(int(patch_summary.get(name, 0))) for name in _PATCH_SUMMARY_COUNTS},
        "OperationType": str(patch_summary["Operation"]),
        "OperationStartTime": _timestamp(patch_summary["OperationStartTime"]),
        "OperationEndTime": _timestamp(patch_summary["OperationEndTime"]),
        "RebootOption": str(patch_summary.get("RebootOption", "")),
    }
    return item


def patch_state_changed(
    account_id: str,
    region: str,
    patch_summary: Mapping[str, Any],
    compliance_summary: Mapping[str, Any],
    tags: Mapping[str, str],
    platform_name: str,
) -> None:
    """Write the node's objects to every sync of the account and Region (the hook executions.py calls)."""
    syncs = list(_syncs(ssm_backends[account_id][region]).values())
    if not syncs:
        return
    instance_id = str(patch_summary["InstanceId"])
    capture_time = f"{patch_summary['OperationEndTime']:%Y-%m-%dT%H:%M:%SZ}"
    severity = compliance_summary["NonCompliantSummary"]["SeveritySummary"]
    execution = compliance_summary["ExecutionSummary"]
    objects = {
        "AWS:PatchSummary": [_patch_summary_item(patch_summary)],
        "AWS:ComplianceSummary": [
            {
                "ComplianceType": "Patch",
                "Status": compliance_summary["Status"],
                "OverallSeverity": compliance_summary["OverallSeverity"],
                "CompliantCriticalCount": 0,
                "NonCompliantCriticalCount": severity["CriticalCount"],
                "NonCompliantHighCount": severity["HighCount"],
                "NonCompliantLowCount": severity["LowCount"],
                "ExecutionId": execution["ExecutionId"],
                "ExecutionTime": capture_time,
            }
        ],
        "AWS:ComplianceItem": [
            {
                "ComplianceType": "Patch",
                "ExecutionType": "Command",
                "ExecutionId": execution["ExecutionId"],
                "ExecutionTime": capture_time,
                "Id": f"simulated-critical-{n}",
                "Title": f"Simulated critical patch {n}",
                "Status": "NON_COMPLIANT",
                "Severity": "CRITICAL",
                "PatchBaselineId": patch_summary["BaselineId"],
                "PatchGroup": patch_summary["PatchGroup"],
                "PatchState": "Missing",
            }
            for n in range(1, int(patch_summary["CriticalNonCompliantCount"]) + 1)
        ],
        "AWS:InstanceInformation": [
            {"InstanceId": instance_id, "InstanceStatus": "Active", "ResourceType": "EC2Instance"}
            | {"PlatformName": platform_name, "AgentType": "amazon-ssm-agent"}
        ],
        "AWS:Tag": [{"Key": key, "Value": value} for key, value in sorted(tags.items())],
    }
    statuses = _statuses(ssm_backends[account_id][region])
    for sync in syncs:
        base = f"{sync.prefix}/" if sync.prefix else ""
        keys = {
            data_type: (
                f"{base}{data_type}/accountid={account_id}/region={region}/"
                f"resourcetype=ManagedInstanceInventory/{instance_id}.json"
            )
            for data_type in objects
        }
        refusal = delivery_refusal(account_id, region, sync, list(keys.values()))
        if refusal is not None:
            statuses[sync.name] = refusal
            continue
        statuses.pop(sync.name, None)
        # The bucket's owner's S3: the hub's, for a member account's organization sync.
        partition, owner = s3_backends.bucket_accounts[sync.bucket]
        s3 = s3_backends[owner][partition]
        tags = object_tags(account_id, sync)
        for data_type, records in objects.items():
            written = s3.put_object(sync.bucket, keys[data_type], _lines(records, instance_id, capture_time))
            if tags:
                s3.put_object_tagging(written, tags)
