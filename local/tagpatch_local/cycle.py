"""Running one patch cycle on a state machine and what it gives back: the simulated account's or a deployed stack's."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3

from tagpatch_local.account_facts import ARTIFACT_WRITES, is_write
from tagpatch_local.clients import AccountClients
from tagpatch_local.dispatch import FunctionRun
from tagpatch_local.template import TemplateError


@dataclass
class CycleResult:
    execution_name: str
    execution_arn: str
    status: str
    output: dict[str, Any] | None  # the final output; for a failed execution, what its Fail state received
    error: str | None
    cause: str | None
    events: list[dict[str, Any]]
    calls_by_function: dict[str, Counter[str]]
    wall_seconds: float
    function_runs: list[FunctionRun] = field(default_factory=list)  # simulated account only

    @property
    def calls(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for calls in self.calls_by_function.values():
            total.update(calls)
        return total

    @property
    def write_calls(self) -> Counter[str]:
        return Counter({call: count for call, count in self.calls.items() if is_write(call)})

    @property
    def resource_write_calls(self) -> Counter[str]:
        """Writes that change the account's patching setup (not the run's own artifacts and alerts)."""
        return Counter({call: n for call, n in self.write_calls.items() if call not in ARTIFACT_WRITES})

    @property
    def state_transitions(self) -> int:
        return sum(1 for event in self.events if event["type"].endswith("StateEntered"))

    @property
    def max_payload_bytes(self) -> int:
        """The largest state input or output, or task result, in the execution's history."""
        largest = 0
        for event in self.events:
            for key, details in event.items():
                if not key.endswith("EventDetails") or not isinstance(details, dict):
                    continue
                for field_name in ("input", "output"):
                    value = details.get(field_name)
                    if isinstance(value, str):
                        largest = max(largest, len(value.encode()))
        return largest

    @property
    def map_output_bytes(self) -> int:
        """The largest Map state's output (the org cycle's: its items and one result a target, the state
        that grows with the targets); 0 when no Map ran."""
        exited = [event for event in self.events if event["type"] == "MapStateExited"]
        return max((len(event["stateExitedEventDetails"].get("output", "").encode()) for event in exited), default=0)


ProgressCallback = Callable[[dict[str, Any]], None]


@dataclass
class OrgCycleResult:
    """One org cycle: its own execution and each target's patch cycle (a child execution), in target order."""

    org: CycleResult
    # Each target as SummarizeTargets' summary lists it (target, status, execution_arn, error, reason,
    # compliance); the Map's own results (target, name, status) when no summary was written.
    targets: list[dict[str, Any]]
    children: dict[str, CycleResult]  # "account/region" -> its patch cycle, for every child that started

    @property
    def status(self) -> str:
        return self.org.status

    def child(self, account_id: str, region: str) -> CycleResult:
        return self.children[f"{account_id}/{region}"]


def map_results(org: CycleResult) -> list[dict[str, Any]]:
    """The Map's per-target results, from the org execution's output or the state its Fail state got."""
    state = org.output or {}
    results = state.get("results")
    return [item for item in results if isinstance(item, dict)] if isinstance(results, list) else []


def org_summary(org: CycleResult, s3: Any, bucket: str) -> list[dict[str, Any]] | None:
    """The targets of the summary SummarizeTargets wrote (its key is in the org execution's state)."""
    key = ((org.output or {}).get("summary") or {}).get("summary_key")
    if not isinstance(key, str) or not key:
        return None
    document = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    targets = document.get("targets")
    return [item for item in targets if isinstance(item, dict)] if isinstance(targets, list) else None


class DeployedStack(AccountClients):
    """A tagpatch stack deployed with `sam deploy`, reached with the caller's AWS credentials.

    Runs the same state machine and reports the same way as the simulated account, except that the
    functions' AWS calls are not recorded (they run in Lambda, not in this process).
    """

    def __init__(
        self, *, state_machine_arn: str, artifact_bucket: str, region: str | None = None, org_cycle_arn: str = ""
    ) -> None:
        self.state_machine_arn = state_machine_arn
        self.artifact_bucket = artifact_bucket
        self.region = region
        self.org_cycle_arn = org_cycle_arn  # empty for a stack deployed before the org cycle

    @classmethod
    def from_stack(cls, stack_name: str, region: str | None = None) -> DeployedStack:
        cloudformation = boto3.client("cloudformation", region_name=region)
        (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
        outputs = {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}
        missing = {"PatchCycleStateMachineArn", "ArtifactBucketName"} - set(outputs)
        if missing:
            raise TemplateError(f"stack {stack_name} has no output(s) {sorted(missing)}; is it a tagpatch stack?")
        return cls(
            state_machine_arn=outputs["PatchCycleStateMachineArn"],
            artifact_bucket=outputs["ArtifactBucketName"],
            region=region,
            org_cycle_arn=outputs.get("OrgCycleStateMachineArn", ""),
        )

    def run_cycle(
        self,
        execution_input: Any = None,
        *,
        name: str | None = None,
        on_event: ProgressCallback | None = None,
        timeout_seconds: float = 3600,
    ) -> CycleResult:
        return execute_cycle(
            self.client("stepfunctions"), self.state_machine_arn, execution_input, name, on_event, timeout_seconds, 2.0
        )

    def run_org_cycle(
        self,
        execution_input: Any = None,
        *,
        name: str | None = None,
        on_event: ProgressCallback | None = None,
        timeout_seconds: float = 3600,
    ) -> OrgCycleResult:
        """The org cycle and each target's patch cycle, as the schedule starts them."""
        sfn = self.client("stepfunctions")
        return follow_org_cycle(
            sfn,
            self.org_cycle_arn,
            execution_input,
            name,
            on_event,
            timeout_seconds,
            2.0,
            s3=self.client("s3"),
            bucket=self.artifact_bucket,
        )


def execute_cycle(
    sfn: Any,
    state_machine_arn: str,
    execution_input: Any,
    name: str | None,
    on_event: ProgressCallback | None,
    timeout_seconds: float,
    poll_seconds: float,
) -> CycleResult:
    """Start one execution and follow it to the end, passing each new history event to on_event."""
    name = name or f"cycle-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    arn = sfn.start_execution(
        stateMachineArn=state_machine_arn,
        name=name,
        input=json.dumps({} if execution_input is None else execution_input),
    )["executionArn"]
    seen = 0
    events: list[dict[str, Any]] = []
    wait = poll_seconds
    while True:
        description = sfn.describe_execution(executionArn=arn)
        finished = description["status"] != "RUNNING"
        if on_event is not None or finished:
            events = execution_history(sfn, arn)
        if on_event is not None:
            for event in events[seen:]:
                on_event(event)
        seen = len(events)
        if finished:
            break
        if time.monotonic() - started > timeout_seconds:
            raise TimeoutError(f"execution {name} still running after {timeout_seconds} s")
        time.sleep(wait)
        # Polling shares the process with a simulated execution: back off, up to ten times the first wait.
        wait = min(wait * 1.5, poll_seconds * 10)
    output = description.get("output")
    return CycleResult(
        execution_name=name,
        execution_arn=arn,
        status=description["status"],
        output=json.loads(output) if output else state_at_failure(events),
        error=description.get("error"),
        cause=description.get("cause"),
        events=events,
        calls_by_function={},
        wall_seconds=time.monotonic() - started,
    )


def follow_org_cycle(
    sfn: Any,
    org_cycle_arn: str,
    execution_input: Any,
    name: str | None,
    on_event: ProgressCallback | None,
    timeout_seconds: float,
    poll_seconds: float,
    *,
    s3: Any,
    bucket: str,
) -> OrgCycleResult:
    """Start the org cycle, follow it to its end, then read back each target's patch cycle (named in
    the summary SummarizeTargets wrote)."""
    org = execute_cycle(sfn, org_cycle_arn, execution_input, name, on_event, timeout_seconds, poll_seconds)
    summarized = org_summary(org, s3, bucket)
    targets = summarized if summarized is not None else map_results(org)
    children = {}
    for item in targets:
        arn = item.get("execution_arn")
        target = item.get("target") or {}
        if arn:
            children[f"{target.get('account_id')}/{target.get('region')}"] = followed_execution(sfn, arn)
    return OrgCycleResult(org=org, targets=targets, children=children)


def followed_execution(sfn: Any, arn: str) -> CycleResult:
    """An execution that has ended (a target's patch cycle), read back as a CycleResult."""
    description = sfn.describe_execution(executionArn=arn)
    events = execution_history(sfn, arn)
    output = description.get("output")
    # Its start date is the simulated clock's once a scenario fixed it; the states' events are wall clock.
    moments = [event["timestamp"] for event in events if event["type"] != "ExecutionStarted"]
    wall_seconds = (max(moments) - min(moments)).total_seconds() if moments else 0.0
    return CycleResult(
        execution_name=description.get("name") or arn.rsplit(":", 1)[-1],
        execution_arn=arn,
        status=description["status"],
        output=json.loads(output) if output else state_at_failure(events),
        error=description.get("error"),
        cause=description.get("cause"),
        events=events,
        calls_by_function={},
        wall_seconds=wall_seconds,
    )


def state_at_failure(events: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """A failed execution has no output; the state its Fail state received tells what was done."""
    for event in reversed(events):
        if event["type"] == "FailStateEntered":
            state = event.get("stateEnteredEventDetails", {}).get("input")
            return json.loads(state) if state else None
    return None


def execution_history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = sfn.get_execution_history(executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {}))
        events.extend(page["events"])
        token = page.get("nextToken")
        if not token:
            return events
