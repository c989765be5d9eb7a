"""Reading the patching tags of an instance and classifying whether it can be patched.

Pure: discovery gathers InstanceFacts (EC2 + SSM); this module only decides. classify() is total:
tag maps come from users, so any key, value, size or (from untyped callers) None must yield a
Classification, never an exception.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

from tagpatch.classes import CLASS_PRECEDENCE, InstanceClass
from tagpatch.schedule import InvalidSchedule, is_schedule_expression, one_off_start, parse_schedule

PATCH_GROUP_KEYS: Final = ("Patch Group", "PatchGroup")
# Instances with instance-metadata tags enabled can't carry keys with spaces, hence the second key
# (the same reason SSM accepts "PatchGroup").
MAINTENANCE_WINDOW_KEY: Final = "Maintenance Window"
MAINTENANCE_WINDOW_KEYS: Final = (MAINTENANCE_WINDOW_KEY, "MaintenanceWindow")

PATCH_GROUP_MAX_LENGTH: Final = 256
_PATCH_GROUP_PUNCTUATION: Final = frozenset("_.:/=+-@")
_MAX_LISTED_WINDOWS: Final = 5

# Near-miss keys are compared after _squash(); these are the squashed forms of the real keys and of
# common abbreviations people use for them.
_PATCH_GROUP_ALIASES: Final = frozenset({"patchgroup", "patchgroups"})
_WINDOW_ALIASES: Final = frozenset({"maintenancewindow", "maintenancewindows", "maintwindow"})

_STOPPED_STATES: Final = frozenset({"stopped", "stopping"})
_GONE_STATES: Final = frozenset({"shutting-down", "terminated"})
_KNOWN_STATES: Final = frozenset({"running", "pending"}) | _STOPPED_STATES | _GONE_STATES

_AGENT_CHECKS: Final = (
    "check that the SSM agent is installed and running, that the instance profile's role has "
    "AmazonSSMManagedInstanceCore, and that the instance can reach the ssm, ssmmessages and ec2messages "
    "endpoints (through a NAT/internet gateway or VPC endpoints)"
)

WindowKind = Literal["schedule", "policy_window"]


@dataclass(frozen=True)
class InstanceFacts:
    """What discovery knows about one instance."""

    instance_id: str
    tags: Mapping[str, str]
    state: str  # EC2 state name: running, stopped, stopping, pending, shutting-down
    ssm_registered: bool  # appears in DescribeInstanceInformation
    ping_status: str | None  # Online | ConnectionLost | Inactive | None when not registered
    has_instance_profile: bool


@dataclass(frozen=True)
class Classification:
    instance_class: InstanceClass
    reasons: tuple[str, ...]  # every problem found, across all classes, most severe first
    warnings: tuple[str, ...]
    patch_group: str | None  # the value in use, stripped, or None
    patch_group_key: str | None  # which key supplied it ("Patch Group" or "PatchGroup")
    maintenance_window: str | None  # the window tag value, stripped
    window_key: str | None
    window_kind: WindowKind | None  # schedule expression vs name of a policy-defined window
    # Every patch group and window tag the instance carries, as written: SSM's targets match these
    # raw values on either key, whatever tagpatch made of them.
    targeting_tags: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _Findings:
    by_class: dict[InstanceClass, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def add(self, instance_class: InstanceClass, reason: str) -> None:
        self.by_class.setdefault(instance_class, []).append(reason)


@dataclass(frozen=True)
class _Tag:
    key: str
    raw: str
    value: str  # stripped


def _quote(value: str, limit: int = 80) -> str:
    """Quote a user value for a message: escaped control characters, cut to a readable length."""
    if len(value) > limit:
        value = value[:limit] + "..."
    return json.dumps(value, ensure_ascii=False)


def _squash(key: str) -> str:
    """Key as compared for near misses: case, whitespace and - _ . ignored."""
    return "".join(ch for ch in key.casefold() if not ch.isspace() and ch not in "-_.")


def _as_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    try:
        return str(value)
    except Exception:
        return ""


def _tag_map(tags: object) -> dict[str, str]:
    """The tags as a plain str -> str dict, tolerating None and non-string keys or values."""
    if not isinstance(tags, Mapping):
        return {}
    result: dict[str, str] = {}
    try:
        for key, value in tags.items():
            result[_as_text(key)] = _as_text(value)
    except Exception:  # a broken Mapping from an untyped caller: keep what was read
        return result
    return result


def _keys_text(keys: tuple[str, ...]) -> str:
    return " or ".join(f'"{k}"' for k in keys)


@dataclass(frozen=True)
class _TagSpec:
    keys: tuple[str, ...]  # accepted keys, preferred first
    aliases: frozenset[str]  # squashed near-miss keys
    label: str
    example: str


_PATCH_GROUP_SPEC: Final = _TagSpec(PATCH_GROUP_KEYS, _PATCH_GROUP_ALIASES, "patch group", '"Patch Group" = "web-prod"')
_WINDOW_SPEC: Final = _TagSpec(
    MAINTENANCE_WINDOW_KEYS,
    _WINDOW_ALIASES,
    "maintenance window",
    '"Maintenance Window" = "cron(0 2 ? * SUN *)" or the name of a window in the patch policy',
)


def _read_tag(tags: Mapping[str, str], spec: _TagSpec, findings: _Findings) -> _Tag | None:
    """The tag to use among spec.keys, reporting empty values, conflicts and misspelt keys."""
    keys, label, example = spec.keys, spec.label, spec.example
    present = [_Tag(k, tags[k], tags[k].strip()) for k in keys if k in tags]
    usable = [t for t in present if t.value]
    near_misses = [k for k in tags if k not in keys and _squash(k) in spec.aliases]
    expected = _keys_text(keys)

    if not usable:
        for tag in present:
            empty = "is empty" if not tag.raw else "contains only whitespace"
            findings.add(
                "missing_tags",
                f'tag "{tag.key}" is present but its value {empty}; set it to the {label}, e.g. {example}',
            )
        for key in near_misses:
            findings.add(
                "missing_tags",
                f"tag {_quote(key)} looks like the {label} tag but the key must be exactly {expected}; rename the key",
            )
        if not present and not near_misses:
            findings.add("missing_tags", f"no {label} tag: add a tag with key {expected}, e.g. {example}")
        return None

    chosen = usable[0]
    for tag in present:
        if not tag.value:
            findings.warnings.append(
                f'tag "{tag.key}" is empty and ignored; "{chosen.key}" = {_quote(chosen.value)} is used'
            )
    for other in usable[1:]:
        if other.value != chosen.value:
            findings.add(
                "invalid_tags",
                f'both "{chosen.key}" ({_quote(chosen.value)}) and "{other.key}" ({_quote(other.value)}) are '
                f"set, with different values; an instance has one {label}: remove one tag or make them equal. "
                "SSM sees no conflict: a window target on either key still selects it (the window report "
                "names any task of tagpatch's that does)",
            )
        else:
            findings.warnings.append(
                f'both "{chosen.key}" and "{other.key}" are set (both {_quote(chosen.value)}); a window whose '
                "targets select by each key reaches this instance through two targets, and AWS does not say "
                "whether its task then runs on it twice: remove one tag"
            )
    for key in near_misses:
        findings.warnings.append(f"tag {_quote(key)} looks like a misspelt {expected} key and is ignored; remove it")
    return chosen


def _disallowed_patch_group_characters(name: str) -> list[str]:
    # SSM's pattern is ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$. Python's re has no \p{..} classes, so the
    # Unicode general categories are checked directly, which is exactly what \p{L}, \p{Z}, \p{N} mean.
    bad: list[str] = []
    for ch in name:
        if unicodedata.category(ch)[0] not in "LZN" and ch not in _PATCH_GROUP_PUNCTUATION and ch not in bad:
            bad.append(ch)
    return bad


def is_valid_patch_group_name(name: str) -> bool:
    """SSM's rule for a patch group name (1-256 letters, separators, numbers and _.:/=+-@)."""
    return 1 <= len(name) <= PATCH_GROUP_MAX_LENGTH and not _disallowed_patch_group_characters(name)


def _check_patch_group(tag: _Tag, findings: _Findings) -> None:
    # Whitespace is an error, not a warning: SSM matches the patch group tag value exactly against
    # window targets and baseline registrations, so " web" silently misses everything set up for "web".
    if tag.raw != tag.value:
        findings.add(
            "invalid_tags",
            f"{tag.key} value {_quote(tag.raw)} has leading or trailing whitespace; SSM matches patch "
            f"groups exactly, so it would not match {_quote(tag.value)}: remove the whitespace",
        )
    if len(tag.raw) > PATCH_GROUP_MAX_LENGTH:
        findings.add(
            "invalid_tags",
            f"{tag.key} value is {len(tag.raw)} characters long; patch group names are at most "
            f"{PATCH_GROUP_MAX_LENGTH} characters: shorten it",
        )
    bad = _disallowed_patch_group_characters(tag.raw)
    if bad:
        shown = ", ".join(f"{_quote(ch)} (U+{ord(ch):04X})" for ch in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        findings.add(
            "invalid_tags",
            f"{tag.key} value {_quote(tag.value)} contains characters not allowed in a patch group name: "
            f"{shown}{more}; use only letters, numbers, spaces and _ . : / = + - @",
        )


def _window_names(policy_windows: object) -> list[str]:
    if isinstance(policy_windows, str) or not isinstance(policy_windows, Collection):
        return []
    try:
        return sorted({_as_text(w) for w in policy_windows})
    except Exception:
        return []


@dataclass(frozen=True)
class _When:
    """The cycle's time and the time zone schedule-tag windows get; `now` None skips the time checks."""

    now: datetime | None
    timezone: str


def _check_window(tag: _Tag, policy_windows: Collection[str], findings: _Findings, when: _When) -> WindowKind | None:
    value = tag.value
    if tag.raw != value:
        # Like the patch group: window targets match the tag value exactly as written, so a target
        # for "sun-0200" never selects " sun-0200" and the instance would silently go unpatched.
        findings.add(
            "invalid_tags",
            f"{tag.key} value {_quote(tag.raw)} has leading or trailing whitespace; SSM matches window "
            f"tags exactly, so no maintenance window target would select it: change it to {_quote(value)}",
        )
    if is_schedule_expression(value):
        try:
            schedule = parse_schedule(value)
        except InvalidSchedule as exc:
            findings.add("invalid_tags", f"{tag.key} {_quote(value)} is not a valid schedule expression: {exc}")
            return None
        start = one_off_start(schedule, when.timezone)
        if start is not None and when.now is not None and start < when.now:
            findings.add(
                "invalid_tags",
                f"{tag.key} {_quote(value)} was due once, at {start:%Y-%m-%dT%H:%M:%S}Z, before this cycle's "
                f"time {when.now:%Y-%m-%dT%H:%M:%S}Z: this window can never run; give a later at(...) time or a "
                "cron(...) schedule",
            )
            return None
        return "schedule"
    names = _window_names(policy_windows)
    if value in names:
        return "policy_window"
    if names:
        listed = ", ".join(names[:_MAX_LISTED_WINDOWS]) + (", ..." if len(names) > _MAX_LISTED_WINDOWS else "")
        known = f"known windows: {listed}"
    else:
        known = "the patch policy defines no windows"
    hint = ""
    close = [n for n in names if n.casefold() == value.casefold()]
    if close:
        hint = f'; did you mean "{close[0]}"? (window names are case-sensitive)'
    elif "(" in value:
        hint = "; a schedule must start with cron(, rate( or at(, e.g. cron(0 2 ? * SUN *)"
    findings.add(
        "invalid_tags",
        f"{tag.key} {_quote(value)} is neither a valid schedule expression nor a window defined in the "
        f"patch policy ({known}){hint}",
    )
    return None


def _check_agent_and_state(facts: InstanceFacts, findings: _Findings) -> None:
    state = _as_text(facts.state).strip().lower()
    registered = facts.ssm_registered is True
    ping = _as_text(facts.ping_status).strip() or "unknown"

    if not registered:
        if facts.has_instance_profile is not True:
            fix = (
                "no IAM instance profile is attached, so the SSM agent cannot register: attach one whose "
                "role has AmazonSSMManagedInstanceCore (or enable Default Host Management Configuration)"
            )
        else:
            fix = _AGENT_CHECKS
        findings.add(
            "unmanaged",
            "instance is not registered with SSM (absent from DescribeInstanceInformation), so patch "
            f"commands cannot reach it; {fix}",
        )
    elif state not in _STOPPED_STATES and state not in _GONE_STATES and state != "pending" and ping != "Online":
        # Only judged while running: agents on stopped instances report ConnectionLost as a matter of course.
        profile = "; note that no IAM instance profile is attached" if facts.has_instance_profile is not True else ""
        findings.add(
            "unmanaged",
            f"SSM agent ping status is {ping} (not Online) while the instance is running, so patch commands "
            f"would not be delivered; {_AGENT_CHECKS}{profile}",
        )

    if state in _STOPPED_STATES:
        findings.add(
            "stopped",
            f"instance is {state}: it will miss its maintenance window unless started first; Run Command "
            "marks it Delayed or Delivery Timed Out, which does not count against MaxErrors, so the run "
            "still looks successful",
        )
    elif state in _GONE_STATES:
        findings.add("stopped", f"instance is {state}; it will not be patched")
    elif state == "pending":
        findings.warnings.append("instance is pending (starting); its SSM status may not be current yet")
    elif state not in _KNOWN_STATES:
        shown = _quote(state) if state else "(none)"
        findings.warnings.append(f"EC2 state {shown} is not recognised; treated as running")


def classify(
    facts: InstanceFacts, policy_windows: Collection[str], *, now: datetime | None = None, timezone: str = "UTC"
) -> Classification:
    """Classify one instance; `reasons` holds every problem, `instance_class` the most severe.

    With `now`, a one-off at() window already past (read in `timezone`, the zone schedule-tag
    windows get) is a tag problem: no window tagpatch could create would ever run it."""
    findings = _Findings()
    tags = _tag_map(facts.tags)

    group = _read_tag(tags, _PATCH_GROUP_SPEC, findings)
    if group is not None:
        _check_patch_group(group, findings)
    window = _read_tag(tags, _WINDOW_SPEC, findings)
    when = _When(now, timezone)
    window_kind = _check_window(window, policy_windows, findings, when) if window is not None else None

    _check_agent_and_state(facts, findings)

    targeting_keys = (*PATCH_GROUP_KEYS, *MAINTENANCE_WINDOW_KEYS)
    targeting_tags = {key: tags[key] for key in targeting_keys if key in tags}
    instance_class: InstanceClass = next((c for c in CLASS_PRECEDENCE if findings.by_class.get(c)), "ready")
    reasons = tuple(r for c in CLASS_PRECEDENCE for r in findings.by_class.get(c, []))
    return Classification(
        instance_class=instance_class,
        reasons=reasons,
        warnings=tuple(findings.warnings),
        patch_group=group.value if group is not None else None,
        patch_group_key=group.key if group is not None else None,
        maintenance_window=window.value if window is not None else None,
        window_key=window.key if window is not None else None,
        window_kind=window_kind,
        targeting_tags=targeting_tags,
    )
