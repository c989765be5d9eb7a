"""Powertools Logger, Tracer and Metrics, wired the same way for every handler.

The Step Functions execution id travels in each task's payload (`cycle.execution_id`) and becomes
the correlation id, so one cycle's logs can be found across all functions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Final

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.aws import invocation, transient_errors_raised_as_retryable

logger: Final = Logger()
tracer: Final = Tracer()
metrics: Final = Metrics()

CORRELATION_ID_PATH: Final = "cycle.execution_id"

# A handler returns its step's result type (tagpatch.workflow), so mypy checks what each one returns.
type Handler[ResultT: Mapping[str, Any]] = Callable[[dict[str, Any], LambdaContext], ResultT]


def lambda_entry[ResultT: Mapping[str, Any]](handler: Handler[ResultT]) -> Handler[ResultT]:
    """Logger context over Tracer over Metrics, and AWS throttling surfaced as a retryable error; the
    invocation acts at home until the handler calls tagpatch.aws.act_in."""

    @functools.wraps(handler)
    def with_retryable_errors(event: dict[str, Any], context: LambdaContext) -> ResultT:
        with invocation(str(getattr(context, "invoked_function_arn", ""))), transient_errors_raised_as_retryable():
            return handler(event, context)

    decorated: Handler[ResultT] = logger.inject_lambda_context(
        correlation_id_path=CORRELATION_ID_PATH, clear_state=True
    )(tracer.capture_lambda_handler(metrics.log_metrics(with_retryable_errors)))
    return decorated
