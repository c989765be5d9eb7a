"""BaselineAssociation: register each patch group with the policy's baseline for every OS it has."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.changes import desired_state_of_run, save_plan
from tagpatch.config import ArtifactConfig, BaselineConfig, PolicyConfig
from tagpatch.cycle import Cycle
from tagpatch.observability import lambda_entry, logger, metrics
from tagpatch.policy import load_policy
from tagpatch.reconcile import Plan, plan_registrations
from tagpatch.ssm_baselines import (
    BaselineResolver,
    apply_registrations,
    desired_registrations,
    read_registrations,
)

ARTIFACTS = ArtifactConfig.from_env()
POLICY = PolicyConfig.from_env()
BASELINES = BaselineConfig.from_env()


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
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
    changes_key, report_key = save_plan(ARTIFACTS.bucket, cycle, "registration", plan)
    applied = apply_registrations(plan.writes(), state, ARTIFACTS.bucket) if cycle.mode == "apply" else {}
    metrics.add_metric(name="RegistrationChanges", unit=MetricUnit.Count, value=len(plan.writes()))
    logger.info("registrations reconciled", extra={"counts": plan.counts()["registration"], "applied": applied})
    return {
        "changes_key": changes_key,
        "report_key": report_key,
        "counts": plan.counts()["registration"],
        "problems": len(plan.problems),
    }
