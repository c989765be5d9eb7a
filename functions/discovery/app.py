"""Discovery: write the inventory of every non-terminated instance to S3 and return its key."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.config import ArtifactConfig
from tagpatch.cycle import Cycle
from tagpatch.discovery import DiscoveryCounts, discover
from tagpatch.inventory import put_jsonl_gz
from tagpatch.observability import lambda_entry, logger, metrics

ARTIFACTS = ArtifactConfig.from_env()


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    cycle = Cycle.from_payload(event.get("cycle"))
    counts = DiscoveryCounts()
    key = cycle.artifact_key("inventory.jsonl.gz")
    size = put_jsonl_gz(ARTIFACTS.bucket, key, discover(counts))
    metrics.add_metric(name="InstancesDiscovered", unit=MetricUnit.Count, value=counts.instances)
    logger.info(
        "inventory written",
        extra={
            "inventory_key": key,
            "instances": counts.instances,
            "ssm_registered": counts.ssm_registered,
            "ec2_pages": counts.ec2_pages,
            "ssm_pages": counts.ssm_pages,
            "bytes": size,
        },
    )
    return {
        "inventory_key": key,
        "instances": counts.instances,
        "ssm_registered": counts.ssm_registered,
    }
