"""The benchmark scripts, loaded by path: `benchmarks/` is a folder of scripts, not a package."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str) -> ModuleType:
    """benchmarks/<name>.py, registered as `name` so its dataclasses resolve."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def bench_cycle() -> ModuleType:
    return _load("bench_cycle")


def bench_long_run() -> ModuleType:
    return _load("bench_long_run")


def bench_org() -> ModuleType:
    return _load("bench_org")
