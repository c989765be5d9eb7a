"""The runner split by concern: the simulator beneath it imports none of its modules, and every name the
CLI, tests and benchmarks import from `tagpatch_local.runner` is still there."""

from __future__ import annotations

import ast
from pathlib import Path

import tagpatch_local.runner

REPO_ROOT = Path(__file__).resolve().parents[3]
SIMULATOR = REPO_ROOT / "local" / "tagpatch_local" / "simulator"


def harness_imports(source: str) -> list[str]:
    """Modules of tagpatch_local outside its simulator package that a simulator source imports."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.startswith("tagpatch_local.")]
        elif isinstance(node, ast.ImportFrom) and node.level >= 2:  # reaches above the simulator package
            found.append("." * node.level + (node.module or ""))
        elif isinstance(node, ast.ImportFrom) and node.module == "tagpatch_local":
            found += [f"tagpatch_local.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tagpatch_local."):
            found.append(node.module)
    return [
        name
        for name in found
        if name != "tagpatch_local.simulator" and not name.startswith("tagpatch_local.simulator.")
    ]


def test_the_simulator_imports_none_of_the_runner_modules() -> None:
    """The runner is built on the simulated account, never the other way round."""
    imported = {
        str(path.relative_to(REPO_ROOT)): names
        for path in sorted(SIMULATOR.rglob("*.py"))
        if (names := harness_imports(path.read_text(encoding="utf-8")))
    }
    assert imported == {}
    example = (
        "from tagpatch_local.deploy import TemplateDeployment\n"
        "from tagpatch_local import runner, simulator\n"
        "from tagpatch_local.simulator import clock\n"
        "from .. import world\n"
    )
    assert harness_imports(example) == ["tagpatch_local.deploy", "tagpatch_local.runner", ".."]


def runner_imports(source: str) -> set[str]:
    """The names a source imports from tagpatch_local.runner."""
    return {
        alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module == "tagpatch_local.runner"
        for alias in node.names
    }


def test_every_name_imported_from_the_runner_is_still_there() -> None:
    """Benchmarks are not run with the tests: their imports from the runner are checked here."""
    sources = [
        path
        for folder in ("tests", "benchmarks", "local", "scripts")
        for path in sorted((REPO_ROOT / folder).rglob("*.py"))
    ]
    wanted = {name for path in sources for name in runner_imports(path.read_text(encoding="utf-8"))}
    assert {"SimulatedAccount", "CycleResult", "READ_TIMEOUT", "DeployedStack", "console"} <= wanted
    assert sorted(name for name in wanted if not hasattr(tagpatch_local.runner, name)) == []
    assert sorted(name for name in wanted if name not in tagpatch_local.runner.__all__) == []
