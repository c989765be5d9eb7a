"""`tagpatch run`: a full patch cycle on the simulated account, from a fleet file.

Exit status: 0 the run succeeded; 1 a cycle failed; 2 bad input or arguments (nothing is written);
3 with --detailed-exitcode, a plan-mode cycle found changes pending.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn, TextIO

from tagpatch.cycle import iso_z, parse_time
from tagpatch_local.account_facts import ACCOUNT_ID
from tagpatch_local.documents import InputError
from tagpatch_local.fleet import FleetInstance, MemberAccount, load_fleet_file
from tagpatch_local.outfiles import open_log, write_text_atomically
from tagpatch_local.plan_view import count_lines, has_pending_changes, read_changes, render_changes
from tagpatch_local.preflight import check_policy, read_input_option, stack_policy_path
from tagpatch_local.scenario import ScenarioCycle, apply_edit, load_scenario, parse_start
from tagpatch_local.template import TemplateError

if TYPE_CHECKING:
    from tagpatch_local.runner import Account, CycleResult, OrgCycleResult

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_FLEET = REPO_ROOT / "fleets" / "demo.yaml"

EXIT_OK: Final = 0
EXIT_CYCLE_FAILED: Final = 1
EXIT_BAD_INPUT: Final = 2
EXIT_CHANGES_PENDING: Final = 3

# What a run writes into its output folder (report.py's files and the functions' log), and the
# folders of a scenario's cycles: only these are cleared before the next run.
COMPLIANCE_FOLDER: Final = "compliance"
RUN_FILES: Final = frozenset(
    {
        "summary.json",
        "instances.jsonl",
        "changes.jsonl",
        "tag-report.json",
        "patch-results.jsonl",
        "config.jsonl",
        "notifications.jsonl",
        "report.html",
        "reminders.jsonl",
        "lambda.log",
    }
)
NOTIFICATIONS_FOLDER: Final = "notifications"  # notifications/<owner>.jsonl
CYCLE_FOLDER: Final = re.compile(r"^\d{2,}-[A-Za-z0-9][A-Za-z0-9_.-]*$")


class UsageError(InputError):
    """A bad command-line argument: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, like every other bad input (argparse would print the usage block first)."""
        self.exit(EXIT_BAD_INPUT, f"tagpatch: error: {message}; see `{self.prog} --help`\n")


@dataclass(frozen=True)
class Marks:
    """Symbols for the console; plain ASCII when the stream cannot encode the others (CI logs)."""

    start: str = ">"
    done: str = "✓"
    failed: str = "✗"
    arrow: str = "→"

    @classmethod
    def for_stream(cls, stream: TextIO) -> Marks:
        try:
            "✓✗→".encode(stream.encoding or "ascii")
        except (UnicodeEncodeError, LookupError):
            return cls(done="ok", failed="FAILED", arrow="->")
        return cls()


class Progress:
    """Prints states as they start and finish, one whole line each, flushed (readable when piped).

    Map iterations are named by their window, so concurrent ones can be told apart.
    """

    def __init__(self, stream: TextIO, marks: Marks) -> None:
        self.stream = stream
        self.marks = marks
        self.entered: dict[str, datetime] = {}

    def _say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def __call__(self, event: dict[str, Any]) -> None:
        kind = str(event["type"])
        if kind.endswith("StateEntered") and not kind.startswith(("Map", "Pass")):
            details = event["stateEnteredEventDetails"]
            label = _label(details["name"], details.get("input"))
            self.entered[label] = event["timestamp"]
            self._say(f"  {self.marks.start} {label}")
        elif kind.endswith("StateExited") and not kind.startswith("Pass"):
            details = event["stateExitedEventDetails"]
            label = _label(details["name"], details.get("output"))
            started = self.entered.pop(label, None)
            took = f" ({(event['timestamp'] - started).total_seconds():.2f} s)" if started else ""
            self._say(f"  {self.marks.done} {label}{took}")
        elif kind in {"TaskFailed", "LambdaFunctionFailed"}:
            details = event.get("taskFailedEventDetails") or event.get("lambdaFunctionFailedEventDetails") or {}
            cause = " ".join(str(details.get("cause", "")).split())[:300]
            self._say(f"  {self.marks.failed} {details.get('error')}: {cause}")


def _label(state: str, payload: object) -> str:
    """`ApplyWindow tagpatch-sun-0200` for a Map iteration, else the state's name."""
    if isinstance(payload, str) and payload.startswith("{") and '"window"' in payload:
        try:
            window = json.loads(payload).get("window")
        except ValueError:
            window = None
        if isinstance(window, str):
            return f"{state} {window}"
    return state


# --- checking everything before the account is built ---------------------------------------------


@dataclass(frozen=True)
class CheckedRun:
    """A local run whose every input has been read and checked."""

    source: str
    fleet: Sequence[FleetInstance]
    cycles: tuple[ScenarioCycle, ...]
    warnings: tuple[str, ...]  # the stack policy's defaults; a scenario's policy edits carry their own
    start: datetime | None = None  # the simulated clock at the first cycle; None: real time
    config_recorder: bool = False  # the scenario's `config_recorder`: AWS Config rules evaluate
    accounts: tuple[MemberAccount, ...] = ()  # the organization's member accounts, seeded after the hub's fleet

    def all_warnings(self) -> list[str]:
        edits = [edit for cycle in self.cycles for edit in cycle.edits]
        return [*self.warnings, *(warning for edit in edits for warning in edit.warnings)]


def check_arguments(args: argparse.Namespace) -> None:
    if args.stack and (args.fleet is not None or args.scenario is not None):
        raise UsageError("--stack runs the deployed stack's real fleet; it takes no --fleet or --scenario")
    if args.region and not args.stack:
        raise UsageError("--region is the deployed stack's Region; it goes with --stack only")
    if args.scenario and (args.fleet is not None or args.input is not None):
        raise UsageError(
            "--scenario names its own fleet and each cycle's input; drop --fleet/--input, "
            "or put them in the scenario (`fleet:`, and `input:` on a cycle)"
        )
    if args.now is not None and (args.scenario or args.stack):
        raise UsageError(
            "--now sets the simulated clock for a single local cycle; a scenario sets it with `start:` "
            "and `advance:`, and a deployed stack runs on AWS's clock (its input takes a `now`)"
        )


def check_local_run(args: argparse.Namespace) -> CheckedRun:
    warnings = tuple(check_policy(stack_policy_path(Path(args.template))))
    if args.scenario:
        scenario = load_scenario(Path(args.scenario))
        start = scenario.start or datetime.now(UTC).replace(microsecond=0)
        return CheckedRun(
            f"scenario {args.scenario}",
            scenario.fleet,
            scenario.cycles,
            warnings,
            start,
            scenario.config_recorder,
            scenario.accounts,
        )
    fleet_path = Path(args.fleet) if args.fleet else DEMO_FLEET
    fleet_file = load_fleet_file(fleet_path)
    execution_input = read_input_option(args.input) if args.input is not None else {}
    fixed = parse_start(args.now, "--now") if args.now is not None else None
    given_now = execution_input.get("now")
    if fixed is not None and isinstance(given_now, str) and parse_time(given_now, "now") != fixed:
        # The clock and the cycle's evaluation time would differ: windows computed for one, run by the other.
        raise UsageError(
            f"--now {args.now} and the input's now {given_now} disagree; give the time once (--now sets both)"
        )
    cycles = (ScenarioCycle("cycle", (), execution_input),)
    return CheckedRun(
        f"fleet {fleet_path}", fleet_file.instances, cycles, warnings, fixed, accounts=fleet_file.accounts
    )


def earlier_run_files(out_dir: Path, *, force: bool) -> list[Path]:
    """What an earlier run left in `out_dir`, to clear; refuses a file, others' files without --force,
    a symbolic link where the run writes (it would write through it), and a folder it cannot read."""
    try:
        return _earlier_run_files(out_dir, force=force)
    except OSError as error:  # a name too long, a folder that cannot be listed
        raise UsageError(
            f"--out {_shown_path(out_dir)}: cannot read it: {error.strerror}; give a folder you can read and write"
        ) from error


def _shown_path(path: Path) -> str:
    text = str(path)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _earlier_run_files(out_dir: Path, *, force: bool) -> list[Path]:
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir}: is a file; give a folder for the results")
    if not out_dir.exists():
        ancestor = next(parent for parent in out_dir.absolute().parents if parent.exists())
        if not ancestor.is_dir():
            raise UsageError(f"--out {out_dir}: {ancestor} is not a folder; give a folder for the results")
        return []
    ours: list[Path] = []
    others: list[Path] = []
    for entry in sorted(out_dir.iterdir()):
        (ours if _is_run_output(entry) else others).append(entry)
    if others and not force:
        names = ", ".join(entry.name for entry in others[:3]) + (", ..." if len(others) > 3 else "")
        raise UsageError(
            f"--out {out_dir}: holds files tagpatch run did not write ({names}); give an empty or new folder, "
            "or add --force to replace only the earlier run's files and keep these"
        )
    for entry in others:
        link = _link_where_the_run_writes(entry)
        if link is not None:
            raise UsageError(
                f"--out {out_dir}: {link.relative_to(out_dir)} is a symbolic link where the run writes; "
                "tagpatch run never writes through one: remove it, or give another folder"
            )
    return ours


def _writes_at(name: str) -> bool:
    """Whether the run writes a file or folder of this name in --out (or in a cycle's folder)."""
    return name in RUN_FILES or name in {COMPLIANCE_FOLDER, NOTIFICATIONS_FOLDER} or bool(CYCLE_FOLDER.match(name))


def _link_where_the_run_writes(entry: Path) -> Path | None:
    """A symbolic link at a name the run writes, at or below `entry` (links are never followed)."""
    if not _writes_at(entry.name):
        return None
    if entry.is_symlink():
        return entry
    if not entry.is_dir():
        return None
    if entry.name in {COMPLIANCE_FOLDER, NOTIFICATIONS_FOLDER}:  # the run writes anywhere below these
        return next((child for child in sorted(entry.rglob("*")) if child.is_symlink()), None)
    return next(filter(None, (_link_where_the_run_writes(child) for child in sorted(entry.iterdir()))), None)


def _is_compliance_folder(entry: Path) -> bool:
    """The compliance/ folder a run copies from the bucket: only regular files and folders below it."""
    return (
        entry.name == COMPLIANCE_FOLDER
        and entry.is_dir()
        and not entry.is_symlink()
        and all(not child.is_symlink() and (child.is_file() or child.is_dir()) for child in entry.rglob("*"))
    )


def _is_run_output(entry: Path) -> bool:
    if entry.is_symlink():
        return False
    if entry.is_file():
        return entry.name in RUN_FILES
    if _is_compliance_folder(entry):
        return True
    if entry.is_dir() and entry.name == NOTIFICATIONS_FOLDER:
        return _is_notifications_folder(entry)
    return (
        entry.is_dir()
        and CYCLE_FOLDER.match(entry.name) is not None
        and all(
            _is_compliance_folder(child)
            or (child.is_file() and not child.is_symlink() and child.name in RUN_FILES)
            or (
                child.is_dir()
                and not child.is_symlink()
                and child.name == NOTIFICATIONS_FOLDER
                and _is_notifications_folder(child)
            )
            for child in entry.iterdir()
        )
    )


def _is_notifications_folder(entry: Path) -> bool:
    """notifications/<owner>.jsonl: what each owner's subscribed queue received."""
    return all(child.is_file() and not child.is_symlink() and child.suffix == ".jsonl" for child in entry.iterdir())


def prepare_out_dir(out_dir: Path, earlier: Sequence[Path]) -> None:
    """Create the folder, make sure it takes files, then clear the earlier run's files from it."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
        for entry in earlier:
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    except OSError as error:
        raise UsageError(
            f"--out {out_dir}: cannot write there: {error.strerror}; give a folder you can write"
        ) from error


# --- running and reporting -----------------------------------------------------------------------


@dataclass
class Console:
    stream: TextIO
    marks: Marks

    def say(self, text: str = "") -> None:
        print(text, file=self.stream, flush=True)


def _console(args: argparse.Namespace) -> Console:
    """With --json, stdout carries only the JSON; the person reads the rest on stderr."""
    from tagpatch_local.runner import console  # noqa: PLC0415 - loads moto: only once input is checked

    stream = (sys.__stderr__ or sys.stderr) if args.json else console()
    return Console(stream, Marks.for_stream(stream))


def _mode(execution_input: Mapping[str, Any]) -> str:
    return str(execution_input.get("mode", "apply"))


def _mode_note(mode: str) -> str:
    return "mode plan: shows what would change, writes nothing to SSM" if mode == "plan" else "mode apply"


def report_cycle(
    account: Account,
    result: CycleResult,
    cycle_dir: Path,
    mode: str,
    warnings: Sequence[str],
    console: Console,
) -> tuple[dict[str, Any], bool]:
    """Write the cycle's files and tell the person; returns the summary and whether changes are pending."""
    from tagpatch_local.report import write_outputs  # noqa: PLC0415

    summary = write_outputs(account, result, cycle_dir, extra={"warnings": list(warnings)})
    changes = read_changes(cycle_dir)
    plan = mode == "plan"
    lines = [
        *_run_lines(result, summary, mode),
        *count_lines(summary["changes"], plan=plan),
        *_patching_lines(result, summary, plan=plan),
        *_change_lines(result, changes, plan=plan, arrow=console.marks.arrow),
        *_left_alone_lines(summary),
        *_account_lines(result, summary, plan=plan),
        _results_line(cycle_dir, config_read=bool(summary.get("config"))),
    ]
    console.say("\n".join(lines))
    return summary, plan and has_pending_changes(changes)


def report_org_cycle(
    account: Account,
    org: OrgCycleResult,
    cycle_dir: Path,
    mode: str,
    warnings: Sequence[str],
    console: Console,
) -> tuple[dict[str, Any], bool, bool]:
    """Each target's cycle as `report_cycle` reports one: a lone target (home, a single-account stack)
    in `cycle_dir` itself, several each in `cycle_dir/targets/<account>-<region>/`; then a line per
    target. Returns the summary, whether the org cycle succeeded and whether changes are pending."""
    several = len(org.targets) > 1
    summaries: dict[str, dict[str, Any]] = {}
    pending = False
    for label, child in org.children.items():
        if several:
            console.say(f"\ntarget {label}")
        progress = Progress(console.stream, console.marks)
        for event in child.events:
            progress(event)
        folder = cycle_dir / "targets" / label.replace("/", "-") if several else cycle_dir
        summaries[label], child_pending = report_cycle(account, child, folder, mode, warnings, console)
        pending = pending or child_pending
    lines = [] if org.status == "SUCCEEDED" and not several else [_org_line(org)]
    if several or org.status != "SUCCEEDED":
        lines += [_target_line(item) for item in org.targets]
    if lines:
        console.say("\n".join(lines))
    if not several and summaries:
        (summary,) = summaries.values()
    else:
        summary = {"org": {"status": org.status, "error": org.org.error, "targets": org.targets}, "targets": summaries}
        cycle_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomically(cycle_dir / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    return summary, org.status == "SUCCEEDED", pending


def _org_line(org: OrgCycleResult) -> str:
    failed = sum(1 for item in org.targets if item.get("status") != "SUCCEEDED")
    line = f"org cycle {org.org.execution_name}: {org.status}, {len(org.targets)} target(s), {failed} failed"
    return line if org.status == "SUCCEEDED" or org.targets else f"{line}: {org.org.error}: {org.org.cause}"


def _target_line(item: Mapping[str, Any]) -> str:
    """`  <account>/<region>: SUCCEEDED`, or FAILED with why, as the org cycle's alert says it (the
    summary's outcome for the target)."""
    target = item.get("target") or {}
    line = f"  {target.get('account_id')}/{target.get('region')}: {item.get('status')}"
    reason = item.get("reason")
    return line if not reason else f"{line}: {' '.join(str(reason).split())[:300]}"


def _run_lines(result: CycleResult, summary: Mapping[str, Any], mode: str) -> list[str]:
    """How the execution went and which instances it saw."""
    lines = [
        f"cycle {result.execution_name} ({mode}): {result.status} in {result.wall_seconds:.1f} s, "
        f"{result.state_transitions} state transitions, largest state payload {result.max_payload_bytes:,} bytes",
    ]
    if result.status != "SUCCEEDED":
        lines.append(f"error: {result.error}: {summary['execution']['cause']}")
    by_class = summary["instances"]["by_class"]
    if by_class:
        parts = ", ".join(f"{count} {name}" for name, count in by_class.items())
        lines.append(f"{summary['instances']['total']} instances: {parts}")
    return lines


def _patching_lines(result: CycleResult, summary: Mapping[str, Any], *, plan: bool) -> list[str]:
    """What the windows did, how compliant the fleet is, and which instances are held back."""
    lines = []
    patching = summary.get("patching")
    if patching:
        outcomes = ", ".join(f"{count} {name}" for name, count in patching["by_outcome"].items() if count)
        lines.append(
            f"patching {patching['since']} to {patching['until']}: {outcomes or 'no instances in scope'} "
            f"({patching['window_runs']} window run(s) read, {patching['alerts_sent']} owner alert(s) sent)"
        )
    compliance = (result.output or {}).get("compliance")
    if compliance:
        counts = compliance["counts"]
        percent = compliance["compliance_percent"]
        lines.append(
            f"compliance: {'n/a' if percent is None else f'{percent}%'} compliant "
            f"({counts['compliant']} compliant, {counts['non_compliant']} non-compliant, {counts['unknown']} unknown "
            f"of {counts['instances']} instances); report.html"
        )
    for gate in summary.get("rollout_gates") or []:
        lines.append(f"rollout wave {gate['wave']} (after {gate['after']}): {gate['reason']}")
    for hold in summary.get("holds") or []:
        held = ", ".join(hold["held"][:5]) + (" ..." if len(hold["held"]) > 5 else "")
        lines.append(
            f"held back{' (plan)' if plan else ''}: {held} in patch group {hold['patch_group']} ({hold['window']}): "
            f"scanned only by {hold['scan_task']}-*; its {len(hold['installed_by_id'])} other instance(s) "
            f"patched by id by {hold['install_task']}-*"
        )
    return lines


def _change_lines(result: CycleResult, changes: Sequence[Mapping[str, Any]], *, plan: bool, arrow: str) -> list[str]:
    """The changes made (or, in plan mode, that would be made), or that none were needed."""
    diff = render_changes(changes, arrow=arrow)
    if diff:
        return ["plan (nothing was written):" if plan else "changes made:", *(f"  {line}" for line in diff)]
    if result.status == "SUCCEEDED":
        return ["plan: no changes; SSM matches the tags" if plan else "no changes were needed"]
    return []


def _left_alone_lines(summary: Mapping[str, Any]) -> list[str]:
    """Windows left alone, dropped exceptions and the problem count: none of these may pass silently."""
    blocked = summary.get("blocked_windows") or []
    lines = [f"window left alone: {item['name']}: {item['reason']}" for item in blocked[:10]]
    if len(blocked) > 10:
        lines.append(f"... and {len(blocked) - 10} more window(s) left alone; see summary.json")
    # A dropped exception changes who is held to the rules: say which, not only in summary.json.
    lines.extend(
        f"patch exception dropped: {problem['reason']}"
        for problem in summary["problems"]
        if problem["kind"] == "exception"
    )
    if summary["problems"]:
        lines.append(f"{len(summary['problems'])} problem(s) reported; see summary.json")
    return lines


def _account_lines(result: CycleResult, summary: Mapping[str, Any], *, plan: bool) -> list[str]:
    """The AWS calls made, and what Config, the reminders and the owners' notifications hold."""
    lines = [
        f"AWS calls: {sum(result.calls.values())} ({sum(result.write_calls.values())} writes, "
        f"{sum(result.resource_write_calls.values())} to patching resources)"
    ]
    config = summary.get("config")
    if config:
        counts = ", ".join(f"{count} {name}" for name, count in config["by_compliance"].items())
        lines.append(
            f"AWS Config: {counts or 'no evaluations'} ({config['rules']} rule(s); config.jsonl); "
            f"{config['notifications']} notification(s) since the last cycle (notifications.jsonl)"
        )
    reminders = summary.get("reminders") or {}
    if reminders:
        counts = ", ".join(f"{reminders.get(label, 0)} {label}" for label in ("create", "unchanged", "delete"))
        lines.append(f"reminders: {counts} (reminders.jsonl){' (plan: none written)' if plan else ''}")
    received = summary.get("notifications_by_owner") or {}
    if any(received.values()):
        per_owner = ", ".join(f"{owner} {count}" for owner, count in received.items() if count)
        lines.append(f"notifications received since the last cycle: {per_owner} (notifications/<owner>.jsonl)")
    return lines


def _results_line(cycle_dir: Path, *, config_read: bool) -> str:
    files = (
        "summary.json, instances.jsonl, changes.jsonl, tag-report.json, patch-results.jsonl, reminders.jsonl, "
        "report.html, compliance/"
    )
    return f"results: {cycle_dir}/ ({files}{', config.jsonl, notifications.jsonl' if config_read else ''})"


def exit_status(results: Sequence[tuple[bool, bool]], *, detailed: bool) -> int:
    """From each cycle's (succeeded, changes pending in plan mode): a failure outranks pending changes."""
    if not all(succeeded for succeeded, _ in results):
        return EXIT_CYCLE_FAILED
    if detailed and any(pending for _, pending in results):
        return EXIT_CHANGES_PENDING
    return EXIT_OK


def run_deployed(args: argparse.Namespace) -> int:
    """One cycle of a stack deployed with `sam deploy`, with the caller's credentials."""
    execution_input = read_input_option(args.input) if args.input is not None else {}
    out_dir = Path(args.out)
    earlier = earlier_run_files(out_dir, force=args.force)
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    from tagpatch_local.runner import DeployedStack  # noqa: PLC0415

    console = _console(args)
    try:
        account = DeployedStack.from_stack(args.stack, args.region)
    except (BotoCoreError, ClientError) as error:  # no credentials, no Region, no such stack
        raise UsageError(f"--stack {args.stack}: {error}") from error
    prepare_out_dir(out_dir, earlier)
    mode = _mode(execution_input)
    if not account.org_cycle_arn:  # a stack deployed before the org cycle: its one patch cycle
        console.say(f"tagpatch: stack {args.stack}, state machine {account.state_machine_arn}, {_mode_note(mode)}")
        result = account.run_cycle(execution_input, on_event=Progress(console.stream, console.marks))
        summary, pending = report_cycle(account, result, out_dir, mode, (), console)
        succeeded = result.status == "SUCCEEDED"
    else:
        console.say(f"tagpatch: stack {args.stack}, org cycle {account.org_cycle_arn}, {_mode_note(mode)}")
        org = account.run_org_cycle(execution_input)
        summary, succeeded, pending = report_org_cycle(account, org, out_dir, mode, (), console)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    return exit_status([(succeeded, pending)], detailed=args.detailed_exitcode)


def _members(checked: CheckedRun) -> str:
    if not checked.accounts:
        return ""
    seeded = sum(len(member.instances) * len(member.regions) for member in checked.accounts)
    return f"; {len(checked.accounts)} member accounts with {seeded} more"


def run_local(args: argparse.Namespace) -> int:
    checked = check_local_run(args)
    out_dir = Path(args.out)
    earlier = earlier_run_files(out_dir, force=args.force)
    prepare_out_dir(out_dir, earlier)
    console = _console(args)
    for warning in checked.all_warnings():
        print(f"tagpatch: warning: {warning}", file=sys.stderr, flush=True)
    from tagpatch_local.runner import SimulatedAccount  # noqa: PLC0415

    cycles = checked.cycles
    modes = sorted({_mode(cycle.execution_input) for cycle in cycles})
    console.say(
        f"tagpatch: simulated account, {checked.source} ({len(checked.fleet)} instances{_members(checked)}), "
        f"{_mode_note(modes[0]) if len(modes) == 1 else 'modes ' + ' and '.join(modes)}"
    )
    summaries: list[dict[str, Any]] = []
    outcomes: list[tuple[bool, bool]] = []
    warnings = checked.warnings
    with (
        open_log(out_dir / "lambda.log") as log,
        SimulatedAccount(Path(args.template), log_stream=log, config_recorder=checked.config_recorder) as account,
    ):
        if checked.start is not None:
            account.set_clock(checked.start)
        account.seed(checked.fleet)
        if checked.accounts:
            seeded = account.seed_accounts(checked.accounts)
            for failure in seeded.spoke_failures.values():  # as the StackSet operation would report it
                print(f"tagpatch: warning: spoke/template.yaml {failure}", file=sys.stderr, flush=True)
        for index, cycle in enumerate(cycles, start=1):
            if len(cycles) > 1:
                console.say(f"\n[{index}/{len(cycles)}] {cycle.name}")
            if cycle.advance is not None:
                runs = account.advance(cycle.advance)
                console.say(f"  clock: {iso_z(account.now())} ({len(runs)} maintenance window run(s) meanwhile)")
                for run in runs:
                    where = "" if run.account_id == ACCOUNT_ID else f"{run.account_id}/{run.region} "
                    console.say(f"    {iso_z(run.started)} {where}{run.window_name}: {run.status}")
            for edit in cycle.edits:
                console.say(f"  edit: {apply_edit(account, edit)}")
                if edit.kind == "policy":
                    warnings = edit.warnings
            # What the schedule starts: the org cycle, one patch cycle per target of the policy.
            org = account.run_org_cycle(dict(cycle.execution_input))
            cycle_dir = out_dir if len(cycles) == 1 else out_dir / f"{index:02d}-{cycle.name}"
            mode = _mode(cycle.execution_input)
            summary, succeeded, pending = report_org_cycle(account, org, cycle_dir, mode, warnings, console)
            summaries.append(summary)
            outcomes.append((succeeded, pending))
    document: dict[str, Any] = summaries[0]
    if len(cycles) > 1:
        document = {
            "cycles": [
                {"name": cycle.name, **{key: value for key, value in summary.items() if key != "output"}}
                for cycle, summary in zip(cycles, summaries, strict=True)
            ]
        }
        write_text_atomically(out_dir / "summary.json", json.dumps(document, indent=2, default=str) + "\n")
    if args.json:
        print(json.dumps(document, indent=2, default=str))
    return exit_status(outcomes, detailed=args.detailed_exitcode)


def run(args: argparse.Namespace) -> int:
    check_arguments(args)
    return run_deployed(args) if args.stack else run_local(args)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tagpatch", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser(
        "run",
        help="run a full patch cycle on the simulated account",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run_parser.add_argument("--fleet", help=f"fleet file (YAML/JSON) for the simulated account (default: {DEMO_FLEET})")
    run_parser.add_argument("--input", help='execution input: inline JSON or a JSON file, e.g. \'{"mode": "plan"}\'')
    run_parser.add_argument(
        "--scenario", help="scenario file: several cycles with fleet and policy edits between them (not with --fleet)"
    )
    run_parser.add_argument(
        "--out", default="out", help="output folder (default: out); an earlier run's files in it are replaced"
    )
    run_parser.add_argument(
        "--force", action="store_true", help="use an --out folder that holds other files too (they are kept)"
    )
    run_parser.add_argument(
        "--detailed-exitcode", action="store_true", help="exit 3 when a plan-mode cycle finds changes pending"
    )
    run_parser.add_argument(
        "--json", action="store_true", help="print the summary as JSON on stdout (progress: stderr)"
    )
    run_parser.add_argument(
        "--now", help="the simulated clock for a single local cycle, ISO 8601 UTC, e.g. 2026-11-29T03:00:00Z"
    )
    run_parser.add_argument("--stack", help="run a cycle of this deployed stack instead, with your AWS credentials")
    run_parser.add_argument("--region", help="the deployed stack's Region (default: your AWS configuration's)")
    run_parser.add_argument("--template", default=str(REPO_ROOT / "template.yaml"), help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (InputError, TemplateError) as error:
        print(f"tagpatch: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
