"""Docs that list what code registers must list exactly that; links resolve; figures come from the results."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path
from typing import Any, get_args

from tagpatch.outcomes import Outcome
from tagpatch.workflow import STEPS
from tagpatch_local import simulator, workflow_files
from tests.benchmark_modules import bench_cycle, bench_org

DOC = Path(__file__).resolve().parents[3] / "docs" / "simulator.md"


def _table(section: str) -> set[str]:
    text = DOC.read_text(encoding="utf-8")
    body = text.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| ([a-z0-9-]+:\w+) \|", body, flags=re.MULTILINE))  # any service


def test_the_simulator_doc_lists_every_added_and_corrected_operation() -> None:
    simulator.install()
    corrected = set(simulator.corrected_operations())
    added = set(simulator.installed_operations()) - corrected
    assert _table("Operations moto lacks (added)") == added
    assert _table("Operations moto gets wrong (corrected)") == corrected


ROOT = DOC.parents[1]
README = ROOT / "README.md"
# Every page a reader may be sent to: the README, CONTRIBUTING and the docs pages.
PAGES = [README, ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", flags=re.MULTILINE | re.DOTALL)


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation but hyphens and underscores dropped, spaces to hyphens."""
    headings = re.findall(r"^#{1,6} (.+)$", FENCE.sub("", page.read_text(encoding="utf-8")), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def _links(page: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", page.read_text(encoding="utf-8")))


def test_every_relative_link_and_anchor_in_the_readme_and_docs_resolves() -> None:
    broken = []
    for page in PAGES:
        for link in _links(page):
            if link.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = link.partition("#")
            target = (page.parent / path).resolve() if path else page
            if not target.exists():
                broken.append(f"{page.relative_to(ROOT)}: {link} (no such file)")
            elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
                broken.append(f"{page.relative_to(ROOT)}: {link} (no such heading)")
    assert broken == []


def test_the_readme_links_every_docs_page_and_stays_short() -> None:
    linked = {(ROOT / link.partition("#")[0]).resolve() for link in _links(README)}
    assert {page.resolve() for page in PAGES if page != README} <= linked
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 260


def test_the_readme_opens_with_the_two_commands() -> None:
    blocks = re.findall(r"^```bash\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)
    assert [block.split()[:2] for block in blocks[:2]] == [["make", "cycle"], ["make", "test"]]


def test_the_performance_tables_are_the_ones_the_results_files_give() -> None:
    bench = bench_cycle()
    page = bench.PAGE.read_text(encoding="utf-8")
    assert bench.render_page(page) == page, "run: .venv/bin/python benchmarks/bench_cycle.py --page"
    for name in ("cycle", "export", "monitoring", "config", "throttling"):
        assert f"`{name}-" in page, f"no table from benchmarks/results/{name}-*.json"


def test_the_organization_tables_and_projection_are_the_ones_the_results_files_give() -> None:
    bench = bench_org()
    page = bench.PAGE.read_text(encoding="utf-8")
    assert bench.render_page(page) == page, "run: .venv/bin/python -m benchmarks.bench_org --page"
    for path in sorted(bench.RESULTS.glob("org-*.json")):
        assert f"`{path.name}`" in page, f"no table from benchmarks/results/{path.name}"


def test_benchmark_figures_are_quoted_only_on_the_performance_page() -> None:
    figures = []
    for path in sorted((ROOT / "benchmarks" / "results").glob("cycle-*.json")):
        results = json.loads(path.read_text(encoding="utf-8"))
        figures += [f"{results[label]['wall_seconds']} s" for label in ("first_cycle", "after_window_runs", "rerun")]
    for path in sorted((ROOT / "benchmarks" / "results").glob("org-*.json")):
        results = json.loads(path.read_text(encoding="utf-8"))
        figures += [
            f"{results[label]['overall']['wall_seconds']} s"
            for label in ("first_cycle", "after_window_runs", "rerun")
            if label in results
        ]
    quoted = {
        f"{page.relative_to(ROOT)}: {figure}"
        for page in PAGES
        if page.name != "performance.md"
        for figure in figures
        if re.search(rf"(?<![\d.]){re.escape(figure)}", page.read_text(encoding="utf-8"))
    }
    assert quoted == set()


def test_the_operators_page_lists_every_template_parameter() -> None:
    template = (ROOT / "template.yaml").read_text(encoding="utf-8")
    declared = set(re.findall(r"^  (\w+):", template.split("\nParameters:\n", 1)[1].split("\nConditions:", 1)[0], re.M))
    operators = (ROOT / "docs" / "operators.md").read_text(encoding="utf-8")
    table = operators.split("| parameter |", 1)[1].split("\n\n", 1)[0]
    assert set(re.findall(r"`(\w+)`", table)) >= declared
    assert declared, "no parameters read from template.yaml"


def test_the_app_teams_page_explains_every_outcome_in_the_declared_order() -> None:
    page = (ROOT / "docs" / "app-teams.md").read_text(encoding="utf-8")
    table = page.split("| outcome | meaning | what to do |", 1)[1].split("\n\n", 1)[0]
    assert re.findall(r"^\| `(\w+)` \|", table, flags=re.MULTILINE) == list(get_args(Outcome))


# The repository's own top-level folders; out/ and the like are a run's output, not the repository.
GENERATED = {"out", "tagpatch.egg-info"}
TOP_LEVEL = tuple(
    f"{path.name}/"
    for path in ROOT.iterdir()
    if path.is_dir() and not path.name.startswith(".") and path.name not in GENERATED
)


def test_every_repository_path_the_docs_name_exists() -> None:
    """`tests/unit/...py`, `benchmarks/results/...`: a path from the repository's root that moved is stale."""
    missing = []
    for page in PAGES:
        for token in re.findall(r"`([^`\s]+)`", page.read_text(encoding="utf-8")):
            path = token.split("::")[0]
            if not path.startswith(TOP_LEVEL) or any(mark in path for mark in "<>*{}$") or "new_step" in path:
                continue  # not a path from the root, or a placeholder for one
            if not (ROOT / path).exists():
                missing.append(f"{page.relative_to(ROOT)}: {path}")
    assert missing == []


# --- files derived from the workflow: the sample events and the README's diagram ------------------------


def test_the_files_derived_from_the_workflow_are_current() -> None:
    stale = workflow_files.stale_files()
    assert stale == [], f"stale: {', '.join(stale)}; run {workflow_files.COMMAND} and commit what it writes"


def test_every_field_a_step_reads_has_a_sample_value() -> None:
    read = {field for step in STEPS for field in step.reads}
    missing = read - set(workflow_files.SAMPLE_FIELDS) - workflow_files.OPTIONAL_READS
    assert missing == set(), f"add an example of {sorted(missing)} to SAMPLE_FIELDS in tagpatch_local/workflow_files.py"


def test_a_new_step_gets_its_sample_event_from_what_it_reads() -> None:
    new_step = dataclasses.replace(STEPS[-1], name="NewCheck", reads=("cycle", "validation"))

    event = workflow_files.sample_event(new_step)

    assert list(event) == ["cycle", "validation"]
    assert event["validation"]["instances_key"].endswith("/instances.jsonl.gz")


def _with_new_task(definition: dict[str, Any]) -> dict[str, Any]:
    """The ASL with a Task state NewCheck between TagValidation and WindowUpsert, its failure reported."""
    changed = copy.deepcopy(definition)
    states = changed["States"]
    states["NewCheck"] = {
        **copy.deepcopy(states["TagValidation"]),
        "Next": "WindowUpsert",
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "NewCheckFailed", "ResultPath": "$.error"}],
    }
    states["NewCheckFailed"] = {**states["TagValidationFailed"]}
    states["TagValidation"]["Next"] = "NewCheck"
    return changed


def test_a_new_asl_state_is_drawn_with_its_edges_and_failure_edge() -> None:
    definition = json.loads(workflow_files.ASL.read_text(encoding="utf-8"))

    drawn = workflow_files.diagram(_with_new_task(definition))

    assert "    NewCheck[NewCheck]\n" in drawn
    assert "    TagValidation --> NewCheck\n" in drawn
    assert "    NewCheck --> WindowUpsert\n" in drawn
    failure_sources = next(line for line in drawn.splitlines() if line.endswith("-. failure .-> ReportFailure"))
    assert "NewCheck" in failure_sources.split(" -. ")[0].split(" & ")
    assert drawn != workflow_files.diagram(definition)


def test_a_hand_edited_diagram_is_stale() -> None:
    definition = json.loads(workflow_files.ASL.read_text(encoding="utf-8"))
    readme = README.read_text(encoding="utf-8")
    edited = readme.replace("    TagValidation --> WindowUpsert\n", "    TagValidation --> BaselineAssociation\n")

    assert edited != readme
    assert workflow_files.readme_with_diagram(edited, definition) == readme
