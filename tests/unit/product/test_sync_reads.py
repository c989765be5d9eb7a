"""The resource data sync's objects read as DescribeInstancePatchStates' patch state."""

from __future__ import annotations

from tagpatch.sync_reads import COMPLIANCE_ITEM, PATCH_SUMMARY, SyncLocation, patch_state_record

SUMMARY = {
    "PatchGroup": "web",
    "BaselineId": "pb-0123456789abcdef0",
    "InstalledCount": "5",
    "InstalledPendingRebootCount": "1",
    "MissingCount": "3",
    "FailedCount": "0",
    "OperationType": "Scan",
    "OperationEndTime": "2026-11-29T06:05:00Z",
    "resourceId": "i-1",
    "captureTime": "2026-11-29T06:05:00Z",
    "schemaVersion": "1.0",
}


def item(status: str, severity: str, compliance_type: str = "Patch") -> dict[str, str]:
    return {"ComplianceType": compliance_type, "Status": status, "Severity": severity, "resourceId": "i-1"}


def test_the_layout_is_the_user_guides() -> None:
    location = SyncLocation("bucket", "resource-data-sync", "123456789012", "eu-west-1")
    assert location.key(PATCH_SUMMARY, "i-1") == (
        "resource-data-sync/AWS:PatchSummary/accountid=123456789012/region=eu-west-1/"
        "resourcetype=ManagedInstanceInventory/i-1.json"
    )
    assert SyncLocation.from_json(location.to_json()) == location
    assert SyncLocation("b", "", "1", "r").type_prefix(COMPLIANCE_ITEM).startswith("AWS:ComplianceItem/accountid=1/")


def test_a_patch_summary_and_its_critical_items_give_the_api_record() -> None:
    items = [
        item("NON_COMPLIANT", "CRITICAL"),
        item("NON_COMPLIANT", "CRITICAL"),
        item("COMPLIANT", "CRITICAL"),  # installed
        item("NON_COMPLIANT", "HIGH"),
        item("NON_COMPLIANT", "CRITICAL", "Association"),  # not a patch
    ]
    assert patch_state_record("i-1", [SUMMARY], items) == {
        "instance_id": "i-1",
        "missing": 3,
        "critical_missing": 2,
        "installed": 5,
        "failed": 0,
        "pending_reboot": 1,
        "operation": "Scan",
        "operation_end": "2026-11-29T06:05:00+00:00",
    }


def test_an_object_without_an_operation_is_no_patch_state() -> None:
    assert patch_state_record("i-1", [], []) is None
    assert patch_state_record("i-1", [{k: v for k, v in SUMMARY.items() if k != "OperationEndTime"}], []) is None
