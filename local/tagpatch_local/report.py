"""What a local run leaves in its output folder.

- summary.json: the execution, every AWS call, instances by class, changes by resource kind,
  problems, failures (what SSM rejected, and the execution's error), and the state machine's final
  output (for a failed execution, the state its Fail state received);
- instances.jsonl: one line per instance (class, exception and hold, reasons, warnings, tags in use);
- changes.jsonl: one line per change proposed (plan) or attempted (apply, with its outcome);
- tag-report.json: problems grouped by owner, for the app teams;
- patch-results.jsonl: PatchMonitoring's outcome per instance in scope (patched, failed, missed,
  in_progress, scanned, not_due, not_scheduled, excepted), with its reason, Run Command status and
  patch counts;
- report.html: ComplianceExport's report, a page to open in a browser;
- compliance/: every object under the bucket's compliance/ prefix (snapshots by day, the latest view,
  the reports), with S3's key layout kept; a plan-mode cycle's snapshot is in its run artifacts instead.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from tagpatch.backup_retention import RECORD_NAME
from tagpatch.changes import DONE, applied_key
from tagpatch.cycle import Cycle, iso_z
from tagpatch.errors import failure_cause
from tagpatch.inventory import decode_jsonl_gz
from tagpatch.reconcile import PAST_TENSE
from tagpatch.scan import SCAN_ASSOCIATION_NAME
from tagpatch_local.outfiles import write_atomically, write_jsonl_atomically, write_text_atomically
from tagpatch_local.runner import Account, CycleResult

INSTANCE_FIELDS = (
    "instance_id",
    "name",
    "class",
    "tag_class",
    "exception",
    "held",
    "gate",
    "expired_exception",
    "reasons",
    "warnings",
    "patch_group",
    "maintenance_window",
    "os",
    "owner",
    "patch_group_key",
    "window_key",
    "window_kind",
    "state",
    "ping_status",
    "in_scope",
)
# Steps that reconcile SSM, the key of their output in the execution's final state.
RECONCILE_STEPS = ("windows", "baselines")


def _artifact(account: Account, key: str) -> bytes:
    body: bytes = account.client("s3").get_object(Bucket=account.artifact_bucket, Key=key)["Body"].read()
    return body


def instance_lines(account: Account, result: CycleResult) -> list[dict[str, Any]]:
    validation = (result.output or {}).get("validation")
    if not validation:
        return []
    lines = decode_jsonl_gz(_artifact(account, validation["instances_key"]))
    return [{name: line.get(name) for name in INSTANCE_FIELDS} for line in lines]


def patch_result_lines(account: Account, result: CycleResult) -> list[dict[str, Any]]:
    monitoring = (result.output or {}).get("monitoring")
    if not monitoring:
        return []
    return list(decode_jsonl_gz(_artifact(account, monitoring["results_key"])))


def patching_summary(result: CycleResult) -> dict[str, Any] | None:
    """PatchMonitoring's counts: outcome -> instances, window runs read, alerts sent, the period read."""
    monitoring = (result.output or {}).get("monitoring")
    if not monitoring:
        return None
    return {key: value for key, value in monitoring.items() if key != "results_key"}


def window_failures(result: CycleResult) -> list[dict[str, Any]]:
    return [item for item in (result.output or {}).get("window_results") or [] if "error" in item]


def _optional_artifact(account: Account, key: str) -> bytes | None:
    """An artifact a step may not have written (it failed, or its Lambda died first)."""
    try:
        return _artifact(account, key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "AccessDenied", "403"}:
            return None
        raise


def _cycle(result: CycleResult) -> Cycle | None:
    payload = (result.output or {}).get("cycle")
    return Cycle.from_payload(payload) if payload else None


def _outcomes(account: Account, key: str) -> dict[tuple[str, str, str | None], dict[str, Any]] | None:
    body = _optional_artifact(account, key)
    if body is None:
        return None
    return {(item["kind"], item["name"], item.get("window")): item for item in json.loads(body)}


def _plan_lines(account: Account, result: CycleResult, step: str) -> list[dict[str, Any]]:
    output = result.output or {}
    return list(decode_jsonl_gz(_artifact(account, output[step]["changes_key"]))) if output.get(step) else []


# A write whose Lambda died before it recorded its outcome, found done in SSM afterwards.
CONFIRMED_IN_SSM = "confirmed_in_ssm"


class _SsmHolds:
    """What SSM holds now, read once, to settle writes whose outcome was never recorded (a crash)."""

    def __init__(self, account: Account) -> None:
        self.account = account
        self._windows: dict[str, str] | None = None
        self._members: dict[str, set[tuple[str, str]]] = {}
        self._registrations: set[str] | None = None
        self._scans: set[str] | None = None

    def windows(self) -> dict[str, str]:
        if self._windows is None:
            ssm = self.account.client("ssm")
            self._windows = {
                str(item["Name"]): str(item["WindowId"])
                for page in ssm.get_paginator("describe_maintenance_windows").paginate()
                for item in page["WindowIdentities"]
            }
        return self._windows

    def members(self, window: str) -> set[tuple[str, str]]:
        if window not in self._members:
            ssm, window_id = self.account.client("ssm"), self.windows().get(window)
            found: set[tuple[str, str]] = set()
            if window_id is not None:
                for page in ssm.get_paginator("describe_maintenance_window_targets").paginate(WindowId=window_id):
                    found.update(("target", str(item.get("Name"))) for item in page["Targets"])
                for page in ssm.get_paginator("describe_maintenance_window_tasks").paginate(WindowId=window_id):
                    found.update(("task", str(item.get("Name"))) for item in page["Tasks"])
            self._members[window] = found
        return self._members[window]

    def registrations(self) -> set[str]:
        if self._registrations is None:
            ssm = self.account.client("ssm")
            self._registrations = {
                f"{item['PatchGroup']}/{item['BaselineIdentity']['OperatingSystem']}"
                for page in ssm.get_paginator("describe_patch_groups").paginate()
                for item in page["Mappings"]
            }
        return self._registrations

    def scan_associations(self) -> set[str]:
        """The association ids named like tagpatch's scan (tagpatch makes at most one)."""
        if self._scans is None:
            ssm = self.account.client("ssm")
            self._scans = {
                str(item["AssociationId"])
                for page in ssm.get_paginator("list_associations").paginate()
                for item in page["Associations"]
                if item.get("AssociationName") == SCAN_ASSOCIATION_NAME
            }
        return self._scans

    def holds(self, line: Mapping[str, Any]) -> bool:
        kind, name = line["kind"], line["name"]
        if kind == "window":
            return name in self.windows()
        if kind == "registration":
            return name in self.registrations()
        if kind == "scan":
            found = self.scan_associations()
            return line.get("resource_id") in found if line.get("resource_id") else bool(found)
        return (kind, name) in self.members(str(line.get("window")))

    def outcome(self, line: Mapping[str, Any]) -> str:
        """confirmed_in_ssm when SSM shows a create or delete done; an update cannot be told apart."""
        action = line["action"]
        if (action == "create" and self.holds(line)) or (action == "delete" and not self.holds(line)):
            return CONFIRMED_IN_SSM
        return "unknown"


def change_lines(account: Account, result: CycleResult) -> list[dict[str, Any]]:
    """Every planned write, and blocked change. In apply mode each write says what became of it:
    `outcome` is applied, already_done (an earlier attempt made it), failed (with SSM's `error`),
    not_attempted (an earlier change of its window failed), confirmed_in_ssm (its Lambda died before
    it could record what it did, and SSM shows it done), or unknown (the same, and SSM cannot tell or
    shows it not done; the next cycle reconciles)."""
    cycle = _cycle(result)
    applying = cycle is not None and cycle.mode == "apply"
    ssm_holds = _SsmHolds(account)
    lines: list[dict[str, Any]] = []
    for step in RECONCILE_STEPS:
        outcomes_by_group: dict[str | None, dict[tuple[str, str, str | None], dict[str, Any]] | None] = {}
        for line in _plan_lines(account, result, step):
            if line["action"] == "unchanged":
                continue
            if applying and line["action"] != "blocked":
                assert cycle is not None
                group = line.get("window") if step == "windows" else None
                if group not in outcomes_by_group:
                    outcomes_by_group[group] = _outcomes(account, applied_key(cycle, group or "registrations"))
                found = (outcomes_by_group[group] or {}).get((line["kind"], line["name"], line.get("window")))
                line["outcome"] = found["outcome"] if found else ssm_holds.outcome(line)
                if found and found.get("error"):
                    line["error"] = found["error"]
            lines.append(line)
    return lines


def change_counts(account: Account, result: CycleResult) -> dict[str, dict[str, int]]:
    """kind -> counts. In apply mode created/updated/deleted count what SSM now has (applied, found
    already done, or confirmed in SSM after a crash) and not_applied what was planned but is not
    known to be in SSM; plan mode counts the plan."""
    output = result.output or {}
    counts: dict[str, dict[str, int]] = {}
    if output.get("windows"):
        counts.update({kind: dict(value) for kind, value in output["windows"]["counts"].items()})
    if output.get("baselines"):
        counts["registration"] = dict(output["baselines"].get("planned") or output["baselines"]["counts"])
        if output["baselines"].get("scan"):
            counts["scan"] = dict(output["baselines"]["scan"])
    cycle = _cycle(result)
    if cycle is None or cycle.mode != "apply":
        return counts
    for kind_counts in counts.values():
        kind_counts.update(created=0, updated=0, deleted=0, not_applied=0)
    for line in change_lines(account, result):
        if line["action"] == "blocked":
            continue
        kind_counts = counts.setdefault(
            line["kind"], {"created": 0, "updated": 0, "deleted": 0, "unchanged": 0, "blocked": 0, "not_applied": 0}
        )
        done = line["outcome"] in DONE or line["outcome"] == CONFIRMED_IN_SSM
        label = PAST_TENSE[line["action"]] if done else "not_applied"
        kind_counts[label] += 1
    return counts


def problems(account: Account, result: CycleResult) -> list[dict[str, Any]]:
    output = result.output or {}
    found: list[dict[str, Any]] = []
    for step in RECONCILE_STEPS:
        if output.get(step):
            found.extend(json.loads(_artifact(account, output[step]["report_key"]))["problems"])
    found.extend(
        {
            "kind": "window",
            "name": item["window"],
            "reason": f"{failure_cause(item['error'])} ({item['error']}): {_cause_message(item['cause'])}",
        }
        for item in window_failures(result)
    )
    validation = output.get("validation")
    if validation and validation.get("exception_errors"):
        report = json.loads(_artifact(account, validation["report_key"]))
        found.extend(
            {"kind": "exception", "name": "patch exceptions", "reason": error} for error in report["exception_errors"]
        )
    return found


def holds(account: Account, result: CycleResult) -> list[dict[str, Any]]:
    """Patch groups with held instances: which are scanned only, which patched by id (window-report.json)."""
    windows = (result.output or {}).get("windows")
    if not windows:
        return []
    return list(json.loads(_artifact(account, windows["report_key"])).get("holds", []))


def rollout_gates(account: Account, result: CycleResult) -> list[dict[str, Any]]:
    """Each gated rollout wave: held or open, and why (window-report.json, from TagValidation)."""
    windows = (result.output or {}).get("windows")
    if not windows:
        return []
    return list(json.loads(_artifact(account, windows["report_key"])).get("rollout_gates", []))


def blocked_windows(account: Account, result: CycleResult) -> list[dict[str, Any]]:
    """Windows the cycle left alone although the tags need them changed (window-report.json)."""
    windows = (result.output or {}).get("windows")
    if not windows:
        return []
    return list(json.loads(_artifact(account, windows["report_key"])).get("blocked_windows", []))


def failures(result: CycleResult) -> list[dict[str, Any]]:
    """What did not happen: every window SSM rejected, and the execution's own error if it failed."""
    found: list[dict[str, Any]] = [
        {
            "kind": "window",
            "name": item["window"],
            "error": item["error"],
            "cause": failure_cause(item["error"]),
            "reason": _cause_message(item["cause"]),
        }
        for item in window_failures(result)
    ]
    if result.status != "SUCCEEDED":
        found.append(
            {
                "kind": "execution",
                "name": ((result.output or {}).get("failed_state")) or result.execution_name,
                "error": result.error,
                "reason": _cause_message(result.cause or ""),
            }
        )
    return found


def backup_retention_record(account: Account, result: CycleResult) -> dict[str, Any] | None:
    """The run's backup-retention.json (the backups the rule selected, the ids EC2 deleted, each refusal),
    also when the cycle failed after it; None where the run wrote none."""
    cycle = _cycle(result)
    body = _optional_artifact(account, cycle.artifact_key(RECORD_NAME)) if cycle is not None else None
    if body is None:
        return None
    record: dict[str, Any] = json.loads(body)
    return record


def _cause_message(cause: str) -> str:
    try:
        return str(json.loads(cause).get("errorMessage", cause))
    except (ValueError, AttributeError):
        return cause


def summary_document(account: Account, result: CycleResult, instances: list[dict[str, Any]]) -> dict[str, Any]:
    by_class = Counter(line["class"] for line in instances)
    return {
        "execution": {
            "name": result.execution_name,
            "status": result.status,
            "error": result.error,
            "cause": _cause_message(result.cause) if result.cause else None,
            "state_transitions": result.state_transitions,
            "max_payload_bytes": result.max_payload_bytes,
            "wall_seconds": round(result.wall_seconds, 3),
        },
        "mode": ((result.output or {}).get("cycle") or {}).get("mode"),
        "aws_calls": dict(sorted(result.calls.items())),
        "aws_calls_by_function": {
            function: dict(sorted(calls.items())) for function, calls in sorted(result.calls_by_function.items())
        },
        "aws_write_calls": dict(sorted(result.write_calls.items())),
        "resource_write_calls": dict(sorted(result.resource_write_calls.items())),
        "instances": {"total": len(instances), "by_class": dict(sorted(by_class.items()))},
        "changes": change_counts(account, result),
        "patching": patching_summary(result),
        "problems": problems(account, result),
        "holds": holds(account, result),
        "blocked_windows": blocked_windows(account, result),
        "rollout_gates": rollout_gates(account, result),
        "failures": failures(result),
        "backup_retention": backup_retention_record(account, result),
        "output": result.output,
    }


def write_outputs(
    account: Account, result: CycleResult, out_dir: Path, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Write the cycle's files into out_dir; returns the summary document, with `extra`'s keys added."""
    out_dir.mkdir(parents=True, exist_ok=True)
    instances = instance_lines(account, result)
    summary = {**summary_document(account, result, instances), **(extra or {})}
    _write_summary(out_dir, summary)
    _write_jsonl(out_dir / "instances.jsonl", instances)
    _write_jsonl(out_dir / "changes.jsonl", change_lines(account, result))
    _write_jsonl(out_dir / "patch-results.jsonl", patch_result_lines(account, result))
    validation = (result.output or {}).get("validation")
    if validation:
        write_atomically(out_dir / "tag-report.json", _artifact(account, validation["report_key"]))
    reminders = reminder_lines(account, result)
    _write_jsonl(out_dir / "reminders.jsonl", reminders)
    summary["reminders"] = dict(sorted(Counter(str(line["change"]) for line in reminders).items()))
    drain_owners = getattr(account, "drain_owner_notifications", None)
    if drain_owners is not None:
        received = drain_owners()
        folder = out_dir / "notifications"
        folder.mkdir(exist_ok=True)
        for owner, messages in received.items():
            _write_jsonl(folder / f"{owner_file_name(owner)}.jsonl", messages)
        summary["notifications_by_owner"] = {owner: len(messages) for owner, messages in received.items()}
    _write_summary(out_dir, summary)
    if getattr(account, "config_recorder", False):
        lines = config_lines(account)
        _write_jsonl(out_dir / "config.jsonl", lines)
        drain = getattr(account, "drain_notifications", None)
        notifications = drain() if drain is not None else []
        _write_jsonl(out_dir / "notifications.jsonl", notifications)
        summary["config"] = {
            "rules": len({line["rule"] for line in lines}),
            "by_compliance": dict(sorted(Counter(str(line["compliance"]) for line in lines).items())),
            "notifications": len(notifications),
        }
        _write_summary(out_dir, summary)
    write_compliance(account, result, out_dir)
    return summary


def owner_file_name(owner: str) -> str:
    """A file name for an owner's notifications (tag values may hold characters a path must not)."""
    return re.sub(r"[^A-Za-z0-9_.@+-]", "_", owner).lstrip(".")[:100] or "_"


def reminder_lines(account: Account, result: CycleResult) -> list[dict[str, Any]]:
    """PrePatchNotification's reminders: one line per pending (created or unchanged) or deleted reminder."""
    reminders = (result.output or {}).get("reminders")
    if not reminders or not reminders.get("reminders_key"):
        return []
    return list(decode_jsonl_gz(_artifact(account, reminders["reminders_key"])))


def config_lines(account: Account) -> list[dict[str, Any]]:
    """One line per (Config rule, instance) from AWS Config's own answers, with the instance's Name."""
    config, ec2 = account.client("config"), account.client("ec2")
    names: dict[str, tuple[str | None, str | None]] = {}
    for page in ec2.get_paginator("describe_instances").paginate():
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                names[instance["InstanceId"]] = (tags.get("Name"), tags.get("Owner"))
    rules = [r["ConfigRuleName"] for r in config.describe_compliance_by_config_rule()["ComplianceByConfigRules"]]
    lines = []
    for rule in sorted(rules):
        for page in config.get_paginator("get_compliance_details_by_config_rule").paginate(ConfigRuleName=rule):
            for item in page["EvaluationResults"]:
                qualifier = item["EvaluationResultIdentifier"]["EvaluationResultQualifier"]
                instance_id = str(qualifier["ResourceId"])
                name, owner = names.get(instance_id, (None, None))
                lines.append(
                    {
                        "rule": rule,
                        "instance_id": instance_id,
                        "name": name,
                        "owner": owner,
                        "compliance": item["ComplianceType"],
                        "annotation": item.get("Annotation"),
                        "resource_type": qualifier["ResourceType"],
                        "evaluated": iso_z(item["EvaluationResultIdentifier"]["OrderingTimestamp"]),
                    }
                )
    return lines


def write_compliance(account: Account, result: CycleResult, out_dir: Path) -> None:
    """report.html, and the bucket's compliance/ objects under out_dir/compliance/ (S3's key layout)."""
    compliance = (result.output or {}).get("compliance")
    if not compliance:
        return
    write_atomically(out_dir / "report.html", _artifact(account, compliance["report_key"]))
    s3 = account.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=account.artifact_bucket, Prefix="compliance/"):
        for item in page.get("Contents", []):
            target = out_dir / str(item["Key"])
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(target, _artifact(account, str(item["Key"])))


def _write_jsonl(path: Path, lines: list[dict[str, Any]]) -> None:
    write_jsonl_atomically(path, lines)


def _write_summary(out_dir: Path, summary: Mapping[str, Any]) -> None:
    write_text_atomically(out_dir / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
