"""Tells an instance's owner when one of tagpatch's AWS Config rules changes its verdict, and how to fix it.

Invoked by the EventBridge rule on `Config Rules Compliance Change` for tagpatch's rules. A verdict
that did not change is never re-sent.
"""

from __future__ import annotations

from typing import Any, Final

from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.config import ConfigRulesConfig, OwnerNotificationConfig
from tagpatch.config_rules import compliance_change, describe_instance, publish_change
from tagpatch.observability import lambda_entry, logger

NOTIFICATIONS = OwnerNotificationConfig.from_env()
RULES = ConfigRulesConfig.from_env()
DEFAULT_OWNER: Final = "unowned"


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    change = compliance_change(event, RULES.rule_prefix)
    if change is None:
        logger.info("compliance change not told", extra={"detail_type": event.get("detail-type")})
        return {"sent": False}
    name, owner = describe_instance(change.resource_id)
    message_id = publish_change(NOTIFICATIONS.topic_arn, change, name, owner or DEFAULT_OWNER)
    logger.info(
        "compliance change told",
        extra={"rule": change.rule, "instance": change.resource_id, "compliance": change.new, "owner": owner},
    )
    return {"sent": True, "message_id": message_id, "rule": change.rule, "compliance": change.new}
