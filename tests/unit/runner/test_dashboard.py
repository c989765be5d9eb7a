"""The operators' CloudWatch dashboard (template.yaml OperatorDashboard): it graphs only metrics tagpatch
emits (read from the code's add_metric calls) or AWS emits for this stack's resources, and its alarm
widget lists every alarm of the stack. The simulated account creates it as CloudFormation would."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tagpatch.outcomes import OUTCOMES
from tagpatch_local.runner import SimulatedAccount
from tagpatch_local.template import Template, resolve

REPO_ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = REPO_ROOT / "template.yaml"
DASHBOARD = "OperatorDashboard"

# A metric named by an f-string (f"Outcome_{outcome}"): its prefix -> the declared values it is built from.
NAME_VALUES: Mapping[str, tuple[str, ...]] = {"Outcome_": OUTCOMES}


def emitted_metric_names() -> tuple[set[str], set[str]]:
    """(exact names, f-string prefixes) of every Powertools add_metric call in the functions and the layer."""
    exact: set[str] = set()
    prefixes: set[str] = set()
    sources = [*REPO_ROOT.glob("functions/*/app.py"), *REPO_ROOT.glob("layers/tagpatch/tagpatch/*.py")]
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_metric"
            ):
                continue
            name = next(keyword.value for keyword in node.keywords if keyword.arg == "name")
            if isinstance(name, ast.Constant):
                exact.add(str(name.value))
            elif isinstance(name, ast.JoinedStr) and isinstance(name.values[0], ast.Constant):
                prefixes.add(str(name.values[0].value))
            else:
                pytest.fail(f"{path}: an add_metric name this test cannot read: {ast.unparse(name)}")
    return exact, prefixes


def is_emitted(metric: str, exact: set[str], prefixes: set[str]) -> bool:
    if metric in exact:
        return True
    return any(
        metric.startswith(prefix) and metric.removeprefix(prefix) in NAME_VALUES.get(prefix, ()) for prefix in prefixes
    )


def graphed_metrics(body: Mapping[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """(namespace, metric name, dimensions) of every metric a metric widget graphs."""
    found = []
    for widget in body["widgets"]:
        if widget["type"] != "metric":
            continue
        for row in widget["properties"]["metrics"]:
            fields = [item for item in row if isinstance(item, str)]
            namespace, metric, *pairs = fields
            found.append((namespace, metric, dict(zip(pairs[::2], pairs[1::2], strict=True))))
    return found


def alarm_widget_arns(body: Mapping[str, Any]) -> list[str]:
    return [arn for widget in body["widgets"] if widget["type"] == "alarm" for arn in widget["properties"]["alarms"]]


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.load(TEMPLATE)


@pytest.fixture(params=["false", "true"], ids=["without-config-rules", "with-config-rules"])
def deployed(request: pytest.FixtureRequest) -> Iterator[SimulatedAccount]:
    """The stack deployed with and without the Config rules (whose alarm exists only with them)."""
    with SimulatedAccount(TEMPLATE, parameter_overrides={"ConfigRules": request.param}) as simulated:
        yield simulated


def deployed_body(account: SimulatedAccount) -> dict[str, Any]:
    name = account.physical_id(DASHBOARD)
    answer = account.client("cloudwatch").get_dashboard(DashboardName=name)
    assert answer["DashboardName"] == name
    body: dict[str, Any] = json.loads(answer["DashboardBody"])
    return body


def test_the_emitted_names_are_read_from_the_code() -> None:
    # Guards the reader: names known to be emitted are found, a made-up one is not.
    exact, prefixes = emitted_metric_names()
    assert {"ChangesRejected", "PlanShortfalls", "CyclesRefused"} <= exact
    assert "Outcome_" in prefixes
    assert is_emitted("Outcome_patched", exact, prefixes)
    assert not is_emitted("Outcome_exploded", exact, prefixes)
    assert not is_emitted("ChangesRejectedd", exact, prefixes)


def test_every_alarm_of_the_template_is_named_in_the_dashboard(template: Template) -> None:
    alarms = {
        logical_id
        for logical_id in template.resources
        if template.resource_type(logical_id) == "AWS::CloudWatch::Alarm"
    }
    text, variables = template.resources[DASHBOARD]["Properties"]["DashboardBody"]["Fn::Sub"]
    named = set(re.findall(r"\$\{(\w+)\.Arn\}", text + json.dumps(variables)))
    assert alarms
    assert named == alarms


@pytest.mark.slow  # deploys the whole stack, with and without the Config rules (~2.3 s)
def test_the_simulated_account_creates_the_dashboard_and_it_shows_what_the_stack_has(
    deployed: SimulatedAccount, template: Template
) -> None:
    body = deployed_body(deployed)
    cloudwatch = deployed.client("cloudwatch")

    # The alarm widget lists exactly the stack's alarms (the Config recorder's only when it exists).
    stack_alarms = {alarm["AlarmArn"] for alarm in cloudwatch.describe_alarms()["MetricAlarms"]}
    assert stack_alarms
    assert sorted(alarm_widget_arns(body)) == sorted(stack_alarms)

    # tagpatch's own metrics: Powertools' namespace and service dimension, and a name the code emits.
    environment = template.document["Globals"]["Function"]["Environment"]["Variables"]
    namespace, service = environment["POWERTOOLS_METRICS_NAMESPACE"], environment["POWERTOOLS_SERVICE_NAME"]
    exact, prefixes = emitted_metric_names()
    metrics = graphed_metrics(body)
    own = [(name, dimensions) for space, name, dimensions in metrics if space == namespace]
    assert {name for name, _ in own} >= {f"Outcome_{outcome}" for outcome in ("patched", "failed", "missed")}
    for name, dimensions in own:
        assert is_emitted(name, exact, prefixes), name
        assert dimensions == {"service": service}, name

    # AWS's metrics: dimensions that are this stack's resources as deployed.
    queues = {deployed.physical[(queue, "QueueName")] for queue in ("ReminderDeadLetterQueue", "EventDeadLetterQueue")}
    functions = {deployed.physical_id(function) for function in template.functions() if deployed.enabled(function)}
    expected_dimension = {
        "AWS/States": ("StateMachineArn", {deployed.state_machine_arn, deployed.org_cycle_arn}),
        "AWS/SQS": ("QueueName", queues),
        "AWS/Lambda": ("FunctionName", functions),
    }
    for space, name, dimensions in metrics:
        if space == namespace:
            continue
        dimension, allowed = expected_dimension[space]
        assert list(dimensions) == [dimension], (space, name)
        assert dimensions[dimension] in allowed, (space, name, dimensions)
    assert {name for space, name, _ in metrics if space == "AWS/States"} >= {
        "ExecutionsSucceeded",
        "ExecutionsFailed",
        "ExecutionTime",
    }
    reminder_queue = deployed.physical[("ReminderDeadLetterQueue", "QueueName")]
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": reminder_queue}) in metrics


def test_the_dashboard_name_is_the_stacks_in_its_region(template: Template) -> None:
    # Dashboards are global to the account: the same stack deployed in two regions needs two names.
    def name_in(region: str) -> str:
        pseudo = {"AWS::StackName": "tagpatch", "AWS::Region": region}
        return str(resolve(template.resources[DASHBOARD]["Properties"]["DashboardName"], lambda ref, _: pseudo[ref]))

    assert name_in("us-east-1") != name_in("eu-west-1")
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,255}", name_in("ap-southeast-2"))  # PutDashboard's allowed characters
