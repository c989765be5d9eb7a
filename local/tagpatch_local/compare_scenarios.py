"""Behaviour unchanged, proven: every scenario's outputs at a base revision and at the working tree.

    nice -n 10 .venv/bin/python -m tagpatch_local.compare_scenarios <base-rev> [--now-rev <rev>]
        [--scenario retag.yaml ...] [--keep <new folder>]

Checks <base-rev> out into a temporary worktree (removed afterwards), and <rev> too if given (else the
working tree is the other side), runs each scenario in scenarios/*.yaml and the demo cycle
(fleets/demo.yaml at a fixed --now) with each side's own code
(this .venv's interpreter, each side's packages first on PYTHONPATH), and compares the output folders
file by file. Before comparing, what differs from run to run is normalised: timestamps, durations,
execution names, UUIDs, AWS resource ids (an instance id becomes its Name tag), reminder names' hashes
(they cover window ids), compressed sizes, the folders themselves. JSON is compared with its keys and
lists sorted; JSON Lines, logs, report.html's table rows and the console's progress lines as sorted
lines, since their order follows random ids and parallel branches. A scenario with no `start:` is
pinned to the same start on both sides. So a change of order only, or of a time only, is not seen.

Exit 0: byte-identical after normalisation. Exit 1: the first differences are printed. Exit 2: bad
usage (an unknown revision, no such scenario).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

REPO: Final = Path(__file__).resolve().parents[2]
# The clock for scenarios that set none, and for the demo cycle: the same on both sides.
PINNED_START: Final = "2026-11-27T12:00:00Z"
DEMO: Final = "demo-cycle"
SHOWN_DIFF_LINES: Final = 40
SHOWN_FILES: Final = 5
# moto draws every id from one seedable generator: seeded, both sides give the instances the same ids,
# so whatever SSM does in id order (which node a command reaches first, which ones MaxErrors stops)
# happens alike on both.
MOTO_SEED: Final = 22
_SEEDED_CLI: Final = (
    "import sys\n"
    "from moto.moto_api._internal import mock_random\n"
    f"mock_random.seed({MOTO_SEED})\n"
    "from tagpatch_local.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)

_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2}| UTC)?)?"
    r"|\b\d{8}T\d{6}Z?\b"
    r"|\b1[6-9]\d{11}\b"  # milliseconds since the epoch (EMF metrics)
)
_DURATION = re.compile(r"\b\d+(?:\.\d+)? (?:s|ms|seconds)\b")
_EXECUTION = re.compile(r"\bcycle-\d{8}T\d{6}-[0-9a-f]{6}\b")
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
_INSTANCE_ID = re.compile(r"\bi-[0-9a-f]{8,17}\b")
_RESOURCE_ID = re.compile(r"\b(mw|pb|ami|vpc|subnet|sg|eni|vol|r)-[0-9a-f]{8,17}\b")
_REQUEST_ID = re.compile(r"\b[0-9A-Z]{52}\b")  # moto's request ids
# A reminder schedule's name ends in a hash of what it is about, window ids included.
_REMINDER_HASH = re.compile(r"\b(tagpatch-[0-9a-f]{8}-\d{12}-\d+h)-[0-9a-f]{8}\b")
# JSON fields measured, not decided: how long something took, how big a payload was in memory.
# A compressed file's size follows the random ids inside it.
_MEASURED_KEYS: Final = frozenset({"wall_seconds", "duration_seconds", "seconds", "elapsed_seconds", "bytes"})
# Console lines that report each state's progress: their order follows the parallel branches.
_PROGRESS = re.compile(r"^\s+(?:>|✓|✗|ok|FAILED) ")


class UsageError(Exception):
    """Bad command line: exit 2 with one line."""


@dataclass(frozen=True)
class Side:
    label: str
    root: Path


@dataclass(frozen=True)
class Run:
    name: str
    out: Path
    exit_code: int


# --- normalising ------------------------------------------------------------------------------------


def instance_names(out: Path) -> dict[str, str]:
    """Instance id -> a stable stand-in from its Name tag, read from every instances.jsonl of a run."""
    names: dict[str, str] = {}
    for path in sorted(out.rglob("instances.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                if record.get("instance_id") and record.get("name"):
                    names.setdefault(str(record["instance_id"]), str(record["name"]))
    taken: dict[str, int] = {}
    stand_ins = {}
    for instance_id, name in names.items():
        # Two instances may share a Name: number them by the order the run first listed them.
        taken[name] = taken.get(name, 0) + 1
        stand_ins[instance_id] = f"<i:{name}>" if taken[name] == 1 else f"<i:{name}#{taken[name]}>"
    return stand_ins


def normalise_text(text: str, *, roots: Sequence[Path], instances: Mapping[str, str]) -> str:
    for root in roots:
        text = text.replace(str(root), "<ROOT>")
    text = _EXECUTION.sub("<execution>", text)
    text = _UUID.sub("<uuid>", text)
    text = _INSTANCE_ID.sub(lambda match: instances.get(match.group(0), "<i:?>"), text)
    text = _RESOURCE_ID.sub(lambda match: f"<{match.group(1)}-id>", text)
    text = _REQUEST_ID.sub("<request-id>", text)
    text = _REMINDER_HASH.sub(r"\1-<hash>", text)
    text = _TIMESTAMP.sub("<time>", text)
    return _DURATION.sub("<duration>", text)


def _canonical(value: Any) -> Any:
    """Keys sorted, lists sorted, measured numbers dropped: what a JSON document says, not its order."""
    if isinstance(value, dict):
        return {key: "<measured>" if key in _MEASURED_KEYS else _canonical(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return sorted((_canonical(item) for item in value), key=lambda item: json.dumps(item, sort_keys=True))
    return value


def normalise_file(path: Path, *, roots: Sequence[Path], instances: Mapping[str, str]) -> list[str]:
    """A file's content as comparable lines."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return [f"<{len(raw)} bytes, not text>"]
    text = normalise_text(text, roots=roots, instances=instances)
    name = path.name.removesuffix(".gz")
    if name.endswith(".json"):
        document = _try_json(text)
        if document is not None:
            return json.dumps(_canonical(document), indent=1, sort_keys=True).splitlines()
    if name.endswith((".jsonl", ".log")):
        return sorted(
            json.dumps(_canonical(json.loads(line)), sort_keys=True) if _try_json(line) is not None else line
            for line in text.splitlines()
        )
    if name.endswith(".html"):
        return _sorted_rows(text)
    if name == "console.txt":
        lines = text.splitlines()
        progress = sorted(line for line in lines if _PROGRESS.match(line))
        return [line for line in lines if not _PROGRESS.match(line)] + ["--- progress lines, sorted:", *progress]
    return text.splitlines()


def _sorted_rows(html: str) -> list[str]:
    """An HTML page a line per table row, each table's rows sorted: row order follows random ids."""
    lines = [line for line in re.sub(r"(<tr>.*?</tr>)", "\n\\1\n", html).splitlines() if line]
    out: list[str] = []
    rows: list[str] = []
    for line in lines:
        if line.startswith("<tr>"):
            rows.append(line)
            continue
        out += sorted(rows)
        rows = []
        out.append(line)
    return out + sorted(rows)


def _try_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


# --- running ------------------------------------------------------------------------------------------


def scenario_names(root: Path) -> list[str]:
    return sorted(path.name for path in (root / "scenarios").glob("*.yaml"))


def _pinned(scenario: Path) -> Path:
    """The scenario as given, or a copy beside it (so its relative paths hold) with `start:` pinned."""
    text = scenario.read_text(encoding="utf-8")
    if re.search(r"^start:", text, re.MULTILINE):
        return scenario
    copy = scenario.with_name(f".compare-{scenario.name}")
    copy.write_text(f"start: {PINNED_START}\n{text}", encoding="utf-8")
    return copy


def run_side(side: Side, runs: Sequence[str], work: Path) -> list[Run]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(side.root / "local"), str(side.root / "layers" / "tagpatch")]),
        "TZ": "UTC",
        "PYTHONIOENCODING": "utf-8",
    }
    _check_imports(side, env)
    results = []
    for name in runs:
        out = work / side.label / name
        out.mkdir(parents=True)
        command = [sys.executable, "-c", _SEEDED_CLI, "run", "--out", str(out / "files")]
        pinned = None
        if name == DEMO:
            command += ["--fleet", str(side.root / "fleets" / "demo.yaml"), "--now", PINNED_START]
        else:
            pinned = _pinned(side.root / "scenarios" / name)
            command += ["--scenario", str(pinned)]
        print(f"  {side.label}: {name}", file=sys.stderr, flush=True)
        try:
            done = subprocess.run(command, cwd=side.root, env=env, capture_output=True, text=True, check=False)
        finally:
            if pinned is not None and pinned.name.startswith(".compare-"):
                pinned.unlink()
        (out / "console.txt").write_text(done.stdout + done.stderr, encoding="utf-8")
        results.append(Run(name, out, done.returncode))
    return results


def _check_imports(side: Side, env: Mapping[str, str]) -> None:
    """Each side must run its own code, not the editable install's."""
    probe = "import tagpatch, tagpatch_local; print(tagpatch.__file__); print(tagpatch_local.__file__)"
    found = subprocess.run(
        [sys.executable, "-c", probe], env=dict(env), capture_output=True, text=True, check=True
    ).stdout.split()
    if not all(Path(path).resolve().is_relative_to(side.root.resolve()) for path in found):
        raise UsageError(f"{side.label}: imports {found}, not the code under {side.root}")


# --- comparing ----------------------------------------------------------------------------------------


def compare_runs(base: Run, head: Run, roots: Sequence[Path]) -> Iterator[str]:
    """The differences between one scenario's outputs on both sides, file by file."""
    if base.exit_code != head.exit_code:
        yield f"{base.name}: exit code {base.exit_code} at base, {head.exit_code} now"
    base_ids, head_ids = instance_names(base.out), instance_names(head.out)
    base_files = {path.relative_to(base.out) for path in base.out.rglob("*") if path.is_file()}
    head_files = {path.relative_to(head.out) for path in head.out.rglob("*") if path.is_file()}
    for relative in sorted(base_files ^ head_files, key=str):
        yield f"{base.name}/{relative}: only {'at base' if relative in base_files else 'now'}"
    for relative in sorted(base_files & head_files, key=str):
        before = normalise_file(base.out / relative, roots=roots, instances=base_ids)
        after = normalise_file(head.out / relative, roots=roots, instances=head_ids)
        if before != after:
            diff = difflib.unified_diff(
                before, after, f"base/{base.name}/{relative}", f"now/{head.name}/{relative}", n=1
            )
            yield "\n".join(_shortened(line) for line in list(diff)[:SHOWN_DIFF_LINES])


def _shortened(line: str, width: int = 240) -> str:
    return line if len(line) <= width else f"{line[:width]}... ({len(line)} characters)"


def _commit(rev: str) -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--verify", f"{rev}^{{commit}}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except subprocess.CalledProcessError as error:
        raise UsageError(f"{rev}: not a revision of {REPO}") from error


@contextlib.contextmanager
def _checked_out(commit: str) -> Iterator[Path]:
    """The commit in a temporary worktree, removed afterwards."""
    root = Path(tempfile.gettempdir()) / f"tidy-base-{commit[:12]}-{os.getpid()}"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(root), commit], check=True, capture_output=True
    )
    try:
        yield root
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(root)], check=False, capture_output=True
        )


def compare(base_rev: str, now_rev: str | None, scenarios: Sequence[str], keep: Path | None) -> int:
    """Run the scenarios at base_rev and at now_rev (default: the working tree), and compare."""
    if keep is not None and keep.exists() and any(keep.iterdir()):
        raise UsageError(f"--keep {keep}: not empty; give a new folder")
    base_commit = _commit(base_rev)
    now_commit = _commit(now_rev) if now_rev is not None else None
    now_label = f"{now_rev} ({now_commit[:12]})" if now_rev is not None and now_commit else "the working tree"
    work = keep or Path(tempfile.mkdtemp(prefix="compare-scenarios-"))
    with contextlib.ExitStack() as stack:
        base_root = stack.enter_context(_checked_out(base_commit))
        now_root = stack.enter_context(_checked_out(now_commit)) if now_commit else REPO
        chosen = list(scenarios) or sorted(set(scenario_names(base_root)) | set(scenario_names(now_root)))
        missing = [name for name in chosen if name not in scenario_names(now_root)]
        if missing:
            raise UsageError(f"no such scenario in {now_label}'s scenarios/: {', '.join(missing)}")
        only_now = [name for name in chosen if name not in scenario_names(base_root)]
        for name in only_now:
            print(f"{name}: not at {base_rev}; not compared", file=sys.stderr)
        compared = [name for name in (DEMO, *chosen) if name not in only_now]
        base_runs = run_side(Side("base", base_root), compared, work)
        now_runs = run_side(Side("now", now_root), compared, work)
        roots = (work / "base", work / "now", base_root, now_root)
    differences = [
        difference
        for before, after in zip(base_runs, now_runs, strict=True)
        for difference in compare_runs(before, after, roots=roots)
    ]
    if keep is None:
        shutil.rmtree(work, ignore_errors=True)
    between = f"{base_rev} ({base_commit[:12]}) and {now_label}"
    if not differences:
        print(f"same: {len(compared)} run(s) ({', '.join(compared)}) at {between}, after normalisation")
        return 0
    print(f"different: {len(differences)} difference(s) between {between}; the first:")
    for difference in differences[:SHOWN_FILES]:
        print(difference)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", help="the git revision to compare the working tree with, e.g. main or a1812d4")
    parser.add_argument("--now-rev", help="compare with this revision instead of the working tree")
    parser.add_argument("--scenario", action="append", default=[], help="a file name in scenarios/ (default: all)")
    parser.add_argument("--keep", type=Path, help="keep both sides' outputs in this (new) folder")
    args = parser.parse_args(argv)
    try:
        return compare(args.base, args.now_rev, [Path(name).name for name in args.scenario], args.keep)
    except UsageError as error:
        print(f"compare_scenarios: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
