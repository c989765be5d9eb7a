"""AWS Config rules in the simulated account: the custom tag rule (the real handler, invoked as Config
invokes it), the managed rules, compliance change notifications to owners, and the compliance queries."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml

from tagpatch.inventory import decode_jsonl_gz
from tagpatch_local.fleet import FleetInstance
from tagpatch_local.runner import ACCOUNT_ID, SimulatedAccount
from tagpatch_local.scenario import Edit, apply_edit
from tagpatch_local.simulator import config, events

from .support import instance, run_ok, template_variant
from .test_cycle_safety import metric_values
from .test_patch_monitoring import owner_queue

REPO = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 27, 12, tzinfo=UTC)
TAGS = "tagpatch-local-patch-tags"
SSM = "tagpatch-local-managed-by-ssm"
PROFILE = "tagpatch-local-instance-profile"


def bare(name: str, owner: str = "team-a", **extra: Any) -> FleetInstance:
    """An instance launched without patching tags, without an instance profile, unknown to SSM."""
    tags = MappingProxyType({"Name": name, "Owner": owner})
    return FleetInstance(tags=tags, os="AMAZON_LINUX_2023", ssm="unmanaged", instance_profile="none", **extra)


@pytest.fixture
def account() -> Iterator[SimulatedAccount]:
    with SimulatedAccount(REPO / "template.yaml", config_recorder=True) as found:
        found.set_clock(START)
        events.FAILED_DELIVERIES.clear()
        events.LAMBDA_DELIVERIES.clear()
        yield found


def results(account: SimulatedAccount, rule: str) -> dict[str, dict[str, Any]]:
    pages = (
        account.client("config").get_paginator("get_compliance_details_by_config_rule").paginate(ConfigRuleName=rule)
    )
    return {
        r["EvaluationResultIdentifier"]["EvaluationResultQualifier"]["ResourceId"]: r
        for page in pages
        for r in page["EvaluationResults"]
    }


def test_an_untagged_launch_is_non_compliant_at_once_and_its_owner_told_what_to_fix(account: SimulatedAccount) -> None:
    team = owner_queue(account, "team-a")
    (bad,) = account.seed([bare("bare-1")])
    tags, ssm, profile = results(account, TAGS)[bad], results(account, SSM)[bad], results(account, PROFILE)[bad]
    assert (tags["ComplianceType"], ssm["ComplianceType"], profile["ComplianceType"]) == ("NON_COMPLIANT",) * 3
    annotation = tags["Annotation"]
    assert len(annotation) <= 256 and '"Patch Group"' in annotation and "add a tag" in annotation
    # The capture time of the item is the evaluation's OrderingTimestamp.
    assert tags["EvaluationResultIdentifier"]["OrderingTimestamp"] == START
    messages = team()
    assert {m["MessageAttributes"]["rule"]["Value"] for m in messages} == {TAGS, SSM, PROFILE}
    assert all(m["MessageAttributes"]["owner"]["Value"] == "team-a" for m in messages)
    told = next(m for m in messages if m["MessageAttributes"]["rule"]["Value"] == TAGS)
    assert "bare-1" in told["Subject"] and "What to fix: no patch group tag" in told["Message"]
    told = next(m for m in messages if m["MessageAttributes"]["rule"]["Value"] == PROFILE)
    assert "AmazonSSMManagedInstanceCore" in told["Message"]
    assert events.FAILED_DELIVERIES == []
    by_resource = account.client("config").describe_compliance_by_resource(ResourceType="AWS::EC2::Instance")
    (summary,) = by_resource["ComplianceByResources"]
    assert summary["Compliance"]["ComplianceContributorCount"]["CappedCount"] == 3

    # Nothing changed: nothing evaluated differently, nothing re-sent.
    account.advance(timedelta(minutes=5))
    assert team() == []

    # Fixed: the tag rule turns COMPLIANT within minutes and the owner hears it once.
    account.client("ec2").create_tags(
        Resources=[bad],
        Tags=[{"Key": "Patch Group", "Value": "web"}, {"Key": "Maintenance Window", "Value": "sun-0200"}],
    )
    account.advance(timedelta(minutes=5))
    assert results(account, TAGS)[bad]["ComplianceType"] == "COMPLIANT"
    (fixed,) = team()
    assert "compliant again" in fixed["Subject"] and fixed["MessageAttributes"]["compliance"]["Value"] == "COMPLIANT"

    # Terminated: NOT_APPLICABLE, and nobody is told about an instance that is gone.
    account.client("ec2").terminate_instances(InstanceIds=[bad])
    account.advance(timedelta(minutes=5))
    assert results(account, TAGS)[bad]["ComplianceType"] == "NOT_APPLICABLE"
    assert results(account, PROFILE)[bad]["ComplianceType"] == "NOT_APPLICABLE"
    assert team() == []


def test_the_rule_and_the_cycle_agree_on_every_instance(account: SimulatedAccount) -> None:
    fleet = [
        instance("web", "sun-0200", name="ok"),
        instance("web", "not-a-window", name="bad-window"),
        instance(" web", "sun-0200", name="spaces"),
        instance(None, "sun-0200", name="no-group"),
        instance("web", "sun-0200", name="stopped", state="stopped"),
    ]
    ids = dict(zip([f.tags["Name"] for f in fleet], account.seed(fleet), strict=True))
    found = results(account, TAGS)
    output = run_ok(account).output or {}
    body = account.client("s3").get_object(Bucket=account.artifact_bucket, Key=output["validation"]["instances_key"])
    for line in decode_jsonl_gz(body["Body"].read()):
        tag_problem = line["tag_class"] in ("missing_tags", "invalid_tags")
        verdict = found[line["instance_id"]]
        assert (verdict["ComplianceType"] == "NON_COMPLIANT") is tag_problem, line
        if tag_problem:
            assert verdict["Annotation"].startswith(line["reasons"][0][:200])
    assert found[ids["stopped"]]["ComplianceType"] == "COMPLIANT"  # tags only: stopped is the SSM rule's concern
    assert results(account, SSM)[ids["stopped"]]["ComplianceType"] == "NOT_APPLICABLE"


def test_the_periodic_run_evaluates_every_instance_in_batches_of_100(account: SimulatedAccount) -> None:
    account.seed([instance("web", "sun-0200") for _ in range(150)])
    state = config.state(ACCOUNT_ID, account.region)
    state.put_calls.clear()
    account.advance(timedelta(hours=23))
    assert state.put_calls == []  # not yet a day since the rule was created
    account.advance(timedelta(hours=1))
    assert [(call.evaluations, call.error) for call in state.put_calls] == [(100, None), (50, None)]
    assert [i.message_type for i in state.invocations][-1] == "ScheduledNotification"


def test_an_oversized_item_is_read_from_the_configuration_history(account: SimulatedAccount) -> None:
    config.state(ACCOUNT_ID, account.region).oversized_bytes = 10  # every item is "oversized"
    (bad,) = account.seed([bare("big-1")])
    invocations = config.state(ACCOUNT_ID, account.region).invocations
    assert {i.message_type for i in invocations if i.resource_id == bad} == {
        "OversizedConfigurationItemChangeNotification"
    }
    assert all(i.error is None for i in invocations)
    assert results(account, TAGS)[bad]["ComplianceType"] == "NON_COMPLIANT"


def test_an_excepted_instance_is_annotated_but_keeps_its_compliance(account: SimulatedAccount, tmp_path: Path) -> None:
    path = tmp_path / "exceptions.yaml"
    entry = {"name": "vendor-1", "reason": "vendor box", "approved_by": "gov", "expires": "2026-12-20"}
    path.write_text(yaml.safe_dump({"exceptions": [entry]}))
    account.use_exceptions(path)
    (bad,) = account.seed([bare("vendor-1")])
    verdict = results(account, TAGS)[bad]
    assert verdict["ComplianceType"] == "NON_COMPLIANT"
    assert verdict["Annotation"].startswith("Excepted until 2026-12-20 (vendor box). ")


def test_put_evaluations_is_checked_as_aws_checks_it(account: SimulatedAccount) -> None:
    client = account.client("config")
    account.seed([instance("web", "sun-0200")])
    with pytest.raises(client.exceptions.InvalidResultTokenException):
        client.put_evaluations(
            Evaluations=[
                {
                    "ComplianceResourceType": "AWS::EC2::Instance",
                    "ComplianceResourceId": "i-0123456789abcdef0",
                    "ComplianceType": "COMPLIANT",
                    "OrderingTimestamp": START,
                }
            ],
            ResultToken="not-a-token",
        )
    token = next(iter(config.state(ACCOUNT_ID, account.region).tokens))
    base = {"ComplianceResourceType": "AWS::EC2::Instance", "ComplianceResourceId": "i-1", "OrderingTimestamp": START}
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.put_evaluations(Evaluations=[{**base, "ComplianceType": "INSUFFICIENT_DATA"}], ResultToken=token)
    with pytest.raises(client.exceptions.ValidationException):
        client.put_evaluations(
            Evaluations=[{**base, "ComplianceType": "COMPLIANT", "Annotation": "x" * 257}], ResultToken=token
        )
    with pytest.raises(client.exceptions.ValidationException):
        client.put_evaluations(Evaluations=[{**base, "ComplianceType": "COMPLIANT"}] * 101, ResultToken=token)


def test_without_the_permission_config_cannot_invoke_the_rule() -> None:
    def without_permission(document: dict[str, Any]) -> None:
        del document["Resources"]["ConfigTagRulePermission"]
        del document["Resources"]["PatchTagsConfigRule"]["DependsOn"]

    with template_variant(without_permission) as path, SimulatedAccount(path, config_recorder=True) as account:
        account.seed([bare("bare-1")])
        invocations = config.state(ACCOUNT_ID, account.region).invocations
        assert invocations and all("does not let Config invoke" in str(i.error) for i in invocations)
        assert results(account, TAGS) == {}


def test_without_a_recorder_nothing_is_evaluated() -> None:
    with SimulatedAccount(REPO / "template.yaml", parameter_overrides={"ConfigRules": "true"}) as account:
        account.seed([bare("bare-1")])
        assert results(account, TAGS) == {}
        summary = account.client("config").describe_compliance_by_config_rule(ConfigRuleNames=[TAGS])
        assert summary["ComplianceByConfigRules"][0]["Compliance"]["ComplianceType"] == "INSUFFICIENT_DATA"


def test_compliance_change_events_carry_the_documented_detail(account: SimulatedAccount) -> None:
    sqs = account.client("sqs")
    url = sqs.create_queue(QueueName="config-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = account.client("events")
    bus.put_rule(Name="watch", EventPattern=json.dumps({"source": ["aws.config"]}))
    bus.put_targets(Rule="watch", Targets=[{"Id": "q", "Arn": arn}])
    (bad,) = account.seed([bare("bare-1")])
    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]
    event = next(b for b in bodies if b["detail"]["configRuleName"] == TAGS)
    assert event["detail-type"] == "Config Rules Compliance Change"
    detail = event["detail"]
    assert detail["resourceId"] == bad and detail["messageType"] == "ComplianceChangeNotification"
    assert detail["newEvaluationResult"]["complianceType"] == "NON_COMPLIANT"
    assert "oldEvaluationResult" not in detail


def test_stop_and_start_are_changes_config_evaluates(account: SimulatedAccount) -> None:
    (node,) = account.seed([instance("web", "sun-0200", name="web-1")])
    state = config.state(ACCOUNT_ID, account.region)
    assert results(account, SSM)[node]["ComplianceType"] == "COMPLIANT"
    before = len(state.invocations)
    account.advance(timedelta(minutes=10))
    apply_edit(account, Edit("stop", "test", select={"Name": "web-1"}))
    # The state change is a new configuration item: the tag rule is invoked for it, and the SSM rule
    # stops judging a stopped instance.
    assert [i.resource_id for i in state.invocations[before:]] == [node]
    assert results(account, SSM)[node]["ComplianceType"] == "NOT_APPLICABLE"
    assert results(account, TAGS)[node]["ComplianceType"] == "COMPLIANT"
    history = account.client("config").get_resource_config_history(resourceType="AWS::EC2::Instance", resourceId=node)
    items = history["configurationItems"]
    assert [i["configurationItemStatus"] for i in items] == ["OK", "ResourceDiscovered"]  # newest first
    assert json.loads(items[0]["configuration"])["state"]["name"] == "stopped"
    apply_edit(account, Edit("start", "test", select={"Name": "web-1"}))
    assert results(account, SSM)[node]["ComplianceType"] == "COMPLIANT"


def test_an_older_evaluation_never_replaces_a_newer_one(account: SimulatedAccount) -> None:
    (node,) = account.seed([bare("bare-1")])
    state = config.state(ACCOUNT_ID, account.region)
    token = next(t for t, (rule, _) in state.tokens.items() if rule == TAGS)
    older = START - timedelta(hours=1)
    account.client("config").put_evaluations(
        Evaluations=[
            {
                "ComplianceResourceType": "AWS::EC2::Instance",
                "ComplianceResourceId": node,
                "ComplianceType": "COMPLIANT",
                "OrderingTimestamp": older,
            }
        ],
        ResultToken=token,
    )
    assert results(account, TAGS)[node]["ComplianceType"] == "NON_COMPLIANT"


def test_the_patch_compliance_rule_follows_patch_manager_where_it_is_turned_on() -> None:
    overrides = {"PatchComplianceConfigRule": "true"}
    with SimulatedAccount(REPO / "template.yaml", config_recorder=True, parameter_overrides=overrides) as account:
        account.set_clock(START)
        team = owner_queue(account, "team-test")
        (node,) = account.seed([instance("web", "sun-0200", name="web-1")])
        account.set_patch_behaviour(node, {"missing": 3, "result": "failed"})
        run_ok(account)
        assert results(account, "tagpatch-local-patch-compliance") == {}  # no patch operation yet
        account.advance(timedelta(hours=40))  # Sunday 02:00: the Install fails
        (verdict,) = results(account, "tagpatch-local-patch-compliance").values()
        assert verdict["ComplianceType"] == "NON_COMPLIANT"
        assert verdict["EvaluationResultIdentifier"]["EvaluationResultQualifier"]["ResourceType"] == (
            "AWS::SSM::PatchCompliance"
        )
        (told,) = [m for m in team() if m["MessageAttributes"].get("rule", {}).get("Value", "").endswith("compliance")]
        assert "web-1" in told["Subject"] and "missing or failed patches" in told["Message"]


def test_without_the_parameter_the_stack_has_no_config_resources() -> None:
    with SimulatedAccount(REPO / "template.yaml") as account:
        assert config.state(ACCOUNT_ID, account.region).rules == {}
        names = account.client("lambda").list_functions()["Functions"]
        assert not any("Config" in f["FunctionName"] for f in names)


def test_a_recorder_without_the_ssm_types_leaves_the_ssm_rules_unevaluated(account: SimulatedAccount) -> None:
    # The account's recorder records instances only: EC2_INSTANCE_MANAGED_BY_SSM evaluates from
    # AWS::SSM::ManagedInstanceInventory, so it has nothing to judge; the other rules still judge.
    account.client("config").put_configuration_recorder(
        ConfigurationRecorder={
            "name": config.RECORDER_NAME,
            "roleARN": f"arn:aws:iam::{ACCOUNT_ID}:role/config",
            "recordingGroup": {"allSupported": False, "resourceTypes": ["AWS::EC2::Instance"]},
        }
    )
    (bad,) = account.seed([bare("bare-1")])
    assert results(account, SSM) == {}
    assert results(account, PROFILE)[bad]["ComplianceType"] == "NON_COMPLIANT"
    assert results(account, TAGS)[bad]["ComplianceType"] == "NON_COMPLIANT"


def test_the_daily_run_says_when_the_recorder_lacks_what_the_rules_need() -> None:
    log = io.StringIO()
    with SimulatedAccount(REPO / "template.yaml", config_recorder=True, log_stream=log) as account:
        account.set_clock(START)
        account.seed([bare("bare-1")])
        account.advance(timedelta(days=1))
        account.config_observe()  # the tag rule's daily run: the recorder records everything
        assert metric_values(log.getvalue(), "ConfigRecorderMissingTypes") == [0.0]
        account.client("config").put_configuration_recorder(
            ConfigurationRecorder={
                "name": config.RECORDER_NAME,
                "roleARN": f"arn:aws:iam::{ACCOUNT_ID}:role/config",
                "recordingGroup": {"allSupported": False, "resourceTypes": ["AWS::EC2::Instance"]},
            }
        )
        account.advance(timedelta(days=1))
        account.config_observe()
        assert metric_values(log.getvalue(), "ConfigRecorderMissingTypes") == [0.0, 1.0]
        assert "AWS::SSM::ManagedInstanceInventory" in log.getvalue()
