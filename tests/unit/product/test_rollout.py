"""Rollout waves: the policy's `rollout:` section, and the gate that holds a wave until its predecessor is healthy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tagpatch.errors import InvalidPatchPolicy
from tagpatch.gates import (
    GateDecision,
    WaveRun,
    evaluate_gate,
    evaluate_gates,
    gate_holds,
    record_wave_runs,
    told_causes,
    wave_runs_from_json,
    wave_runs_to_json,
)
from tagpatch.monitoring import InstanceRun, WindowRun
from tagpatch.policy import parse_policy
from tagpatch.rollout import Gate, Rollout, Wave

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def policy_with(rollout: object) -> dict[str, Any]:
    return {"version": 1, "rollout": rollout}


CANARY_PROD = {
    "waves": [
        {"name": "canary", "patch_groups": ["web-canary"]},
        {"name": "prod", "patch_groups": "rest", "gate": {"max_failed_share": 0.1, "soak_hours": 48}},
    ]
}


# --- the policy section -----------------------------------------------------------------------------


def test_no_rollout_section_means_no_waves() -> None:
    rollout = parse_policy({"version": 1}).rollout
    assert rollout.waves == ()
    assert rollout.wave_of("web") is None


def test_waves_are_read_in_order_with_their_gates() -> None:
    rollout = parse_policy(policy_with(CANARY_PROD)).rollout
    canary, prod = rollout.waves
    assert (canary.name, canary.patch_groups, canary.gate) == ("canary", ("web-canary",), None)
    assert prod.takes_rest and prod.patch_groups == ()
    assert prod.gate == Gate(max_failed=None, max_failed_share=0.1, min_patched=1, soak_hours=48, alarms=())
    assert rollout.wave_of("web-canary") == canary
    assert rollout.wave_of("db") == prod  # the rest
    assert rollout.predecessor(prod) == canary and rollout.predecessor(canary) is None


def test_a_gate_with_no_failure_limit_allows_no_failure() -> None:
    rollout = parse_policy(
        policy_with({"waves": [{"name": "a", "patch_groups": ["x"]}, {"name": "b", "patch_groups": ["y"]}]})
    ).rollout
    assert rollout.waves[1].gate == Gate(max_failed=0)
    assert rollout.wave_of("z") is None  # no wave takes the rest: z is not in the rollout


def test_alarm_names_are_collected_once() -> None:
    document = policy_with(
        {
            "waves": [
                {"name": "a", "patch_groups": ["x"]},
                {"name": "b", "patch_groups": ["y"], "gate": {"alarms": ["app-5xx", "app-latency"]}},
                {"name": "c", "patch_groups": "rest", "gate": {"alarms": ["app-5xx"]}},
            ]
        }
    )
    assert parse_policy(document).rollout.alarm_names() == ("app-5xx", "app-latency")


def _waves(*waves: object) -> dict[str, Any]:
    return policy_with({"waves": list(waves)})


FIRST = {"name": "canary", "patch_groups": ["c"]}

BAD_ROLLOUTS = [
    ("not-a-mapping", policy_with(["canary"]), "rollout: must be a mapping (got list)"),
    ("unknown-key", policy_with({"waves": [FIRST], "order": 1}), "rollout.order: unknown key; expected waves"),
    ("no-waves", policy_with({"waves": []}), "rollout.waves: must be a list of 1 to 10 waves"),
    ("bad-name", _waves({"name": "can ary", "patch_groups": ["c"]}), "rollout.waves[0].name: must be 1-64"),
    (
        "twice",
        _waves(FIRST, {"name": "canary", "patch_groups": ["d"]}),
        "rollout.waves[1].name: wave 'canary' is named twice",
    ),
    (
        "group-twice",
        _waves(FIRST, {"name": "prod", "patch_groups": ["c"]}),
        "rollout.waves[1].patch_groups[0]: 'c' is already in wave 'canary'",
    ),
    (
        "rest-not-last",
        _waves({"name": "canary", "patch_groups": "rest"}, {"name": "prod", "patch_groups": ["d"]}),
        "rollout.waves[0].patch_groups: only the last wave may take 'rest'",
    ),
    (
        "empty-groups",
        _waves({"name": "canary", "patch_groups": []}),
        "rollout.waves[0].patch_groups: must be a non-empty list",
    ),
    (
        "first-gated",
        _waves({"name": "canary", "patch_groups": ["c"], "gate": {}}),
        "rollout.waves[0].gate: the first wave has no wave before it to gate on",
    ),
    (
        "gate-unknown-key",
        _waves(FIRST, {"name": "prod", "patch_groups": "rest", "gate": {"soak": 4}}),
        "rollout.waves[1].gate.soak: unknown key",
    ),
    (
        "share-above-one",
        _waves(FIRST, {"name": "prod", "patch_groups": "rest", "gate": {"max_failed_share": 1.5}}),
        "rollout.waves[1].gate.max_failed_share: must be a number from 0 to 1 (got 1.5)",
    ),
    (
        "soak-too-long",
        _waves(FIRST, {"name": "prod", "patch_groups": "rest", "gate": {"soak_hours": 721}}),
        "rollout.waves[1].gate.soak_hours: must be a whole number from 0 to 720 (got 721)",
    ),
    (
        "min-patched-negative",
        _waves(FIRST, {"name": "prod", "patch_groups": "rest", "gate": {"min_patched": -1}}),
        "rollout.waves[1].gate.min_patched: must be a whole number from 0 to 100000 (got -1)",
    ),
    (
        "alarm-name-too-long",
        _waves(FIRST, {"name": "prod", "patch_groups": "rest", "gate": {"alarms": ["a" * 256]}}),
        "rollout.waves[1].gate.alarms[0]: must be an alarm name of 1 to 255 characters",
    ),
    (
        "too-many-alarms",
        _waves(FIRST, {"name": "prod", "patch_groups": "rest", "gate": {"alarms": [f"a{i}" for i in range(101)]}}),
        "rollout: names 101 alarms; at most 100",
    ),
    ("wave-key-with-newline", _waves({"name": "x", "patch_groups": ["c"], "wa\nve": 1}), "rollout.waves[0]."),
]


@pytest.mark.parametrize(("document", "expected"), [pytest.param(d, e, id=n) for n, d, e in BAD_ROLLOUTS])
def test_a_bad_rollout_is_refused_in_one_line_naming_the_key(document: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidPatchPolicy) as caught:
        parse_policy(document, "patch-policy.yaml")
    message = str(caught.value)
    assert message.startswith(f"patch-policy.yaml: {expected}")
    assert "\n" not in message


# --- the gate ---------------------------------------------------------------------------------------


LAST_SUNDAY = datetime(2026, 12, 6, 2, tzinfo=UTC)


def run(
    patched: int,
    failed: int,
    ended: datetime | None,
    in_progress: int = 0,
    window: str = "w",
    started: datetime = LAST_SUNDAY,
) -> WaveRun:
    return WaveRun(window, f"exec-{started:%d}", started, ended, patched, failed, in_progress)


ENDED = NOW - timedelta(hours=50)


def test_a_healthy_soaked_predecessor_opens_the_gate() -> None:
    decision = evaluate_gate(Gate(max_failed=0, soak_hours=48), "prod", "canary", {"w": run(3, 0, ENDED)}, None, NOW)
    assert decision.open
    assert decision.reason.startswith("open: wave canary patched 3 of 3")


@pytest.mark.parametrize(
    ("gate", "runs", "alarms", "why"),
    [
        pytest.param(Gate(), {}, None, "no Install run of wave canary has been read yet", id="unknown"),
        pytest.param(Gate(), {"w": run(1, 0, None, in_progress=2)}, None, "in w is still in progress", id="running"),
        pytest.param(Gate(max_failed=0), {"w": run(2, 1, ENDED)}, None, "1 of 3 instance(s) failed", id="count"),
        pytest.param(
            Gate(max_failed=None, max_failed_share=0.25), {"w": run(2, 1, ENDED)}, None, "(33%; at most 25%", id="share"
        ),
        pytest.param(Gate(min_patched=4), {"w": run(3, 0, ENDED)}, None, "3 instance(s) patched (at least 4", id="few"),
        pytest.param(Gate(soak_hours=72), {"w": run(3, 0, ENDED)}, None, "the soak time is 72 h", id="soak"),
        pytest.param(Gate(alarms=("a",)), {"w": run(3, 0, ENDED)}, None, "alarm(s) a could not be read", id="unread"),
        pytest.param(Gate(alarms=("a",)), {"w": run(3, 0, ENDED)}, {}, "alarm(s) a do not exist", id="no-alarm"),
        pytest.param(Gate(alarms=("a",)), {"w": run(3, 0, ENDED)}, {"a": "ALARM"}, "alarm(s) a in ALARM", id="firing"),
    ],
)
def test_the_gate_holds_and_says_why(
    gate: Gate, runs: dict[str, WaveRun], alarms: dict[str, str] | None, why: str
) -> None:
    decision = evaluate_gate(gate, "prod", "canary", runs, alarms, NOW)
    assert not decision.open
    assert decision.reason.startswith("held until wave canary passes its gate: ")
    assert why in decision.reason


def test_alarms_in_ok_or_insufficient_data_do_not_hold() -> None:
    gate = Gate(alarms=("a", "b"))
    decision = evaluate_gate(
        gate, "prod", "canary", {"w": run(3, 0, ENDED)}, {"a": "OK", "b": "INSUFFICIENT_DATA"}, NOW
    )
    assert decision.open


def test_a_wave_after_a_held_wave_is_held_too() -> None:
    rollout = Rollout(
        (
            Wave("canary", ("c",)),
            Wave("early", ("e",), gate=Gate()),
            Wave("prod", (), takes_rest=True, gate=Gate()),
        )
    )
    # early's own last run (a week before) was healthy, but canary failed since: prod must not go ahead of early.
    week_before = LAST_SUNDAY - timedelta(days=7)
    runs = {"canary": {"w": run(0, 1, ENDED)}, "early": {"w": run(5, 0, week_before, started=week_before)}}
    decisions = evaluate_gates(rollout, runs, None, NOW)
    assert "1 of 1 instance(s) failed" in decisions["early"].reason
    assert decisions["prod"] == GateDecision(
        "prod", "early", False, "held until wave early passes its gate: it is held itself", decisions["prod"].cause
    )
    assert decisions["prod"].cause == f"cascade|{decisions['early'].cause}"
    assert set(decisions) == {"early", "prod"}  # the first wave has no gate


def test_a_wave_waits_for_a_predecessor_run_newer_than_its_own_latest_install() -> None:
    rollout = Rollout((Wave("canary", ("c",)), Wave("prod", (), takes_rest=True, gate=Gate(soak_hours=0))))
    canary = {"w": run(2, 0, ENDED)}
    assert evaluate_gates(rollout, {"canary": canary}, None, NOW)["prod"].open
    installed_since = {"w2": run(4, 0, NOW, window="w2", started=LAST_SUNDAY + timedelta(days=1))}
    decision = evaluate_gates(rollout, {"canary": canary, "prod": installed_since}, None, NOW)["prod"]
    assert not decision.open
    assert "no Install run of wave canary since wave prod last installed (2026-12-07T02:00:00Z)" in decision.reason


def test_a_held_wave_is_told_once_per_cause() -> None:
    held: dict[str, Any] = {
        "wave": "prod",
        "after": "canary",
        "open": False,
        "reason": "held until ...",
        "cause": "failed|exec-06",
    }
    lines: list[dict[str, Any]] = [
        {"instance_id": "i-1", "name": "a", "owner": "team-a", "patch_group": "web", "gate": held},
        {"instance_id": "i-2", "name": None, "owner": None, "patch_group": "web", "gate": held},
        {"instance_id": "i-3", "owner": "team-a", "patch_group": "db", "gate": {**held, "open": True}},
    ]
    (first, second) = gate_holds(lines, "unowned", {})
    assert (first.owner, first.patch_group, second.owner) == ("team-a", "web", "unowned")
    assert "rollout wave prod, which is held until ..." in first.body() and "- i-1 (a)" in first.body()
    assert told_causes(lines) == {"prod": "failed|exec-06"}
    assert gate_holds(lines, "unowned", told_causes(lines)) == []
    assert len(gate_holds(lines, "unowned", {"prod": "soak|exec-06"})) == 2  # a new cause is told again


@given(
    patched=st.integers(0, 50),
    failed=st.integers(0, 50),
    max_failed=st.integers(0, 50),
    hours=st.integers(0, 200),
    soak=st.integers(0, 200),
)
def test_the_gate_opens_exactly_when_every_condition_holds(
    patched: int, failed: int, max_failed: int, hours: int, soak: int
) -> None:
    gate = Gate(max_failed=max_failed, min_patched=1, soak_hours=soak)
    decision = evaluate_gate(gate, "b", "a", {"w": run(patched, failed, NOW - timedelta(hours=hours))}, None, NOW)
    assert decision.open == (failed <= max_failed and patched >= 1 and hours >= soak)


@given(in_progress=st.integers(1, 20), patched=st.integers(0, 20))
def test_a_run_in_progress_never_opens_the_gate(in_progress: int, patched: int) -> None:
    gate = Gate(max_failed=None, min_patched=0, soak_hours=0)
    decision = evaluate_gate(gate, "b", "a", {"w": run(patched, 0, None, in_progress)}, {}, NOW)
    assert not decision.open


# --- the evidence ------------------------------------------------------------------------------------


def window_run(
    status: str,
    instances: dict[str, tuple[str, str]],
    ended: datetime | None,
    operations: tuple[str, ...] = ("Install",),
) -> WindowRun:
    return WindowRun(
        window_name="tagpatch-sun",
        window_execution_id="exec-9",
        status=status,
        status_details="",
        started=datetime(2026, 12, 6, 2, tzinfo=UTC),
        operations=frozenset(operations),
        instances={i: (op, InstanceRun(i, s, "")) for i, (op, s) in instances.items()},
        ended=ended,
    )


def line(instance_id: str, group: str, **extra: Any) -> dict[str, Any]:
    return {"instance_id": instance_id, "patch_group": group, "class": "ready", "tag_class": "ready", **extra}


ROLLOUT = Rollout((Wave("canary", ("c",)), Wave("prod", (), takes_rest=True, gate=Gate())))
LINES = [
    line("i-1", "c"),
    line("i-2", "c"),
    line("i-3", "c"),
    line("i-4", "p", held=True),
    line("i-5", "c", **{"class": "excepted"}),
]


def window_of(_: Any) -> str:
    return "tagpatch-sun"


def test_an_ended_install_run_is_recorded_per_wave_and_window() -> None:
    ended = datetime(2026, 12, 6, 2, 30, tzinfo=UTC)
    runs = [
        window_run(
            "SUCCESS",
            {
                "i-1": ("Install", "Success"),
                "i-2": ("Install", "Failed"),
                "i-4": ("Scan", "Success"),
                "i-5": ("Install", "Failed"),
            },
            ended,
        )
    ]
    recorded = record_wave_runs(ROLLOUT, LINES, window_of, runs, {})
    # i-3 was not reached by an ended run: missed, so failed; the held (scanned) i-4 and excepted i-5 do not count.
    assert recorded == {"canary": {"tagpatch-sun": WaveRun("tagpatch-sun", "exec-9", runs[0].started, ended, 1, 2, 0)}}
    assert wave_runs_from_json(wave_runs_to_json(recorded), "x") == recorded


def test_a_run_still_going_is_recorded_without_an_end() -> None:
    runs = [window_run("IN_PROGRESS", {"i-1": ("Install", "Success")}, None)]
    (found,) = record_wave_runs(ROLLOUT, LINES, window_of, runs, {})["canary"].values()
    assert (found.ended, found.patched, found.in_progress) == (None, 0, 3)


def test_no_install_run_keeps_what_was_recorded_before() -> None:
    before = {"canary": {"tagpatch-sun": run(3, 0, ENDED, window="tagpatch-sun")}}
    scan_only = [window_run("SUCCESS", {"i-1": ("Scan", "Success")}, NOW, operations=("Scan",))]
    assert record_wave_runs(ROLLOUT, LINES, window_of, scan_only, before) == before
    # A window that no longer hosts any of the wave's instances is dropped.
    assert record_wave_runs(ROLLOUT, LINES, lambda _: None, [], before) == {}
