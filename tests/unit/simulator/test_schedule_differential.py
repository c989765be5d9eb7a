"""tagpatch's schedule validator and the simulated SSM must agree on every schedule.

Two independent readings of the same AWS documents: `tagpatch.schedule` (what tagpatch accepts in a
`Maintenance Window` tag) and the simulator's CreateMaintenanceWindow (what SSM accepts). If tagpatch
accepts a schedule SSM rejects, a cycle fails in AWS; if it rejects one SSM accepts, an app team is
told its valid tag is wrong. Each expression goes through a real CreateMaintenanceWindow call.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tagpatch.schedule import InvalidSchedule, parse_schedule

# Every maintenance-window example in the SSM User Guide's "Reference: Cron and rate expressions for
# Systems Manager" and "Maintenance window scheduling and active period options" pages.
GUIDE_EXAMPLES = [
    "cron(0 2 ? * THU#3 *)",
    "cron(15 10 ? * * *)",
    "cron(0 18 ? * MON-FRI *)",
    "cron(0 8 1 * ? *)",
    "cron(0/15 * * * ? *)",
    "cron(0/10 * ? * MON-FRI *)",
    "cron(0/5 8-17 ? * MON-FRI *)",
    "cron(30 23 ? * TUE#3 *)",
    "cron(0 0 ? * THU#2 *)",
    "cron(0 9 ? * 2#1 *)",
    "cron(0 16 ? * TUE *)",
    "cron(0 09 ? * WED *)",
    "cron(15 10 ? * MON-FRI *)",
    "cron(0 2 L * ? *)",
    "cron(15 10 ? * 6L *)",
    "cron(30 09 ? * * *)",
    "cron(0 10 * * ? *)",
    "cron(15 12 * * ? *)",
    "cron(24 30 09 ? * * *)",
    "rate(30 minutes)",
    "rate(1 hour)",
    "rate(5 hours)",
    "rate(25 days)",
    "rate(1 day)",
    "rate(7 days)",
    "at(2020-07-07T15:55:00)",
    "at(2019-07-07T13:15:30)",
    # AWS's tagging whitepaper, section Patching.
    "cron(30 23 ? * TUE#1 *)",
    "cron(30 23 ? * TUE#2 *)",
]


def _field_variants() -> list[str]:
    """One field changed at a time from a valid base, across each field's edges and wildcards."""
    base = ["0", "2", "?", "*", "SUN", "*"]
    per_field: dict[int, list[str]] = {
        0: ["59", "60", "-1", "0-30/15", "0/5", "0/4", "*/5", "5,10,15", "0,2", "a", "0-", "30-10", "0/0", "L"],
        1: ["23", "24", "0-23", "8-17", "*/2", "1,25", "0/6", "*", "?", "W"],
        3: ["1", "12", "13", "0", "JAN", "DEC", "JAN-MAR", "JAN,JUN", "FOO", "1/3", "L", "jan"],
        5: ["1970", "2199", "1969", "2200", "2026-2030", "2026/2", "?", "L"],
    }
    result = []
    for index, values in per_field.items():
        for value in values:
            fields = list(base)
            fields[index] = value
            result.append("cron(" + " ".join(fields) + ")")
    day_pairs = [
        ("?", "MON"),
        ("?", "1"),
        ("?", "7"),
        ("?", "0"),
        ("?", "8"),
        ("?", "MON-FRI"),
        ("?", "MON,WED,FRI"),
        ("?", "1-7/2"),
        ("?", "L"),
        ("?", "FRIL"),
        ("?", "6L"),
        ("?", "8L"),
        ("?", "SUN#1"),
        ("?", "SUN#5"),
        ("?", "SUN#6"),
        ("?", "SUN#0"),
        ("?", "MON#2,TUE#2"),
        ("?", "MOX"),
        ("?", "*"),
        ("1", "?"),
        ("31", "?"),
        ("32", "?"),
        ("0", "?"),
        ("1-15", "?"),
        ("1-31/7", "?"),
        ("L", "?"),
        ("LW", "?"),
        ("15W", "?"),
        ("32W", "?"),
        ("L,15", "?"),
        ("5L", "?"),
        ("1#2", "?"),
        ("*", "?"),
        ("*", "MON"),
        ("1", "MON"),
        ("?", "?"),
        ("*", "*"),
    ]
    result += [f"cron(0 2 {dom} * {dow} *)" for dom, dow in day_pairs]
    return result


OTHER_CASES = [
    # Field counts and the Seconds field.
    "cron(0 2 ? * SUN)",
    "cron(0 2 ? *)",
    "cron(0 0 2 ? * SUN * *)",
    "cron()",
    "cron(30 0 2 ? * SUN *)",
    "cron(0 0 2 ? * SUN *)",
    "cron(59 0 2 ? * SUN *)",
    "cron(60 0 2 ? * SUN *)",
    "cron(* 0 2 ? * SUN *)",
    # The five-minute rule, around the hour and midnight.
    "cron(58 23,0 ? * * *)",
    "cron(55 23,0 * * ? *)",
    "cron(0,4 2 ? * SUN *)",
    "cron(0,5 2 ? * SUN *)",
    "cron(0,55 2-3 ? * SUN *)",
    "cron(0,57 2-3 ? * SUN *)",
    "cron(* 2 ? * SUN *)",
    "cron(0-4 2 ? * SUN *)",
    "cron(0/3 * ? * * *)",
    "cron(0/5 * ? * * *)",
    # rate()
    "rate(1 minute)",
    "rate(4 minutes)",
    "rate(5 minutes)",
    "rate(10 minutes)",
    "rate(2 hours)",
    "rate(2 hour)",
    "rate(1 hours)",
    "rate(1 days)",
    "rate(0 days)",
    "rate(01 day)",
    "rate(-1 days)",
    "rate(1.5 days)",
    "rate(1 week)",
    "rate(2 weeks)",
    "rate(days)",
    "rate(2  days)",
    # at()
    "at(2026-12-24T22:00:00)",
    "at(2024-02-29T23:59:59)",
    "at(2023-02-29T10:00:00)",
    "at(2026-13-01T10:00:00)",
    "at(2026-12-24T24:00:00)",
    "at(2026-12-24T22:00)",
    "at(2026-12-24 22:00:00)",
    "at(2026-12-24T22:00:00Z)",
    "at(2026-12-24)",
    # Neither kind, or broken.
    "every sunday",
    "cron 0 2 ? * SUN *",
    "cron(0 2 ? * SUN *",
    "cron((0 2 ? * SUN *))",
    "cron(0 2 ? * SUN *)x",
    "cron(" + "0 " * 130 + ")",
    "",
]

CORPUS = list(dict.fromkeys(GUIDE_EXAMPLES + _field_variants() + OTHER_CASES))
_names = itertools.count()


def tagpatch_accepts(expression: str) -> str | None:
    """tagpatch's normalised form of the expression, or None if it rejects it."""
    try:
        return parse_schedule(expression).expression
    except InvalidSchedule:
        return None


def ssm_accepts(ssm: Any, expression: str) -> bool:
    try:
        window_id = ssm.create_maintenance_window(
            Name=f"differential-{next(_names)}",
            Schedule=expression,
            Duration=2,
            Cutoff=1,
            AllowUnassociatedTargets=False,
        )["WindowId"]
    except ClientError as error:
        assert error.response["Error"]["Code"] == "ValidationException", error
        return False
    except Exception as error:  # botocore's client-side check: an empty Schedule never leaves the client
        assert type(error).__name__ == "ParamValidationError", error
        return False
    ssm.delete_maintenance_window(WindowId=window_id)
    return True


def test_the_corpus_is_large_and_covers_the_guide() -> None:
    assert len(CORPUS) >= 150
    assert set(GUIDE_EXAMPLES) <= set(CORPUS)


def test_tagpatch_and_the_simulated_ssm_agree_on_every_expression(ssm: Any) -> None:
    disagreements = []
    for expression in CORPUS:
        normalised = tagpatch_accepts(expression)
        if normalised is None:
            if ssm_accepts(ssm, expression):
                disagreements.append(f"tagpatch rejects, SSM accepts: {expression!r}")
        elif not ssm_accepts(ssm, normalised):
            disagreements.append(f"tagpatch accepts, SSM rejects: {expression!r} (sent as {normalised!r})")
    assert disagreements == []


@pytest.mark.parametrize("expression", GUIDE_EXAMPLES)
def test_every_guide_example_is_valid_in_both(ssm: Any, expression: str) -> None:
    assert tagpatch_accepts(expression) is not None
    assert ssm_accepts(ssm, expression)


def test_both_reject_a_good_share_of_the_corpus(ssm: Any) -> None:
    # The corpus must test rejection too, not only acceptance.
    rejected = [e for e in CORPUS if tagpatch_accepts(e) is None]
    assert len(rejected) >= 60
