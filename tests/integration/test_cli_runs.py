"""`tagpatch run` for automation: exit codes, --detailed-exitcode, --json, the plan as a diff,
policy defaults reported, and an output folder that never mixes runs. Each test runs the installed
console script from a folder other than the repo root; together they run five cycles.
"""

from __future__ import annotations

import json
from pathlib import Path

from .cli_process import tagpatch

FLEET = """\
instances:
  - tags: {"Patch Group": "web", "Maintenance Window": "sun-0200", "Name": "web-1", "Owner": "team-web"}
    os: AMAZON_LINUX_2023
  - tags: {"Patch Group": "db", "Maintenance Window": "cron(0 4 ? * SAT *)", "Name": "db-1", "Owner": "team-db"}
    os: UBUNTU
"""
# sun-0200 four hours long, and every section but `windows` left out.
SHORT_POLICY = """\
version: 1
windows:
  sun-0200:
    schedule: cron(0 2 ? * SUN *)
    duration_hours: 4
    cutoff_hours: 1
"""
SCENARIO = """\
fleet: fleet.yaml
cycles:
  - name: first
  - name: rerun
    input: {mode: plan}
  - name: longer-window-and-no-db
    edits:
      - policy: short-policy.yaml
      - remove: {select: {Name: db-1}}
    input: {mode: plan, allow_mass_deletion: true}
"""


def test_a_plan_with_changes_exits_3_prints_the_diff_and_json(tmp_path: Path) -> None:
    """Piped and with an ASCII-only console, as in a CI log: plain marks, whole lines, JSON on stdout."""
    (tmp_path / "fleet.yaml").write_text(FLEET)
    completed = tagpatch(
        "--fleet",
        "fleet.yaml",
        "--input",
        '{"mode": "plan"}',
        "--detailed-exitcode",
        "--json",
        "--out",
        "out",
        cwd=tmp_path,
        env={"PYTHONIOENCODING": "ascii"},
    )
    assert completed.returncode == 3, completed.stderr[-3000:]
    summary = json.loads(completed.stdout)  # nothing but the summary on stdout
    assert summary["mode"] == "plan"
    assert summary["resource_write_calls"] == {}
    assert summary["changes"]["window"]["created"] == 2
    assert summary["warnings"] == []  # the shipped policy has every section
    assert summary == json.loads((tmp_path / "out" / "summary.json").read_text())
    console = completed.stderr
    assert "mode plan: shows what would change, writes nothing to SSM" in console
    assert "cycle cycle-" in console and "(plan): SUCCEEDED" in console
    assert "windows: would create 2" in console and "registrations: would create 2" in console
    assert "plan (nothing was written):" in console
    assert "  + window tagpatch-sun-0200: cutoff_hours=1, " in console and "duration_hours=3" in console
    assert "  + target tagpatch-install-reboot-patch-group-01 in tagpatch-sun-0200: tag_key=Patch Group" in console
    task = "  + task tagpatch-install-reboot-01 in tagpatch-sun-0200: cutoff_behavior=CANCEL_TASK, document="
    assert f"{task}AWS-RunPatchBaseline" in console
    assert "  + registration web/AMAZON_LINUX_2023: baseline_id=" in console
    assert "  > PrepareCycle\n  ok PrepareCycle (" in console
    assert "Traceback" not in console


def test_a_scenario_plan_reports_updates_deletes_and_policy_defaults(tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text(FLEET)
    (tmp_path / "short-policy.yaml").write_text(SHORT_POLICY)
    (tmp_path / "scenario.yaml").write_text(SCENARIO)
    completed = tagpatch("--scenario", "scenario.yaml", "--detailed-exitcode", "--out", "out", cwd=tmp_path)
    assert completed.returncode == 3, completed.stderr[-3000:]
    console = completed.stdout
    assert "modes apply and plan" in console
    first, rerun, last = console.split("\n[")[1:]
    assert "(apply): SUCCEEDED" in first and "changes made:" in first and "  + window tagpatch-sun-0200" in first
    assert "(plan): SUCCEEDED" in rerun and "plan: no changes; SSM matches the tags" in rerun
    assert "  edit: policy is now short-policy.yaml" in last
    assert "windows: would update 1, would delete 1" in last
    assert "  ~ window tagpatch-sun-0200: duration_hours 3 → 4" in last
    deleted = [line for line in last.splitlines() if line.startswith("  - window ")]
    assert len(deleted) == 1 and "schedule=cron(0 4 ? * SAT *)" in deleted[0]
    # Deletions come before updates: a long plan cannot push them out of sight.
    assert last.index("  - window ") < last.index("  ~ window ")
    # The policy's missing sections, each with the default used, before the first cycle runs.
    warnings = [line for line in completed.stderr.splitlines() if line.startswith("tagpatch: warning: ")]
    assert any("short-policy.yaml: no `baselines` section" in line and "aws-default" in line for line in warnings)
    assert any("no `defaults.window`" in line and "timezone UTC, duration_hours 3" in line for line in warnings)
    assert any("no `defaults.task`" in line and "operation Install" in line for line in warnings)
    assert any("no `notifications` section" in line for line in warnings)
    assert any("no `reconcile` section" in line for line in warnings)
    assert not any("no `windows`" in line for line in warnings)
    cycles = json.loads((tmp_path / "out" / "summary.json").read_text())["cycles"]
    assert [cycle["warnings"] != [] for cycle in cycles] == [False, False, True]
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [
        "01-first",
        "02-rerun",
        "03-longer-window-and-no-db",
        "lambda.log",
        "summary.json",
    ]


def test_a_plan_without_changes_exits_0_and_replaces_the_earlier_run(tmp_path: Path) -> None:
    """No valid tags, so nothing to build. The folder holds an earlier scenario's results and a note."""
    (tmp_path / "fleet.yaml").write_text("instances:\n  - tags: {Name: lonely}\n    os: UBUNTU\n")
    out = tmp_path / "out"
    for folder in ("01-first", "02-rerun"):
        (out / folder).mkdir(parents=True)
        for name in ("summary.json", "instances.jsonl", "changes.jsonl", "tag-report.json"):
            (out / folder / name).write_text("{}\n")
    (out / "summary.json").write_text('{"cycles": []}\n')
    (out / "lambda.log").write_text("earlier-run-log\n")
    (out / "notes.txt").write_text("mine\n")
    completed = tagpatch(
        "--fleet",
        "fleet.yaml",
        "--input",
        '{"mode": "plan"}',
        "--detailed-exitcode",
        "--out",
        "out",
        "--force",
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "plan: no changes; SSM matches the tags" in completed.stdout
    assert sorted(path.name for path in out.iterdir()) == [
        "changes.jsonl",
        "instances.jsonl",
        "lambda.log",
        "notes.txt",
        "notifications",
        "patch-results.jsonl",
        "reminders.jsonl",
        "report.html",  # a plan's report.html (its snapshot stays in the run's artifacts: no compliance/)
        "summary.json",
        "tag-report.json",
    ]
    assert (out / "notes.txt").read_text() == "mine\n"
    assert json.loads((out / "summary.json").read_text())["instances"]["by_class"] == {"missing_tags": 1}
    assert "earlier-run-log" not in (out / "lambda.log").read_text()
