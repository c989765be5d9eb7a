"""BaselineAssociation: register each patch group with the policy's baseline for every OS it has."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.changes import ChangeOutcome, applied_counts, desired_state_of_run, save_applied, save_plan
from tagpatch.config import ArtifactConfig, BaselineConfig, PolicyConfig
from tagpatch.cycle import Cycle
from tagpatch.errors import RegistrationRejected, TransientAwsError
from tagpatch.observability import lambda_entry, logger, metrics
from tagpatch.policy import load_policy
from tagpatch.reconcile import Change, Plan, made_by_earlier_attempt, plan_registrations
from tagpatch.ssm_baselines import (
    BaselineResolver,
    apply_registrations,
    desired_registrations,
    read_registrations,
)
from tagpatch.workflow import BaselineAssociationResult

ARTIFACTS = ArtifactConfig.from_env()
POLICY = PolicyConfig.from_env()
BASELINES = BaselineConfig.from_env()


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> BaselineAssociationResult:
    cycle = Cycle.from_payload(event.get("cycle"))
    policy = load_policy(POLICY.policy_path)
    desired = desired_state_of_run(ARTIFACTS.bucket, event["validation"], policy)
    resolver = BaselineResolver(BASELINES.custom_ids)
    wanted = desired_registrations(desired.registrations, resolver)
    state = read_registrations(ARTIFACTS.bucket)
    plan = plan_registrations(
        wanted,
        state,
        problems=[p for p in desired.problems if p.kind == "registration"] + resolver.problems,
        max_deletion_share=policy.max_window_deletion_share,
        allow_mass_deletion=cycle.allow_mass_deletion,
    )
    # A scoped cycle (patch_groups in the input) changes only those groups' registrations.
    plan = Plan(
        tuple(change for change in plan.changes if cycle.in_scope(change.name.rsplit("/", 1)[0])),
        plan.problems,
    )
    # A retry of this step counts what its earlier attempts made: SSM shows it done, the ledger says
    # this cycle made it. Those changes are reported found done, not written again.
    carried: tuple[Change, ...] = ()
    if cycle.mode == "apply":
        plan, carried = made_by_earlier_attempt(plan, state, cycle.run_id)
    changes_key, report_key = save_plan(ARTIFACTS.bucket, cycle, "registration", plan)
    planned = plan.counts()["registration"]
    result: BaselineAssociationResult = {
        "changes_key": changes_key,
        "report_key": report_key,
        "counts": planned,
        "planned": planned,
        "applied_key": None,
        "problems": len(plan.problems),
    }
    made = 0
    if cycle.mode == "apply":
        to_write = [change for change in plan.writes() if change not in carried]
        applied = apply_registrations(to_write, state, ARTIFACTS.bucket, cycle.run_id)
        outcomes = [ChangeOutcome.of(change, "already_done") for change in carried] + list(applied.outcomes)
        result["applied_key"] = save_applied(ARTIFACTS.bucket, cycle, "registrations", outcomes)
        done = applied_counts(outcomes)["registration"]
        # What SSM now has, not what was planned: unchanged and blocked come from the plan.
        result["counts"] = {**planned, **done}
        made = done["created"] + done["updated"] + done["deleted"]
        if applied.failures:
            metrics.add_metric(name="RegistrationChanges", unit=MetricUnit.Count, value=made)
            message = f"{applied.describe_failures()} (outcomes: s3://{ARTIFACTS.bucket}/{result['applied_key']})"
            raise TransientAwsError(message) if applied.retryable else RegistrationRejected(message)
    metrics.add_metric(name="RegistrationChanges", unit=MetricUnit.Count, value=made)
    logger.info("registrations reconciled", extra={"counts": result["counts"]})
    return result
