"""The sample events in events/ stay valid: manual re-run inputs and one payload per function."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tagpatch.cycle import Cycle, start_cycle
from tagpatch.discovery import DiscoveryCursor
from tagpatch.lease import LEASE_KEY
from tagpatch.monitoring_reads import MonitoringCursor
from tagpatch.targets import Target
from tagpatch.workflow import STEPS, snake_case

REPO_ROOT = Path(__file__).resolve().parents[3]
EVENTS = REPO_ROOT / "events"
CYCLE_INPUTS = sorted(EVENTS.glob("cycle-*.json"))
FUNCTION_EVENTS_WITH_CYCLE = [Path(step.sample_event).name for step in STEPS if "cycle" in step.reads]
FUNCTIONS = REPO_ROOT / "functions"


def read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def prepare_event() -> dict[str, Any]:
    event = read(EVENTS / "prepare_cycle.json")
    assert isinstance(event, dict)
    return event


@dataclass(frozen=True)
class FakeLambdaContext:
    function_name: str = "tagpatch-PrepareCycleFunction"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:tagpatch-PrepareCycleFunction"
    aws_request_id: str = "7f3c1e2a-0000-4000-8000-000000000001"


def load_prepare_cycle_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "prepare_cycle_app", REPO_ROOT / "functions" / "prepare_cycle" / "app.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_json_file_in_events_is_valid_json() -> None:
    files = sorted(EVENTS.glob("*.json"))
    assert {path.name for path in files} >= {
        "cycle-default.json",
        "cycle-plan.json",
        "cycle-patch-groups.json",
        "cycle-at-time.json",
        "prepare_cycle.json",
        *FUNCTION_EVENTS_WITH_CYCLE,
    }
    for path in files:
        read(path)


def test_there_are_sample_cycle_inputs() -> None:
    assert {path.name for path in CYCLE_INPUTS} >= {
        "cycle-default.json",
        "cycle-plan.json",
        "cycle-patch-groups.json",
        "cycle-at-time.json",
    }


@pytest.mark.parametrize("path", CYCLE_INPUTS, ids=lambda path: path.name)
def test_sample_cycle_input_is_accepted(path: Path) -> None:
    event = prepare_event()
    cycle = start_cycle(
        read(path),
        execution_id=event["execution_id"],
        execution_name=event["execution_name"],
        start_time=event["start_time"],
    )
    assert cycle.run_id == "manual-2026-11-27"


def test_sample_cycle_inputs_mean_what_their_names_say() -> None:
    def cycle(name: str) -> Cycle:
        return start_cycle(
            read(EVENTS / name),
            execution_id="arn:aws:states:us-east-1:123456789012:execution:tagpatch-patch-cycle:run",
            execution_name="run",
            start_time="2026-11-27T15:00:00Z",
        )

    assert cycle("cycle-default.json").to_payload()["mode"] == "apply"
    assert cycle("cycle-default.json").patch_groups is None
    assert cycle("cycle-plan.json").mode == "plan"
    assert cycle("cycle-patch-groups.json").patch_groups == frozenset({"web-prod", "db-prod"})
    assert cycle("cycle-at-time.json").to_payload()["now"] == "2026-11-29T01:00:00Z"


def test_prepare_cycle_event_passes_start_cycle() -> None:
    event = prepare_event()
    definition = read(REPO_ROOT / "statemachines" / "patch_cycle.asl.json")
    sent = definition["States"]["PrepareCycle"]["Parameters"]["Payload"]
    assert set(event) == {key.removesuffix(".$") for key in sent}  # what the ASL sends
    cycle = start_cycle(
        event["input"],
        execution_id=event["execution_id"],
        execution_name=event["execution_name"],
        start_time=event["start_time"],
    )
    assert cycle.artifact_prefix == "runs/2026/11/27/manual-2026-11-27/"


def test_prepare_cycle_handler_accepts_the_sample_event(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTIFACT_BUCKET", "tagpatch-artifacts")  # where it takes the cycle lease
    app = load_prepare_cycle_app()
    event = prepare_event()
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="tagpatch-artifacts")
        # The sample's state machine exists and runs no other execution.
        boto3.client("stepfunctions", region_name="us-east-1").create_state_machine(
            name=event["state_machine_id"].rsplit(":", 1)[1],
            definition=json.dumps({"StartAt": "S", "States": {"S": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::123456789012:role/tagpatch-patch-cycle",
        )
        result = app.lambda_handler(event, FakeLambdaContext())
        lease = boto3.client("s3", region_name="us-east-1").get_object(Bucket="tagpatch-artifacts", Key=LEASE_KEY)
        assert json.loads(lease["Body"].read())["execution_id"] == event["execution_id"]
    assert result == {
        "cycle": {
            "run_id": "manual-2026-11-27",
            "execution_id": ("arn:aws:states:us-east-1:123456789012:execution:tagpatch-patch-cycle:manual-2026-11-27"),
            "now": "2026-11-27T15:00:00Z",
            "mode": "apply",
            "patch_groups": None,
            "artifact_prefix": "runs/2026/11/27/manual-2026-11-27/",
            "allow_mass_deletion": False,
            # home: the function's own account and Region, from its ARN
            "target": {"account_id": "123456789012", "region": "us-east-1"},
        }
    }


@pytest.mark.parametrize("name", FUNCTION_EVENTS_WITH_CYCLE)
def test_function_event_cycle_is_a_valid_cycle_payload(name: str) -> None:
    event = read(EVENTS / name)
    cycle = Cycle.from_payload(event["cycle"])
    # The same cycle PrepareCycle makes from events/prepare_cycle.json, byte for byte.
    event_prepare = prepare_event()
    prepared = start_cycle(
        event_prepare["input"],
        execution_id=event_prepare["execution_id"],
        execution_name=event_prepare["execution_name"],
        start_time=event_prepare["start_time"],
        home=Target("123456789012", "us-east-1"),  # FakeLambdaContext's account and Region
    )
    assert cycle == prepared
    assert cycle.to_payload() == event["cycle"]


def test_tag_validation_event_has_discovery_results() -> None:
    event = read(EVENTS / "tag_validation.json")
    discovery = DiscoveryCursor.from_payload(event["discovery"])
    # What the Discovery state's ResultSelector keeps, once the FleetListed choice lets it through.
    assert discovery.to_payload() == event["discovery"]
    assert discovery.phase == "done"
    assert discovery.ssm_registered <= discovery.instances


def test_discovery_event_starts_where_the_workflow_starts_it() -> None:
    states = json.loads((REPO_ROOT / "statemachines" / "patch_cycle.asl.json").read_text())["States"]
    assert read(EVENTS / "discovery.json")["discovery"] == states["StartDiscovery"]["Result"]
    selected = {name.removesuffix(".$") for name in states["Discovery"]["ResultSelector"]}
    assert selected == set(DiscoveryCursor().to_payload())


def test_patch_monitoring_event_starts_where_the_workflow_starts_its_reads() -> None:
    states = json.loads((REPO_ROOT / "statemachines" / "patch_cycle.asl.json").read_text())["States"]
    event = read(EVENTS / "patch_monitoring.json")
    assert event["monitoring_reads"] == states["StartMonitoring"]["Result"]
    assert MonitoringCursor.from_payload(event["monitoring_reads"]) == MonitoringCursor()
    selected = {name.removesuffix(".$") for name in states["MonitoringReads"]["ResultSelector"]}
    assert selected == set(MonitoringCursor().to_payload())
    # Both the reads and the composing invocation get what the event carries.
    for state in ("MonitoringReads", "PatchMonitoring"):
        assert {key.removesuffix(".$") for key in states[state]["Parameters"]["Payload"]} == set(event)


def test_report_failure_event_is_what_a_caught_error_looks_like() -> None:
    event = read(EVENTS / "report_failure.json")
    assert set(event) == {"cycle", "failed_state", "error"}
    assert event["failed_state"] == "Discovery"
    assert set(event["error"]) == {"Error", "Cause"}
    assert json.loads(event["error"]["Cause"])["errorMessage"] == "ThrottlingException: Rate exceeded"


def test_every_function_has_a_sample_event() -> None:
    functions = {path.name for path in FUNCTIONS.iterdir() if (path / "app.py").exists()}
    assert functions == {path.stem for path in EVENTS.glob("*.json") if not path.name.startswith("cycle-")}


def test_reconcile_events_carry_what_the_state_machine_passes() -> None:
    definition = read(REPO_ROOT / "statemachines" / "patch_cycle.asl.json")
    states = definition["States"]
    for state, event_name in (
        ("WindowUpsert", "window_upsert.json"),
        ("BaselineAssociation", "baseline_association.json"),
    ):
        payload_keys = {key.removesuffix(".$") for key in states[state]["Parameters"]["Payload"]}
        assert set(read(EVENTS / event_name)) == payload_keys
        selector = states["TagValidation"]["ResultSelector"]
        assert set(read(EVENTS / event_name)["validation"]) == {key.removesuffix(".$") for key in selector}
    item_keys = states["ApplyWindowChanges"]["ItemSelector"]
    assert set(read(EVENTS / "apply_window_changes.json")) == {key.removesuffix(".$") for key in item_keys}


def test_compliance_export_event_carries_what_the_state_machine_passes() -> None:
    payload = read(REPO_ROOT / "statemachines" / "patch_cycle.asl.json")["States"]["ComplianceExport"]["Parameters"][
        "Payload"
    ]
    event = read(EVENTS / "compliance_export.json")
    assert set(event) == {key.removesuffix(".$") for key in payload}
    assert set(event["monitoring"]) == {key.removesuffix(".$") for key in payload["monitoring"]}


def test_every_function_the_workflow_passes_a_cycle_has_its_event_checked_above() -> None:
    """Read from the ASL itself, not from the list: each Task state that passes `cycle` (in its Payload,
    its Map's items, or the whole state) invokes a function whose sample event must carry a valid one."""
    states = read(REPO_ROOT / "statemachines" / "patch_cycle.asl.json")["States"]

    def cycle_takers(states: dict[str, Any], item_keys: set[str] | None) -> set[str]:
        found = set()
        for state in states.values():
            if state["Type"] == "Map":
                items = {key.removesuffix(".$") for key in state["ItemSelector"]}
                found |= cycle_takers(state["ItemProcessor"]["States"], items)
            elif state["Type"] == "Task":
                parameters = state["Parameters"]
                whole = parameters.get("Payload.$") == "$"
                sent = (item_keys or {"cycle"}) if whole else {key.removesuffix(".$") for key in parameters["Payload"]}
                if "cycle" in sent:
                    found.add(parameters["FunctionName"].removeprefix("${").removesuffix("FunctionArn}"))
        return found

    expected = {f"{snake_case(name)}.json" for name in cycle_takers(states, None)}
    assert expected - set(FUNCTION_EVENTS_WITH_CYCLE) == set()
