"""The rollout's reads and writes: each wave's latest Install runs (kept by PatchMonitoring between
cycles), and the states of the alarms the gates name (read by TagValidation)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.exceptions import ClientError

from tagpatch.aws import client, error_code, target_state_key
from tagpatch.gates import AlarmStates, WaveRuns, wave_runs_from_json, wave_runs_to_json
from tagpatch.inventory import get_bytes_if_exists, put_json
from tagpatch.observability import logger

ROLLOUT_STATE_KEY: Final = "state/rollout-waves.json"


@dataclass(frozen=True)
class RolloutState:
    """What PatchMonitoring keeps for the gates: the waves' runs, and the hold causes already told."""

    runs: WaveRuns = field(default_factory=dict)
    told: dict[str, str] = field(default_factory=dict)  # wave -> the cause of its hold last alerted

    def to_json(self) -> dict[str, Any]:
        return {"waves": wave_runs_to_json(self.runs), "told": dict(sorted(self.told.items()))}


def read_rollout_state(bucket: str) -> RolloutState:
    """The state the last apply-mode cycle kept; empty only when S3 lists none (a denied read raises)."""
    body = get_bytes_if_exists(bucket, target_state_key(ROLLOUT_STATE_KEY))
    if body is None:
        return RolloutState()
    document = json.loads(body)
    told = document.get("told") or {}
    return RolloutState(
        wave_runs_from_json(document.get("waves") or {}, target_state_key(ROLLOUT_STATE_KEY)),
        {str(wave): str(cause) for wave, cause in told.items()},
    )


def write_rollout_state(bucket: str, state: RolloutState) -> None:
    put_json(bucket, target_state_key(ROLLOUT_STATE_KEY), state.to_json())


def read_alarm_states(names: Iterable[str], readable: frozenset[str]) -> AlarmStates | None:
    """name -> state of the named alarms (an alarm that does not exist is absent); None when unreadable.

    `readable`: the alarm names the stack was deployed to read (its RolloutAlarmArns parameter); a name
    outside it is never asked for (the role may not read it), so the gate holds, fail safe.
    """
    wanted = sorted(set(names))
    if not wanted:
        return {}
    outside = [name for name in wanted if name not in readable]
    if outside:
        logger.warning(
            "rollout alarms not deployed",
            extra={"alarms": outside, "fix": "redeploy with these alarms' ARNs in the RolloutAlarmArns parameter"},
        )
        return None
    found: dict[str, str] = {}
    try:
        # At most 100 names (the policy refuses more), so one call; composite and metric alarms both.
        response = client("cloudwatch").describe_alarms(
            AlarmNames=wanted, AlarmTypes=["MetricAlarm", "CompositeAlarm"], MaxRecords=100
        )
    except ClientError as error:
        logger.warning("rollout alarms unreadable", extra={"code": error_code(error), "alarms": wanted})
        return None
    for kind in ("MetricAlarms", "CompositeAlarms"):
        for alarm in response.get(kind, []):
            found[str(alarm["AlarmName"])] = str(alarm["StateValue"])
    return found
