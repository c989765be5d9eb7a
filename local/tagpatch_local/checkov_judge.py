"""checkov over the template, with every finding it accepts in judges/suppressions.yaml.

Runs checkov (from .venv-checkov, offline, CloudFormation and SAM checks) with JSON output. Each failed
check is a finding: judge `checkov`, code the check id, `where` the resource's logical id. A finding that
no `judge: checkov` suppression covers fails the run, and so does such a suppression that covers no
finding (stale: whatever it excused is gone, so the entry must go too). Checks skipped in the template
itself (`Metadata: checkov: skip`) are refused: each accepted finding and its reason live in the one
suppressions file, beside the IAM judges' (iam_judges.py, whose loader this shares).
Exit 0 with neither, 1 otherwise, 2 on unusable input (checkov missing or failing, a bad suppressions file).

    .venv/bin/python -m tagpatch_local.checkov_judge template.yaml spoke/template.yaml

Given several templates, their findings are judged together: an entry is stale only if it matches no
finding in any of them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import yaml

from tagpatch_local.iam_judges import REPO, SUPPRESSIONS, Finding, Suppression, load_suppressions, unsuppressed

JUDGE: Final = "checkov"


class CheckovError(ValueError):
    """checkov did not run, or its report is not one this wrapper can read."""


def _reports(report: Any) -> list[Mapping[str, Any]]:
    # One framework gives one report object; several give a list of them.
    reports = report if isinstance(report, list) else [report]
    if not reports or not all(
        isinstance(item, Mapping) and isinstance(item.get("results"), Mapping) for item in reports
    ):
        raise CheckovError("checkov's JSON report has no results: did it find the template's resources?")
    return reports


def checkov_findings(report: Any) -> list[Finding]:
    """The failed checks of checkov's JSON report, as findings; refuses checks the template skips inline."""
    findings: list[Finding] = []
    for item in _reports(report):
        results = item["results"]
        skipped = sorted({f"{check['check_id']} {check['resource']}" for check in results.get("skipped_checks", [])})
        if skipped:
            raise CheckovError(
                f"the template skips checks inline ({', '.join(skipped)}); "
                "move each to judges/suppressions.yaml with its reason"
            )
        for check in results.get("failed_checks", []):
            # "AWS::Serverless::Function.WindowUpsertFunction" -> the logical id
            logical_id = str(check["resource"]).rsplit(".", 1)[-1]
            findings.append(Finding(JUDGE, str(check["check_id"]), logical_id, "", str(check.get("check_name", ""))))
    return findings


def judge_report(report: Any, suppressions: Sequence[Suppression]) -> tuple[list[Finding], list[Suppression]]:
    """The findings no checkov suppression covers, and the checkov suppressions that covered none."""
    return unsuppressed(checkov_findings(report), [s for s in suppressions if s.judge == JUDGE])


def run_checkov(checkov: Path, template: Path) -> Any:
    done = subprocess.run(  # noqa: S603 - the project's own checkov and template
        [
            str(checkov),
            *("--skip-download", "--framework", "cloudformation", "--soft-fail", "--output", "json"),
            *("--file", str(template)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:  # --soft-fail: findings do not fail it, only checkov itself does
        raise CheckovError(f"checkov exited {done.returncode}: {done.stderr.strip().splitlines()[-1:]}")
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError as error:
        raise CheckovError(f"checkov's output is not JSON: {error}") from error


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("templates", type=Path, nargs="+")
    parser.add_argument("--suppressions", type=Path, default=SUPPRESSIONS)
    parser.add_argument("--checkov", type=Path, default=REPO / ".venv-checkov" / "bin" / "checkov")
    args = parser.parse_args(argv)
    try:
        suppressions = load_suppressions(args.suppressions)
        reports = [report for template in args.templates for report in _reports(run_checkov(args.checkov, template))]
        findings, stale = judge_report(reports, suppressions)
    except (OSError, ValueError, yaml.YAMLError) as error:
        print(f"checkov judge: {error}", file=sys.stderr)
        return 2
    for finding in findings:
        print(f"{finding.line()} (fix it, or add a suppression with its reason to judges/suppressions.yaml)")
    for suppression in stale:
        print(f"stale suppression: checkov {suppression.code} {suppression.where} matches nothing; remove it")
    print(f"checkov judge: {len(findings)} unsuppressed finding(s), {len(stale)} stale suppression(s)")
    return 1 if findings or stale else 0


if __name__ == "__main__":
    sys.exit(main())
