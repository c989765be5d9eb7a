"""BaselineAssociation: register each patch group with the policy's baseline for every OS it has, and keep
the patch scan (tagpatch's State Manager association) as the policy's `scan` section says."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.aws import act_in, acting_member
from tagpatch.changes import ChangeOutcome, applied_counts, instance_lines, save_applied, save_plan
from tagpatch.config import ArtifactConfig, BaselineConfig, PolicyConfig
from tagpatch.cycle import Cycle
from tagpatch.desired import build_desired_state
from tagpatch.errors import RegistrationRejected, TransientAwsError
from tagpatch.observability import lambda_entry, logger, metrics
from tagpatch.policy import load_policy
from tagpatch.reconcile import Change, Plan, made_by_earlier_attempt, plan_registrations
from tagpatch.scan import apply_scan, desired_scan, plan_scan, read_scan
from tagpatch.ssm_baselines import (
    BaselineResolver,
    apply_registrations,
    desired_registrations,
    own_baseline_ids,
    read_registrations,
)
from tagpatch.workflow import BaselineAssociationResult

ARTIFACTS = ArtifactConfig.from_env()
POLICY = PolicyConfig.from_env()
BASELINES = BaselineConfig.from_env()


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> BaselineAssociationResult:
    cycle = Cycle.from_payload(event.get("cycle"))
    act_in(cycle.target, "BaselineAssociation")
    policy = load_policy(POLICY.policy_path)
    lines = instance_lines(ARTIFACTS.bucket, event["validation"])
    desired = build_desired_state(lines, policy)
    # A member account runs its own copies of the custom baselines (spoke/template.yaml), with its own ids.
    custom_ids = BASELINES.custom_ids if acting_member() is None else own_baseline_ids(BASELINES.custom_ids)
    resolver = BaselineResolver(custom_ids)
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
    # The scan is the whole fleet's (every patch group), so a scoped cycle reconciles it too. Read
    # from SSM on every attempt, so a retry finds what an earlier attempt made and writes nothing.
    scan = plan_scan(desired_scan(policy.scan, lines), read_scan())
    both = Plan(plan.changes + scan.changes, plan.problems + scan.problems)
    changes_key, report_key = save_plan(ARTIFACTS.bucket, cycle, "registration", both)
    planned = plan.counts()["registration"]
    scan_planned = scan.counts()["scan"]
    result: BaselineAssociationResult = {
        "changes_key": changes_key,
        "report_key": report_key,
        "counts": planned,
        "planned": planned,
        "scan": scan_planned,
        "applied_key": None,
        "problems": len(both.problems),
    }
    made = 0
    if cycle.mode == "apply":
        to_write = [change for change in plan.writes() if change not in carried]
        applied = apply_registrations(to_write, state, ARTIFACTS.bucket, cycle.run_id)
        scanned = apply_scan(scan.writes())
        outcomes = (
            [ChangeOutcome.of(change, "already_done") for change in carried]
            + list(applied.outcomes)
            + list(scanned.outcomes)
        )
        result["applied_key"] = save_applied(ARTIFACTS.bucket, cycle, "registrations", outcomes)
        done = applied_counts(outcomes)
        # What SSM now has, not what was planned: unchanged and blocked come from the plan.
        result["counts"] = {**planned, **done["registration"]}
        result["scan"] = {**scan_planned, **done["scan"]}
        made = sum(
            done[kind][label] for kind in ("registration", "scan") for label in ("created", "updated", "deleted")
        )
        if applied.failures or scanned.failures:
            metrics.add_metric(name="RegistrationChanges", unit=MetricUnit.Count, value=made)
            described = "; ".join(text for text in (applied.describe_failures(), scanned.describe_failures()) if text)
            message = f"{described} (outcomes: s3://{ARTIFACTS.bucket}/{result['applied_key']})"
            retryable = applied.retryable or scanned.retryable
            raise TransientAwsError(message) if retryable else RegistrationRejected(message)
    metrics.add_metric(name="RegistrationChanges", unit=MetricUnit.Count, value=made)
    logger.info(
        "registrations and the patch scan reconciled", extra={"counts": result["counts"], "scan": result["scan"]}
    )
    return result
