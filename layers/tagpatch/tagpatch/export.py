"""The compliance snapshot: one record per instance, for Athena, QuickSight and report.html.

Snapshots are gzip JSON Lines, one file per target and date under
`compliance/snapshots/dt=YYYY-MM-DD/account_id=<account>/region=<Region>/` (the Glue partitions), and
the same records are kept under `compliance/latest/account_id=<account>/region=<Region>/` so that "now"
needs no date scan. A record joins
what TagValidation said of the instance (class, reasons, patch group, window) with what PatchMonitoring
said of the period (its outcome, patch state), the window's next start, and two facts carried over
from the previous snapshot when this cycle saw none: the latest window run's outcome (with its time
and reason) and the last successful install.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from tagpatch.aws import client, paginate
from tagpatch.classes import EXCEPTED
from tagpatch.cycle import iso_z, parse_time
from tagpatch.freshness import scan_freshness, unknown_reason
from tagpatch.outcomes import outcome_behaviour
from tagpatch.policy import ScanSettings
from tagpatch.ssm_windows import is_owned_window, window_run_time
from tagpatch.targets import Target, member_key
from tagpatch.trend import TREND_KEY

SNAPSHOTS_PREFIX: Final = "compliance/snapshots/"
LATEST_PREFIX: Final = "compliance/latest/"
REPORTS_PREFIX: Final = "compliance/reports/"
LATEST_REPORT_KEY: Final = "compliance/reports/latest/report.html"
SNAPSHOT_FILE: Final = "snapshot.jsonl.gz"
PAGE_SIZE: Final = 100
SCHEMA_VERSION: Final = 2  # 2: last_outcome is the latest run's, period_outcome beside it; scan freshness


def target_folder(target: Target) -> str:
    """The target's partition folder, as the Glue tables' account_id and region keys name it."""
    return f"account_id={target.account_id}/region={target.region}/"


def snapshot_key(now: datetime, target: Target) -> str:
    return f"{SNAPSHOTS_PREFIX}dt={now:%Y-%m-%d}/{target_folder(target)}{SNAPSHOT_FILE}"


def latest_key(target: Target) -> str:
    return f"{LATEST_PREFIX}{target_folder(target)}{SNAPSHOT_FILE}"


def report_key(now: datetime) -> str:
    return f"{REPORTS_PREFIX}dt={now:%Y-%m-%d}/report.html"


@dataclass(frozen=True)
class ExportKeys:
    """Where one target's export lives. Its snapshots sit in its own partition folders of the Athena
    tables (`.../account_id=<a>/region=<r>/`), home's too; report.html and the trend keep the
    single-account keys at home and are named after a member account and Region (member_key)."""

    target: Target
    member: Target | None = None

    @classmethod
    def of(cls, target: Target | None, home: Target) -> ExportKeys:
        acting = target or home
        return cls(acting, None if acting == home else acting)

    def snapshot(self, now: datetime) -> str:
        return snapshot_key(now, self.target)

    def report(self, now: datetime) -> str:
        return member_key(report_key(now), self.member)

    @property
    def latest(self) -> str:
        return latest_key(self.target)

    @property
    def latest_report(self) -> str:
        return member_key(LATEST_REPORT_KEY, self.member)

    @property
    def trend(self) -> str:
        return member_key(TREND_KEY, self.member)

    # The page under the target's own name, home's too: the organization's page takes home's keys, and
    # its summary links each target's page by this name.
    def named(self, page_key: str) -> str:
        """One of this target's page keys (`report`, `latest_report`) under the target's own name."""
        return member_key(page_key, self.target) if self.member is None else page_key

    def named_report(self, now: datetime) -> str:
        return self.named(self.report(now))

    @property
    def named_latest_report(self) -> str:
        return self.named(self.latest_report)

    # Where the two were before the tables were partitioned by account and Region: read when the new
    # key has none, so an upgrade keeps the carried-over facts and the week's changes.
    def legacy_snapshot(self, now: datetime) -> str:
        return member_key(f"{SNAPSHOTS_PREFIX}dt={now:%Y-%m-%d}/{SNAPSHOT_FILE}", self.member)

    @property
    def legacy_latest(self) -> str:
        return member_key(f"{LATEST_PREFIX}{SNAPSHOT_FILE}", self.member)


def next_window_starts(names: Iterable[str]) -> dict[str, str]:
    """name -> NextExecutionTime, in UTC, of tagpatch's own windows among `names` (SSM gives a window
    with a ScheduleTimezone its local time and offset; the record holds one form)."""
    wanted = set(names)
    if not wanted:
        return {}
    found: dict[str, str] = {}
    for identity in paginate(client("ssm").describe_maintenance_windows, "WindowIdentities", MaxResults=PAGE_SIZE):
        name = identity.get("Name")
        if name in wanted and identity.get("NextExecutionTime") and is_owned_window(str(identity["WindowId"])):
            start = window_run_time(identity["NextExecutionTime"], identity.get("ScheduleTimezone"))
            found[str(name)] = iso_z(start)
    return found


def _days_between(earlier: str | None, now: datetime) -> int | None:
    if not earlier:
        return None
    return max(0, (now - parse_time(earlier, "last_success_time")).days)


def _last_success(result: Mapping[str, Any] | None, previous: Mapping[str, Any] | None) -> str | None:
    """When the instance last finished an Install operation without a failed patch."""
    if result and result.get("operation") == "Install" and result.get("failed") == 0 and result.get("operation_end"):
        return str(result["operation_end"])
    return str(previous["last_success_time"]) if previous and previous.get("last_success_time") else None


def _not_before(later: str, earlier: str) -> bool:
    return parse_time(later, "operation_end") >= parse_time(earlier, "window_run_start")


def _outcome_time(result: Mapping[str, Any]) -> str | None:
    """When the outcome happened: the patch operation's end for an outcome that ran one (the patch state
    SSM kept is that run's only when it ended after the run started), else the run's start."""
    started = result.get("window_run_start")
    outcome = outcome_behaviour(result.get("outcome"))
    ended = result.get("operation_end")
    ran_operation = outcome is not None and outcome.operation_ended and bool(ended)
    if ran_operation and (not started or _not_before(str(ended), str(started))):
        return str(ended)
    return str(started) if started else None


@dataclass(frozen=True)
class LatestRun:
    """What the instance's latest window run did: its outcome, why, when, and the backup taken before it."""

    outcome: str | None = None
    reason: str | None = None
    time: str | None = None
    backup_outcome: str | None = None  # succeeded, failed, in_progress; None without a backup task
    backup_id: str | None = None


def _latest_window_outcome(result: Mapping[str, Any] | None, previous: Mapping[str, Any] | None) -> LatestRun:
    """The instance's latest window run: this period's when a run of its window is in it, else the
    previous snapshot's, carried until a newer run replaces it."""
    if result and result.get("window_run_start"):
        return LatestRun(
            result.get("outcome"),
            result.get("reason"),
            _outcome_time(result),
            result.get("backup_outcome"),
            result.get("backup_id"),
        )
    # A schema 1 record gave a time only to an outcome that ran an operation: that too is a run's outcome.
    if previous and previous.get("last_outcome_time"):
        return LatestRun(
            previous.get("last_outcome"),
            previous.get("last_outcome_reason"),
            previous.get("last_outcome_time"),
            previous.get("backup_outcome"),
            previous.get("backup_id"),
        )
    return LatestRun()


def snapshot_records(
    lines: Iterable[Mapping[str, Any]],
    results: Mapping[str, Mapping[str, Any]],
    next_starts: Mapping[str, str],
    previous: Mapping[str, Mapping[str, Any]],
    now: datetime,
    *,
    stale_after_days: int = ScanSettings().stale_after_days,
    target: Target | None = None,
) -> Iterator[dict[str, Any]]:
    """One record per instance TagValidation saw, in its order.

    `results` are PatchMonitoring's lines by instance id (in-scope instances only), `previous` the last
    snapshot's records by instance id. Optional inventory fields (`exception`) pass through as given.
    """
    snapshot_date = f"{now:%Y-%m-%d}"
    for line in lines:
        instance_id = str(line["instance_id"])
        result = results.get(instance_id)
        window = result.get("window") if result else None
        last_success = _last_success(result, previous.get(instance_id))
        latest = _latest_window_outcome(result, previous.get(instance_id))
        compliance = str(result.get("compliance", "UNKNOWN")) if result else "UNKNOWN"
        scan = scan_freshness(result.get("operation_end") if result else None, now, stale_after_days)
        yield {
            "schema_version": SCHEMA_VERSION,
            "snapshot_date": snapshot_date,
            "exported_at": iso_z(now),
            "account_id": target.account_id if target is not None else None,
            "region": target.region if target is not None else None,
            "instance_id": instance_id,
            "name": line.get("name"),
            "owner": line.get("owner"),
            "os": line.get("os"),
            "state": line.get("state"),
            "ping_status": line.get("ping_status"),
            "class": line.get("class"),
            # What the tags alone give; differs from class only for an excepted instance.
            "tag_class": line.get("tag_class") or line.get("class"),
            "reasons": list(line.get("reasons") or []),
            "exception": line.get("exception"),
            "in_scope": bool(line.get("in_scope", True)),
            "patch_group": line.get("patch_group"),
            "maintenance_window_tag": line.get("maintenance_window"),
            "window": window,
            "next_window_start": next_starts.get(window) if window else None,
            "last_outcome": latest.outcome,
            "last_outcome_reason": latest.reason,
            "last_outcome_time": latest.time,
            # The image taken before that run (a `backup: image` window), beside its outcome.
            "backup_outcome": latest.backup_outcome,
            "backup_id": latest.backup_id,
            # What PatchMonitoring said of the period since the previous cycle (not_due when no run).
            "period_outcome": result.get("outcome") if result else None,
            "period_outcome_reason": result.get("reason") if result else None,
            "compliance": compliance,
            "compliance_unknown_reason": unknown_reason(line, compliance),
            "last_scan": scan.last_scan,
            "scan_age_days": scan.age_days,
            "scan_status": scan.status,
            "missing": result.get("missing") if result else None,
            "critical_missing": result.get("critical_missing") if result else None,
            "failed": result.get("failed") if result else None,
            "pending_reboot": result.get("pending_reboot") if result else None,
            "last_success_time": last_success,
            "days_since_last_success": _days_between(last_success, now),
        }


def summarize(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """The counts the state returns: instances, by compliance, and excepted instances."""
    counts = {"instances": 0, "compliant": 0, "non_compliant": 0, "unknown": 0, "excepted": 0}
    for record in records:
        counts["instances"] += 1
        compliance = record.get("compliance")
        counts[{"COMPLIANT": "compliant", "NON_COMPLIANT": "non_compliant"}.get(str(compliance), "unknown")] += 1
        if record.get("class") == EXCEPTED:
            counts["excepted"] += 1
    return counts


def compliance_percent(counts: Mapping[str, int]) -> float | None:
    """Compliant share of the instances whose compliance is known, in percent (None when none is)."""
    known = counts["compliant"] + counts["non_compliant"]
    return round(100.0 * counts["compliant"] / known, 1) if known else None
