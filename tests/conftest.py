"""Shared fixtures: a clean AWS-free environment and the simulated account built from template.yaml."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = REPO_ROOT / "template.yaml"

# Never reach a real account from the tests, whatever the developer's shell holds.
for _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ.pop(_name, None)
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "tagpatch",
        "POWERTOOLS_METRICS_NAMESPACE": "tagpatch",
    }
)


@pytest.fixture
def account() -> Iterator[object]:
    """A fresh simulated account with the tagpatch stack deployed from template.yaml."""
    from tagpatch_local.runner import SimulatedAccount

    with SimulatedAccount(TEMPLATE) as simulated:
        yield simulated
