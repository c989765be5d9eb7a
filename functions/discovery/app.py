"""Discovery: list a bounded share of the fleet from the cursor, write it to S3, return the next cursor.

The workflow calls it until the cursor's phase is `done`; see tagpatch.discovery.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.aws import act_in
from tagpatch.config import ArtifactConfig, DiscoveryConfig
from tagpatch.cycle import Cycle
from tagpatch.discovery import DiscoveryCursor, discover_some
from tagpatch.observability import lambda_entry, logger, metrics
from tagpatch.read_loop import seconds_to_read

ARTIFACTS = ArtifactConfig.from_env()
DISCOVERY = DiscoveryConfig.from_env()


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    cycle = Cycle.from_payload(event.get("cycle"))
    act_in(cycle.target, "Discovery")
    before = DiscoveryCursor.from_payload(event.get("discovery"))
    cursor = discover_some(
        before,
        cycle,
        ARTIFACTS.bucket,
        items=DISCOVERY.items_per_invocation,
        seconds=seconds_to_read(context.get_remaining_time_in_millis()),
    )
    if cursor.phase == "done":
        metrics.add_metric(name="InstancesDiscovered", unit=MetricUnit.Count, value=cursor.instances)
    logger.info(
        "fleet listed" if cursor.phase == "done" else "part of the fleet listed",
        extra={
            "phase": cursor.phase,
            "invocation": cursor.invocations,
            "instances": cursor.instances,
            "listed_instances": cursor.instances - before.instances,
            "ssm_registered": cursor.ssm_registered,
            "ec2_pages": cursor.ec2_pages,
            "ssm_pages": cursor.ssm_pages,
            "inventory_parts": cursor.inventory_parts,
            "managed_parts": cursor.managed_parts,
        },
    )
    return cursor.to_payload()
