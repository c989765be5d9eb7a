"""Rollout waves: patch groups installed in order, each wave gated on the health of the one before.

The policy's `rollout:` section names waves (for example `canary`, then `prod` taking the rest), each
listing patch groups. Every wave after the first has a gate on its predecessor's latest Install run:
at most so many (or such a share of) failed instances, at least so many patched, a soak time since
that run ended, and optionally CloudWatch alarms that must not be in ALARM. Until its gate opens a
wave is held exactly as a patch exception with `hold: true` holds an instance: its window scans it
and installs nothing (`held` on the instance's report line; desired.py does the rest).

This module is the policy's model of the waves; tagpatch.gates decides, from what PatchMonitoring
read, whether each gate is open.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from tagpatch.errors import InvalidPatchPolicy, shown_key

WAVE_NAME: Final = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
REST: Final = "rest"  # `patch_groups: rest`: the last wave takes every patch group no other wave names
MAX_WAVES: Final = 10
# DescribeAlarms takes at most 100 AlarmNames, each 1 to 255 characters (CloudWatch API reference).
MAX_ALARMS: Final = 100
MAX_ALARM_NAME: Final = 255
MAX_SOAK_HOURS: Final = 720

_WAVE_KEYS: Final = frozenset({"name", "patch_groups", "gate"})
_GATE_KEYS: Final = frozenset({"max_failed", "max_failed_share", "min_patched", "soak_hours", "alarms"})


@dataclass(frozen=True)
class Gate:
    """What a wave's predecessor must show before the wave installs."""

    max_failed: int | None = 0  # failed or missed instances allowed; None: no count limit
    max_failed_share: float | None = None  # of the instances the run was to patch; None: no share limit
    min_patched: int = 1
    soak_hours: int = 24  # since the predecessor's latest Install run ended
    alarms: tuple[str, ...] = ()  # CloudWatch alarm names that must not be in ALARM


@dataclass(frozen=True)
class Wave:
    name: str
    patch_groups: tuple[str, ...]  # sorted; empty for the wave that takes the rest
    takes_rest: bool = False
    gate: Gate | None = None  # None only for the first wave


@dataclass(frozen=True)
class Rollout:
    waves: tuple[Wave, ...] = ()

    def wave_of(self, patch_group: str | None) -> Wave | None:
        """The wave a patch group belongs to; None when no wave names it and none takes the rest."""
        if not patch_group:
            return None
        for wave in self.waves:
            if patch_group in wave.patch_groups:
                return wave
        return next((wave for wave in self.waves if wave.takes_rest), None)

    def predecessor(self, wave: Wave) -> Wave | None:
        index = self.waves.index(wave)
        return self.waves[index - 1] if index else None

    def alarm_names(self) -> tuple[str, ...]:
        return tuple(sorted({name for wave in self.waves if wave.gate for name in wave.gate.alarms}))


# --- parsing (called by tagpatch.policy with its own error factory) -------------------------------

Fail = Callable[[str, str], InvalidPatchPolicy]


def _whole(value: object, path: str, low: int, high: int, fail: Fail) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise fail(path, f"must be a whole number from {low} to {high} (got {value!r})")
    return value


def _gate(raw: object, path: str, fail: Fail) -> Gate:
    if not isinstance(raw, dict):
        raise fail(path, f"must be a mapping (got {type(raw).__name__})")
    for key in raw:
        if key not in _GATE_KEYS:
            raise fail(f"{path}.{shown_key(key)}", f"unknown key; expected one of {', '.join(sorted(_GATE_KEYS))}")
    share = raw.get("max_failed_share")
    if share is not None and (isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1):
        raise fail(f"{path}.max_failed_share", f"must be a number from 0 to 1 (got {share!r})")
    # Neither limit given: no failure at all is allowed (the strictest gate, so a typo never loosens it).
    default_count = 0 if share is None else None
    count = raw.get("max_failed", default_count)
    if count is not None:
        count = _whole(count, f"{path}.max_failed", 0, 100_000, fail)
    alarms = raw.get("alarms", [])
    if not isinstance(alarms, list):
        raise fail(f"{path}.alarms", f"must be a list of CloudWatch alarm names (got {alarms!r})")
    names: list[str] = []
    for index, name in enumerate(alarms):
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_ALARM_NAME or name != name.strip():
            raise fail(f"{path}.alarms[{index}]", f"must be an alarm name of 1 to {MAX_ALARM_NAME} characters")
        names.append(name)
    return Gate(
        max_failed=count,
        max_failed_share=None if share is None else float(share),
        min_patched=_whole(raw.get("min_patched", 1), f"{path}.min_patched", 0, 100_000, fail),
        soak_hours=_whole(raw.get("soak_hours", 24), f"{path}.soak_hours", 0, MAX_SOAK_HOURS, fail),
        alarms=tuple(sorted(set(names))),
    )


def parse_rollout(raw: object, fail: Fail) -> Rollout:  # noqa: C901, PLR0912 - a validator of many independent keys, each its own error
    """The policy's `rollout:` section; `fail(path, message)` makes the error naming the key."""
    if raw is None:
        return Rollout()
    if not isinstance(raw, dict):
        raise fail("rollout", f"must be a mapping (got {type(raw).__name__})")
    for key in raw:
        if key != "waves":
            raise fail(f"rollout.{shown_key(key)}", "unknown key; expected waves")
    waves_raw = raw.get("waves")
    if not isinstance(waves_raw, list) or not 1 <= len(waves_raw) <= MAX_WAVES:
        raise fail("rollout.waves", f"must be a list of 1 to {MAX_WAVES} waves")
    waves: list[Wave] = []
    owner: dict[str, str] = {}
    for index, body in enumerate(waves_raw):
        path = f"rollout.waves[{index}]"
        if not isinstance(body, dict):
            raise fail(path, f"must be a mapping (got {type(body).__name__})")
        for key in body:
            if key not in _WAVE_KEYS:
                raise fail(f"{path}.{shown_key(key)}", f"unknown key; expected one of {', '.join(sorted(_WAVE_KEYS))}")
        name = body.get("name")
        if not isinstance(name, str) or not WAVE_NAME.match(name):
            raise fail(f"{path}.name", f"must be 1-64 of A-Z a-z 0-9 _ . - (got {name!r})")
        if any(wave.name == name for wave in waves):
            raise fail(f"{path}.name", f"wave {name!r} is named twice")
        groups = body.get("patch_groups")
        takes_rest = groups == REST
        if takes_rest:
            if index != len(waves_raw) - 1:
                raise fail(f"{path}.patch_groups", f"only the last wave may take {REST!r}")
            groups = []
        if not isinstance(groups, list) or (not groups and not takes_rest):
            raise fail(f"{path}.patch_groups", f"must be a non-empty list of patch group names, or {REST!r}")
        for position, group in enumerate(groups):
            if not isinstance(group, str) or not group.strip() or group != group.strip():
                raise fail(f"{path}.patch_groups[{position}]", f"must be a patch group name (got {group!r})")
            if group in owner:
                raise fail(f"{path}.patch_groups[{position}]", f"{group!r} is already in wave {owner[group]!r}")
            owner[group] = name
        if index == 0 and "gate" in body:
            raise fail(f"{path}.gate", "the first wave has no wave before it to gate on")
        gate = _gate(body.get("gate", {}), f"{path}.gate", fail) if index else None
        waves.append(Wave(name, tuple(sorted(groups)), takes_rest, gate))
    rollout = Rollout(tuple(waves))
    if len(rollout.alarm_names()) > MAX_ALARMS:
        raise fail("rollout", f"names {len(rollout.alarm_names())} alarms; at most {MAX_ALARMS} (one DescribeAlarms)")
    return rollout
