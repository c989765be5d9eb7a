"""Faults on the wire between the handlers and the simulated services, and the account's switches for them."""

from __future__ import annotations

import io
import json
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
from moto.core.botocore_stubber import BotocoreStubber

from tagpatch_local import simulator
from tagpatch_local.account_facts import ACCOUNT_ID, is_write
from tagpatch_local.clients import AccountClients
from tagpatch_local.dispatch import current_invocation


class _RawBody(io.BytesIO):
    """What botocore reads an HTTP response body from."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


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

    def __init__(self, account: FaultControls) -> None:
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
        function = (
            getattr(current_invocation, "function", None) if getattr(current_invocation, "recorder", None) else None
        )
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


class FaultControls(AccountClients):
    """The simulated account's fault switches: what a test or scenario turns on, clear_faults() turns off."""

    region: str
    _faults: FaultInjector | None

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
