"""`tagpatch run`: a full patch cycle on the simulated account, from a fleet file."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import ClientError, NoCredentialsError

from tagpatch_local.fleet import FleetError, load_fleet
from tagpatch_local.report import write_outputs
from tagpatch_local.runner import CycleResult, DeployedStack, SimulatedAccount, console
from tagpatch_local.scenario import ScenarioCycle, ScenarioError, apply_edit, load_scenario
from tagpatch_local.template import TemplateError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_FLEET = REPO_ROOT / "fleets" / "demo.yaml"


class UsageError(ValueError):
    """A bad command-line argument: reported in one line, exit status 2."""


def parse_input(value: str | None) -> Any:
    """`--input` is inline JSON or the path of a JSON file (e.g. events/cycle-plan.json)."""
    if value is None:
        return {}
    path = Path(value)
    text = path.read_text(encoding="utf-8") if not value.lstrip().startswith(("{", "[")) and path.exists() else value
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        source = str(path) if text is not value else "--input"
        raise UsageError(
            f"{source}: not valid JSON at line {error.lineno} column {error.colno}: {error.msg}"
        ) from error


class Progress:
    """Prints states as they start and finish."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.entered: dict[str, datetime] = {}

    def __call__(self, event: dict[str, Any]) -> None:
        kind = str(event["type"])
        if kind.endswith("StateEntered") and not kind.startswith(("Map", "Pass")):
            name = event["stateEnteredEventDetails"]["name"]
            self.entered[name] = event["timestamp"]
            print(f"  > {name}", file=self.stream, flush=True)
        elif kind.endswith("StateExited") and not kind.startswith("Pass"):
            name = event["stateExitedEventDetails"]["name"]
            started = self.entered.get(name)
            took = f" ({(event['timestamp'] - started).total_seconds():.2f} s)" if started else ""
            print(f"  ✓ {name}{took}", file=self.stream, flush=True)
        elif kind in {"TaskFailed", "LambdaFunctionFailed"}:
            details = event.get("taskFailedEventDetails") or event.get("lambdaFunctionFailedEventDetails") or {}
            print(f"  ✗ {details.get('error')}: {details.get('cause', '')[:300]}", file=self.stream, flush=True)


def human_summary(result: CycleResult, summary: dict[str, Any], out_dir: Path) -> str:
    lines = [
        f"cycle {result.execution_name}: {result.status} in {result.wall_seconds:.1f} s, "
        f"{result.state_transitions} state transitions, "
        f"largest state payload {result.max_payload_bytes:,} bytes",
    ]
    if result.status != "SUCCEEDED":
        lines.append(f"error: {result.error}: {summary['execution']['cause']}")
    by_class = summary["instances"]["by_class"]
    if by_class:
        parts = ", ".join(f"{count} {name}" for name, count in by_class.items())
        lines.append(f"{summary['instances']['total']} instances: {parts}")
    for kind, counts in summary["changes"].items():
        done = ", ".join(f"{n} {action}" for action, n in counts.items() if n)
        lines.append(f"{kind}s: {done or 'none'}")
    if summary["problems"]:
        lines.append(f"{len(summary['problems'])} problem(s) reported; see summary.json")
    lines.append(
        f"AWS calls: {sum(result.calls.values())} ({sum(result.write_calls.values())} writes, "
        f"{sum(result.resource_write_calls.values())} to patching resources)"
    )
    lines.append(f"results: {out_dir}/ (summary.json, instances.jsonl, changes.jsonl, tag-report.json)")
    return "\n".join(lines)


def run_deployed(args: argparse.Namespace) -> int:
    """One cycle of a stack deployed with `sam deploy`, with the caller's credentials."""
    out = console()
    if args.scenario or args.fleet:
        raise UsageError("--stack runs the deployed stack's real fleet; it takes no --fleet or --scenario")
    account = DeployedStack.from_stack(args.stack, args.region)
    print(f"tagpatch: stack {args.stack}, state machine {account.state_machine_arn}", file=out, flush=True)
    result = account.run_cycle(parse_input(args.input), on_event=Progress(out))
    out_dir = Path(args.out)
    summary = write_outputs(account, result, out_dir)
    print(human_summary(result, summary, out_dir), file=out, flush=True)
    return 0 if result.status == "SUCCEEDED" else 1


def run(args: argparse.Namespace) -> int:
    if args.stack:
        return run_deployed(args)
    out = console()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.scenario:
        scenario = load_scenario(Path(args.scenario))
        fleet, cycles, base = list(scenario.fleet), scenario.cycles, scenario.base
        source = f"scenario {args.scenario}"
    else:
        fleet = load_fleet(Path(args.fleet or DEMO_FLEET))
        cycles, base = (ScenarioCycle("cycle", (), parse_input(args.input)),), Path.cwd()
        source = f"fleet {args.fleet or DEMO_FLEET}"
    print(f"tagpatch: simulated account, {source} ({len(fleet)} instances)", file=out, flush=True)
    summaries = []
    status = 0
    with (
        (out_dir / "lambda.log").open("w", encoding="utf-8") as log,
        SimulatedAccount(Path(args.template), log_stream=log) as account,
    ):
        account.seed(fleet)
        for index, cycle in enumerate(cycles, start=1):
            if len(cycles) > 1:
                print(f"\n[{index}/{len(cycles)}] {cycle.name}", file=out, flush=True)
            for edit in cycle.edits:
                print(f"  ~ {apply_edit(account, edit, base)}", file=out, flush=True)
            result = account.run_cycle(dict(cycle.execution_input), on_event=Progress(out))
            cycle_dir = out_dir if len(cycles) == 1 else out_dir / f"{index:02d}-{cycle.name}"
            summary = write_outputs(account, result, cycle_dir)
            summaries.append({"name": cycle.name, **summary})
            print(human_summary(result, summary, cycle_dir), file=out, flush=True)
            status = status or (0 if result.status == "SUCCEEDED" else 1)
    if len(cycles) > 1:
        scenario_summary = {"cycles": [{key: value for key, value in s.items() if key != "output"} for s in summaries]}
        (out_dir / "summary.json").write_text(json.dumps(scenario_summary, indent=2, default=str) + "\n")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tagpatch", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run a full patch cycle on the simulated account")
    run_parser.add_argument("--fleet", help=f"fleet file (YAML/JSON) for the simulated account (default: {DEMO_FLEET})")
    run_parser.add_argument("--input", help='execution input: inline JSON or a JSON file, e.g. \'{"mode": "plan"}\'')
    run_parser.add_argument("--scenario", help="scenario file: several cycles with fleet and policy edits between them")
    run_parser.add_argument("--out", default="out", help="output folder (default: out)")
    run_parser.add_argument("--stack", help="run a cycle of this deployed stack instead, with your AWS credentials")
    run_parser.add_argument("--region", help="the deployed stack's Region (default: your AWS configuration's)")
    run_parser.add_argument("--template", default=str(REPO_ROOT / "template.yaml"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (UsageError, FleetError, TemplateError, ScenarioError, NoCredentialsError, ClientError) as error:
        print(f"tagpatch: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
