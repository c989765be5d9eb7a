"""The patch policy: the repo's file is valid, and a bad policy is rejected before deploy.

Every rejection must name the dotted key at fault and what is wrong with it, because the person
reading the message is editing a YAML file, not reading this code.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tagpatch.errors import InvalidPatchPolicy
from tagpatch.org_targets import TargetSettings, cross
from tagpatch.policy import (
    BaselineChoice,
    PatchPolicy,
    ScanSettings,
    TaskSettings,
    WindowSettings,
    load_policy,
    parse_policy,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
POLICY_FILE = REPO_ROOT / "policy" / "patch-policy.yaml"


def repo_document() -> dict[str, Any]:
    document = yaml.safe_load(POLICY_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def policy() -> PatchPolicy:
    return load_policy(POLICY_FILE)


# --- the repo's policy ----------------------------------------------------------------------------


def test_repo_policy_loads(policy: PatchPolicy) -> None:
    assert policy.source == str(POLICY_FILE)
    assert {"sun-0200", "tue-2330"} <= set(policy.windows)
    assert policy.notification_lead_hours == (72, 24, 1)
    assert policy.max_window_deletion_share == 0.25


def test_repo_policy_windows(policy: PatchPolicy) -> None:
    sun = policy.windows["sun-0200"]
    assert sun.name == "sun-0200"
    assert sun.window == WindowSettings("cron(0 2 ? * SUN *)", "UTC", 3, 1, None)
    assert sun.task == TaskSettings("Install", "RebootIfNeeded", "10%", "5%", 1, "service-linked")
    tue = policy.windows["tue-2330"]
    assert tue.window == WindowSettings("cron(30 23 ? * TUE#2 *)", "Europe/Berlin", 4, 1, 2)


def test_window_task_overrides_the_default_task_key_by_key(policy: PatchPolicy) -> None:
    scan = policy.windows["scan-daily"]
    assert scan.task.operation == "Scan"
    assert scan.task.reboot_option == "NoReboot"
    assert scan.task.max_concurrency == policy.default_task.max_concurrency == "10%"
    assert scan.window.timezone == "UTC"  # WindowSettings default, not written in the file


def test_patch_tasks_are_cancelled_at_the_cutoff_unless_the_policy_says_continue() -> None:
    """The default keeps the reminders' promise: nothing patches or reboots after the cutoff."""
    assert parse_policy({"version": 1}).default_task.cutoff_behavior == "CANCEL_TASK"
    document = copy.deepcopy(repo_document())
    document["windows"]["scan-daily"]["task"]["cutoff_behavior"] = "CONTINUE_TASK"
    found = parse_policy(document)
    assert found.windows["scan-daily"].task.cutoff_behavior == "CONTINUE_TASK"
    assert found.windows["sun-0200"].task.cutoff_behavior == "CANCEL_TASK"


def test_window_for_tag_with_a_policy_window_name(policy: PatchPolicy) -> None:
    assert policy.window_for_tag("tue-2330") is policy.windows["tue-2330"].window


def test_window_for_tag_with_a_schedule_applies_the_defaults(policy: PatchPolicy) -> None:
    window = policy.window_for_tag("cron(0 3 ? * WED *)")
    assert window == WindowSettings(
        schedule="cron(0 3 ? * WED *)", timezone="UTC", duration_hours=3, cutoff_hours=1, offset_days=None
    )


def test_window_for_tag_uses_non_trivial_defaults() -> None:
    document = repo_document()
    document["defaults"]["window"] = {"timezone": "America/New_York", "duration_hours": 5, "cutoff_hours": 2}
    window = parse_policy(document).window_for_tag("rate(7 days)")
    assert window == WindowSettings("rate(7 days)", "America/New_York", 5, 2, None)


def test_baseline_for(policy: PatchPolicy) -> None:
    assert policy.baseline_for("WINDOWS") == BaselineChoice("custom", "tagpatch-windows-critical")
    assert policy.baseline_for("WINDOWS").describe() == "custom:tagpatch-windows-critical"
    assert policy.baseline_for("UBUNTU") == BaselineChoice("custom", "tagpatch-ubuntu")
    # An OS the file does not list gets the account's default baseline.
    assert policy.baseline_for("SUSE") == BaselineChoice("aws_default")
    assert policy.baseline_for("SUSE").describe() == "aws-default"


def test_existing_baseline_id_and_arn() -> None:
    document = repo_document()
    document["baselines"]["UBUNTU"] = "pb-0123456789abcdef0"
    document["baselines"]["DEBIAN"] = "arn:aws:ssm:eu-west-1:123456789012:patchbaseline/pb-0123456789abcdef0"
    policy = parse_policy(document)
    assert policy.baseline_for("UBUNTU") == BaselineChoice("existing", "pb-0123456789abcdef0")
    assert policy.baseline_for("UBUNTU").describe() == "pb-0123456789abcdef0"
    assert policy.baseline_for("DEBIAN").source == "existing"


def test_minimal_policy_gets_the_documented_defaults() -> None:
    policy = parse_policy({"version": 1})
    assert policy.windows == {}
    assert policy.default_window == WindowSettings("", "UTC", 3, 1, None)
    assert policy.default_task == TaskSettings()
    assert policy.notification_lead_hours == (72, 24, 1)
    assert policy.max_window_deletion_share == 0.25
    assert policy.source == "<memory>"


def test_the_scan_is_on_daily_by_default_and_covers_every_patch_group_tag() -> None:
    assert parse_policy({"version": 1}).scan == ScanSettings(
        enabled=True, schedule="rate(1 day)", covers="patch-group-tag", stale_after_days=2
    )


def test_repo_policy_scan(policy: PatchPolicy) -> None:
    assert policy.scan == ScanSettings(True, "rate(1 day)", "patch-group-tag", 2)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"enabled": False}, ScanSettings(enabled=False)),
        ({"schedule": "cron(0 4 ? * * *)"}, ScanSettings(schedule="cron(0 4 ? * * *)")),
        ({"schedule": "cron(0,30 * ? * * *)"}, ScanSettings(schedule="cron(0,30 * ? * * *)")),
        ({"schedule": "rate(30 minutes)"}, ScanSettings(schedule="rate(30 minutes)")),
        ({"schedule": "  rate(12 hours) "}, ScanSettings(schedule="rate(12 hours)")),
        ({"covers": "all-managed"}, ScanSettings(covers="all-managed")),
        ({"stale_after_days": 7}, ScanSettings(stale_after_days=7)),
    ],
    ids=["off", "cron", "cron-every-30-min", "rate-30-min", "rate-trimmed", "all-managed", "stale-7"],
)
def test_scan_settings_are_read(given: dict[str, object], expected: ScanSettings) -> None:
    assert parse_policy({"version": 1, "scan": given}).scan == expected


def test_no_targets_is_home_alone(policy: PatchPolicy) -> None:
    assert policy.targets == TargetSettings()
    assert not policy.targets.names_accounts
    assert policy.targets.max_concurrency == 10
    assert parse_policy({"version": 1, "targets": None}).targets == TargetSettings()


def test_targets_are_read_in_the_policys_order() -> None:
    targets = parse_policy(
        {
            "version": 1,
            "targets": {
                "accounts": ["222233334444", "111122223333"],
                "organizational_units": ["ou-ab12-cd34ef56", "r-ab12"],
                "regions": ["eu-west-1", "us-east-1"],
                "max_concurrency": 40,
            },
        }
    ).targets
    assert targets == TargetSettings(
        ("222233334444", "111122223333"), ("ou-ab12-cd34ef56", "r-ab12"), ("eu-west-1", "us-east-1"), 40
    )
    assert targets.names_accounts


def test_targets_cross_each_account_once_with_each_region() -> None:
    assert cross(["222233334444", "111122223333", "222233334444"], ["eu-west-1", "us-east-1"]) == [
        {"account_id": "222233334444", "region": "eu-west-1"},
        {"account_id": "222233334444", "region": "us-east-1"},
        {"account_id": "111122223333", "region": "eu-west-1"},
        {"account_id": "111122223333", "region": "us-east-1"},
    ]


def test_lead_hours_are_deduplicated_and_sorted_descending() -> None:
    document = repo_document()
    document["notifications"]["lead_hours"] = [1, 24, 1, 168]
    assert parse_policy(document).notification_lead_hours == (168, 24, 1)


def test_the_owner_digest_is_off_unless_the_policy_names_its_day_and_the_report_url_is_optional() -> None:
    minimal = parse_policy({"version": 1})
    assert (minimal.digest_day, minimal.report_url) == (None, None)
    url = "https://reports.example.com/tagpatch/report.html"
    chosen = parse_policy({"version": 1, "notifications": {"digest_day": "FRI", "report_url": url}})
    assert (chosen.digest_day, chosen.report_url) == ("FRI", url)


# --- bad policies ---------------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: object) -> Mutation:
    """A mutation that sets a dotted path (window names contain no dots in these cases)."""

    def mutate(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = document
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = document
        for key in parents:
            node = node[key]
        del node[last]

    return mutate


def _rename_window(old: str, new: str) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        document["windows"][new] = document["windows"].pop(old)

    return mutate


def _both(*mutations: Mutation) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        for mutation in mutations:
            mutation(document)

    return mutate


BAD_POLICIES: list[tuple[str, Mutation, tuple[str, ...]]] = [
    (
        "unknown-top-level-key",
        _set("maintenance", {"enabled": True}),
        ("policy.maintenance: unknown key; expected one of backup_retention, baselines, defaults, notifications",),
    ),
    ("version-2", _set("version", 2), ("version: must be 1 (got 2)",)),
    ("version-missing", _delete("version"), ("version: must be 1 (got None)",)),
    (
        "duration-25",
        _set("windows.sun-0200.duration_hours", 25),
        ("windows.sun-0200.duration_hours: must be a whole number from 1 to 24 (got 25)",),
    ),
    (
        "duration-not-a-number",
        _set("windows.sun-0200.duration_hours", "3"),
        ("windows.sun-0200.duration_hours: must be a whole number from 1 to 24 (got '3')",),
    ),
    (
        "cutoff-equals-duration",
        _set("windows.sun-0200.cutoff_hours", 3),
        ("windows.sun-0200.cutoff_hours: must be less than duration_hours (3 >= 3)",),
    ),
    (
        "cutoff-exceeds-default-duration",
        _set("defaults.window.cutoff_hours", 4),
        ("defaults.window.cutoff_hours: must be less than duration_hours (4 >= 3)",),
    ),
    (
        "timezone-mars",
        _set("windows.tue-2330.timezone", "Mars/Base"),
        ("windows.tue-2330.timezone: 'Mars/Base' is not an IANA time zone",),
    ),
    (
        "timezone-path",
        _set("defaults.window.timezone", "../../etc/passwd"),
        ("defaults.window.timezone: '../../etc/passwd' is not an IANA time zone",),
    ),
    (
        "schedule-without-question-mark",
        _set("windows.sun-0200.schedule", "cron(0 2 * * SUN *)"),
        ('windows.sun-0200.schedule: cron expression needs "?" in either day-of-month or day-of-week',),
    ),
    ("schedule-missing", _delete("windows.sun-0200.schedule"), ("windows.sun-0200.schedule: is required",)),
    (
        "offset-days-7",
        _set("windows.tue-2330.offset_days", 7),
        ("windows.tue-2330.offset_days: must be a whole number from 1 to 6 (got 7)",),
    ),
    (
        "offset-with-rate-schedule",
        _set("windows.tue-2330.schedule", "rate(7 days)"),
        ("windows.tue-2330.offset_days: is only allowed with a cron(...) schedule",),
    ),
    (
        "unknown-window-key",
        _set("windows.sun-0200.start", "02:00"),
        ("windows.sun-0200.start: unknown key; expected one of cutoff_hours, duration_hours",),
    ),
    (
        "bad-operation",
        _set("windows.scan-daily.task.operation", "Upgrade"),
        ("windows.scan-daily.task.operation: must be Install or Scan (got 'Upgrade')",),
    ),
    (
        "bad-default-operation",
        _set("defaults.task.operation", "install"),
        ("defaults.task.operation: must be Install or Scan (got 'install')",),
    ),
    (
        "bad-reboot-option",
        _set("defaults.task.reboot_option", "RebootAlways"),
        ("defaults.task.reboot_option: must be RebootIfNeeded or NoReboot (got 'RebootAlways')",),
    ),
    (
        "max-concurrency-0",
        _set("defaults.task.max_concurrency", "0"),
        ("defaults.task.max_concurrency: must be a count like 10 or a percentage like 10% (got '0')",),
    ),
    (
        "max-errors-101-percent",
        _set("windows.sun-0200.task", {"max_errors": "101%"}),
        ("windows.sun-0200.task.max_errors: must be a count like 10 or a percentage like 10% (got '101%')",),
    ),
    (
        "priority-9",
        _set("defaults.task.priority", 9),
        ("defaults.task.priority: must be a whole number from 0 to 5 (got 9)",),
    ),
    (
        "unknown-task-key",
        _set("defaults.task.document", "AWS-RunShellScript"),
        (
            "defaults.task.document: unknown key; expected one of backup, cutoff_behavior, hooks, "
            "max_concurrency, max_errors",
        ),
    ),
    (
        "backup-tape",
        _set("windows.sun-0200.task", {"backup": "tape"}),
        ("windows.sun-0200.task.backup: must be image, snapshot or none (got 'tape')",),
    ),
    (
        "backup-on-a-scan-task",
        _set("windows.sun-0200.task", {"operation": "Scan", "backup": "image"}),
        ("windows.sun-0200.task.backup: only an Install task takes a backup (this task scans)",),
    ),
    (
        "patch-group-backup-tape",
        _set("patch_groups", {"web-prod": {"backup": "tape"}}),
        ("patch_groups.web-prod.backup: must be image, snapshot or none (got 'tape')",),
    ),
    (
        "patch-group-unknown-key",
        _set("patch_groups", {"web-prod": {"hooks": {"post_install": "x"}}}),
        ("patch_groups.web-prod.hooks: unknown key; expected one of backup",),
    ),
    (
        "patch-group-bad-name",
        _set("patch_groups", {"web prod!": {"backup": "image"}}),
        ("patch_groups.web prod!: not a patch group name (1-256 letters, numbers, spaces and _.:/=+-@)",),
    ),
    (
        "patch-groups-not-a-mapping",
        _set("patch_groups", ["web-prod"]),
        ("patch_groups: must be a mapping (got list)",),
    ),
    (
        "unknown-os-in-baselines",
        _set("baselines.AMAZON_LINUX_2025", "aws-default"),
        ("baselines.AMAZON_LINUX_2025: unknown operating system; expected one of ALMA_LINUX",),
    ),
    (
        "baseline-pb-123",
        _set("baselines.UBUNTU", "pb-123"),
        (
            "baselines.UBUNTU: must be 'aws-default', 'custom:<name>' or a baseline id like "
            "pb-0123456789abcdef0 (got 'pb-123')",
        ),
    ),
    (
        "baseline-custom-name-too-short",
        _set("baselines.WINDOWS", "custom:w"),
        ("baselines.WINDOWS: custom baseline name 'w' must be 3-100 of",),
    ),
    (
        "window-name-looks-like-a-schedule",
        _rename_window("sun-0200", "cron(0 2 ? * SUN *)"),
        ("windows.cron(0 2 ? * SUN *): window names must be 1-100 of A-Z a-z 0-9 _ . -",),
    ),
    (
        "window-name-with-spaces",
        _rename_window("sun-0200", "sunday 02 00"),
        ("windows.sunday 02 00: window names must be 1-100 of A-Z a-z 0-9 _ . -",),
    ),
    (
        "window-not-a-mapping",
        _set("windows.sun-0200", "cron(0 2 ? * SUN *)"),
        ("windows.sun-0200: must be a mapping (got str)",),
    ),
    (
        "lead-hours-empty",
        _set("notifications.lead_hours", []),
        ("notifications.lead_hours: must be a non-empty list of hours",),
    ),
    (
        "lead-hours-zero",
        _set("notifications.lead_hours", [24, 0]),
        ("notifications.lead_hours[1]: must be a whole number from 1 to 720 (got 0)",),
    ),
    (
        "share-1.5",
        _set("reconcile.max_window_deletion_share", 1.5),
        ("reconcile.max_window_deletion_share: must be a number from 0 to 1 (got 1.5)",),
    ),
    (
        "share-bool",
        _set("reconcile.max_window_deletion_share", True),
        ("reconcile.max_window_deletion_share: must be a number from 0 to 1 (got True)",),
    ),
    (
        "service-role-admin",
        _set("defaults.task.service_role", "admin"),
        ("defaults.task.service_role: must be 'service-linked' or an IAM role ARN (got 'admin')",),
    ),
    (
        "cutoff-behavior-unknown",
        _set("defaults.task.cutoff_behavior", "STOP"),
        ("defaults.task.cutoff_behavior: must be CANCEL_TASK or CONTINUE_TASK (got 'STOP')",),
    ),
    (
        "defaults-window-schedule",
        _set("defaults.window.schedule", "cron(0 2 ? * SUN *)"),
        ("defaults.window.schedule: unknown key",),
    ),
    (
        "scan-unknown-key",
        _set("scan.interval", "daily"),
        ("scan.interval: unknown key; expected one of covers, enabled, schedule, stale_after_days",),
    ),
    ("scan-not-mapping", _set("scan", "daily"), ("scan: must be a mapping (got str)",)),
    ("scan-enabled-text", _set("scan.enabled", "yes"), ("scan.enabled: must be true or false (got 'yes')",)),
    ("scan-enabled-number", _set("scan.enabled", 1), ("scan.enabled: must be true or false (got 1)",)),
    ("scan-schedule-empty", _set("scan.schedule", " "), ("scan.schedule: must be a non-empty string",)),
    ("scan-schedule-not-text", _set("scan.schedule", 24), ("scan.schedule: must be a non-empty string (got 24)",)),
    (
        "scan-schedule-bad-cron",
        _set("scan.schedule", "cron(0 4 * * *)"),
        ("scan.schedule: cron(0 4 * * *): expected 6",),
    ),
    (
        "scan-schedule-too-often",
        _set("scan.schedule", "rate(10 minutes)"),
        ("scan.schedule: rate(10 minutes) runs more often than every 30 minutes",),
    ),
    (
        "scan-cron-too-often",
        _set("scan.schedule", "cron(0/20 * ? * * *)"),
        ("scan.schedule: cron(0/20 * ? * * *) starts runs only 20 minutes apart",),
    ),
    ("scan-schedule-once", _set("scan.schedule", "at(2026-12-01T04:00:00)"), ("the scan must repeat",)),
    ("scan-schedule-seconds", _set("scan.schedule", "cron(5 0 4 ? * * *)"), ("has a Seconds field",)),
    (
        "scan-covers-unknown",
        _set("scan.covers", "tagged"),
        ("scan.covers: must be patch-group-tag or all-managed (got 'tagged')",),
    ),
    (
        "scan-stale-0",
        _set("scan.stale_after_days", 0),
        ("scan.stale_after_days: must be a whole number from 1 to 365 (got 0)",),
    ),
    (
        "scan-stale-fraction",
        _set("scan.stale_after_days", 1.5),
        ("scan.stale_after_days: must be a whole number from 1 to 365 (got 1.5)",),
    ),
    (
        "scan-stale-bool",
        _set("scan.stale_after_days", True),
        ("scan.stale_after_days: must be a whole number from 1 to 365 (got True)",),
    ),
    ("targets-not-mapping", _set("targets", ["111122223333"]), ("targets: must be a mapping (got list)",)),
    (
        "targets-unknown-key",
        _set("targets.account", ["111122223333"]),
        ("targets.account: unknown key; expected one of accounts, max_concurrency, organizational_units, regions",),
    ),
    (
        "targets-accounts-empty",
        _set("targets.accounts", []),
        ("targets.accounts: must be a non-empty list, each a 12-digit account id",),
    ),
    (
        "targets-accounts-short-id",
        _set("targets.accounts", ["111122223333", "12345"]),
        ("targets.accounts[1]: must be a 12-digit account id (got '12345')",),
    ),
    (
        "targets-accounts-number",
        _set("targets.accounts", [111122223333]),
        ("targets.accounts[0]: must be a 12-digit account id (got 111122223333)",),
    ),
    (
        "targets-accounts-twice",
        _set("targets.accounts", ["111122223333", "111122223333"]),
        ("targets.accounts[1]: 111122223333 is listed twice",),
    ),
    (
        "targets-ou-malformed",
        _set("targets.organizational_units", ["ou-prod"]),
        ("targets.organizational_units[0]: must be an OU id like ou-ab12-cd34ef56",),
    ),
    (
        "targets-region-malformed",
        _set("targets.regions", ["eu-west-1", "Frankfurt"]),
        ("targets.regions[1]: must be a Region name like eu-west-1 (got 'Frankfurt')",),
    ),
    (
        "targets-region-not-list",
        _set("targets.regions", "eu-west-1"),
        ("targets.regions: must be a non-empty list, each a Region name",),
    ),
    (
        "targets-concurrency-41",
        _set("targets.max_concurrency", 41),
        ("targets.max_concurrency: must be a whole number from 1 to 40, the most an inline Map runs at once (got 41)",),
    ),
    ("targets-concurrency-0", _set("targets.max_concurrency", 0), ("targets.max_concurrency: must be a whole",)),
    ("targets-concurrency-bool", _set("targets.max_concurrency", True), ("(got True)",)),
    (
        "digest-day-lowercase",
        _set("notifications.digest_day", "mon"),
        ("notifications.digest_day: must be one of MON, TUE, WED, THU, FRI, SAT, SUN (got 'mon')",),
    ),
    (
        "report-url-with-fragment",
        _set("notifications.report_url", "https://reports.example.com/report.html#owner-a"),
        ("notifications.report_url: must be an https:// or s3:// address of report.html",),
    ),
    (
        "report-url-plain-http",
        _set("notifications.report_url", "http://reports.example.com/report.html"),
        ("notifications.report_url: must be an https:// or s3:// address",),
    ),
    (
        "duration-0-with-default-cutoff",
        _both(_delete("windows.sun-0200.cutoff_hours"), _set("windows.sun-0200.duration_hours", 0)),
        ("windows.sun-0200.duration_hours: must be a whole number from 1 to 24 (got 0)",),
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [pytest.param(mutate, expected, id=name) for name, mutate, expected in BAD_POLICIES],
)
def test_bad_policy_is_rejected_naming_the_key(mutate: Mutation, expected: tuple[str, ...]) -> None:
    document = copy.deepcopy(repo_document())
    mutate(document)
    with pytest.raises(InvalidPatchPolicy) as caught:
        parse_policy(document, "policy/patch-policy.yaml")
    message = str(caught.value)
    assert message.startswith("policy/patch-policy.yaml: ")
    for fragment in expected:
        assert fragment in message


def test_the_mutations_really_are_the_only_problem() -> None:
    """Each bad policy differs from the repo's valid one, which must itself parse."""
    assert len(BAD_POLICIES) >= 15
    parse_policy(copy.deepcopy(repo_document()))


def test_service_role_arn_is_accepted() -> None:
    document = repo_document()
    role = "arn:aws:iam::123456789012:role/service-role/tagpatch-maintenance-window"
    document["defaults"]["task"]["service_role"] = role
    assert parse_policy(document).default_task.service_role == role


@pytest.mark.parametrize("document", [None, [], "version: 1"], ids=["null", "list", "string"])
def test_a_document_that_is_not_a_mapping(document: object) -> None:
    with pytest.raises(InvalidPatchPolicy, match=r"^<memory>: policy: must be a mapping"):
        parse_policy(document)


# --- the file itself ------------------------------------------------------------------------------


def test_load_policy_on_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    with pytest.raises(InvalidPatchPolicy) as caught:
        load_policy(path)
    assert str(caught.value) == f"{path}: cannot read the patch policy: No such file or directory"


def test_load_policy_on_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "patch-policy.yaml"
    path.write_text("version: 1\nwindows:\n  sun-0200: {schedule: cron(0 2 ? * SUN *)\n", encoding="utf-8")
    with pytest.raises(InvalidPatchPolicy) as caught:
        load_policy(path)
    assert str(caught.value).startswith(f"{path}: not valid YAML: ")


def test_load_policy_names_the_file_in_a_rule_violation(tmp_path: Path) -> None:
    path = tmp_path / "patch-policy.yaml"
    path.write_text("version: 1\nreconcile:\n  max_window_deletion_share: 2\n", encoding="utf-8")
    with pytest.raises(InvalidPatchPolicy) as caught:
        load_policy(path)
    assert str(caught.value) == (f"{path}: reconcile.max_window_deletion_share: must be a number from 0 to 1 (got 2)")


@pytest.mark.parametrize(
    ("where", "key"),
    [("top", "bad\nkey"), ("top", "tab\there"), ("window", "night\nly"), ("window", "a.b\rc")],
)
def test_a_key_with_a_control_character_is_named_quoted_on_one_line(where: str, key: str) -> None:
    document = repo_document()
    if where == "top":
        document[key] = 1
    else:
        document["windows"][key] = {"schedule": "cron(0 2 ? * SUN *)", "bogus": 1}
    with pytest.raises(InvalidPatchPolicy) as raised:
        parse_policy(document, "policy.yaml")
    message = str(raised.value)
    assert "\n" not in message and "\r" not in message and "\t" not in message
    assert repr(key) in message


def test_backup_is_read_from_the_defaults_and_a_window_takes_it_away_with_none() -> None:
    document = repo_document()
    document["defaults"]["task"]["backup"] = "snapshot"
    document["windows"]["sun-0200"]["task"] = {"backup": "image"}
    document["windows"]["tue-2330"]["task"] = {"backup": "none"}
    found = parse_policy(document)
    assert TaskSettings().backup is None
    assert found.default_task.backup == "snapshot"
    assert found.windows["sun-0200"].task.backup == "image"
    assert found.windows["tue-2330"].task.backup is None


def test_a_patch_group_entry_names_its_backup_and_none_takes_the_window_s_away() -> None:
    document = repo_document()
    document["patch_groups"] = {"db-prod": {"backup": "snapshot"}, "web-prod": {"backup": "none"}, "ops": {}}
    found = parse_policy(document)
    assert dict(found.patch_group_backups) == {"db-prod": "snapshot", "web-prod": None}
    install = TaskSettings(backup="image")
    assert found.task_for_group(install, "db-prod").backup == "snapshot"
    assert found.task_for_group(install, "web-prod").backup is None
    assert found.task_for_group(install, "ops") == install  # no entry: the window's task as it is
    scan = TaskSettings(operation="Scan")
    assert found.task_for_group(scan, "db-prod") == scan  # a Scan task takes no backup
