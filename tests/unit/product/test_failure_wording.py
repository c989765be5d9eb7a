"""Issue #21: a failure is named as it was: rejected by SSM, or retries that gave up (never 'SSM
rejected' for throttling that outlived every retry)."""

from __future__ import annotations

from tagpatch.changes import ChangeOutcome
from tagpatch.scan import ScanApplication
from tagpatch.ssm_baselines import RegistrationApplication
from tagpatch.ssm_windows import WindowApplication


def failed(kind: str, name: str, error: str) -> ChangeOutcome:
    return ChangeOutcome(kind, "create", name, None, "failed", error=error)


def test_a_window_whose_retries_gave_up_does_not_say_ssm_rejected_it() -> None:
    failure = failed("task", "tagpatch-install", "ThrottlingException: Rate exceeded")
    gave_up = WindowApplication("tagpatch-sun-0200", (failure,), failure, retryable=True)
    assert gave_up.describe_failure().startswith("gave up after retries on create of task tagpatch-install")
    assert "SSM rejected" not in gave_up.describe_failure()
    rejected = WindowApplication("tagpatch-sun-0200", (failure,), failure, retryable=False)
    assert rejected.describe_failure().startswith("SSM rejected create of task tagpatch-install")


def test_a_registration_whose_retries_gave_up_does_not_say_ssm_rejected_it() -> None:
    refused = failed("registration", "db/UBUNTU", "ValidationException: no")
    throttled = failed("registration", "web/UBUNTU", "ThrottlingException: Rate exceeded")
    both = RegistrationApplication((refused, throttled), retryable=True)
    assert both.describe_failures() == (
        "SSM rejected create of registration db/UBUNTU: ValidationException: no; "
        "gave up after retries on create of registration web/UBUNTU: ThrottlingException: Rate exceeded"
    )


def test_a_scan_refused_before_the_throttled_one_still_says_ssm_rejected_it() -> None:
    refused = failed("scan", "tagpatch-patch-scan", "InvalidTarget: no")
    throttled = failed("scan", "tagpatch-patch-scan", "ThrottlingException: Rate exceeded")
    both = ScanApplication((refused, throttled), retryable=True)
    assert both.describe_failures() == (
        "SSM rejected create of the patch scan tagpatch-patch-scan: InvalidTarget: no; "
        "gave up after retries on create of the patch scan tagpatch-patch-scan: ThrottlingException: Rate exceeded"
    )
