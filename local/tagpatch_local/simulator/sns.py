"""SNS in the simulated account: what moto 5.2.5 gets wrong for filter policies and JSON message structure.

From the Amazon SNS Developer Guide:
- Filter policies on message attributes: a `String` attribute is compared as the string it is; a
  `String.Array` attribute matches when any of its elements matches the policy's rule ("attribute
  string value matching": each element is matched). moto parses every String value as JSON, so a
  `String` attribute `["team-a"]` matched the rule `team-a`, and it applies operators such as
  `prefix` to a String.Array's JSON text instead of its elements.
- Publish with MessageStructure `json`: the message is a JSON object with a `default` key (used for
  every protocol without a key of its own); anything else is InvalidParameter. moto accepted a message
  without `default` and failed only at delivery.

- Publish: SNS "validates the combined size of the message body and message attributes against the
  topic's MaximumMessageSize" (256 KiB by default) and answers InvalidParameter (Developer Guide,
  "Publishing large messages"). moto compared the body's length in characters alone.
- PublishBatch: "the maximum total payload size (the sum of the individual lengths of all of the
  batched messages)" is 256 KiB by default, the topic's MaximumMessageSize, body and attributes
  together (API Reference, PublishBatch); a larger batch is refused whole with BatchRequestTooLong.
  moto did not check it. And SNS answers a batch entry by entry: an entry it refuses is reported in
  `Failed` with its code and SenderFault. moto reported only InvalidParameter failures and dropped
  every other refused entry from both lists, so a caller saw fewer answers than entries and no
  error.

All are corrected by replacing moto internals (`moto_patch`), not handlers: they sit below Publish.
How SNS sizes an attribute for the batch total is not documented beyond "body and attributes";
the simulator counts each attribute's name, data type and value in UTF-8 bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from moto.sns.exceptions import (
    BatchEntryIdsNotDistinct,
    InvalidParameterValue,
    SNSException,
    SNSInvalidParameter,
    TooManyEntriesInBatchRequest,
)
from moto.sns.models import SNSBackend
from moto.sns.utils import FilterPolicyMatcher

from tagpatch_local.simulator.core import MARKER, moto_patch

NO_DEFAULT: Final = "Invalid parameter: Message Structure - No default entry in JSON message body"
NOT_JSON: Final = "Invalid parameter: Message Structure - JSON message body failed to parse"
DEFAULT_MAXIMUM_MESSAGE_SIZE: Final = 262_144  # 256 KiB: a topic's MaximumMessageSize by default


class BatchRequestTooLong(SNSException):
    code = "BatchRequestTooLong"


class EmptyBatchRequest(SNSException):
    code = "EmptyBatchRequest"


def batch_bytes(entries: list[dict[str, Any]]) -> int:
    """Every entry's body and attributes (name, data type and value) in UTF-8 bytes."""
    size = 0
    for entry in entries:
        size += len(str(entry.get("Message", "")).encode())
        for name, attribute in (entry.get("MessageAttributes") or {}).items():
            value = attribute.get("Value", attribute.get("StringValue", attribute.get("BinaryValue", "")))
            size += len(name.encode()) + len(str(attribute.get("Type", attribute.get("DataType", ""))).encode())
            size += len(value) if isinstance(value, bytes) else len(str(value).encode())
    return size


def _failed_entry(entry_id: str, error: SNSException) -> dict[str, Any]:
    return {"Id": entry_id, "Code": error.code, "Message": error.message, "SenderFault": error.code != "InternalError"}


def _element(value: Any) -> dict[str, Any]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"Type": "Number", "Value": value}
    return {"Type": "String", "Value": value if isinstance(value, str) else json.dumps(value)}


def field_match(original: Callable[..., bool]) -> Callable[..., bool]:
    """moto's attribute field match, with String taken literally and String.Array matched per element."""

    def match(field: str, rules: list[Any], dict_body: dict[str, Any], attributes_based_check: bool = True) -> bool:
        if not attributes_based_check or field not in dict_body or not isinstance(dict_body[field], dict):
            return original(field, rules, dict_body, attributes_based_check)
        attribute = dict_body[field]
        if attribute.get("Type") == "String.Array":
            try:
                values = json.loads(str(attribute["Value"]))
            except ValueError:
                return False
            values = values if isinstance(values, list) else [values]
            return any(match(field, rules, {field: _element(value)}, True) for value in values)
        if attribute.get("Type") == "String":
            plain = [rule for rule in rules if isinstance(rule, str)]
            others = [rule for rule in rules if not isinstance(rule, str)]
            if attribute["Value"] in plain:
                return True
            return bool(others) and original(field, others, dict_body, True)
        return original(field, rules, dict_body, attributes_based_check)

    return match


def check_message_structure(message: str, message_structure: str | None) -> None:
    if message_structure != "json":
        return
    try:
        body = json.loads(message)
    except ValueError as error:
        raise InvalidParameterValue(NOT_JSON) from error
    if not isinstance(body, dict) or not isinstance(body.get("default"), str):
        raise InvalidParameterValue(NO_DEFAULT)


@moto_patch
def _install_sns_corrections() -> None:
    if getattr(FilterPolicyMatcher._field_match, MARKER, None) is None:
        corrected = field_match(FilterPolicyMatcher._field_match)
        setattr(corrected, MARKER, "sns: filter policy matching")
        FilterPolicyMatcher._field_match = staticmethod(corrected)  # type: ignore[method-assign]
    if getattr(SNSBackend.publish, MARKER, None) is None:
        moto_publish = SNSBackend.publish

        def publish(self: SNSBackend, message: str, *args: Any, **kwargs: Any) -> str:
            check_message_structure(message, kwargs.get("message_structure"))
            # Body and attributes together, in bytes (moto counted the body's characters alone).
            if not kwargs.get("phone_number"):
                entry = {"Message": message, "MessageAttributes": kwargs.get("message_attributes")}
                if batch_bytes([entry]) > DEFAULT_MAXIMUM_MESSAGE_SIZE:
                    raise SNSInvalidParameter("Invalid parameter: Message too long")
            return moto_publish(self, message, *args, **kwargs)

        setattr(publish, MARKER, "sns: message structure and size")
        SNSBackend.publish = publish  # type: ignore[method-assign]
    if getattr(SNSBackend.publish_batch, MARKER, None) is None:

        def publish_batch(
            self: SNSBackend, topic_arn: str, publish_batch_request_entries: list[dict[str, Any]]
        ) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
            entries = publish_batch_request_entries
            topic = self.get_topic(topic_arn)
            if not entries:
                raise EmptyBatchRequest("The batch request doesn't contain any entries.")
            if len(entries) > 10:
                raise TooManyEntriesInBatchRequest
            if len({entry["Id"] for entry in entries}) != len(entries):
                raise BatchEntryIdsNotDistinct
            if topic.fifo_topic and not all("MessageGroupId" in entry for entry in entries):
                raise SNSInvalidParameter("Invalid parameter: The MessageGroupId parameter is required for FIFO topics")
            # moto keeps no MaximumMessageSize on a topic, so every topic has the default.
            if batch_bytes(entries) > DEFAULT_MAXIMUM_MESSAGE_SIZE:
                raise BatchRequestTooLong("The length of all the batch messages put together is more than the limit.")
            successful: list[dict[str, str]] = []
            failed: list[dict[str, Any]] = []
            for entry in entries:  # moto's loop, with every refused entry answered
                try:
                    message_id = self.publish(
                        message=entry["Message"],
                        arn=topic_arn,
                        subject=entry.get("Subject"),
                        message_attributes=entry.get("MessageAttributes", {}),
                        group_id=entry.get("MessageGroupId"),
                        deduplication_id=entry.get("MessageDeduplicationId"),
                        message_structure=entry.get("MessageStructure"),
                    )
                except SNSException as error:
                    failed.append(_failed_entry(str(entry["Id"]), error))
                    continue
                successful.append({"MessageId": message_id, "Id": entry["Id"]})
            return successful, failed

        setattr(publish_batch, MARKER, "sns: publish batch size and failed entries")
        SNSBackend.publish_batch = publish_batch  # type: ignore[method-assign]
