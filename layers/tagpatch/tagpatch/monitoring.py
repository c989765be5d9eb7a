"""PatchMonitoring: what happened to each instance in the windows that ran since the last cycle.

Pure outcome rules first. The reads of SSM are in tagpatch.monitoring_reads (bounded invocations from
a cursor); they grow with the windows that ran and with instances/50, never with instances x windows:
one listing of executions per tagpatch window, their tasks and task invocations, the command
invocations of each invocation (50 a page), and patch states 50 instances a call.

Every instance in scope gets exactly one outcome, with a reason naming the window, the time and
SSM's status:
- `patched`: the Install ran on it and succeeded;
- `failed`: the command failed or timed out on it;
- `missed`: its tags put it in a window that ran, but it was not patched (stopped, agent offline,
  not sent because MaxErrors was reached, the window did not succeed in starting, or the window's
  targets did not select it: the last one is a targeting error);
- `in_progress`: its window's run is still going (SSM is patching it, or has not reached it yet); it
  is never alerted, and the next cycle reads the run again and gives the final outcome once it ended;
- `scanned`: only a Scan ran;
- `not_due`: no window for it ran in the period;
- `not_scheduled`: its tags give it no window;
- `excepted`: a live patch exception covers it (patch-exceptions.yaml); it is never alerted, and its
  reason says what its window did, if one ran.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final, Literal, Protocol

from tagpatch.aws import client, paginate
from tagpatch.classes import EXCEPTED, NO_WINDOW_REASON, NOT_SELECTED_REASON, behaviour_of
from tagpatch.cycle import iso_z, parse_time
from tagpatch.desired import INSTANCE_IDS_KEY, DesiredState
from tagpatch.errors import ArtifactError, NotificationRejected, TransientAwsError
from tagpatch.exceptions import Notice
from tagpatch.freshness import scan_freshness, unknown_reason
from tagpatch.outcomes import AlertSeverity, Outcome, outcome_behaviour
from tagpatch.policy import HOOK_PARAMETERS, NO_HOOK, ScanSettings
from tagpatch.ssm_windows import is_owned_window
from tagpatch.target_messages import located_attributes, located_body, located_subject
from tagpatch.targets import Target

PATCH_STATE_BATCH: Final = 50  # DescribeInstancePatchStates takes at most 50 InstanceIds
PAGE_SIZE: Final = 100
COMMAND_PAGE_SIZE: Final = 50  # ListCommandInvocations maximum
_ONE_SECOND: Final = timedelta(seconds=1)

# Run Command StatusDetails that mean the node was never reached (they do not count toward MaxErrors).
_UNREACHED: Final[Mapping[str, str]] = {
    "Delivery Timed Out": "the instance was not reachable (stopped, or its agent was not running)",
    "Undeliverable": "SSM could not deliver the command (the agent is offline or the node is gone)",
    "Terminated": "it was not sent: the task had already passed its MaxErrors limit",
    "Cancelled": "it was not patched before the window's cutoff (the task's CutoffBehavior is CANCEL_TASK)",
}
SKIPPED: Final = "SKIPPED_OVERLAPPING"  # SSM did not start the run: the previous one was still running
# Window execution statuses of a run that has not ended (DescribeMaintenanceWindowExecutions).
UNFINISHED: Final = frozenset({"PENDING", "IN_PROGRESS", "CANCELLING"})


@dataclass(frozen=True)
class InstanceRun:
    """What one command invocation did to one instance."""

    instance_id: str
    status: str
    status_details: str


@dataclass(frozen=True)
class Backup:
    """What a backup task's backup step did for one instance before its patch."""

    outcome: str  # succeeded, failed, in_progress
    # The image (`backup: image`) or the EBS snapshots, comma-separated (`backup: snapshot`) the runbook
    # made; None unless it succeeded.
    backup_id: str | None


@dataclass(frozen=True)
class WindowRun:
    """One execution of a tagpatch window, with every instance its commands reached."""

    window_name: str
    window_execution_id: str
    status: str
    status_details: str
    started: datetime
    operations: frozenset[str]  # AWS-RunPatchBaseline operations its tasks ran (Install, Scan)
    instances: Mapping[str, tuple[str, InstanceRun]] = field(default_factory=dict)  # id -> (operation, run)
    ended: datetime | None = None  # None while the run is going (DescribeMaintenanceWindowExecutions EndTime)
    # The hook documents its AWS-RunPatchBaselineWithHooks tasks named, by the policy's key (AWS-Noop left out).
    hooks: Mapping[str, str] = field(default_factory=dict)
    # Instance id -> its backup, for a window whose Install task images first (`backup: image`).
    backups: Mapping[str, Backup] = field(default_factory=dict)


@dataclass(frozen=True)
class PatchState:
    missing: int
    critical_missing: int
    installed: int
    failed: int
    pending_reboot: int
    operation: str
    operation_end: datetime


@dataclass(frozen=True)
class InstanceOutcome:
    outcome: Outcome
    reason: str
    window: str | None
    command_status: str | None
    # The start of the window run the outcome tells of; None when no run of its window is in the period.
    run_started: datetime | None = None


def _by_id(instance_id: str) -> tuple[str, str, str, str]:
    return (INSTANCE_IDS_KEY, instance_id, "", "")


def _held(instance_id: str) -> tuple[str, str, str, str]:
    return ("Held", instance_id, "", "")


def hold_applied(line: Mapping[str, Any], expected: Mapping[tuple[str, str, str, str], str]) -> bool:
    """Whether the plan holds the instance back: a Scan task selects it (by id, or by tag for a gated wave)."""
    return _held(str(line.get("instance_id"))) in expected


def expected_windows(desired: DesiredState) -> Mapping[tuple[str, str, str, str], str]:
    """(patch group key, patch group, window key, window tag value) -> the window tagpatch put it in.

    An instance a target selects by id (a patch group with a held instance) is keyed
    ("InstanceIds", instance id, "", ""): its window is the one whose id target names it. A held instance
    is also keyed ("Held", instance id, "", ""), see `hold_applied`.
    """
    found: dict[tuple[str, str, str, str], str] = {}
    for hold in desired.holds:
        for instance_id in hold.held:
            found[_held(instance_id)] = hold.window
    for window in desired.windows:
        for target in window.targets:
            for instance_id in target.instance_ids:
                found[_by_id(instance_id)] = window.name
            for group in target.values:
                for value in target.window_values:
                    found[(target.tag_key, group, target.window_key, value)] = window.name
    return found


def window_of(line: Mapping[str, Any], expected: Mapping[tuple[str, str, str, str], str]) -> str | None:
    """The tagpatch window whose targets match the instance's tags exactly, whatever its class.

    SSM selects by tag, not by tagpatch's classification: a stopped or unmanaged instance that carries
    a ready instance's tags is still in that window's targets, and its outcome must say what happened.
    An instance selected by id is in the window of that target.
    """
    by_id = expected.get(_by_id(str(line.get("instance_id"))))
    if by_id is not None:
        return by_id
    if not line.get("patch_group") or not line.get("maintenance_window"):
        return None
    key = (
        str(line.get("patch_group_key") or ""),
        str(line["patch_group"]),
        str(line.get("window_key") or "Maintenance Window"),
        str(line["maintenance_window"]),
    )
    return expected.get(key)


def not_scheduled_reason(instance_class: str | None) -> str:
    behaviour = behaviour_of(instance_class)
    return behaviour.not_scheduled_reason if behaviour is not None else NO_WINDOW_REASON


def _at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def outcome_of(
    window: str | None, runs: Sequence[WindowRun], instance_id: str, instance_class: str | None = "ready"
) -> InstanceOutcome:
    """The outcome of one instance, from the runs of its window in the period (oldest first)."""
    if window is None:
        return InstanceOutcome("not_scheduled", not_scheduled_reason(instance_class), None, None)
    if not runs:
        return InstanceOutcome("not_due", f"window {window} did not run in this period", window, None)
    # The latest run that started tells the instance's state now; a skipped run changed nothing.
    started = [run for run in runs if run.status != SKIPPED]
    run = started[-1] if started else runs[-1]
    where = f"window {window} at {_at(run.started)}"
    reached = run.instances.get(instance_id)
    if run.status in UNFINISHED:
        return _in_progress(window, run, reached)
    if reached is None:
        return _not_reached(window, run, where, instance_class)
    return _reached(window, run, where, *reached)


def _not_reached(window: str, run: WindowRun, where: str, instance_class: str | None) -> InstanceOutcome:
    """An instance a finished run never reached: the run ended early, or did not select it."""
    if run.status not in ("SUCCESS", "FAILED"):
        return InstanceOutcome(
            "missed", f"{where} ended {run.status}: {run.status_details}".rstrip(": "), window, None, run.started
        )
    behaviour = behaviour_of(instance_class)
    not_selected = behaviour.not_selected_reason if behaviour is not None else NOT_SELECTED_REASON
    return InstanceOutcome("missed", f"{where} ran{not_selected}", window, None, run.started)


def _reached(window: str, run: WindowRun, where: str, operation: str, result: InstanceRun) -> InstanceOutcome:
    """An instance a finished run reached: how its command ended there."""
    status = f"{result.status}/{result.status_details}"
    if result.status == "Success":
        if operation == "Install":
            return InstanceOutcome("patched", f"{where}: Install succeeded", window, status, run.started)
        return InstanceOutcome("scanned", f"{where}: Scan succeeded (nothing installed)", window, status, run.started)
    if result.status_details in _UNREACHED:
        unreached = f"{where}: {_UNREACHED[result.status_details]} ({status})"
        return InstanceOutcome("missed", unreached, window, status, run.started)
    return InstanceOutcome("failed", f"{where}: {operation} ended {status}", window, status, run.started)


def _in_progress(window: str, run: WindowRun, reached: tuple[str, InstanceRun] | None) -> InstanceOutcome:
    """An instance of a run still going: no final outcome (and no alert) until the run has ended."""
    still = f"window {window} has been running since {_at(run.started)} ({run.status})"
    if reached is None:
        return InstanceOutcome(
            "in_progress",
            f"{still}; it has not reached it yet; the next cycle reports the outcome",
            window,
            None,
            run.started,
        )
    operation, result = reached
    status = f"{result.status}/{result.status_details}"
    return InstanceOutcome(
        "in_progress",
        f"{still}; its {operation} is {status}; the outcome is final when the run has ended (next cycle)",
        window,
        status,
        run.started,
    )


def excepted_outcome(
    found: InstanceOutcome, exception: Mapping[str, Any], *, hold: Literal["held", "not_applied"] | None = None
) -> InstanceOutcome:
    """An excepted instance's outcome: what its window did, said but not alerted.

    `hold`: the exception holds patching back and the window selects the instance by id for its Scan
    task (`held`), or the hold could not be applied within SSM's quotas (`not_applied`).
    """
    ticket = f", ticket {exception['ticket']}" if exception.get("ticket") else ""
    if hold == "held":
        # The window scanned it and installed nothing: that is the hold working, not a miss.
        what = f"patching held back (scan only); {found.outcome}: {found.reason}"
    elif hold == "not_applied":
        what = f"hold NOT applied (see the window report's hold problems); {found.outcome}: {found.reason}"
    else:
        what = f"without it: {found.outcome}: {found.reason}"
    reason = (
        f"patch exception until {exception.get('expires')} ({exception.get('reason')}; approved by "
        f"{exception.get('approved_by')}{ticket}); {what}"
    )
    return InstanceOutcome("excepted", reason, found.window, found.command_status, found.run_started)


def gated_outcome(found: InstanceOutcome, gate: Mapping[str, Any], *, held: bool) -> InstanceOutcome:
    """An instance of a held rollout wave: its outcome stands, its reason says which gate holds it and why.

    `held`: its window's Scan task selects it; otherwise the hold did not fit SSM's quotas.
    """
    what = "patching held back (scan only)" if held else "hold NOT applied (see the window report's hold problems)"
    return replace(
        found, reason=f"rollout wave {gate.get('wave')} {gate.get('reason')}; {what}; {found.outcome}: {found.reason}"
    )


def compliance_of(state: PatchState | None) -> str:
    if state is None:
        return "UNKNOWN"
    return "COMPLIANT" if state.missing == 0 and state.failed == 0 else "NON_COMPLIANT"


# --- reading SSM -----------------------------------------------------------------------------------------


def parameters_operation(parameters: str | None) -> str:
    """The Operation of an AWS-RunPatchBaseline task invocation (its Parameters are JSON text)."""
    try:
        decoded = json.loads(parameters or "{}")
    except ValueError:
        return "Install"
    found = decoded.get("parameters", decoded).get("Operation") if isinstance(decoded, dict) else None
    return str(found[0]) if isinstance(found, list) and found else "Install"


def parameters_hooks(parameters: str | None) -> dict[str, str]:
    """The hook documents an AWS-RunPatchBaselineWithHooks task invocation names (AWS-Noop left out)."""
    try:
        decoded = json.loads(parameters or "{}")
    except ValueError:
        return {}
    given = decoded.get("parameters", decoded) if isinstance(decoded, dict) else {}
    found = {}
    for key, parameter in HOOK_PARAMETERS.items():
        value = given.get(parameter) if isinstance(given, dict) else None
        if isinstance(value, list) and value and value[0] != NO_HOOK:
            found[key] = str(value[0])
    return found


HOOK_WORDS: Final = {"pre_install": "pre-install", "post_install": "post-install", "on_exit": "on-exit"}


def hook_failure(found: InstanceOutcome, run: WindowRun | None, state: PatchState | None) -> InstanceOutcome:
    """A failed Install of a task with hooks: which part failed, told from the patch state it reported.

    AWS-RunPatchBaselineWithHooks runs the pre-install hook, then Install with NoReboot (which reports the
    patch state), then the post-install hook, the reboot if needed, and the on-exit hook. So an Install
    reported since the run started, with no patch failed, means a later hook failed the command; none
    reported means it failed before installing. A Scan reported since the run (the daily patch scan,
    which replaces the Install's report) tells only whether the patches are in now: nothing missing or
    failed, a later hook failed; some missing, the pre-install hook or the Install itself, which it
    cannot tell apart, so it says both. Anything else stays a patch failure.
    """
    if found.outcome != "failed" or run is None or not run.hooks or "Install ended" not in found.reason:
        return found
    since_run = state is not None and state.operation_end >= run.started
    if since_run and state is not None and state.operation == "Scan":
        return _told_by_a_later_scan(found, run, state)
    reported = since_run and state is not None and state.operation == "Install"
    if reported and state is not None and state.failed == 0:
        return _after_install(found, run)
    if not reported and "pre_install" in run.hooks:
        hook = run.hooks["pre_install"]
        return replace(found, reason=f"{found.reason}: failed in the pre-install hook ({hook}), nothing installed")
    return found


def _told_by_a_later_scan(found: InstanceOutcome, run: WindowRun, state: PatchState) -> InstanceOutcome:
    if state.missing == 0 and state.failed == 0:
        return _after_install(found, run)
    if "pre_install" not in run.hooks:
        return found
    hook = run.hooks["pre_install"]
    return replace(
        found,
        reason=f"{found.reason}: failed in the pre-install hook ({hook}) or while installing "
        "(a patch scan since found its patches missing)",
    )


def _after_install(found: InstanceOutcome, run: WindowRun) -> InstanceOutcome:
    """The reason of a hooked Install whose patches went in: a hook after the Install failed it."""
    after = [key for key in ("post_install", "on_exit") if key in run.hooks]
    if not after:
        return found
    hooks = " or ".join(f"the {HOOK_WORDS[key]} hook ({run.hooks[key]})" for key in after)
    return replace(found, reason=f"{found.reason}: failed in {hooks}, after its patches installed")


def hooks_ran(found: InstanceOutcome, run: WindowRun | None) -> dict[str, str] | None:
    """The hook documents that ran, and succeeded, with the Install that patched the instance, by the
    policy's key: AWS-RunPatchBaselineWithHooks fails its command when a hook fails, so a `patched`
    outcome of a hooked run ran every hook it named. None otherwise (a failed hook is in the reason)."""
    if found.outcome != "patched" or run is None or not run.hooks:
        return None
    return dict(run.hooks)


def _run_at(runs: Sequence[WindowRun], started: datetime | None) -> WindowRun | None:
    return next((run for run in runs if run.started == started), None)


# --- joining, alerting, remembering where we got to ---------------------------------------------------


def instance_results(
    lines: Iterable[Mapping[str, Any]],
    expected: Mapping[tuple[str, str, str, str], str],
    runs: Sequence[WindowRun],
    states: Mapping[str, PatchState],
    *,
    now: datetime,
    stale_after_days: int = ScanSettings().stale_after_days,
) -> Iterator[dict[str, Any]]:
    """One result line per in-scope instance (patch-results.jsonl); `now` dates the scans' age."""
    runs_by_window: dict[str, list[WindowRun]] = {}
    for run in runs:
        runs_by_window.setdefault(run.window_name, []).append(run)
    for line in lines:
        if not line.get("in_scope", True):
            continue
        instance_id = str(line["instance_id"])
        window = window_of(line, expected)
        window_runs = runs_by_window.get(window or "", [])
        found = outcome_of(window, window_runs, instance_id, line.get("tag_class", line.get("class")))
        found = hook_failure(found, _run_at(window_runs, found.run_started), states.get(instance_id))
        exception = line.get("exception") if line.get("class") == EXCEPTED else None
        if isinstance(exception, Mapping):
            hold: Literal["held", "not_applied"] | None = None
            if line.get("held") and window is not None:
                # A Scan task has it; otherwise the hold did not fit SSM's quotas.
                hold = "held" if hold_applied(line, expected) else "not_applied"
            found = excepted_outcome(found, exception, hold=hold)
        elif isinstance(gate := line.get("gate"), Mapping) and not gate.get("open") and window is not None:
            found = gated_outcome(found, gate, held=hold_applied(line, expected))
        state = states.get(instance_id)
        outcome_run = _run_at(window_runs, found.run_started)
        backup = outcome_run.backups.get(instance_id) if outcome_run else None
        compliance = compliance_of(state)
        scan = scan_freshness(iso_z(state.operation_end) if state else None, now, stale_after_days)
        yield {
            "instance_id": instance_id,
            "name": line.get("name"),
            "owner": line.get("owner"),
            "patch_group": line.get("patch_group"),
            "window": found.window,
            "outcome": found.outcome,
            "reason": found.reason,
            "exception": line.get("exception") if found.outcome == "excepted" else None,
            "command_status": found.command_status,
            "backup_outcome": backup.outcome if backup else None,
            "backup_id": backup.backup_id if backup else None,
            "hooks_ran": hooks_ran(found, outcome_run),
            "window_run_start": iso_z(found.run_started) if found.run_started else None,
            "installed": state.installed if state else None,
            "missing": state.missing if state else None,
            "critical_missing": state.critical_missing if state else None,
            "failed": state.failed if state else None,
            "pending_reboot": state.pending_reboot if state else None,
            "compliance": compliance,
            "compliance_unknown_reason": unknown_reason(line, compliance),
            "operation": state.operation if state else None,
            "operation_end": iso_z(state.operation_end) if state else None,
            "last_scan": scan.last_scan,
            "scan_age_days": scan.age_days,
            "scan_status": scan.status,
        }


@dataclass(frozen=True)
class Alert:
    owner: str
    patch_group: str
    severity: AlertSeverity  # the most severe of its instances' outcomes
    instances: tuple[Mapping[str, Any], ...]

    def subject(self) -> str:
        counts = ", ".join(
            f"{sum(1 for i in self.instances if i['outcome'] == outcome)} {outcome}"
            for outcome in ("failed", "missed")
            if any(i["outcome"] == outcome for i in self.instances)
        )
        return f"tagpatch: {counts} in patch group {self.patch_group}"[:100]

    def body(self, limit: int = 50) -> str:
        lines = [
            f"Patch group {self.patch_group} (owner {self.owner}) had instances that were not patched:",
            "",
            *(
                f"- {i['instance_id']} ({i.get('name') or 'no Name tag'}): {i['outcome']}: {i['reason']}"
                for i in self.instances[:limit]
            ),
        ]
        if len(self.instances) > limit:
            lines.append(f"... and {len(self.instances) - limit} more in the run's patch-results artifact")
        return "\n".join(lines)


def alerts_for(results: Iterable[Mapping[str, Any]], default_owner: str) -> list[Alert]:
    """One alert per owner and patch group with failed or missed instances."""
    grouped: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    errors: set[tuple[str, str]] = set()
    for result in results:
        outcome = outcome_behaviour(result["outcome"])
        if outcome is not None and outcome.alert is not None:
            key = (str(result.get("owner") or default_owner), str(result.get("patch_group") or "(none)"))
            grouped.setdefault(key, []).append(result)
            if outcome.alert == "error":
                errors.add(key)
    return [
        Alert(owner, group, "error" if (owner, group) in errors else "warning", tuple(items))
        for (owner, group), items in sorted(grouped.items())
    ]


# The `owner` a message to the notifications topic carries for instances with no Owner tag.
DEFAULT_OWNER: Final = "unowned"

# SNS PublishBatch: at most 10 entries, and at most 256 KiB for all of them together, body and
# attributes (the topic's default MaximumMessageSize; Amazon SNS API Reference, PublishBatch).
BATCH_ENTRIES: Final = 10
BATCH_BYTES: Final = 262_144


def alert_entry(alert: Alert, entry_id: str, target: Target | None = None) -> dict[str, Any]:
    """One alert as a PublishBatch entry; a member target's names its account and Region."""
    attributes = {
        "owner": {"DataType": "String", "StringValue": alert.owner},
        "patch_group": {"DataType": "String", "StringValue": alert.patch_group},
        "severity": {"DataType": "String", "StringValue": alert.severity},
    }
    return {
        "Id": entry_id,
        "Subject": located_subject(alert.subject(), target),
        "Message": located_body(alert.body(), target),
        "MessageAttributes": located_attributes(attributes, target),
    }


def entry_bytes(entry: Mapping[str, Any]) -> int:
    """What an entry counts against the batch limit: its body and its attributes' names, types and values."""
    size = len(str(entry["Message"]).encode())
    for name, attribute in entry.get("MessageAttributes", {}).items():
        size += len(name.encode()) + len(attribute["DataType"].encode()) + len(attribute["StringValue"].encode())
    return size


def batches(entries: Sequence[Mapping[str, Any]]) -> Iterator[list[Mapping[str, Any]]]:
    """Consecutive batches of at most BATCH_ENTRIES entries and BATCH_BYTES bytes, in order."""
    batch: list[Mapping[str, Any]] = []
    size = 0
    for entry in entries:
        entry_size = entry_bytes(entry)
        if batch and (len(batch) == BATCH_ENTRIES or size + entry_size > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += entry_size
    if batch:
        yield batch


def publish_alerts(topic_arn: str, alerts: Sequence[Alert], target: Target | None = None) -> int:
    """Publish every alert, ten to a PublishBatch call; returns how many SNS accepted (all of them).

    SNS answers a batch entry by entry. An entry it refused raises: TransientAwsError when SNS says
    the fault was its own (the workflow retries, and alerts already sent go again: at least once),
    NotificationRejected when the fault was the request's. Nothing refused passes for sent.
    """
    entries = [alert_entry(alert, str(index), target) for index, alert in enumerate(alerts)]
    sent = 0
    for batch in batches(entries):
        response = client("sns").publish_batch(TopicArn=topic_arn, PublishBatchRequestEntries=batch)
        failed = response.get("Failed", [])
        if failed:
            refused = [(alerts[int(f["Id"])], f) for f in failed]
            described = "; ".join(
                f"{alert.owner}/{alert.patch_group}: {f['Code']}: {f.get('Message', '')}" for alert, f in refused
            )
            if all(f.get("SenderFault") for f in failed):
                raise NotificationRejected(f"SNS refused {len(failed)} of {len(batch)} alerts: {described}")
            raise TransientAwsError(f"SNS failed {len(failed)} of {len(batch)} alerts: {described}")
        sent += len(response.get("Successful", []))
    return sent


def publish_notice(topic_arn: str, notice: Notice, target: Target | None = None) -> str:
    """An exception's expiry notice to one owner (governance gets its own copy under its owner value)."""
    attributes = {
        "owner": {"DataType": "String", "StringValue": notice.owner},
        "kind": {"DataType": "String", "StringValue": f"exception_{notice.kind}"},
    }
    response = client("sns").publish(
        TopicArn=topic_arn,
        Subject=located_subject(notice.subject(), target),
        Message=located_body(notice.body(), target),
        MessageAttributes=located_attributes(attributes, target),
    )
    return str(response["MessageId"])


class GateHoldMessage(Protocol):
    """A held rollout wave's message (tagpatch.gates.GateHold, which builds on this module)."""

    @property
    def owner(self) -> str: ...
    @property
    def patch_group(self) -> str: ...
    def subject(self) -> str: ...
    def body(self) -> str: ...


def publish_gate_hold(topic_arn: str, hold: GateHoldMessage, target: Target | None = None) -> str:
    """A held rollout wave's message to one owner of one patch group: which gate holds it, and why."""
    attributes = {
        "owner": {"DataType": "String", "StringValue": hold.owner},
        "patch_group": {"DataType": "String", "StringValue": hold.patch_group},
        "kind": {"DataType": "String", "StringValue": "rollout_held"},
        "severity": {"DataType": "String", "StringValue": "warning"},
    }
    response = client("sns").publish(
        TopicArn=topic_arn,
        Subject=located_subject(hold.subject(), target),
        Message=located_body(hold.body(), target),
        MessageAttributes=located_attributes(attributes, target),
    )
    return str(response["MessageId"])


def owned_window_ids(names: Iterable[str]) -> dict[str, str]:
    """name -> id of the windows among `names` that tagpatch owns (its name and its ownership tag).

    A window someone else made under one of these names is not tagpatch's and is never reported.
    """
    wanted = set(names)
    return {
        str(identity["Name"]): str(identity["WindowId"])
        for identity in paginate(client("ssm").describe_maintenance_windows, "WindowIdentities", MaxResults=PAGE_SIZE)
        if identity.get("Name") in wanted and is_owned_window(str(identity["WindowId"]))
    }


@dataclass(frozen=True)
class Watermark:
    """Where the next cycle starts reading each window's runs.

    Every window from `read_until`, except a window whose run was still going: from just before that
    run started, so the run is read again and its final outcomes (and alerts) come once it has ended,
    while the other windows' runs, already reported, are not read (nor alerted) again.
    """

    read_until: datetime
    read_again: Mapping[str, datetime] = field(default_factory=dict)  # window name -> read after this

    def since(self, window: str) -> datetime:
        return min(self.read_until, self.read_again.get(window, self.read_until))

    def to_json(self) -> dict[str, Any]:
        return {
            "read_until": iso_z(self.read_until),
            "read_again": {name: iso_z(moment) for name, moment in sorted(self.read_again.items())},
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any], where: str) -> Watermark:
        read_again = body.get("read_again") or {}
        if not isinstance(read_again, Mapping):
            raise ArtifactError(f"{where}: read_again must be a mapping of window name to time")
        return cls(
            parse_time(str(body["read_until"]), where),
            {str(name): parse_time(str(moment), f"{where} read_again.{name}") for name, moment in read_again.items()},
        )


def next_watermark(runs: Sequence[WindowRun], before: datetime) -> Watermark:
    """Where the next cycle reads from: `before`, and a window whose run is still going from just before it."""
    read_again: dict[str, datetime] = {}
    for run in runs:
        if run.status in UNFINISHED:
            moment = run.started - _ONE_SECOND
            read_again[run.window_name] = min(moment, read_again.get(run.window_name, moment))
    return Watermark(before, read_again)
