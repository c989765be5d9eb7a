"""A YAML loader that keeps what the user wrote as text where YAML 1.1 would guess a date."""

from __future__ import annotations

from typing import Final

import yaml

_TIMESTAMP_TAG: Final = "tag:yaml.org,2002:timestamp"


class TextDatesLoader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1's timestamps: `expires: 2026-02-30` or a tag value `2026-02-28`
    stays the text written, so an impossible date is the caller's error with its line instead of
    PyYAML's ValueError, and a valid one is not turned into a date object."""


TextDatesLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _timestamp_as_text(loader: TextDatesLoader, node: yaml.Node) -> str:
    # An explicit `!!timestamp` stays text too (PyYAML's constructor fails on a value it cannot match).
    if not isinstance(node, yaml.ScalarNode):
        raise yaml.constructor.ConstructorError(None, None, "a !!timestamp must be a single value", node.start_mark)
    return str(loader.construct_scalar(node))


TextDatesLoader.add_constructor(_TIMESTAMP_TAG, _timestamp_as_text)
