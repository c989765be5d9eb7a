"""What a cycle's plan leaves undone, and the operators' alert that names it.

Pure code: the plan in; the PlanShortfalls count and the alert's subject and body out. A shortfall is
part of what the tags and exceptions ask for that the cycle does not set up: a window it leaves alone
(its name held by a window tagpatch does not own, or its deletion held back by the mass-deletion safety
limit), a quota, a hold that does not fit, a hooked task on an instance its document does not
support. Tag problems are the owners' to fix and a pause is an operator's choice: neither is a shortfall.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from tagpatch.cycle import Cycle
from tagpatch.desired import Problem
from tagpatch.reconcile import Plan, WindowBlock

SHORTFALL_KINDS: Final = frozenset({"target", "task", "hold", "hooks"})
BLOCK_DESCRIPTION: Final[Mapping[WindowBlock, str]] = {
    "name taken": "its name is held by a maintenance window tagpatch does not own",
    "safety limit": "its deletion is held back by the mass-deletion safety limit",
}
# What an operator can do about each kind of block.
BLOCK_ADVICE: Final[Mapping[WindowBlock, str]] = {
    "name taken": "rename or delete the window that holds the name, or tag it tagpatch:managed=true to hand it "
    "over to tagpatch",
    "safety limit": 'if the deletions are intended, start a cycle with {"allow_mass_deletion": true}; '
    "otherwise restore the tags of the instances that left those windows",
}
# SNS caps a message at 256 KB: long lists are cut, with the count kept.
MAX_LISTED: Final = 50


def other_shortfalls(plan: Plan) -> list[Problem]:
    """The plan's quota and hold shortfalls (blocked windows are in plan.blocked_windows)."""
    return [problem for problem in plan.problems if problem.kind in SHORTFALL_KINDS]


def shortfall_count(plan: Plan) -> int:
    """What PlanShortfalls counts: each blocked window and each other shortfall."""
    return len(plan.blocked_windows) + len(other_shortfalls(plan))


def _listed(lines: list[str], what: str) -> list[str]:
    if len(lines) <= MAX_LISTED:
        return lines
    return [*lines[:MAX_LISTED], f"- and {len(lines) - MAX_LISTED} more {what} (see the run's window-report.json)"]


def shortfall_alert(cycle: Cycle, plan: Plan) -> tuple[str, str] | None:
    """The alert's subject and body, or None when the plan falls short of nothing."""
    blocked, others = plan.blocked_windows, other_shortfalls(plan)
    if not blocked and not others:
        return None
    counted = [f"{len(blocked)} maintenance window(s) blocked"] if blocked else []
    counted += [f"{len(others)} other shortfall(s)"] if others else []
    subject = f"tagpatch cycle left work undone: {', '.join(counted)}"
    lines = [
        f"The patch cycle {cycle.run_id} ({cycle.mode} mode) did not set up everything the tags ask for; "
        "the instances concerned are not scheduled as tagged until this is resolved. This alert repeats "
        "every cycle until then."
    ]
    if blocked:
        lines.append(f"Maintenance windows left alone ({len(blocked)}):")
        lines += _listed(
            [
                f"- {item.name}: {item.block}: {BLOCK_DESCRIPTION[item.block]}"
                + (f". {item.reason}" if item.block == "name taken" else "")
                for item in blocked
            ],
            "windows",
        )
        lines.append("What to do:")
        for block in dict.fromkeys(item.block for item in blocked):
            lines.append(f"- {block}: {BLOCK_ADVICE[block]}.")
        limit = next((item.reason for item in blocked if item.block == "safety limit"), None)
        if limit is not None:
            lines.append(f"  ({limit})")
    if others:
        lines.append(f"Other shortfalls ({len(others)}):")
        lines += _listed([f"- {problem.kind} {problem.name}: {problem.reason}" for problem in others], "shortfalls")
    lines += [
        f"Execution: {cycle.execution_id}",
        f"The run's report (summary.json, window-report.json) is under {cycle.artifact_prefix} in the artifact bucket.",
    ]
    return subject[:100], "\n".join(lines)
