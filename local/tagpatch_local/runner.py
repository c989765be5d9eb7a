"""The simulated account: moto plus tagpatch's extensions, with the stack from template.yaml in it.

The state machine definition that `sam deploy` ships is executed by moto's Step Functions
interpreter; its Lambda tasks are dispatched in-process to the real handlers, each under the
environment template.yaml gives it. Every AWS call a handler makes goes through boto3 and is
recorded per function.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import io
import json
import logging
import os
import random
import re
import sys
import threading
import time
import traceback
import tracemalloc
import uuid
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, Final, Literal, TextIO

import boto3
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.botocore_stubber import BotocoreStubber
from moto.ssm.models import ssm_backends

from tagpatch_local import simulator
from tagpatch_local.fleet import FleetInstance, seed_fleet
from tagpatch_local.template import FunctionSpec, Template, TemplateError, resolve, substitute_definition

ACCOUNT_ID: Final = "123456789012"
DEFAULT_REGION: Final = "us-east-1"
MOTO_CONFIG: Final[Any] = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
READ_PREFIXES: Final = ("Describe", "Get", "List", "Head", "Lookup", "Search")
# Writes that are the cycle's own output rather than changes to the account's patching setup
# (s3:DeleteObject: only the cycle lease, released at the end of every cycle).
ARTIFACT_WRITES: Final = frozenset({"s3:PutObject", "s3:DeleteObject", "sns:Publish", "sns:PublishBatch"})
# Local runs have no X-Ray daemon; everything else about the environment is the template's.
LOCAL_ENVIRONMENT: Final = {"POWERTOOLS_TRACE_DISABLED": "true"}
# The runner's own credentials: the account's root, which the simulated IAM does not restrict.
ROOT_CREDENTIALS: Final = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
# Lambda's execution-role trust policy: only the Lambda service may assume a function's role.
LAMBDA_TRUST_POLICY: Final = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


# The SAM policy templates the runner expands, as samtranslator's policy_templates.json defines them
# (AWS SAM Developer Guide, "Policy template list"): template name -> its statement from its parameters.
SAM_POLICY_TEMPLATES: Final[Mapping[str, Callable[[Mapping[str, Any]], dict[str, Any]]]] = {
    "LambdaInvokePolicy": lambda parameters: {
        "Effect": "Allow",
        "Action": ["lambda:InvokeFunction"],
        "Resource": {
            "Fn::Sub": [
                "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${functionName}*",
                {"functionName": parameters["FunctionName"]},
            ]
        },
    },
}
# The state machine's execution role: SAM lets Step Functions assume it.
STATES_TRUST_POLICY: Final = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def is_write(call: str) -> bool:
    operation = call.split(":", 1)[1]
    return not operation.startswith(READ_PREFIXES)


def coerce_to_shape(value: Any, shape: Any) -> Any:
    """CloudFormation passes parameters as strings; give each value the type the API's model wants.

    Keys the operation does not know are dropped (CloudFormation-only properties).
    """
    if shape.type_name == "structure":
        return {key: coerce_to_shape(item, shape.members[key]) for key, item in value.items() if key in shape.members}
    if shape.type_name == "list":
        return [coerce_to_shape(item, shape.member) for item in value]
    if shape.type_name in {"integer", "long"}:
        return int(value)
    if shape.type_name == "boolean":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    return value


class _RawBody(io.BytesIO):
    """What botocore reads an HTTP response body from."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


# --- recording AWS calls -------------------------------------------------------------------------


class CallRecorder:
    """Counts every boto3 call made while a handler runs, per function, from botocore's events."""

    def __init__(self) -> None:
        self.by_function: dict[str, Counter[str]] = {}
        self._lock = threading.Lock()

    def record(self, function: str, call: str) -> None:
        with self._lock:
            self.by_function.setdefault(function, Counter())[call] += 1

    def snapshot(self) -> dict[str, Counter[str]]:
        with self._lock:
            return {name: Counter(calls) for name, calls in self.by_function.items()}


_invocation = threading.local()  # .recorder and .function while a handler runs on this thread


def _record_call(model: Any, **_: Any) -> None:
    recorder: CallRecorder | None = getattr(_invocation, "recorder", None)
    if recorder is not None:
        recorder.record(_invocation.function, f"{model.service_model.endpoint_prefix}:{model.name}")


def _install_call_hook() -> None:
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
            self.runs.append(FunctionRun(function.spec.logical_id, function.spec.memory, seconds, peak))

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
            _invocation.recorder, _invocation.function = self.recorder, function.spec.logical_id
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
                _invocation.recorder = None
                self.log_stream.flush()


# --- faults ------------------------------------------------------------------------------------------

FaultMode = Literal["not_sent", "response_lost"]
READ_TIMEOUT: Final = "ReadTimeout"  # a fail_next code: the client's read times out (no HTTP answer)


class SimulatedCrash(Exception):
    """A Lambda invocation dying mid-way (timeout, out of memory): the infrastructure, not tagpatch."""


@dataclass
class _Fault:
    service: str  # botocore's service id, e.g. "ssm"
    operation: str | None  # None: every operation of the service
    code: str
    status: int
    mode: FaultMode
    remaining: int | None  # None: until cleared
    share: float = 1.0
    seed: int = 0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def fires(self, service: str, operation: str) -> bool:
        if service != self.service or self.operation not in (None, operation):
            return False
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.share < 1.0 and self.rng.random() >= self.share:
            return False
        if self.remaining is not None:
            self.remaining -= 1
        return True


@dataclass
class _Crash:
    function: str  # the template's logical id
    service: str
    writes: int  # writes still allowed before the crash

    def fires(self, function: str, service: str, operation: str) -> bool:
        if function != self.function or service != self.service or not is_write(f"{service}:{operation}"):
            return False
        self.writes -= 1
        return self.writes < 0


class FaultInjector:
    """Faults on the wire between the handlers and the simulated services.

    It wraps moto's request handler (botocore's before-send hook that answers every request), so a
    fault can stop a request before moto sees it, or let moto carry it out and lose the answer. The
    runner's own calls (seeding, reading state) are never touched.
    """

    def __init__(self, account: SimulatedAccount) -> None:
        self.account = account
        self.faults: list[_Fault] = []
        self.crashes: list[_Crash] = []
        self.injected: Counter[str] = Counter()  # `service:Operation mode` -> how many faults fired
        self.throttle: simulator.throttling.Throttle | None = None  # throttle_at_documented_rates()
        self._lock = threading.Lock()
        self._original: Callable[..., Any] | None = None

    def install(self) -> None:
        injector = self
        self._original = original = BotocoreStubber.__call__

        def call(stubber: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> AWSResponse | None:
            return injector.handle(stubber, original, event_name, request, **kwargs)

        BotocoreStubber.__call__ = call  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        if self._original is not None:
            BotocoreStubber.__call__ = self._original  # type: ignore[method-assign]
            self._original = None

    def add(self, fault: _Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def add_crash(self, crash: _Crash) -> None:
        with self._lock:
            self.crashes.append(crash)

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.crashes.clear()
            self.throttle = None

    def handle(
        self, stubber: BotocoreStubber, original: Callable[..., Any], event_name: str, request: Any, **kwargs: Any
    ) -> AWSResponse | None:
        function = getattr(_invocation, "function", None) if getattr(_invocation, "recorder", None) else None
        _, service, operation = event_name.split(".", 2)
        fault = None
        throttle = None
        if function is not None:
            with self._lock:
                crash = next((c for c in self.crashes if c.fires(function, service, operation)), None)
                if crash is not None:
                    self.crashes.remove(crash)
                    self.injected[f"{service}:{operation} crash"] += 1
                    raise SimulatedCrash(f"{function} died before {service}:{operation} (simulated Lambda timeout)")
                fault = next((f for f in self.faults if f.fires(service, operation)), None)
                if fault is not None:
                    self.injected[f"{service}:{operation} {fault.mode}"] += 1
                throttle = self.throttle
            if fault is None and throttle is not None:
                refused = throttle.admit(
                    ACCOUNT_ID,
                    self.account.region,
                    service,
                    operation,
                    params=simulator.throttling.query_parameters(request.body) if service == "ec2" else None,
                    url=request.url,
                )
                if refused is not None:  # not carried out, as AWS answers a request over its rate
                    with self._lock:
                        self.injected[f"{service}:{operation} throttled"] += 1
                    return self._error_response(request, service, refused.code, refused.status, "Rate exceeded")
        if fault is None:
            return original(stubber, event_name, request, **kwargs)
        if fault.mode == "response_lost":
            original(stubber, event_name, request, **kwargs)  # the service does it; the answer is lost
        if fault.code == READ_TIMEOUT:
            raise ReadTimeoutError(endpoint_url=request.url)
        return self._error_response(request, service, fault.code, fault.status, f"simulated {fault.code}")

    def _error_response(self, request: Any, service: str, code: str, status: int, message: str) -> AWSResponse:
        protocol = self.account.client(service).meta.service_model.protocol
        if protocol in {"ec2", "query"}:
            body = (
                f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message>"
                "</Error></Errors><RequestID>tagpatch-sim</RequestID></Response>"
            ).encode()
            headers = {"Content-Type": "text/xml"}
        elif protocol == "rest-xml":
            body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
            headers = {"Content-Type": "application/xml"}
        else:
            body = json.dumps({"__type": code, "message": message}).encode()
            headers = {"Content-Type": "application/x-amz-json-1.1"}
        return AWSResponse(request.url, status, headers, _RawBody(body))


# --- the account ------------------------------------------------------------------------------------


@dataclass
class CycleResult:
    execution_name: str
    execution_arn: str
    status: str
    output: dict[str, Any] | None  # the final output; for a failed execution, what its Fail state received
    error: str | None
    cause: str | None
    events: list[dict[str, Any]]
    calls_by_function: dict[str, Counter[str]]
    wall_seconds: float
    function_runs: list[FunctionRun] = field(default_factory=list)  # simulated account only

    @property
    def calls(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for calls in self.calls_by_function.values():
            total.update(calls)
        return total

    @property
    def write_calls(self) -> Counter[str]:
        return Counter({call: count for call, count in self.calls.items() if is_write(call)})

    @property
    def resource_write_calls(self) -> Counter[str]:
        """Writes that change the account's patching setup (not the run's own artifacts and alerts)."""
        return Counter({call: n for call, n in self.write_calls.items() if call not in ARTIFACT_WRITES})

    @property
    def state_transitions(self) -> int:
        return sum(1 for event in self.events if event["type"].endswith("StateEntered"))

    @property
    def max_payload_bytes(self) -> int:
        """The largest state input or output, or task result, in the execution's history."""
        largest = 0
        for event in self.events:
            for key, details in event.items():
                if not key.endswith("EventDetails") or not isinstance(details, dict):
                    continue
                for field_name in ("input", "output"):
                    value = details.get(field_name)
                    if isinstance(value, str):
                        largest = max(largest, len(value.encode()))
        return largest


ProgressCallback = Callable[[dict[str, Any]], None]


class _Clients:
    """One boto3 client per service for the runner's own calls (seeding, executions, reports)."""

    def client(self, service: str) -> Any:
        clients: dict[str, Any] = self.__dict__.setdefault("_clients", {})
        if service not in clients:
            # Explicit keys: a client made while a handler runs must not pick up that function's role.
            credentials = ROOT_CREDENTIALS if isinstance(self, SimulatedAccount) else {}
            clients[service] = boto3.client(service, region_name=self.__dict__.get("region"), **credentials)
        return clients[service]


@dataclass(frozen=True)
class WindowRunSummary:
    """A maintenance window run the simulated account made while its clock advanced."""

    window_id: str
    window_name: str
    started: datetime
    status: str  # as SSM shows it when the advance ends: IN_PROGRESS for a run still going


class SimulatedAccount(_Clients):
    """A moto account with the tagpatch stack from template.yaml created in it."""

    def __init__(
        self,
        template_path: Path,
        *,
        region: str = DEFAULT_REGION,
        parameter_overrides: Mapping[str, str] | None = None,
        log_stream: TextIO | None = None,
        config_recorder: bool = False,
    ) -> None:
        """config_recorder: the account records EC2 instances in AWS Config and the stack is deployed
        with ConfigRules=true (unless parameter_overrides says otherwise), so its rules evaluate."""
        self.template = Template.load(template_path)
        self.region = region
        self.config_recorder = config_recorder
        recorder_parameters = (
            {"ConfigRules": "true"} if config_recorder and "ConfigRules" in self.template.parameter_defaults() else {}
        )
        self.parameters = {**self.template.parameter_defaults(), **recorder_parameters, **(parameter_overrides or {})}
        self.recorder = CallRecorder()
        self.dispatcher = LambdaDispatcher(self.recorder, log_stream or io.StringIO())
        self.dispatcher.region = region
        self.physical: dict[tuple[str, str | None], str] = {}
        self.state_machine_arn = ""
        self._mock: Any = None
        self._saved_environ: dict[str, str] = {}
        self._saved_log_stream: Any = None
        self._faults: FaultInjector | None = None
        self._owner_queues: dict[str, str] = {}  # owner -> queue URL (subscribe_owner_queues)

    # -- lifecycle --
    def __enter__(self) -> SimulatedAccount:
        self._saved_environ = dict(os.environ)
        for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            os.environ.pop(key, None)
        os.environ.update(
            {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region,
                **LOCAL_ENVIRONMENT,
            }
        )
        self._mock = mock_aws(config=MOTO_CONFIG)
        self._mock.start()
        # moto's interpreter logs every caught task failure as an error; the history has them all.
        logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
        simulator.install()
        simulator.iam.reset_allowed_checks()
        _install_call_hook()
        self.dispatcher.install()
        # The shared layer's Logger and Metrics read the environment when first imported: give this
        # process the environment every function shares (template Globals), as Lambda would.
        os.environ.update(
            {name: str(resolve(value, self._resolve)) for name, value in self.template.global_environment().items()}
        )
        # Powertools' handler keeps the stream it was created with; point it at this run's log.
        from tagpatch.observability import logger as handler_logger  # noqa: PLC0415

        handler = handler_logger.registered_handler
        if isinstance(handler, logging.StreamHandler):
            self._saved_log_stream = handler.setStream(self.dispatcher.log_stream)
        try:
            self._deploy()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        from tagpatch.aws import client  # noqa: PLC0415
        from tagpatch.observability import logger as handler_logger  # noqa: PLC0415

        handler = handler_logger.registered_handler
        if self._saved_log_stream is not None and isinstance(handler, logging.StreamHandler):
            handler.setStream(self._saved_log_stream)
            self._saved_log_stream = None
        client.cache_clear()  # its clients belong to this account's session
        if self._faults is not None:
            self._faults.uninstall()
            self._faults = None
        simulator.stepfunctions.set_listing_lag(ACCOUNT_ID, self.region, 0)
        self.dispatcher.uninstall()
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        os.environ.clear()
        os.environ.update(self._saved_environ)
        gc.unfreeze()

    # -- deploying the template --
    def _resolve(self, logical_id: str, attribute: str | None) -> str:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::StackName": "tagpatch-local",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if attribute is None and logical_id in pseudo:
            return pseudo[logical_id]
        if attribute is None and logical_id in self.parameters:
            return self.parameters[logical_id]
        key = (logical_id, attribute)
        if key not in self.physical:
            self._create(logical_id)
        if key not in self.physical:
            raise TemplateError(f"the local runner cannot resolve {logical_id}{'.' + attribute if attribute else ''}")
        return self.physical[key]

    def _create(self, logical_id: str) -> None:
        """Create a resource that a function's environment or the state machine refers to."""
        kind = self.template.resource_type(logical_id)
        if kind == "AWS::S3::Bucket":
            name = f"tagpatch-local-{logical_id.lower()}-{ACCOUNT_ID}"
            self.client("s3").create_bucket(Bucket=name)
            self.physical.update({(logical_id, None): name, (logical_id, "Arn"): f"arn:aws:s3:::{name}"})
        elif kind == "AWS::SNS::Topic":
            properties = self.template.resources[logical_id].get("Properties", {})
            # The topic's key matters: publishing to an encrypted topic needs the publisher's KMS permissions.
            key = properties.get("KmsMasterKeyId")
            attributes = {"KmsMasterKeyId": str(resolve(key, self._resolve))} if key is not None else {}
            arn = self.client("sns").create_topic(Name=f"tagpatch-local-{logical_id}", Attributes=attributes)[
                "TopicArn"
            ]
            self.physical.update({(logical_id, None): arn, (logical_id, "TopicName"): arn.rsplit(":", 1)[1]})
        elif kind == "AWS::KMS::Key":
            properties = self.template.resources[logical_id].get("Properties", {})
            key_policy = resolve(properties.get("KeyPolicy"), self._resolve)
            extra = {"Policy": json.dumps(key_policy)} if key_policy else {}
            meta = self.client("kms").create_key(Description=logical_id, **extra)["KeyMetadata"]
            self.physical.update({(logical_id, None): meta["KeyId"], (logical_id, "Arn"): meta["Arn"]})
        elif kind == "AWS::Events::Rule":
            properties = resolve(self.template.resources[logical_id].get("Properties", {}), self._resolve)
            events = self.client("events")
            name = f"tagpatch-local-{logical_id}"
            arn = events.put_rule(
                Name=name,
                EventPattern=json.dumps(properties["EventPattern"]),
                State=properties.get("State", "ENABLED"),
                Description=properties.get("Description", ""),
            )["RuleArn"]
            self.physical.update({(logical_id, None): name, (logical_id, "Arn"): arn})
            targets = [
                coerce_to_shape(target, events.meta.service_model.shape_for("Target"))
                for target in properties.get("Targets", [])
            ]
            if targets:
                events.put_targets(Rule=name, Targets=targets)
        elif kind == "AWS::SQS::QueuePolicy":
            properties = resolve(
                self._decided(self.template.resources[logical_id].get("Properties", {})), self._resolve
            )
            for queue_url in properties["Queues"]:
                self.client("sqs").set_queue_attributes(
                    QueueUrl=queue_url, Attributes={"Policy": json.dumps(properties["PolicyDocument"])}
                )
            self.physical[(logical_id, None)] = logical_id
        elif kind == "AWS::SNS::TopicPolicy":
            properties = resolve(self.template.resources[logical_id].get("Properties", {}), self._resolve)
            for topic_arn in properties["Topics"]:
                self.client("sns").set_topic_attributes(
                    TopicArn=topic_arn, AttributeName="Policy", AttributeValue=json.dumps(properties["PolicyDocument"])
                )
            self.physical[(logical_id, None)] = logical_id
        elif kind == "AWS::CloudWatch::Alarm":
            cloudwatch = self.client("cloudwatch")
            name = f"tagpatch-local-{logical_id}"
            request = coerce_to_shape(
                resolve(self.template.resources[logical_id]["Properties"], self._resolve),
                cloudwatch.meta.service_model.operation_model("PutMetricAlarm").input_shape,
            )
            cloudwatch.put_metric_alarm(**{**request, "AlarmName": name})
            arn = f"arn:aws:cloudwatch:{self.region}:{ACCOUNT_ID}:alarm:{name}"
            self.physical.update({(logical_id, None): name, (logical_id, "Arn"): arn})
        elif kind == "AWS::S3::BucketPolicy":
            properties = resolve(self._decided(self.template.resources[logical_id]["Properties"]), self._resolve)
            self.client("s3").put_bucket_policy(
                Bucket=properties["Bucket"], Policy=json.dumps(properties["PolicyDocument"])
            )
            self.physical[(logical_id, None)] = logical_id
        elif kind == "AWS::SSM::PatchBaseline":
            ssm = self.client("ssm")
            request = coerce_to_shape(
                resolve(self.template.resources[logical_id].get("Properties", {}), self._resolve),
                ssm.meta.service_model.operation_model("CreatePatchBaseline").input_shape,
            )
            baseline_id = ssm.create_patch_baseline(**request)["BaselineId"]
            self.physical[(logical_id, None)] = baseline_id
        elif kind == "AWS::SSM::ResourceDataSync":
            properties = resolve(self.template.resources[logical_id].get("Properties", {}), self._resolve)
            destination = properties["S3Destination"]
            self.client("ssm").create_resource_data_sync(
                SyncName=properties["SyncName"],
                SyncType=properties.get("SyncType", "SyncToDestination"),
                S3Destination={
                    "BucketName": destination["BucketName"],
                    "Prefix": destination.get("BucketPrefix", ""),
                    "SyncFormat": destination["SyncFormat"],
                    "Region": destination["BucketRegion"],
                },
            )
            self.physical[(logical_id, None)] = properties["SyncName"]
        elif kind == "AWS::Serverless::Function":
            self._create_function(self.template.functions()[logical_id])
        elif kind == "AWS::Lambda::Permission":
            properties = resolve(self.template.resources[logical_id].get("Properties", {}), self._resolve)
            extra = {k: properties[k] for k in ("SourceArn", "SourceAccount") if k in properties}
            self.client("lambda").add_permission(
                FunctionName=properties["FunctionName"],
                StatementId=logical_id,
                Action=properties["Action"],
                Principal=properties["Principal"],
                **extra,
            )
            self.physical[(logical_id, None)] = logical_id
        elif kind == "AWS::Config::ConfigRule":
            properties = resolve(self.template.resources[logical_id].get("Properties", {}), self._resolve)
            rule = simulator.config.put_rule(ACCOUNT_ID, self.region, properties)
            self.physical.update({(logical_id, None): rule.name, (logical_id, "Arn"): rule.arn})
        elif kind == "AWS::Scheduler::ScheduleGroup":
            properties = resolve(self.template.resources[logical_id].get("Properties", {}), self._resolve)
            name = str(properties.get("Name") or f"tagpatch-local-{logical_id}")
            arn = self.client("scheduler").create_schedule_group(Name=name)["ScheduleGroupArn"]
            self.physical.update({(logical_id, None): name, (logical_id, "Arn"): arn})
        elif kind == "AWS::SQS::Queue":
            sqs = self.client("sqs")
            name = f"tagpatch-local-{logical_id}"
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            self.physical.update({(logical_id, None): url, (logical_id, "Arn"): arn, (logical_id, "QueueName"): name})
        elif kind == "AWS::IAM::Role":
            # A service role (Scheduler's): its trust policy and inline policies as the template gives them.
            properties = resolve(self.template.resources[logical_id].get("Properties", {}), self._resolve)
            iam = self.client("iam")
            role_name = f"tagpatch-local-{logical_id}"
            arn = iam.create_role(
                RoleName=role_name, AssumeRolePolicyDocument=json.dumps(properties["AssumeRolePolicyDocument"])
            )["Role"]["Arn"]
            for policy in properties.get("Policies", []):
                iam.put_role_policy(
                    RoleName=role_name,
                    PolicyName=policy["PolicyName"],
                    PolicyDocument=json.dumps(policy["PolicyDocument"]),
                )
            self.physical.update({(logical_id, None): role_name, (logical_id, "Arn"): arn})
        else:
            raise TemplateError(f"the local runner does not create {kind} ({logical_id})")

    def _environment_for(self, spec: FunctionSpec) -> dict[str, str]:
        environment = {
            name: str(resolve(self._decided(value), self._resolve)) for name, value in spec.environment.items()
        }
        # Layer files are mounted under /opt in Lambda; locally, find them in the layer's source.
        for name, value in environment.items():
            if value.startswith("/opt/"):
                relative = value.removeprefix("/opt/")
                candidates = [self.template.layer_dir(layer) / relative for layer in spec.layer_ids]
                found = next((path for path in candidates if path.exists()), None)
                if found is None:
                    raise TemplateError(f"{spec.logical_id}: {name}={value} is in none of its layers")
                environment[name] = str(found)
        return environment

    def enabled(self, logical_id: str) -> bool:
        """Whether CloudFormation creates the resource: its Condition, if any, holds for these parameters."""
        condition = self.template.resources[logical_id].get("Condition")
        return condition is None or bool(self._condition({"Condition": condition}))

    def _condition(self, expression: Any) -> Any:
        """Evaluate a template condition (Fn::Equals/Not/And/Or, Condition) with the stack's parameters."""
        if isinstance(expression, dict) and len(expression) == 1:
            ((name, argument),) = expression.items()
            if name in ("Condition", "Fn::Condition"):  # the short form !Condition loads as Fn::Condition
                return self._condition(self.template.document.get("Conditions", {})[argument])
            if name == "Fn::Equals":
                left, right = (self._condition(item) for item in argument)
                return str(left) == str(right)
            if name == "Fn::Not":
                return not self._condition(argument[0])
            if name == "Fn::And":
                return all(self._condition(item) for item in argument)
            if name == "Fn::Or":
                return any(self._condition(item) for item in argument)
        return resolve(expression, self._resolve)

    def _decided(self, value: Any) -> Any:
        """`value` with each Fn::If replaced by its chosen branch and AWS::NoValue dropped."""
        if isinstance(value, list):
            return [item for item in (self._decided(item) for item in value) if item != {"Ref": "AWS::NoValue"}]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Fn::If"}:
            condition, when_true, when_false = value["Fn::If"]
            return self._decided(when_true if self._condition({"Condition": condition}) else when_false)
        return {key: self._decided(item) for key, item in value.items()}

    def _policy_documents(self, logical_id: str) -> list[dict[str, Any]]:
        """A function's or the state machine's policies as SAM and CloudFormation would deploy them
        (Fn::If decided, SAM policy templates in SAM_POLICY_TEMPLATES expanded)."""
        documents = []
        for policy in self.template.resources[logical_id].get("Properties", {}).get("Policies", []):
            chosen = policy
            if isinstance(policy, dict) and "Fn::If" in policy:
                condition, when_true, when_false = policy["Fn::If"]
                chosen = when_true if self._condition({"Condition": condition}) else when_false
                if chosen == {"Ref": "AWS::NoValue"}:
                    continue
            if isinstance(chosen, dict) and len(chosen) == 1 and next(iter(chosen)) in SAM_POLICY_TEMPLATES:
                ((name, parameters),) = chosen.items()
                chosen = {"Version": "2012-10-17", "Statement": [SAM_POLICY_TEMPLATES[name](parameters)]}
            if not isinstance(chosen, dict) or "Statement" not in chosen:
                # A managed policy or another SAM policy template would grant what the runner cannot see.
                raise TemplateError(f"{logical_id}: the local runner deploys only inline policy statements: {chosen!r}")
            documents.append(resolve(chosen, self._resolve))
        return documents

    def _create_role(self, logical_id: str) -> str:
        """The function's execution role, holding exactly its policies from template.yaml."""
        iam = self.client("iam")
        role_name = f"tagpatch-local-{logical_id}Role"
        arn = str(iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=LAMBDA_TRUST_POLICY)["Role"]["Arn"])
        for index, document in enumerate(self._policy_documents(logical_id)):
            iam.put_role_policy(RoleName=role_name, PolicyName=f"policy-{index}", PolicyDocument=json.dumps(document))
        return arn

    @property
    def state_machine_role_name(self) -> str:
        """The state machine's execution role, holding its Policies from template.yaml."""
        return f"tagpatch-local-{self.template.state_machine().logical_id}Role"

    def role_arn(self, logical_id: str) -> str:
        """The execution role of a function (by its template logical id)."""
        for function in self.dispatcher.functions.values():
            if function.spec.logical_id == logical_id:
                return function.role_arn
        raise TemplateError(f"no function {logical_id} in this account")

    def _create_function(self, spec: FunctionSpec) -> None:
        name = f"tagpatch-local-{spec.logical_id}"
        role_arn = self._create_role(spec.logical_id)
        environment = self._environment_for(spec)
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as bundle:
            bundle.writestr("README", "dispatched in-process by tagpatch_local.runner")
        arn = self.client("lambda").create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=role_arn,
            Handler=spec.handler,
            Code={"ZipFile": archive.getvalue()},
            Timeout=spec.timeout,
            MemorySize=spec.memory,
            Environment={"Variables": environment},
        )["FunctionArn"]
        self.dispatcher.functions[name] = LocalFunction(
            spec, name, arn, {**environment, "AWS_LAMBDA_FUNCTION_NAME": name, **LOCAL_ENVIRONMENT}, role_arn
        )
        self.physical.update({(spec.logical_id, None): name, (spec.logical_id, "Arn"): arn})

    def _deploy(self) -> None:
        self.dispatcher.sts = self.client("sts")
        machine = self.template.state_machine()
        iam = self.client("iam")
        # Step Functions invokes each function under this role (simulator/stepfunctions.py checks it).
        self._role_arn = iam.create_role(
            RoleName=self.state_machine_role_name, AssumeRolePolicyDocument=STATES_TRUST_POLICY
        )["Role"]["Arn"]
        for logical_id in self.template.functions():
            if self.enabled(logical_id):
                self._resolve(logical_id, "Arn")
        for index, document in enumerate(self._policy_documents(machine.logical_id)):
            iam.put_role_policy(
                RoleName=self.state_machine_role_name, PolicyName=f"policy-{index}", PolicyDocument=json.dumps(document)
            )
        # Resources nothing refers to that still shape what happens: rules that route events, the
        # topic and bucket policies that let services deliver, the permissions that let services invoke functions,
        # Config rules (which evaluate only while the account's recorder runs) and the data sync.
        kinds = (
            "AWS::Events::Rule",
            "AWS::SNS::TopicPolicy",
            "AWS::SQS::QueuePolicy",
            "AWS::S3::BucketPolicy",
            "AWS::Lambda::Permission",
            "AWS::Config::ConfigRule",
            "AWS::SSM::ResourceDataSync",
        )
        for logical_id in self.template.resources:
            if self.template.resource_type(logical_id) in kinds and self.enabled(logical_id):
                self._resolve(logical_id, None)
        substitutions = {name: str(resolve(value, self._resolve)) for name, value in machine.substitutions.items()}
        definition = substitute_definition(machine.definition_path.read_text(encoding="utf-8"), substitutions)
        self.state_machine_arn = self.client("stepfunctions").create_state_machine(
            name=str(resolve(machine.name, self._resolve)) if machine.name else "tagpatch-local-patch-cycle",
            definition=definition,
            roleArn=self._role_arn,
            type="STANDARD",
        )["stateMachineArn"]
        self.physical[(machine.logical_id, None)] = self.state_machine_arn
        # Alarms watch the state machine too, so they come last; each notifies as CloudWatch does.
        for logical_id in self.template.resources:
            if self.template.resource_type(logical_id) == "AWS::CloudWatch::Alarm" and self.enabled(logical_id):
                self._resolve(logical_id, None)
        if self.config_recorder:
            simulator.config.start_recorder(ACCOUNT_ID, self.region, self.now)
            self._capture_notifications()

    def _capture_notifications(self) -> None:
        """Subscribe a queue to the notifications topic, so a run can show every message it got but reminders."""
        sqs = self.client("sqs")
        self._notifications_queue = sqs.create_queue(QueueName="tagpatch-local-notifications-capture")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self._notifications_queue, AttributeNames=["QueueArn"])
        # Pre-patch reminders have their own files (notifications/<owner>.jsonl, reminders.jsonl).
        self.client("sns").subscribe(
            TopicArn=self.physical_id("NotificationsTopic"),
            Protocol="sqs",
            Endpoint=arn["Attributes"]["QueueArn"],
            Attributes={"FilterPolicy": json.dumps({"lead_hours": [{"exists": False}]})},
        )

    def drain_notifications(self) -> list[dict[str, Any]]:
        """The messages published to the notifications topic since the last drain (config_recorder only)."""
        url = getattr(self, "_notifications_queue", None)
        if url is None:
            return []
        sqs, found = self.client("sqs"), []
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                body = json.loads(message["Body"])
                attributes = {k: v.get("Value") for k, v in body.get("MessageAttributes", {}).items()}
                found.append({"subject": body.get("Subject"), "attributes": attributes, "message": body.get("Message")})
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return found

    def subscribe_owner_queues(self) -> list[str]:
        """One SQS queue per distinct Owner tag, subscribed to the notifications topic with a filter
        policy on `owner`, as a team would subscribe (docs/app-teams.md). Returns the owners newly subscribed."""
        queues = self._owner_queues
        owners = simulator.ec2.instance_tag_values(ACCOUNT_ID, self.region, "Owner")
        sqs, sns = self.client("sqs"), self.client("sns")
        added = []
        for owner in sorted(owners - set(queues)):
            label = re.sub(r"[^A-Za-z0-9_-]", "-", owner)[:50]
            url = sqs.create_queue(QueueName=f"tagpatch-local-owner-{label}-{len(queues)}")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            sns.subscribe(
                TopicArn=self.physical_id("NotificationsTopic"),
                Protocol="sqs",
                Endpoint=arn,
                Attributes={"FilterPolicy": json.dumps({"owner": [owner]})},
            )
            queues[owner] = url
            added.append(owner)
        return added

    def drain_owner_notifications(self) -> dict[str, list[dict[str, Any]]]:
        """owner -> the messages its queue received since the last drain (structured JSON where sent)."""
        queues = self._owner_queues
        sqs, found = self.client("sqs"), {}
        for owner, url in sorted(queues.items()):
            received = []
            while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                for message in messages:
                    body = json.loads(message["Body"])
                    text = body.get("Message")
                    try:
                        parsed: Any = json.loads(text) if isinstance(text, str) else text
                    except ValueError:
                        parsed = text
                    attributes = {k: v.get("Value") for k, v in body.get("MessageAttributes", {}).items()}
                    received.append(
                        {
                            "read_at": self.now().isoformat().replace("+00:00", "Z"),
                            "subject": body.get("Subject"),
                            "attributes": attributes,
                            "message": parsed,
                        }
                    )
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            found[owner] = received
        return found

    @property
    def faults(self) -> FaultInjector:
        """The account's fault injection, installed on first use (see FaultInjector)."""
        if self._faults is None:
            self._faults = FaultInjector(self)
            self._faults.install()
        return self._faults

    def fail_next(
        self,
        service: str,
        operation: str,
        code: str,
        *,
        times: int,
        status: int = 503,
        mode: FaultMode = "not_sent",
    ) -> None:
        """Make the handlers' next `times` requests of an operation fail on the wire with `code`.

        mode "not_sent": the service never sees the request (a throttle, a refused connection).
        mode "response_lost": the service carries the request out, then the answer is lost (a 5xx
        after the commit, or with code READ_TIMEOUT a read timeout). Every retry botocore makes is a
        new request that meets the rule again until `times` is used up, as in AWS.
        """
        self.faults.add(_Fault(service, operation, code, status, mode, remaining=times))

    def throttle(
        self, service: str, share: float, *, seed: int, code: str = "ThrottlingException", status: int = 400
    ) -> None:
        """Throttle a share of the handlers' requests to a service (seeded), until clear_faults()."""
        self.faults.add(_Fault(service, None, code, status, "not_sent", remaining=None, share=share, seed=seed))

    def throttle_at_documented_rates(self) -> simulator.throttling.Throttle:
        """Throttle the handlers' requests with token buckets at AWS's documented rates, until clear_faults().

        A request over its bucket's rate is answered with the service's throttling error (EC2
        RequestLimitExceeded 503, SSM ThrottlingException 400, S3 SlowDown 503) without being carried
        out. The returned Throttle records what each bucket accepted and refused (simulator.throttling).
        """
        throttle = simulator.throttling.Throttle()
        self.faults.throttle = throttle
        return throttle

    def crash_after_writes(self, function: str, writes: int, *, service: str = "ssm") -> None:
        """Kill a function's invocation once it has made `writes` more writes to `service`.

        Models a Lambda timeout or out-of-memory mid-invocation: the next write raises
        SimulatedCrash, which no handler code can mistake for an AWS error. Fires once.
        """
        self.faults.add_crash(_Crash(function, service, writes))

    def lag_execution_listings(self, seconds: float) -> None:
        """ListExecutions leaves out executions started less than `seconds` ago (eventual consistency),
        until clear_faults()."""
        simulator.stepfunctions.set_listing_lag(ACCOUNT_ID, self.region, seconds)

    def clear_faults(self) -> None:
        if self._faults is not None:
            self._faults.clear()
        simulator.stepfunctions.set_listing_lag(ACCOUNT_ID, self.region, 0)

    def use_policy(self, path: Path) -> None:
        """Point every function that reads the patch policy at another file (a scenario's policy edit)."""
        if not path.is_file():
            raise TemplateError(f"policy file {path} does not exist")
        for function in self.dispatcher.functions.values():
            if "PATCH_POLICY_PATH" in function.environment:
                function.environment["PATCH_POLICY_PATH"] = str(path)
                function.module = None  # configuration is read at import, as on a cold start

    def use_exceptions(self, path: Path) -> None:
        """Point every function that reads the patch exceptions at another file (a scenario's edit)."""
        if not path.is_file():
            raise TemplateError(f"exceptions file {path} does not exist")
        for function in self.dispatcher.functions.values():
            if "PATCH_EXCEPTIONS_PATH" in function.environment:
                function.environment["PATCH_EXCEPTIONS_PATH"] = str(path)
                function.module = None  # configuration is read at import, as on a cold start

    def physical_id(self, logical_id: str) -> str:
        """What `!Ref <logical_id>` is in this account (a bucket name, a topic ARN, a baseline id)."""
        return self._resolve(logical_id, None)

    @property
    def artifact_bucket(self) -> str:
        return self.physical_id("ArtifactBucket")

    # -- using it --
    def seed(self, instances: Sequence[FleetInstance]) -> list[str]:
        ids = seed_fleet(instances, region=self.region)
        self.config_observe()
        self.subscribe_owner_queues()
        _settle_long_lived_objects()
        return ids

    def config_observe(self) -> int:
        """Let AWS Config notice what changed (and run its periodic rules that fall due) at the clock's time.

        The recorder sees changes within minutes in AWS; here, when this is called: after seeding, each
        scenario edit, a clock advance and before each cycle. Returns the configuration items recorded.
        """
        return simulator.config.observe(ACCOUNT_ID, self.region)

    def now(self) -> datetime:
        """The simulated account's clock."""
        return simulator.clock.now(ACCOUNT_ID, self.region)

    def set_clock(self, moment: datetime) -> None:
        """Fix the clock (it then moves only when advanced); cycles take their time from it."""
        simulator.clock.set_now(ACCOUNT_ID, self.region, moment)

    def advance(self, delta: timedelta) -> list[WindowRunSummary]:
        """Move the clock forward, running every maintenance window run that falls due, in time order."""
        if simulator.clock.clock(ACCOUNT_ID, self.region).fixed is None:
            self.set_clock(self.now().replace(microsecond=0))
        self.subscribe_owner_queues()
        ran = simulator.executions.advance_clock(ACCOUNT_ID, self.region, self.now() + delta)
        self.config_observe()
        backend = ssm_backends[ACCOUNT_ID][self.region]
        return [
            WindowRunSummary(
                window_id=run.window_id,
                window_name=getattr(backend.windows.get(run.window_id), "name", run.window_id),
                started=run.started,
                status=run.status_at(self.now())[0],
            )
            for run in ran
        ]

    def set_patch_behaviour(self, instance_id: str, fields: Mapping[str, Any]) -> None:
        """Change how AWS-RunPatchBaseline behaves on an instance (a scenario's `patch` edit)."""
        state = simulator.executions.run_state(ACCOUNT_ID, self.region)
        current = state.profiles.get(instance_id)
        if current is None:
            raise TemplateError(f"instance {instance_id} has no simulated patch behaviour; was it seeded?")
        simulator.executions.set_patch_profile(ACCOUNT_ID, self.region, instance_id, replace(current, **fields))

    def run_cycle(
        self,
        execution_input: Any = None,
        *,
        name: str | None = None,
        on_event: ProgressCallback | None = None,
        timeout_seconds: float = 1800,
    ) -> CycleResult:
        self.config_observe()
        self.subscribe_owner_queues()
        before = self.recorder.snapshot()
        runs_before = len(self.dispatcher.runs)
        result = execute_cycle(
            self.client("stepfunctions"), self.state_machine_arn, execution_input, name, on_event, timeout_seconds, 0.02
        )
        after = self.recorder.snapshot()
        result.calls_by_function = {
            function: counts - before.get(function, Counter())
            for function, counts in after.items()
            if counts - before.get(function, Counter())
        }
        result.function_runs = self.dispatcher.runs[runs_before:]
        _release_finished_threads()
        _settle_long_lived_objects()
        return result


_EXECUTION_TAIL_SECONDS: Final = 10.0


def _release_finished_threads() -> None:
    """Join the threads moto's Step Functions interpreter started and finished.

    It keeps every thread it starts (one per state with a timeout, one per Map iteration) in a module
    list and never joins them, so each cycle left about sixteen 8 MiB stacks mapped: a long scenario
    ran out of address space. Joining a finished thread returns its stack.
    """
    from moto.stepfunctions.parser import utils as sfn_parser  # noqa: PLC0415 - moto's own module
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker  # noqa: PLC0415

    threads = sfn_parser.TMP_THREADS
    for thread in list(threads):
        # An execution's status turns final before its worker thread publishes the AWS/States metrics
        # (and so raises the alarms): wait for that tail, or the next cycle or a torn-down account sees it.
        worker = getattr(getattr(thread, "_target", None), "__self__", None)
        execution = getattr(getattr(worker, "_execution_communication", None), "execution", None)
        if isinstance(worker, ExecutionWorker) and execution is not None and execution.stop_date is not None:
            thread.join(timeout=_EXECUTION_TAIL_SECONDS)
    finished = [thread for thread in threads if not thread.is_alive()]
    for thread in finished:
        thread.join()
    threads[:] = [thread for thread in threads if thread.is_alive()]


def _settle_long_lived_objects() -> None:
    """Take what the simulated account holds out of the cyclic garbage collector's full passes.

    A seeded fleet is millions of long-lived moto objects, and every full collection walks them all:
    at 10,000 instances that was about a third of a cycle's wall time. Frozen objects are still freed
    by reference counting; `SimulatedAccount.__exit__` unfreezes them so cycles left behind are collected.
    """
    gc.collect()
    gc.freeze()


class DeployedStack(_Clients):
    """A tagpatch stack deployed with `sam deploy`, reached with the caller's AWS credentials.

    Runs the same state machine and reports the same way as the simulated account, except that the
    functions' AWS calls are not recorded (they run in Lambda, not in this process).
    """

    def __init__(self, *, state_machine_arn: str, artifact_bucket: str, region: str | None = None) -> None:
        self.state_machine_arn = state_machine_arn
        self.artifact_bucket = artifact_bucket
        self.region = region

    @classmethod
    def from_stack(cls, stack_name: str, region: str | None = None) -> DeployedStack:
        cloudformation = boto3.client("cloudformation", region_name=region)
        (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
        outputs = {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}
        missing = {"PatchCycleStateMachineArn", "ArtifactBucketName"} - set(outputs)
        if missing:
            raise TemplateError(f"stack {stack_name} has no output(s) {sorted(missing)}; is it a tagpatch stack?")
        return cls(
            state_machine_arn=outputs["PatchCycleStateMachineArn"],
            artifact_bucket=outputs["ArtifactBucketName"],
            region=region,
        )

    def run_cycle(
        self,
        execution_input: Any = None,
        *,
        name: str | None = None,
        on_event: ProgressCallback | None = None,
        timeout_seconds: float = 3600,
    ) -> CycleResult:
        return execute_cycle(
            self.client("stepfunctions"), self.state_machine_arn, execution_input, name, on_event, timeout_seconds, 2.0
        )


def execute_cycle(
    sfn: Any,
    state_machine_arn: str,
    execution_input: Any,
    name: str | None,
    on_event: ProgressCallback | None,
    timeout_seconds: float,
    poll_seconds: float,
) -> CycleResult:
    """Start one execution and follow it to the end, passing each new history event to on_event."""
    name = name or f"cycle-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    arn = sfn.start_execution(
        stateMachineArn=state_machine_arn,
        name=name,
        input=json.dumps({} if execution_input is None else execution_input),
    )["executionArn"]
    seen = 0
    events: list[dict[str, Any]] = []
    wait = poll_seconds
    while True:
        description = sfn.describe_execution(executionArn=arn)
        finished = description["status"] != "RUNNING"
        if on_event is not None or finished:
            events = execution_history(sfn, arn)
        if on_event is not None:
            for event in events[seen:]:
                on_event(event)
        seen = len(events)
        if finished:
            break
        if time.monotonic() - started > timeout_seconds:
            raise TimeoutError(f"execution {name} still running after {timeout_seconds} s")
        time.sleep(wait)
        # Polling shares the process with a simulated execution: back off, up to ten times the first wait.
        wait = min(wait * 1.5, poll_seconds * 10)
    output = description.get("output")
    return CycleResult(
        execution_name=name,
        execution_arn=arn,
        status=description["status"],
        output=json.loads(output) if output else state_at_failure(events),
        error=description.get("error"),
        cause=description.get("cause"),
        events=events,
        calls_by_function={},
        wall_seconds=time.monotonic() - started,
    )


def state_at_failure(events: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """A failed execution has no output; the state its Fail state received tells what was done."""
    for event in reversed(events):
        if event["type"] == "FailStateEntered":
            state = event.get("stateEnteredEventDetails", {}).get("input")
            return json.loads(state) if state else None
    return None


def execution_history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = sfn.get_execution_history(executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {}))
        events.extend(page["events"])
        token = page.get("nextToken")
        if not token:
            return events


Account = SimulatedAccount | DeployedStack


def console() -> TextIO:
    """Where the runner talks to the person; handler output goes to the log file instead."""
    return sys.__stdout__ or sys.stdout
