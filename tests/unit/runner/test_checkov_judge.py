"""The checkov step can fail: a finding no suppression covers is kept, a covered one is not, and a checkov
suppression that covers nothing is reported stale, as is a check the template skips inline."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from tagpatch_local.checkov_judge import CheckovError, checkov_findings, judge_report, main
from tagpatch_local.iam_judges import Suppression
from tagpatch_local.template import load_template

REPO = Path(__file__).resolve().parents[3]


def check(check_id: str, resource: str) -> dict[str, Any]:
    return {"check_id": check_id, "check_name": f"name of {check_id}", "resource": resource}


def report(*failed: dict[str, Any], skipped: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    """checkov's JSON report for one framework, as `--output json` prints it."""
    return {
        "check_type": "cloudformation",
        "results": {"passed_checks": [], "failed_checks": list(failed), "skipped_checks": list(skipped)},
        "summary": {"failed": len(failed), "skipped": len(skipped)},
    }


FUNCTION_VPC = check("CKV_AWS_117", "AWS::Serverless::Function.WindowUpsertFunction")
BUCKET_LOGS = check("CKV_AWS_18", "AWS::S3::Bucket.ArtifactBucket")
VPC_FOR_FUNCTIONS = Suppression("checkov", "CKV_AWS_117", "*Function", reason="no VPC resource is reached")


def test_a_finding_a_suppression_covers_is_not_reported_and_one_it_does_not_cover_is_kept() -> None:
    findings, stale = judge_report(report(FUNCTION_VPC, BUCKET_LOGS), [VPC_FOR_FUNCTIONS])
    assert [(f.judge, f.code, f.where) for f in findings] == [("checkov", "CKV_AWS_18", "ArtifactBucket")]
    assert stale == []


def test_a_suppression_matches_by_check_and_resource_glob_only() -> None:
    elsewhere = Suppression("checkov", "CKV_AWS_117", "*Queue", reason="r")
    other_check = Suppression("checkov", "CKV_AWS_116", "*Function", reason="r")
    findings, stale = judge_report(report(FUNCTION_VPC), [elsewhere, other_check])
    assert [f.where for f in findings] == ["WindowUpsertFunction"]
    assert stale == [elsewhere, other_check]


def test_a_checkov_suppression_that_matches_nothing_is_stale_and_other_judges_entries_are_not_its_own() -> None:
    iam_entry = Suppression("parliament", "RESOURCE_STAR", "AlertsKey", reason="key policy")
    findings, stale = judge_report(report(BUCKET_LOGS), [VPC_FOR_FUNCTIONS, iam_entry])
    assert [f.code for f in findings] == ["CKV_AWS_18"]
    assert stale == [VPC_FOR_FUNCTIONS]


def test_a_check_the_template_skips_inline_is_refused() -> None:
    with pytest.raises(CheckovError, match=r"skips checks inline .*CKV_AWS_117"):
        checkov_findings(report(skipped=(FUNCTION_VPC,)))


def test_a_report_without_results_is_refused() -> None:
    with pytest.raises(CheckovError, match="no results"):
        checkov_findings({"passed": 0, "failed": 0})


def test_the_command_exits_1_on_a_finding_or_a_stale_entry_0_on_neither_and_2_if_checkov_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def fake_checkov(output: dict[str, Any], exit_code: int = 0) -> Path:
        script = tmp_path / f"checkov-{len(list(tmp_path.iterdir()))}"
        script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{json.dumps(output)}\nEOF\nexit {exit_code}\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
        return script

    suppressions = tmp_path / "suppressions.yaml"
    suppressions.write_text(
        "suppressions:\n  - {judge: checkov, code: CKV_AWS_117, where: '*Function', reason: no VPC resource}\n"
    )
    template = str(REPO / "template.yaml")
    common = ["--suppressions", str(suppressions), "--checkov"]
    assert main([template, *common, str(fake_checkov(report(FUNCTION_VPC)))]) == 0
    assert main([template, *common, str(fake_checkov(report(FUNCTION_VPC, BUCKET_LOGS)))]) == 1
    assert "checkov: CKV_AWS_18 ArtifactBucket: name of CKV_AWS_18" in capsys.readouterr().out
    assert main([template, *common, str(fake_checkov(report()))]) == 1
    assert "stale suppression: checkov CKV_AWS_117 *Function matches nothing" in capsys.readouterr().out
    assert main([template, *common, str(fake_checkov(report(), exit_code=2))]) == 2


def test_the_template_carries_no_checkov_metadata() -> None:
    # Accepted findings live in judges/suppressions.yaml only.
    template = load_template(REPO / "template.yaml")
    inline = [name for name, resource in template["Resources"].items() if "checkov" in resource.get("Metadata", {})]
    assert inline == []
