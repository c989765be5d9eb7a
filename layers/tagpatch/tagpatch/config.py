"""Function configuration, read from the environment once per cold start into frozen dataclasses."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tagpatch.errors import ConfigurationError
from tagpatch.org_report import ORG_REPORT_MAX_ROWS
from tagpatch.partitions import CatalogTables
from tagpatch.targets import SPOKE_BACKUP_ROLE, SPOKE_BACKUP_RUNBOOK, SPOKE_BACKUP_SNAPSHOT_RUNBOOK, Home


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set; it is defined in template.yaml")
    return value


@dataclass(frozen=True)
class ArtifactConfig:
    """Where run artifacts live (every function that reads or writes them)."""

    bucket: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ArtifactConfig:
        return cls(bucket=_required(environ, "ARTIFACT_BUCKET"))


@dataclass(frozen=True)
class ComplianceExportConfig:
    """How long the compliance exports are kept (the bucket's lifecycle rule on compliance/), and the
    Glue tables whose partitions each target registers."""

    retention_days: int
    tables: CatalogTables

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ComplianceExportConfig:
        tables = CatalogTables(
            database=_required(environ, "COMPLIANCE_DATABASE"),
            snapshots=_required(environ, "SNAPSHOTS_TABLE"),
            latest=_required(environ, "LATEST_TABLE"),
            sync=tuple(name.strip() for name in _required(environ, "SYNC_TABLES").split(",") if name.strip()),
        )
        return cls(retention_days=int(_required(environ, "COMPLIANCE_RETENTION_DAYS")), tables=tables)


@dataclass(frozen=True)
class PolicyConfig:
    """Where the patch policy file is (deployed in the PatchPolicyLayer, so under /opt)."""

    policy_path: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> PolicyConfig:
        return cls(policy_path=Path(_required(environ, "PATCH_POLICY_PATH")))


@dataclass(frozen=True)
class ExceptionsConfig:
    """Where governance's patch exceptions file is (in the PatchPolicyLayer); unset means none."""

    exceptions_path: Path | None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ExceptionsConfig:
        value = environ.get("PATCH_EXCEPTIONS_PATH", "").strip()
        return cls(exceptions_path=Path(value) if value else None)


@dataclass(frozen=True)
class NotificationConfig:
    """The operators' alerts topic (a cycle that failed, a change SSM rejected)."""

    topic_arn: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> NotificationConfig:
        return cls(topic_arn=_required(environ, "ALERTS_TOPIC_ARN"))


@dataclass(frozen=True)
class OwnerNotificationConfig:
    """The app teams' notifications topic; each team subscribes with a filter policy on `owner`."""

    topic_arn: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> OwnerNotificationConfig:
        return cls(topic_arn=_required(environ, "NOTIFICATIONS_TOPIC_ARN"))


@dataclass(frozen=True)
class TaskRoleConfig:
    """The IAM role the stack lets tagpatch pass to SSM for patch tasks, if any."""

    passable_role_arn: str | None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> TaskRoleConfig:
        return cls(passable_role_arn=environ.get("PATCH_TASK_SERVICE_ROLE_ARN", "").strip() or None)


@dataclass(frozen=True)
class BackupConfig:
    """The stack's backup-then-patch runbooks (image, snapshots) and the role Automation assumes to run
    them (#24)."""

    runbook_name: str
    snapshot_runbook_name: str
    automation_role_arn: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> BackupConfig:
        return cls(
            runbook_name=_required(environ, "BACKUP_RUNBOOK_NAME"),
            snapshot_runbook_name=_required(environ, "BACKUP_SNAPSHOT_RUNBOOK_NAME"),
            automation_role_arn=_required(environ, "BACKUP_AUTOMATION_ROLE_ARN"),
        )

    @classmethod
    def in_member(cls, member: Home) -> BackupConfig:
        """The copies spoke/template.yaml makes in a member account, under its fixed names."""
        role_arn = f"arn:{member.partition}:iam::{member.target.account_id}:role/{SPOKE_BACKUP_ROLE}"
        return cls(
            runbook_name=SPOKE_BACKUP_RUNBOOK,
            snapshot_runbook_name=SPOKE_BACKUP_SNAPSHOT_RUNBOOK,
            automation_role_arn=role_arn,
        )


@dataclass(frozen=True)
class RolloutConfig:
    """The CloudWatch alarms the stack lets TagValidation read for the rollout gates (RolloutAlarmArns)."""

    readable_alarms: frozenset[str]  # alarm names

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> RolloutConfig:
        arns = [arn.strip() for arn in environ.get("ROLLOUT_ALARM_ARNS", "").split(",") if arn.strip()]
        names = []
        for arn in arns:
            if ":alarm:" not in arn:
                raise ConfigurationError(f"ROLLOUT_ALARM_ARNS holds {arn!r}, which is not a CloudWatch alarm ARN")
            names.append(arn.split(":alarm:", 1)[1])
        return cls(readable_alarms=frozenset(names))


@dataclass(frozen=True)
class BaselineConfig:
    """Ids of the custom patch baselines this stack creates, by the name the policy uses."""

    custom_ids: Mapping[str, str]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> BaselineConfig:
        raw = environ.get("CUSTOM_BASELINE_IDS", "{}")
        try:
            parsed = json.loads(raw)
        except ValueError as error:
            raise ConfigurationError(f"CUSTOM_BASELINE_IDS is not JSON: {raw!r}") from error
        if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
            raise ConfigurationError(f"CUSTOM_BASELINE_IDS must map baseline names to ids (got {raw!r})")
        return cls(custom_ids=parsed)


@dataclass(frozen=True)
class ConfigRulesConfig:
    """The prefix of tagpatch's AWS Config rule names (the stack name and a dash)."""

    rule_prefix: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ConfigRulesConfig:
        return cls(rule_prefix=_required(environ, "CONFIG_RULE_PREFIX"))


@dataclass(frozen=True)
class ReminderConfig:
    """Where PrePatchNotification keeps reminders and how Scheduler delivers them."""

    schedule_group: str
    role_arn: str  # the role Scheduler assumes to publish (iam:PassRole to scheduler.amazonaws.com)
    dead_letter_arn: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ReminderConfig:
        return cls(
            schedule_group=_required(environ, "REMINDER_SCHEDULE_GROUP"),
            role_arn=_required(environ, "REMINDER_ROLE_ARN"),
            dead_letter_arn=_required(environ, "REMINDER_DEAD_LETTER_ARN"),
        )


def _positive_int(environ: Mapping[str, str], name: str) -> int:
    raw = _required(environ, name)
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigurationError(f"{name} must be a positive integer, got {raw!r}")
    return value


@dataclass(frozen=True)
class OrgReportConfig:
    """How many instance rows the organization's report.html reads before it becomes a summary."""

    max_rows: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> OrgReportConfig:
        # The template sets none: the figure derived from SummarizeTargets' memory. Tests set a small one.
        if "ORG_REPORT_MAX_ROWS" not in environ:
            return cls(max_rows=ORG_REPORT_MAX_ROWS)
        return cls(max_rows=_positive_int(environ, "ORG_REPORT_MAX_ROWS"))


@dataclass(frozen=True)
class DiscoveryConfig:
    """How much one Discovery invocation lists before it hands its cursor to the next."""

    items_per_invocation: int  # nodes and instances, counted by whole pages

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> DiscoveryConfig:
        return cls(items_per_invocation=_positive_int(environ, "DISCOVERY_ITEMS_PER_INVOCATION"))


@dataclass(frozen=True)
class MonitoringConfig:
    """How much one PatchMonitoring invocation reads before it hands its cursor to the next."""

    items_per_invocation: int  # executions, tasks, invocations, command invocations and patch states
    # The stack's resource data sync (empty: none), and the account its objects are written under.
    resource_data_sync: str = ""
    account_id: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> MonitoringConfig:
        return cls(
            items_per_invocation=_positive_int(environ, "MONITORING_ITEMS_PER_INVOCATION"),
            resource_data_sync=environ.get("RESOURCE_DATA_SYNC_NAME", ""),
            account_id=environ.get("ACCOUNT_ID", ""),
        )


@dataclass(frozen=True)
class RecorderConfig:
    """The resource types the stack's Config rules need the account's recorder to record."""

    required_types: tuple[str, ...]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> RecorderConfig:
        listed = environ.get("CONFIG_RECORDED_TYPES", "")
        return cls(required_types=tuple(t.strip() for t in listed.split(",") if t.strip()))
