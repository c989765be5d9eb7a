"""Typed domain errors.

A Lambda error's name in Step Functions is the exception's class name, so these names are part of
the contract with `statemachines/patch_cycle.asl.json`: `TransientAwsError` is retried there with
backoff and jitter; everything else is caught and reported with the state's original input kept.
"""

from __future__ import annotations


def shown_key(key: object) -> str:
    """A key the user wrote, as an error's key path shows it: as written when it is plain printable
    text, quoted otherwise, so that a newline or control character in a key never splits the one-line
    message the CLI and the reports print."""
    text = str(key)
    return text if text and text.isprintable() and "." not in text and text.strip() == text else repr(text)


class TagpatchError(Exception):
    """Base class: every error tagpatch raises on purpose."""


class InvalidCycleInput(TagpatchError):
    """The execution input is malformed. Fails the execution at once: nothing is retried."""


class InvalidPatchPolicy(TagpatchError):
    """The patch policy file is missing or breaks a rule; the message names the key at fault."""


class InvalidPatchExceptions(TagpatchError):
    """The patch exceptions file breaks a rule (raised before deploy; at run time it is reported instead)."""


class ConfigurationError(TagpatchError):
    """A function's environment is incomplete or malformed (a deployment problem)."""


class ArtifactError(TagpatchError):
    """A run artifact in S3 is missing or unreadable."""


class TransientAwsError(TagpatchError):
    """Throttling or a service-side failure that outlived botocore's own retries; the ASL retries it."""


class WindowChangeRejected(TagpatchError):
    """SSM refused a change to one maintenance window; the other windows still go ahead."""


class RegistrationRejected(TagpatchError):
    """SSM refused a patch group registration or a change to the patch scan association; the other
    changes were still made and the ledger kept."""


class CycleAlreadyRunning(TagpatchError):
    """An older execution of the state machine is still running; this one stops before it reads or writes."""


class InvalidConfigEvent(TagpatchError):
    """An event sent to the Config rule function is not one AWS Config sends to a custom rule."""


class DiscoveryStalled(TagpatchError):
    """A listing answered with the token it was given: paging on would never end."""


class MonitoringStalled(TagpatchError):
    """A listing PatchMonitoring reads answered with the token it was given: paging on would never end."""


class NotificationRejected(TagpatchError):
    """SNS refused a notification for a fault of the request (its answer says SenderFault)."""


class ScheduleTimeUnreadable(TagpatchError):
    """SSM gave a window run's time in a form tagpatch cannot read; the message names the value."""


class HistoryBudgetExceeded(TagpatchError):
    """A read loop has used its share of the execution's 25,000 history events (tagpatch.history)."""


class TargetAccessDenied(TagpatchError):
    """The target's account refused the step its spoke role (sts:AssumeRole); the message names the
    account, Region, role and AWS's error, and the cycle of that target fails with it."""


class BackupDeletionRefused(TagpatchError):
    """EC2 refused to delete some of tagpatch's expired backups; the others were deleted, and the message
    and the run's backup-retention.json name each refused one and EC2's reason."""


class CatalogRegistrationRefused(TagpatchError):
    """Glue refused registering (or dropping) some of a target's partitions of the compliance tables; the
    snapshot and report.html were written, and the message names each refusal and Glue's reason."""


def failure_cause(error_name: str) -> str:
    """What a failed step's error name says happened, in words for an alert or a report: SSM refused
    the change, the step's retries ran out, or the function died before it could finish (any other)."""
    if error_name in {WindowChangeRejected.__name__, RegistrationRejected.__name__}:
        return "rejected by SSM"
    if error_name == TransientAwsError.__name__:
        return "gave up after retries"
    if error_name == BackupDeletionRefused.__name__:
        return "refused by EC2"
    if error_name == CatalogRegistrationRefused.__name__:
        return "refused by Glue"
    if error_name == TargetAccessDenied.__name__:
        return "refused access to the target account"
    return "crashed"
