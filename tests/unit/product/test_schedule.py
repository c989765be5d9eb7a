from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tagpatch.schedule import InvalidSchedule, Schedule, is_schedule_expression, parse_schedule

# Examples from the SSM User Guide, the tagging whitepaper and the EventBridge/SSM cron tables.
DOCUMENTED = [
    "cron(30 23 ? * TUE#1 *)",
    "cron(30 23 ? * TUE#2 *)",
    "cron(0 2 ? * THU#3 *)",
    "cron(30 23 ? * TUE#3 *)",
    "cron(0 9 ? * 2#1 *)",
    "cron(0 18 ? * MON-FRI *)",
    "cron(0 8 1 * ? *)",
    "cron(0 10 * * ? *)",
    "cron(15 12 * * ? *)",
    "cron(0/15 * * * ? *)",
    "cron(0/10 * ? * MON-FRI *)",
    "cron(0/5 8-17 ? * MON-FRI *)",
    "cron(0 16 ? * TUE *)",
    "cron(0 09 ? * WED *)",
    "cron(15 10 ? * * *)",
    "cron(15 10 ? * MON-FRI *)",
    "cron(0 2 L * ? *)",
    "cron(15 10 ? * 6L *)",
    "cron(30 09 ? * * *)",
    "cron(24 30 09 ? * * *)",  # 7 fields: leading Seconds, documented for maintenance windows
    "rate(1 day)",
    "rate(2 hours)",
    "rate(7 days)",
    "rate(30 minutes)",
    "rate(1 hour)",
    "rate(5 hours)",
    "rate(25 days)",
    "at(2020-07-07T15:55:00)",
    "at(2019-07-07T13:15:30)",
]


@pytest.mark.parametrize("expression", DOCUMENTED)
def test_documented_examples_are_valid(expression: str) -> None:
    schedule = parse_schedule(expression)
    assert schedule.expression == expression
    assert schedule.kind == expression.split("(", maxsplit=1)[0]


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 2 ? * MON,WED,FRI *)",
        "cron(0 2 ? JAN-MAR,OCT * 2026-2030)",
        "cron(0 0/6 * * ? *)",
        "cron(5,10,15 3 ? * SAT *)",
        "cron(0 2 LW * ? *)",
        "cron(0 2 15W * ? *)",
        "cron(0 2 ? * L *)",
        "cron(0 2 ? * FRIL *)",
        "cron(0 2 ? * 1-7/2 *)",
        "cron(0 2 1-31/7 * ? *)",
        "cron(55 23,0 * * ? *)",
        "cron(0 2 ? * SUN#5 *)",
        "cron(0 2 ? * SUN 2199)",
        "cron(0 2 ? * SUN 1970)",
        "cron(59 23 31 12 ? *)",
        "rate(5 minutes)",
        "rate(10 minutes)",
        "at(2024-02-29T23:59:59)",
    ],
)
def test_other_valid_expressions(expression: str) -> None:
    assert parse_schedule(expression).expression == expression


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("  cron(0 2 ? * SUN *)\n", "cron(0 2 ? * SUN *)"),
        ("cron(0 2 ? * sun *)", "cron(0 2 ? * SUN *)"),
        ("CRON(0 2 ? jan Sun *)", "cron(0 2 ? JAN SUN *)"),
        ("cron( 0  2 ? * SUN * )", "cron(0 2 ? * SUN *)"),
        ("Rate(2 Hours)", "rate(2 hours)"),
        ("rate( 1 day )", "rate(1 day)"),
        ("AT(2020-07-07t15:55:00)", "at(2020-07-07T15:55:00)"),
    ],
)
def test_expressions_are_normalised(given: str, normalised: str) -> None:
    assert parse_schedule(given).expression == normalised


def test_schedule_kind() -> None:
    assert parse_schedule("cron(0 2 ? * SUN *)") == Schedule("cron(0 2 ? * SUN *)", "cron")
    assert parse_schedule("rate(2 days)").kind == "rate"
    assert parse_schedule("at(2020-07-07T15:55:00)").kind == "at"


INVALID = [
    # (expression, distinctive part of the reason)
    ("", "schedule expression is empty"),
    ("   ", "schedule expression is empty"),
    ("cron(" + "0 " * 200 + ")", "at most 256"),
    ("every sunday", "must be cron(...), rate(...) or at(...)"),
    ("cron 0 2 ? * SUN *", "must be cron(...), rate(...) or at(...)"),
    ("cron(0 2 ? * SUN *", 'must end with ")"'),
    ("cron(0 2 ? * SUN *)x", 'must end with ")"'),
    ("cron((0 2 ? * SUN *))", "parentheses"),
    ("cron(0\u00a02 ? * SUN *)", "U+00A0 (NO-BREAK SPACE)"),
    ("cron(0 2 ? * MON\u2013FRI *)", "U+2013 (EN DASH)"),
    ("cron(0 2 ? * SUN)", "expected 6 fields (Minutes Hours Day-of-month Month Day-of-week Year), or 7"),
    ("cron(0 2 ? * SUN)", 'the Year field is required: add " *" at the end'),
    ("cron(0 0 2 ? * SUN * *)", "got 8"),
    ("cron()", "got 0"),
    (
        "cron(0 2 * * SUN *)",
        'needs "?" in either day-of-month or day-of-week (got "*" and "SUN"); e.g. cron(0 2 ? * SUN *)',
    ),
    ("cron(0 2 1 * MON *)", 'got "1" and "MON"'),
    ("cron(0 2 * * * *)", "e.g. cron(0 2 * * ? *)"),
    ("cron(0 2 ? * ? *)", 'can\'t have "?" in both day-of-month and day-of-week'),
    ("cron(0 2 ? * MOX *)", 'day-of-week field "MOX" is not a valid day; use 1-7 or SUN-SAT'),
    ("cron(0 2 ? * 0 *)", 'day-of-week field "0" is out of range; use 1-7 or SUN-SAT'),
    ("cron(0 2 ? * 8 *)", 'day-of-week field "8" is out of range'),
    ("cron(60 2 ? * SUN *)", 'minutes field "60" is out of range; use 0-59'),
    ("cron(0 24 ? * SUN *)", 'hours field "24" is out of range; use 0-23'),
    ("cron(0 1,25 ? * SUN *)", 'hours field "1,25": "25" is out of range; use 0-23'),
    ("cron(0 2 0 * ? *)", 'day-of-month field "0" is out of range; use 1-31'),
    ("cron(0 2 32 * ? *)", 'day-of-month field "32" is out of range'),
    ("cron(0 2 1 13 ? *)", 'month field "13" is out of range; use 1-12 or JAN-DEC'),
    ("cron(0 2 1 JUNE ? *)", 'month field "JUNE" is not a valid month; use 1-12 or JAN-DEC'),
    ("cron(0 2 ? * SUN 1969)", 'year field "1969" is out of range; use 1970-2199'),
    ("cron(0 2 ? * SUN 2200)", 'year field "2200" is out of range'),
    ("cron(a 2 ? * SUN *)", 'minutes field "A" is not a number; use 0-59'),
    ("cron(0 ? ? * SUN *)", 'hours field "?" is not allowed; "?" is only for day-of-month or day-of-week'),
    (
        "cron(0 2 ? * FRI-MON *)",
        'day-of-week field "FRI-MON" is a descending range; write it low-high, e.g. "MON-FRI"',
    ),
    ("cron(0 5-2 ? * SUN *)", 'hours field "5-2" is a descending range'),
    ("cron(0 */0 ? * SUN *)", 'hours field "*/0" has step 0; the step after "/" must be 1 or more'),
    ("cron(0 0/x ? * SUN *)", "has a step that is not a whole number"),
    ("cron(0 1,,2 ? * SUN *)", "has an empty item; remove the extra comma"),
    ("cron(0 2 ? * TUE#6 *)", 'has an invalid occurrence after "#"; use 1-5'),
    ("cron(0 2 ? * TUE#0 *)", 'invalid occurrence after "#"'),
    ("cron(0 2 ? * XYZ#2 *)", 'has "XYZ", which is not a valid day'),
    ("cron(0 2 ? * TUE#1,THU#3 *)", "can't be combined with other values"),
    ("cron(0 2 L,15 * ? *)", "can't be combined with other values"),
    ("cron(0 2 32W * ? *)", "has a day out of range; use 1-31 before W"),
    ("cron(0 2 XW * ? *)", '"W" follows a day number'),
    ("cron(0 2 L-3 * ? *)", 'in day-of-month use "L" on its own'),
    ("cron(0 2 1#2 * ? *)", '"#", which is only allowed in day-of-week'),
    ("cron(0 L ? * SUN *)", 'uses "L", which is not allowed in the hours field'),
    ("cron(0 2 ? * ?,SUN *)", 'use "?" on its own'),
    ("cron(* 2 ? * SUN *)", "only 1 minute apart (e.g. at 02:00 and 02:01)"),
    ("cron(*/2 2 ? * SUN *)", "only 2 minutes apart"),
    ("cron(0-10 2 ? * SUN *)", "can't run more often than every 5 minutes"),
    ("cron(0,3 2 ? * SUN *)", "only 3 minutes apart (e.g. at 02:00 and 02:03)"),
    ("cron(0,57 * ? * SUN *)", "only 3 minutes apart (e.g. at 00:57 and 01:00)"),
    ("cron(1,58 0,23 * * ? *)", "(e.g. at 23:58 and 00:01)"),
    ("cron(0 0 2 ? * SUN *)", 'seconds field "0" is not supported for maintenance windows'),
    ("cron(*/10 0 2 ? * SUN *)", 'seconds field "*/10" must be a single number 1-59'),
    ("cron(60 0 2 ? * SUN *)", 'seconds field "60" is out of range'),
    ("rate(1 days)", "the unit must be singular when the value is 1; use rate(1 day)"),
    ("rate(2 day)", "the unit must be plural when the value is more than 1; use rate(2 days)"),
    ("rate(1 hours)", "use rate(1 hour)"),
    ("rate(5 hour)", "use rate(5 hours)"),
    ("rate(0 days)", "the value must be 1 or more"),
    ("rate(07 days)", 'value "07" has a leading zero; write rate(7 days)'),
    ("rate(-1 days)", 'value "-1" is not a positive whole number'),
    ("rate(1.5 hours)", "is not a positive whole number"),
    ("rate(2 weeks)", 'unit "weeks" is not supported; use minute(s), hour(s) or day(s)'),
    ("rate(30 seconds)", 'unit "seconds" is not supported'),
    ("rate(4 minutes)", "runs more often than every 5 minutes"),
    ("rate(1 minute)", "use rate(5 minutes) or longer"),
    ("rate(7days)", "needs a value and a unit separated by a space"),
    ("rate()", "needs a value and a unit"),
    ("at(2021-02-29T00:00:00)", "is not a real date and time (day is out of range for month)"),
    ("at(2020-13-01T00:00:00)", "is not a real date and time"),
    ("at(2020-07-07T24:00:00)", "is not a real date and time"),
    ("at(2020-07-07 15:55:00)", "needs a timestamp as yyyy-mm-ddThh:mm:ss"),
    ("at(2020-07-07T15:55:00Z)", "without a time zone"),
    ("at(2020-07-07)", "e.g. at(2020-07-07T15:55:00)"),
]


@pytest.mark.parametrize(("expression", "reason"), INVALID, ids=[f"{i}:{e[:30]}" for i, (e, _) in enumerate(INVALID)])
def test_invalid_expressions_say_why(expression: str, reason: str) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        parse_schedule(expression)
    assert reason in str(caught.value)


def test_several_field_problems_are_all_reported() -> None:
    with pytest.raises(InvalidSchedule) as caught:
        parse_schedule("cron(61 25 ? * MOX *)")
    message = str(caught.value)
    assert 'minutes field "61"' in message
    assert 'hours field "25"' in message
    assert 'day-of-week field "MOX"' in message


def test_huge_and_odd_values_are_quoted_briefly() -> None:
    with pytest.raises(InvalidSchedule) as caught:
        parse_schedule("x" * 200)
    assert len(str(caught.value)) < 300
    with pytest.raises(InvalidSchedule) as caught:
        parse_schedule("cron(0 2 ? * SUN *)\x00")
    assert "U+0000" in str(caught.value) or 'must end with ")"' in str(caught.value)


def test_invalid_schedule_is_a_value_error() -> None:
    assert issubclass(InvalidSchedule, ValueError)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("cron(0 2 ? * SUN *)", True),
        ("  CRON(nonsense", True),
        ("Rate(2 days)", True),
        ("at(tomorrow)", True),
        ("sun-0200", False),
        ("cron", False),
        ("cron (0 2 ? * SUN *)", False),
        ("", False),
        ("patch-at(2)", False),
    ],
)
def test_is_schedule_expression(value: str, expected: bool) -> None:
    assert is_schedule_expression(value) is expected


def test_untyped_callers_get_invalid_schedule_not_type_error() -> None:
    with pytest.raises(InvalidSchedule, match="must be text"):
        parse_schedule(None)  # type: ignore[arg-type]
    assert is_schedule_expression(None) is False  # type: ignore[arg-type]


# --- properties ------------------------------------------------------------------------------

schedule_like = st.one_of(
    st.text(),
    st.builds(lambda body: f"cron({body})", st.text()),
    st.builds(lambda body: f"rate({body})", st.text()),
    st.builds(lambda body: f"at({body})", st.text()),
    st.builds(
        lambda fields: "cron(" + " ".join(fields) + ")",
        st.lists(st.text(alphabet="0123456789*/?-,LW#ABCDEFGHIJKLMNOPQRSTUVWXYZ", max_size=8), max_size=8),
    ),
)


@given(schedule_like)
def test_parse_schedule_only_ever_raises_invalid_schedule(text: str) -> None:
    try:
        schedule = parse_schedule(text)
    except InvalidSchedule as exc:
        assert str(exc)
    else:
        assert is_schedule_expression(schedule.expression)
        assert 1 <= len(schedule.expression) <= 256
        # Normalisation is idempotent: what tagpatch sends to SSM validates to itself.
        assert parse_schedule(schedule.expression) == schedule


@given(st.text())
def test_is_schedule_expression_is_total(text: str) -> None:
    assert isinstance(is_schedule_expression(text), bool)


@given(
    minute=st.integers(0, 59),
    hour=st.integers(0, 23),
    day=st.sampled_from(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "1", "7", "MON-FRI", "TUE#2", "6L"]),
)
def test_weekly_schedules_are_valid(minute: int, hour: int, day: str) -> None:
    expression = f"cron({minute} {hour} ? * {day} *)"
    assert parse_schedule(expression).expression == expression


@given(value=st.integers(1, 10_000), unit=st.sampled_from(["minute", "hour", "day"]))
def test_rate_unit_number_rule(value: int, unit: str) -> None:
    right = unit if value == 1 else unit + "s"
    wrong = unit + "s" if value == 1 else unit
    if unit == "minute" and value < 5:
        with pytest.raises(InvalidSchedule, match="more often than every 5 minutes"):
            parse_schedule(f"rate({value} {right})")
    else:
        assert parse_schedule(f"rate({value} {right})").expression == f"rate({value} {right})"
    with pytest.raises(InvalidSchedule, match=r"singular|plural"):
        parse_schedule(f"rate({value} {wrong})")


@given(step=st.integers(1, 60), hour=st.integers(0, 23))
def test_minute_steps_follow_the_five_minute_rule(step: int, hour: int) -> None:
    expression = f"cron(0/{step} {hour} ? * SUN *)"
    if step < 5:
        with pytest.raises(InvalidSchedule, match="every 5 minutes"):
            parse_schedule(expression)
    else:
        assert parse_schedule(expression).kind == "cron"
