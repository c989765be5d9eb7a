"""The instance classes, declared once: what each class of instance gets from every part of the cycle.

`tags.classify` decides an instance's class (the rules and their reasons live there); this table says
what the class then means: whether TagValidation hands it to window planning, whether the Config tag
rule flags it, how PatchMonitoring words its outcome, the fix report.html and the Athena tag-problems
query give its owner. The modules that act on a class read it from here.

To add a class, add its name to `InstanceClass` (in precedence order) and its case to `_behaviour`:
mypy names the missing case, and tests/unit/product/test_classes.py checks template.yaml's Athena queries,
the README's class table and the local fleet builders against this table (CONTRIBUTING.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, assert_never, get_args

# In precedence order: an instance with problems of several classes gets the first.
InstanceClass = Literal["missing_tags", "invalid_tags", "unmanaged", "stopped", "ready"]

# The report's classes: an instance under a live patch exception is `excepted`, whatever its tags say.
EXCEPTED: Final = "excepted"
ReportClass = InstanceClass | Literal["excepted"]

# What a window run that did not select the instance says, unless its class knows better.
NOT_SELECTED_REASON: Final = ", but its targets did not select this instance: check its tags and the window's targets"
_TAGS_GIVE_NO_WINDOW: Final = "its tags give it no maintenance window ({}; the tag report says what to fix)"
# Also the reason for an instance whose class is not known (a line without one).
NO_WINDOW_REASON: Final = "no tagpatch window targets its tags"
_TAG_FIX_IN_REPORT: Final = "Fix the instance's Patch Group and Maintenance Window tags (see the reasons)."


@dataclass(frozen=True)
class ClassBehaviour:
    """What one instance class means to each step of the cycle."""

    name: InstanceClass
    # TagValidation hands it to window planning: its tags name a patch group and a window.
    schedulable: bool
    # The Config tag rule reports it NON_COMPLIANT, annotated with its first reason. The rule judges
    # the tags alone: SSM and the instance profile are the AWS managed rules' verdicts.
    flagged_by_tag_rule: bool
    # tagpatch gives it no window, yet SSM may still select it by its tags as written (say, by one of
    # two patch group keys that disagree): the plan names the windows whose targets would.
    selected_by_tags_as_written: bool
    # False: SSM does not manage it (the Athena stopped-or-unmanaged query lists it).
    managed_by_ssm: bool
    # PatchMonitoring: why an instance with no window was not patched.
    not_scheduled_reason: str
    # PatchMonitoring: what follows "window W at T ran" when the run did not select it.
    not_selected_reason: str
    # What its owner should do: report.html's wording, and the Athena tag-problems query's `fix`.
    report_fix: str | None
    query_fix: str | None


def _behaviour(name: InstanceClass) -> ClassBehaviour:
    match name:
        case "missing_tags":
            return ClassBehaviour(
                name,
                schedulable=False,
                flagged_by_tag_rule=True,
                selected_by_tags_as_written=False,
                managed_by_ssm=True,
                not_scheduled_reason=_TAGS_GIVE_NO_WINDOW.format(name),
                not_selected_reason=NOT_SELECTED_REASON,
                report_fix=_TAG_FIX_IN_REPORT,
                query_fix="Add the Patch Group and Maintenance Window tags",
            )
        case "invalid_tags":
            return ClassBehaviour(
                name,
                schedulable=False,
                flagged_by_tag_rule=True,
                selected_by_tags_as_written=True,
                managed_by_ssm=True,
                not_scheduled_reason=_TAGS_GIVE_NO_WINDOW.format(name),
                not_selected_reason=NOT_SELECTED_REASON,
                report_fix=_TAG_FIX_IN_REPORT,
                query_fix="Correct the tag values named in reasons",
            )
        case "unmanaged":
            return ClassBehaviour(
                name,
                schedulable=False,
                flagged_by_tag_rule=False,
                selected_by_tags_as_written=False,
                managed_by_ssm=False,
                not_scheduled_reason="SSM does not manage it, and no tagpatch window targets its tags",
                not_selected_reason=(
                    "; SSM does not manage this instance, so the window could not select it: "
                    "check its SSM agent and instance profile"
                ),
                report_fix="Register the instance with Systems Manager (agent and instance profile).",
                query_fix="Register the instance with Systems Manager",
            )
        case "stopped" | "ready":
            return ClassBehaviour(
                name,
                schedulable=True,
                flagged_by_tag_rule=False,
                selected_by_tags_as_written=False,
                managed_by_ssm=True,
                not_scheduled_reason=NO_WINDOW_REASON,
                not_selected_reason=NOT_SELECTED_REASON,
                report_fix=None,
                query_fix=None,
            )
        case _:
            assert_never(name)


CLASS_PRECEDENCE: Final[tuple[InstanceClass, ...]] = get_args(InstanceClass)
CLASSES: Final[Mapping[InstanceClass, ClassBehaviour]] = {name: _behaviour(name) for name in CLASS_PRECEDENCE}
_BY_NAME: Final[Mapping[str, ClassBehaviour]] = {str(name): behaviour for name, behaviour in CLASSES.items()}


def behaviour_of(name: object) -> ClassBehaviour | None:
    """The behaviour of a class as read from a report line (a plain string), None for an unknown one."""
    return _BY_NAME.get(name) if isinstance(name, str) else None
