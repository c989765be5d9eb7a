"""ReportFailure's message: which state failed, why, and where the run's artifacts are."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tagpatch.errors import ConfigurationError
from tagpatch.targets import Target

REPO_ROOT = Path(__file__).resolve().parents[3]
APP = REPO_ROOT / "functions" / "report_failure" / "app.py"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:tagpatch-alerts"

CYCLE = {
    "run_id": "manual-2026-11-27",
    "execution_id": "arn:aws:states:us-east-1:123456789012:execution:tagpatch-patch-cycle:manual-2026-11-27",
    "now": "2026-11-27T15:00:00Z",
    "mode": "apply",
    "patch_groups": None,
    "artifact_prefix": "runs/2026/11/27/manual-2026-11-27/",
    "allow_mass_deletion": False,
}


def load_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("report_failure_app", APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("ALERTS_TOPIC_ARN", TOPIC_ARN)  # read at import, as on a cold start
    monkeypatch.setenv("ARTIFACT_BUCKET", "tagpatch-artifacts")
    return load_app()


def message(app: ModuleType, event: dict[str, Any]) -> tuple[str, str]:
    subject, body = app.failure_message(event)
    assert isinstance(subject, str) and isinstance(body, str)
    return subject, body


def test_topic_comes_from_the_environment(app: ModuleType) -> None:
    assert app.NOTIFICATIONS.topic_arn == TOPIC_ARN


def test_import_without_the_topic_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALERTS_TOPIC_ARN", raising=False)
    monkeypatch.setenv("ARTIFACT_BUCKET", "tagpatch-artifacts")
    with pytest.raises(ConfigurationError, match=r"environment variable ALERTS_TOPIC_ARN is not set"):
        load_app()


def test_lambda_error_cause_shows_the_error_message(app: ModuleType) -> None:
    cause = json.dumps(
        {
            "errorType": "TransientAwsError",
            "errorMessage": "ThrottlingException: Rate exceeded",
            "stackTrace": ['  File "/var/task/app.py", line 24'],
        }
    )
    subject, body = message(
        app,
        {
            "cycle": CYCLE,
            "failed_state": "Discovery",
            "error": {"Error": "TransientAwsError", "Cause": cause},
        },
    )
    assert subject == "tagpatch cycle failed in Discovery"
    assert body.splitlines() == [
        "The patch cycle manual-2026-11-27 failed in state Discovery.",
        "Error: TransientAwsError",
        "Cause: ThrottlingException: Rate exceeded",
        f"Execution: {CYCLE['execution_id']}",
        "Steps that had finished kept their artifacts under runs/2026/11/27/manual-2026-11-27/ in the artifact bucket.",
    ]
    assert "stackTrace" not in body


def test_non_json_cause_is_shown_as_is(app: ModuleType) -> None:
    _, body = message(
        app,
        {
            "cycle": CYCLE,
            "failed_state": "TagValidation",
            "error": {"Error": "States.Timeout", "Cause": "Task timed out after 900.00 seconds"},
        },
    )
    assert "failed in state TagValidation." in body
    assert "Error: States.Timeout" in body
    assert "Cause: Task timed out after 900.00 seconds" in body


@pytest.mark.parametrize("cause", ["[1, 2]", "42", "null", '{"errorType": "KeyError"}'])
def test_json_cause_without_an_error_message_is_shown_as_is(app: ModuleType, cause: str) -> None:
    _, body = message(app, {"cycle": CYCLE, "failed_state": "Discovery", "error": {"Error": "E", "Cause": cause}})
    assert f"Cause: {cause}" in body.splitlines()


def test_missing_error(app: ModuleType) -> None:
    subject, body = message(app, {"cycle": CYCLE, "failed_state": "Discovery"})
    assert subject == "tagpatch cycle failed in Discovery"
    assert "Error: unknown" in body.splitlines()
    assert "Cause: " in body.splitlines()
    assert "The patch cycle manual-2026-11-27 failed in state Discovery." in body


def test_null_error_and_cycle(app: ModuleType) -> None:
    subject, body = message(app, {"cycle": None, "error": None})
    assert subject == "tagpatch cycle failed in unknown state"
    assert body.splitlines()[:4] == [
        "The patch cycle ? failed in state unknown state.",
        "Error: unknown",
        "Cause: ",
        "Execution: ?",
    ]


def test_subject_fits_sns_limit(app: ModuleType) -> None:
    subject, body = message(app, {"cycle": CYCLE, "failed_state": "S" * 200, "error": {}})
    assert len(subject) == 100
    assert subject.startswith("tagpatch cycle failed in SSS")
    assert f"failed in state {'S' * 200}." in body  # the body keeps the full name


def test_rejected_windows_are_named_with_ssms_reason(app: ModuleType) -> None:
    cause = json.dumps({"errorType": "WindowChangeRejected", "errorMessage": "SSM rejected a change: Quota"})
    event = {
        "cycle": CYCLE,
        "failed_state": "ApplyWindowChanges",
        "error": {"Error": "WindowChangesRejected", "Cause": "SSM rejected the changes of at least one window."},
        "window_results": [
            {"window": "tagpatch-a", "created": 1, "updated": 0, "deleted": 0},
            {"window": "tagpatch-b", "error": "WindowChangeRejected", "cause": cause},
        ],
    }
    _, body = message(app, event)
    assert "Maintenance windows whose changes did not all land (1):" in body.splitlines()
    assert "- tagpatch-b: rejected by SSM (WindowChangeRejected): SSM rejected a change: Quota" in body.splitlines()
    assert "tagpatch-a" not in body
    assert app.changes_rejected(event) == 1


def test_a_failed_registration_step_counts_as_a_rejected_change(app: ModuleType) -> None:
    assert app.changes_rejected({"failed_state": "BaselineAssociation", "error": {}}) == 1
    assert app.changes_rejected({"failed_state": "Discovery", "error": {}}) == 0


def test_a_long_list_of_rejected_windows_is_cut_with_the_count_kept(app: ModuleType) -> None:
    results = [{"window": f"tagpatch-{i:03d}", "error": "E", "cause": "c"} for i in range(60)]
    _, body = message(app, {"cycle": CYCLE, "failed_state": "ApplyWindowChanges", "window_results": results})
    assert "Maintenance windows whose changes did not all land (60):" in body
    assert "- and 10 more (see the execution's window_results)" in body
    assert "tagpatch-050" not in body


def test_each_failed_window_names_its_cause_as_it_was(app: ModuleType) -> None:
    # Once every failed window was "SSM rejected", although a function had crashed or retries gave up.
    def failed(window: str, error: str, message: str) -> dict[str, str]:
        return {"window": window, "error": error, "cause": json.dumps({"errorType": error, "errorMessage": message})}

    event = {
        "cycle": CYCLE,
        "failed_state": "ApplyWindowChanges",
        "error": {"Error": "WindowChangesRejected", "Cause": "c"},
        "window_results": [
            failed("tagpatch-a", "WindowChangeRejected", "create of task x: ValidationException"),
            failed("tagpatch-b", "SimulatedCrash", "the invocation died after 3 writes"),
            failed("tagpatch-c", "TransientAwsError", "ThrottlingException"),
        ],
    }
    _, body = message(app, event)
    lines = body.splitlines()
    assert "Maintenance windows whose changes did not all land (3):" in lines
    assert "- tagpatch-a: rejected by SSM (WindowChangeRejected): create of task x: ValidationException" in lines
    assert "- tagpatch-b: crashed (SimulatedCrash): the invocation died after 3 writes" in lines
    assert "- tagpatch-c: gave up after retries (TransientAwsError): ThrottlingException" in lines
    assert "SSM rejected" not in body


HOME = Target("123456789012", "us-east-1")
MEMBER_TARGET = {"account_id": "222222222222", "region": "eu-west-1"}


def test_a_member_targets_failure_names_its_account_and_region(app: ModuleType) -> None:
    event = {"cycle": {**CYCLE, "target": MEMBER_TARGET}, "failed_state": "Discovery", "error": {}}
    subject, body = app.failure_message(event, HOME)
    assert subject == "[222222222222 eu-west-1] tagpatch cycle failed in Discovery"
    assert body.splitlines()[0] == "Account 222222222222, Region eu-west-1."
    assert "The patch cycle manual-2026-11-27 failed in state Discovery." in body


@pytest.mark.parametrize("target", [None, {"account_id": "123456789012", "region": "us-east-1"}, "not-a-target"])
def test_a_home_or_unreadable_targets_failure_reads_as_a_single_account_stacks(app: ModuleType, target: Any) -> None:
    event = {"cycle": {**CYCLE, "target": target}, "failed_state": "Discovery", "error": {}}
    assert app.failure_message(event, HOME) == message(app, {"cycle": CYCLE, "failed_state": "Discovery", "error": {}})
