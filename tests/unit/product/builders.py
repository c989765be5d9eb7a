"""Builders shared by the unit tests."""

from __future__ import annotations

import itertools

from tagpatch.classes import ReportClass
from tagpatch.inventory import InstanceReport

_ids = itertools.count(1)


def instance_line(
    group: str | None = "web",
    key: str | None = "Patch Group",
    window: str | None = "sun-0200",
    os: str | None = "AMAZON_LINUX_2023",
    cls: ReportClass = "ready",
    *,
    in_scope: bool = True,
    instance_id: str | None = None,
) -> InstanceReport:
    """One line of instances.jsonl, as tag validation writes it."""
    return {
        "instance_id": instance_id or f"i-{next(_ids):017x}",
        "name": None,
        "owner": None,
        "class": cls,
        "reasons": [],
        "warnings": [],
        "patch_group": group,
        "patch_group_key": key,
        "maintenance_window": window,
        "window_key": "Maintenance Window" if window else None,
        "window_kind": None if window is None else ("schedule" if window.startswith(("cron(", "rate(")) else "policy"),
        "os": os,
        "state": "stopped" if cls == "stopped" else "running",
        "ping_status": "Online",
        "in_scope": in_scope,
    }
