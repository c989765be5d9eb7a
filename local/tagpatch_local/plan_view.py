"""The plan (or the changes made) as a readable diff, from the `changes.jsonl` a run writes.

    + window tagpatch-sun-0200: schedule=cron(0 2 ? * SUN *), timezone=UTC, duration_hours=3, ...
    ~ window tagpatch-sun-0200: duration_hours 3 → 4
    ~ target tagpatch-install-reboot-patch-group-01 in tagpatch-sun-0200: window_values [...] → [...]
    - task tagpatch-install-reboot-01 in tagpatch-cron-30-23-...: document=AWS-RunPatchBaseline, ...
    ! window tagpatch-legacy: blocked: <why>

Deletions and blocked changes come first, so a long plan cannot hide them past the line limit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

# The actions that mean the account differs from what the tags ask for.
PENDING_ACTIONS: Final = frozenset({"create", "update", "delete", "blocked"})
SYMBOLS: Final[Mapping[str, str]] = {"create": "+", "update": "~", "delete": "-", "blocked": "!"}
ORDER: Final[Mapping[str, int]] = {"blocked": 0, "delete": 1, "update": 2, "create": 3}
KIND_ORDER: Final[Mapping[str, int]] = {"window": 0, "target": 1, "task": 2, "registration": 3, "scan": 4}
# How the console words each count in summary["changes"], applied and planned.
DONE: Final[Mapping[str, str]] = {"created": "created", "updated": "updated", "deleted": "deleted"}
WOULD: Final[Mapping[str, str]] = {"created": "would create", "updated": "would update", "deleted": "would delete"}
DEFAULT_LIMIT: Final = 200


def read_changes(cycle_dir: Path) -> list[dict[str, Any]]:
    path = cycle_dir / "changes.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def has_pending_changes(changes: Iterable[Mapping[str, Any]]) -> bool:
    return any(change["action"] in PENDING_ACTIONS for change in changes)


def render_changes(changes: Sequence[Mapping[str, Any]], *, arrow: str = "→", limit: int = DEFAULT_LIMIT) -> list[str]:
    """One line per change, most consequential first; the rest summed up in a last line."""
    shown = sorted(
        (change for change in changes if change["action"] in SYMBOLS),
        key=lambda change: (ORDER[change["action"]], KIND_ORDER.get(change["kind"], 9)),
    )
    lines = [_line(change, arrow) for change in shown[:limit]]
    if len(shown) > limit:
        lines.append(f"... and {len(shown) - limit} more in changes.jsonl")
    return lines


def _line(change: Mapping[str, Any], arrow: str) -> str:
    action = change["action"]
    head = f"{SYMBOLS[action]} {change['kind']} {change['name']}"
    window = change.get("window")
    if window and window != change["name"]:
        head += f" in {window}"
    before: Mapping[str, Any] = change.get("before") or {}
    after: Mapping[str, Any] = change.get("after") or {}
    if action == "update":
        changed = [key for key in sorted({*before, *after}) if before.get(key) != after.get(key)]
        body = ", ".join(f"{key} {_value(before.get(key))} {arrow} {_value(after.get(key))}" for key in changed)
    elif action == "blocked":
        body = f"blocked: {change.get('reason') or 'see changes.jsonl'}"
    else:
        body = _fields(after if action == "create" else before, change["name"])
    return f"{head}: {body}" if body else head


def _fields(values: Mapping[str, Any], name: str) -> str:
    """`key=value` pairs, less empty ones and those the name already says (`web-prod/UBUNTU`)."""
    named = set(name.split("/"))
    return ", ".join(
        f"{key}={_value(value)}"
        for key, value in values.items()
        if value is not None and not (isinstance(value, str) and value in named)
    )


def _value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, str) and (not value or value != value.strip() or "," in value or ": " in value):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def count_lines(changes_by_kind: Mapping[str, Mapping[str, int]], *, plan: bool) -> list[str]:
    """`windows: would create 3, 2 unchanged` (plan) or `windows: 3 created, 2 unchanged` (apply)."""
    lines = []
    for kind, counts in changes_by_kind.items():
        parts = []
        for action, count in counts.items():
            if not count:
                continue
            if action in DONE:
                parts.append(f"{WOULD[action]} {count}" if plan else f"{count} {DONE[action]}")
            else:
                parts.append(f"{count} {action}")
        lines.append(f"{kind}s: {', '.join(parts) or 'none'}")
    return lines
