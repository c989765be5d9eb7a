"""AWS Config custom rule: are an instance's patching tags present and valid (TagValidation's own check)?

Its daily run also checks that the account's recorder records what the stack's managed rules evaluate
from (CONFIG_RECORDED_TYPES); a type it does not record counts in ConfigRecorderMissingTypes, which
ConfigRecorderAlarm sends to the alerts topic.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.config import ExceptionsConfig, PolicyConfig, RecorderConfig
from tagpatch.config_rules import (
    evaluation_counts,
    evaluations_for_event,
    is_periodic,
    notification_time,
    put_evaluations,
    read_recorders,
    unrecorded_types,
)
from tagpatch.exceptions import load_exceptions
from tagpatch.observability import lambda_entry, logger, metrics
from tagpatch.policy import load_policy

POLICY = PolicyConfig.from_env()
EXCEPTIONS = ExceptionsConfig.from_env()
RECORDER = RecorderConfig.from_env()


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    policy = load_policy(POLICY.policy_path)
    # Time is an input: the notification's creation time, as Config stamped it.
    exceptions = load_exceptions(EXCEPTIONS.exceptions_path, notification_time(event))
    evaluations, token = evaluations_for_event(
        event, policy.windows.keys(), exceptions, timezone=policy.default_window.timezone
    )
    failed = put_evaluations(evaluations, token)
    counts = evaluation_counts(evaluations)
    for compliance, count in counts.items():
        metrics.add_metric(name=f"Evaluations_{compliance}", unit=MetricUnit.Count, value=count)
    logger.info("instances evaluated", extra={"rule": event.get("configRuleName"), "counts": counts, "failed": failed})
    missing: list[str] = []
    if is_periodic(event) and RECORDER.required_types:
        missing = unrecorded_types(RECORDER.required_types, read_recorders())
        metrics.add_metric(name="ConfigRecorderMissingTypes", unit=MetricUnit.Count, value=len(missing))
        if missing:
            logger.warning(
                "the account's Config recorder does not record what the stack's rules evaluate from; "
                "those rules give no results until it does",
                extra={"unrecorded_types": missing},
            )
    return {"evaluations": len(evaluations), "by_compliance": counts, "failed": failed, "unrecorded_types": missing}
