"""Shared fixtures: a clean AWS-free environment and the simulated account built from template.yaml."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import pytest
from hypothesis import settings
from moto import mock_aws

from tagpatch_local import simulator
from tagpatch_local.runner import SimulatedAccount

# No per-example deadline: CI shares two cores between two test workers, and a slow example is
# not a wrong one. CI draws the same examples every run, so a landing is judged on the code it
# changed; local runs draw new ones and keep finding what CI has not seen yet.
settings.register_profile("tagpatch", deadline=None, derandomize=bool(os.environ.get("CI")))
settings.load_profile("tagpatch")

REPO_ROOT = Path(__file__).resolve().parents[1]

# moto drops boto3's default session whenever a mock starts, so each fixture's first client built a
# new botocore session that parsed the service's JSON model and endpoints again (about 160 ms of a
# 185 ms `ssm` fixture). One loader for the whole test process keeps the parsed files: the same
# models, read once.
_LOADERS: dict[str | None, botocore.loaders.Loader] = {}


def _shared_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
    if search_path_string not in _LOADERS:
        _LOADERS[search_path_string] = botocore.loaders.create_loader(search_path_string)
    return _LOADERS[search_path_string]


botocore.session.create_loader = _shared_loader

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


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials per test too, in case a test or a library changed the environment."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MOTO_ACCOUNT_ID", raising=False)


@pytest.fixture
def ssm() -> Iterator[Any]:
    """An SSM client on a bare moto account with the simulator's extensions installed."""
    simulator.install()
    with mock_aws():
        yield boto3.client("ssm", region_name="us-east-1")


@pytest.fixture
def account() -> Iterator[SimulatedAccount]:
    """A fresh simulated account with the tagpatch stack deployed from template.yaml."""
    with SimulatedAccount(TEMPLATE) as simulated:
        yield simulated
