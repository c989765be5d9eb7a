"""Step Functions' errors that no Retry or Catch on `States.ALL` takes, and an iteration's error reaching
its Map under its own name.

Developer Guide, "Handling errors in Step Functions workflows": `States.ALL` must appear alone in a
Catcher and cannot catch the `States.DataLimitExceeded` terminal error or the Runtime error type;
`States.Runtime` ("an execution failed due to some exception that it couldn't process", such as a path
that matches nothing) is not retriable and always fails the execution.

moto's interpreter let `States.ALL` (and `States.TaskFailed`, for any name moto does not tag as a
`States.` error) match both, so a path mistake that kills a real execution was caught locally and
reported as an ordinary failure. moto also rebuilt an iteration's error name as a custom one, which may
not start with `States.`: every `States.*` error of an iteration reached its Map as `States.Runtime`.
"""

from __future__ import annotations

from typing import Any, Final

from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)

from tagpatch_local.simulator.core import MARKER, moto_patch

DATA_LIMIT_EXCEEDED: Final = "States.DataLimitExceeded"
RUNTIME: Final = "States.Runtime"
# Not even its own name in ErrorEquals takes States.Runtime: the guide says it always fails the execution.
_NEVER_CAUGHT: Final = frozenset({RUNTIME})
# States.ALL and States.TaskFailed do not take it; whether its own name does is not documented.
_CAUGHT_ONLY_BY_NAME: Final = frozenset({DATA_LIMIT_EXCEEDED})
_STATES_PREFIX: Final = "States."


def matches(error: str | None, error_equals: set[str | None]) -> bool | None:
    """False where AWS's rule refuses the match; None to leave the decision to moto."""
    if error in _NEVER_CAUGHT:
        return False
    if error in _CAUGHT_ONLY_BY_NAME and error not in error_equals:
        return False
    return None


@moto_patch
def _install_terminal_errors() -> None:
    original = ErrorEqualsDecl._eval_body
    if getattr(original, MARKER, None) is not None:
        return

    def _eval_body(self: Any, env: Any) -> None:
        error = getattr(env.stack[-1], "error_name", None)
        verdict = matches(error, {getattr(name, "error_name", None) for name in self.error_names})
        if verdict is not None:
            env.stack.pop()
            env.stack.append(verdict)
            return
        original(self, env)

    setattr(_eval_body, MARKER, "stepfunctions: nothing catches States.Runtime, nor States.ALL DataLimitExceeded")
    ErrorEqualsDecl._eval_body = _eval_body  # type: ignore[method-assign]


def error_name_of(error_name: str | None) -> ErrorName:
    """An iteration's error as the Map sees it (moto calls this with its keyword): a `States.` error
    keeps its built-in name."""
    if error_name is not None and error_name.startswith(_STATES_PREFIX):
        try:
            return StatesErrorName(typ=StatesErrorNameType.from_name(error_name))
        except ValueError:
            pass  # a States. name moto does not know: moto's own handling (States.Runtime) applies
    return CustomErrorName(error_name=error_name)


@moto_patch
def _install_iteration_error_names() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (  # noqa: PLC0415
        iteration_worker,
    )

    if getattr(getattr(iteration_worker, "CustomErrorName"), MARKER, None) is not None:  # noqa: B009
        return
    setattr(error_name_of, MARKER, "stepfunctions: an iteration's States.* error reaches its Map under its own name")
    setattr(iteration_worker, "CustomErrorName", error_name_of)  # noqa: B010
