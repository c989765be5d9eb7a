"""Rollout gates: whether each gated wave may install, from its predecessor's latest Install run.

Pure code: the evidence (`WaveRun`, recorded by PatchMonitoring from the window runs it already
reads, per wave and window) and the alarm states come in, with the time; a `GateDecision` per gated
wave comes out. Fail safe: when the predecessor's outcome is unknown (no run recorded, a run still
going, an alarm state not read), the wave stays held.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from tagpatch.classes import EXCEPTED
from tagpatch.cycle import iso_z, parse_time
from tagpatch.errors import ArtifactError
from tagpatch.monitoring import SKIPPED, WindowRun, outcome_of
from tagpatch.rollout import Gate, Rollout

# --- the evidence: each wave's latest Install run, as PatchMonitoring read it -----------------------


@dataclass(frozen=True)
class WaveRun:
    """What the latest Install run of one of a wave's windows did to the wave's instances."""

    window: str
    window_execution_id: str
    started: datetime
    ended: datetime | None  # None while the run is still going
    patched: int
    failed: int  # failed or missed: the run was to patch them and did not
    in_progress: int

    def to_json(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "window_execution_id": self.window_execution_id,
            "started": iso_z(self.started),
            "ended": iso_z(self.ended) if self.ended else None,
            "patched": self.patched,
            "failed": self.failed,
            "in_progress": self.in_progress,
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any], where: str) -> WaveRun:
        try:
            ended = body.get("ended")
            return cls(
                window=str(body["window"]),
                window_execution_id=str(body["window_execution_id"]),
                started=parse_time(str(body["started"]), where),
                ended=parse_time(str(ended), where) if ended else None,
                patched=int(body["patched"]),
                failed=int(body["failed"]),
                in_progress=int(body["in_progress"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ArtifactError(f"{where}: not a wave run record ({error})") from error


# wave name -> window name -> that window's latest Install run for the wave
WaveRuns = Mapping[str, Mapping[str, WaveRun]]


def wave_runs_to_json(runs: WaveRuns) -> dict[str, Any]:
    return {
        wave: {window: run.to_json() for window, run in sorted(found.items())} for wave, found in sorted(runs.items())
    }


def wave_runs_from_json(body: object, where: str) -> dict[str, dict[str, WaveRun]]:
    if not isinstance(body, Mapping):
        raise ArtifactError(f"{where}: must be a mapping of wave name to window runs")
    found: dict[str, dict[str, WaveRun]] = {}
    for wave, windows in body.items():
        if not isinstance(windows, Mapping):
            raise ArtifactError(f"{where}: {wave}: must be a mapping of window name to run")
        found[str(wave)] = {
            str(window): WaveRun.from_json(run, f"{where} {wave}.{window}") for window, run in windows.items()
        }
    return found


_UNFINISHED_COMMAND: Final = frozenset({"in_progress"})


def record_wave_runs(  # noqa: PLR0912 - three passes (latest runs, members, counts) the docstring walks through in order
    rollout: Rollout,
    lines: Iterable[Mapping[str, Any]],
    window_of_line: Callable[[Mapping[str, Any]], str | None],
    runs: Sequence[WindowRun],
    before: WaveRuns,
) -> dict[str, dict[str, WaveRun]]:
    """Each wave's latest Install run per window: the runs read this cycle over those recorded before.

    An instance counts where its window's latest started Install run reached it with Install (or was to):
    patched, failed (failed or missed) or still in progress. A held instance (scanned) and an excepted
    one are not counted: the gate judges what the wave's Install did. A window of the wave with no
    Install run this cycle keeps the run recorded before; a window that no longer hosts any of the
    wave's instances is dropped.
    """
    latest: dict[str, WindowRun] = {}
    for window_run in runs:  # oldest first
        if window_run.status != SKIPPED and "Install" in window_run.operations:
            latest[window_run.window_name] = window_run
    members: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for line in lines:
        wave = rollout.wave_of(line.get("patch_group"))
        window = window_of_line(line)
        if wave is None or window is None:
            continue
        members.setdefault((wave.name, window), []).append(line)
    recorded: dict[str, dict[str, WaveRun]] = {}
    for (wave_name, window), wave_lines in sorted(members.items()):
        run = latest.get(window)
        kept = before.get(wave_name, {}).get(window)
        if run is not None:
            counts = {"patched": 0, "failed": 0, "in_progress": 0}
            for line in wave_lines:
                if line.get("class") == EXCEPTED:
                    continue
                outcome = outcome_of(window, [run], str(line["instance_id"]), line.get("tag_class", line.get("class")))
                if outcome.outcome == "patched":
                    counts["patched"] += 1
                elif outcome.outcome in ("failed", "missed"):
                    counts["failed"] += 1
                elif outcome.outcome in _UNFINISHED_COMMAND:
                    counts["in_progress"] += 1
            if sum(counts.values()):
                kept = WaveRun(
                    window=window,
                    window_execution_id=run.window_execution_id,
                    started=run.started,
                    ended=None if counts["in_progress"] else run.ended,
                    **counts,
                )
        if kept is not None:
            recorded.setdefault(wave_name, {})[window] = kept
    return recorded


# --- the gate -----------------------------------------------------------------------------------


AlarmStates = Mapping[str, str]  # alarm name -> StateValue (OK, ALARM, INSUFFICIENT_DATA)


@dataclass(frozen=True)
class GateDecision:
    wave: str
    after: str  # the predecessor wave
    open: bool
    reason: str  # why it holds, or what it saw when it opened
    # What holds it, and on which runs: the alert for a held wave goes once per cause.
    cause: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"wave": self.wave, "after": self.after, "open": self.open, "reason": self.reason, "cause": self.cause}


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f} h"


def evaluate_gate(  # noqa: PLR0911 - one return per gate condition, each its own hold reason
    gate: Gate,
    wave: str,
    after: str,
    runs: Mapping[str, WaveRun],
    alarms: AlarmStates | None,
    now: datetime,
    own_latest: datetime | None = None,
) -> GateDecision:
    """Whether `wave` may install, from `after`'s latest Install run per window and the alarm states.

    `alarms` None: the states could not be read; an alarm missing from it does not exist. Either holds
    the wave when the gate names alarms. `own_latest`: when the wave's own latest Install run started;
    a predecessor run no later than that has already been used, so the wave waits for a new one (each
    install of a wave follows a fresh pass of the one before).
    """
    seen = ",".join(sorted(run.window_execution_id for run in runs.values()))

    def held(kind: str, reason: str) -> GateDecision:
        return GateDecision(wave, after, False, f"held until wave {after} passes its gate: {reason}", f"{kind}|{seen}")

    if not runs:
        return held("unknown", f"no Install run of wave {after} has been read yet")
    latest = max(run.started for run in runs.values())
    if own_latest is not None and latest <= own_latest:
        return held(
            "stale",
            f"no Install run of wave {after} since wave {wave} last installed ({iso_z(own_latest)})",
        )
    going = sorted(run.window for run in runs.values() if run.ended is None)
    if going:
        return held("in_progress", f"the Install run of wave {after} in {', '.join(going)} is still in progress")
    patched = sum(run.patched for run in runs.values())
    failed = sum(run.failed for run in runs.values())
    ended = max(run.ended for run in runs.values() if run.ended is not None)
    tried = patched + failed
    if gate.max_failed is not None and failed > gate.max_failed:
        return held(
            "failed", f"{failed} of {tried} instance(s) failed or were missed (at most {gate.max_failed} allowed)"
        )
    if gate.max_failed_share is not None and tried and failed / tried > gate.max_failed_share:
        return held(
            "failed",
            f"{failed} of {tried} instance(s) failed or were missed ({failed / tried:.0%}; "
            f"at most {gate.max_failed_share:.0%} allowed)",
        )
    if patched < gate.min_patched:
        return held("few", f"{patched} instance(s) patched (at least {gate.min_patched} needed)")
    soaked = now - ended
    if soaked < timedelta(hours=gate.soak_hours):
        opens = ended + timedelta(hours=gate.soak_hours)
        return held(
            "soak",
            f"its run ended {iso_z(ended)}, {_hours(soaked)} ago; the soak time is {gate.soak_hours} h "
            f"(opens after {iso_z(opens)})",
        )
    if gate.alarms:
        if alarms is None:
            return held("alarms", f"the states of alarm(s) {', '.join(gate.alarms)} could not be read")
        missing = [name for name in gate.alarms if name not in alarms]
        if missing:
            return held("alarms", f"alarm(s) {', '.join(missing)} do not exist")
        firing = [name for name in gate.alarms if alarms[name] == "ALARM"]
        if firing:
            return held("alarms", f"alarm(s) {', '.join(firing)} in ALARM")
    return GateDecision(
        wave,
        after,
        True,
        f"open: wave {after} patched {patched} of {tried} (ended {iso_z(ended)}, soaked {_hours(soaked)})",
        f"open|{seen}",
    )


def evaluate_gates(
    rollout: Rollout, runs: WaveRuns, alarms: AlarmStates | None, now: datetime
) -> dict[str, GateDecision]:
    """A decision for every gated wave, in order: a wave after a held wave is held too."""
    decisions: dict[str, GateDecision] = {}
    for wave in rollout.waves:
        before = rollout.predecessor(wave)
        if before is None or wave.gate is None:
            continue
        previous = decisions.get(before.name)
        if previous is not None and not previous.open:
            decisions[wave.name] = GateDecision(
                wave.name,
                before.name,
                False,
                f"held until wave {before.name} passes its gate: it is held itself",
                f"cascade|{previous.cause}",
            )
            continue
        own = runs.get(wave.name, {})
        own_latest = max((run.started for run in own.values()), default=None)
        decisions[wave.name] = evaluate_gate(
            wave.gate, wave.name, before.name, runs.get(before.name, {}), alarms, now, own_latest
        )
    return decisions


# --- what the gates tell owners -------------------------------------------------------------------


@dataclass(frozen=True)
class GateHold:
    """One owner's instances in one patch group that a held wave keeps from installing."""

    owner: str
    patch_group: str
    gate: Mapping[str, Any]  # GateDecision.to_json()
    instances: tuple[Mapping[str, Any], ...]

    def subject(self) -> str:
        return f"tagpatch: patch group {self.patch_group} held by the rollout gate of wave {self.gate['wave']}"[:100]

    def body(self, limit: int = 50) -> str:
        lines = [
            f"Patch group {self.patch_group} (owner {self.owner}) is in rollout wave {self.gate['wave']}, which is "
            f"{self.gate['reason']}. Its window scans these instances and installs nothing until the gate opens; "
            "the first cycle after that restores the Install task:",
            "",
            *(f"- {i['instance_id']} ({i.get('name') or 'no Name tag'})" for i in self.instances[:limit]),
        ]
        if len(self.instances) > limit:
            lines.append(f"... and {len(self.instances) - limit} more")
        return "\n".join(lines)


def gate_holds(lines: Iterable[Mapping[str, Any]], default_owner: str, alerted: Mapping[str, str]) -> list[GateHold]:
    """A message per owner and patch group of each held wave whose cause has not been told yet."""
    grouped: dict[tuple[str, str], tuple[Mapping[str, Any], list[Mapping[str, Any]]]] = {}
    for line in lines:
        gate = line.get("gate")
        if not isinstance(gate, Mapping) or gate.get("open") or alerted.get(str(gate["wave"])) == gate.get("cause"):
            continue
        key = (str(line.get("owner") or default_owner), str(line.get("patch_group")))
        grouped.setdefault(key, (gate, []))[1].append({"instance_id": line["instance_id"], "name": line.get("name")})
    return [
        GateHold(owner, group, gate, tuple(instances)) for (owner, group), (gate, instances) in sorted(grouped.items())
    ]


def told_causes(lines: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """wave -> the cause that holds it now (the alert ledger after this cycle's messages)."""
    return {
        str(gate["wave"]): str(gate.get("cause"))
        for line in lines
        if isinstance(gate := line.get("gate"), Mapping) and not gate.get("open")
    }
