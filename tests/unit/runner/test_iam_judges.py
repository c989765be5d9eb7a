"""The IAM judges can fail: a deliberately bad policy is found out, a good one is not, and only a reasoned
suppression quiets a finding."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tagpatch_local.iam_judges import Finding, Suppression, documents, judge, main

WINDOWS = {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:maintenancewindow/*"}


def template(*statements: dict[str, Any]) -> dict[str, Any]:
    return {
        "Resources": {
            "Bucket": {"Type": "AWS::S3::Bucket"},
            "FnRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    },
                    "Policies": [
                        {"PolicyName": "p", "PolicyDocument": {"Version": "2012-10-17", "Statement": list(statements)}}
                    ],
                },
            },
        }
    }


GOOD: dict[str, Any] = {
    "Sid": "ChangeOwnedWindows",
    "Effect": "Allow",
    "Action": ["ssm:UpdateMaintenanceWindow"],
    "Resource": WINDOWS,
    "Condition": {"StringEquals": {"aws:ResourceTag/tagpatch:managed": "true"}},
}
BAD: list[dict[str, Any]] = [
    {"Sid": "NoSuchAction", "Effect": "Allow", "Action": "ssm:PatchEverything", "Resource": "*"},
    # GetObject acts on objects, not on the bucket.
    {"Sid": "WrongType", "Effect": "Allow", "Action": "s3:GetObject", "Resource": {"Fn::GetAtt": ["Bucket", "Arn"]}},
    # DescribeInstancePatchStates can be scoped to instances.
    {"Sid": "Star", "Effect": "Allow", "Action": "ssm:DescribeInstancePatchStates", "Resource": "*"},
    # s3:prefix is a ListBucket key; GetObject never carries it.
    {
        "Sid": "Key",
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": {"Fn::Sub": "${Bucket.Arn}/*"},
        "Condition": {"StringLike": {"s3:prefix": "runs/*"}},
    },
]


def codes(findings: list[Finding], judge_name: str) -> set[tuple[str, str]]:
    return {(f.code, f.sid) for f in findings if f.judge == judge_name}


def test_every_iam_document_is_read_with_its_intrinsics_resolved() -> None:
    found = documents(template(GOOD))
    assert [(d.where, d.kind) for d in found] == [("FnRole (trust)", "trust"), ("FnRole/p", "identity")]
    assert found[1].policy["Statement"][0]["Resource"] == "arn:aws:ssm:us-east-1:123456789012:maintenancewindow/*"


def test_a_good_policy_has_no_findings() -> None:
    assert judge(template(GOOD), []) == ([], [])


def test_the_sar_judge_finds_each_deliberate_mistake() -> None:
    findings, _ = judge(template(GOOD, *BAD), [])
    assert codes(findings, "sar") == {
        ("UNKNOWN_ACTION", "NoSuchAction"),
        ("RESOURCE_MISMATCH", "WrongType"),
        ("RESOURCE_STAR", "Star"),
        ("UNSUPPORTED_CONDITION_KEY", "Key"),
    }


def test_parliament_judges_too() -> None:
    findings, _ = judge(template(*BAD), [])
    assert {"UNKNOWN_ACTION", "RESOURCE_MISMATCH", "RESOURCE_STAR"} <= {c for c, _ in codes(findings, "parliament")}


def test_only_a_matching_suppression_quiets_a_finding(tmp_path: Path) -> None:
    star = Suppression("sar", "RESOURCE_STAR", "FnRole/*", reason="because", sid="Star")
    findings, stale = judge(template(GOOD, BAD[2]), [star])
    assert codes(findings, "sar") == set()
    assert stale == []
    elsewhere = Suppression("sar", "RESOURCE_STAR", "OtherRole/*", reason="because")
    findings, stale = judge(template(GOOD, BAD[2]), [elsewhere])
    assert codes(findings, "sar") == {("RESOURCE_STAR", "Star")}
    assert stale == [elsewhere]


def test_the_command_exits_1_on_a_finding_0_without_and_2_on_a_suppression_without_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad, good = tmp_path / "bad.json", tmp_path / "good.json"
    bad.write_text(json.dumps(template(GOOD, *BAD)))
    good.write_text(json.dumps(template(GOOD)))
    none = tmp_path / "none.yaml"
    none.write_text("suppressions: []\n")
    assert main([str(bad), "--suppressions", str(none)]) == 1
    out = capsys.readouterr().out
    assert "sar: RESOURCE_MISMATCH FnRole/p [WrongType]: s3:GetObject does not act on arn:aws:s3:::bucket" in out
    assert main([str(good), "--suppressions", str(none)]) == 0
    unreasoned = tmp_path / "unreasoned.yaml"
    unreasoned.write_text("suppressions:\n  - {judge: sar, code: RESOURCE_STAR, where: FnRole/p, reason: ''}\n")
    assert main([str(good), "--suppressions", str(unreasoned)]) == 2


def test_a_role_must_grant_every_resource_type_the_sar_requires_for_an_action() -> None:
    # Defect 2's shape: target updates granted on the window only. The SAR requires windowtarget too.
    window_only = {"Sid": "W", "Effect": "Allow", "Action": "ssm:UpdateMaintenanceWindowTarget", "Resource": WINDOWS}
    findings, _ = judge(template(window_only), [])
    assert [(f.code, f.where) for f in findings if f.judge == "sar"] == [("REQUIRED_RESOURCE_NOT_GRANTED", "FnRole")]
    assert "windowtarget" in findings[0].detail
    targets = {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:windowtarget/*"}
    member = {"Sid": "T", "Effect": "Allow", "Action": "ssm:UpdateMaintenanceWindowTarget", "Resource": targets}
    findings, _ = judge(template(window_only, member), [])
    assert codes(findings, "sar") == set()
    # Where the API takes one of two types the SAR marks required, one is enough.
    machine = {"Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:m"}
    listing = {"Sid": "L", "Effect": "Allow", "Action": "states:ListExecutions", "Resource": machine}
    findings, _ = judge(template(listing), [])
    assert codes(findings, "sar") == set()


def test_a_policy_behind_a_condition_is_judged_whichever_way_the_condition_goes() -> None:
    conditional = template(GOOD)
    role = conditional["Resources"]["FnRole"]["Properties"]
    bad = {"PolicyName": "q", "PolicyDocument": {"Version": "2012-10-17", "Statement": [BAD[0]]}}
    role["Policies"] = [{"Fn::If": ["HasSomething", role["Policies"][0], bad]}]
    findings, _ = judge(conditional, [])
    assert ("UNKNOWN_ACTION", "NoSuchAction") in codes(findings, "sar")


def test_another_judges_suppression_is_neither_used_nor_called_stale_by_the_iam_judges() -> None:
    checkov = Suppression("checkov", "CKV_AWS_117", "*Function", reason="no VPC resource")
    findings, stale = judge(template(GOOD), [checkov])
    assert findings == [] and stale == []
