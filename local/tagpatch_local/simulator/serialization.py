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

import re
from collections.abc import Callable
from enum import Enum
from typing import Any
from xml.sax.saxutils import quoteattr

from moto.core.serialize import (
    AttributePicker,
    AttributePickerContext,
    BaseJSONSerializer,
    BaseXMLSerializer,
    EC2Serializer,
    JSONSerializer,
    ResponseSerializer,
    TimestampSerializer,
)

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


# --------------------------------------------------------------------------------------------------
# EC2 response bodies: the XML xmltodict writes, without its per-element SAX machinery


class _Unusual(Exception):
    """The body holds something the fast writer does not model: moto's own path writes it."""


_VALID_NAMES: set[str] = set()


def _check_name(name: Any) -> str:
    if name in _VALID_NAMES:
        return str(name)
    if (
        type(name) is not str
        or not name
        or name[0] in "?!@#"
        or any(ch in name for ch in "<>/\"'=")
        or any(ch.isspace() for ch in name)
    ):
        raise _Unusual(name)  # xmltodict raises (or treats it specially): let it
    _VALID_NAMES.add(name)
    return name


def _escape(text: str) -> str:
    # xml.sax.saxutils.escape without entities, as XMLGenerator.characters uses it.
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


def _text(value: Any) -> str:
    # xmltodict's _convert_value_to_string for the scalars moto's serialiser produces.
    if isinstance(value, str):
        return str.__str__(value)  # the characters, also of a str subclass such as a str Enum
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise _Unusual(type(value))


def _emit_element(name: str, value: Any, out: list[str]) -> None:
    """xmltodict._emit(name, value) with pretty=False, short_empty_elements=True and no attributes."""
    items = value if isinstance(value, list) else (value,)
    for item in items:
        if item is None:
            out.append(f"<{name}/>")
            continue
        if not isinstance(item, dict):
            if isinstance(item, list | tuple | set | bytes | bytearray | memoryview):
                raise _Unusual(type(item))
            text = _text(item)
            out.append(f"<{name}>{_escape(text)}</{name}>" if text else f"<{name}/>")
            continue
        cdata = ""
        opened = len(out)
        out.append("")  # the start tag, decided once we know whether anything follows
        for key, child in item.items():
            if key == "#text":
                cdata = "" if child is None else _text(child)
                continue
            _check_name(key)
            if type(child) is str:  # most children: written here rather than by a call
                out.append(f"<{key}>{_escape(child)}</{key}>" if child else f"<{key}/>")
                continue
            if isinstance(child, list) and not child:
                continue
            _emit_element(key, child, out)
        if len(out) == opened + 1 and not cdata:
            out[opened] = f"<{name}/>"
            continue
        out[opened] = f"<{name}>"
        if cdata:
            out.append(_escape(cdata))
        out.append(f"</{name}>")


def fast_unparse(body: Any) -> str:
    """What `xmltodict.unparse(body, full_document=True, short_empty_elements=True)` returns.

    Handles the bodies moto's EC2 serialiser builds: one root element whose only attribute is
    `@xmlns` (a string), nested dicts and lists of strings, numbers, booleans and None. Anything
    else raises `_Unusual`, and the caller falls back to xmltodict.
    """
    if not isinstance(body, dict) or len(body) != 1:
        raise _Unusual(body)
    ((root, content),) = body.items()
    _check_name(root)
    if not isinstance(content, dict):
        raise _Unusual(content)
    attrs = ""
    children = content
    namespace = content.get("@xmlns")
    if namespace is not None:
        if type(namespace) is not str:
            raise _Unusual(namespace)
        attrs = f" xmlns={quoteattr(namespace)}"
        children = {key: value for key, value in content.items() if key != "@xmlns"}
    out: list[str] = ['<?xml version="1.0" encoding="utf-8"?>\n']
    inner: list[str] = []
    _emit_element(root, [children], inner)
    first = inner[0]  # "<root>" or "<root/>": put the attribute in
    inner[0] = first[:-2] + attrs + "/>" if first.endswith("/>") else first[:-1] + attrs + ">"
    out.extend(inner)
    return "".join(out)


@moto_patch
def _install_fast_ec2_body() -> None:
    original = EC2Serializer._serialize_body
    if getattr(original, MARKER, None) is not None:
        return

    def _serialize_body(self: EC2Serializer, body: Any) -> str:
        if not self.pretty_print:
            try:
                return fast_unparse(body)
            except _Unusual:
                pass
        return original(self, body)

    setattr(_serialize_body, MARKER, "moto EC2 serialiser: XML written without xmltodict's SAX path")
    _serialize_body.__wrapped__ = original  # type: ignore[attr-defined]  # the tests compare both
    EC2Serializer._serialize_body = _serialize_body  # type: ignore[method-assign]


# --------------------------------------------------------------------------------------------------
# EC2 structures: each member's attribute names and transformer, worked out once per place


@moto_patch
def _install_planned_structures() -> None:
    """Serialise a structure from a plan made once per (structure, place in the response, class).

    For EC2's XML and for the JSON protocol (SSM, the simulator's fake operations included).

    moto's `_serialize_structure_member` builds an `AttributePickerContext` and joins the key path for
    every member of every structure; the remembered attribute names above still compute their cache
    key per member. The plan holds, for each member, the names to try and the response transformer
    that applies, so a structure costs one path join and one dict lookup. Whatever the plan cannot
    answer as moto would (an instance-level `Meta`, a picker or serialiser that overrides these
    methods) takes moto's own path.
    """
    for serializer_class in (EC2Serializer, JSONSerializer):
        _plan_structures(serializer_class)


_XML_STRING, _XML_BOOLEAN, _XML_INTEGER, _JSON_STRING = (object() for _ in range(4))


def _leaf_kind(cls: type[Any], shape: Any) -> object:  # noqa: PLR0911 - one return per scalar writer of moto's
    """How a scalar member is written when the serialiser uses moto's own methods for it, else None."""
    if (
        cls._serialize is not ResponseSerializer._serialize
        or cls.get_serialized_name is not ResponseSerializer.get_serialized_name
    ):
        return None
    type_name = shape.type_name
    method = getattr(cls, f"_serialize_type_{type_name}", None)
    if cls._default_serialize is BaseXMLSerializer._default_serialize:
        if shape.serialization.get("xmlNamespace") or shape.serialization.get("xmlAttribute", False):
            return None
        if type_name == "string" and method is BaseXMLSerializer._serialize_type_string:
            return _XML_STRING
        if type_name == "boolean" and method is BaseXMLSerializer._serialize_type_boolean:
            return _XML_BOOLEAN
        if type_name in ("integer", "long") and method is BaseXMLSerializer._serialize_type_integer:
            return _XML_INTEGER
    elif (
        cls._default_serialize is ResponseSerializer._default_serialize
        and type_name == "string"
        and method is BaseJSONSerializer._serialize_type_string
    ):
        return _JSON_STRING
    return None


_Step = tuple[tuple[str, ...], Any, object, str]
_Writer = Callable[[Any, Any, Any, Any, Any, Any], None]
_Plan = tuple[Any, tuple[_Step, ...], dict[bool, _Writer]]
_COMPILED_NAMESPACE: dict[str, Any] = {
    "_MISSING": _MISSING,
    "_get_value": _get_value,
    "_Enum": Enum,
}


def _read_from_instance_dict(cls: type[Any]) -> Callable[[str], bool]:
    """Whether `getattr(obj, name, default)` is `obj.__dict__.get(name, default)` for objects of cls.

    True when objects of the class have an instance dict, nothing on the class or its bases is
    called that name (no property, method, slot or class attribute) and the class keeps Python's
    attribute lookup (no __getattr__ or __getattribute__ of its own): then only the instance's own
    dict can hold it, and a dict lookup answers a miss without raising and catching AttributeError
    inside getattr.
    """
    own_lookup = ("__getattribute__", "__getattr__", "__slots__")
    has_instance_dict = any("__dict__" in vars(klass) for klass in cls.__mro__)
    if not has_instance_dict or any(
        name in vars(klass) for klass in cls.__mro__ if klass is not object for name in own_lookup
    ):
        return lambda name: False
    on_class = {name for klass in cls.__mro__ for name in vars(klass)}
    return lambda name: name not in on_class


def _compile_plan(steps: tuple[_Step, ...], member_keys: tuple[str, ...], cls: type[Any], plain: bool) -> _Writer:
    """One function that writes a structure's members as the planned loop would, member by member.

    The loop over a plan paid, for each member of each object, a tuple unpacking, a loop over the
    names to try and a chain of tests on the member's kind. All of that is known once the plan is
    made, so it is written out as straight-line Python: for each member, the lookups in the plan's
    order (`getattr` for an object read by attribute and a plain name, else `_get_value`, as
    `_get_value` itself would), the response transformer, and the scalar conversions moto's
    `_serialize_type_*` and `_default_serialize` make; any other member goes to moto's `_serialize`.
    Strings in the source are `repr`s, so no name can change the code.
    """
    lines = ["def write(value, wrapper, serialize, transformers, shape, members):"]
    in_dict = _read_from_instance_dict(cls) if plain else (lambda name: False)
    if any(in_dict(name) for names, *_ in steps for name in names if "." not in name):
        lines.append("    own = value.__dict__")
    for (names, transform_path, leaf, name_out), member_key in zip(steps, member_keys, strict=True):
        lines.append(f"    # {member_key}")
        lines.extend(_lookup_lines(names, plain, in_dict))
        if transform_path is not _NO_TRANSFORM:
            lines.append(f"    v = transformers[{transform_path!r}](v)")
        lines.append("    if v is not None:")
        lines.extend(_store_lines(leaf, name_out, member_key))
    if len(lines) == 1:
        lines.append("    pass")
    namespace = dict(_COMPILED_NAMESPACE)
    exec(compile("\n".join(lines), "<tagpatch_local planned structure>", "exec"), namespace)  # noqa: S102
    writer: _Writer = namespace["write"]
    return writer


def _lookup_lines(names: tuple[str, ...], plain: bool, in_dict: Callable[[str], bool]) -> list[str]:
    """Source that sets `v` to the first of `names` the value has, else None, as `_get_value` would."""
    lines = []
    pad = "    "
    for position, name in enumerate(names):
        if "." in name or not plain:
            lookup = f"_get_value(value, {name!r})"
        elif in_dict(name):
            lookup = f"own.get({name!r}, _MISSING)"
        else:
            lookup = f"getattr(value, {name!r}, _MISSING)"
        lines.append(f"{pad}v = {lookup}")
        lines.append(f"{pad}if v is _MISSING:")
        pad += "    "
        if position == len(names) - 1:
            lines.append(f"{pad}v = None")
    if not names:
        lines.append("    v = None")
    return lines


def _store_lines(leaf: object, name_out: str, member_key: str) -> list[str]:
    """Source that writes a found `v` into the wrapper: a known scalar directly, anything else by moto."""
    if leaf is _XML_STRING:
        return [f"        wrapper[{name_out!r}] = str(v)"]
    if leaf is _XML_BOOLEAN:
        return [f"        wrapper[{name_out!r}] = 'true' if v is True or str(v).lower() == 'true' else 'false'"]
    if leaf is _XML_INTEGER:
        return [f"        wrapper[{name_out!r}] = int(v)"]
    if leaf is _JSON_STRING:
        return [
            "        if isinstance(v, _Enum):",
            "            v = v.value",
            f"        wrapper[{name_out!r}] = str(v) if v not in [None, {{}}, []] else v",
        ]
    return [
        f"        member_shape = members[{member_key!r}]",
        "        member_shape.parent = shape",
        f"        serialize(wrapper, v, member_shape, {member_key!r})",
    ]


def _member_steps(
    picker: Any, cls: type[Any], operation_model: Any, value: Any, shape: Any, key_path: str, members: Any
) -> tuple[_Step, ...]:
    """Per member of a structure at one place: the names to try, the transform, the leaf kind and the
    serialised name."""
    transformers = picker.response_transformers
    steps: list[_Step] = []
    for member_key, member_shape in members.items():
        member_shape.parent = shape
        context = AttributePickerContext(
            obj=value,
            key=member_key,
            shape=member_shape,
            operation_model=operation_model,
            service_model=operation_model.service_model,
            key_path=key_path,
        )
        names = tuple(picker.get_possible_keys(context))
        path = f"{key_path}.{member_key}"
        transform_path = _first_transform_path(transformers, path) if transformers else _NO_TRANSFORM
        leaf = _leaf_kind(cls, member_shape)
        steps.append((names, transform_path, leaf, member_shape.serialization.get("name", member_key)))
    return tuple(steps)


def _plan_structures(serializer_class: type[ResponseSerializer]) -> None:
    original = serializer_class.__dict__.get("_serialize_type_structure")
    if original is None:
        original = serializer_class._serialize_type_structure
    if getattr(original, MARKER, None) is not None:
        return
    base_member = ResponseSerializer._serialize_structure_member
    base_get_value = ResponseSerializer.get_value
    # key -> (transformers kept alive beside their id, per member: (names, transform path, leaf kind,
    # serialised name), the plan's writers by whether the value is read by attribute)
    plans: dict[tuple[Any, ...], _Plan] = {}

    def _find_plan(self: Any, value: Any, shape: Any, key_path: str, members: Any) -> _Plan:
        picker = self._value_picker
        cls = type(self)
        transformers = picker.response_transformers
        operation_model = self.operation_model
        plan_key = (
            cls,
            type(picker),
            tuple(picker.alias_providers),
            id(transformers),
            len(transformers),
            operation_model.service_model.service_name,
            operation_model.name,
            shape.name,
            tuple(members),
            key_path,
            type(value),
            id(getattr(value, "Meta", None)),
        )
        plan = plans.get(plan_key)
        if plan is None or plan[0] is not transformers:
            steps = _member_steps(picker, cls, operation_model, value, shape, key_path, members)
            plan = plans[plan_key] = (transformers, steps, {})
        return plan

    def _serialize_type_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if getattr(shape, "is_document_type", False):  # JSON writes a document as it is
            original(self, serialized, value, shape, key)
            return
        if value is None:
            return
        picker = self._value_picker
        cls = type(self)
        if (
            not isinstance(picker, AttributePicker)
            or getattr(type(picker).__call__, MARKER, None) is None
            or cls._serialize_structure_member is not base_member
            or cls.get_value is not base_get_value
            or "Meta" in getattr(value, "__dict__", ())
        ):
            original(self, serialized, value, shape, key)
            return
        key_path = ".".join(self.path)
        transformers = picker.response_transformers
        members = shape.members
        # One serialiser writes one response: within it the picker, its transformers and the shapes
        # stay the same objects, so a plan is found again by identity without building its full key.
        seen = self.__dict__.setdefault("_tagpatch_plans", {})
        seen_key = (id(shape), key_path, type(value), id(getattr(value, "Meta", None)), len(transformers))
        plan = seen.get(seen_key)
        if plan is None or plan[0] is not transformers:
            plan = seen[seen_key] = _find_plan(self, value, shape, key_path, members)
        wrapper = self.MAP_TYPE() if key else serialized
        plain = not hasattr(value, "__getitem__")
        writers = plan[2]
        write = writers.get(plain)
        if write is None:
            write = writers[plain] = _compile_plan(plan[1], tuple(members), type(value), plain)
        write(value, wrapper, self._serialize, transformers, shape, members)
        if key:
            self._default_serialize(serialized, wrapper, shape, key)

    setattr(_serialize_type_structure, MARKER, "moto serialiser: structures from a per-place plan")
    _serialize_type_structure.__wrapped__ = original  # type: ignore[attr-defined]  # the tests compare both
    serializer_class._serialize_type_structure = _serialize_type_structure  # type: ignore[method-assign]


# --------------------------------------------------------------------------------------------------
# Timestamps moto keeps as ISO 8601 strings: parsed once per distinct string and format

# A full date and time: its reading depends on nothing but the string (no "today" filled in by dateutil).
_FULL_ISO_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
_TIMESTAMP_MEMO_LIMIT = 200_000


@moto_patch
def _install_remembered_timestamps() -> None:
    """Convert each distinct timestamp string once.

    moto keeps an EC2 instance's LaunchTime and its network attachments' AttachTime as strings, and
    its serialiser parses each with dateutil on every response (three per instance, about 70 us each).
    The written value depends only on the string and the format, so it is remembered for strings that
    hold a full date and time. Everything else takes moto's path.
    """
    original = TimestampSerializer._convert_timestamp_to_str
    if getattr(original, MARKER, None) is not None:
        return
    # (string, format) -> what moto writes (a string, or a number for unixtimestamp)
    remembered: dict[tuple[str, str], Any] = {}

    def _convert_timestamp_to_str(self: TimestampSerializer, value: Any, timestamp_format: str) -> Any:
        if type(value) is not str or _FULL_ISO_TIMESTAMP.match(value) is None:
            return original(self, value, timestamp_format)
        key = (value, timestamp_format)
        text = remembered.get(key)
        if text is None:
            if len(remembered) >= _TIMESTAMP_MEMO_LIMIT:
                remembered.clear()
            text = remembered[key] = original(self, value, timestamp_format)
        return text

    setattr(_convert_timestamp_to_str, MARKER, "moto serialiser: timestamp strings converted once")
    _convert_timestamp_to_str.__wrapped__ = original  # type: ignore[attr-defined]  # the tests compare both
    TimestampSerializer._convert_timestamp_to_str = _convert_timestamp_to_str  # type: ignore[method-assign]
