"""The cycle's input, validated at the edge, and the context every later state receives.

A person re-running a cycle from the Step Functions console types this input by hand, so every
mistake gets a message that says which key is wrong and what would be right.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, NotRequired, TypedDict, cast

from tagpatch.errors import CycleAlreadyRunning, InvalidCycleInput
from tagpatch.tags import is_valid_patch_group_name
from tagpatch.targets import Target, TargetPayload

Mode = Literal["apply", "plan"]
MODES: Final[tuple[Mode, ...]] = ("apply", "plan")
# The key Step Functions' guide has a parent execution put in a nested execution's input, naming itself
# ("AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id"); the org cycle sets it.
STARTED_BY_KEY: Final = "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"
INPUT_KEYS: Final = frozenset({"mode", "patch_groups", "now", "allow_mass_deletion", "target", STARTED_BY_KEY})
# The times a cycle may run at: anything outside is a mistake in the input, not a schedule.
EARLIEST_NOW: Final = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_NOW: Final = datetime(2100, 1, 1, tzinfo=UTC)
RUN_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


class CyclePayload(TypedDict):
    """The `cycle` object every task receives: small, and enough to find the run's artifacts."""

    run_id: str
    execution_id: str
    now: str
    mode: Mode
    patch_groups: list[str] | None
    artifact_prefix: str
    allow_mass_deletion: bool
    target: TargetPayload | None  # the account and Region the cycle acts in; None (older payloads): home
    started_by: NotRequired[str]  # the org execution that started this cycle; absent when started alone


@dataclass(frozen=True)
class Cycle:
    run_id: str
    execution_id: str
    now: datetime
    mode: Mode
    patch_groups: frozenset[str] | None
    artifact_prefix: str
    allow_mass_deletion: bool = False
    target: Target | None = None  # None: the function's own account and Region
    started_by: str | None = None  # the execution (the org cycle) that started this one, if any

    def artifact_key(self, name: str) -> str:
        return f"{self.artifact_prefix}{name}"

    def in_scope(self, patch_group: str | None) -> bool:
        return self.patch_groups is None or (patch_group is not None and patch_group in self.patch_groups)

    def to_payload(self) -> CyclePayload:
        payload: CyclePayload = {
            "run_id": self.run_id,
            "execution_id": self.execution_id,
            "now": iso_z(self.now),
            "mode": self.mode,
            "patch_groups": sorted(self.patch_groups) if self.patch_groups is not None else None,
            "artifact_prefix": self.artifact_prefix,
            "allow_mass_deletion": self.allow_mass_deletion,
            "target": self.target.to_payload() if self.target is not None else None,
        }
        if self.started_by is not None:
            payload["started_by"] = self.started_by
        return payload

    @property
    def alerts_alone(self) -> bool:
        """Whether this cycle's failure is its own alert to send: a cycle started by the org cycle leaves
        it to the org cycle's one alert, which names every failed target (docs/decisions.md)."""
        return self.started_by is None

    @property
    def failure_key(self) -> str:
        """Where a cycle started by the org cycle records what its alert would have said."""
        return self.artifact_key("failure.json")

    @classmethod
    def from_payload(cls, payload: object) -> Cycle:
        """Read the `cycle` object back in a later state (it was validated when it was made)."""
        if not isinstance(payload, Mapping):
            raise InvalidCycleInput("the task payload has no 'cycle' object; the state machine must pass $.cycle")
        data = cast(Mapping[str, Any], payload)
        try:
            groups = data["patch_groups"]
            target = data.get("target")
            return cls(
                run_id=str(data["run_id"]),
                execution_id=str(data["execution_id"]),
                now=parse_time(str(data["now"]), "cycle.now"),
                mode=_mode(data["mode"]),
                patch_groups=frozenset(groups) if groups is not None else None,
                artifact_prefix=str(data["artifact_prefix"]),
                allow_mass_deletion=data.get("allow_mass_deletion") is True,
                target=Target.from_payload(target, "cycle.target") if target is not None else None,
                started_by=str(data["started_by"]) if data.get("started_by") is not None else None,
            )
        except KeyError as error:
            raise InvalidCycleInput(f"the cycle object is missing {error.args[0]!r}") from error


def iso_z(moment: datetime) -> str:
    """A UTC time in ISO 8601 with `Z`, as the artifacts and the execution input spell it."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: str, key: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise InvalidCycleInput(f"{key} {value!r} is not an ISO 8601 time; use e.g. 2026-11-29T02:00:00Z") from error
    if parsed.tzinfo is None:
        raise InvalidCycleInput(f"{key} {value!r} has no UTC offset; add one, e.g. {value}Z")
    try:
        return parsed.astimezone(UTC)
    except OverflowError as error:  # e.g. 9999-12-31T23:00:00-05:00 is past datetime.max in UTC
        raise InvalidCycleInput(f"{key} {value!r} is out of range once converted to UTC") from error


def check_sane_time(moment: datetime, what: str) -> None:
    """Refuse a time no real cycle runs at (a typo, an epoch 0): windows, expiries and artifact keys
    all derive from it, so it must be refused before anything is written, not found out after."""
    if not EARLIEST_NOW <= moment < LATEST_NOW:
        raise InvalidCycleInput(
            f"{what} is outside {EARLIEST_NOW:%Y-%m-%d} to {LATEST_NOW:%Y-%m-%d}; give the time the cycle runs at"
        )


def _mode(value: object) -> Mode:
    if value not in MODES:
        raise InvalidCycleInput(f'mode {value!r} is not valid; use "apply" (the default) or "plan"')
    return value


def _patch_groups(value: object) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise InvalidCycleInput(
            f'patch_groups must be a non-empty list of patch group names, e.g. ["web-prod"] (got {value!r})'
        )
    groups = set()
    for index, group in enumerate(value):
        if not isinstance(group, str) or not is_valid_patch_group_name(group):
            raise InvalidCycleInput(
                f"patch_groups[{index}] {group!r} is not a valid patch group name "
                "(1-256 letters, digits, spaces and _.:/=+-@)"
            )
        groups.add(group)
    return frozenset(groups)


def start_cycle(
    execution_input: object, *, execution_id: str, execution_name: str, start_time: str, home: Target | None = None
) -> Cycle:
    """Validate a manual or scheduled execution input; evaluation time defaults to the start time, the
    target to `home` (the function's own account and Region)."""
    if execution_input is None:
        execution_input = {}
    if not isinstance(execution_input, Mapping):
        raise InvalidCycleInput(
            f'the execution input must be a JSON object such as {{"mode": "plan"}} (got {execution_input!r})'
        )
    # Sorted by repr: a Mapping from a non-JSON caller may mix key types, which sorted() cannot order.
    unknown = sorted(map(repr, set(execution_input) - INPUT_KEYS))
    if unknown:
        raise InvalidCycleInput(
            # The started-by key is Step Functions' to set, not a person's to type, so it is not offered.
            f"unknown input key(s) {', '.join(unknown)}; allowed keys are "
            f"{', '.join(sorted(INPUT_KEYS - {STARTED_BY_KEY}))}"
        )
    if not RUN_ID.match(execution_name):
        raise InvalidCycleInput(f"execution name {execution_name!r} must be 1-80 of A-Z a-z 0-9 _ -")
    now_value = execution_input.get("now", start_time)
    if not isinstance(now_value, str):
        raise InvalidCycleInput(f"now must be an ISO 8601 string such as 2026-11-29T02:00:00Z (got {now_value!r})")
    now = parse_time(now_value, "now")
    check_sane_time(now, f"now {now_value!r}")
    allow_mass_deletion = execution_input.get("allow_mass_deletion", False)
    if not isinstance(allow_mass_deletion, bool):
        raise InvalidCycleInput(f"allow_mass_deletion must be true or false (got {allow_mass_deletion!r})")
    started_by = execution_input.get(STARTED_BY_KEY)
    if started_by is not None and not (isinstance(started_by, str) and started_by):
        raise InvalidCycleInput(f"{STARTED_BY_KEY} must be the starting execution's ARN (got {started_by!r})")
    return Cycle(
        run_id=execution_name,
        execution_id=execution_id,
        now=now,
        mode=_mode(execution_input.get("mode", "apply")),
        patch_groups=_patch_groups(execution_input.get("patch_groups")),
        allow_mass_deletion=allow_mass_deletion,
        target=Target.from_payload(execution_input["target"]) if "target" in execution_input else home,
        # Not %Y: glibc does not zero-pad years before 1000, and the prefix must sort as YYYY/MM/DD.
        artifact_prefix=f"runs/{now.year:04d}/{now:%m/%d}/{execution_name}/",
        started_by=started_by,
    )


def execution_order(execution: Mapping[str, Any]) -> tuple[datetime, str]:
    """Older first; two executions started in the same instant are ordered by ARN, the same way by both."""
    started = execution["startDate"]
    if isinstance(started, str):
        started = parse_time(started, "startDate")
    return started.astimezone(UTC), str(execution["executionArn"])


def ensure_first_running(
    running: Iterable[Mapping[str, Any]],
    *,
    execution_arn: str,
    start_time: str,
    of_same_target: Callable[[Mapping[str, Any]], bool] = lambda execution: True,
) -> None:
    """Let only the oldest running execution of a target go on; any other fails before it reads or
    writes anything.

    `running` is ListExecutions(statusFilter=RUNNING) for this state machine; `of_same_target` tells
    whether an older one acts in this cycle's target (asked only of the older ones, as it may cost a
    call each). Both of two racing executions see each other and apply the same order, so exactly one
    goes on.
    """
    executions = list(running)
    # Both sides must compare the same timestamps, so this execution's own comes from the listing too;
    # the context's start time only stands in while the listing does not show it yet.
    listed = [execution for execution in executions if execution["executionArn"] == execution_arn]
    mine = execution_order(listed[0]) if listed else (parse_time(start_time, "start_time"), execution_arn)
    older = [
        execution
        for execution in executions
        if execution["executionArn"] != execution_arn and execution_order(execution) < mine
    ]
    older = [execution for execution in older if of_same_target(execution)]
    if older:
        first = min(older, key=execution_order)
        raise CycleAlreadyRunning(
            f"execution {first.get('name', first['executionArn'])} of this state machine, started "
            f"{execution_order(first)[0].isoformat()}, is still running; this cycle stops so that two cycles never "
            "change the same maintenance windows at once. Start it again once that one has ended"
        )
