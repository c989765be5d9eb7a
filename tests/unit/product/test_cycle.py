"""The cycle's execution input: what a hand-typed re-run may say, and what each mistake is told."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tagpatch.cycle import INPUT_KEYS, MODES, Cycle, ensure_first_running, start_cycle
from tagpatch.errors import CycleAlreadyRunning, InvalidCycleInput
from tagpatch.targets import Target

EXECUTION_ID = "arn:aws:states:us-east-1:123456789012:execution:tagpatch-patch-cycle:manual-2026-11-27"
EXECUTION_NAME = "manual-2026-11-27"
START_TIME = "2026-11-27T15:00:00.123Z"  # as $$.Execution.StartTime gives it
PREFIX = re.compile(r"^runs/\d{4}/\d{2}/\d{2}/[A-Za-z0-9_-]{1,80}/$")
HOME = Target("123456789012", "us-east-1")


def start(execution_input: object, *, name: str = EXECUTION_NAME, start_time: str = START_TIME) -> Cycle:
    return start_cycle(
        execution_input, execution_id=EXECUTION_ID, execution_name=name, start_time=start_time, home=HOME
    )


def rejection(execution_input: object, *, name: str = EXECUTION_NAME) -> str:
    with pytest.raises(InvalidCycleInput) as caught:
        start(execution_input, name=name)
    return str(caught.value)


# --- accepted input -------------------------------------------------------------------------------


@pytest.mark.parametrize("execution_input", [{}, None], ids=["empty-object", "null"])
def test_empty_input_is_a_default_apply_cycle_at_the_start_time(execution_input: object) -> None:
    cycle = start(execution_input)
    assert cycle.run_id == EXECUTION_NAME
    assert cycle.execution_id == EXECUTION_ID
    assert cycle.mode == "apply"
    assert cycle.patch_groups is None
    assert cycle.now == datetime(2026, 11, 27, 15, 0, 0, 123000, tzinfo=UTC)
    assert cycle.artifact_prefix == "runs/2026/11/27/manual-2026-11-27/"
    assert cycle.artifact_key("inventory.jsonl.gz") == "runs/2026/11/27/manual-2026-11-27/inventory.jsonl.gz"


def test_plan_mode() -> None:
    assert start({"mode": "plan"}).mode == "plan"
    assert start({"mode": "apply"}).mode == "apply"


def test_patch_groups_list_becomes_a_set() -> None:
    cycle = start({"patch_groups": ["web-prod", "db-prod", "web-prod", "Finance Web @eu/1"]})
    assert cycle.patch_groups == frozenset({"web-prod", "db-prod", "Finance Web @eu/1"})


def test_explicit_null_patch_groups_means_every_group() -> None:
    assert start({"patch_groups": None}).patch_groups is None


def test_now_with_z() -> None:
    cycle = start({"now": "2026-11-29T01:00:00Z"})
    assert cycle.now == datetime(2026, 11, 29, 1, 0, tzinfo=UTC)
    assert cycle.artifact_prefix == "runs/2026/11/29/manual-2026-11-27/"


def test_now_with_offset_is_converted_to_utc() -> None:
    # 01:30 in +02:00 is the previous day in UTC: the artifact prefix follows the UTC date.
    cycle = start({"now": "2026-11-29T01:30:00+02:00"})
    assert cycle.now == datetime(2026, 11, 28, 23, 30, tzinfo=UTC)
    assert cycle.now.utcoffset() == timedelta(0)
    assert cycle.artifact_prefix == "runs/2026/11/28/manual-2026-11-27/"
    assert cycle.to_payload()["now"] == "2026-11-28T23:30:00Z"


def test_start_time_with_offset_is_converted_too() -> None:
    cycle = start({}, start_time="2026-01-01T00:30:00-01:00")
    assert cycle.now == datetime(2026, 1, 1, 1, 30, tzinfo=UTC)
    assert cycle.artifact_prefix == "runs/2026/01/01/manual-2026-11-27/"


def test_all_keys_together() -> None:
    cycle = start({"mode": "plan", "patch_groups": ["web-prod"], "now": "2026-12-01T02:00:00Z"})
    assert (cycle.mode, cycle.patch_groups, cycle.now) == (
        "plan",
        frozenset({"web-prod"}),
        datetime(2026, 12, 1, 2, 0, tzinfo=UTC),
    )


def test_artifact_prefix_is_zero_padded() -> None:
    cycle = start({"now": "2027-03-04T05:06:07Z"}, name="a")
    assert cycle.artifact_prefix == "runs/2027/03/04/a/"
    # A year before 1000 (which strftime's %Y would not pad) is now refused as outside the sane range.
    with pytest.raises(InvalidCycleInput, match="is outside 2000-01-01 to 2100-01-01"):
        start({"now": "0999-01-02T00:00:00Z"}, name="a")


# --- rejected input -------------------------------------------------------------------------------


def test_unknown_key_is_named_and_allowed_keys_listed() -> None:
    message = rejection({"mode": "plan", "patchgroups": ["web-prod"]})
    assert "unknown input key(s) 'patchgroups'" in message
    assert "allowed keys are allow_mass_deletion, mode, now, patch_groups" in message


def test_several_unknown_keys_are_all_named() -> None:
    message = rejection({"dry_run": True, "force": True})
    assert "'dry_run', 'force'" in message


@pytest.mark.parametrize(
    ("execution_input", "expected"),
    [
        ({"mode": "dry-run"}, 'mode \'dry-run\' is not valid; use "apply" (the default) or "plan"'),
        ({"mode": 1}, "mode 1 is not valid"),
        ({"mode": "PLAN"}, "mode 'PLAN' is not valid"),
        ({"mode": None}, "mode None is not valid"),
        ({"patch_groups": "web"}, "patch_groups must be a non-empty list of patch group names"),
        ({"patch_groups": []}, "patch_groups must be a non-empty list of patch group names"),
        ({"patch_groups": [""]}, "patch_groups[0] '' is not a valid patch group name"),
        ({"patch_groups": ["web", "bad$name"]}, "patch_groups[1] 'bad$name' is not a valid patch group name"),
        ({"patch_groups": [3]}, "patch_groups[0] 3 is not a valid patch group name"),
        ({"patch_groups": ["x" * 257]}, "is not a valid patch group name (1-256 letters"),
        ({"now": "yesterday"}, "now 'yesterday' is not an ISO 8601 time; use e.g. 2026-11-29T02:00:00Z"),
        (
            {"now": "2026-11-27T02:00:00"},
            "now '2026-11-27T02:00:00' has no UTC offset; add one, e.g. 2026-11-27T02:00:00Z",
        ),
        ({"now": 12345}, "now must be an ISO 8601 string such as 2026-11-29T02:00:00Z (got 12345)"),
        ({"now": None}, "now must be an ISO 8601 string"),
        ({"now": "9999-12-31T23:00:00-05:00"}, "is out of range once converted to UTC"),
        ([1], 'the execution input must be a JSON object such as {"mode": "plan"} (got [1])'),
        ("[1]", 'the execution input must be a JSON object such as {"mode": "plan"} (got \'[1]\')'),
        ("plan", "the execution input must be a JSON object"),
    ],
    ids=lambda value: repr(value)[:40],
)
def test_bad_input_is_rejected_with_a_specific_message(execution_input: object, expected: str) -> None:
    assert expected in rejection(execution_input)


@pytest.mark.parametrize("name", ["", "manual run", "run/1", "x" * 81, "ünïcode"])
def test_bad_execution_name(name: str) -> None:
    message = rejection({}, name=name)
    assert f"execution name {name!r} must be 1-80 of A-Z a-z 0-9 _ -" in message


def test_execution_name_of_80_characters_is_fine() -> None:
    assert start({}, name="x" * 80).run_id == "x" * 80


# --- the cycle payload ----------------------------------------------------------------------------


def test_payload_round_trip() -> None:
    cycle = start({"mode": "plan", "patch_groups": ["web-prod", "db-prod"], "now": "2026-11-29T01:00:00+01:00"})
    payload = cycle.to_payload()
    assert payload == {
        "run_id": EXECUTION_NAME,
        "execution_id": EXECUTION_ID,
        "now": "2026-11-29T00:00:00Z",
        "mode": "plan",
        "patch_groups": ["db-prod", "web-prod"],
        "artifact_prefix": "runs/2026/11/29/manual-2026-11-27/",
        "allow_mass_deletion": False,
        "target": {"account_id": "123456789012", "region": "us-east-1"},  # home, with no target in the input
    }
    assert Cycle.from_payload(payload) == cycle
    assert Cycle.from_payload(payload).to_payload() == payload


def test_the_input_s_target_is_carried_into_the_cycle() -> None:
    cycle = start({"target": {"account_id": "222222222222", "region": "eu-west-1"}})
    assert cycle.target == Target("222222222222", "eu-west-1")
    assert Cycle.from_payload(cycle.to_payload()).target == Target("222222222222", "eu-west-1")


def test_a_payload_without_a_target_reads_as_home() -> None:
    payload = dict(start({}).to_payload())
    del payload["target"]
    assert Cycle.from_payload(payload).target is None


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("222222222222", "target must be an object"),
        ({"account_id": "2222", "region": "eu-west-1"}, "target.account_id '2222' is not an AWS account id"),
        ({"account_id": "222222222222", "region": "moon-1"}, "target.region 'moon-1' is not an AWS Region"),
        ({"account_id": "222222222222"}, "exactly the keys account_id and region"),
    ],
)
def test_a_bad_target_is_refused_with_what_would_be_right(target: object, expected: str) -> None:
    assert expected in rejection({"target": target})


def test_payload_round_trip_without_patch_groups_keeps_fractional_seconds() -> None:
    cycle = start({})
    payload = cycle.to_payload()
    assert payload["patch_groups"] is None
    assert payload["now"] == "2026-11-27T15:00:00.123000Z"
    assert Cycle.from_payload(payload) == cycle


def test_from_payload_rejects_a_missing_cycle() -> None:
    with pytest.raises(InvalidCycleInput, match=r"the task payload has no 'cycle' object"):
        Cycle.from_payload(None)


def test_from_payload_names_a_missing_key() -> None:
    payload: dict[str, Any] = dict(start({}).to_payload())
    del payload["artifact_prefix"]
    with pytest.raises(InvalidCycleInput, match=r"the cycle object is missing 'artifact_prefix'"):
        Cycle.from_payload(payload)


def test_from_payload_rejects_bad_mode_and_time() -> None:
    payload: dict[str, Any] = dict(start({}).to_payload())
    with pytest.raises(InvalidCycleInput, match=r"mode 'dry-run' is not valid"):
        Cycle.from_payload({**payload, "mode": "dry-run"})
    with pytest.raises(InvalidCycleInput, match=r"cycle.now 'soon' is not an ISO 8601 time"):
        Cycle.from_payload({**payload, "now": "soon"})


def test_in_scope_without_patch_groups_is_everything() -> None:
    cycle = start({})
    assert cycle.in_scope("web-prod")
    assert cycle.in_scope(None)  # untagged instances are in scope of a full cycle


def test_in_scope_with_patch_groups() -> None:
    cycle = start({"patch_groups": ["web-prod", "db-prod"]})
    assert cycle.in_scope("web-prod")
    assert cycle.in_scope("db-prod")
    assert not cycle.in_scope("web-dev")
    assert not cycle.in_scope("Web-Prod")  # SSM matches patch groups exactly
    assert not cycle.in_scope(None)


# --- properties -----------------------------------------------------------------------------------

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)
OFFSETS = st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59))
ISO_TIMES = st.builds(
    lambda moment, offset: moment.replace(tzinfo=timezone(offset)).isoformat(),
    st.datetimes(),
    OFFSETS,
)
VALUES_BY_KEY: dict[str, st.SearchStrategy[Any]] = {
    "mode": JSON_VALUES | st.sampled_from(["apply", "plan", "Apply", " plan", "dry-run"]),
    "patch_groups": JSON_VALUES | st.lists(st.text(max_size=10), max_size=4),
    "now": JSON_VALUES | ISO_TIMES | st.datetimes().map(datetime.isoformat),
}
VALID_INPUTS = st.fixed_dictionaries({}, optional=VALUES_BY_KEY)
# Step Functions input always has string keys; a caller handing a Mapping over directly may not.
UNKNOWN_KEYS = (st.text(max_size=12) | st.integers() | st.none() | st.tuples(st.integers())).filter(
    lambda key: key not in INPUT_KEYS
)


@given(known=VALID_INPUTS, unknown=st.dictionaries(UNKNOWN_KEYS, JSON_VALUES, min_size=1, max_size=3))
def test_any_unknown_key_is_rejected_as_invalid_input(known: dict[str, Any], unknown: dict[Any, Any]) -> None:
    message = rejection({**known, **unknown})
    assert message.startswith("unknown input key(s) ")
    assert all(repr(key) in message for key in unknown)
    assert message.endswith("allowed keys are allow_mass_deletion, mode, now, patch_groups, target")


@given(execution_input=VALID_INPUTS)
def test_any_value_of_a_known_key_is_accepted_or_rejected_as_invalid_input(
    execution_input: dict[str, Any],
) -> None:
    try:
        cycle = start(execution_input)
    except InvalidCycleInput as error:
        assert str(error)
        return
    assert cycle.mode in MODES
    assert cycle.mode == execution_input.get("mode", "apply")
    assert cycle.now.utcoffset() == timedelta(0)
    assert PREFIX.match(cycle.artifact_prefix)
    assert cycle.artifact_prefix == f"runs/{cycle.now.date().isoformat().replace('-', '/')}/{EXECUTION_NAME}/"
    if execution_input.get("patch_groups") is None:
        assert cycle.patch_groups is None
    else:
        assert cycle.patch_groups == frozenset(execution_input["patch_groups"])
    assert Cycle.from_payload(cycle.to_payload()) == cycle


@given(now=ISO_TIMES)
def test_any_offset_time_is_the_same_instant_in_utc(now: str) -> None:
    try:
        cycle = start({"now": now})
    except InvalidCycleInput as error:
        assert "out of range once converted to UTC" in str(error) or "is outside 2000-01-01 to 2100-01-01" in str(error)
        return
    assert cycle.now == datetime.fromisoformat(now)
    assert cycle.now.tzinfo is UTC


@given(execution_input=JSON_VALUES)
def test_any_json_value_as_the_whole_input(execution_input: object) -> None:
    try:
        cycle = start(execution_input)
    except InvalidCycleInput:
        return
    assert cycle.run_id == EXECUTION_NAME


def test_allow_mass_deletion_defaults_to_false_and_accepts_booleans() -> None:
    assert start({}).allow_mass_deletion is False
    assert start({"allow_mass_deletion": True}).allow_mass_deletion is True


@pytest.mark.parametrize("value", ["yes", 1, None, [True]])
def test_allow_mass_deletion_must_be_a_boolean(value: object) -> None:
    assert "allow_mass_deletion must be true or false" in rejection({"allow_mass_deletion": value})


# --- one cycle at a time ------------------------------------------------------------------------------------


def _execution(name: str, started: str) -> dict[str, object]:
    return {
        "executionArn": f"arn:aws:states:us-east-1:123456789012:execution:tagpatch-patch-cycle:{name}",
        "name": name,
        "startDate": datetime.fromisoformat(started),
    }


def test_the_oldest_running_execution_goes_on_and_a_younger_one_stops() -> None:
    old, new = _execution("scheduled", "2026-11-29T02:00:00+00:00"), _execution("manual", "2026-11-29T02:00:01+00:00")
    ensure_first_running([old, new], execution_arn=str(old["executionArn"]), start_time="2026-11-29T02:00:00Z")
    with pytest.raises(CycleAlreadyRunning, match=r"execution scheduled of this state machine.*is still running"):
        ensure_first_running([old, new], execution_arn=str(new["executionArn"]), start_time="2026-11-29T02:00:01Z")


def test_an_older_execution_of_another_target_does_not_stop_this_one() -> None:
    other, mine = _execution("other", "2026-11-29T02:00:00+00:00"), _execution("mine", "2026-11-29T02:00:01+00:00")
    asked = []

    def of_same_target(execution: object) -> bool:
        asked.append(execution)
        return False

    ensure_first_running(
        [other, mine],
        execution_arn=str(mine["executionArn"]),
        start_time="2026-11-29T02:00:01Z",
        of_same_target=of_same_target,
    )
    assert asked == [other]  # only the older one is asked about
    with pytest.raises(CycleAlreadyRunning):
        ensure_first_running(
            [other, mine],
            execution_arn=str(mine["executionArn"]),
            start_time="2026-11-29T02:00:01Z",
            of_same_target=lambda execution: True,
        )


def test_two_executions_started_in_the_same_instant_agree_on_one_winner() -> None:
    a, b = _execution("a", "2026-11-29T02:00:00+00:00"), _execution("b", "2026-11-29T02:00:00+00:00")
    outcomes = []
    for me in (a, b):
        try:
            ensure_first_running([a, b], execution_arn=str(me["executionArn"]), start_time="2026-11-29T02:00:00Z")
            outcomes.append("runs")
        except CycleAlreadyRunning:
            outcomes.append("stops")
    assert outcomes == ["runs", "stops"]


def test_an_execution_not_yet_listed_uses_its_own_start_time() -> None:
    old = _execution("scheduled", "2026-11-29T02:00:00+00:00")
    with pytest.raises(CycleAlreadyRunning):
        ensure_first_running([old], execution_arn="arn:new", start_time="2026-11-29T02:05:00Z")
    ensure_first_running([], execution_arn="arn:new", start_time="2026-11-29T02:05:00Z")


@pytest.mark.parametrize(
    "now", ["1999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2100-01-01T00:00:01Z", "9999-12-31T00:00:00Z"]
)
def test_a_now_outside_a_sane_range_is_refused_before_anything_is_written(now: str) -> None:
    with pytest.raises(InvalidCycleInput, match=re.escape(f"now {now!r} is outside 2000-01-01 to 2100-01-01")):
        start_cycle({"now": now}, execution_id="e", execution_name="run", start_time="2026-11-29T02:00:00Z")


@pytest.mark.parametrize("now", ["2000-01-01T00:00:00Z", "2099-12-31T23:59:59Z"])
def test_a_now_at_the_range_edges_is_accepted(now: str) -> None:
    assert start_cycle({"now": now}, execution_id="e", execution_name="run", start_time=now).now.year in (2000, 2099)


ORG_EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:tagpatch-org-cycle:daily"


def test_a_cycle_the_org_cycle_started_knows_it_and_leaves_its_alert_to_the_org_cycle() -> None:
    cycle = start({"AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": ORG_EXECUTION})
    assert (cycle.started_by, cycle.alerts_alone) == (ORG_EXECUTION, False)
    assert cycle.failure_key == f"{cycle.artifact_prefix}failure.json"
    assert Cycle.from_payload(cycle.to_payload()) == cycle
    alone = start({})
    assert (alone.started_by, alone.alerts_alone) == (None, True)
    assert "started_by" not in alone.to_payload()  # a cycle started alone has the payload it always had


@pytest.mark.parametrize("value", ["", 7, ["arn"]])
def test_a_started_by_that_is_not_an_execution_arn_is_refused(value: object) -> None:
    with pytest.raises(InvalidCycleInput, match="AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID must be"):
        start({"AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": value})
