"""TagValidation: classify every instance, explain every problem, and write the report to S3."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.aws import act_in
from tagpatch.config import ArtifactConfig, ExceptionsConfig, PolicyConfig, RolloutConfig
from tagpatch.cycle import Cycle
from tagpatch.discovery import DiscoveryCursor, read_inventory
from tagpatch.errors import InvalidCycleInput
from tagpatch.exceptions import load_exceptions
from tagpatch.gates import GateDecision, evaluate_gates
from tagpatch.inventory import put_json, put_jsonl_gz
from tagpatch.observability import lambda_entry, logger, metrics
from tagpatch.policy import PatchPolicy, load_policy
from tagpatch.rollout_state import read_alarm_states, read_rollout_state
from tagpatch.validation import ValidationSummary, validate_inventory
from tagpatch.workflow import TagValidationResult

ARTIFACTS = ArtifactConfig.from_env()
POLICY = PolicyConfig.from_env()
EXCEPTIONS = ExceptionsConfig.from_env()
ROLLOUT = RolloutConfig.from_env()


def rollout_gates(policy: PatchPolicy, cycle: Cycle) -> dict[str, GateDecision]:
    """Each gated wave's decision, from the runs PatchMonitoring kept and the alarms' states now."""
    if not policy.rollout.waves:
        return {}
    state = read_rollout_state(ARTIFACTS.bucket)
    alarms = read_alarm_states(policy.rollout.alarm_names(), ROLLOUT.readable_alarms)
    return evaluate_gates(policy.rollout, state.runs, alarms, cycle.now)


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> TagValidationResult:
    cycle = Cycle.from_payload(event.get("cycle"))
    act_in(cycle.target, "TagValidation")
    discovery = DiscoveryCursor.from_payload(event.get("discovery"))
    if discovery.phase != "done":
        raise InvalidCycleInput(f"discovery is not done (phase {discovery.phase!r}): the inventory is incomplete")
    policy = load_policy(POLICY.policy_path)
    # A bad exceptions file or entry never stops the cycle: it is reported, and the rules apply.
    exceptions = load_exceptions(EXCEPTIONS.exceptions_path, cycle.now)
    gates = rollout_gates(policy, cycle)
    summary = ValidationSummary()
    instances_key = cycle.artifact_key("instances.jsonl.gz")
    put_jsonl_gz(
        ARTIFACTS.bucket,
        instances_key,
        validate_inventory(
            read_inventory(ARTIFACTS.bucket, cycle, discovery.inventory_parts),
            policy,
            cycle,
            summary,
            exceptions,
            gates,
        ),
    )
    by_class = summary.counts_by_class()
    report_key = cycle.artifact_key("tag-report.json")
    put_json(
        ARTIFACTS.bucket,
        report_key,
        {
            "run_id": cycle.run_id,
            "now": cycle.to_payload()["now"],
            "total": summary.total,
            "by_class": by_class,
            "by_patch_group_key": dict(summary.by_patch_group_key),
            "problems_by_owner": summary.problems_by_owner,
            "exception_errors": list(exceptions.errors),
            "expired_exceptions": summary.expired_exceptions,
            "rollout_gates": [decision.to_json() for decision in gates.values()],
        },
    )
    for name, count in by_class.items():
        metrics.add_metric(name=f"Instances_{name}", unit=MetricUnit.Count, value=count)
    for error in exceptions.errors:
        logger.warning("patch exception ignored", extra={"error": error})
    for decision in gates.values():
        logger.info("rollout gate", extra=decision.to_json())
    logger.info("tags validated", extra={"by_class": by_class, "instances_key": instances_key})
    return {
        "instances_key": instances_key,
        "report_key": report_key,
        "total": summary.total,
        "in_scope": summary.in_scope,
        "by_class": by_class,
        "owners_with_problems": len(summary.problems_by_owner),
        "exception_errors": len(exceptions.errors),
        "expired_exceptions": summary.expired_exceptions,
    }
