"""The deployed state machine, executed by moto's interpreter with the real handlers, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tagpatch_local.fleet import GeneratorSpec, generate_fleet, load_fleet
from tagpatch_local.report import instance_lines
from tagpatch_local.runner import SimulatedAccount

from .support import instance, pages, run_ok

REPO = Path(__file__).resolve().parents[2]
PAYLOAD_LIMIT = 256 * 1024


def test_demo_fleet_every_instance_gets_the_class_its_author_expects(account: SimulatedAccount) -> None:
    fleet = load_fleet(REPO / "fleets" / "demo.yaml")
    ids = account.seed(fleet)
    result = run_ok(account)

    lines = {line["instance_id"]: line for line in instance_lines(account, result)}
    assert set(lines) == set(ids)
    checked = 0
    for instance_id, planned in zip(ids, fleet, strict=True):
        line = lines[instance_id]
        assert line["name"] == planned.tags["Name"]
        if planned.expect is None:
            continue
        checked += 1
        assert line["class"] == planned.expect, (planned.tags, line["reasons"])
        # Every problem is explained; a ready instance has none.
        assert bool(line["reasons"]) == (planned.expect != "ready"), line
        assert line["os"] == planned.os or planned.ssm == "unmanaged"
    assert checked == len(fleet)


def test_demo_fleet_reasons_are_specific(account: SimulatedAccount) -> None:
    account.seed(load_fleet(REPO / "fleets" / "demo.yaml"))
    lines = {line["name"]: line for line in instance_lines(account, run_ok(account))}
    assert any('"Patch-Group"' in reason for reason in lines["app-prod-02"]["reasons"])
    assert any("web-staging" in reason and "web-prod" in reason for reason in lines["web-prod-03"]["reasons"])
    assert any("rate(1 day)" in reason for reason in lines["db-prod-02"]["reasons"])
    assert any("sunday-2am" in reason for reason in lines["batch-dev-02"]["reasons"])
    assert any("instance profile" in reason for reason in lines["app-prod-win-03"]["reasons"])
    assert lines["web-prod-02"]["patch_group_key"] == "PatchGroup"


def test_state_payloads_hold_keys_and_counts_not_the_fleet(account: SimulatedAccount) -> None:
    account.seed(
        generate_fleet(
            GeneratorSpec(
                count=1500, patch_groups={"web": 1, "db": 1}, schedules={"sun-0200": 1}, os={"UBUNTU": 1}, seed=3
            )
        )
    )
    result = run_ok(account)
    # A fleet of 1,500 would be ~500 KB inline; the largest state stays a few KB.
    assert 0 < result.max_payload_bytes < 16 * 1024
    assert result.output is not None
    assert result.output["discovery"]["instances"] == 1500
    assert result.output["validation"]["by_class"]["ready"] == 1500


def test_state_payloads_stay_under_8_kib_with_as_many_windows_as_an_account_may_have(
    account: SimulatedAccount,
) -> None:
    """Payloads grow with the windows a cycle changes (their names in the plan and the Map's results),
    not with instances: at SSM's quota of 50 windows per Region, every window created, the largest
    state is still under 8 KiB."""
    schedules = {f"cron({minute} 3 ? * SUN *)": 1.0 for minute in range(0, 50)}
    fleet = generate_fleet(
        GeneratorSpec(
            count=600,
            patch_groups={f"app-{index:03d}": 1.0 for index in range(200)},
            schedules=schedules,
            os={"AMAZON_LINUX_2023": 1, "WINDOWS": 1},
            seed=11,
        )
    )
    account.seed(fleet)
    result = run_ok(account)
    assert result.output is not None
    assert result.output["windows"]["counts"]["window"]["created"] == 50
    assert len(result.output["window_results"]) == 50
    assert result.max_payload_bytes < 8 * 1024


def test_discovery_pages_instead_of_calling_per_instance(account: SimulatedAccount) -> None:
    fleet = generate_fleet(
        GeneratorSpec(
            count=1120,
            patch_groups={"web": 1},
            schedules={"sun-0200": 1},
            os={"UBUNTU": 1},
            unmanaged_share=0.1,
            seed=5,
        )
    )
    account.seed(fleet)
    calls = run_ok(account).calls_by_function["DiscoveryFunction"]
    registered = sum(1 for item in fleet if item.ssm != "unmanaged")
    assert calls["ec2:DescribeInstances"] == pages(1120, 1000) == 2
    assert calls["ssm:DescribeInstanceInformation"] == pages(registered, 50)
    # One invocation (the default share is 25,000): a managed-node part and an inventory part, and
    # the node part read back for the join.
    assert calls["s3:PutObject"] == 2
    assert calls["s3:GetObject"] == 1
    assert set(calls) == {"ec2:DescribeInstances", "ssm:DescribeInstanceInformation", "s3:PutObject", "s3:GetObject"}


def test_discovery_in_bounded_invocations_lists_every_instance_once() -> None:
    """A share of 300 items per invocation: the workflow loops Discovery from its cursor, each
    invocation takes whole pages up to its share, and TagValidation reads every part: the same
    instances report as one invocation gives, nothing lost or listed twice."""
    fleet = generate_fleet(
        GeneratorSpec(
            count=1120,
            patch_groups={"web": 1},
            schedules={"sun-0200": 1},
            os={"UBUNTU": 1, "WINDOWS": 1},
            unmanaged_share=0.1,
            seed=5,
        )
    )
    reports = {}
    for share in ("300", "25000"):
        overrides = {"DiscoveryItemsPerInvocation": share}
        with SimulatedAccount(REPO / "template.yaml", parameter_overrides=overrides) as acc:
            ids = acc.seed(fleet)
            result = run_ok(acc)
            lines = instance_lines(acc, result)
            assert sorted(line["instance_id"] for line in lines) == sorted(ids)
            # Each account draws its own instance ids: compare by the fleet entry each line is for.
            position = {instance_id: index for index, instance_id in enumerate(ids)}
            by_entry = sorted(({**line, "instance_id": position[line["instance_id"]]} for line in lines), key=str)
            reports[share] = (result, by_entry)
    chunked, whole = reports["300"], reports["25000"]
    assert chunked[1] == whole[1]
    registered = sum(1 for item in fleet if item.ssm != "unmanaged")
    assert chunked[0].output is not None
    discovery = chunked[0].output["discovery"]
    calls = chunked[0].calls_by_function["DiscoveryFunction"]
    # Pages of 50 nodes (six to a share of 300) and of 300 instances (one to a share).
    assert calls["ssm:DescribeInstanceInformation"] == discovery["ssm_pages"] == pages(registered, 50)
    assert calls["ec2:DescribeInstances"] == discovery["ec2_pages"] == pages(1120, 300)
    assert discovery["managed_parts"] == pages(pages(registered, 50), 6)
    # The last node invocation goes on to the first instance page with the share it has left.
    assert discovery["invocations"] == discovery["managed_parts"] + discovery["inventory_parts"] - 1
    assert discovery["inventory_parts"] == pages(1120, 300)
    invocations = [run for run in chunked[0].function_runs if run.function == "DiscoveryFunction"]
    assert len(invocations) == discovery["invocations"] > 1
    assert (discovery["instances"], discovery["ssm_registered"]) == (1120, registered)


@pytest.mark.parametrize(
    ("execution_input", "message"),
    [
        ({"mode": "dry-run"}, "mode 'dry-run' is not valid"),
        ({"patchgroups": ["web"]}, "unknown input key(s) 'patchgroups'"),
        ({"now": "2026-11-29T02:00:00"}, "has no UTC offset"),
        ({"patch_groups": "web"}, "patch_groups must be a non-empty list"),
    ],
)
def test_bad_input_fails_the_execution_at_once(
    account: SimulatedAccount, execution_input: dict[str, object], message: str
) -> None:
    account.seed([instance("web", "sun-0200")])
    result = account.run_cycle(execution_input)
    assert result.status == "FAILED"
    assert result.error == "InvalidCycleInput"
    assert message in json.loads(result.cause or "{}")["errorMessage"]
    # Nothing past input validation ran.
    assert set(result.calls_by_function) <= {"PrepareCycleFunction"}
    entered = [e["stateEnteredEventDetails"]["name"] for e in result.events if "stateEnteredEventDetails" in e]
    assert entered == ["PrepareCycle"]


def test_a_failing_state_is_reported_on_the_alerts_topic_with_the_input_kept(account: SimulatedAccount) -> None:
    account.seed([instance("web", "sun-0200")])
    sqs = account.client("sqs")
    queue_url = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic_arn = account.physical_id("AlertsTopic")
    account.client("sns").subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
    )
    # Discovery is refused the instance listing (a permission taken away).
    account.fail_next("ec2", "DescribeInstances", "UnauthorizedOperation", times=1, status=403)

    result = account.run_cycle({"mode": "plan"})

    assert result.status == "FAILED"
    assert result.error == "UnauthorizedOperation" or "UnauthorizedOperation" in (result.cause or "")
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1)["Messages"]
    body = messages[0]["Body"]
    assert "failed in state Discovery" in body
    assert "UnauthorizedOperation" in body
    entered = [e["stateEnteredEventDetails"]["name"] for e in result.events if "stateEnteredEventDetails" in e]
    assert entered[-4:] == ["DiscoveryFailed", "ReportFailure", "ReleaseAfterFailure", "CycleFailed"]
    # The failure handler received the original cycle, not just the error.
    report_input = next(
        json.loads(e["stateEnteredEventDetails"]["input"])
        for e in result.events
        if e.get("stateEnteredEventDetails", {}).get("name") == "ReportFailure"
    )
    assert report_input["cycle"]["mode"] == "plan"
    assert report_input["failed_state"] == "Discovery"
