"""How fresh an instance's compliance is, and why it is unknown: the same words in patch-results, the
compliance snapshot, the Athena queries and report.html.

The last scan is the end of the instance's latest patch operation, Scan or Install (the patch state's
OperationEndTime): either one rewrites the patch state and its compliance. A scan older than the
policy's `scan.stale_after_days` is `stale`; an instance with no patch state is `never_scanned`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, get_args

from tagpatch.cycle import parse_time

ScanStatus = Literal["current", "stale", "never_scanned"]
SCAN_STATUSES: Final[tuple[ScanStatus, ...]] = get_args(ScanStatus)
_SECONDS_A_DAY: Final = 86_400
# Why compliance is unknown, in the order they are tried (the first that applies is the reason).
UNMANAGED: Final = "unmanaged: not registered with Systems Manager, so it cannot be scanned"
STOPPED: Final = "stopped: a scan needs the instance running"
AGENT_OFFLINE: Final = "agent offline: SSM Agent ping status {}"
NO_PATCH_GROUP: Final = "no patch group: no patch group tag, so no baseline to scan against"
OUT_OF_SCOPE: Final = "out of this cycle's scope (its patch group is not among the cycle's)"
NOT_SCANNED_YET: Final = "not scanned yet: SSM has no patch state for it"


@dataclass(frozen=True)
class ScanFreshness:
    last_scan: str | None
    age_days: float | None  # to the hundredth of a day, as status compares it
    status: ScanStatus


def scan_freshness(last_scan: str | None, now: datetime, stale_after_days: int) -> ScanFreshness:
    """The freshness of a patch state whose operation ended at `last_scan` (None: no patch state)."""
    if not last_scan:
        return ScanFreshness(None, None, "never_scanned")
    age = round(max(0.0, (now - parse_time(last_scan, "last_scan")).total_seconds()) / _SECONDS_A_DAY, 2)
    return ScanFreshness(last_scan, age, "stale" if age > stale_after_days else "current")


def _state_reason(line: Mapping[str, Any]) -> str | None:
    """Why the instance cannot be scanned as it stands (not a managed node, not running, agent offline)."""
    # Discovery gives a node SSM does not list no ping status (its class may be a tag problem first). A
    # node SSM lists with its agent offline is classed `unmanaged` too, but it is registered: its ping
    # status says so below.
    ping_status = line.get("ping_status")
    if ("ping_status" in line and ping_status is None) or (
        "ping_status" not in line and line.get("class") == "unmanaged"
    ):
        return UNMANAGED
    state = line.get("state")
    if state not in (None, "running"):
        return STOPPED if state == "stopped" else f"{state}: a scan needs it running"
    if ping_status not in (None, "Online"):
        return AGENT_OFFLINE.format(ping_status)
    return None


def unknown_reason(line: Mapping[str, Any], compliance: str) -> str | None:
    """Why the instance's compliance is unknown (TagValidation's line says what it is), None when known."""
    if compliance in ("COMPLIANT", "NON_COMPLIANT"):
        return None
    if (reason := _state_reason(line)) is not None:
        return reason
    if not line.get("patch_group"):
        return NO_PATCH_GROUP
    return NOT_SCANNED_YET if line.get("in_scope", True) else OUT_OF_SCOPE
