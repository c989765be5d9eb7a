"""compare_scenarios: outputs that differ only in what changes from run to run compare equal; any
other difference is reported, naming the file."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from tagpatch_local.compare_scenarios import Run, compare_runs


def _write_run(root: Path, ids: tuple[str, str], *, reason: str = "window tagpatch-sun-0200 did not run") -> Run:
    """One run's files as the CLI writes them, with these (random) instance ids."""
    web, db = ids
    cycle = root / "files" / "01-first"
    cycle.mkdir(parents=True)
    lines = [
        {"instance_id": web, "name": "web-1", "class": "ready"},
        {"instance_id": db, "name": "db-1", "class": "ready"},
    ]
    if web > db:  # the CLI lists instances in id order, so the order follows the random ids
        lines.reverse()
    (cycle / "instances.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    summary = {
        "execution": {
            "name": "cycle-20261206T225342-ee1c89" if web > db else "cycle-20261206T230107-0ab3c4",
            "wall_seconds": 6.7 if web > db else 7.1,
        },
        "by_instance": {web: "patched", db: "failed"},
        "outcomes": [{"instance_id": web, "reason": reason}, {"instance_id": db, "reason": "failed"}],
        "command_id": f"3f2a{ids[0][-4:]}-1111-2222-3333-444455556666",
        "now": "2026-12-06T22:52:57Z" if web > db else "2026-12-06T23:01:07Z",
    }
    (cycle / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    (cycle / "snapshot.jsonl.gz").write_bytes(gzip.compress(f'{{"instance_id": "{web}", "at": "12:00"}}\n'.encode()))
    progress = "  > ApplyWindow a\n  > ApplyWindow b\n" if web > db else "  > ApplyWindow b\n  > ApplyWindow a\n"
    console = f"cycle 1: SUCCEEDED in {len(web) / 10} s\n{progress}results: {root}/files/\n"
    (root / "console.txt").write_text(console, encoding="utf-8")
    return Run("retag.yaml", root, 0)


def test_runs_that_differ_only_in_ids_times_and_order_compare_equal(tmp_path: Path) -> None:
    base = _write_run(tmp_path / "base", ("i-0f0f0f0f0f0f0f0f1", "i-0a0a0a0a0a0a0a0a2"))
    now = _write_run(tmp_path / "now", ("i-0123456789abcdef0", "i-0fedcba987654321f"))

    assert list(compare_runs(base, now, roots=(tmp_path / "base", tmp_path / "now"))) == []


def test_a_changed_reason_is_reported_with_its_file(tmp_path: Path) -> None:
    base = _write_run(tmp_path / "base", ("i-0f0f0f0f0f0f0f0f1", "i-0a0a0a0a0a0a0a0a2"))
    now = _write_run(tmp_path / "now", ("i-0123456789abcdef0", "i-0fedcba987654321f"), reason="it ran")

    differences = list(compare_runs(base, now, roots=(tmp_path / "base", tmp_path / "now")))

    assert len(differences) == 1
    assert "files/01-first/summary.json" in differences[0]
    assert '"reason": "it ran"' in differences[0]


def test_a_missing_file_and_another_exit_code_are_reported(tmp_path: Path) -> None:
    base = _write_run(tmp_path / "base", ("i-0f0f0f0f0f0f0f0f1", "i-0a0a0a0a0a0a0a0a2"))
    now = _write_run(tmp_path / "now", ("i-0f0f0f0f0f0f0f0f1", "i-0a0a0a0a0a0a0a0a2"))
    (now.out / "files" / "01-first" / "snapshot.jsonl.gz").unlink()
    failed = Run(now.name, now.out, 1)

    differences = list(compare_runs(base, failed, roots=(tmp_path / "base", tmp_path / "now")))

    assert differences[0] == "retag.yaml: exit code 0 at base, 1 now"
    assert differences[1] == "retag.yaml/files/01-first/snapshot.jsonl.gz: only at base"
