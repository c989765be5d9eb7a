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

import threading
import time
from typing import Any, Final

from botocore.exceptions import ClientError
from moto.cloudwatch.models import cloudwatch_backends
from moto.stepfunctions.models import StepFunctionBackend
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (
    StateTaskServiceLambda,
)
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution

from tagpatch_local.simulator import clock, iam
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
