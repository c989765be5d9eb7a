"""template.yaml and the ASL agree, and the local runner's reading of the template is SAM's."""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tagpatch.export import LATEST_REPORT_KEY, latest_key
from tagpatch.lease import LEASE_KEY, LEASE_SECONDS, lease_key
from tagpatch.ssm_baselines import LEDGER_KEY
from tagpatch.targets import Target
from tagpatch.trend import TREND_KEY
from tagpatch.workflow import ORG_CYCLE, PATCH_CYCLE, STEPS
from tagpatch_local.template import (
    SUB_PLACEHOLDER,
    FunctionSpec,
    Template,
    TemplateError,
    load_template,
    resolve,
    substitute_definition,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"

LAMBDA_INVOKE = "arn:${Partition}:states:::lambda:invoke"
LAMBDA_TRANSIENT_ERRORS = frozenset(
    {
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    }
)
# PrepareCycle fails fast (bad input, or another cycle running); ReportFailure is the failure path.
# ReportFailure and ReleaseAfterFailure are the failure path itself: each goes on to CycleFailed.
NOT_CAUGHT = frozenset({"PrepareCycle", "ReportFailure", "ReleaseAfterFailure"})
CYCLE_FUNCTIONS = frozenset(step.function for step in STEPS if step.machine == PATCH_CYCLE)


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.load(TEMPLATE_PATH)


@pytest.fixture(scope="module")
def functions(template: Template) -> dict[str, FunctionSpec]:
    return template.functions()


@pytest.fixture(scope="module")
def definition_text(template: Template) -> str:
    return template.state_machine().definition_path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def states(definition_text: str) -> dict[str, Any]:
    states: dict[str, Any] = json.loads(definition_text)["States"]
    return states


def task_states(states: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every Task state, including those inside a Map's ItemProcessor."""
    found = {}
    for name, state in states.items():
        if state["Type"] == "Task":
            found[name] = state
        elif state["Type"] == "Map":
            found.update(task_states(state["ItemProcessor"]["States"]))
    return found


# --- functions ------------------------------------------------------------------------------------


def test_functions_are_every_serverless_function(template: Template, functions: dict[str, FunctionSpec]) -> None:
    declared = {
        logical_id
        for logical_id, resource in template.resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert set(functions) == declared
    assert set(functions) >= CYCLE_FUNCTIONS


def test_globals_environment_is_merged_into_every_function(functions: dict[str, FunctionSpec]) -> None:
    for spec in functions.values():
        assert spec.environment["POWERTOOLS_SERVICE_NAME"] == "tagpatch", spec.logical_id
        assert spec.environment["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}, spec.logical_id
    # ...and a function's own variables are added, not substituted for the globals.
    tag_validation = functions["TagValidationFunction"].environment
    assert tag_validation["ARTIFACT_BUCKET"] == {"Ref": "ArtifactBucket"}
    assert tag_validation["PATCH_POLICY_PATH"] == "/opt/patch-policy.yaml"
    assert functions["ReportFailureFunction"].environment["ALERTS_TOPIC_ARN"] == {"Ref": "AlertsTopic"}
    assert "ALERTS_TOPIC_ARN" not in functions["PrepareCycleFunction"].environment


def test_layers_are_appended_to_the_global_ones(functions: dict[str, FunctionSpec]) -> None:
    assert functions["TagValidationFunction"].layer_ids == ("TagpatchLayer", "PatchPolicyLayer")
    assert functions["PrepareCycleFunction"].layer_ids == ("TagpatchLayer",)
    for spec in functions.values():
        assert spec.layer_ids[0] == "TagpatchLayer", spec.logical_id


def test_timeout_and_memory_fall_back_to_globals(functions: dict[str, FunctionSpec]) -> None:
    assert (functions["PrepareCycleFunction"].timeout, functions["PrepareCycleFunction"].memory) == (30, 256)
    # Timeout from Globals, MemorySize its own.
    assert (functions["DiscoveryFunction"].timeout, functions["DiscoveryFunction"].memory) == (900, 1769)
    # Both from Globals.
    assert (functions["WindowUpsertFunction"].timeout, functions["WindowUpsertFunction"].memory) == (900, 256)


# Resident memory of Python 3.13 with boto3, botocore, Powertools and tagpatch imported and three
# clients made, measured with getrusage on the benchmark machine (docs/performance.md).
BASELINE_MIB = 92


def test_memory_is_twice_the_footprint_measured_at_100000_instances(functions: dict[str, FunctionSpec]) -> None:
    figures = json.loads((REPO_ROOT / "benchmarks" / "results" / "cycle-100000.json").read_text())
    checked = set()
    for label in ("first_cycle", "after_window_runs", "rerun"):
        for name, entry in figures[label]["functions"].items():
            footprint_mib = BASELINE_MIB + entry["peak_mib"]
            assert functions[name].memory >= 2 * footprint_mib, (name, entry)
            checked.add(name)
    assert {"DiscoveryFunction", "PatchMonitoringFunction", "ComplianceExportFunction"} <= checked


ONE_VCPU_MB = 1769  # Lambda gives a function one full vCPU at 1,769 MB


def test_every_function_with_more_than_5_s_of_cpu_at_100000_instances_has_one_full_vcpu(
    functions: dict[str, FunctionSpec],
) -> None:
    figures = json.loads((REPO_ROOT / "benchmarks" / "results" / "cycle-100000.json").read_text())
    longest: dict[str, float] = {}
    for label in ("first_cycle", "after_window_runs", "rerun"):
        for name, entry in figures[label]["functions"].items():
            longest[name] = max(longest.get(name, 0.0), entry["max_seconds"])
    cpu_bound = {name for name, seconds in longest.items() if seconds > 5}
    assert {name for name in cpu_bound if functions[name].memory < ONE_VCPU_MB} == set()
    assert "DiscoveryFunction" in cpu_bound


def test_the_config_tag_rule_has_twice_its_measured_daily_run_at_100000_instances(
    functions: dict[str, FunctionSpec],
) -> None:
    figures = json.loads((REPO_ROOT / "benchmarks" / "results" / "config-periodic-100000.json").read_text())
    rule = functions["ConfigTagRuleFunction"]
    assert rule.timeout >= 2 * figures["periodic_handler_seconds"]
    assert rule.memory >= ONE_VCPU_MB


def test_layer_dirs_exist(template: Template) -> None:
    assert template.layer_dir("TagpatchLayer") == REPO_ROOT / "layers" / "tagpatch"
    assert (template.layer_dir("PatchPolicyLayer") / "patch-policy.yaml").is_file()
    with pytest.raises(TemplateError, match=r"ArtifactBucket is a AWS::S3::Bucket, not a layer"):
        template.layer_dir("ArtifactBucket")


def test_every_function_handler_exists(functions: dict[str, FunctionSpec]) -> None:
    for spec in functions.values():
        module, _, function = spec.handler.rpartition(".")
        assert (module, function) == ("app", "lambda_handler"), spec.logical_id
        source = spec.code_dir / f"{module}.py"
        assert source.is_file(), f"{spec.logical_id}: {source} is missing"
        tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
        defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert function in defined, f"{spec.logical_id}: {source} defines no {function}()"


def test_resource_type(template: Template) -> None:
    assert template.resource_type("PatchCycleStateMachine") == "AWS::Serverless::StateMachine"
    with pytest.raises(TemplateError, match=r"template.yaml has no resource 'Nope'"):
        template.resource_type("Nope")


def test_parameter_defaults(template: Template) -> None:
    defaults = template.parameter_defaults()
    assert (defaults["CycleHourUtc"], defaults["CycleSchedule"]) == ("5", "")
    assert defaults["AlertEmail"] == ""
    assert defaults["ArtifactRetentionDays"] == "90"


def test_load_template_rejects_a_non_template(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text("Description: no resources here\n", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"not a CloudFormation template \(no Resources\)"):
        load_template(path)


def test_short_form_intrinsics_are_read_as_long_form(template: Template) -> None:
    resources = template.resources
    assert resources["ArtifactBucketPolicy"]["Properties"]["Bucket"] == {"Ref": "ArtifactBucket"}
    statement = resources["ArtifactBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert statement["Resource"] == [
        {"Fn::GetAtt": ["ArtifactBucket", "Arn"]},
        {"Fn::Sub": "${ArtifactBucket.Arn}/*"},
    ]
    assert template.document["Conditions"]["HasAlertEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlertEmail"}, ""]}]
    }


# --- the state machine and its substitutions ------------------------------------------------------


def test_every_placeholder_has_a_substitution_and_every_substitution_is_used(
    template: Template, definition_text: str
) -> None:
    placeholders = set(SUB_PLACEHOLDER.findall(definition_text))
    substitutions = set(template.state_machine().substitutions)
    assert placeholders, "the ASL uses no ${...} placeholders at all"
    assert placeholders - substitutions == set(), "placeholders without a DefinitionSubstitutions entry"
    assert substitutions - placeholders == set(), "DefinitionSubstitutions the ASL never uses"


def test_every_lambda_task_invokes_a_function_of_this_template(
    template: Template, functions: dict[str, FunctionSpec], states: dict[str, Any]
) -> None:
    substitutions = template.state_machine().substitutions
    invoked = set()
    for name, state in task_states(states).items():
        assert state["Resource"] == LAMBDA_INVOKE, name
        function_name = state["Parameters"]["FunctionName"]
        placeholder = SUB_PLACEHOLDER.fullmatch(function_name)
        assert placeholder, f"{name}: FunctionName {function_name!r} is not a ${{...}} substitution"
        key = placeholder.group(1)
        assert key.endswith("FunctionArn"), f"{name}: {key}"
        value = substitutions[key]
        assert isinstance(value, dict) and set(value) == {"Fn::GetAtt"}, f"{name}: {key} = {value!r}"
        logical_id, attribute = value["Fn::GetAtt"]
        assert attribute == "Arn", f"{name}: {key}"
        assert logical_id in functions, f"{name}: {logical_id} is not an AWS::Serverless::Function"
        assert key == f"{logical_id}Arn"
        invoked.add(logical_id)
    assert invoked == CYCLE_FUNCTIONS


def test_every_task_but_prepare_and_report_catches_everything_and_keeps_its_input(
    states: dict[str, Any],
) -> None:
    top_level = {name: state for name, state in states.items() if state["Type"] in {"Task", "Map"}}
    caught = {name: state for name, state in top_level.items() if name not in NOT_CAUGHT}
    # Every top-level state the workflow declares (tagpatch.workflow) is caught, but the failure path's own.
    declared = {state for step in STEPS for state in step.invoked_by if state in states}
    assert declared - NOT_CAUGHT <= set(caught)
    assert "ApplyWindowChanges" in caught  # the Map around ApplyWindow
    for name, state in caught.items():
        catchers = [c for c in state.get("Catch", []) if "States.ALL" in c["ErrorEquals"]]
        assert len(catchers) == 1, f"{name} has no Catch on States.ALL"
        result_path = catchers[0].get("ResultPath")
        # Without a ResultPath (or with "$") the error would replace the state's input, cycle and all.
        assert isinstance(result_path, str), f"{name}: Catch has no ResultPath"
        assert result_path.startswith("$.") and result_path != "$", f"{name}: {result_path}"
        # The handler records which state failed and goes on to ReportFailure.
        handler = states[catchers[0]["Next"]]
        assert handler["Type"] == "Pass", name
        assert handler["Result"] == name
        assert handler["ResultPath"] == "$.failed_state"
        assert handler["Next"] == "ReportFailure"


def test_a_window_that_fails_to_apply_is_recorded_and_the_map_goes_on(states: dict[str, Any]) -> None:
    inner = states["ApplyWindowChanges"]["ItemProcessor"]["States"]
    (catcher,) = inner["ApplyWindow"]["Catch"]
    assert catcher["ErrorEquals"] == ["States.ALL"]
    assert catcher["ResultPath"] == "$.error"
    recorder = inner[catcher["Next"]]
    assert recorder["Type"] == "Pass" and recorder["End"] is True
    assert recorder["Parameters"] == {"window.$": "$.window", "error.$": "$.error.Error", "cause.$": "$.error.Cause"}
    assert states["ApplyWindowChanges"]["MaxConcurrency"] >= 1


def test_prepare_cycle_failure_is_not_caught(states: dict[str, Any]) -> None:
    """A bad execution input fails the execution at once, with InvalidCycleInput as its error."""
    assert "Catch" not in states["PrepareCycle"]


def test_every_task_retries_transient_errors_with_full_jitter(states: dict[str, Any]) -> None:
    for name, state in task_states(states).items():
        retriers = state["Retry"]
        retried = {error for retrier in retriers for error in retrier["ErrorEquals"]}
        assert retried >= LAMBDA_TRANSIENT_ERRORS, name
        assert "States.ALL" not in retried, f"{name} retries every error, including bad input"
        assert "InvalidCycleInput" not in retried, name
        if name != "PrepareCycle":
            assert "TransientAwsError" in retried, name
        for retrier in retriers:
            assert retrier["JitterStrategy"] == "FULL", f"{name}: {retrier['ErrorEquals']}"
            assert retrier["MaxAttempts"] >= 2, name


def test_report_failure_releases_the_lease_and_ends_in_the_original_error(states: dict[str, Any]) -> None:
    assert states["ReportFailure"]["Next"] == "ReleaseAfterFailure"
    assert [c["Next"] for c in states["ReportFailure"]["Catch"]] == ["ReleaseAfterFailure"]
    release = states["ReleaseAfterFailure"]
    assert release["Next"] == "CycleFailed"
    # A release that fails keeps the original $.error, which CycleFailed ends in.
    assert [(c["ErrorEquals"], c["ResultPath"], c["Next"]) for c in release["Catch"]] == [
        (["States.ALL"], "$.lease_release_error", "CycleFailed")
    ]
    assert release["ResultPath"] == "$.lease_release"
    assert states["CycleFailed"] == {
        "Type": "Fail",
        "ErrorPath": "$.error.Error",
        "CausePath": "$.error.Cause",
    }


# --- resolve() ------------------------------------------------------------------------------------

PHYSICAL = {
    ("ArtifactBucket", None): "tagpatch-artifacts-1a2b",
    ("ArtifactBucket", "Arn"): "arn:aws:s3:::tagpatch-artifacts-1a2b",
    ("Bucket", "Arn"): "arn:aws:s3:::bucket",
    ("AlertsKey", "Arn"): "arn:aws:kms:us-east-1:123456789012:key/k",
    ("AWS::Region", None): "us-east-1",
    ("AWS::AccountId", None): "123456789012",
    ("AWS::Partition", None): "aws",
    ("LogLevel", None): "INFO",
}


def resolver(logical_id: str, attribute: str | None) -> str:
    return PHYSICAL[(logical_id, attribute)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"Ref": "ArtifactBucket"}, "tagpatch-artifacts-1a2b"),
        ({"Fn::GetAtt": ["AlertsKey", "Arn"]}, "arn:aws:kms:us-east-1:123456789012:key/k"),
        ({"Fn::Sub": "tagpatch-${AWS::Region}-${AWS::AccountId}"}, "tagpatch-us-east-1-123456789012"),
        ({"Fn::Sub": "${Bucket.Arn}/runs/*"}, "arn:aws:s3:::bucket/runs/*"),
        (
            {"Fn::Sub": ["${Name}/${Key}-${AWS::Region}", {"Name": {"Ref": "ArtifactBucket"}, "Key": "k"}]},
            "tagpatch-artifacts-1a2b/k-us-east-1",
        ),
        (
            {"Fn::Sub": ["arn:${AWS::Partition}:x:::${Level}", {"Level": {"Ref": "LogLevel"}}]},
            "arn:aws:x:::INFO",
        ),
        (
            {"Fn::Join": ["/", [{"Fn::GetAtt": ["ArtifactBucket", "Arn"]}, "runs", {"Ref": "LogLevel"}]]},
            "arn:aws:s3:::tagpatch-artifacts-1a2b/runs/INFO",
        ),
        ({"Fn::Join": ["", []]}, ""),
        ("plain", "plain"),
        (7, 7),
        (
            {"Variables": {"A": {"Ref": "LogLevel"}, "B": [{"Ref": "AWS::Region"}, "x"]}},
            {"Variables": {"A": "INFO", "B": ["us-east-1", "x"]}},
        ),
        ({"A": {"Ref": "LogLevel"}, "B": "b"}, {"A": "INFO", "B": "b"}),
    ],
    ids=[
        "ref",
        "getatt",
        "sub-pseudo",
        "sub-getatt",
        "sub-list",
        "sub-list-pseudo",
        "join",
        "join-empty",
        "str",
        "int",
        "nested",
        "two-keys",
    ],
)
def test_resolve(value: Any, expected: Any) -> None:
    assert resolve(value, resolver) == expected


def test_resolve_a_policy_resource_from_the_template(template: Template) -> None:
    props = template.resources["DiscoveryFunction"]["Properties"]
    statement = next(s for s in props["Policies"][0]["Statement"] if s["Sid"] == "WriteAndReadRunArtifacts")
    resource = statement["Resource"]
    assert resolve(resource, resolver) == "arn:aws:s3:::tagpatch-artifacts-1a2b/runs/*"


def test_resolve_refuses_intrinsics_it_cannot_evaluate() -> None:
    with pytest.raises(TemplateError, match=r"does not evaluate Fn::Select"):
        resolve({"Fn::Select": [0, ["a"]]}, resolver)


# --- substitute_definition() ----------------------------------------------------------------------


def test_substitute_definition_keeps_jsonpath_untouched() -> None:
    text = json.dumps(
        {
            "FunctionName": "${PrepareCycleFunctionArn}",
            "input.$": "$",
            "execution_id.$": "$$.Execution.Id",
            "cycle.$": "$.cycle",
        }
    )
    result = json.loads(substitute_definition(text, {"PrepareCycleFunctionArn": "arn:aws:lambda:fn"}))
    assert result == {
        "FunctionName": "arn:aws:lambda:fn",
        "input.$": "$",
        "execution_id.$": "$$.Execution.Id",
        "cycle.$": "$.cycle",
    }


def test_substitute_definition_of_the_real_asl(template: Template, definition_text: str) -> None:
    substitutions = {
        key: f"arn:aws:lambda:us-east-1:123456789012:function:{key}" for key in template.state_machine().substitutions
    }
    result = substitute_definition(definition_text, substitutions)
    assert "${" not in result
    assert "$$.Execution.StartTime" in result
    states = json.loads(result)["States"]
    assert states["Discovery"]["Parameters"]["FunctionName"].endswith(":function:DiscoveryFunctionArn")


def test_substitute_definition_names_a_missing_substitution() -> None:
    with pytest.raises(TemplateError, match=r"uses \$\{DiscoveryFunctionArn\}, which DefinitionSubstitutions lacks"):
        substitute_definition('{"FunctionName": "${DiscoveryFunctionArn}"}', {"Other": "x"})


def test_substitute_definition_rejects_a_substitution_that_breaks_the_json() -> None:
    with pytest.raises(json.JSONDecodeError):
        substitute_definition('{"FunctionName": "${Fn}"}', {"Fn": 'a"b'})


def test_a_hung_cycle_times_out_and_raises_an_alarm(template: Template) -> None:
    definition = json.loads(template.state_machine().definition_path.read_text())
    assert 0 < definition["TimeoutSeconds"] <= 24 * 3600
    alarm = template.resources["CycleTimedOutAlarm"]["Properties"]
    assert alarm["MetricName"] == "ExecutionsTimedOut"
    assert alarm["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": "PatchCycleStateMachine"}}]
    assert alarm["AlarmActions"] == [{"Ref": "AlertsTopic"}]


def test_function_logs_have_a_retention(template: Template) -> None:
    logging = template.document["Globals"]["Function"]["LoggingConfig"]
    assert logging["LogFormat"] == "JSON"
    group = template.resources[logging["LogGroup"]["Ref"]]
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


@pytest.mark.parametrize(
    ("alarm_name", "function"),
    [("ChangesRejectedAlarm", "report_failure"), ("PlanShortfallsAlarm", "window_upsert")],
)
def test_an_alarm_watches_the_metric_its_function_emits(template: Template, alarm_name: str, function: str) -> None:
    alarm = template.resources[alarm_name]["Properties"]
    environment = template.global_environment()
    assert alarm["Namespace"] == environment["POWERTOOLS_METRICS_NAMESPACE"]
    assert alarm["Dimensions"] == [{"Name": "service", "Value": environment["POWERTOOLS_SERVICE_NAME"]}]
    source = (REPO_ROOT / "functions" / function / "app.py").read_text()
    assert f'name="{alarm["MetricName"]}"' in source
    assert alarm["AlarmActions"] == [{"Ref": "AlertsTopic"}]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")


def _path(states: Mapping[str, Any], start: str, end: str) -> list[str]:
    """The states from start to end, following each Next (a Choice by its first rule: the way on)."""
    path = [start]
    while path[-1] != end:
        state = states[path[-1]]
        path.append(state["Next"] if "Next" in state else state["Choices"][0]["Next"])
        assert len(path) <= len(states), f"{end} is not reached from {start}"
    return path


def test_a_rejected_window_ends_the_cycle_failed_after_the_registrations(states: dict[str, Any]) -> None:
    # Registrations, reminders, monitoring and the compliance export run whether or not a window was
    # rejected, in this order (other states may come between them); then the cycle fails.
    after_the_map = _path(states, states["ApplyWindowChanges"]["Next"], "FindRejectedWindows")
    registrations_to_export = [
        "BaselineAssociation",
        "PrePatchNotification",
        "MonitoringReads",
        "PatchMonitoring",
        "ComplianceExport",
    ]
    assert [name for name in after_the_map if name in registrations_to_export] == registrations_to_export
    assert not any(states[name]["Type"] == "Choice" and name != "MonitoringRead" for name in after_the_map)
    choice = states[states["FindRejectedWindows"]["Next"]]
    (rule,) = choice["Choices"]
    assert choice["Default"] == "ReleaseCycle"
    assert states["ReleaseCycle"]["Next"] == "CycleComplete"
    rejected = states[rule["Next"]]
    assert rejected["Result"]["Error"] == "WindowChangesRejected"
    assert states[rejected["Next"]]["Next"] == "ReportFailure"
    assert states["ReportFailure"]["Next"] == "ReleaseAfterFailure"
    assert states["ReleaseAfterFailure"]["Next"] == "CycleFailed"


def test_the_cycle_lease_lasts_as_long_as_the_state_machine_lets_an_execution_run() -> None:
    # A lease never outlives its execution, and a crashed execution's lease expires when it is over.
    definition = json.loads((REPO_ROOT / "statemachines" / "patch_cycle.asl.json").read_text())
    assert definition["TimeoutSeconds"] == LEASE_SECONDS


def test_the_policy_defaults_to_the_stacks_own_baselines_with_compliance_levels(template: Template) -> None:
    policy = yaml.safe_load((REPO_ROOT / "policy" / "patch-policy.yaml").read_text())
    environment = template.functions()["BaselineAssociationFunction"].environment
    text = environment["CUSTOM_BASELINE_IDS"]["Fn::Sub"]
    ids = json.loads(SUB_PLACEHOLDER.sub(lambda match: match.group(1), text))
    baselines = {
        resource["Properties"]["Name"]: resource["Properties"]
        for resource in template.resources.values()
        if resource["Type"] == "AWS::SSM::PatchBaseline"
    }
    for operating_system, choice in policy["baselines"].items():
        assert choice.startswith("custom:"), operating_system
        name = choice.removeprefix("custom:")
        assert ids[name] in {
            logical for logical, r in template.resources.items() if r["Type"].endswith("PatchBaseline")
        }
        baseline = baselines[name]
        assert baseline["OperatingSystem"] == operating_system
        for rule in baseline["ApprovalRules"]["PatchRules"]:
            assert rule["ComplianceLevel"] not in (None, "UNSPECIFIED"), (name, rule)


def test_the_recorder_check_asks_for_exactly_what_the_deployed_config_rules_evaluate_from(
    template: Template, functions: dict[str, FunctionSpec]
) -> None:
    condition, with_patch_rule, without = functions["ConfigTagRuleFunction"].environment["CONFIG_RECORDED_TYPES"][
        "Fn::If"
    ]
    assert condition == template.resources["PatchComplianceRule"]["Condition"]
    rules = {
        logical_id: resource
        for logical_id, resource in template.resources.items()
        if resource["Type"] == "AWS::Config::ConfigRule"
    }

    def scopes(include_patch_rule: bool) -> set[str]:
        return {
            kind
            for logical_id, rule in rules.items()
            if include_patch_rule or logical_id != "PatchComplianceRule"
            for kind in rule["Properties"]["Scope"]["ComplianceResourceTypes"]
        }

    assert set(with_patch_rule.split(",")) == scopes(True)
    assert set(without.split(",")) == scopes(False)


def test_every_prefix_rewritten_each_cycle_expires_its_noncurrent_versions(template: Template) -> None:
    # The bucket is versioned, so each rewrite keeps the old version: the ledgers and watermark under
    # state/, the cycle lease under locks/ (taken and released every cycle), the latest compliance
    # export and the compliance trend, and SSM's resource data sync objects. Each must have noncurrent
    # versions expire.
    sync = template.resources["PatchResourceDataSync"]["Properties"]["S3Destination"]["BucketPrefix"]
    keys = [
        LEDGER_KEY,
        LEASE_KEY,
        lease_key(Target("222222222222", "eu-west-1"), None),  # a member target's own lease
        latest_key(Target("222222222222", "eu-west-1")),
        LATEST_REPORT_KEY,
        TREND_KEY,
        "state/monitoring-watermark.json",
        f"{sync}/x",
    ]
    rules = template.resources["ArtifactBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    for key in keys:
        covering = [r for r in rules if r["Status"] == "Enabled" and key.startswith(r.get("Prefix", "\0"))]
        assert any("NoncurrentVersionExpiration" in r for r in covering), key
    lock_rule = next(r for r in rules if LEASE_KEY.startswith(r.get("Prefix", "\0")))
    # A released lease leaves a delete marker each cycle; with its versions gone it is removed too.
    assert lock_rule["ExpiredObjectDeleteMarker"] is True
    assert "ExpirationInDays" not in next(r for r in rules if LEDGER_KEY.startswith(r.get("Prefix", "\0")))


def test_every_event_rule_and_schedule_target_has_a_dead_letter_queue_and_a_retry_policy(template: Template) -> None:
    resources = template.resources
    targets = [
        (logical_id, target)
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::Events::Rule"
        for target in resource["Properties"]["Targets"]
    ]
    schedules = [
        (logical_id, event["Properties"])
        for logical_id, resource in resources.items()
        for event in resource.get("Properties", {}).get("Events", {}).values()
        if event["Type"] == "ScheduleV2"
    ]
    assert targets and schedules
    for logical_id, target in [*targets, *schedules]:
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["EventDeadLetterQueue", "Arn"]}}, logical_id
        assert {"MaximumRetryAttempts", "MaximumEventAgeInSeconds"} <= set(target["RetryPolicy"]), logical_id
    # EventBridge sends a rule's dead letters as events.amazonaws.com, which the queue's policy must allow
    # for that rule (EventBridge User Guide, "Using dead-letter queues"); Scheduler sends with the
    # schedule's role, which must be allowed sqs:SendMessage.
    (statement,) = resources["EventDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    allowed = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    rules = {logical_id for logical_id, _ in targets}
    assert {json.dumps(arn, sort_keys=True) for arn in allowed} >= {
        json.dumps({"Fn::GetAtt": [rule, "Arn"]}, sort_keys=True)
        for rule in rules
        if "Condition" not in resources[rule]
    }
    for _, schedule in schedules:
        role = resources[schedule["RoleArn"]["Fn::GetAtt"][0]]["Properties"]
        granted = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
        assert any(
            s["Action"] == "sqs:SendMessage" and s["Resource"] == {"Fn::GetAtt": ["EventDeadLetterQueue", "Arn"]}
            for s in granted
        )


def test_the_daily_cycle_runs_at_an_hour_the_template_parameter_chooses_not_at_deploy_time(
    template: Template,
) -> None:
    # rate(1 day) would count from the moment of deploy; a cron at a chosen UTC hour does not.
    parameters = template.document["Parameters"]
    hour = parameters["CycleHourUtc"]
    assert (hour["Type"], hour["MinValue"], hour["MaxValue"]) == ("Number", 0, 23)
    assert parameters["CycleSchedule"]["Default"] == ""  # an optional override, e.g. hourly
    # The schedule starts the org cycle (one patch cycle per target); the patch cycle is started by hand.
    assert "Events" not in template.resources["PatchCycleStateMachine"]["Properties"]
    schedule = template.resources["OrgCycleStateMachine"]["Properties"]["Events"]["CycleSchedule"]["Properties"]
    condition, custom, daily = schedule["ScheduleExpression"]["Fn::If"]
    assert template.document["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "CycleSchedule"}, ""]}]}
    assert custom == {"Ref": "CycleSchedule"}
    assert daily == {"Fn::Sub": "cron(0 ${CycleHourUtc} * * ? *)"}
    assert schedule["ScheduleExpressionTimezone"] == "UTC"


def test_no_arn_hard_codes_the_aws_partition() -> None:
    # China (aws-cn) and GovCloud (aws-us-gov) Regions have their own partition: every ARN the stack
    # or the functions build takes it from ${AWS::Partition} or from an ARN they were given.
    sources = [
        REPO_ROOT / "template.yaml",
        REPO_ROOT / "statemachines" / "patch_cycle.asl.json",
        REPO_ROOT / "statemachines" / "org_cycle.asl.json",
        *(REPO_ROOT / "layers" / "tagpatch" / "tagpatch").glob("*.py"),
        *(REPO_ROOT / "functions").glob("*/app.py"),
    ]
    for path in sources:
        assert "arn:aws:" not in path.read_text(encoding="utf-8"), path
    machine = Template.load(TEMPLATE_PATH).resources["PatchCycleStateMachine"]["Properties"]
    assert machine["DefinitionSubstitutions"]["Partition"] == {"Ref": "AWS::Partition"}


def test_the_org_cycle_uses_each_substitution_and_may_start_only_the_patch_cycle(template: Template) -> None:
    org = template.state_machine(ORG_CYCLE.resource)
    text = org.definition_path.read_text(encoding="utf-8")
    assert set(SUB_PLACEHOLDER.findall(text)) == set(org.substitutions)
    statements = [
        statement
        for policy in template.resources[ORG_CYCLE.resource]["Properties"]["Policies"]
        if isinstance(policy, dict) and "Statement" in policy
        for statement in policy["Statement"]
    ]
    by_sid = {statement["Sid"]: statement for statement in statements}
    assert by_sid["StartTargetCycles"]["Resource"] == {"Ref": PATCH_CYCLE.resource}
    assert by_sid["FollowTargetCycles"]["Action"] == ["states:DescribeExecution", "states:StopExecution"]
    assert by_sid["FollowTargetCycles"]["Resource"]["Fn::Sub"].endswith(":execution:${AWS::StackName}-patch-cycle:*")
    assert by_sid["HearTargetCyclesEnd"]["Resource"]["Fn::Sub"].endswith(
        ":rule/StepFunctionsGetEventsForStepFunctionsExecutionRule"
    )
    definition = json.loads(text)
    targets = definition["States"]["Targets"]
    assert targets["MaxConcurrencyPath"] == "$.listed.max_concurrency"
    cycle = targets["ItemProcessor"]["States"]["TargetCycle"]
    assert cycle["Resource"] == "arn:${Partition}:states:::states:startExecution.sync:2"
    catchers = [catcher["ErrorEquals"] for catcher in cycle["Catch"]]
    assert catchers[-1] == ["States.ALL"]  # every child's failure is caught in its own iteration
    assert len(catchers) == 2 and all(name.startswith("StepFunctions.") for name in catchers[0])  # refusals
    # The child is told who started it, so it leaves its alert to the org cycle's one.
    assert targets["ItemSelector"]["started_by"] == {"AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id"}


def test_the_reminder_target_is_in_the_topic_s_partition() -> None:
    from tagpatch.reminders import universal_sns_publish

    assert (
        universal_sns_publish("arn:aws-cn:sns:cn-north-1:123456789012:t")
        == "arn:aws-cn:scheduler:::aws-sdk:sns:publish"
    )
    assert universal_sns_publish("arn:aws:sns:us-east-1:123456789012:t") == "arn:aws:scheduler:::aws-sdk:sns:publish"
