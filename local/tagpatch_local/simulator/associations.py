"""State Manager associations: created, read, updated, deleted, tagged, and run in simulated time.

moto (pinned, see requirements/dev.txt) implements no association operation, so all of them are
fakes here. Written from the SSM API reference (CreateAssociation, UpdateAssociation,
DeleteAssociation, DescribeAssociation, ListAssociations, Target, AssociationLimitExceeded) and the
User Guide ("Reference: Cron and rate expressions for Systems Manager", "Working with associations"),
never from tagpatch:

- An association runs a document on the managed nodes its Targets select: `InstanceIds` (`*` for
  every managed node), `tag:<key>` or `tag-key`, resolved as for maintenance window targets (OR across
  Values). The simulator models the one Targets entry tagpatch sends; how SSM combines several entries
  for an association is not documented, so several are refused (`InvalidTarget`, docs/simulator.md).
- It runs once as soon as it is created or updated, unless ApplyOnlyAtCronInterval is true (not
  allowed with a rate expression), and then on its ScheduleExpression: cron(...) (6 fields, UTC) or
  rate(...), at least 30 minutes apart. Every run, the first too, is started by `advance_clock` at its
  simulated minute, as window runs are: never inside the API call that made it.
- At most 2,000 associations per account and Region (AssociationLimitExceeded), 1,000 versions each
  (AssociationVersionLimitExceeded).
- Each run is a Run Command command of the document over the selected nodes, with the association's
  MaxConcurrency and MaxErrors: AWS-RunPatchBaseline goes through the same code as a window's task
  (`executions`), so a Scan writes the node's patch state, its Patch compliance and the resource data
  sync exactly as a window's Scan does, and a stopped node or one whose agent is offline is not scanned.

Never imports tagpatch.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from moto.ssm.exceptions import SSMException, ValidationException
from moto.ssm.models import ssm_backends

from tagpatch_local.simulator import clock, executions, quotas
from tagpatch_local.simulator.core import (
    backend_state,
    drop_none,
    operation,
    page_of,
    request_params,
    ssm_backend,
    validate_input,
)
from tagpatch_local.simulator.occurrences import WindowTiming, occurrences
from tagpatch_local.simulator.schedules import schedule_problem
from tagpatch_local.simulator.targets import INSTANCE_IDS, TAG_KEY, TAG_PREFIX, build_index

_STATE_ATTR: Final = "tagpatch_associations"
# The documents the simulated account has besides the ones created in it: AWS-owned, with the
# parameters and allowed values of their published definitions.
AWS_DOCUMENTS: Final[Mapping[str, Mapping[str, tuple[str, ...] | None]]] = {
    executions.PATCH_DOCUMENT: {
        "Operation": ("Scan", "Install"),
        "SnapshotId": None,
        "InstallOverrideList": None,
        "BaselineOverride": None,
        "RebootOption": ("RebootIfNeeded", "NoReboot"),
    },
}
MIN_MINUTES_BETWEEN_RUNS: Final = 30
TAGGING_TYPE: Final = "Association"  # SSM's ResourceTypeForTagging


class AssociationDoesNotExist(SSMException):
    def __init__(self, message: str = "The specified association does not exist.") -> None:
        super().__init__("AssociationDoesNotExist", message)


class AssociationLimitExceeded(SSMException):
    def __init__(self) -> None:
        super().__init__(
            "AssociationLimitExceeded", f"You can have at most {quotas.MAX_ASSOCIATIONS:,} active associations."
        )


class AssociationVersionLimitExceeded(SSMException):
    def __init__(self) -> None:
        super().__init__(
            "AssociationVersionLimitExceeded",
            f"Each association has a limit of {quotas.MAX_ASSOCIATION_VERSIONS:,} versions.",
        )


class InvalidDocument(SSMException):
    def __init__(self, message: str = "The specified document does not exist.") -> None:
        super().__init__("InvalidDocument", message)


class InvalidParameters(SSMException):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidParameters", message)


class InvalidTarget(SSMException):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidTarget", message)


class InvalidSchedule(SSMException):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidSchedule", message)


@dataclass
class Association:
    association_id: str
    document: str
    association_name: str | None
    targets: list[dict[str, Any]]
    parameters: dict[str, list[str]]
    schedule: str | None
    max_concurrency: str | None
    max_errors: str | None
    compliance_severity: str | None
    apply_only_at_cron_interval: bool
    created: datetime
    updated: datetime  # the schedule counts from here: a rate() from the latest create or update
    version: int = 1
    last_run: datetime | None = None
    last_status: str = "Pending"  # the association's overview: Pending until its first run ends
    command_ids: list[str] = field(default_factory=list)
    # The run a create or update starts at once: started when the clock next advances, at that
    # simulated minute, like a window's run (so its work is SSM's, never the calling function's).
    pending_run: datetime | None = None

    def description(self, region: str) -> dict[str, Any]:
        return drop_none(
            {
                "Name": self.document,
                "AssociationVersion": str(self.version),
                "Date": self.created,
                "LastUpdateAssociationDate": self.updated,
                "Overview": {"Status": self.last_status},
                "DocumentVersion": "$DEFAULT",
                "Parameters": self.parameters or None,
                "AssociationId": self.association_id,
                "Targets": self.targets,
                "ScheduleExpression": self.schedule,
                "LastExecutionDate": self.last_run,
                "AssociationName": self.association_name,
                "MaxErrors": self.max_errors,
                "MaxConcurrency": self.max_concurrency,
                "ComplianceSeverity": self.compliance_severity,
                "SyncCompliance": "AUTO",
                "ApplyOnlyAtCronInterval": self.apply_only_at_cron_interval,
            }
        )

    def summary(self) -> dict[str, Any]:
        return drop_none(
            {
                "Name": self.document,
                "AssociationId": self.association_id,
                "AssociationVersion": str(self.version),
                "DocumentVersion": "$DEFAULT",
                "Targets": self.targets,
                "LastExecutionDate": self.last_run,
                "Overview": {"Status": self.last_status},
                "ScheduleExpression": self.schedule,
                "AssociationName": self.association_name,
            }
        )


@dataclass
class AssociationState:
    associations: dict[str, Association] = field(default_factory=dict)  # in creation order
    lock: threading.RLock = field(default_factory=threading.RLock)


def association_state(account_id: str, region: str) -> AssociationState:
    return backend_state(ssm_backends[account_id][region], _STATE_ATTR, AssociationState)


def association_exists(account_id: str, region: str, association_id: str) -> bool:
    return association_id in association_state(account_id, region).associations


# --- validation -----------------------------------------------------------------------------------


def _check_document(response: Any, name: str, parameters: Mapping[str, list[str]]) -> None:
    allowed = AWS_DOCUMENTS.get(name)
    if allowed is None:
        if name not in ssm_backend(response)._documents:
            raise InvalidDocument()
        return  # a document made in the account: moto keeps its parameters, the simulator does not check them
    for key, values in parameters.items():
        if key not in allowed:
            raise InvalidParameters(f"Parameter {key!r} is not defined in document {name}.")
        choices = allowed[key]
        if choices is not None and any(value not in choices for value in values):
            raise InvalidParameters(f"Parameter {key!r} of document {name} allows only {', '.join(choices)}.")


def _check_targets(targets: list[dict[str, Any]]) -> None:
    if len(targets) != 1:
        raise InvalidTarget(
            f"The simulator models associations with exactly one Targets entry (docs/simulator.md); got {len(targets)}."
        )
    key = str(targets[0].get("Key", ""))
    values = [str(v) for v in targets[0].get("Values") or ()]
    if not values:
        raise InvalidTarget(f"Target {key} has no values.")
    if key == INSTANCE_IDS:
        if "*" in values and values != ["*"]:
            raise InvalidTarget("InstanceIds=* targets every managed node and cannot be combined with ids.")
        return
    if key == TAG_KEY or (key.startswith(TAG_PREFIX) and len(key) > len(TAG_PREFIX)):
        return
    raise InvalidTarget(
        f"Target key {key!r} is not supported for State Manager; use InstanceIds, tag:<key> or tag-key."
    )


def _check_schedule(schedule: str | None, apply_only_at_cron_interval: bool) -> None:
    if schedule is None:
        if apply_only_at_cron_interval:
            raise InvalidSchedule("ApplyOnlyAtCronInterval requires a cron ScheduleExpression.")
        return
    if schedule.startswith("at("):
        raise InvalidSchedule(f"Schedule expression {schedule!r}: the simulator models repeating associations only.")
    if (problem := schedule_problem(schedule)) is not None:
        raise InvalidSchedule(f"Schedule expression {schedule!r} is not valid: {problem}.")
    if schedule.startswith("cron(") and len(schedule[len("cron(") : -1].split(" ")) != 6:
        raise InvalidSchedule(f"Schedule expression {schedule!r}: an association's cron takes 6 fields.")
    # The shortest gap between two runs over two days (a daily schedule's runs are a day apart).
    timing = WindowTiming(schedule, datetime(2000, 1, 1, tzinfo=UTC))
    runs = list(occurrences(timing, timing.created, timing.created + timedelta(days=2)))
    gaps = [(later - earlier) / timedelta(minutes=1) for earlier, later in itertools.pairwise(runs)]
    if gaps and min(gaps) < MIN_MINUTES_BETWEEN_RUNS:
        raise InvalidSchedule(
            f"Schedule expression {schedule!r} runs more often than every {MIN_MINUTES_BETWEEN_RUNS} minutes."
        )
    if apply_only_at_cron_interval and not schedule.startswith("cron("):
        raise InvalidSchedule("ApplyOnlyAtCronInterval is not supported for rate expressions.")


def _targets(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {"Key": str(t["Key"]), "Values": [str(v) for v in t.get("Values") or ()]} for t in params.get("Targets") or ()
    ]


def _parameters(params: Mapping[str, Any]) -> dict[str, list[str]]:
    return {str(k): [str(v) for v in values] for k, values in (params.get("Parameters") or {}).items()}


# --- running ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RateControls:
    """What `executions` reads of a task: an association's MaxConcurrency, MaxErrors, no timeout."""

    max_concurrency: str | None
    max_errors: str | None
    task_invocation_parameters: Mapping[str, Any] = field(default_factory=dict)


def run_association(account_id: str, region: str, association: Association, at: datetime) -> None:
    """Apply the association now: one Run Command command over the managed nodes its target selects."""
    index = build_index(account_id, region)
    key, values = association.targets[0]["Key"], association.targets[0]["Values"]
    selected = sorted(index.managed if key == INSTANCE_IDS and values == ["*"] else index.select(association.targets))
    association.last_run = at
    if not selected:
        association.last_status = "Success"
        return
    command = executions.start_command(
        account_id,
        region,
        selected,
        association.parameters,
        _RateControls(association.max_concurrency, association.max_errors),
        at,
    )
    association.command_ids.append(command.command_id)
    association.last_status = "Success" if command.status == "Success" else "Failed"


def due_runs(account_id: str, region: str, after: datetime, until: datetime) -> list[tuple[datetime, str]]:
    """(start, association id) of every run due by `until`: the pending run of a create or update, and
    every scheduled run in (after, until]."""
    state = association_state(account_id, region)
    with state.lock:
        # A run pending since before `after` (made while the clock followed real time) starts at `after`:
        # the clock never goes back.
        pending = [
            (max(association.pending_run, after), association.association_id)
            for association in state.associations.values()
            if association.pending_run is not None and association.pending_run <= until
        ]
        scheduled = [
            (run, association.association_id)
            for association in state.associations.values()
            if association.schedule is not None
            for run in occurrences(WindowTiming(association.schedule, association.updated), after, until)
        ]
    return pending + scheduled


def run_due(account_id: str, region: str, association_id: str, at: datetime) -> None:
    association = association_state(account_id, region).associations.get(association_id)
    if association is None:
        return  # deleted before its run
    if association.pending_run is not None and association.pending_run <= at:
        association.pending_run = None
    run_association(account_id, region, association, at)


def _due_at_once_unless_deferred(association: Association) -> None:
    association.pending_run = None if association.apply_only_at_cron_interval else association.updated


# --- the operations ---------------------------------------------------------------------------------


def _state(response: Any) -> AssociationState:
    return association_state(response.current_account, response.region)


def _find(response: Any, params: Mapping[str, Any]) -> Association:
    association_id = params.get("AssociationId")
    if not association_id:
        raise ValidationException("Specify the AssociationId (the simulator models no InstanceId associations).")
    found = _state(response).associations.get(str(association_id))
    if found is None:
        raise AssociationDoesNotExist()
    return found


@operation("CreateAssociation")
def _create_association(response: Any) -> dict[str, Any]:
    params = request_params(response)
    validate_input("CreateAssociation", params)
    if params.get("InstanceId"):
        raise ValidationException("The simulator models associations with Targets only, not InstanceId.")
    targets, parameters = _targets(params), _parameters(params)
    document = str(params["Name"])
    _check_document(response, document, parameters)
    _check_targets(targets)
    apply_only = params.get("ApplyOnlyAtCronInterval") is True
    _check_schedule(params.get("ScheduleExpression"), apply_only)
    now = clock.now(response.current_account, response.region)
    state = _state(response)
    with state.lock:
        if len(state.associations) >= quotas.MAX_ASSOCIATIONS:
            raise AssociationLimitExceeded()
        association = Association(
            association_id=str(uuid.uuid4()),
            document=document,
            association_name=params.get("AssociationName"),
            targets=targets,
            parameters=parameters,
            schedule=params.get("ScheduleExpression"),
            max_concurrency=params.get("MaxConcurrency"),
            max_errors=params.get("MaxErrors"),
            compliance_severity=params.get("ComplianceSeverity"),
            apply_only_at_cron_interval=apply_only,
            created=now,
            updated=now,
        )
        state.associations[association.association_id] = association
        tags = {str(t["Key"]): str(t["Value"]) for t in params.get("Tags") or ()}
        if tags:
            ssm_backend(response)._resource_tags[TAGGING_TYPE][association.association_id].update(tags)
        _due_at_once_unless_deferred(association)
    return {"AssociationDescription": association.description(response.region)}


@operation("UpdateAssociation")
def _update_association(response: Any) -> dict[str, Any]:
    params = request_params(response)
    validate_input("UpdateAssociation", params)
    state = _state(response)
    with state.lock:
        association = _find(response, params)
        if params.get("AssociationVersion") not in (None, "$LATEST", str(association.version)):
            raise SSMException("InvalidAssociationVersion", "The association version is not the latest.")
        if association.version >= quotas.MAX_ASSOCIATION_VERSIONS:
            raise AssociationVersionLimitExceeded()
        document = str(params.get("Name") or association.document)
        # UpdateAssociation overwrites the optional members it is not given (API reference), so the
        # new version has exactly what this request says.
        targets = _targets(params) if params.get("Targets") else association.targets
        parameters = _parameters(params)
        _check_document(response, document, parameters)
        _check_targets(targets)
        apply_only = params.get("ApplyOnlyAtCronInterval") is True
        _check_schedule(params.get("ScheduleExpression"), apply_only)
        association.document = document
        association.targets = targets
        association.parameters = parameters
        association.schedule = params.get("ScheduleExpression")
        association.association_name = params.get("AssociationName")
        association.max_concurrency = params.get("MaxConcurrency")
        association.max_errors = params.get("MaxErrors")
        association.compliance_severity = params.get("ComplianceSeverity")
        association.apply_only_at_cron_interval = apply_only
        association.updated = clock.now(response.current_account, response.region)
        association.version += 1
        _due_at_once_unless_deferred(association)
    return {"AssociationDescription": association.description(response.region)}


@operation("DeleteAssociation")
def _delete_association(response: Any) -> dict[str, Any]:
    params = request_params(response)
    validate_input("DeleteAssociation", params)
    state = _state(response)
    with state.lock:
        association = _find(response, params)
        del state.associations[association.association_id]
        ssm_backend(response)._resource_tags[TAGGING_TYPE].pop(association.association_id, None)
    return {}


@operation("DescribeAssociation")
def _describe_association(response: Any) -> dict[str, Any]:
    params = request_params(response)
    validate_input("DescribeAssociation", params)
    executions.settle(response.current_account, response.region, clock.now(response.current_account, response.region))
    return {"AssociationDescription": _find(response, params).description(response.region)}


_FILTERS: Final[Mapping[str, str]] = {
    "AssociationName": "association_name",
    "Name": "document",
    "AssociationId": "association_id",
}


@operation("ListAssociations")
def _list_associations(response: Any) -> dict[str, Any]:
    params = request_params(response)
    validate_input("ListAssociations", params)
    wanted: list[tuple[str, str]] = []
    for item in params.get("AssociationFilterList") or ():
        key = str(item.get("key"))
        if key not in _FILTERS:
            raise ValidationException(f"The simulator does not model the association filter {key!r}.")
        wanted.append((_FILTERS[key], str(item.get("value"))))
    found = [
        association.summary()
        for association in _state(response).associations.values()
        if all(getattr(association, attribute) == value for attribute, value in wanted)
    ]
    page, token = page_of("ListAssociations", found, params, quotas.ASSOCIATION_PAGE_BOUNDS)
    return drop_none({"Associations": page, "NextToken": token})
