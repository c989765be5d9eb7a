"""`tagpatch run` refuses bad input before it builds the simulated account: one line, exit 2, no files.

Every case runs the installed console script from a folder other than the repo root. None of them
runs a cycle: each is refused while the input is checked, so each takes well under a second.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from .cli_process import assert_refused, tagpatch

FLEET = """\
instances:
  - tags: {"Patch Group": "web", "Maintenance Window": "sun-0200", "Name": "web-1", "Owner": "team-web"}
    os: AMAZON_LINUX_2023
  - tags: {"Patch Group": "web", "Maintenance Window": "sun-0200", "Name": "web-2"}
    os: UBUNTU
"""
# Four good cycles first: a mistake in the fifth must be found before the first runs.
FOUR_GOOD_CYCLES = """\
fleet: fleet.yaml
cycles:
  - name: first
  - name: second
    edits:
      - retag: {select: {Name: web-1}, set: {Owner: team-ops}}
  - name: third
    edits:
      - remove: {select: {Name: web-2}}
  - name: fourth
    input: {mode: plan}
"""
ALIAS_BOMB = """\
a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
instances: *h
"""


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A user's folder holding a good fleet; the repo is elsewhere."""
    (tmp_path / "fleet.yaml").write_text(FLEET)
    return tmp_path


def refused(work: Path, *args: str, expect: tuple[str, ...] = ()) -> str:
    completed = tagpatch(*args, "--out", "out", cwd=work)
    error = assert_refused(completed, *expect)
    assert not (work / "out").exists(), "bad input must leave no output folder"
    return error


# --- --input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expect"),
    [
        ("[]", "must be a JSON object such as"),
        ('[["mode", "plan"]]', "must be a JSON object such as"),
        ("null", "(got null)"),
        ('"plan"', '(got "plan")'),
        ("42", "(got 42)"),
        ("true", "(got true)"),
        ("plan", "'plan' is neither JSON nor an existing file"),
        ("", "--input: is empty"),
        ("{mode: plan}", "--input: line 1 column 2: not valid JSON"),
        ('{"mode": "plan", "mode": "apply"}', 'duplicate key "mode"'),
        ('{"mode": "yolo"}', "mode 'yolo' is not valid"),
        ('{"mood": "plan"}', "unknown input key(s) 'mood'"),
        ('{"patch_groups": "web"}', "patch_groups must be a non-empty list"),
        ('{"patch_groups": []}', "patch_groups must be a non-empty list"),
        ('{"patch_groups": ["web#1"]}', "patch_groups[0] 'web#1' is not a valid patch group name"),
        ('{"now": "tomorrow"}', "now 'tomorrow' is not an ISO 8601 time"),
        ('{"allow_mass_deletion": "yes"}', "allow_mass_deletion must be true or false"),
    ],
)
def test_a_bad_inline_input_is_refused(work: Path, value: str, expect: str) -> None:
    refused(work, "--fleet", "fleet.yaml", "--input", value, expect=("--input: ", expect))


def test_patch_groups_beyond_the_payload_limit_are_refused_naming_the_key(work: Path) -> None:
    groups = [f"group-{index:04d}-{'x' * 200}" for index in range(400)]  # ~85 KB
    error = refused(work, "--fleet", "fleet.yaml", "--input", json.dumps({"patch_groups": groups}))
    assert "--input: patch_groups is " in error and "400 groups" in error and "65,536 bytes" in error


@pytest.mark.parametrize(
    ("name", "content", "expect"),
    [
        ("missing.json", None, "--input: no such file missing.json"),
        ("folder.json", "FOLDER", "folder.json: is a folder"),
        ("latin1.json", b'{"mode": "pl\xe4n"}', "latin1.json: line 1: byte 0xe4 is not UTF-8"),
        ("broken.json", b'{"mode":\n  plan}', "broken.json: line 2 column 3: not valid JSON"),
        ("list.json", b'[["mode", "plan"]]', "list.json: the execution input must be a JSON object"),
        ("twice.json", b'{"mode": "plan",\n "mode": "apply"}', 'twice.json: duplicate key "mode"'),
    ],
)
def test_a_bad_input_file_is_refused(work: Path, name: str, content: bytes | str | None, expect: str) -> None:
    if content == "FOLDER":
        (work / name).mkdir()
    elif isinstance(content, bytes):
        (work / name).write_bytes(content)
    refused(work, "--fleet", "fleet.yaml", "--input", name, expect=(expect,))


# --- fleet files -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "expect"),
    [
        ("missing.yaml", None, "missing.yaml: no such fleet file"),
        ("folder.yaml", "FOLDER", "folder.yaml: is a folder"),
        ("latin1.yaml", b"instances:\n  - tags: {Name: caf\xe9}\n    os: UBUNTU\n", "line 2: byte 0xe9 is not UTF-8"),
        ("latin1.json", b'{"instances": [{"os": "UBUNTU", "tags": {"Name": "caf\xe9"}}]}', "byte 0xe9 is not UTF-8"),
        ("twice.json", b'{"instances": [{"os": "UBUNTU", "os": "WINDOWS"}]}', 'twice.json: duplicate key "os"'),
        ("twice-top.json", b'{"instances": [], "instances": [{"os": "UBUNTU"}]}', 'duplicate key "instances"'),
        ("twice.yaml", b"instances:\n  - os: UBUNTU\n    os: WINDOWS\n", '(line 3): duplicate key "os"'),
        (
            "typo.yaml",
            b"instances:\n  - os: UBUNTU\n    sssm: online\n",
            'instances[0].sssm (line 3): unknown key "sssm"',
        ),
        ("bad-yaml.yaml", b"instances: [\n", "bad-yaml.yaml: not valid YAML: line 2"),
        ("loop.yaml", b"instances: &loop\n  - *loop\n", "refers to a block that contains it"),
    ],
)
def test_a_bad_fleet_file_is_refused(work: Path, name: str, content: bytes | str | None, expect: str) -> None:
    if content == "FOLDER":
        (work / name).mkdir()
    elif isinstance(content, bytes):
        (work / name).write_bytes(content)
    refused(work, "--fleet", name, expect=(expect,))


def test_a_yaml_alias_bomb_is_refused_at_once(work: Path) -> None:
    (work / "bomb.yaml").write_text(ALIAS_BOMB)
    started = time.monotonic()
    refused(work, "--fleet", "bomb.yaml", expect=("bomb.yaml: YAML aliases (*name) expand the document to",))
    assert time.monotonic() - started < 20


# --- scenarios ---------------------------------------------------------------------------------------


def scenario_with_fifth_cycle(work: Path, fifth: str) -> str:
    (work / "scenario.yaml").write_text(FOUR_GOOD_CYCLES + fifth)
    return "scenario.yaml"


@pytest.mark.parametrize(
    ("fifth", "expect"),
    [
        (  # a string where a list belongs: once reported keys as removed and removed nothing
            "  - name: fifth\n    edits:\n      - untag: {select: {Name: web-1}, keys: Owner}\n",
            'cycles[4].edits[0].untag.keys (line 14): must be a list of tag keys, e.g. ["Patch Group"]',
        ),
        (
            "  - name: fifth\n    edits:\n      - untag: {select: {Name: web-1}, keys: []}\n",
            "untag.keys (line 14): must be a list of tag keys",
        ),
        (
            "  - name: fifth\n    edits:\n      - untag: {select: {Name: web-1}, keys: [Colour]}\n",
            "none of the 1 selected instance(s) has tag(s) ['Colour']",
        ),
        (  # a list where a mapping belongs: once a traceback
            "  - name: fifth\n    edits:\n      - retag: {select: {Name: web-1}, set: [Owner, team-x]}\n",
            "cycles[4].edits[0].retag.set (line 14): must map tag keys to values",
        ),
        (
            "  - name: fifth\n    edits:\n      - retag: {select: {Name: web-1}, set: {Owner: 42}}\n",
            "retag.set.Owner (line 14): tag values must be strings",
        ),
        (
            "  - name: fifth\n    edits:\n      - retag: {select: {Name: web-1}}\n",
            "retag needs select and set; 'set' is missing",
        ),
        (
            "  - name: fifth\n    edits:\n      - retag: {select: {Name: web-1}, set: {Owner: x}, colour: red}\n",
            "retag.colour (line 14): unknown key 'colour'",
        ),
        (  # web-2 was removed in cycle 3
            "  - name: fifth\n    edits:\n      - stop: {select: {Name: web-2}}\n",
            "cycles[4].edits[0] (line 14): no instance matches {'Name': 'web-2'} by then (cycle 'fifth')",
        ),
        (  # web-1's Owner was changed in cycle 2
            "  - name: fifth\n    edits:\n      - start: {select: {Owner: team-web}}\n",
            "no instance matches {'Owner': 'team-web'} by then",
        ),
        ("  - name: fifth\n    edits:\n      - reboot: {select: {Name: web-1}}\n", "an edit is one mapping key of"),
        ("  - name: fifth\n    edits:\n      - remove: {select: {}}\n", "remove.select (line 14): must map tag keys"),
        ("  - name: fifth\n    edits:\n      retag: {}\n", "cycles[4].edits (line 13): must be a list of edits"),
        ("  - name: fifth\n    edits:\n      - add: {instances: [{os: BEOS}]}\n", "add.instances[0].os (line 14)"),
        ("  - name: fifth\n    edits:\n      - policy: missing.yaml\n", "missing.yaml: no such patch policy"),
        ("  - name: fifth\n    edits:\n      - policy: bad-policy.yaml\n", "windows.sun.cutoff_hours: must be"),
        ("  - name: fifth\n    input: []\n", "cycles[4].input (line 13): the execution input must be a JSON object"),
        ("  - name: fifth\n    input: {mode: yolo}\n", "cycles[4].input (line 13): mode 'yolo' is not valid"),
        ("  - name: ../../escape\n", "cycles[4].name (line 12): must be 1-64 of A-Z a-z 0-9 _ . -"),
        ("  - name: fifth\n    colour: red\n", "cycles[4].colour (line 13): unknown key 'colour'"),
    ],
)
def test_a_bad_fifth_cycle_is_refused_before_the_first_runs(work: Path, fifth: str, expect: str) -> None:
    (work / "bad-policy.yaml").write_text(
        "version: 1\nwindows:\n  sun:\n    schedule: cron(0 2 ? * SUN *)\n    duration_hours: 2\n    cutoff_hours: 2\n"
    )
    refused(work, "--scenario", scenario_with_fifth_cycle(work, fifth), expect=("scenario.yaml: ", expect))


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        ("fleet: fleet.yaml\ninstances: []\ncycles: [{name: a}]\n", "fleet (line 1): give either `fleet`"),
        ("cycles: [{name: a}]\n", "a scenario needs `fleet`"),
        ("fleet: fleet.yaml\ncycles: []\n", "cycles (line 2): must be a non-empty list"),
        ("fleet: missing.yaml\ncycles: [{name: a}]\n", "missing.yaml: no such fleet file"),
        ("fleet: fleet.yaml\nfleet: other.yaml\ncycles: [{name: a}]\n", '(line 2): duplicate key "fleet"'),
        ("- just\n- a list\n", "(top level) (line 1): must be a mapping"),
    ],
)
def test_a_bad_scenario_file_is_refused(work: Path, content: str, expect: str) -> None:
    (work / "scenario.yaml").write_text(content)
    refused(work, "--scenario", "scenario.yaml", expect=(expect,))


# --- arguments and the output folder ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (("--scenario", "scenario.yaml", "--fleet", "fleet.yaml"), "--scenario names its own fleet"),
        (("--scenario", "scenario.yaml", "--input", '{"mode": "plan"}'), "--scenario names its own fleet"),
        (("--stack", "tagpatch", "--fleet", "fleet.yaml"), "--stack runs the deployed stack's real fleet"),
        (("--fleet", "fleet.yaml", "--region", "eu-west-1"), "--region is the deployed stack's Region"),
        (("--flet", "fleet.yaml"), "unrecognized arguments: --flet"),
    ],
)
def test_conflicting_or_unknown_arguments_are_refused(work: Path, args: tuple[str, ...], expect: str) -> None:
    (work / "scenario.yaml").write_text(FOUR_GOOD_CYCLES)
    refused(work, *args, expect=(expect,))


def test_out_naming_a_file_is_refused(work: Path) -> None:
    (work / "results").write_text("not a folder")
    completed = tagpatch("--fleet", "fleet.yaml", "--out", "results", cwd=work)
    assert_refused(completed, "--out results: is a file")
    assert (work / "results").read_text() == "not a folder"


def test_out_below_a_file_is_refused(work: Path) -> None:
    completed = tagpatch("--fleet", "fleet.yaml", "--out", "fleet.yaml/out", cwd=work)
    assert_refused(completed, "--out fleet.yaml/out: ", "fleet.yaml is not a folder")


def test_out_holding_other_files_is_refused_without_force_and_left_alone(work: Path) -> None:
    out = work / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "summary.json").write_text("{}")
    completed = tagpatch("--fleet", "fleet.yaml", "--out", "out", cwd=work)
    assert_refused(completed, "holds files tagpatch run did not write (notes.txt)", "--force")
    assert sorted(path.name for path in out.iterdir()) == ["notes.txt", "summary.json"]


def test_bad_input_leaves_an_earlier_run_untouched(work: Path) -> None:
    out = work / "out"
    (out / "01-first").mkdir(parents=True)
    (out / "01-first" / "summary.json").write_text("{}")
    (out / "summary.json").write_text("{}")
    assert_refused(tagpatch("--fleet", "fleet.yaml", "--input", "[]", "--out", "out", cwd=work))
    assert (out / "01-first" / "summary.json").exists() and (out / "summary.json").exists()


@pytest.mark.parametrize(
    ("scan", "expect"),
    [
        ("schedule: rate(5 minutes)", "scan.schedule: rate(5 minutes) runs more often than every 30 minutes"),
        ("enabled: maybe", "scan.enabled: must be true or false (got 'maybe')"),
        ("stale_after_days: 0", "scan.stale_after_days: must be a whole number from 1 to 365 (got 0)"),
    ],
)
def test_a_policy_edit_with_a_bad_scan_section_is_refused(work: Path, scan: str, expect: str) -> None:
    (work / "bad-scan.yaml").write_text(f"version: 1\nscan:\n  {scan}\n")
    fifth = "  - name: fifth\n    edits:\n      - policy: bad-scan.yaml\n"
    refused(work, "--scenario", scenario_with_fifth_cycle(work, fifth), expect=("bad-scan.yaml: ", expect))
