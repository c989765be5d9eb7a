"""The simulated account: moto plus tagpatch's extensions, with the stack from template.yaml in it.

The state machine definition that `sam deploy` ships is executed by moto's Step Functions
interpreter; its Lambda tasks are dispatched in-process to the real handlers, each under the
environment template.yaml gives it. Every AWS call a handler makes goes through boto3 and is
recorded per function.

Each concern has its module; this one starts and stops the account and runs cycles in it, and keeps
the names the CLI, tests and benchmarks import from `tagpatch_local.runner`:
- `deploy`: template.yaml deployed as CloudFormation and SAM would (TemplateDeployment).
- `world`: seeding the fleet, the clock, patch behaviour, policy files, notifications (WorldControls).
- `dispatch`: the real handlers run in-process, every boto3 call recorded (LambdaDispatcher, CallRecorder).
- `faults`: faults on the wire and the account's switches for them (FaultInjector, FaultControls).
- `cycle`: one execution followed to its end (execute_cycle, CycleResult) and a deployed stack (DeployedStack).
- `housekeeping`: giving back the threads and garbage-collector work a cycle left.
"""

from __future__ import annotations

import gc
import io
import logging
import os
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TextIO

from moto import mock_aws

from tagpatch_local import simulator
from tagpatch_local.account_facts import (
    ACCOUNT_ID,
    ARTIFACT_WRITES,
    DEFAULT_REGION,
    LOCAL_ENVIRONMENT,
    MOTO_CONFIG,
    READ_PREFIXES,
    ROOT_CREDENTIALS,
    is_write,
)
from tagpatch_local.cycle import (
    CycleResult,
    DeployedStack,
    OrgCycleResult,
    ProgressCallback,
    execute_cycle,
    execution_history,
    follow_org_cycle,
    state_at_failure,
)
from tagpatch_local.deploy import SAM_POLICY_TEMPLATES, coerce_to_shape
from tagpatch_local.dispatch import (
    CallRecorder,
    FakeLambdaContext,
    FunctionRun,
    LambdaDispatcher,
    LocalFunction,
    install_call_hook,
)
from tagpatch_local.faults import READ_TIMEOUT, FaultControls, FaultInjector, FaultMode, SimulatedCrash
from tagpatch_local.housekeeping import release_finished_threads, settle_long_lived_objects
from tagpatch_local.template import Template, resolve
from tagpatch_local.world import WindowRunSummary, WorldControls

__all__ = [
    "ACCOUNT_ID",
    "ARTIFACT_WRITES",
    "DEFAULT_REGION",
    "READ_PREFIXES",
    "READ_TIMEOUT",
    "SAM_POLICY_TEMPLATES",
    "Account",
    "CallRecorder",
    "CycleResult",
    "DeployedStack",
    "FakeLambdaContext",
    "FaultInjector",
    "FaultMode",
    "FunctionRun",
    "LambdaDispatcher",
    "LocalFunction",
    "OrgCycleResult",
    "ProgressCallback",
    "SimulatedAccount",
    "SimulatedCrash",
    "WindowRunSummary",
    "coerce_to_shape",
    "console",
    "execute_cycle",
    "execution_history",
    "is_write",
    "state_at_failure",
]


class SimulatedAccount(WorldControls, FaultControls):
    """A moto account with the tagpatch stack from template.yaml created in it."""

    signing_keys: ClassVar[Mapping[str, str]] = ROOT_CREDENTIALS

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
        self._member_places: list[tuple[str, str]] = []  # (account, Region) of the organization's members

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
        install_call_hook()
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
            if self.config_recorder:
                simulator.config.start_recorder(ACCOUNT_ID, self.region, self.now)
                self._capture_notifications()
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
        release_finished_threads()
        settle_long_lived_objects()
        return result

    def run_org_cycle(
        self,
        execution_input: Any = None,
        *,
        name: str | None = None,
        on_event: ProgressCallback | None = None,
        timeout_seconds: float = 1800,
    ) -> OrgCycleResult:
        """Start the org cycle (what the schedule starts) and follow it and each target's patch cycle.

        Each execution's result has the calls and runs the functions made for it (a task's payload names
        its execution). What ran for none (AWS Config's functions, invoked by Config meanwhile) goes with
        a lone target's cycle, as a single-account cycle had it, or else with the org execution.
        """
        self.config_observe()
        self.subscribe_owner_queues()
        before = self.recorder.snapshot()
        runs_before = len(self.dispatcher.runs)
        result = follow_org_cycle(
            self.client("stepfunctions"),
            self.org_cycle_arn,
            execution_input,
            name,
            on_event,
            timeout_seconds,
            0.02,
            s3=self.client("s3"),
            bucket=self.artifact_bucket,
        )
        after = self.recorder.snapshot()
        runs = self.dispatcher.runs[runs_before:]
        unattributed = {function: counts - before.get(function, Counter()) for function, counts in after.items()}
        executions = (result.org, *result.children.values())
        for execution in executions:
            execution.calls_by_function = self.recorder.of_execution(execution.execution_arn)
            execution.function_runs = [run for run in runs if run.execution == execution.execution_arn]
            for function, counts in execution.calls_by_function.items():
                unattributed[function] = unattributed.get(function, Counter()) - counts
        lone_target = len(result.children) == 1
        rest = next(iter(result.children.values())) if lone_target else result.org
        for function, counts in unattributed.items():
            if counts:
                rest.calls_by_function[function] = rest.calls_by_function.get(function, Counter()) + counts
        rest.function_runs += [run for run in runs if run.execution is None]
        release_finished_threads()
        settle_long_lived_objects()
        return result


Account = SimulatedAccount | DeployedStack


def console() -> TextIO:
    """Where the runner talks to the person; handler output goes to the log file instead."""
    return sys.__stdout__ or sys.stdout
