"""The patching outcomes, declared once: what PatchMonitoring can say of an instance, and what each
outcome means to the alerts, the compliance export and report.html.

`monitoring.outcome_of` decides an instance's outcome from its window's runs; this table says what
the outcome then means. To add one, add its name to `Outcome` (in the order report.html lists them)
and its case to `_behaviour`: mypy names the missing case, and tests/unit/product/test_outcomes.py checks the
Athena queries that name outcomes against the table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, assert_never, get_args

AlertSeverity = Literal["error", "warning"]
Outcome = Literal["patched", "failed", "missed", "in_progress", "scanned", "not_due", "not_scheduled", "excepted"]


@dataclass(frozen=True)
class OutcomeBehaviour:
    """What one outcome means outside PatchMonitoring's rules."""

    name: Outcome
    # PatchMonitoring alerts the instance's owner (one alert per owner and patch group, an error when
    # any of its instances is one), or None.
    alert: AlertSeverity | None
    # A patch operation ran to its end on the instance: the export's last_outcome_time is its end.
    operation_ended: bool
    # report.html counts it in the outcomes table (an excepted instance has a tile of its own).
    in_report_table: bool
    # What report.html tells the owner to do; it comes before the fix of the instance's class.
    report_fix: str | None


def _behaviour(name: Outcome) -> OutcomeBehaviour:
    match name:
        case "patched" | "scanned":
            return OutcomeBehaviour(name, alert=None, operation_ended=True, in_report_table=True, report_fix=None)
        case "failed":
            return OutcomeBehaviour(
                name,
                alert="error",
                operation_ended=True,
                in_report_table=True,
                report_fix="Read the window's command output (Run Command, AWS-RunPatchBaseline) and fix the failing "
                "patch.",
            )
        case "missed":
            return OutcomeBehaviour(
                name,
                alert="warning",
                operation_ended=False,
                in_report_table=True,
                report_fix="Start the instance before its window, or check that the SSM Agent is online.",
            )
        case "in_progress" | "not_due" | "not_scheduled":
            return OutcomeBehaviour(name, alert=None, operation_ended=False, in_report_table=True, report_fix=None)
        case "excepted":
            return OutcomeBehaviour(name, alert=None, operation_ended=False, in_report_table=False, report_fix=None)
        case _:
            assert_never(name)


OUTCOMES: Final[tuple[Outcome, ...]] = get_args(Outcome)
OUTCOME_BEHAVIOUR: Final[Mapping[Outcome, OutcomeBehaviour]] = {name: _behaviour(name) for name in OUTCOMES}
_BY_NAME: Final[Mapping[str, OutcomeBehaviour]] = {str(name): found for name, found in OUTCOME_BEHAVIOUR.items()}


def outcome_behaviour(name: object) -> OutcomeBehaviour | None:
    """The behaviour of an outcome as read from a result line (a plain string), None for an unknown one."""
    return _BY_NAME.get(name) if isinstance(name, str) else None
