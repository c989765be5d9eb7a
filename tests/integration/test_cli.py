"""`tagpatch run`: the files it writes, its exit codes and its error messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tagpatch_local.cli import main
from tagpatch_local.fleet import FleetInstance, load_fleet
from tagpatch_local.member_stack import MemberStack, StackInstanceFailed
from tagpatch_local.runner import SimulatedAccount

REPO = Path(__file__).resolve().parents[2]
FLEET = """
instances:
  - tags: {"Patch Group": "web", "Maintenance Window": "sun-0200", "Name": "web-1", "Owner": "team-web"}
    os: AMAZON_LINUX_2023
  - tags: {"Patch-Group": "web", "Maintenance Window": "sun-0200", "Name": "web-2"}
    os: UBUNTU
"""


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET)
    return path


def test_a_run_writes_the_summary_instances_and_changes(fleet: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["run", "--fleet", str(fleet), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["execution"]["status"] == "SUCCEEDED"
    assert summary["execution"]["state_transitions"] >= 6
    assert 0 < summary["execution"]["max_payload_bytes"] < 256 * 1024
    assert summary["aws_calls"]["ec2:DescribeInstances"] == 1
    assert summary["aws_write_calls"]["ssm:CreateMaintenanceWindow"] == 1
    assert summary["instances"] == {"total": 2, "by_class": {"missing_tags": 1, "ready": 1}}
    assert summary["changes"]["window"]["created"] == 1
    lines = [json.loads(line) for line in (out / "instances.jsonl").read_text().splitlines()]
    by_name = {line["name"]: line for line in lines}
    assert by_name["web-1"]["class"] == "ready"
    assert by_name["web-2"]["class"] == "missing_tags"
    assert set(by_name["web-1"]) >= {
        "instance_id",
        "name",
        "class",
        "reasons",
        "warnings",
        "patch_group",
        "maintenance_window",
        "os",
    }
    changes = [json.loads(line) for line in (out / "changes.jsonl").read_text().splitlines()]
    assert {(c["kind"], c["action"]) for c in changes} >= {
        ("window", "create"),
        ("target", "create"),
        ("task", "create"),
        ("registration", "create"),
    }
    report = json.loads((out / "tag-report.json").read_text())
    assert report["problems_by_owner"]["(no Owner tag)"][0]["name"] == "web-2"


def test_plan_input_from_a_file(fleet: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert (
        main(["run", "--fleet", str(fleet), "--out", str(out), "--input", str(REPO / "events" / "cycle-plan.json")])
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "plan"
    assert summary["resource_write_calls"] == {}
    assert summary["changes"]["window"]["created"] == 1


def test_a_scenario_reports_every_cycle(tmp_path: Path, fleet: Path) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        f"fleet: {fleet}\n"
        "cycles:\n"
        "  - name: first\n"
        "  - name: rerun\n"
        "  - name: move\n"
        "    edits:\n"
        '      - retag: {select: {Name: web-1}, set: {"Maintenance Window": "cron(0 4 ? * SAT *)"}}\n'
    )
    out = tmp_path / "out"
    assert main(["run", "--scenario", str(scenario), "--out", str(out)]) == 0
    cycles = json.loads((out / "summary.json").read_text())["cycles"]
    assert [cycle["name"] for cycle in cycles] == ["first", "rerun", "move"]
    assert cycles[1]["resource_write_calls"] == {}
    assert cycles[2]["changes"]["window"] == {
        "created": 1,
        "updated": 0,
        "deleted": 1,
        "unchanged": 0,
        "blocked": 0,
        "not_applied": 0,
    }
    assert (out / "03-move" / "changes.jsonl").exists()


@pytest.mark.parametrize(
    ("fleet_text", "message"),
    [
        ("instances:\n  - os: UBUNTU\n    sssm: online\n", 'unknown key "sssm"'),
        ("instances:\n  - os: BEOS\n", "BEOS"),
        ("instances: [\n", "fleet"),
        ("accounts:\n  - id: 111111111111\n    regions: [us-east-1]\n", "accounts[0].id (line 2): an account id"),
        ('accounts:\n  - id: "111111111111"\n    regions: [mars-1]\n', "accounts[0].regions[0] (line 3)"),
    ],
)
def test_a_bad_fleet_file_exits_2_naming_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fleet_text: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(fleet_text)
    assert main(["run", "--fleet", str(path), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("tagpatch: error: ")
    assert message in error
    assert str(path) in error


def test_input_that_is_not_json_exits_2(fleet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--fleet", str(fleet), "--out", str(tmp_path / "out"), "--input", "{mode: plan}"]) == 2
    assert "--input: line 1 column 2: not valid JSON" in capsys.readouterr().err


def test_input_the_state_machine_would_reject_exits_2_before_any_run(
    fleet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["run", "--fleet", str(fleet), "--out", str(out), "--input", '{"mode": "yolo"}']) == 2
    assert "--input: mode 'yolo' is not valid" in capsys.readouterr().err
    assert not out.exists()


def test_a_failed_cycle_exits_1_and_reports_why(
    fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A cycle fails only on the AWS side, so the failure is injected into the account the CLI builds."""
    seed = SimulatedAccount.seed

    def seed_then_deny(account: SimulatedAccount, instances: Sequence[FleetInstance]) -> list[str]:
        account.fail_next("ssm", "DescribeInstanceInformation", "AccessDeniedException", times=1, status=400)
        return seed(account, instances)

    monkeypatch.setattr(SimulatedAccount, "seed", seed_then_deny)
    out = tmp_path / "out"
    assert main(["run", "--fleet", str(fleet), "--out", str(out), "--detailed-exitcode"]) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["execution"]["status"] == "FAILED"
    console = capfd.readouterr().out  # the console is the process's own stdout
    assert "(apply): FAILED" in console and "AccessDeniedException" in console


def run_described_stack(
    account: SimulatedAccount, fleet: Path, tmp_path: Path, *, with_org_cycle: bool
) -> dict[str, Any]:
    """Describe the simulated stack as a CloudFormation stack in moto (its outputs only, with or without
    the org cycle's), run `tagpatch run --stack` against it, and return the summary of a successful run."""
    account.seed(load_fleet(fleet))
    outputs = {
        "PatchCycleStateMachineArn": {"Value": account.state_machine_arn},
        "ArtifactBucketName": {"Value": account.artifact_bucket},
    }
    if with_org_cycle:
        outputs["OrgCycleStateMachineArn"] = {"Value": account.org_cycle_arn}
    account.client("cloudformation").create_stack(
        StackName="tagpatch",
        TemplateBody=json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}, "Outputs": outputs}),
    )
    out = tmp_path / "out"
    assert main(["run", "--stack", "tagpatch", "--region", "us-east-1", "--out", str(out)]) == 0
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    assert summary["execution"]["status"] == "SUCCEEDED"
    assert summary["instances"]["by_class"] == {"missing_tags": 1, "ready": 1}
    return summary


def test_a_deployed_stack_is_run_and_reported_the_same_way(
    account: SimulatedAccount, fleet: Path, tmp_path: Path
) -> None:
    """`--stack` finds the state machine and bucket in the stack's outputs and reports like a local run.

    Here the "deployed" stack is the simulated one, described by a CloudFormation stack in moto.
    """
    summary = run_described_stack(account, fleet, tmp_path, with_org_cycle=False)
    assert summary["aws_calls"] == {}  # calls made inside Lambda are not visible from here


def test_a_deployed_stack_with_an_org_cycle_runs_it_and_reports_its_target(
    account: SimulatedAccount, fleet: Path, tmp_path: Path
) -> None:
    """A stack with the org cycle is run as its schedule runs it: the org cycle, one patch cycle per target."""
    run_described_stack(account, fleet, tmp_path, with_org_cycle=True)
    org_executions = account.client("stepfunctions").list_executions(stateMachineArn=account.org_cycle_arn)
    assert [execution["status"] for execution in org_executions["executions"]] == ["SUCCEEDED"]


def test_an_unknown_stack_exits_2(
    account: SimulatedAccount, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--stack", "nope", "--region", "us-east-1", "--out", str(tmp_path)]) == 2
    assert "nope" in capsys.readouterr().err


def test_the_console_command_runs_in_a_plain_environment(fleet: Path, tmp_path: Path) -> None:
    """As `make cycle` runs it: a fresh process with none of the test suite's environment."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "POWERTOOLS_", "PYTEST_")) and key != "MOTO_ACCOUNT_ID"
    }
    out = tmp_path / "out"
    completed = subprocess.run(
        [sys.executable, "-m", "tagpatch_local.cli", "run", "--fleet", str(fleet), "--out", str(out)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "SUCCEEDED" in completed.stdout
    assert "  > Discovery" in completed.stdout and "  ✓ BaselineAssociation" in completed.stdout
    assert json.loads((out / "summary.json").read_text())["execution"]["status"] == "SUCCEEDED"
    # The functions' logs go to the log file, as structured JSON with the correlation id.
    log_lines = [json.loads(line) for line in (out / "lambda.log").read_text().splitlines() if line.startswith("{")]
    assert any(line.get("message") == "fleet listed" and line.get("correlation_id") for line in log_lines)


def test_a_failed_spoke_stack_instance_is_a_warning_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy = MemberStack.deploy

    def fail_in_eu_west_1(stack: MemberStack) -> dict[str, str]:
        if stack.region == "eu-west-1":  # as a StackSet operation reports a failed instance
            raise StackInstanceFailed(f"stack instance {stack.account_id}/{stack.region} failed and rolled back: X: y")
        return deploy(stack)

    # The spoke no longer fails in a second Region (RolesRegion), so a failure is made here.
    monkeypatch.setattr(MemberStack, "deploy", fail_in_eu_west_1)
    path = tmp_path / "organization.yaml"
    path.write_text(FLEET + 'accounts:\n  - id: "111111111111"\n    regions: [us-east-1, eu-west-1]\n')
    assert main(["run", "--fleet", str(path), "--out", str(tmp_path / "out")]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("tagpatch: warning: spoke/")]
    assert warnings == [
        "tagpatch: warning: spoke/template.yaml stack instance 111111111111/eu-west-1 failed and rolled back: X: y"
    ]
