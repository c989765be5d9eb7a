"""`tagpatch run`: a full patch cycle on the simulated account, from a fleet file."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from tagpatch_local.fleet import FleetError, load_fleet
from tagpatch_local.report import write_outputs
from tagpatch_local.runner import CycleResult, SimulatedAccount, console
from tagpatch_local.template import TemplateError

REPO_ROOT = Path(__file__).resolve().parents[2]


class UsageError(ValueError):
    """A bad command-line argument: reported in one line, exit status 2."""


def parse_input(value: str | None) -> Any:
    """`--input` is inline JSON or the path of a JSON file (e.g. events/cycle-plan.json)."""
    if value is None:
        return {}
    path = Path(value)
    text = (
        path.read_text(encoding="utf-8")
        if not value.lstrip().startswith(("{", "[")) and path.exists()
        else value
    )
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
            details = (
                event.get("taskFailedEventDetails") or event.get("lambdaFunctionFailedEventDetails") or {}
            )
            print(
                f"  ✗ {details.get('error')}: {details.get('cause', '')[:300]}", file=self.stream, flush=True
            )


def human_summary(result: CycleResult, by_class: Counter[str], out_dir: Path) -> str:
    lines = [
        f"cycle {result.execution_name}: {result.status} in {result.wall_seconds:.1f} s, "
        f"{result.state_transitions} state transitions, "
        f"largest state payload {result.max_payload_bytes:,} bytes",
    ]
    if result.status != "SUCCEEDED":
        lines.append(f"error: {result.error}: {result.cause}")
    if by_class:
        total = sum(by_class.values())
        parts = ", ".join(f"{count} {name}" for name, count in by_class.items())
        lines.append(f"{total} instances: {parts}")
    calls = result.calls
    lines.append(
        f"AWS calls: {sum(calls.values())} ({sum(result.write_calls.values())} writes, "
        f"{sum(result.resource_write_calls.values())} to patching resources)"
    )
    lines.append(f"results: {out_dir / 'summary.json'}, {out_dir / 'instances.jsonl'}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    out = console()
    execution_input = parse_input(args.input)
    fleet = load_fleet(Path(args.fleet))
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"tagpatch: simulated account, fleet {args.fleet} ({len(fleet)} instances)", file=out, flush=True)
    with (
        (out_dir / "lambda.log").open("w", encoding="utf-8") as log,
        SimulatedAccount(Path(args.template), log_stream=log) as account,
    ):
        account.seed(fleet)
        result = account.run_cycle(execution_input, on_event=Progress(out))
        by_class = write_outputs(account, result, out_dir)
    print(human_summary(result, by_class, out_dir), file=out, flush=True)
    return 0 if result.status == "SUCCEEDED" else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tagpatch", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run a full patch cycle on the simulated account")
    run_parser.add_argument(
        "--fleet", default=str(REPO_ROOT / "fleets" / "demo.yaml"), help="fleet file (YAML/JSON)"
    )
    run_parser.add_argument(
        "--input", help='execution input: inline JSON or a JSON file, e.g. \'{"mode": "plan"}\''
    )
    run_parser.add_argument("--out", default="out", help="output folder (default: out)")
    run_parser.add_argument("--template", default=str(REPO_ROOT / "template.yaml"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (UsageError, FleetError, TemplateError) as error:
        print(f"tagpatch: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
