"""Docs that list what code registers must list exactly that."""

from __future__ import annotations

import re
from pathlib import Path

from tagpatch_local import simulator

DOC = Path(__file__).resolve().parents[2] / "docs" / "simulator.md"


def _table(section: str) -> set[str]:
    text = DOC.read_text(encoding="utf-8")
    body = text.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| ((?:ssm|config|scheduler|sns|cloudwatch):\w+) \|", body, flags=re.MULTILINE))


def test_the_simulator_doc_lists_every_added_and_corrected_operation() -> None:
    simulator.install()
    corrected = set(simulator.corrected_operations())
    added = set(simulator.installed_operations()) - corrected
    assert _table("Operations moto lacks (added)") == added
    assert _table("Operations moto gets wrong (corrected)") == corrected
