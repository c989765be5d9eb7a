"""What the org cycle's targets did: each target's outcome, the counts, and the one alert naming every
target that failed and why (docs/decisions.md, "Many accounts and Regions").

Each iteration of the org cycle's Map ends in a small result (statemachines/org_cycle.asl.json): the
target, its child execution's name and status, and, when the child could not be started, the error and
cause Step Functions caught. Everything else comes from the child itself (SummarizeTargets describes it):
its compliance counts, or its error and cause and the failure it recorded in place of its own alert
(`ChildFailure`, written by ReportFailure), so the Map's output stays small whatever the children say.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final, NotRequired, TypedDict

from tagpatch.org_targets import SkippedAccount, target_label
from tagpatch.targets import TargetPayload

SUCCEEDED: Final = "SUCCEEDED"
MAX_REASON: Final = 600  # characters of a target's reason in the alert
MAX_DETAIL: Final = 1500  # characters of a failed child's own alert quoted under its target
MAX_LISTED: Final = 200  # targets named in the alert, the rest counted
# SNS caps a message at 262,144 bytes, subject and attributes included; the body stops well before.
MAX_ALERT_BODY_BYTES: Final = 240_000


class ChildFailure(TypedDict):
    """What a patch cycle started by the org cycle records in place of its own alert (ReportFailure),
    for the org cycle's one alert: the state that failed, why, and the alert it would have sent."""

    failed_state: str
    error: str
    cause: str
    subject: str
    body: str


class TargetOutcome(TypedDict):
    target: TargetPayload
    status: str  # the child execution's status, or FAILED when it could not be started
    execution_arn: str | None
    error: str | None
    reason: str | None  # why it failed, in a sentence
    compliance: dict[str, Any] | None  # the child's ComplianceExport counts and percent
    failed_state: NotRequired[str | None]  # the child's state that failed, when it recorded one
    detail: NotRequired[str | None]  # the alert the child would have sent alone, cut to MAX_DETAIL


class OrgSummary(TypedDict):
    execution_id: str
    targets: list[TargetOutcome]
    skipped_accounts: list[SkippedAccount]
    counts: dict[str, int]
    listing_error: str | None  # ListTargets failed: no target ran


def _child_failure(cause: str) -> tuple[str | None, str, str | None]:
    """(execution ARN, error, cause) of a failed child from Step Functions' cause, if it is one."""
    try:
        described = json.loads(cause)
    except ValueError:
        return None, "", cause
    if not isinstance(described, dict):
        return None, "", cause
    # DescribeExecution's members, as the integration spells them (Status) or as the API does (status).
    fields = {str(key).lower(): value for key, value in described.items()}
    if "status" not in fields:
        return None, "", cause
    child_cause = fields.get("cause")
    return (
        fields.get("executionarn"),
        f"{fields['status']}: {fields.get('error', 'no error')}",
        str(child_cause) if child_cause is not None else None,
    )


def _lambda_message(cause: str | None) -> str:
    """A Lambda error's cause is JSON with errorMessage; the message is what a person reads."""
    if cause is None:
        return "no cause given"
    try:
        decoded = json.loads(cause)
    except ValueError:
        return cause
    return str(decoded.get("errorMessage", cause)) if isinstance(decoded, dict) else cause


def _output_of(described: Mapping[str, Any]) -> dict[str, Any]:
    try:
        output = json.loads(described.get("output") or "{}")
    except ValueError:
        return {}
    return output if isinstance(output, dict) else {}


def _not_started(target: TargetPayload, failure: Mapping[str, Any]) -> TargetOutcome:
    """A target whose iteration caught the start itself failing (or a child ending in an error other
    than States.TaskFailed, whose cause is then the child's description)."""
    error = str(failure.get("Error", "unknown error"))
    arn, child_error, child_cause = _child_failure(str(failure.get("Cause", "")))
    if child_error:
        status = child_error.split(":", 1)[0]
        reason = f"its patch cycle ended {child_error}: {_lambda_message(child_cause)}"
    else:
        status = "FAILED"
        reason = f"its patch cycle could not be started ({error}): {_lambda_message(child_cause)}"
    return TargetOutcome(
        target=target, status=status, execution_arn=arn, error=error, reason=reason[:MAX_REASON], compliance=None
    )


def target_outcome(
    result: Mapping[str, Any],
    described: Mapping[str, Any] | None = None,
    recorded: ChildFailure | None = None,
) -> TargetOutcome:
    """One Map iteration's result as the summary lists it, with its child execution as DescribeExecution
    answered (None: not started, or not described) and the failure the child recorded, if any."""
    target: TargetPayload = result["target"]
    if described is None and result.get("status") != SUCCEEDED:
        return _not_started(target, result.get("failure") or {"Error": result.get("error", "unknown error")})
    arn = str(described["executionArn"]) if described is not None else None
    if result.get("status") == SUCCEEDED:
        compliance = _output_of(described).get("compliance") if described is not None else None
        return TargetOutcome(
            target=target,
            status=SUCCEEDED,
            execution_arn=arn,
            error=None,
            reason=None,
            compliance=compliance if isinstance(compliance, dict) else None,
        )
    assert described is not None  # a failed result without a description returned above
    status = str(described.get("status", "FAILED"))
    if recorded is not None:
        reason = (
            f"its patch cycle ended {status} in state {recorded['failed_state']}: "
            f"{recorded['error']}: {recorded['cause']}"
        )
    else:
        reason = (
            f"its patch cycle ended {status}: {described.get('error') or 'no error'}: "
            f"{_lambda_message(described.get('cause'))}"
        )
    return TargetOutcome(
        target=target,
        status=status if status != SUCCEEDED else "FAILED",  # the iteration saw it fail
        execution_arn=arn,
        error=str(described.get("error") or result.get("error") or "unknown error"),
        reason=reason[:MAX_REASON],
        compliance=None,
        failed_state=recorded["failed_state"] if recorded is not None else None,
        detail=recorded["body"][:MAX_DETAIL] if recorded is not None else None,
    )


def undescribed_outcome(result: Mapping[str, Any], why: str) -> TargetOutcome:
    """A target whose child could not be described (or its record read): named with its iteration's
    status and why the rest is missing, so the alert still goes out."""
    succeeded = result.get("status") == SUCCEEDED
    return TargetOutcome(
        target=result["target"],
        status=SUCCEEDED if succeeded else "FAILED",
        execution_arn=None,
        error=None if succeeded else str(result.get("error") or "unknown error"),
        reason=None if succeeded else f"its patch cycle ended FAILED; why could not be read: {why}"[:MAX_REASON],
        compliance=None,
    )


def summarize(
    execution_id: str,
    outcomes: Sequence[TargetOutcome],
    skipped: Sequence[SkippedAccount],
    listing_error: Mapping[str, Any] | None = None,
) -> OrgSummary:
    failed = sum(1 for outcome in outcomes if outcome["status"] != SUCCEEDED)
    return OrgSummary(
        execution_id=execution_id,
        targets=list(outcomes),
        skipped_accounts=list(skipped),
        counts={
            "targets": len(outcomes),
            "succeeded": len(outcomes) - failed,
            "failed": failed,
            "skipped_accounts": len(skipped),
        },
        listing_error=(
            f"{listing_error.get('Error', 'unknown error')}: {_lambda_message(listing_error.get('Cause'))}"
            if listing_error
            else None
        ),
    )


def failed(summary: OrgSummary) -> list[TargetOutcome]:
    return [outcome for outcome in summary["targets"] if outcome["status"] != SUCCEEDED]


def _failure_lines(failures: Sequence[TargetOutcome]) -> list[list[str]]:
    """Each failed target's lines: its reason, then the alert its own cycle would have sent, indented;
    as many targets as MAX_LISTED and the SNS size limit allow."""
    entries: list[list[str]] = []
    used = 0
    for outcome in failures[:MAX_LISTED]:
        entry = [
            f"- {target_label(outcome['target'])}: {outcome['reason']}"
            + (f" (execution {outcome['execution_arn']})" if outcome["execution_arn"] else "")
        ]
        entry += [f"    {line}" for line in (outcome.get("detail") or "").splitlines()]
        size = sum(len(line.encode()) + 1 for line in entry)
        if used + size > MAX_ALERT_BODY_BYTES:
            break
        entries.append(entry)
        used += size
    return entries


def alert(summary: OrgSummary, summary_key: str) -> tuple[str, str] | None:
    """(subject, body) of the org cycle's one alert, or None when every target succeeded."""
    failures = failed(summary)
    if summary["listing_error"] is not None:
        subject = "tagpatch org cycle could not list its targets"
        lines = [
            f"The org cycle {summary['execution_id']} ran no target: ListTargets failed.",
            f"Why: {summary['listing_error']}",
        ]
    elif failures:
        counts = summary["counts"]
        subject = f"tagpatch org cycle: {counts['failed']} of {counts['targets']} targets failed"
        lines = [f"The org cycle {summary['execution_id']} finished; these targets failed (the others were processed):"]
        listed = _failure_lines(failures)
        lines += [line for entry in listed for line in entry]
        if len(failures) > len(listed):
            lines.append(f"- and {len(failures) - len(listed)} more (see the summary)")
    else:
        return None
    if summary["skipped_accounts"]:
        lines.append(
            "Accounts skipped, not ACTIVE: "
            + ", ".join(f"{item['account_id']} ({item['state']})" for item in summary["skipped_accounts"])
        )
    lines.append(f"Summary: {summary_key} in the artifact bucket.")
    return subject[:100], "\n".join(lines)
