"""ListTargets: the (account, Region) targets the org cycle starts a patch cycle in, from the policy's
`targets:` key (tagpatch.org_targets) and, for its organizational units, AWS Organizations."""

from __future__ import annotations

import json
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
# Step Functions fails an execution whose state passes 256 KiB of UTF-8 with States.DataLimitExceeded,
# which no Catch takes, so the org cycle would end without its alert. Its largest state is the Map's
# output: the org input once, ListTargets' result (one item a target) and one result a target. The cap is
# what fits beside a bounded org input and the rest of the state (docs/decisions.md, "Many accounts and
# Regions"); tests/integration/test_org_cycle.py measures a real org cycle's growth per target against
# BYTES_PER_TARGET and checks this worst case fits.
PAYLOAD_QUOTA_BYTES: Final = 256 * 1024
MAX_ORG_INPUT_BYTES: Final = 16 * 1024  # an org input is a few keys; a larger one is refused
ORG_STATE_BYTES: Final = 8 * 1024  # the org context, counts and keys beside the targets
# A target's item and result at worst: measured under 500 B with 80-character names (a failed child's
# error name kept, its cause not); budgeted for longer Region names, a 256-character error name, or the
# short refusal of a start StartExecution refused.
BYTES_PER_TARGET: Final = 1024
MAX_INLINE_TARGETS: Final = (PAYLOAD_QUOTA_BYTES - MAX_ORG_INPUT_BYTES - ORG_STATE_BYTES) // BYTES_PER_TARGET


def check_org_input(execution_input: object) -> dict[str, Any]:
    """Each target's patch cycle validates the rest; what it cannot take from the org cycle is said here."""
    if not isinstance(execution_input, dict):
        raise InvalidCycleInput(f"the org cycle's input must be a JSON object (got {type(execution_input).__name__})")
    size = len(json.dumps(execution_input, separators=(",", ":")).encode())
    if size > MAX_ORG_INPUT_BYTES:
        raise InvalidCycleInput(
            f"the org cycle's input is {size} bytes, more than the {MAX_ORG_INPUT_BYTES} its state keeps room for "
            "beside its targets; name fewer patch_groups"
        )
    if "target" in execution_input:
        raise InvalidCycleInput(
            "the org cycle's input must not name a target: it starts one patch cycle per target of the policy; "
            "start the patch cycle state machine with a target to patch one"
        )
    return execution_input


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> ListTargetsResult:
    org = org_run(event.get("org"))
    # Each child validates the rest of the input, which the Map adds to its item; what it cannot take is said here.
    check_org_input(event.get("input"))
    settings = load_policy(POLICY.policy_path).targets
    listed = accounts_under(settings.organizational_units) if settings.organizational_units else OrganizationAccounts()
    home = home_target().to_payload()
    targets = plan_targets(settings, home, listed.active)
    if len(targets) > MAX_INLINE_TARGETS:
        raise ConfigurationError(
            f"the policy's targets: name {len(targets)} targets, more than the {MAX_INLINE_TARGETS} whose state "
            "fits the org cycle's inline Map within Step Functions' 256 KiB; split the policy across hub stacks"
        )
    targets_key = f"{org_artifact_prefix(org)}targets.json"
    put_json(ARTIFACTS.bucket, targets_key, {"targets": targets, "skipped": listed.skipped})
    metrics.add_metric(name="OrgTargets", unit=MetricUnit.Count, value=len(targets))
    metrics.add_metric(name="OrgAccountsSkipped", unit=MetricUnit.Count, value=len(listed.skipped))
    logger.info("targets listed", extra={"targets": len(targets), "skipped": listed.skipped})
    return {
        "targets": target_items(targets, home, org["execution_name"]),
        "max_concurrency": settings.max_concurrency,
        "skipped": len(listed.skipped),  # named in the targets file: there may be many, not a target's worth
        "targets_key": targets_key,
    }
