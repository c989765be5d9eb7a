"""Automation executions, which moto does not have: what a maintenance window's AUTOMATION task runs.

A window's AUTOMATION task starts one execution of its runbook per target instance (`{{RESOURCE_ID}}`
in its parameters is the instance), and its task invocation records the execution's id as its
ExecutionId. The simulator runs two step actions, the ones a backup before install needs (Systems
Manager User Guide, "Automation actions reference"):

- `aws:createImage`: CreateImage through moto's EC2 under the runbook's assumed role (so IAM decides,
  and DescribeImages sees the image, pending until the step ends), then available, or failed where the
  fleet file says the instance's backup fails (`patch: {backup: failed}`);
- `aws:runCommand`: the role's ssm:SendCommand checked, then the command run as a window's Run Command
  task runs it (`executions`), on the step's instances;
- `aws:executeAwsApi`: the step's `Api` of its `Service` called through boto3 under the runbook's role,
  with the step's other inputs as its parameters, and each of the step's `outputs` picked from the
  answer by its `Selector` (a JSONPath: the simulator reads `$`, `.key`, `..key` and `[n]`) as its
  `Type` (String, Integer, Boolean, StringList). Where the fleet file says an instance's backup fails
  (`patch: {backup: failed}`), its CreateSnapshots fails before it is sent (docs/simulator.md).

A step whose `onFailure` is `Abort` (the default) ends the execution there: later steps never run. The
run is planned whole when it starts, as a window's commands are; GetAutomationExecution and
DescribeAutomationExecutions show it as it stands at the simulated clock. Nothing here imports tagpatch.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, Final

import boto3
import yaml
from botocore.exceptions import ClientError
from moto.ec2.models import ec2_backends
from moto.ssm.exceptions import SSMException, ValidationException
from moto.ssm.models import ssm_backends

from tagpatch_local.simulator import clock, executions
from tagpatch_local.simulator.core import (
    SimulatorError,
    backend_state,
    drop_none,
    filters_of,
    operation,
    page_of,
    request_params,
    validate_input,
)
from tagpatch_local.simulator.iam import AccessDenied, Principal, Request, authorizations, enforce, tag_reader

_STATE_ATTR: Final = "tagpatch_automation"
# How long aws:createImage waits for an image to become available. AWS documents no figure; an AMI's
# snapshots take minutes (docs/simulator.md).
IMAGE_MINUTES: Final = 10
# `{{ Parameter }}`, `{{ automation:EXECUTION_ID }}`, or an earlier step's output `{{ step.Output }}`.
_PLACEHOLDER: Final = re.compile(r"\{\{\s*([\w:.]+)\s*\}\}")
# DescribeAutomationExecutions's MaxResults bounds (SSM API Reference).
_PAGE: Final = (1, 50)


class AutomationExecutionNotFoundException(SSMException):
    code = "AutomationExecutionNotFoundException"


@dataclass
class StepExecution:
    name: str
    action: str
    on_failure: str
    inputs: Mapping[str, Any]
    status: str  # Success, Failed, TimedOut, Cancelled: how it ends
    started: datetime
    ended: datetime
    outputs: dict[str, list[str]] = field(default_factory=dict)
    failure_message: str | None = None
    step_execution_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def output_at(self, now: datetime) -> dict[str, Any]:
        done = now >= self.ended
        return drop_none(
            {
                "StepName": self.name,
                "Action": self.action,
                "OnFailure": self.on_failure,
                "ExecutionStartTime": self.started,
                "ExecutionEndTime": self.ended if done else None,
                "StepStatus": self.status if done else "InProgress",
                "Inputs": {key: json.dumps(value) for key, value in self.inputs.items()},
                "Outputs": self.outputs if done and self.outputs else None,
                "FailureMessage": self.failure_message if done else None,
                "StepExecutionId": self.step_execution_id,
            }
        )


@dataclass
class AutomationExecution:
    execution_id: str
    document_name: str
    document_version: str
    parameters: dict[str, list[str]]
    started: datetime
    status: str = "Success"
    ended: datetime | None = None
    steps: list[StepExecution] = field(default_factory=list)
    outputs: dict[str, list[str]] = field(default_factory=dict)
    failure_message: str | None = None

    @property
    def end(self) -> datetime:
        return self.ended or self.started

    def status_at(self, now: datetime) -> str:
        return self.status if now >= self.end else "InProgress"

    def output_at(self, now: datetime) -> dict[str, Any]:
        done = now >= self.end
        return drop_none(
            {
                "AutomationExecutionId": self.execution_id,
                "DocumentName": self.document_name,
                "DocumentVersion": self.document_version,
                "ExecutionStartTime": self.started,
                "ExecutionEndTime": self.end if done else None,
                "AutomationExecutionStatus": self.status_at(now),
                "StepExecutions": [s.output_at(now) for s in self.steps if now >= s.started],
                "StepExecutionsTruncated": False,
                "Parameters": self.parameters,
                "Outputs": self.outputs if done else None,
                "FailureMessage": self.failure_message if done else None,
                "Mode": "Auto",
            }
        )

    def metadata_at(self, now: datetime) -> dict[str, Any]:
        done = now >= self.end
        return drop_none(
            {
                "AutomationExecutionId": self.execution_id,
                "DocumentName": self.document_name,
                "DocumentVersion": self.document_version,
                "AutomationExecutionStatus": self.status_at(now),
                "ExecutionStartTime": self.started,
                "ExecutionEndTime": self.end if done else None,
                "Outputs": self.outputs if done else None,
                "FailureMessage": self.failure_message if done else None,
                "Mode": "Auto",
                "AutomationType": "Local",
            }
        )


@dataclass
class AutomationState:
    executions: dict[str, AutomationExecution] = field(default_factory=dict)  # in start order


def automation_state(account_id: str, region: str) -> AutomationState:
    return backend_state(ssm_backends[account_id][region], _STATE_ATTR, AutomationState)


# --- running a runbook ---------------------------------------------------------------------------------


def _runbook(account_id: str, region: str, name: str, version: str | None) -> tuple[dict[str, Any], str]:
    """The runbook's content and the version that runs."""
    # "$DEFAULT" (as "$LATEST" or a number) is a version AWS accepts for a task's runbook; moto knows
    # the default only as "no version given".
    found = ssm_backends[account_id][region].get_document(name, "" if version == "$DEFAULT" else version or "", "", "")
    if found.get("DocumentType") != "Automation":
        raise ValidationException(f"Document {name} is not an Automation runbook.")
    content = found["Content"]
    parsed = yaml.safe_load(content) if isinstance(content, str) else content  # YAML reads JSON too
    return dict(parsed), str(found.get("DocumentVersion") or "1")


class _InvalidParameters(ValueError):
    pass


def _values(runbook: Mapping[str, Any], given: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """The runbook's parameters: those given, else their defaults; unknown or missing ones refused."""
    declared: Mapping[str, Any] = runbook.get("parameters") or {}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise _InvalidParameters(f"Parameter(s) {unknown} are not defined in the document.")
    values: dict[str, list[str]] = {}
    for name, spec in declared.items():
        if name in given:
            values[name] = list(given[name])
        elif "default" in (spec or {}):
            default = spec["default"]
            values[name] = [str(v) for v in default] if isinstance(default, list) else [str(default)]
        else:
            raise _InvalidParameters(f"Parameter {name} is required and was not given.")
    return values


def _resolve(value: Any, values: Mapping[str, list[str]], lists: frozenset[str] = frozenset()) -> Any:
    """A step input with each `{{ name }}` replaced: a string that is one placeholder of a list takes
    the list's first value (every parameter the simulator runs is a String), except that an input that
    is exactly one placeholder of a step output typed StringList (`lists`) is that list."""
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value.strip())
        if whole is not None and whole.group(1) in lists:
            return list(values[whole.group(1)])

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in values:
                raise _InvalidParameters(f"The step input refers to {{{{{name}}}}}, which is not a parameter.")
            return values[name][0] if values[name] else ""

        return _PLACEHOLDER.sub(one, value)
    if isinstance(value, list):
        return [_resolve(item, values, lists) for item in value]
    if isinstance(value, dict):
        return {key: _resolve(item, values, lists) for key, item in value.items()}
    return value


def _session(role_arn: str, region: str) -> tuple[boto3.session.Session, Principal]:
    """Credentials of the runbook's role, as Automation assumes it."""
    sts = boto3.client("sts", region_name=region)
    assumed = sts.assume_role(RoleArn=role_arn, RoleSessionName="Automation")
    credentials = assumed["Credentials"]
    session = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )
    account = role_arn.split(":")[4]
    return session, Principal(role_arn.rsplit("/", 1)[-1], "Automation", account)


def _set_image_state(account_id: str, region: str, image_id: str, image_state: str) -> dict[str, Any] | None:
    image = ec2_backends[account_id][region].amis.get(image_id)
    if image is not None:
        image.state = image_state
    return None


def _create_image(
    account_id: str, region: str, session: boto3.session.Session, inputs: Mapping[str, Any], step: StepExecution
) -> None:
    ec2 = session.client("ec2", region_name=region)
    instance_id = str(inputs["InstanceId"])
    try:
        image_id = ec2.create_image(
            InstanceId=instance_id,
            Name=str(inputs["ImageName"]),
            NoReboot=str(inputs.get("NoReboot", False)).lower() == "true",
        )["ImageId"]
        ec2.describe_images(ImageIds=[image_id])  # the step waits on the image under the role
    except ClientError as error:
        step.status, step.failure_message = "Failed", str(error)
        step.ended = step.started
        return
    profile = executions.run_state(account_id, region).profiles.get(instance_id)
    fails = profile is not None and profile.backup_fails
    _set_image_state(account_id, region, image_id, "pending")
    step.ended = step.started + timedelta(minutes=IMAGE_MINUTES)
    final = "failed" if fails else "available"
    executions.schedule(
        account_id, region, step.ended, functools.partial(_set_image_state, account_id, region, image_id, final)
    )
    step.outputs = {"ImageId": [image_id], "ImageState": [final]}
    if fails:
        step.status = "Failed"
        step.failure_message = f"Image {image_id} ended in state failed."


# What a selector may say: `$`, then `.key` (a key), `..key` (the key at any depth) or `[n]` (an item).
_SELECTOR_PART: Final = re.compile(r"(\.\.|\.)([A-Za-z0-9_]+)|\[([0-9]+)\]")
# How long an aws:executeAwsApi step takes: no simulated time (AWS allows it 25 seconds at most, SSM
# User Guide), so it never meets a window's cutoff.
_API_CALL: Final = timedelta(0)


def _descend(value: Any, key: str) -> list[Any]:
    """Every value of `key` at any depth below `value` (JSONPath's `..key`)."""
    found: list[Any] = []
    if isinstance(value, dict):
        if key in value:
            found.append(value[key])
        for item in value.values():
            found.extend(_descend(item, key))
    elif isinstance(value, list):
        for item in value:
            found.extend(_descend(item, key))
    return found


def select(document: Any, selector: str) -> list[Any]:
    """The values a step output's JSONPath `Selector` picks from an API answer."""
    if not selector.startswith("$"):
        raise SimulatorError(f"selector {selector!r} does not start with $")
    rest = selector[1:]
    parts = list(_SELECTOR_PART.finditer(rest))
    if "".join(part.group(0) for part in parts) != rest:
        raise SimulatorError(f"the simulator reads selectors of $, .key, ..key and [n] only (got {selector!r})")
    current = [document]
    for part in parts:
        separator, key, index = part.groups()
        if index is not None:
            current = [item[int(index)] for item in current if isinstance(item, list) and int(index) < len(item)]
        elif separator == "..":
            current = [found for item in current for found in _descend(item, key)]
        else:
            # `.key` reads a mapping's key only, not each item's of a list (that is `..key` or `[n].key`):
            # the simulator does not read more into a selector than JSONPath says.
            current = [item[key] for item in current if isinstance(item, dict) and key in item]
    return [found for item in current for found in (item if isinstance(item, list) else [item])]


def _typed(values: list[Any], output_type: str) -> list[str]:
    """An output's values as Automation stores them (strings), one unless the type is a list."""
    shown = [json.dumps(v) if isinstance(v, bool) else str(v) for v in values]
    return shown if output_type.endswith("List") else shown[:1]


def _execute_aws_api(
    account_id: str,
    region: str,
    session: boto3.session.Session,
    inputs: Mapping[str, Any],
    outputs: list[Mapping[str, Any]],
    step: StepExecution,
) -> None:
    client = session.client(str(inputs["Service"]), region_name=region)
    api = str(inputs["Api"])
    method = {name: method for method, name in client.meta.method_to_api_mapping.items()}.get(api)
    if method is None:
        step.status, step.failure_message = "Failed", f"{inputs['Service']} has no API {api}."
        return
    parameters = {key: value for key, value in inputs.items() if key not in ("Service", "Api")}
    instance_id = (parameters.get("InstanceSpecification") or {}).get("InstanceId")
    profile = executions.run_state(account_id, region).profiles.get(str(instance_id)) if instance_id else None
    if api == "CreateSnapshots" and profile is not None and profile.backup_fails:
        step.status = "Failed"
        step.failure_message = f"CreateSnapshots of {instance_id} failed (the fleet file's backup: failed)."
        return
    try:
        answer = getattr(client, method)(**parameters)
    except ClientError as error:
        step.status, step.failure_message = "Failed", str(error)
        return
    step.ended = step.started + _API_CALL
    step.outputs = {
        str(output["Name"]): _typed(select(answer, str(output["Selector"])), str(output.get("Type", "String")))
        for output in outputs
    }


# A command's end -> the step's (Run Command statuses, Automation step statuses).
_STEP_STATUS: Final = {"Success": "Success", "Cancelled": "Cancelled", "TimedOut": "TimedOut"}


def _run_command(
    account_id: str,
    region: str,
    principal: Principal,
    inputs: Mapping[str, Any],
    step: StepExecution,
    cancel_at: datetime | None,
) -> None:
    instance_ids = [str(i) for i in inputs.get("InstanceIds") or ()]
    document = str(inputs["DocumentName"])
    parameters = {
        key: [str(v) for v in value] if isinstance(value, list) else [str(value)]
        for key, value in (inputs.get("Parameters") or {}).items()
    }
    # aws:runCommand sends the command and polls it under the runbook's role.
    sent = Request("ssm", "SendCommand", {"DocumentName": document, "InstanceIds": instance_ids}, region, account_id)
    polled = Request("ssm", "ListCommandInvocations", {}, region, account_id)
    try:
        for request in (sent, polled):
            enforce(principal, authorizations(request, tag_reader(account_id, region)), "ssm")
    except AccessDenied as denied:
        # SSM answers in JSON: the step fails with the denial's message, as Automation reports it.
        step.status, step.failure_message = "Failed", str(json.loads(str(denied.description))["message"])
        step.ended = step.started
        return
    # One node, so no rate control; no TimeoutSeconds, so SSM's delivery timeout.
    task = SimpleNamespace(task_invocation_parameters={}, max_concurrency="1", max_errors="0")
    command = executions.start_window_command(
        account_id, region, instance_ids, parameters, task, step.started, cancel_at
    )
    step.ended = command.ended
    step.status = _STEP_STATUS.get(command.status, "Failed")
    step.outputs = {"CommandId": [command.command_id], "Status": [command.status]}
    if step.status != "Success":
        step.failure_message = f"Command {command.command_id} ended {command.status} ({command.status_details})."


def run_automation(
    account_id: str,
    region: str,
    document_name: str,
    document_version: str | None,
    given: Mapping[str, list[str]],
    started: datetime,
    cancel_at: datetime | None = None,
) -> AutomationExecution:
    """Start one execution at `started`, planned whole; `cancel_at`: the window's cutoff under CANCEL_TASK."""
    runbook, version = _runbook(account_id, region, document_name, document_version)
    execution = AutomationExecution(str(uuid.uuid4()), document_name, version, dict(given), started)
    automation_state(account_id, region).executions[execution.execution_id] = execution
    try:
        values = _values(runbook, given)
        values["automation:EXECUTION_ID"] = [execution.execution_id]
        execution.parameters = {k: v for k, v in values.items() if not k.startswith("automation:")}
        role = _resolve(runbook.get("assumeRole") or "", values)
    except _InvalidParameters as error:
        # AWS refuses to start it (InvalidAutomationExecutionParametersException); the window records
        # a failed invocation. The simulator keeps a Failed execution to show why (docs/simulator.md).
        execution.status, execution.failure_message = "Failed", str(error)
        return execution
    if not role:
        raise SimulatorError(f"{document_name}: the simulator runs runbooks under their assumeRole only")
    session, principal = _session(str(role), region)
    at = started
    lists: set[str] = set()  # step outputs typed StringList (or MapList), which an input may take whole
    for raw in runbook.get("mainSteps") or ():
        if cancel_at is not None and at >= cancel_at:
            execution.status = "Cancelled"
            break
        step = StepExecution(
            str(raw["name"]),
            str(raw["action"]),
            str(raw.get("onFailure", "Abort")),
            _resolve(raw.get("inputs") or {}, values, frozenset(lists)),
            "Success",
            at,
            at,
        )
        execution.steps.append(step)
        if step.action == "aws:createImage":
            _create_image(account_id, region, session, step.inputs, step)
        elif step.action == "aws:runCommand":
            _run_command(account_id, region, principal, step.inputs, step, cancel_at)
        elif step.action == "aws:executeAwsApi":
            _execute_aws_api(account_id, region, session, step.inputs, list(raw.get("outputs") or ()), step)
        else:
            raise SimulatorError(f"{document_name}: the simulator does not run {step.action} steps")
        at = step.ended
        # A later step's inputs may name this one's outputs (`{{ createImage.ImageId }}`).
        values.update({f"{step.name}.{key}": list(found) for key, found in step.outputs.items()})
        lists.update(
            f"{step.name}.{output['Name']}"
            for output in raw.get("outputs") or ()
            if str(output.get("Type", "String")).endswith("List")
        )
        if step.status != "Success":
            if step.on_failure != "Abort":
                raise SimulatorError(f"{document_name}: the simulator runs onFailure Abort only")
            execution.status = step.status
            execution.failure_message = f"Step {step.name} ended {step.status}: {step.failure_message}"
            break
    execution.ended = at
    for name in runbook.get("outputs") or ():
        step_name, _, key = str(name).partition(".")
        found = next((s for s in execution.steps if s.name == step_name and s.status == "Success"), None)
        if found is not None and key in found.outputs:
            execution.outputs[str(name)] = found.outputs[key]
    return execution


# --- reading it back through the SSM API ------------------------------------------------------------


def _now(response: Any) -> datetime:
    now = clock.now(response.current_account, response.region)
    executions.settle(response.current_account, response.region, now)
    return now


@operation("GetAutomationExecution")
def _get_automation_execution(response: Any) -> dict[str, Any]:
    params = request_params(response)
    validate_input("GetAutomationExecution", params)
    execution_id = str(params["AutomationExecutionId"])
    found = automation_state(response.current_account, response.region).executions.get(execution_id)
    if found is None:
        raise AutomationExecutionNotFoundException(f"Automation execution {execution_id} does not exist.")
    return {"AutomationExecution": found.output_at(_now(response))}


# The filters the simulator answers (AutomationExecutionFilter has more; each refused by name).
_FILTERS: Final = ("ExecutionId", "DocumentNamePrefix", "ExecutionStatus")


@operation("DescribeAutomationExecutions")
def _describe_automation_executions(response: Any) -> dict[str, Any]:
    params = request_params(response)
    validate_input("DescribeAutomationExecutions", params)
    filters = filters_of(params, _FILTERS)
    now = _now(response)
    chosen = [
        e
        for e in automation_state(response.current_account, response.region).executions.values()
        if e.started <= now
        and ("ExecutionId" not in filters or e.execution_id in filters["ExecutionId"])
        and (
            "DocumentNamePrefix" not in filters
            or any(e.document_name.startswith(p) for p in filters["DocumentNamePrefix"])
        )
        and ("ExecutionStatus" not in filters or e.status_at(now) in filters["ExecutionStatus"])
    ]
    page, token = page_of("DescribeAutomationExecutions", chosen, params, _PAGE)
    return drop_none({"AutomationExecutionMetadataList": [e.metadata_at(now) for e in page], "NextToken": token})
