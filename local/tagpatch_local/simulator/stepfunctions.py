"""Step Functions executions start at the simulated clock's time, invoke functions under their role, and
ListExecutions may lag.

A cycle takes its evaluation time from `$$.Execution.StartTime` (PrepareCycle), as it does in AWS.
moto stamps an execution with the host's wall clock; once a scenario has set the simulated clock,
the execution's start time is that clock's time instead, so a cycle sees the same "now" as the
maintenance windows that ran before it. While the clock follows real time, moto's stamp is kept.

ListExecutions is eventually consistent: the API reference says results "may not reflect" executions
started or changed very recently. moto answers from its live list; `set_listing_lag` makes it leave out
executions started less than that many (wall-clock) seconds ago, so two executions that start
together can each list none of the other, as they can in AWS.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Mapping
from typing import Any, Final

from botocore.exceptions import ClientError
from moto.cloudwatch.models import cloudwatch_backends
from moto.stepfunctions.models import StepFunctionBackend
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (
    StateTaskServiceLambda,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sns import (
    StateTaskServiceSns,
)
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution

from tagpatch_local.simulator import clock, iam, payload_limit
from tagpatch_local.simulator.core import MARKER, moto_patch, service_model

# (account, region) -> seconds an execution stays out of ListExecutions after it starts.
_LISTING_LAG: dict[tuple[str, str], float] = {}
_LAG_LOCK: Final = threading.Lock()
_STARTED_AT: Final = "_tagpatch_started_monotonic"


def set_listing_lag(account_id: str, region: str, seconds: float) -> None:
    """ListExecutions leaves out executions started less than `seconds` ago (0: no lag)."""
    with _LAG_LOCK:
        if seconds > 0:
            _LISTING_LAG[(account_id, region)] = seconds
        else:
            _LISTING_LAG.pop((account_id, region), None)


def _listing_lag(account_id: str, region: str) -> float:
    with _LAG_LOCK:
        return _LISTING_LAG.get((account_id, region), 0.0)


@moto_patch
def _install_execution_clock() -> None:
    original = Execution.__init__
    if getattr(original, MARKER, None) is not None:
        return

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        setattr(self, _STARTED_AT, time.monotonic())
        fixed = clock.clock(self.account_id, self.region_name).fixed
        if fixed is not None:
            self.start_date = fixed

    setattr(__init__, MARKER, "stepfunctions: execution start time from the simulated clock")
    Execution.__init__ = __init__  # type: ignore[method-assign]


@moto_patch
def _install_listing_lag() -> None:
    original = StepFunctionBackend.list_executions
    if getattr(original, MARKER, None) is not None:
        return

    def list_executions(self: Any, state_machine_arn: str, **kwargs: Any) -> Any:
        results, token = original(self, state_machine_arn, **kwargs)
        lag = _listing_lag(self.account_id, self.region_name)
        if lag:
            seen_before = time.monotonic() - lag
            results = [e for e in results if getattr(e, _STARTED_AT, float("-inf")) <= seen_before]
        return results, token

    setattr(list_executions, MARKER, "stepfunctions: ListExecutions may lag behind StartExecution")
    StepFunctionBackend.list_executions = list_executions  # type: ignore[method-assign,assignment]


# --------------------------------------------------------------------------------------------------
# The state machine's own Lambda invocations, under its role
#
# Step Functions invokes a task's function with the state machine's role (Step Functions Developer
# Guide, "IAM policies for invoking AWS Lambda functions": lambda:InvokeFunction on the function).
# moto's interpreter invokes with fixed keys and no check. A denied invoke fails the task the way
# AWS reports it: error `Lambda.AWSLambdaException` (Lambda's AccessDeniedException is not in Lambda's
# API model, so Step Functions' SDK names it by its base exception), cause "User: ... is not
# authorized to perform: lambda:InvokeFunction on resource: ... (Service: AWSLambda; Status Code:
# 403; Error Code: AccessDeniedException; ...)"; the state's Retry and Catch then apply as written.

STATES_SESSION: Final = "tagpatch-sim-states"  # Step Functions' session names are opaque; any will do


def invoke_refusal(role_arn: str, function: str, region: str) -> ClientError | None:
    """Lambda's AccessDeniedException if the role may not invoke the function, else None."""
    account = role_arn.split(":")[4]
    principal = iam.Principal(role_arn.rsplit("/", 1)[-1], STATES_SESSION, account)
    if function.startswith("arn:"):
        function_arn = function
    else:
        function_arn = f"arn:{iam.PARTITION}:lambda:{region}:{account}:function:{function}"
    check = iam.Authorization("lambda:InvokeFunction", function_arn)
    decision = iam.decide(principal, iam.role_policies(account, principal.role_name), check)
    if decision is iam.Decision.ALLOW:
        return None
    error = {"Code": "AccessDeniedException", "Message": iam.denial_message(principal, check, decision)}
    metadata = {"HTTPStatusCode": 403, "RequestId": "tagpatch-sim"}
    return ClientError({"Error": error, "ResponseMetadata": metadata}, "Invoke")


def _lambda_error_names() -> frozenset[str]:
    return frozenset(shape.name for shape in service_model("lambda").error_shapes)


@moto_patch
def _install_invoke_authorisation() -> None:
    original = lambda_eval_utils._invoke_lambda_function
    if getattr(original, MARKER, None) is not None:
        return

    def invoke(parameters: dict[str, Any], region: str, state_credentials: Any) -> Any:
        refusal = invoke_refusal(str(state_credentials.role_arn), str(parameters["FunctionName"]), region)
        if refusal is not None:
            raise refusal
        return original(parameters=parameters, region=region, state_credentials=state_credentials)

    setattr(invoke, MARKER, "stepfunctions: lambda:InvokeFunction under the state machine's role")
    lambda_eval_utils._invoke_lambda_function = invoke

    name_error = StateTaskServiceLambda._error_cause_from_client_error

    def error_cause(client_error: ClientError) -> tuple[str, str]:
        error, cause = name_error(client_error)
        if client_error.response["Error"]["Code"] not in _lambda_error_names():
            error = "Lambda.AWSLambdaException"
        return error, cause

    setattr(error_cause, MARKER, "stepfunctions: unmodelled Lambda errors are AWSLambdaException")
    StateTaskServiceLambda._error_cause_from_client_error = staticmethod(error_cause)  # type: ignore[method-assign]


# --------------------------------------------------------------------------------------------------
# Execution metrics
#
# Step Functions publishes AWS/States execution metrics per state machine (Step Functions Developer
# Guide, "Metrics dimension for Step Functions executions": ExecutionsSucceeded, ExecutionsFailed,
# ExecutionsAborted and ExecutionsTimedOut, dimension StateMachineArn), so alarms on them evaluate.

EXECUTION_METRICS: Final = {
    ExecutionStatus.SUCCEEDED: "ExecutionsSucceeded",
    ExecutionStatus.FAILED: "ExecutionsFailed",
    ExecutionStatus.ABORTED: "ExecutionsAborted",
    ExecutionStatus.TIMED_OUT: "ExecutionsTimedOut",
}


@moto_patch
def _install_execution_metrics() -> None:
    original = BaseExecutionWorkerCommunication.terminated
    if getattr(original, MARKER, None) is not None:
        return

    def terminated(self: Any) -> None:
        original(self)
        execution = self.execution
        metric = EXECUTION_METRICS.get(execution.exec_status)
        if metric is None:
            return
        datum = {
            "MetricName": metric,
            "Value": 1.0,
            "Unit": "Count",
            "Dimensions": [{"Name": "StateMachineArn", "Value": execution.state_machine_arn}],
            "Timestamp": execution.stop_date,
        }
        cloudwatch_backends[execution.account_id][execution.region_name].put_metric_data("AWS/States", [datum])

    setattr(terminated, MARKER, "stepfunctions: AWS/States execution metrics")
    BaseExecutionWorkerCommunication.terminated = terminated  # type: ignore[method-assign]


# --------------------------------------------------------------------------------------------------
# Child executions (`states:startExecution.sync:2`), under the parent state machine's role
#
# A state machine that starts another and waits for it needs states:StartExecution on the child
# state machine, states:DescribeExecution (and StopExecution) on its executions, and events:PutTargets,
# PutRule and DescribeRule on the managed rule StepFunctionsGetEventsForStepFunctionsExecutionRule
# (Step Functions Developer Guide, "IAM policies for AWS Step Functions", synchronous). moto's
# interpreter calls with fixed keys and no check. A denied call fails the task with Step Functions'
# SDK name for it: a modelled error is `StepFunctions.<Code>Exception` (moto's naming); AccessDenied is
# not in Step Functions' API model, so, as for Lambda above, it is named by the SDK's base exception,
# `StepFunctions.AWSStepFunctionsException` (not confirmed against AWS: docs/simulator.md).
# StopExecution is not checked: the interpreter never stops a child when its parent stops.
#
# moto's port of the integration hands the ASL's parameters (StateMachineArn, Input, Name: the names the
# Developer Guide's examples use) to boto3 as they are, which botocore cannot serialise (its members
# are stateMachineArn, input, name), and gives the API's camelCase answer back where its own code, and
# the guide's examples (`$.Output`, `$.ExecutionArn`), read ExecutionArn, Output and Status. Both
# directions are translated here by the service model's member names. Its times become epoch
# milliseconds (a JSON state holds no timestamps; that AWS uses milliseconds is not confirmed).

EVENTS_RULE: Final = "StepFunctionsGetEventsForStepFunctionsExecutionRule"
SFN_BASE_ERROR: Final = "StepFunctions.AWSStepFunctionsException"


def role_refusal(role_arn: str, action: str, resource: str, operation: str) -> ClientError | None:
    """AccessDeniedException if the state machine's role may not do `action` on `resource`, else None."""
    account = role_arn.split(":")[4]
    principal = iam.Principal(role_arn.rsplit("/", 1)[-1], STATES_SESSION, account)
    check = iam.Authorization(action, resource)
    decision = iam.decide(principal, iam.role_policies(account, principal.role_name), check)
    if decision is iam.Decision.ALLOW:
        return None
    error = {"Code": "AccessDeniedException", "Message": iam.denial_message(principal, check, decision)}
    metadata = {"HTTPStatusCode": 400, "RequestId": "tagpatch-sim"}
    return ClientError({"Error": error, "ResponseMetadata": metadata}, operation)


def _execution_arn_pattern(state_machine_arn: str) -> str:
    """The ARN of an execution of the state machine, as IAM matches it (any execution name)."""
    head, _, name = state_machine_arn.rpartition(":stateMachine:")
    return f"{head}:execution:{name}:*"


def _sync_refusal(role_arn: str, region: str, account: str, state_machine_arn: str) -> ClientError | None:
    rule = f"arn:{iam.PARTITION}:events:{region}:{account}:rule/{EVENTS_RULE}"
    execution = _execution_arn_pattern(state_machine_arn).replace(":*", ":tagpatch-sim-child")
    checks = [
        ("states:StartExecution", state_machine_arn, "StartExecution"),
        ("states:DescribeExecution", execution, "DescribeExecution"),
        *((f"events:{action}", rule, action) for action in ("PutRule", "PutTargets", "DescribeRule")),
    ]
    for action, resource, operation in checks:
        refusal = role_refusal(role_arn, action, resource, operation)
        if refusal is not None:
            return refusal
    return None


@moto_patch
def _install_generated_execution_names() -> None:
    """StartExecution without a name gets a generated UUID (API reference: "If you don't provide a name
    for the execution, Step Functions automatically generates a universally unique identifier (UUID)
    as the execution name"); moto's parser backend names it "None", so a second unnamed start of the
    same state machine is refused with ExecutionAlreadyExists."""
    from moto.moto_api._internal import mock_random  # noqa: PLC0415
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend  # noqa: PLC0415

    original = StepFunctionsParserBackend.start_execution
    if getattr(original, MARKER, None) is not None:
        return

    def start_execution(
        self: Any, state_machine_arn: str, name: Any = None, execution_input: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        payload_limit.refuse_oversized_input(execution_input)
        return original(self, state_machine_arn, name or str(mock_random.uuid4()), execution_input, *args, **kwargs)

    setattr(
        start_execution,
        MARKER,
        "stepfunctions: an unnamed execution gets a UUID for its name; an input over 256 KiB is refused",
    )
    StepFunctionsParserBackend.start_execution = start_execution  # type: ignore[method-assign]


def _operation_name(boto_action: str) -> str:
    """start_execution -> StartExecution."""
    return "".join(part.capitalize() for part in boto_action.split("_"))


def _sfn_error_names() -> frozenset[str]:
    return frozenset(shape.name for shape in service_model("stepfunctions").error_shapes)


@moto_patch
def _install_child_execution_authorisation() -> None:
    original = StateTaskServiceSfn._eval_service_task
    if getattr(original, MARKER, None) is not None:
        return

    def eval_service_task(
        self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
    ) -> Any:
        if self._get_boto_service_action() == "start_execution":
            refusal = _sync_refusal(
                str(state_credentials.role_arn),
                resource_runtime_part.region,
                resource_runtime_part.account,
                str(normalised_parameters.get("stateMachineArn", "")),
            )
            if refusal is not None:
                raise refusal
        return original(self, env, resource_runtime_part, normalised_parameters, state_credentials)

    setattr(eval_service_task, MARKER, "stepfunctions: startExecution.sync under the state machine's role")

    normalise_parameters = StateTaskServiceSfn._normalise_parameters

    def to_api_names(
        self: Any,
        parameters: dict[str, Any],
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        normalise_parameters(self, parameters, boto_service_name, service_action_name)
        operation = service_model("stepfunctions").operation_model(_operation_name(self._get_boto_service_action()))
        members = {name.lower(): name for name in operation.input_shape.members}
        for key in list(parameters):
            parameters[members.get(key.lower(), key)] = parameters.pop(key)

    setattr(to_api_names, MARKER, "stepfunctions: the integration's parameters by the API's member names")
    StateTaskServiceSfn._normalise_parameters = to_api_names  # type: ignore[method-assign]

    def to_integration_names(
        self: Any, response: Any, boto_service_name: str | None = None, service_action_name: str | None = None
    ) -> None:
        if isinstance(response, dict):
            for key in list(response):
                value = response.pop(key)
                # Times as epoch milliseconds, as the integration's JSON carries them.
                response[key[:1].upper() + key[1:]] = (
                    round(value.timestamp() * 1000) if isinstance(value, datetime.datetime) else value
                )

    setattr(to_integration_names, MARKER, "stepfunctions: the integration's answer in its own member names")
    StateTaskServiceSfn._normalise_response = to_integration_names  # type: ignore[method-assign]
    StateTaskServiceSfn._eval_service_task = eval_service_task  # type: ignore[method-assign]

    from_error = StateTaskServiceSfn._from_error

    def name_error(self: Any, env: Any, ex: Exception) -> Any:
        failure = from_error(self, env, ex)
        if not isinstance(ex, ClientError) or ex.response["Error"]["Code"] in _sfn_error_names():
            return failure
        event_details: Mapping[str, Any] = failure.event_details or {}
        details: dict[str, Any] = dict(event_details.get("taskFailedEventDetails") or {})
        renamed: Any = {"taskFailedEventDetails": {**details, "error": SFN_BASE_ERROR}}  # an EventDetails
        return FailureEvent(
            env=env, error_name=CustomErrorName(SFN_BASE_ERROR), event_type=failure.event_type, event_details=renamed
        )

    setattr(name_error, MARKER, "stepfunctions: unmodelled Step Functions errors are AWSStepFunctionsException")
    StateTaskServiceSfn._from_error = name_error  # type: ignore[method-assign]


# --------------------------------------------------------------------------------------------------
# SNS publishes from a Task (`arn:<partition>:states:::sns:publish`), under the state machine's role
#
# Step Functions calls SNS with the state machine's role: sns:Publish on the topic (Step Functions
# Developer Guide, "IAM policies for Amazon SNS"), and, for an encrypted topic, the publisher's use of the
# topic's key (SNS Developer Guide, "Encryption at rest": kms:GenerateDataKey* and kms:Decrypt). moto's
# interpreter publishes with fixed keys and no check, so a role without the grant, or a topic or key
# policy that leaves it out, would publish locally and fail in AWS. A refusal fails the task with
# moto's name for it, `SNS.<Code>Exception` (SNS.AuthorizationErrorException,
# SNS.KMSAccessDeniedException); that AWS names them so is not confirmed (docs/simulator.md).

SNS_KEY_ACTIONS: Final = ("kms:GenerateDataKey", "kms:Decrypt")


def _sns_refusal(code: str, status: int, message: str) -> ClientError:
    metadata = {"HTTPStatusCode": status, "RequestId": "tagpatch-sim"}
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": metadata}, "Publish")


def publish_refusal(role_arn: str, topic_arn: str) -> ClientError | None:
    """SNS's refusal if the state machine's role may not publish to the topic (or use its key), else None."""
    account = role_arn.split(":")[4]
    principal = iam.Principal(role_arn.rsplit("/", 1)[-1], STATES_SESSION, account)
    policies = iam.role_policies(account, principal.role_name)
    publish = iam.Authorization("sns:Publish", topic_arn)
    decision = iam.decide(principal, policies, publish)
    if decision is not iam.Decision.ALLOW:
        return _sns_refusal("AuthorizationError", 403, iam.denial_message(principal, publish, decision))
    iam.record_allowed(principal.role_name, publish)
    parts = topic_arn.split(":")
    key_arn = iam.topic_key_arn(account, parts[3], topic_arn) if len(parts) == 6 else None
    for action in SNS_KEY_ACTIONS if key_arn is not None else ():
        use = iam.Authorization(action, str(key_arn), {"kms:EncryptionContext:aws:sns:topicArn": (topic_arn,)})
        decision = iam.decide(principal, policies, use)
        if decision is not iam.Decision.ALLOW:
            return _sns_refusal("KMSAccessDenied", 400, iam.denial_message(principal, use, decision))
        iam.record_allowed(principal.role_name, use)
    return None


@moto_patch
def _install_publish_authorisation() -> None:
    original = StateTaskServiceSns._eval_service_task
    if getattr(original, MARKER, None) is not None:
        return

    def eval_service_task(
        self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
    ) -> Any:
        if self._get_boto_service_action() == "publish":
            topic = str(normalised_parameters.get("TopicArn") or normalised_parameters.get("TargetArn") or "")
            refusal = publish_refusal(str(state_credentials.role_arn), topic)
            if refusal is not None:
                raise refusal
        return original(self, env, resource_runtime_part, normalised_parameters, state_credentials)

    setattr(eval_service_task, MARKER, "stepfunctions: sns:publish under the state machine's role")
    StateTaskServiceSns._eval_service_task = eval_service_task  # type: ignore[method-assign]
