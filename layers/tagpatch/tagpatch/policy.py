"""The patch policy: security operations' one file of rules, as a validated, frozen model.

The file (`policy/patch-policy.yaml`) ships in its own Lambda layer, so a change is reviewed and
deployed like code. Every rule is checked here, before deploy (a unit test loads the repo's file)
and at run time, and every error names the key at fault.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal, get_args

import yaml

from tagpatch.errors import InvalidPatchPolicy, shown_key
from tagpatch.org_targets import TargetSettings, parse_targets
from tagpatch.platforms import OPERATING_SYSTEMS
from tagpatch.rollout import Rollout, parse_rollout
from tagpatch.schedule import InvalidSchedule, parse_association_schedule, parse_schedule
from tagpatch.tags import is_valid_patch_group_name

POLICY_WINDOW_NAME: Final = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
# SSM's MaxConcurrency / MaxErrors pattern.
RATE_VALUE: Final = re.compile(r"^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$")
BASELINE_ID: Final = re.compile(
    r"^(pb-[0-9a-f]{17}|arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:patchbaseline/pb-[0-9a-f]{17})$"
)
CUSTOM_BASELINE_NAME: Final = re.compile(r"^[A-Za-z0-9_.-]{3,100}$")
SERVICE_LINKED: Final = "service-linked"
ROLE_ARN: Final = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
# An SSM document name (CreateDocument's Name pattern), or a shared document's ARN.
DOCUMENT_NAME: Final = re.compile(
    r"^([a-zA-Z0-9_.-]{3,128}|arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:document/[a-zA-Z0-9_.-]{3,128})$"
)
# AWS-RunPatchBaselineWithHooks's hook parameters, by the policy's key (each defaults to AWS-Noop).
HOOK_PARAMETERS: Final = {
    "pre_install": "PreInstallHookDocName",
    "post_install": "PostInstallHookDocName",
    "on_exit": "OnExitHookDocName",
}
NO_HOOK: Final = "AWS-Noop"  # what AWS-RunPatchBaselineWithHooks runs for a hook not given

Operation = Literal["Install", "Scan"]
RebootOption = Literal["RebootIfNeeded", "NoReboot"]
# What SSM does with a running patch task at the window's cutoff: CANCEL_TASK cancels its Run Command
# (nothing patches or reboots after it); CONTINUE_TASK, SSM's own default, lets it run to its end.
CutoffBehavior = Literal["CANCEL_TASK", "CONTINUE_TASK"]
Backup = Literal["image", "snapshot"]
CUTOFF_BEHAVIORS: Final[tuple[CutoffBehavior, ...]] = get_args(CutoffBehavior)


@dataclass(frozen=True)
class TaskSettings:
    """How the AWS-RunPatchBaseline task of a window runs."""

    operation: Operation = "Install"
    reboot_option: RebootOption = "RebootIfNeeded"
    max_concurrency: str = "10%"
    max_errors: str = "5%"
    priority: int = 1
    service_role: str = SERVICE_LINKED  # "service-linked" or an IAM role ARN
    cutoff_behavior: CutoffBehavior = "CANCEL_TASK"  # as the reminders promise: nothing runs past the cutoff
    # Hook documents by HOOK_PARAMETERS key, sorted; any makes the task run AWS-RunPatchBaselineWithHooks.
    hooks: tuple[tuple[str, str], ...] = ()
    # Backup before install (an Install task only): an AMI or EBS snapshots of each instance first; the
    # patch runs only where it succeeded (docs/decisions.md). None: no backup.
    backup: Backup | None = None


@dataclass(frozen=True)
class WindowSettings:
    """Everything that defines one SSM maintenance window apart from its targets."""

    schedule: str
    timezone: str = "UTC"
    duration_hours: int = 3
    cutoff_hours: int = 1
    offset_days: int | None = None


@dataclass(frozen=True)
class NamedWindow:
    name: str
    window: WindowSettings
    task: TaskSettings


@dataclass(frozen=True)
class BaselineChoice:
    """Which patch baseline an operating system uses."""

    source: Literal["aws_default", "custom", "existing"]
    reference: str | None = None  # custom baseline name, or existing baseline id / ARN

    def describe(self) -> str:
        if self.source == "aws_default":
            return "aws-default"
        if self.source == "custom":
            return f"custom:{self.reference}"
        return str(self.reference)


# The day of the week (UTC) each owner's weekly digest goes out (tagpatch.digest).
Weekday = Literal["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
WEEKDAYS: Final[tuple[Weekday, ...]] = get_args(Weekday)  # Monday first, as date.weekday() counts
REPORT_URL: Final = re.compile(r"^(https|s3)://[^\s#]{1,1000}$")

# Which instances the scan covers: every managed instance carrying a patch group tag (whatever its
# window tag says), or every managed instance in the account and Region.
ScanCoverage = Literal["patch-group-tag", "all-managed"]
SCAN_COVERAGES: Final[tuple[ScanCoverage, ...]] = get_args(ScanCoverage)


@dataclass(frozen=True)
class ScanSettings:
    """The daily patch scan (AWS-RunPatchBaseline, Operation=Scan) the cycle keeps configured."""

    enabled: bool = True
    schedule: str = "rate(1 day)"  # a State Manager association schedule: cron(...) or rate(...)
    covers: ScanCoverage = "patch-group-tag"
    # A compliance record whose last scan is older than this is reported stale.
    stale_after_days: int = 2


@dataclass(frozen=True)
class BackupRetention:
    """How long tagpatch keeps the backups its runbooks take (tagpatch.backup_retention)."""

    # A backup older than this many days is deleted (an image deregistered with its snapshots)...
    days: int = 14
    # ...unless it is one of this many newest good backups of its instance, so an instance never loses
    # its last good backup however long its patching pauses.
    keep_latest: int = 1


@dataclass(frozen=True)
class PatchPolicy:
    windows: Mapping[str, NamedWindow]
    default_window: WindowSettings  # applied to windows given as a schedule in the tag
    default_task: TaskSettings
    baselines: Mapping[str, BaselineChoice]
    notification_lead_hours: tuple[int, ...] = (72, 24, 1)
    # How often cycles run: reminders are kept for window runs within the largest lead time plus this.
    notification_cycle_interval_hours: int = 24
    # Whom a reminder tells teams to ask (the policy's notifications.contact).
    notification_contact: str = "your platform team (the owner of the tagpatch stack)"
    # The owner digest's day (notifications.digest_day); None: no digest.
    digest_day: Weekday | None = None
    # Where owners open report.html (notifications.report_url); None: the S3 URI of the latest report.
    report_url: str | None = None
    max_window_deletion_share: float = 0.25
    scan: ScanSettings = ScanSettings()
    # Waves installed in order, each gated on the one before (tagpatch.rollout).
    rollout: Rollout = field(default_factory=Rollout)
    # Patch group -> the backup its Install task takes (`patch_groups.<group>.backup`; None: `none`),
    # over its window's and the defaults'. A group without an entry takes its window's.
    patch_group_backups: Mapping[str, Backup | None] = field(default_factory=dict)
    # The (account, Region) targets the org cycle fans out to (tagpatch.org_targets); none named: home alone.
    targets: TargetSettings = field(default_factory=TargetSettings)
    backup_retention: BackupRetention = BackupRetention()
    source: str = field(default="<memory>", compare=False)

    def window_for_tag(self, value: str) -> WindowSettings:
        """The window a `Maintenance Window` tag asks for: a policy window name or a schedule."""
        named = self.windows.get(value)
        if named is not None:
            return named.window
        return WindowSettings(
            schedule=value,
            timezone=self.default_window.timezone,
            duration_hours=self.default_window.duration_hours,
            cutoff_hours=self.default_window.cutoff_hours,
            offset_days=self.default_window.offset_days,
        )

    def task_for_group(self, task: TaskSettings, patch_group: str) -> TaskSettings:
        """The window's task as a patch group's instances run it: the group's own backup, if its entry
        names one, on an Install task (a Scan takes none). Groups whose backups differ get tasks of their
        own in the window (docs/decisions.md)."""
        if task.operation != "Install" or patch_group not in self.patch_group_backups:
            return task
        return replace(task, backup=self.patch_group_backups[patch_group])

    def hook_documents(self) -> dict[str, str]:
        """Each hook document the policy names -> the first key that names it (for a clear error)."""
        found: dict[str, str] = {}
        tasks = [("defaults.task", self.default_task)]
        tasks += [(f"windows.{name}.task", named.task) for name, named in sorted(self.windows.items())]
        for path, task in tasks:
            for key, document in task.hooks:
                found.setdefault(document, f"{path}.hooks.{key}")
        return found

    def baseline_for(self, operating_system: str) -> BaselineChoice:
        return self.baselines.get(operating_system, BaselineChoice("aws_default"))


# --- parsing -------------------------------------------------------------------------------


class _Reader:
    """Walks a parsed YAML document, naming the dotted path of every value it rejects."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, message: str) -> InvalidPatchPolicy:
        return InvalidPatchPolicy(f"{self.source}: {path}: {message}")

    def mapping(self, value: object, path: str, allowed: frozenset[str] | None = None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping (got {type(value).__name__})")
        for key in value:
            if not isinstance(key, str):
                raise self.fail(path, f"keys must be strings (got {key!r})")
            if allowed is not None and key not in allowed:
                expected = ", ".join(sorted(allowed))
                raise self.fail(f"{path}.{shown_key(key)}", f"unknown key; expected one of {expected}")
        return value

    def integer(self, value: object, path: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(path, f"must be a whole number from {low} to {high} (got {value!r})")
        return value

    def string(self, value: object, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, f"must be a non-empty string (got {value!r})")
        return value.strip()


BACKUPS: Final[tuple[Backup, ...]] = ("image", "snapshot")
NO_BACKUP: Final = "none"  # on a window: takes the defaults' backup away

_WINDOW_KEYS: Final = frozenset({"schedule", "timezone", "duration_hours", "cutoff_hours", "offset_days"})
_TASK_KEYS: Final = frozenset(
    {
        "operation",
        "reboot_option",
        "max_concurrency",
        "max_errors",
        "priority",
        "service_role",
        "cutoff_behavior",
        "hooks",
        "backup",
    }
)
_TOP_KEYS: Final = frozenset(
    {
        "version",
        "windows",
        "defaults",
        "baselines",
        "notifications",
        "reconcile",
        "scan",
        "rollout",
        "patch_groups",
        "targets",
        "backup_retention",
    }
)
_BACKUP_RETENTION_KEYS: Final = frozenset({"days", "keep_latest"})
_PATCH_GROUP_KEYS: Final = frozenset({"backup"})
_SCAN_KEYS: Final = frozenset({"enabled", "schedule", "covers", "stale_after_days"})


def _window_settings(reader: _Reader, raw: dict[str, Any], path: str, base: WindowSettings | None) -> WindowSettings:
    schedule = reader.string(raw["schedule"], f"{path}.schedule") if "schedule" in raw else None
    if schedule is None:
        if base is None:
            raise reader.fail(f"{path}.schedule", "is required")
        schedule = base.schedule
    elif schedule:
        try:
            schedule = parse_schedule(schedule).expression
        except InvalidSchedule as error:
            raise reader.fail(f"{path}.schedule", str(error)) from error
    defaults = base or WindowSettings(schedule=schedule)
    timezone = reader.string(raw.get("timezone", defaults.timezone), f"{path}.timezone")
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
        raise reader.fail(f"{path}.timezone", f"{timezone!r} is not an IANA time zone (e.g. Europe/Berlin)") from error
    duration = reader.integer(raw.get("duration_hours", defaults.duration_hours), f"{path}.duration_hours", 1, 24)
    cutoff = reader.integer(raw.get("cutoff_hours", defaults.cutoff_hours), f"{path}.cutoff_hours", 0, 23)
    if cutoff >= duration:
        raise reader.fail(
            f"{path}.cutoff_hours",
            f"must be less than duration_hours ({cutoff} >= {duration}): SSM stops starting tasks "
            "this many hours before the window ends",
        )
    offset = raw.get("offset_days", defaults.offset_days)
    if offset is not None:
        offset = reader.integer(offset, f"{path}.offset_days", 1, 6)
        if not schedule.startswith("cron("):
            raise reader.fail(f"{path}.offset_days", "is only allowed with a cron(...) schedule")
    return WindowSettings(schedule, timezone, duration, cutoff, offset)


def _task_settings(reader: _Reader, raw: dict[str, Any], path: str, base: TaskSettings) -> TaskSettings:
    operation = raw.get("operation", base.operation)
    if operation not in ("Install", "Scan"):
        raise reader.fail(f"{path}.operation", f"must be Install or Scan (got {operation!r})")
    reboot = raw.get("reboot_option", base.reboot_option)
    if reboot not in ("RebootIfNeeded", "NoReboot"):
        raise reader.fail(f"{path}.reboot_option", f"must be RebootIfNeeded or NoReboot (got {reboot!r})")
    rates = {}
    for key in ("max_concurrency", "max_errors"):
        value = str(raw.get(key, getattr(base, key)))
        if not RATE_VALUE.match(value):
            raise reader.fail(f"{path}.{key}", f"must be a count like 10 or a percentage like 10% (got {value!r})")
        rates[key] = value
    priority = reader.integer(raw.get("priority", base.priority), f"{path}.priority", 0, 5)
    role = reader.string(raw.get("service_role", base.service_role), f"{path}.service_role")
    if role != SERVICE_LINKED and not ROLE_ARN.match(role):
        raise reader.fail(f"{path}.service_role", f"must be {SERVICE_LINKED!r} or an IAM role ARN (got {role!r})")
    cutoff_behavior = raw.get("cutoff_behavior", base.cutoff_behavior)
    if cutoff_behavior not in CUTOFF_BEHAVIORS:
        raise reader.fail(
            f"{path}.cutoff_behavior", f"must be {' or '.join(CUTOFF_BEHAVIORS)} (got {cutoff_behavior!r})"
        )
    hooks = _hooks(reader, raw["hooks"], f"{path}.hooks") if "hooks" in raw else base.hooks
    backup = _backup(reader, raw["backup"], f"{path}.backup", operation) if "backup" in raw else base.backup
    return TaskSettings(
        operation,
        reboot,
        rates["max_concurrency"],
        rates["max_errors"],
        priority,
        role,
        cutoff_behavior,
        hooks,
        backup if operation == "Install" else None,
    )


def _backup(reader: _Reader, value: object, path: str, operation: str) -> Backup | None:
    if value == NO_BACKUP:
        return None
    if value not in BACKUPS:
        raise reader.fail(path, f"must be {', '.join(BACKUPS)} or {NO_BACKUP} (got {value!r})")
    if operation != "Install":
        raise reader.fail(path, "only an Install task takes a backup (this task scans)")
    return value


def _hooks(reader: _Reader, value: object, path: str) -> tuple[tuple[str, str], ...]:
    """A task's hook documents; `hooks: {}` on a window takes the defaults' hooks away."""
    raw = reader.mapping(value, path, frozenset(HOOK_PARAMETERS))
    found = []
    for key, name in sorted(raw.items()):
        if not isinstance(name, str) or not DOCUMENT_NAME.match(name):
            raise reader.fail(f"{path}.{key}", f"must be an SSM document name or ARN (got {name!r})")
        found.append((key, name))
    return tuple(found)


def _baseline(reader: _Reader, value: object, path: str) -> BaselineChoice:
    text = reader.string(value, path)
    if text == "aws-default":
        return BaselineChoice("aws_default")
    if text.startswith("custom:"):
        name = text.removeprefix("custom:")
        if not CUSTOM_BASELINE_NAME.match(name):
            raise reader.fail(path, f"custom baseline name {name!r} must be 3-100 of A-Z a-z 0-9 _ . -")
        return BaselineChoice("custom", name)
    if BASELINE_ID.match(text):
        return BaselineChoice("existing", text)
    raise reader.fail(
        path,
        f"must be 'aws-default', 'custom:<name>' or a baseline id like pb-0123456789abcdef0 (got {text!r})",
    )


def _scan_settings(reader: _Reader, raw: dict[str, Any]) -> ScanSettings:
    defaults = ScanSettings()
    enabled = raw.get("enabled", defaults.enabled)
    if not isinstance(enabled, bool):
        raise reader.fail("scan.enabled", f"must be true or false (got {enabled!r})")
    schedule = reader.string(raw.get("schedule", defaults.schedule), "scan.schedule")
    try:
        schedule = parse_association_schedule(schedule).expression
    except InvalidSchedule as error:
        raise reader.fail("scan.schedule", str(error)) from error
    covers = raw.get("covers", defaults.covers)
    if covers not in SCAN_COVERAGES:
        raise reader.fail("scan.covers", f"must be {' or '.join(SCAN_COVERAGES)} (got {covers!r})")
    stale = reader.integer(raw.get("stale_after_days", defaults.stale_after_days), "scan.stale_after_days", 1, 365)
    return ScanSettings(enabled, schedule, covers, stale)


def _patch_group_backups(reader: _Reader, groups: Mapping[str, Any]) -> dict[str, Backup | None]:
    """`patch_groups`: each group's own backup (None for `none`), by group name."""
    found: dict[str, Backup | None] = {}
    for group, raw in groups.items():
        path = f"patch_groups.{shown_key(group)}"
        if not is_valid_patch_group_name(group):
            raise reader.fail(path, "not a patch group name (1-256 letters, numbers, spaces and _.:/=+-@)")
        body = reader.mapping(raw, path, _PATCH_GROUP_KEYS)
        if "backup" in body:
            # Checked as an Install task's: which windows the group's instances name is the tags' to say.
            found[group] = _backup(reader, body["backup"], f"{path}.backup", "Install")
    return found


def _backup_retention(reader: _Reader, raw: dict[str, Any]) -> BackupRetention:
    defaults = BackupRetention()
    days = reader.integer(raw.get("days", defaults.days), "backup_retention.days", 1, 3650)
    keep = reader.integer(raw.get("keep_latest", defaults.keep_latest), "backup_retention.keep_latest", 0, 100)
    return BackupRetention(days, keep)


def parse_policy(document: object, source: str = "<memory>") -> PatchPolicy:
    reader = _Reader(source)
    top = reader.mapping(document, "policy", _TOP_KEYS)
    if type(top.get("version")) is not int or top.get("version") != 1:
        raise reader.fail("version", f"must be 1 (got {top.get('version')!r})")

    defaults = reader.mapping(top.get("defaults", {}), "defaults", frozenset({"window", "task"}))
    default_window = _window_settings(
        reader,
        reader.mapping(defaults.get("window", {}), "defaults.window", _WINDOW_KEYS - {"schedule", "offset_days"}),
        "defaults.window",
        WindowSettings(schedule=""),
    )
    default_task = _task_settings(
        reader,
        reader.mapping(defaults.get("task", {}), "defaults.task", _TASK_KEYS),
        "defaults.task",
        TaskSettings(),
    )

    windows: dict[str, NamedWindow] = {}
    for name, raw in reader.mapping(top.get("windows", {}), "windows").items():
        path = f"windows.{shown_key(name)}"
        if not POLICY_WINDOW_NAME.match(name):
            raise reader.fail(path, "window names must be 1-100 of A-Z a-z 0-9 _ . - (they become SSM names)")
        if name.lower().startswith(("cron(", "rate(", "at(")):
            raise reader.fail(path, "a window name must not look like a schedule expression")
        body = reader.mapping(raw, path, _WINDOW_KEYS | {"task"})
        window = _window_settings(reader, {k: v for k, v in body.items() if k != "task"}, path, None)
        task = _task_settings(
            reader,
            reader.mapping(body.get("task", {}), f"{path}.task", _TASK_KEYS),
            f"{path}.task",
            default_task,
        )
        windows[name] = NamedWindow(name, window, task)

    baselines = {}
    for operating_system, value in reader.mapping(top.get("baselines", {}), "baselines").items():
        if operating_system not in OPERATING_SYSTEMS:
            raise reader.fail(
                f"baselines.{operating_system}",
                f"unknown operating system; expected one of {', '.join(sorted(OPERATING_SYSTEMS))}",
            )
        baselines[operating_system] = _baseline(reader, value, f"baselines.{operating_system}")

    notifications = reader.mapping(
        top.get("notifications", {}),
        "notifications",
        frozenset({"lead_hours", "cycle_interval_hours", "contact", "digest_day", "report_url"}),
    )
    lead = notifications.get("lead_hours", [72, 24, 1])
    if not isinstance(lead, list) or not lead:
        raise reader.fail("notifications.lead_hours", "must be a non-empty list of hours")
    lead_hours = tuple(
        sorted(
            {reader.integer(h, f"notifications.lead_hours[{i}]", 1, 720) for i, h in enumerate(lead)},
            reverse=True,
        )
    )

    interval = reader.integer(
        notifications.get("cycle_interval_hours", 24), "notifications.cycle_interval_hours", 1, 168
    )

    contact = notifications.get("contact", PatchPolicy.notification_contact)
    if not isinstance(contact, str) or not contact.strip() or len(contact) > 300:
        raise reader.fail("notifications.contact", f"must be a text of 1 to 300 characters (got {contact!r})")

    digest_day = notifications.get("digest_day")
    if digest_day is not None and digest_day not in WEEKDAYS:
        raise reader.fail("notifications.digest_day", f"must be one of {', '.join(WEEKDAYS)} (got {digest_day!r})")
    report_url = notifications.get("report_url")
    if report_url is not None and not (isinstance(report_url, str) and REPORT_URL.match(report_url)):
        raise reader.fail(
            "notifications.report_url",
            f"must be an https:// or s3:// address of report.html, without a #fragment (got {report_url!r})",
        )

    reconcile = reader.mapping(top.get("reconcile", {}), "reconcile", frozenset({"max_window_deletion_share"}))
    share = reconcile.get("max_window_deletion_share", 0.25)
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
        raise reader.fail("reconcile.max_window_deletion_share", f"must be a number from 0 to 1 (got {share!r})")

    rollout = parse_rollout(top.get("rollout"), reader.fail)
    patch_group_backups = _patch_group_backups(reader, reader.mapping(top.get("patch_groups", {}), "patch_groups"))

    return PatchPolicy(
        windows=windows,
        default_window=default_window,
        default_task=default_task,
        baselines=baselines,
        notification_lead_hours=lead_hours,
        notification_cycle_interval_hours=interval,
        notification_contact=contact.strip(),
        digest_day=digest_day,
        report_url=report_url,
        max_window_deletion_share=float(share),
        scan=_scan_settings(reader, reader.mapping(top.get("scan", {}), "scan", _SCAN_KEYS)),
        rollout=rollout,
        patch_group_backups=patch_group_backups,
        targets=parse_targets(top.get("targets"), reader.fail),
        backup_retention=_backup_retention(
            reader, reader.mapping(top.get("backup_retention", {}), "backup_retention", _BACKUP_RETENTION_KEYS)
        ),
        source=source,
    )


def load_policy(path: Path) -> PatchPolicy:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidPatchPolicy(f"{path}: cannot read the patch policy: {error.strerror}") from error
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise InvalidPatchPolicy(f"{path}: not valid YAML: {error}") from error
    return parse_policy(document, str(path))
