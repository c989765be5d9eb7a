"""Step Functions' payload quota, as AWS enforces it: at most 256 KiB of state data, UTF-8 encoded.

Step Functions service quotas: "Maximum input or output size for a task, state, or execution: 256 KiB
of data as a UTF-8 encoded string", applied to a task's result, a state's output, a state's input once
its Parameters are processed, and the input an execution is started with (the API reference gives
StartExecution's `input` a maximum length of 262144). Beyond it a state fails with
`States.DataLimitExceeded`, a terminal error that "can't be caught by the States.ALL error type"
(Developer Guide, "Handling errors in Step Functions workflows"; the rule is kept in `terminal_errors`).

moto's interpreter checks a state's output and a task's result, but refuses exactly 262,144 bytes
(AWS allows up to that length), does not check the input Parameters build, accepts any execution input,
and lets `States.ALL` in a Retry or Catch match `States.DataLimitExceeded`, so a state machine whose
data outgrows the quota would be caught and carry on locally while it dies in AWS.
"""

from __future__ import annotations

from typing import Any, Final

from moto.stepfunctions.exceptions import ValidationException
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.common.parargs import Parargs
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

from tagpatch_local.simulator.core import MARKER, moto_patch
from tagpatch_local.simulator.terminal_errors import DATA_LIMIT_EXCEEDED

# Step Functions service quotas: 256 KiB of data as a UTF-8 encoded string.
MAX_PAYLOAD_BYTES: Final = 256 * 1024
# The modules of moto's interpreter that imported moto's quota check by name.
_QUOTA_USERS: Final = (
    "moto.stepfunctions.parser.asl.component.state.state",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service",
)


def payload_bytes(value: Any) -> int:
    """The size Step Functions counts: the value as a UTF-8 JSON string (a string as it is), compact as
    the execution history shows it (moto's own check counted ", " and ": " separators)."""
    text = value if isinstance(value, str) else to_json_str(value, separators=(",", ":"))
    return len(text.encode("utf-8"))


def is_within_size_quota(value: Any) -> bool:
    return payload_bytes(value) <= MAX_PAYLOAD_BYTES


@moto_patch
def _install_inclusive_quota() -> None:
    import importlib  # noqa: PLC0415

    for name in _QUOTA_USERS:
        module = importlib.import_module(name)
        module.is_within_size_quota = is_within_size_quota  # type: ignore[attr-defined]


def _data_limit_failure(env: Any, size: int) -> FailureEventException:
    state = env.states.context_object.context_object_data.get("State") or {}
    cause = (
        f"The state/task '{state.get('Name', '?')}' has an input of {size} bytes once its parameters are "
        f"processed, more than the {MAX_PAYLOAD_BYTES} bytes the service allows."
    )
    return FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=StatesErrorNameType.StatesStatesDataLimitExceeded),
            event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(  # type: ignore[typeddict-item]
                taskFailedEventDetails=TaskFailedEventDetails(error=DATA_LIMIT_EXCEEDED, cause=cause)
            ),
        )
    )


@moto_patch
def _install_parameters_limit() -> None:
    original = Parargs._eval_body
    if getattr(original, MARKER, None) is not None:
        return

    def _eval_body(self: Any, env: Any) -> None:
        original(self, env)
        size = payload_bytes(env.stack[-1])
        if size > MAX_PAYLOAD_BYTES:
            raise _data_limit_failure(env, size)

    setattr(_eval_body, MARKER, "stepfunctions: a state's input after Parameters is within 256 KiB")
    Parargs._eval_body = _eval_body  # type: ignore[method-assign]


def refuse_oversized_input(execution_input: Any) -> None:
    """StartExecution's `input` is at most 262144 bytes (API reference); AWS answers a longer one with a
    ValidationException (the error for this member was not confirmed; it is the one AWS gives for a
    length constraint)."""
    if execution_input is not None and payload_bytes(execution_input) > MAX_PAYLOAD_BYTES:
        raise ValidationException(
            "1 validation error detected: Value at 'input' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_PAYLOAD_BYTES}"
        )
