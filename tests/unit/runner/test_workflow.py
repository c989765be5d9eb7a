"""template.yaml, the ASL, the sample events and the README's diagram against the one declaration of the
workflow (tagpatch.workflow.STEPS). Each problem says what to add where; CONTRIBUTING.md walks through
adding a state."""

from __future__ import annotations

import ast
import copy
import dataclasses
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, is_typeddict

import pytest

from tagpatch.workflow import OUTSIDE_THE_CYCLE, PATCH_CYCLE, STATE_MACHINES, STEPS, StateMachine, Step, result_fields
from tagpatch_local import workflow_files
from tagpatch_local.template import SUB_PLACEHOLDER, load_template

REPO_ROOT = Path(__file__).resolve().parents[3]
DECLARATION = "layers/tagpatch/tagpatch/workflow.py"
ASL = PATCH_CYCLE.definition
STATE_MACHINE = PATCH_CYCLE.resource
LAMBDA_INVOKE = "arn:${Partition}:states:::lambda:invoke"
# Substitutions that are no step's function: the partition every integration ARN is in.
PARTITION_SUBSTITUTION = {"Partition": {"Ref": "AWS::Partition"}}
PAYLOAD_FIELD = re.compile(r"^\$\.Payload\.([A-Za-z0-9_]+)")
# The sample events and the README's diagram are derived files: what to run when one is missing or stale.
REGENERATE = f"run {workflow_files.COMMAND}, which writes it from the declaration and the ASL"
MERMAID = re.compile(r"```mermaid\n(.*?)```", re.DOTALL)
# A node's label starts with the state's name: D[Discovery<br/>...], M{{ApplyWindowChanges<br/>...}}.
MERMAID_LABEL = re.compile(r"\w+(?:\[|\{\{|\(\()([A-Za-z]+)")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(REPO_ROOT / "template.yaml")


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    document: dict[str, Any] = read_json(REPO_ROOT / ASL)
    return document


@pytest.fixture(scope="module")
def definitions() -> dict[StateMachine, dict[str, Any]]:
    return {machine: read_json(REPO_ROOT / machine.definition) for machine in STATE_MACHINES}


def steps_of(machine: StateMachine, steps: Sequence[Step] = STEPS) -> list[Step]:
    return [step for step in steps if step.machine == machine]


@pytest.fixture(scope="module")
def readme() -> str:
    return (REPO_ROOT / "README.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def events() -> dict[str, Any]:
    return {f"events/{path.name}": read_json(path) for path in (REPO_ROOT / "events").glob("*.json")}


# --- reading the ASL ------------------------------------------------------------------------------


def walk_states(states: Mapping[str, Any], item_fields: frozenset[str] | None = None) -> Iterator[tuple[str, Any, Any]]:
    """(name, state, fields of a Map item or None) for every state, inside Map and Parallel too."""
    for name, state in states.items():
        yield name, state, item_fields
        if state["Type"] == "Map":
            processor = state.get("ItemProcessor") or state["Iterator"]
            selector = state.get("ItemSelector") or state.get("Parameters") or {}
            yield from walk_states(processor["States"], frozenset(key.removesuffix(".$") for key in selector))
        elif state["Type"] == "Parallel":
            for branch in state["Branches"]:
                yield from walk_states(branch["States"], item_fields)


def lambda_tasks(definition: Mapping[str, Any]) -> dict[str, tuple[dict[str, Any], frozenset[str] | None]]:
    return {
        name: (state, item)
        for name, state, item in walk_states(definition["States"])
        if state["Type"] == "Task" and state["Resource"] == LAMBDA_INVOKE
    }


def fields_written(definition: Mapping[str, Any]) -> frozenset[str]:
    """Top-level fields the states put in the state: what a task passed the whole state (`$`) may read."""
    written: set[str] = set()
    for _name, state, _item in walk_states(definition["States"]):
        paths = [state.get("ResultPath")] + [catcher.get("ResultPath") for catcher in state.get("Catch", [])]
        written.update(path.removeprefix("$.").split(".")[0] for path in paths if isinstance(path, str) and path != "$")
        if state.get("ResultPath") == "$":
            written.update(key.removesuffix(".$") for key in state.get("ResultSelector", {}))
    return frozenset(written)


def passed_fields(
    state: Mapping[str, Any], item: frozenset[str] | None, definition: Mapping[str, Any]
) -> frozenset[str]:
    parameters = state.get("Parameters", {})
    if parameters.get("Payload.$") == "$":
        return item if item is not None else fields_written(definition)
    return frozenset(key.removesuffix(".$") for key in parameters.get("Payload", {}))


# --- the checks -----------------------------------------------------------------------------------


def template_problems(template: Mapping[str, Any], steps: Sequence[Step] = STEPS) -> list[str]:
    resources = template["Resources"]
    problems = _function_problems(resources, steps)
    for machine in STATE_MACHINES:
        if machine.resource not in resources:
            problems.append(f"template.yaml: {machine.resource} (DefinitionUri: {machine.definition}) is missing")
            continue
        properties = resources[machine.resource]["Properties"]
        if properties.get("DefinitionUri") != machine.definition:
            problems.append(f"template.yaml: {machine.resource}'s DefinitionUri must be {machine.definition}")
        mine = steps_of(machine, steps)
        problems += _substitution_problems(properties.get("DefinitionSubstitutions", {}), mine, machine)
        problems += _invoke_policy_problems(properties.get("Policies", []), mine, machine.resource)
    return problems


def _function_problems(resources: Mapping[str, Any], steps: Sequence[Step]) -> list[str]:
    problems = []
    functions = {name for name, resource in resources.items() if resource["Type"] == "AWS::Serverless::Function"}
    for step in steps:
        if step.function not in functions:
            problems.append(
                f"template.yaml: step {step.name} needs a resource {step.function} "
                f"(Type: AWS::Serverless::Function, CodeUri: {step.code_dir})"
            )
        elif resources[step.function]["Properties"].get("CodeUri") != step.code_dir:
            problems.append(f"template.yaml: {step.function}'s CodeUri must be {step.code_dir}")
    declared = {step.function for step in steps} | {f"{name}Function" for name in OUTSIDE_THE_CYCLE}
    for function in sorted(functions - declared):
        problems.append(
            f"{DECLARATION}: template.yaml's {function} is not declared: add a Step to STEPS, "
            "or its name to OUTSIDE_THE_CYCLE if the state machine never invokes it"
        )
    return problems


def _substitution_problems(
    substitutions: Mapping[str, Any], steps: Sequence[Step], machine: StateMachine = PATCH_CYCLE
) -> list[str]:
    problems = []
    for step in steps:
        wanted = {"Fn::GetAtt": [step.function, "Arn"]}
        if substitutions.get(step.substitution) != wanted:
            problems.append(
                f"template.yaml: {machine.resource}'s DefinitionSubstitutions needs "
                f"`{step.substitution}: !GetAtt {step.function}.Arn`"
            )
    for child in machine.starts + machine.publishes:
        if substitutions.get(f"{child}Arn") != {"Ref": child}:
            problems.append(
                f"template.yaml: {machine.resource}'s DefinitionSubstitutions needs `{child}Arn: !Ref {child}`"
            )
    started = {f"{child}Arn" for child in machine.starts + machine.publishes}
    for key in sorted(
        set(substitutions) - {step.substitution for step in steps} - started - set(PARTITION_SUBSTITUTION)
    ):
        problems.append(
            f"template.yaml: {machine.resource}'s DefinitionSubstitutions' {key} belongs to no step of it "
            f"in {DECLARATION}"
        )
    for key, value in PARTITION_SUBSTITUTION.items():
        if substitutions.get(key) != value:
            problems.append(f"template.yaml: DefinitionSubstitutions needs `{key}: !Ref AWS::Partition`")
    return problems


def _invoke_policy_problems(
    policies: Sequence[Any], steps: Sequence[Step], state_machine: str = STATE_MACHINE
) -> list[str]:
    problems = []
    granted = [
        policy["LambdaInvokePolicy"]["FunctionName"]
        for policy in policies
        if isinstance(policy, dict) and "LambdaInvokePolicy" in policy
    ]
    granted_ids = {ref.get("Ref") for ref in granted if isinstance(ref, dict)}
    for step in steps:
        if step.function not in granted_ids:
            problems.append(
                f"template.yaml: {state_machine}'s Policies need `- LambdaInvokePolicy: "
                f"{{FunctionName: !Ref {step.function}}}`, or the state machine may not invoke it"
            )
    for ref in granted:
        if not (isinstance(ref, dict) and ref.get("Ref") in {step.function for step in steps}):
            problems.append(
                f"template.yaml: {state_machine} may invoke {ref}, which no step of it in {DECLARATION} declares "
                "(least privilege: grant only what the workflow invokes)"
            )
    return problems


def asl_problems(
    definition: Mapping[str, Any], steps: Sequence[Step] = STEPS, machine: StateMachine = PATCH_CYCLE
) -> list[str]:
    """The machine's ASL against the steps declared for it."""
    asl = machine.definition
    steps = steps_of(machine, steps)
    problems = []
    tasks = lambda_tasks(definition)
    by_state = {state: step for step in steps for state in step.invoked_by}
    for name, (state, item) in tasks.items():
        function_name = state.get("Parameters", {}).get("FunctionName", "")
        placeholder = SUB_PLACEHOLDER.fullmatch(str(function_name))
        step = by_state.get(name)
        if step is None:
            problems.append(
                f"{DECLARATION}: the ASL's Task state {name} ({function_name}) is declared by no step: "
                "add it to its step's invoked_by"
            )
            continue
        if placeholder is None or placeholder.group(1) != step.substitution:
            problems.append(f"{asl}: {name}'s FunctionName must be ${{{step.substitution}}}, not {function_name!r}")
        result = step.invoked_by[name]
        selected = {
            match.group(1)
            for value in state.get("ResultSelector", {}).values()
            if isinstance(value, str) and (match := PAYLOAD_FIELD.match(value))
        }
        for key in sorted(selected - result_fields(result)):
            problems.append(
                f"{asl}: {name}'s ResultSelector reads $.Payload.{key}, which {result.__name__} "
                f"({step.name}'s result in {DECLARATION}) does not have"
            )
        passed = passed_fields(state, item, definition)
        for key in sorted(set(step.reads) - passed):
            problems.append(f"{asl}: {name} does not pass {key!r}, which {step.name} reads")
        if "Payload" in state.get("Parameters", {}):
            for key in sorted(passed - set(step.reads)):
                problems.append(f"{asl}: {name} passes {key!r}, which {step.name}'s reads in {DECLARATION} lack")
    for step in steps:
        for name in step.invoked_by:
            if name not in tasks:
                problems.append(
                    f"{asl}: no Task state {name} invokes ${{{step.substitution}}}, as {DECLARATION} says "
                    f"(step {step.name})"
                )
    return problems


def event_problems(events: Mapping[str, Any], steps: Sequence[Step] = STEPS) -> list[str]:
    """Each step's sample event exists and carries only what it reads; its S3 reads name returned fields."""
    problems = []
    for step in steps:
        event = events.get(step.sample_event)
        if event is None:
            problems.append(f"{step.sample_event}: missing; {REGENERATE}")
            continue
        for key in sorted(set(event) - set(step.reads)):
            problems.append(f"{step.sample_event} has {key!r}, which {step.name}'s reads in {DECLARATION} lack")
        for path in step.s3_reads:
            head, _, tail = path.rpartition(".")
            if (head or tail).split(".")[0] not in step.reads:
                problems.append(f"{DECLARATION}: {step.name} reads S3 through {path!r}, not among its reads")
            if head and not any(
                tail in result_fields(result) for other in steps for result in other.invoked_by.values()
            ):
                problems.append(f"{DECLARATION}: {step.name} reads S3 through {path!r}, but no step returns {tail!r}")
    return problems


def top_level_invokers(definition: Mapping[str, Any]) -> list[str]:
    """Top-level states that invoke a function, themselves or through a Map or Parallel inside them."""
    invokers = []
    for name, state in definition["States"].items():
        inner = lambda_tasks({"States": {name: state}})
        if inner:
            invokers.append(name)
    return invokers


def readme_problems(readme: str, definition: Mapping[str, Any]) -> list[str]:
    diagram = MERMAID.search(readme)
    if diagram is None:
        return ["README.md: the mermaid diagram of the workflow is missing"]
    labels = set(MERMAID_LABEL.findall(diagram.group(1)))
    return [
        f"README.md: the mermaid diagram has no node for the ASL state {name}; {REGENERATE}"
        for name in top_level_invokers(definition)
        if name not in labels
    ]


# --- the repository agrees with the declaration ---------------------------------------------------


def test_template_declares_each_step_its_substitution_and_its_invoke_permission(template: dict[str, Any]) -> None:
    problems = template_problems(template)
    assert not problems, "\n".join(problems)


def test_each_asl_invokes_each_of_its_steps_from_its_declared_states(
    definitions: dict[StateMachine, dict[str, Any]],
) -> None:
    problems = [
        problem for machine, definition in definitions.items() for problem in asl_problems(definition, STEPS, machine)
    ]
    assert not problems, "\n".join(problems)


def test_each_step_belongs_to_a_deployed_state_machine() -> None:
    assert {step.machine for step in STEPS} == set(STATE_MACHINES)
    assert [step.name for step in steps_of(STATE_MACHINES[1])] == ["ListTargets", "SummarizeTargets"]


def test_each_step_has_a_sample_event_with_what_it_reads(events: dict[str, Any]) -> None:
    problems = event_problems(events)
    assert not problems, "\n".join(problems)


def test_the_readme_diagram_shows_each_state_that_invokes_a_function(readme: str, definition: dict[str, Any]) -> None:
    problems = readme_problems(readme, definition)
    assert not problems, "\n".join(problems)


def handler_problems(step: Step, source: str) -> list[str]:
    """The handler exists and is annotated to return each TypedDict result, so mypy checks its dicts."""
    path = f"{step.code_dir}app.py"
    handler = next(
        (
            node
            for node in ast.parse(source).body
            if isinstance(node, ast.FunctionDef) and node.name == "lambda_handler"
        ),
        None,
    )
    if handler is None:
        return [f"{path}: add {step.name}'s lambda_handler(event, context), decorated with @lambda_entry"]
    returns = (
        {node.id for node in ast.walk(handler.returns) if isinstance(node, ast.Name)} if handler.returns else set()
    )
    return [
        f"{path}: lambda_handler must be annotated to return {result.__name__} (from {DECLARATION})"
        for result in dict.fromkeys(step.invoked_by.values())
        if is_typeddict(result) and result.__name__ not in returns
    ]


def test_each_step_has_a_handler_that_returns_its_declared_result() -> None:
    problems = []
    for step in STEPS:
        source = REPO_ROOT / step.code_dir / "app.py"
        if not source.is_file():
            problems.append(f"{step.code_dir}app.py: add {step.name}'s handler")
            continue
        problems += handler_problems(step, source.read_text(encoding="utf-8"))
    assert not problems, "\n".join(problems)


# --- each check fails, and says what to add where -------------------------------------------------


def new_problems(changed: list[str], baseline: list[str]) -> list[str]:
    """What a change to a copy added, whatever the repository's own state."""
    return [problem for problem in changed if problem not in baseline]


def without_substitution(template: dict[str, Any]) -> None:
    del template["Resources"][STATE_MACHINE]["Properties"]["DefinitionSubstitutions"]["ComplianceExportFunctionArn"]


def without_invoke_policy(template: dict[str, Any]) -> None:
    policies = template["Resources"][STATE_MACHINE]["Properties"]["Policies"]
    policies[:] = [
        p for p in policies if p != {"LambdaInvokePolicy": {"FunctionName": {"Ref": "ReleaseCycleFunction"}}}
    ]


def with_extra_invoke_policy(template: dict[str, Any]) -> None:
    policies = template["Resources"][STATE_MACHINE]["Properties"]["Policies"]
    policies.append({"LambdaInvokePolicy": {"FunctionName": {"Ref": "ConfigNotifierFunction"}}})


def without_function(template: dict[str, Any]) -> None:
    del template["Resources"]["TagValidationFunction"]


def with_undeclared_function(template: dict[str, Any]) -> None:
    template["Resources"]["NewStepFunction"] = copy.deepcopy(template["Resources"]["ReleaseCycleFunction"])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            without_substitution,
            "DefinitionSubstitutions needs `ComplianceExportFunctionArn: !GetAtt ComplianceExportFunction.Arn`",
        ),
        (
            without_invoke_policy,
            "Policies need `- LambdaInvokePolicy: {FunctionName: !Ref ReleaseCycleFunction}`",
        ),
        (with_extra_invoke_policy, "may invoke {'Ref': 'ConfigNotifierFunction'}, which no step"),
        (without_function, "step TagValidation needs a resource TagValidationFunction"),
        (with_undeclared_function, "template.yaml's NewStepFunction is not declared: add a Step to STEPS"),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_a_template_missing_a_step_fact_is_reported(template: dict[str, Any], change: Any, expected: str) -> None:
    changed = copy.deepcopy(template)
    change(changed)
    added = new_problems(template_problems(changed), template_problems(template))
    assert any(expected in problem for problem in added), added


def without_map_task(definition: dict[str, Any]) -> None:
    inner = definition["States"]["ApplyWindowChanges"]["ItemProcessor"]["States"]
    inner["ApplyWindow"] = {"Type": "Pass", "End": True}


def with_new_task(definition: dict[str, Any]) -> None:
    state = copy.deepcopy(definition["States"]["ReleaseCycle"])
    state["Parameters"]["FunctionName"] = "${NewStepFunctionArn}"
    definition["States"]["NewStep"] = state


def with_unknown_result_field(definition: dict[str, Any]) -> None:
    definition["States"]["TagValidation"]["ResultSelector"]["surprise.$"] = "$.Payload.surprise"


def without_a_read(definition: dict[str, Any]) -> None:
    del definition["States"]["ComplianceExport"]["Parameters"]["Payload"]["monitoring"]


def with_task_in_parallel(definition: dict[str, Any]) -> None:
    task = copy.deepcopy(definition["States"]["ReleaseCycle"])
    task.pop("Next")
    task.pop("Catch")
    task["End"] = True
    definition["States"]["Both"] = {"Type": "Parallel", "Branches": [{"StartAt": "Hidden", "States": {"Hidden": task}}]}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (without_map_task, "no Task state ApplyWindow invokes ${ApplyWindowChangesFunctionArn}"),
        (with_new_task, "the ASL's Task state NewStep (${NewStepFunctionArn}) is declared by no step"),
        (with_unknown_result_field, "ResultSelector reads $.Payload.surprise, which TagValidationResult"),
        (without_a_read, "ComplianceExport does not pass 'monitoring', which ComplianceExport reads"),
        (with_task_in_parallel, "the ASL's Task state Hidden (${ReleaseCycleFunctionArn}) is declared by no step"),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_an_asl_that_disagrees_with_the_declaration_is_reported(
    definition: dict[str, Any], change: Any, expected: str
) -> None:
    changed = copy.deepcopy(definition)
    change(changed)
    added = new_problems(asl_problems(changed), asl_problems(definition))
    assert any(expected in problem for problem in added), added


def test_an_org_cycle_asl_missing_a_step_is_reported(definitions: dict[StateMachine, dict[str, Any]]) -> None:
    org = STATE_MACHINES[1]
    changed = copy.deepcopy(definitions[org])
    changed["States"]["ListTargets"] = {"Type": "Pass", "Next": "Targets"}
    assert new_problems(asl_problems(changed, STEPS, org), asl_problems(definitions[org], STEPS, org)) == [
        f"{org.definition}: no Task state ListTargets invokes ${{ListTargetsFunctionArn}}, as {DECLARATION} says "
        "(step ListTargets)"
    ]


def test_an_org_cycle_without_its_child_machine_substitution_is_reported(template: dict[str, Any]) -> None:
    changed = copy.deepcopy(template)
    del changed["Resources"]["OrgCycleStateMachine"]["Properties"]["DefinitionSubstitutions"][
        "PatchCycleStateMachineArn"
    ]
    assert new_problems(template_problems(changed), template_problems(template)) == [
        "template.yaml: OrgCycleStateMachine's DefinitionSubstitutions needs "
        "`PatchCycleStateMachineArn: !Ref PatchCycleStateMachine`"
    ]


def test_a_step_missing_from_the_declaration_is_reported(template: dict[str, Any], definition: dict[str, Any]) -> None:
    steps = [step for step in STEPS if step.name != "PrePatchNotification"]
    problems = template_problems(template, steps) + asl_problems(definition, steps)
    assert f"{DECLARATION}: template.yaml's PrePatchNotificationFunction is not declared" in "\n".join(problems)
    assert "the ASL's Task state PrePatchNotification (${PrePatchNotificationFunctionArn}) is declared by no step" in (
        "\n".join(problems)
    )


def test_a_step_without_a_sample_event_is_reported(events: dict[str, Any]) -> None:
    steps = [*STEPS, dataclasses.replace(STEPS[-1], name="NewStep")]
    assert new_problems(event_problems(events, steps), event_problems(events)) == [
        f"events/new_step.json: missing; {REGENERATE}"
    ]


def test_a_readme_diagram_missing_a_state_is_reported(readme: str, definition: dict[str, Any]) -> None:
    changed = readme.replace("PatchMonitoring[PatchMonitoring", "PatchMonitoring[Monitoring")
    assert new_problems(readme_problems(changed, definition), readme_problems(readme, definition)) == [
        f"README.md: the mermaid diagram has no node for the ASL state PatchMonitoring; {REGENERATE}"
    ]


def test_an_s3_read_through_a_field_no_step_returns_is_reported(events: dict[str, Any]) -> None:
    steps = [
        dataclasses.replace(step, s3_reads=("validation.instance_key",)) if step.name == "WindowUpsert" else step
        for step in STEPS
    ]
    problems = event_problems(events, steps)
    assert new_problems(problems, event_problems(events)) == [
        f"{DECLARATION}: WindowUpsert reads S3 through 'validation.instance_key', but no step returns 'instance_key'"
    ]


def test_a_handler_that_returns_an_untyped_dict_is_reported() -> None:
    step = next(step for step in STEPS if step.name == "ReleaseCycle")
    source = (REPO_ROOT / step.code_dir / "app.py").read_text(encoding="utf-8")
    untyped = source.replace("-> ReleaseCycleResult:", "-> dict[str, Any]:")
    assert untyped != source
    assert handler_problems(step, untyped) == [
        f"functions/release_cycle/app.py: lambda_handler must be annotated to return ReleaseCycleResult "
        f"(from {DECLARATION})"
    ]


def tagpatch_imports(source: str) -> list[str]:
    """Modules of tagpatch's own package that a source imports."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found += [name for name in names if name == "tagpatch" or name.startswith("tagpatch.")]
    return found


def test_the_simulator_never_imports_the_declaration_or_any_of_tagpatch() -> None:
    """The simulated account judges tagpatch from AWS's rules, so it must not share tagpatch's facts."""
    simulator = REPO_ROOT / "local" / "tagpatch_local" / "simulator"
    imported = {
        str(path.relative_to(REPO_ROOT)): names
        for path in sorted(simulator.rglob("*.py"))
        if (names := tagpatch_imports(path.read_text(encoding="utf-8")))
    }
    assert imported == {}
    assert tagpatch_imports("from tagpatch.workflow import STEPS\nimport tagpatch_local\n") == ["tagpatch.workflow"]


MERMAID_NODE = re.compile(r"(\w+)(?:\[|\{\{|\(\()([A-Za-z]+)")
FAILURE_EDGE = re.compile(r"^\s*([\w& ]+?)\s*-\. failure \.->\s*(\w+)", flags=re.MULTILINE)


def caught_into(definition: Mapping[str, Any], target: str) -> set[str]:
    """Top-level states whose Catch leads to target, directly or through Pass states."""
    states = definition["States"]

    def reaches(name: str) -> bool:
        while name != target:
            state = states[name]
            if state["Type"] != "Pass" or "Next" not in state:
                return False
            name = state["Next"]
        return True

    return {name for name, state in states.items() if any(reaches(c["Next"]) for c in state.get("Catch", []))}


def failure_edge_problems(readme: str, definition: Mapping[str, Any]) -> list[str]:
    diagram = MERMAID.search(readme)
    assert diagram is not None
    node_of = {label: node for node, label in MERMAID_NODE.findall(diagram.group(1))}
    drawn = {
        source.strip()
        for sources, target in FAILURE_EDGE.findall(diagram.group(1))
        if target == node_of.get("ReportFailure")
        for source in sources.split("&")
    }
    return [
        f"README.md: the mermaid diagram has no failure edge from {name} to ReportFailure; {REGENERATE}"
        for name in sorted(caught_into(definition, "ReportFailure"))
        if node_of.get(name) not in drawn
    ]


def test_the_readme_diagram_shows_each_state_whose_failure_is_reported(readme: str, definition: dict[str, Any]) -> None:
    assert failure_edge_problems(readme, definition) == []
    assert "Discovery" in caught_into(definition, "ReportFailure")


def test_a_readme_diagram_missing_a_failure_edge_is_reported(readme: str, definition: dict[str, Any]) -> None:
    changed = readme.replace(" & ReleaseCycle -. failure .->", " -. failure .->")
    assert failure_edge_problems(changed, definition) == [
        f"README.md: the mermaid diagram has no failure edge from ReleaseCycle to ReportFailure; {REGENERATE}"
    ]


def act_in_problems(step: Step, source: str) -> list[str]:
    """A handler that reads the cycle acts in its target as its own step (tagpatch.aws.act_in), so its
    EC2 and SSM calls go through that step's spoke role, tagpatch-spoke-<step>."""
    path = f"{step.code_dir}app.py"
    calls = [
        node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "act_in"
    ]
    wanted = f'act_in(cycle.target, "{step.name}")'
    if [ast.unparse(call).replace("'", '"') for call in calls] != [wanted]:
        return [f"{path}: call {wanted} once, right after reading the cycle and before any AWS call"]
    return []


def test_each_handler_that_reads_the_cycle_acts_in_its_target_as_its_own_step() -> None:
    # PrepareCycle makes the cycle (its calls are the hub's own); ReportFailure only publishes the alert.
    acting = [step for step in STEPS if "cycle" in step.reads and step.name != "ReportFailure"]
    assert {step.name for step in acting} >= {"Discovery", "WindowUpsert", "ApplyWindowChanges", "PatchMonitoring"}
    problems = []
    for step in acting:
        problems += act_in_problems(step, (REPO_ROOT / step.code_dir / "app.py").read_text(encoding="utf-8"))
    assert not problems, "\n".join(problems)


def test_a_handler_acting_as_another_step_is_found() -> None:
    step = next(step for step in STEPS if step.name == "Discovery")
    wrong = 'def lambda_handler(event, context):\n    cycle = read(event)\n    act_in(cycle.target, "WindowUpsert")\n'
    assert act_in_problems(step, wrong)
    assert act_in_problems(step, "def lambda_handler(event, context):\n    pass\n")
