"""Lambda in-process: the real handlers run under their function's environment and role, every boto3 call recorded.

moto's LambdaSimpleBackend echoes its input; LambdaDispatcher replaces its invoke with a call into the
handler, signed as the function's execution role, its stdout shipped as Lambda ships it to CloudWatch Logs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import threading
import time
import traceback
import tracemalloc
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TextIO

import boto3
from moto.awslambda_simple.models import LambdaSimpleBackend

from tagpatch_local import simulator
from tagpatch_local.account_facts import ACCOUNT_ID, DEFAULT_REGION, ROOT_CREDENTIALS
from tagpatch_local.template import FunctionSpec, TemplateError

# --- recording AWS calls -------------------------------------------------------------------------


class CallRecorder:
    """Counts every boto3 call made while a handler runs, per function, from botocore's events; and per
    execution too, so the org cycle's targets, whose cycles run at once, each get their own."""

    def __init__(self) -> None:
        self.by_function: dict[str, Counter[str]] = {}
        self.by_execution: dict[str, dict[str, Counter[str]]] = {}
        self._lock = threading.Lock()

    def record(self, function: str, call: str, execution: str | None = None) -> None:
        with self._lock:
            self.by_function.setdefault(function, Counter())[call] += 1
            if execution is not None:
                self.by_execution.setdefault(execution, {}).setdefault(function, Counter())[call] += 1

    def snapshot(self) -> dict[str, Counter[str]]:
        with self._lock:
            return {name: Counter(calls) for name, calls in self.by_function.items()}

    def of_execution(self, execution: str) -> dict[str, Counter[str]]:
        """The calls the functions made for one execution (its ARN)."""
        with self._lock:
            return {name: Counter(calls) for name, calls in self.by_execution.get(execution, {}).items()}


current_invocation = threading.local()  # .recorder, .function and .execution while a handler runs on this thread


def execution_of(event: Any) -> str | None:
    """The execution a task's payload belongs to: PrepareCycle's `execution_id`, a later state's `cycle`,
    or the org cycle's `org`."""
    if not isinstance(event, dict):
        return None
    if isinstance(event.get("execution_id"), str):
        return str(event["execution_id"])
    for key in ("cycle", "org"):
        context = event.get(key)
        if isinstance(context, dict) and isinstance(context.get("execution_id"), str):
            return str(context["execution_id"])
    return None


def _record_call(model: Any, **_: Any) -> None:
    recorder: CallRecorder | None = getattr(current_invocation, "recorder", None)
    if recorder is not None:
        recorder.record(
            current_invocation.function,
            f"{model.service_model.endpoint_prefix}:{model.name}",
            getattr(current_invocation, "execution", None),
        )


def install_call_hook() -> None:
    """Give this mock its own default boto3 session, with the recording hook, and no stale clients.

    moto swaps boto3.DEFAULT_SESSION for None on every start, so each simulated account registers
    the hook again; tagpatch's cached clients are dropped so the handlers make new ones from it.
    """
    from tagpatch.aws import client  # noqa: PLC0415 - the layer's cache, cleared deliberately

    boto3.setup_default_session()
    boto3.DEFAULT_SESSION.events.register("before-call", _record_call)
    client.cache_clear()


# --- in-process Lambda -----------------------------------------------------------------------------


@dataclass
class FakeLambdaContext:
    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: int
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


@dataclass(frozen=True)
class FunctionRun:
    """One Lambda invocation as the simulated account ran it (benchmarks read these)."""

    function: str  # the template's logical id
    memory_mb: int  # its MemorySize
    seconds: float  # wall time of the handler, AWS calls to the in-process simulator included
    peak_bytes: int | None  # peak Python allocations during the handler, when measured
    execution: str | None = None  # the execution whose task it was (dispatch.execution_of)


@dataclass
class LocalFunction:
    spec: FunctionSpec
    name: str
    arn: str
    environment: dict[str, str]
    role_arn: str = ""
    module: ModuleType | None = None


def _role_credentials(sts: Any, role_arn: str, session_name: str) -> dict[str, str]:
    """Temporary credentials for a function's role, as Lambda gives each invocation (moto STS)."""
    credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }


@contextlib.contextmanager
def _signing_as(credentials: Mapping[str, str]) -> Iterator[None]:
    """Make every boto3 client created meanwhile sign with `credentials`, and none outlive it.

    tagpatch caches its clients per process (tagpatch.aws.client); a client made under one function's
    role must never serve another function, so the cache is emptied on the way in and out.
    """
    from tagpatch.aws import client  # noqa: PLC0415 - the layer's cache, cleared deliberately

    session = boto3.DEFAULT_SESSION._session if boto3.DEFAULT_SESSION is not None else None
    client.cache_clear()
    if session is not None:
        session.set_credentials(
            credentials["AWS_ACCESS_KEY_ID"], credentials["AWS_SECRET_ACCESS_KEY"], credentials["AWS_SESSION_TOKEN"]
        )
    try:
        yield
    finally:
        client.cache_clear()
        if session is not None:
            session.set_credentials(ROOT_CREDENTIALS["aws_access_key_id"], ROOT_CREDENTIALS["aws_secret_access_key"])


class _FunctionLogs(io.TextIOBase):
    """A function's stdout as Lambda ships it to CloudWatch Logs: written to the run's log, and each
    embedded-metric-format line (Powertools Metrics) extracted into CloudWatch metrics, as CloudWatch
    Logs does, so the alarms that watch them evaluate (simulator.cloudwatch.put_emf)."""

    def __init__(self, log: TextIO, region: str) -> None:
        self.log = log
        self.region = region
        self._pending = ""

    def write(self, text: str) -> int:
        self.log.write(text)
        if self._pending or '"_aws"' in text:
            self._pending += text
            while "\n" in self._pending:
                line, self._pending = self._pending.split("\n", 1)
                if '"_aws"' in line:
                    simulator.cloudwatch.put_emf(ACCOUNT_ID, self.region, line)
        return len(text)

    def flush(self) -> None:
        self.log.flush()


class LambdaDispatcher:
    """Replaces moto's echoing LambdaSimpleBackend.invoke with a call into the real handler."""

    def __init__(self, recorder: CallRecorder, log_stream: TextIO) -> None:
        self.functions: dict[str, LocalFunction] = {}
        self.recorder = recorder
        self.log_stream = log_stream
        # Handlers share one process and os.environ, so invocations take turns.
        self._lock = threading.Lock()
        self._original: Callable[..., Any] | None = None
        self.sts: Any = None  # the account's STS client (root credentials), set when it deploys
        self.runs: list[FunctionRun] = []
        self.region = DEFAULT_REGION  # where the functions' metrics go (the account's Region)
        self.measure_memory = False  # tracemalloc slows handlers several times: benchmarks only

    def install(self) -> None:
        dispatcher = self
        self._original = LambdaSimpleBackend.invoke

        def invoke(
            backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
        ) -> bytes:
            return dispatcher.invoke(function_name, body, response_headers)

        LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        if self._original is not None:
            LambdaSimpleBackend.invoke = self._original  # type: ignore[method-assign]
            self._original = None

    @contextlib.contextmanager
    def _environment(self, function: LocalFunction, credentials: Mapping[str, str]) -> Iterator[None]:
        saved = dict(os.environ)
        os.environ.update(function.environment)
        os.environ.update(credentials)
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def _load(self, function: LocalFunction) -> ModuleType:
        if function.module is None:
            module_name, _ = function.spec.handler.rsplit(".", 1)
            path = function.spec.code_dir / f"{module_name.replace('.', '/')}.py"
            spec = importlib.util.spec_from_file_location(f"tagpatch_fn_{function.spec.logical_id}", path)
            if spec is None or spec.loader is None:
                raise TemplateError(f"cannot load handler {function.spec.handler} from {path}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)  # module-level config is read here, under the function's env
            function.module = module
        return function.module

    @contextlib.contextmanager
    def _measured(self, function: LocalFunction) -> Iterator[None]:
        if self.measure_memory:
            tracemalloc.start()
        started = time.perf_counter()
        try:
            yield
        finally:
            seconds = time.perf_counter() - started
            peak = None
            if self.measure_memory:
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
            execution = getattr(current_invocation, "execution", None)
            self.runs.append(FunctionRun(function.spec.logical_id, function.spec.memory, seconds, peak, execution))

    def invoke(self, function_name: str, body: Any, response_headers: dict[str, str]) -> bytes:
        name = function_name.rsplit(":", 1)[-1]
        function = self.functions[name]
        event = json.loads(body) if body else {}
        with self._lock:
            # Each invocation signs as its own function's role; Lambda names the session after the function.
            credentials = _role_credentials(self.sts, function.role_arn, name) if function.role_arn else None
            return self._invoke(function, name, event, credentials, response_headers)

    def _invoke(
        self,
        function: LocalFunction,
        name: str,
        event: Any,
        credentials: Mapping[str, str] | None,
        response_headers: dict[str, str],
    ) -> bytes:
        with (
            self._environment(function, credentials or {}),
            _signing_as(credentials) if credentials else contextlib.nullcontext(),
            contextlib.redirect_stdout(_FunctionLogs(self.log_stream, self.region)),
            warnings.catch_warnings(),
        ):
            # A handler that fails before adding a metric makes Powertools warn; the failure is reported.
            warnings.filterwarnings("ignore", message="No application metrics to publish")
            current_invocation.recorder, current_invocation.function = self.recorder, function.spec.logical_id
            current_invocation.execution = execution_of(event)
            try:
                module = self._load(function)
                handler = getattr(module, function.spec.handler.rsplit(".", 1)[1])
                context = FakeLambdaContext(name, function.arn, function.spec.memory, function.spec.timeout)
                with self._measured(function):
                    result = handler(event, context)
                return json.dumps(result).encode()
            except Exception as error:
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps(
                    {
                        "errorType": type(error).__name__,
                        "errorMessage": str(error),
                        "stackTrace": traceback.format_exception(error)[-6:],
                    }
                ).encode()
            finally:
                current_invocation.recorder = current_invocation.execution = None
                self.log_stream.flush()
