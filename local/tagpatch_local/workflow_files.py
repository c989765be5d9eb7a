"""Files derived from the workflow, so adding a state edits none of them by hand.

    .venv/bin/python -m tagpatch_local.workflow_files          # rewrite them
    .venv/bin/python -m tagpatch_local.workflow_files --check  # exit 1 naming each stale file

- `events/<step>.json`: each step's sample event (for `sam local invoke -e`), built from what the step
  reads (`tagpatch.workflow.STEPS`) and one example value per field (`SAMPLE_FIELDS`).
- README.md's diagram of the states, drawn from the ASL (`statemachines/patch_cycle.asl.json`).

tests/unit/runner/test_docs.py fails when either is stale, and names this command.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from tagpatch.workflow import STEPS, Step, result_fields

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
ASL: Final = REPO_ROOT / "statemachines" / "patch_cycle.asl.json"
README: Final = REPO_ROOT / "README.md"
COMMAND: Final = ".venv/bin/python -m tagpatch_local.workflow_files"

# --- sample events ------------------------------------------------------------------------------------

_CYCLE: Final = {
    "run_id": "manual-2026-11-27",
    "execution_id": "arn:aws:states:us-east-1:123456789012:execution:tagpatch-patch-cycle:manual-2026-11-27",
    "now": "2026-11-27T15:00:00Z",
    "mode": "apply",
    "patch_groups": None,
    "artifact_prefix": "runs/2026/11/27/manual-2026-11-27/",
    "allow_mass_deletion": False,
    "target": {"account_id": "123456789012", "region": "us-east-1"},  # home: the sample's own account
}
_RUN: Final = "runs/2026/11/27/manual-2026-11-27"

# One example of each event field a step reads: one cycle of three instances, as the state machine
# passes it. A step that reads a field neither listed here nor in OPTIONAL_READS fails test_docs.py.
_PATCH_CYCLE_FIELDS: Final[Mapping[str, Any]] = {
    "input": {},
    "execution_id": _CYCLE["execution_id"],
    "execution_name": "manual-2026-11-27",
    "start_time": "2026-11-27T15:00:00Z",
    "state_machine_id": "arn:aws:states:us-east-1:123456789012:stateMachine:tagpatch-patch-cycle",
    "cycle": _CYCLE,
    "discovery": {
        "phase": "done",
        "token": None,
        "managed_parts": 1,
        "inventory_parts": 1,
        "instances": 3,
        "ssm_registered": 2,
        "ssm_pages": 1,
        "ec2_pages": 1,
        "invocations": 1,
    },
    "validation": {
        "instances_key": f"{_RUN}/instances.jsonl.gz",
        "report_key": f"{_RUN}/tag-report.json",
        "total": 3,
        "in_scope": 3,
        "by_class": {"missing_tags": 1, "invalid_tags": 0, "unmanaged": 0, "stopped": 0, "ready": 2, "excepted": 0},
        "owners_with_problems": 1,
        "exception_errors": 0,
        "expired_exceptions": 0,
    },
    "monitoring_reads": {"phase": "windows"},
    "monitoring": {"results_key": f"{_RUN}/patch-results.jsonl.gz"},
    "window": "tagpatch-sun-0200",
    "changes_key": f"{_RUN}/window-changes.jsonl.gz",
    "failed_state": "Discovery",
    "error": {
        "Error": "TransientAwsError",
        "Cause": '{"errorType":"TransientAwsError","errorMessage":"ThrottlingException: Rate exceeded"}',
    },
}
_ORG_EXECUTION: Final = "arn:aws:states:us-east-1:123456789012:execution:tagpatch-org-cycle:daily-2026-11-27"
SAMPLE_FIELDS: Final[Mapping[str, Any]] = {
    **_PATCH_CYCLE_FIELDS,
    "org": {"execution_id": _ORG_EXECUTION, "execution_name": "daily-2026-11-27", "start_time": "2026-11-27T15:00:00Z"},
    "results": [
        {
            "target": {"account_id": "111122223333", "region": "us-east-1"},
            "name": "daily-2026-11-27",
            "status": "SUCCEEDED",
        },
        {
            "target": {"account_id": "444455556666", "region": "us-east-1"},
            "name": "daily-2026-11-27-444455556666-us-east-1",
            "status": "FAILED",
            "error": "States.TaskFailed",
        },
    ],
    "patch_cycle_state_machine": "arn:aws:states:us-east-1:123456789012:stateMachine:tagpatch-patch-cycle",
    "targets_key": "org-runs/2026/11/27/daily-2026-11-27/targets.json",
}
# Fields a step reads only sometimes, left out of its sample: ReportFailure's window_results exist only
# when the Map ran and SSM rejected a window.
OPTIONAL_READS: Final = frozenset({"window_results"})
# Where a step's first invocation reads a field in another state than later steps do.
SAMPLE_OVERRIDES: Final[Mapping[str, Mapping[str, Any]]] = {
    "Discovery": {"discovery": {"phase": "managed_nodes"}},
    "SummarizeTargets": {"error": None},  # ListTargets' error, only when it failed
}


def sample_event(step: Step, examples: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The step's sample event: an example of each field it reads, in the order it declares them."""
    chosen = {**SAMPLE_FIELDS, **(examples or {}), **SAMPLE_OVERRIDES.get(step.name, {})}
    return {field: chosen[field] for field in step.reads if field in chosen}


def sample_events(examples: Mapping[str, Any] | None = None) -> dict[str, str]:
    """events/<step>.json -> its text, for every step."""
    return {step.sample_event: _json(sample_event(step, examples)) for step in STEPS}


def _json(value: Any) -> str:
    return json.dumps(value, indent=2) + "\n"


# --- the README's diagram -----------------------------------------------------------------------------

DIAGRAM_START: Final = f"<!-- The diagram below is drawn from the ASL by `{COMMAND}`: do not edit it by hand. -->"
DIAGRAM_END: Final = "<!-- end of the generated diagram -->"
# What a state does, under its name in the diagram. A state with no caption is shown by its name alone.
CAPTIONS: Final[Mapping[str, str]] = {
    "PrepareCycle": "validate input,<br/>take the cycle lease",
    "Discovery": "EC2 + SSM, a part per invocation",
    "WindowUpsert": "plan",
    "FleetListed": "both listings done?",
    "ApplyWindowChanges": "Map: one window each",
    "PrePatchNotification": "reminder schedules",
    "MonitoringReads": "window runs, patch states,<br/>a part per invocation",
    "PatchMonitoring": "outcomes, owner alerts",
    "MonitoringRead": "every read done?",
    "ComplianceExport": "snapshot, report.html",
    "AnyWindowRejected": "any window<br/>SSM rejected?",
    "ReportFailure": "SNS, KMS-encrypted",
    "ReleaseCycle": "give the lease back",
    "ReleaseAfterFailure": "ReleaseCycle again",
}
_SHAPES: Final[Mapping[str, tuple[str, str]]] = {
    "Task": ("[", "]"),
    "Map": ("{{", "}}"),
    "Parallel": ("{{", "}}"),
    "Choice": ("{", "}"),
    "Succeed": ("((", "))"),
    "Fail": ("((", "))"),
}
_WRITES_ARTIFACTS: Final = ("_key", "_parts")


def _through_passes(states: Mapping[str, Any], name: str) -> str:
    """The first state that is not a Pass state, from `name` on: Pass states are not drawn."""
    while states[name]["Type"] == "Pass" and "Next" in states[name]:
        name = states[name]["Next"]
    return str(name)


def _label(name: str, state: Mapping[str, Any]) -> str:
    if state["Type"] == "Choice":
        return CAPTIONS.get(name, f"{name}?")
    if state["Type"] in ("Succeed", "Fail"):
        return "done" if state["Type"] == "Succeed" else "failed"
    caption = CAPTIONS.get(name)
    return f"{name}<br/>{caption}" if caption else name


def _writes_artifacts(name: str, state: Mapping[str, Any], steps: Sequence[Step]) -> bool:
    """Whether a state's function returns an S3 key or part count: it wrote to the artifact bucket."""
    names = {state_name for state_name, _ in _task_states(state, name)}
    return any(
        field.endswith(_WRITES_ARTIFACTS)
        for step in steps
        for state_name, result in step.invoked_by.items()
        if state_name in names
        for field in result_fields(result)
    )


def _task_states(state: Mapping[str, Any], name: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The Task states in a state (itself, or inside a Map's or Parallel's states)."""
    if state["Type"] == "Task":
        yield name, state
    inner = state.get("ItemProcessor") or state.get("Iterator")
    branches = [inner] if inner else state.get("Branches", [])
    for branch in branches:
        for inner_name, inner_state in branch["States"].items():
            yield from _task_states(inner_state, inner_name)


def diagram(definition: Mapping[str, Any], steps: Sequence[Step] = STEPS) -> str:
    """A mermaid flowchart of the ASL's top-level states: Pass states folded into their edges, each
    Catch drawn as a failure edge, and which states write to the artifact bucket."""
    states = definition["States"]
    drawn = [name for name, state in states.items() if state["Type"] != "Pass"]
    lines = ["```mermaid", "flowchart LR"]
    lines.append(
        f"    Start[EventBridge Scheduler<br/>or a manual start] --> {_through_passes(states, definition['StartAt'])}"
    )
    for name in drawn:
        opening, closing = _SHAPES[states[name]["Type"]]
        lines.append(f"    {name}{opening}{_label(name, states[name])}{closing}")
    failures: dict[str, list[str]] = {}
    for name in drawn:
        state = states[name]
        if "Next" in state:
            lines.append(f"    {name} --> {_through_passes(states, state['Next'])}")
        for rule in state.get("Choices", []):
            lines.append(f"    {name} -- yes --> {_through_passes(states, rule['Next'])}")
        if "Default" in state:
            lines.append(f"    {name} -- no --> {_through_passes(states, state['Default'])}")
        for catch in state.get("Catch", []):
            failures.setdefault(_through_passes(states, catch["Next"]), []).append(name)
    for target, sources in failures.items():
        lines.append(f"    {' & '.join(sources)} -. failure .-> {target}")
    writers = [name for name in drawn if _writes_artifacts(name, states[name], steps)]
    if writers:
        lines.append(f"    {' & '.join(writers)} --> S3[(artifact bucket<br/>runs/YYYY/MM/DD/run/)]")
    lines.append("```")
    return "\n".join(lines) + "\n"


def readme_with_diagram(readme: str, definition: Mapping[str, Any]) -> str:
    """The README with its generated diagram replaced by one drawn from `definition`."""
    before, start, rest = readme.partition(DIAGRAM_START + "\n")
    _, end, after = rest.partition(DIAGRAM_END)
    if not start or not end:
        raise ValueError(f"README.md: the lines {DIAGRAM_START!r} and {DIAGRAM_END!r} around the diagram are missing")
    return f"{before}{start}{diagram(definition)}{end}{after}"


# --- writing and checking ----------------------------------------------------------------------------


def expected_files(root: Path = REPO_ROOT) -> dict[Path, str]:
    definition = json.loads((root / ASL.relative_to(REPO_ROOT)).read_text(encoding="utf-8"))
    readme = (root / "README.md").read_text(encoding="utf-8")
    files = {root / path: text for path, text in sample_events().items()}
    files[root / "README.md"] = readme_with_diagram(readme, definition)
    return files


def stale_files(root: Path = REPO_ROOT) -> list[str]:
    return [
        str(path.relative_to(root))
        for path, text in expected_files(root).items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only say which files are stale (exit 1 if any)")
    args = parser.parse_args(argv)
    stale = stale_files()
    if args.check:
        for name in stale:
            sys.stderr.write(f"stale: {name} (run {COMMAND})\n")
        return 1 if stale else 0
    for path, text in expected_files().items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            sys.stderr.write(f"wrote {path.relative_to(REPO_ROOT)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
