"""moto's response serialiser: remember where each attribute was found, instead of working it out again.

moto 5.2.5 serialises every member of every structure by asking six alias providers which attribute
names to try (`AttributePicker.get_possible_keys`), then checks every response transformer's path
with `str.endswith`. At 10,000 instances that is millions of calls per cycle and most of a cycle's
wall time. The candidate names depend only on the object's class (its name and `Meta` aliases), the
member key and the botocore shapes (the member's name, type and serialisation name, and its parent
structure's name and members), so they are remembered per such combination. The answers are moto's
own: `test_remembered_attribute_names_serialise_exactly_as_moto_does` serialises the same responses
both ways and compares them byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.core.serialize import AttributePicker, AttributePickerContext

from tagpatch_local.simulator.core import MARKER, moto_patch

_NO_TRANSFORM = object()


def _shape_identity(shape: Any) -> tuple[Any, ...]:
    if shape is None:
        return (None,)
    parent = getattr(shape, "parent", None)
    parent_identity = None if parent is None else (parent.name, parent.type_name)
    return (shape.name, shape.type_name, shape.serialization.get("name"), parent_identity)


def _candidates_key(picker: AttributePicker, context: AttributePickerContext) -> tuple[Any, ...]:
    obj = context.obj
    return (
        type(picker),
        tuple(picker.alias_providers),
        type(obj),
        id(getattr(obj, "Meta", None)),
        context.key,
        context.service_model.service_name if context.service_model else None,
        _shape_identity(context.shape),
    )


@moto_patch
def _install_remembered_attribute_names() -> None:
    original_call = AttributePicker.__call__
    if getattr(original_call, MARKER, None) is not None:
        return
    candidates: dict[tuple[Any, ...], tuple[str, ...]] = {}
    # (transformers dict, its size, key path) -> the transformer path that applies. The dict is kept
    # alive beside its id, and its size is part of the key, because moto adds entries to it at runtime.
    transforms: dict[tuple[int, int, str], tuple[dict[str, Any], Any]] = {}

    def call(self: AttributePicker, context: AttributePickerContext) -> Any:
        obj = context.obj
        if "Meta" in getattr(obj, "__dict__", ()):  # an instance's own aliases: not a class-wide answer
            return original_call(self, context)
        key = _candidates_key(self, context)
        names = candidates.get(key)
        if names is None:
            names = candidates[key] = tuple(self.get_possible_keys(context))
        value = None
        for name in names:
            found = _get_value(obj, name)
            if found is not _MISSING:
                value = found
                break
        transformers = self.response_transformers
        if transformers:
            path = f"{context.key_path}.{context.key}"
            transform_key = (id(transformers), len(transformers), path)
            remembered = transforms.get(transform_key)
            if remembered is None:
                remembered = transforms[transform_key] = (transformers, _first_transform_path(transformers, path))
            if remembered[1] is not _NO_TRANSFORM:
                value = transformers[remembered[1]](value)
        return value

    setattr(call, MARKER, "moto serialiser: remembered attribute names")
    call.__wrapped__ = original_call  # type: ignore[attr-defined]  # the tests compare both
    AttributePicker.__call__ = call  # type: ignore[method-assign]


_MISSING = object()


def _get_value(obj: Any, key: str) -> Any:
    """moto.core.utils.get_value with a sentinel default, without its per-call generality."""
    if "." in key:
        for part in key.split("."):
            obj = _get_value(obj, part)
            if obj is _MISSING:
                return _MISSING
        return obj
    if not hasattr(obj, "__getitem__"):
        return getattr(obj, key, _MISSING)
    try:
        return obj[key]
    except (KeyError, IndexError, TypeError, AttributeError):
        return _MISSING


def _first_transform_path(transformers: dict[str, Callable[[Any], Any]], path: str) -> Any:
    for transform_path in transformers:
        if path.endswith(transform_path):
            return transform_path
    return _NO_TRANSFORM
