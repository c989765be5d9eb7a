"""The benchmark scripts, loaded by path: `benchmarks/` is a folder of scripts, not a package."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def bench_cycle() -> ModuleType:
    """benchmarks/bench_cycle.py, registered as `bench_cycle` so its dataclasses resolve."""
    spec = importlib.util.spec_from_file_location("bench_cycle", ROOT / "benchmarks" / "bench_cycle.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_cycle"] = module
    spec.loader.exec_module(module)
    return module
