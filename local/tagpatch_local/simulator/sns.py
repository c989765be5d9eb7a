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

Both are corrected by replacing moto internals (`moto_patch`), not handlers: they sit below Publish.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from moto.sns.exceptions import InvalidParameterValue
from moto.sns.models import SNSBackend
from moto.sns.utils import FilterPolicyMatcher

from tagpatch_local.simulator.core import MARKER, moto_patch

NO_DEFAULT: Final = "Invalid parameter: Message Structure - No default entry in JSON message body"
NOT_JSON: Final = "Invalid parameter: Message Structure - JSON message body failed to parse"


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
            return moto_publish(self, message, *args, **kwargs)

        setattr(publish, MARKER, "sns: message structure")
        SNSBackend.publish = publish  # type: ignore[method-assign]
