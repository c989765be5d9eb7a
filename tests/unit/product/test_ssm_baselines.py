"""BaselineResolver: what each of the policy's baseline choices resolves to."""

from __future__ import annotations

from typing import Any

from tagpatch.ssm_baselines import BaselineResolver


def test_aws_default_registers_nothing_and_says_the_accounts_default_applies(ssm: Any) -> None:
    resolver = BaselineResolver({})
    assert resolver.baseline_id("UBUNTU", "aws-default") is None
    assert resolver.baseline_id("UBUNTU", "aws-default") is None  # resolved once per OS
    (problem,) = resolver.problems
    assert (problem.kind, problem.name) == ("registration", "UBUNTU")
    assert "not registered, so the account's default patch baseline for UBUNTU applies" in problem.reason


def test_custom_baselines_resolve_to_the_stacks_ids(ssm: Any) -> None:
    resolver = BaselineResolver({"tagpatch-ubuntu": "pb-0123456789abcdef0"})
    assert resolver.baseline_id("UBUNTU", "custom:tagpatch-ubuntu") == "pb-0123456789abcdef0"
    assert resolver.baseline_id("SUSE", "custom:tagpatch-suse") is None
    (problem,) = resolver.problems
    assert "which this stack does not create (it creates: tagpatch-ubuntu)" in problem.reason
