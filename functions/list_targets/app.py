"""ListTargets: the (account, Region) targets the org cycle starts a patch cycle in, from the policy's
`targets:` key (tagpatch.org_targets) and, for its organizational units, AWS Organizations."""

from __future__ import annotations

from typing import Any, Final

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.aws import home_target
from tagpatch.config import ArtifactConfig, PolicyConfig
from tagpatch.errors import ConfigurationError, InvalidCycleInput
from tagpatch.inventory import put_json
from tagpatch.observability import lambda_entry, logger, metrics
from tagpatch.org_targets import org_artifact_prefix, org_run, plan_targets, target_items
from tagpatch.organization import OrganizationAccounts, accounts_under
from tagpatch.policy import load_policy
from tagpatch.workflow import ListTargetsResult

ARTIFACTS = ArtifactConfig.from_env()
POLICY = PolicyConfig.from_env()
# A Map's input stays far below Step Functions' 256 KiB payload quota up to this many targets (about
# 60 bytes each); beyond it the org cycle needs a Distributed Map reading the list from S3.
MAX_INLINE_TARGETS: Final = 1000


def check_org_input(execution_input: object) -> dict[str, Any]:
    """Each target's patch cycle validates the rest; what it cannot take from the org cycle is said here."""
    if not isinstance(execution_input, dict):
        raise InvalidCycleInput(f"the org cycle's input must be a JSON object (got {type(execution_input).__name__})")
    if "target" in execution_input:
        raise InvalidCycleInput(
            "the org cycle's input must not name a target: it starts one patch cycle per target of the policy; "
            "start the patch cycle state machine with a target to patch one"
        )
    return execution_input


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> ListTargetsResult:
    org = org_run(event.get("org"))
    org_input = check_org_input(event.get("input"))
    settings = load_policy(POLICY.policy_path).targets
    listed = accounts_under(settings.organizational_units) if settings.organizational_units else OrganizationAccounts()
    home = home_target().to_payload()
    targets = plan_targets(settings, home, listed.active)
    if len(targets) > MAX_INLINE_TARGETS:
        raise ConfigurationError(
            f"the policy's targets: name {len(targets)} targets, more than the {MAX_INLINE_TARGETS} the org "
            "cycle's inline Map is built for; split the policy across hub stacks"
        )
    targets_key = f"{org_artifact_prefix(org)}targets.json"
    put_json(ARTIFACTS.bucket, targets_key, {"targets": targets, "skipped": listed.skipped})
    metrics.add_metric(name="OrgTargets", unit=MetricUnit.Count, value=len(targets))
    metrics.add_metric(name="OrgAccountsSkipped", unit=MetricUnit.Count, value=len(listed.skipped))
    logger.info("targets listed", extra={"targets": len(targets), "skipped": listed.skipped})
    return {
        "targets": target_items(org_input, targets, home, org["execution_name"]),
        "max_concurrency": settings.max_concurrency,
        "skipped": listed.skipped,
        "targets_key": targets_key,
    }
