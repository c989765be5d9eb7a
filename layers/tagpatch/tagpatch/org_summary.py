"""What the org cycle's targets did: each target's outcome, the counts, and the one alert naming every
target that failed and why (docs/decisions.md, "Many accounts and Regions").

Each iteration of the org cycle's Map ends in a result (statemachines/org_cycle.asl.json): a target
whose patch cycle succeeded has its execution and compliance counts; one whose cycle failed, or could
not be started, has the error Step Functions caught. For a child execution that failed, Step Functions'
cause is the child's DescribeExecution output as JSON; its own error and cause say why.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final, TypedDict

from tagpatch.org_targets import SkippedAccount, target_label
from tagpatch.targets import TargetPayload

SUCCEEDED: Final = "SUCCEEDED"
MAX_REASON: Final = 600  # characters of a target's reason in the alert (SNS caps a message at 256 KB)
MAX_LISTED: Final = 200  # targets named in the alert, the rest counted


class TargetOutcome(TypedDict):
    target: TargetPayload
    status: str  # the child execution's status, or FAILED when it could not be started
    execution_arn: str | None
    error: str | None
    reason: str | None  # why it failed, in a sentence
    compliance: dict[str, Any] | None  # the child's ComplianceExport counts and percent


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


def target_outcome(result: Mapping[str, Any]) -> TargetOutcome:
    """One Map iteration's result as the summary lists it."""
    target: TargetPayload = result["target"]
    if result.get("status") == SUCCEEDED:
        return TargetOutcome(
            target=target,
            status=SUCCEEDED,
            execution_arn=result.get("execution_arn"),
            error=None,
            reason=None,
            compliance=result.get("compliance"),
        )
    failure = result.get("failure") or {}
    error = str(failure.get("Error", "unknown error"))
    arn, child_error, child_cause = _child_failure(str(failure.get("Cause", "")))
    if child_error:
        status = child_error.split(":", 1)[0]
        reason = f"its patch cycle ended {child_error}: {_lambda_message(child_cause)}"
    else:
        status = "FAILED"
        reason = f"its patch cycle could not be started ({error}): {_lambda_message(child_cause)}"
    return TargetOutcome(
        target=target,
        status=status,
        execution_arn=arn,
        error=error,
        reason=reason[:MAX_REASON],
        compliance=None,
    )


def summarize(
    execution_id: str,
    results: Sequence[Mapping[str, Any]],
    skipped: Sequence[SkippedAccount],
    listing_error: Mapping[str, Any] | None = None,
) -> OrgSummary:
    outcomes = [target_outcome(result) for result in results]
    failed = sum(1 for outcome in outcomes if outcome["status"] != SUCCEEDED)
    return OrgSummary(
        execution_id=execution_id,
        targets=outcomes,
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
        lines += [
            f"- {target_label(outcome['target'])}: {outcome['reason']}"
            + (f" (execution {outcome['execution_arn']})" if outcome["execution_arn"] else "")
            for outcome in failures[:MAX_LISTED]
        ]
        if len(failures) > MAX_LISTED:
            lines.append(f"- and {len(failures) - MAX_LISTED} more (see the summary)")
    else:
        return None
    if summary["skipped_accounts"]:
        lines.append(
            "Accounts skipped, not ACTIVE: "
            + ", ".join(f"{item['account_id']} ({item['state']})" for item in summary["skipped_accounts"])
        )
    lines.append(f"Summary: {summary_key} in the artifact bucket.")
    return subject[:100], "\n".join(lines)
