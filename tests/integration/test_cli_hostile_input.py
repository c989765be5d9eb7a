"""Issue #21's hostile inputs: each is refused with one line and exit 2, never a traceback, a hang, or a
write outside --out. Table-driven in the spirit of the 124 cases the issue was found with; none of them
gets as far as running a cycle, so each takes about as long as starting the program."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from .cli_process import assert_refused, tagpatch

FLEET = """\
instances:
  - tags: {"Patch Group": "web", "Maintenance Window": "sun-0200", "Name": "web-1", "Owner": "team-web"}
    os: AMAZON_LINUX_2023
"""
GENERATE = """\
  - count: 100000
    name_prefix: g{index}
    patch_groups: {{web: 1}}
    schedules: {{sun-0200: 1}}
    os: {{UBUNTU: 1}}
"""
EXCEPTION = "exceptions:\n  - name: web-1\n    reason: vendor\n    approved_by: gov\n    expires: 2026-12-01\n"
SCENARIO = "fleet: fleet.yaml\ncycles:\n  - name: one\n    edits:\n      - exceptions: exceptions.yaml\n"


def fifo(path: Path) -> None:
    os.mkfifo(path)  # reading it would wait for a writer for ever


def write(name: str, content: str | bytes) -> Callable[[Path], None]:
    def make(work: Path) -> None:
        data = content.encode() if isinstance(content, str) else content
        (work / name).write_bytes(data)

    return make


def nothing(work: Path) -> None:
    del work


def named_pipe(name: str) -> Callable[[Path], None]:
    return lambda work: fifo(work / name)


# (case id, how to prepare the folder, arguments, fragments the one error line must hold)
CASES: list[tuple[str, Callable[[Path], None], tuple[str, ...], tuple[str, ...]]] = [
    ("fleet-dev-zero", nothing, ("--fleet", "/dev/zero"), ("/dev/zero: not a regular file",)),
    ("fleet-fifo", named_pipe("pipe.yaml"), ("--fleet", "pipe.yaml"), ("pipe.yaml: not a regular file",)),
    ("input-dev-zero", nothing, ("--input", "/dev/zero"), ("/dev/zero: not a regular file",)),
    ("input-fifo", named_pipe("in.json"), ("--input", "in.json"), ("in.json: not a regular file",)),
    ("scenario-fifo", named_pipe("s.yaml"), ("--scenario", "s.yaml"), ("s.yaml: not a regular file",)),
    (
        "fleet-too-large",
        write("big.yaml", "# padding\n" * 2_000_000),
        ("--fleet", "big.yaml"),
        ("big.yaml: ", "bytes; at most"),
    ),
    (  # 2.6 KB that once expanded to 3 million instances
        "generate-millions",
        write("gen.yaml", "generate:\n" + "".join(GENERATE.format(index=i) for i in range(30))),
        ("--fleet", "gen.yaml"),
        ("gen.yaml: generate[1].count (line 7): ", "at most 100,000 instances in all"),
    ),
    (
        "scenario-exception-impossible-date",
        write("exceptions.yaml", EXCEPTION.replace("2026-12-01", "2026-02-30")),
        ("--scenario", "scenario.yaml"),
        ("exceptions[0] (line 2): expires '2026-02-30' is not an ISO date",),
    ),
    (
        "scenario-exception-bad-hour",
        write("exceptions.yaml", EXCEPTION.replace("2026-12-01", "2026-12-01T25:00")),
        ("--scenario", "scenario.yaml"),
        ("exceptions[0] (line 2): expires '2026-12-01T25:00' is not an ISO date",),
    ),
    (
        "scenario-exception-duplicate-key",
        write("exceptions.yaml", EXCEPTION + "    reason: other\n"),
        ("--scenario", "scenario.yaml"),
        ("exceptions[0] (line 2): duplicate key 'reason' on line 6",),
    ),
    (
        "scenario-exception-hold-yes",
        write("exceptions.yaml", EXCEPTION + '    hold: "yes"\n'),
        ("--scenario", "scenario.yaml"),
        ("exceptions[0] (line 2): hold must be true or false",),
    ),
    (
        "scenario-exception-latin1",
        write("exceptions.yaml", EXCEPTION.encode().replace(b"vendor", b"v\xe9ndor")),
        ("--scenario", "scenario.yaml"),
        ("exceptions.yaml: line 3: byte 0xe9 is not UTF-8",),
    ),
    # Found by tests/unit/runner/test_hostile_documents.py: each was a traceback.
    (
        "fleet-nul-byte",
        write("nul.yaml", b"\x00instances: []\n"),
        ("--fleet", "nul.yaml"),
        ("nul.yaml: not valid YAML",),
    ),
    (
        "fleet-tagged-int",
        write("int.yaml", "instances:\n  - os: UBUNTU\n    missing: !!int many\n"),
        ("--fleet", "int.yaml"),
        ("int.yaml: not valid YAML: a tagged value cannot be read",),
    ),
    ("input-name-too-long", nothing, ("--input", "x" * 5000), ("--input: ", "is neither JSON nor an existing file")),
    (
        "input-with-newlines",
        nothing,
        ("--input", "- a\n- b"),
        ('--input: "- a\\n- b" is neither JSON',),
    ),
    (  # once a 10 KB XML dump in the failure's reason: EC2's XML answers cannot carry the character
        "fleet-tag-control-character",
        write("ctl.yaml", 'instances:\n  - os: UBUNTU\n    tags: {Name: "web\\x01one"}\n'),
        ("--fleet", "ctl.yaml"),
        ("ctl.yaml: instances[0].tags.Name (line 3): ", "U+0001", "control character"),
    ),
    (
        "fleet-tag-key-control-character",
        write("ctlkey.yaml", 'instances:\n  - os: UBUNTU\n    tags: {"Own\\x1ber": ops}\n'),
        ("--fleet", "ctlkey.yaml"),
        ("ctlkey.yaml: instances[0].tags.", "U+001B"),
    ),
    (
        "input-now-before-2000",
        nothing,
        ("--input", '{"now": "1999-12-31T00:00:00Z"}'),
        ("--input: now '1999-12-31T00:00:00Z' is outside 2000-01-01 to 2100-01-01",),
    ),
    ("now-after-2100", nothing, ("--now", "2150-01-01T00:00:00Z"), ("--now: 2150-01-01T00:00:00Z is outside 2000",)),
    ("now-year-one", nothing, ("--now", "0001-01-01T00:00:00Z"), ("--now: 0001-01-01T00:00:00Z is outside 2000",)),
    (
        "now-and-input-now-disagree",
        nothing,
        ("--now", "2026-11-29T03:00:00Z", "--input", '{"now": "2026-12-01T00:00:00Z"}'),
        ("--now 2026-11-29T03:00:00Z and the input's now 2026-12-01T00:00:00Z disagree",),
    ),
    (
        "scenario-start-1970",
        write("old.yaml", "fleet: fleet.yaml\nstart: 1970-01-01T00:00:00Z\ncycles: [{name: one}]\n"),
        ("--scenario", "old.yaml"),
        ("old.yaml: start (line 2): 1970-01-01T00:00:00Z is outside 2000-01-01 to 2100-01-01",),
    ),
    (
        "scenario-exception-fifo",
        named_pipe("exceptions.yaml"),
        ("--scenario", "scenario.yaml"),
        ("exceptions.yaml: not a regular file",),
    ),
]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "fleet.yaml").write_text(FLEET)
    (tmp_path / "scenario.yaml").write_text(SCENARIO)
    return tmp_path


@pytest.mark.parametrize(("prepare", "args", "expect"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_hostile_input_is_refused_in_one_line(
    work: Path, prepare: Callable[[Path], None], args: tuple[str, ...], expect: tuple[str, ...]
) -> None:
    prepare(work)
    before = sorted(path.name for path in work.iterdir())
    completed = tagpatch(*args, "--out", "out", cwd=work, timeout=60)
    assert_refused(completed, *expect)
    assert sorted(path.name for path in work.iterdir()) == before, "bad input must write nothing"


def test_a_scenarios_adds_share_the_fleets_cap(work: Path) -> None:
    adds = "".join(
        f"      - add: {{generate: {{count: 60000, name_prefix: a{index}, patch_groups: {{web: 1}}, "
        f"schedules: {{sun-0200: 1}}, os: {{UBUNTU: 1}}}}}}\n"
        for index in range(3)
    )
    (work / "adds.yaml").write_text("fleet: fleet.yaml\ncycles:\n  - name: one\n    edits:\n" + adds)
    completed = tagpatch("--scenario", "adds.yaml", "--out", "out", cwd=work, timeout=120)
    assert_refused(completed, "adds.yaml: cycles[0].edits[1].add.generate.count (line 6): ", "120,001 instances")


# --- --out ------------------------------------------------------------------------------------------


def test_an_out_path_too_long_for_the_system_is_refused(work: Path) -> None:
    completed = tagpatch("--fleet", "fleet.yaml", "--out", "x" * 5000, cwd=work, timeout=60)
    assert_refused(completed, "--out xxx", "File name too long")


@pytest.mark.parametrize(
    "link",
    ["summary.json", "lambda.log", "compliance", "notifications", "01-first/summary.json", "01-first/compliance"],
)
def test_force_never_writes_through_a_symbolic_link(work: Path, link: str) -> None:
    outside = work / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("keep me")
    out = work / "out"
    (out / link).parent.mkdir(parents=True, exist_ok=True)
    (out / "notes.txt").write_text("mine")
    target = outside if "." not in Path(link).name else outside / "victim.txt"
    (out / link).symlink_to(target)
    completed = tagpatch("--fleet", "fleet.yaml", "--out", "out", "--force", cwd=work, timeout=60)
    assert_refused(completed, f"--out out: {link} is a symbolic link")
    assert sorted(path.name for path in outside.iterdir()) == ["victim.txt"]
    assert (outside / "victim.txt").read_text() == "keep me"
