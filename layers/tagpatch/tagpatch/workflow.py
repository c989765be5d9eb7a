"""The workflow, declared once: each step's function, the state machine and ASL Task states that invoke
it, what it reads and what it returns.

Two state machines: the patch cycle (`statemachines/patch_cycle.asl.json`), which patches one target,
and the org cycle (`statemachines/org_cycle.asl.json`), which lists the targets and starts a patch cycle
per target (docs/decisions.md, "Many accounts and Regions"). Each ASL stays the hand-written definition
`sam deploy` ships, and `template.yaml` declares the functions and the state machines' roles.
tests/unit/runner/test_workflow.py checks them, the handlers' return annotations, the sample events and
the README's diagram against `STEPS`, and says what to add where when one of them disagrees
(CONTRIBUTING.md, "Add a state").

Names follow one convention, so a step is declared by its name alone: step `TagValidation` is the
function `TagValidationFunction` with its code in `functions/tag_validation/`, the ASL names its ARN
`${TagValidationFunctionArn}`, and its sample event is `events/tag_validation.json`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import Final, NotRequired, TypedDict, get_type_hints, is_typeddict

from tagpatch.cycle import CyclePayload
from tagpatch.discovery import DiscoveryCursor
from tagpatch.monitoring_reads import MonitoringCursor
from tagpatch.org_targets import TargetItem

# --- what each step returns (the `Payload` its Task states select from) ----------------------------


class PrepareCycleResult(TypedDict):
    cycle: CyclePayload


class TagValidationResult(TypedDict):
    instances_key: str
    report_key: str
    total: int
    in_scope: int
    by_class: dict[str, int]
    owners_with_problems: int
    exception_errors: int
    expired_exceptions: int


class WindowUpsertResult(TypedDict):
    changes_key: str
    report_key: str
    counts: dict[str, dict[str, int]]
    windows_to_apply: list[str]  # in plan mode, none
    problems: int
    held_instances: int
    blocked_windows: int


class ApplyWindowResult(TypedDict):
    """One window's changes, all applied (a window SSM refused raises instead)."""

    window: str
    created: int
    updated: int
    deleted: int
    not_applied: int
    applied: dict[str, dict[str, int]]
    applied_key: str


class BaselineAssociationResult(TypedDict):
    changes_key: str
    report_key: str
    counts: dict[str, int]
    planned: dict[str, int]
    scan: dict[str, int]  # the patch scan association: planned, or in apply mode what SSM now has
    applied_key: str | None  # None in plan mode
    problems: int


class PrePatchNotificationResult(TypedDict):
    reminders_key: str
    counts: dict[str, int]
    pending: int | None  # None when skipped
    skipped: str | None  # why reminders were left alone


class PatchMonitoringResult(TypedDict):
    results_key: str
    by_outcome: dict[str, int]
    window_runs: int
    alerts_sent: int
    exception_notices: int
    since: str
    until: str


class BackupRetentionResult(TypedDict):
    """What the backup retention rule did this cycle (tagpatch.backup_retention); ids in `key`."""

    key: str  # the run's backup-retention.json
    deleted: int  # images and snapshots EC2 deleted (0 in plan mode)
    would_delete: int  # backups past the retention this cycle selected (in plan mode, deleted none)
    refused: int  # deletions EC2 refused: the cycle then fails and the alert names each
    kept: int
    deferred: int  # past the retention, left for the next cycle (tagpatch.backup_retention.MAX_DELETIONS_PER_CYCLE)


class ComplianceExportResult(TypedDict):
    snapshot_key: str
    latest_key: NotRequired[str]  # apply mode only
    report_key: str
    counts: dict[str, int]
    compliance_percent: float | None
    bytes: int
    owner_digests_sent: int  # this run; 0 in plan mode, when none is due, or with no digest_day
    backup_retention: BackupRetentionResult


class ReportFailureResult(TypedDict):
    message_id: str | None  # None when the org cycle started the cycle: its one alert names this failure


class ReleaseCycleResult(TypedDict):
    released: bool  # False when another execution holds the lease (this one's had expired) or none does


class ListTargetsResult(TypedDict):
    targets: list[TargetItem]  # each target's patch cycle starts with the org input and its `target`
    max_concurrency: int
    skipped: int  # accounts under the policy's OUs that are not ACTIVE, named in the targets file
    targets_key: str


class SummarizeTargetsResult(TypedDict):
    summary_key: str
    targets: int
    succeeded: int
    failed: int
    skipped: int
    alert_message_id: str | None  # None when nothing failed
    report_key: str | None  # the organization's report.html; None when home's page is the report
    report_error: str | None  # why the organization's report.html could not be written (already alerted)


# A step's result: a TypedDict, or a cursor dataclass whose payload is its fields (DiscoveryCursor).
Result = type


@dataclass(frozen=True)
class StateMachine:
    """One state machine of template.yaml and the ASL file it ships."""

    resource: str  # the logical id in template.yaml
    definition: str  # the ASL, from the repository's root
    # State machines it starts (their ARNs substituted as `${<resource>Arn}`, from `!Ref <resource>`).
    starts: tuple[str, ...] = ()
    # Topics it publishes to itself (an `sns:publish` Task), substituted the same way.
    publishes: tuple[str, ...] = ()


PATCH_CYCLE: Final = StateMachine("PatchCycleStateMachine", "statemachines/patch_cycle.asl.json")
ORG_CYCLE: Final = StateMachine(
    "OrgCycleStateMachine",
    "statemachines/org_cycle.asl.json",
    starts=(PATCH_CYCLE.resource,),
    publishes=("AlertsTopic",),  # SummaryFailed: the alert when SummarizeTargets itself fails
)
STATE_MACHINES: Final = (PATCH_CYCLE, ORG_CYCLE)


@dataclass(frozen=True)
class Step:
    """One Lambda function of a state machine and how the state machine uses it."""

    name: str
    # ASL Task state -> the result that invocation returns (one function may serve several states).
    invoked_by: Mapping[str, Result]
    # Top-level event fields the handler reads.
    reads: tuple[str, ...]
    # Event fields (dotted) that name the S3 objects or count the parts it reads.
    s3_reads: tuple[str, ...] = ()
    machine: StateMachine = PATCH_CYCLE

    @property
    def function(self) -> str:
        """The function's logical id in template.yaml."""
        return f"{self.name}Function"

    @property
    def code_dir(self) -> str:
        return f"functions/{snake_case(self.name)}/"

    @property
    def substitution(self) -> str:
        """The DefinitionSubstitutions key (and `${...}` placeholder) of the function's ARN."""
        return f"{self.function}Arn"

    @property
    def sample_event(self) -> str:
        return f"events/{snake_case(self.name)}.json"


def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


STEPS: Final[tuple[Step, ...]] = (
    Step(
        "PrepareCycle",
        {"PrepareCycle": PrepareCycleResult},
        reads=("input", "execution_id", "execution_name", "start_time", "state_machine_id"),
    ),
    Step(
        "Discovery",
        {"Discovery": DiscoveryCursor},
        reads=("cycle", "discovery"),
        s3_reads=("discovery.managed_parts",),
    ),
    Step(
        "TagValidation",
        {"TagValidation": TagValidationResult},
        reads=("cycle", "discovery"),
        s3_reads=("discovery.inventory_parts",),
    ),
    Step(
        "WindowUpsert",
        {"WindowUpsert": WindowUpsertResult},
        reads=("cycle", "validation"),
        s3_reads=("validation.instances_key",),
    ),
    Step(
        "ApplyWindowChanges",
        {"ApplyWindow": ApplyWindowResult},
        reads=("cycle", "window", "changes_key"),
        s3_reads=("changes_key",),
    ),
    Step(
        "BaselineAssociation",
        {"BaselineAssociation": BaselineAssociationResult},
        reads=("cycle", "validation"),
        s3_reads=("validation.instances_key",),
    ),
    Step(
        "PrePatchNotification",
        {"PrePatchNotification": PrePatchNotificationResult},
        reads=("cycle", "validation"),
        s3_reads=("validation.instances_key",),
    ),
    Step(
        "PatchMonitoring",
        {"MonitoringReads": MonitoringCursor, "PatchMonitoring": PatchMonitoringResult},
        reads=("cycle", "validation", "monitoring_reads"),
        s3_reads=(
            "validation.instances_key",
            "monitoring_reads.run_parts",
            "monitoring_reads.command_parts",
            "monitoring_reads.state_parts",
        ),
    ),
    Step(
        "ComplianceExport",
        {"ComplianceExport": ComplianceExportResult},
        reads=("cycle", "validation", "monitoring"),
        s3_reads=("validation.instances_key", "monitoring.results_key"),
    ),
    Step(
        "ReleaseCycle",
        {"ReleaseCycle": ReleaseCycleResult, "ReleaseAfterFailure": ReleaseCycleResult},
        reads=("cycle",),
    ),
    Step(
        "ReportFailure",
        {"ReportFailure": ReportFailureResult},
        reads=("cycle", "failed_state", "error", "window_results"),
    ),
    Step(
        "ListTargets",
        {"ListTargets": ListTargetsResult},
        reads=("org", "input"),
        machine=ORG_CYCLE,
    ),
    Step(
        "SummarizeTargets",
        {"SummarizeTargets": SummarizeTargetsResult, "SummarizeListingFailure": SummarizeTargetsResult},
        reads=("org", "results", "targets_key", "input", "error", "patch_cycle_state_machine"),
        machine=ORG_CYCLE,
    ),
)


def result_fields(result: Result) -> frozenset[str]:
    """The keys a result's payload has (or may have)."""
    if is_typeddict(result):
        return frozenset(get_type_hints(result))
    if is_dataclass(result):
        return frozenset(f.name for f in fields(result))
    raise TypeError(f"{result.__name__} is neither a TypedDict nor a dataclass")


# Functions of template.yaml that the state machine never invokes (AWS Config and EventBridge do).
OUTSIDE_THE_CYCLE: Final = ("ConfigTagRule", "ConfigNotifier")
