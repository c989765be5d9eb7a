"""The simulator's target resolution: which managed nodes a window's targets and tasks select."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tagpatch_local import simulator
from tagpatch_local.fleet import FleetInstance, seed_fleet
from tagpatch_local.simulator.targets import (
    UnsupportedTarget,
    build_index,
    instances_selected_by_targets,
    instances_selected_by_tasks,
    tasks_selecting_each_instance,
)

REGION = "us-east-1"
ACCOUNT = "123456789012"


@pytest.fixture
def ssm() -> Iterator[Any]:
    simulator.install()
    with mock_aws():
        yield boto3.client("ssm", region_name=REGION)


def _seed(tags_by_name: Mapping[str, Mapping[str, str]], **per_name: Mapping[str, str]) -> dict[str, str]:
    """Seed one instance per name; `per_name[name]` overrides state/ssm. Returns name -> id."""
    fleet = [
        FleetInstance(
            tags=MappingProxyType({"Name": name, **tags}),
            os="AMAZON_LINUX_2023",
            **per_name.get(name, {}),  # type: ignore[arg-type]
        )
        for name, tags in tags_by_name.items()
    ]
    ids = seed_fleet(fleet, region=REGION)
    return dict(zip(tags_by_name, ids, strict=True))


def _window(ssm: Any) -> str:
    window_id: str = ssm.create_maintenance_window(
        Name="targets-test", Schedule="cron(0 2 ? * SUN *)", Duration=3, Cutoff=1, AllowUnassociatedTargets=False
    )["WindowId"]
    return window_id


def _target(ssm: Any, window_id: str, targets: list[dict[str, Any]]) -> str:
    target_id: str = ssm.register_target_with_maintenance_window(
        WindowId=window_id, ResourceType="INSTANCE", Targets=targets
    )["WindowTargetId"]
    return target_id


def _task(ssm: Any, window_id: str, targets: list[dict[str, Any]]) -> str:
    task_id: str = ssm.register_task_with_maintenance_window(
        WindowId=window_id,
        Targets=targets,
        TaskArn="AWS-RunPatchBaseline",
        TaskType="RUN_COMMAND",
        MaxConcurrency="10%",
        MaxErrors="1",
    )["WindowTaskId"]
    return task_id


def _selected(ssm: Any, targets: list[dict[str, Any]]) -> frozenset[str]:
    window_id = _window(ssm)
    target_id = _target(ssm, window_id, targets)
    return instances_selected_by_targets(ACCOUNT, REGION, window_id)[target_id]


def test_tag_values_match_exactly_and_case_sensitively(ssm: Any) -> None:
    ids = _seed(
        {
            "exact": {"Patch Group": "web"},
            "upper": {"Patch Group": "WEB"},
            "padded": {"Patch Group": " web"},
            "other-key-case": {"patch group": "web"},
        }
    )
    assert _selected(ssm, [{"Key": "tag:Patch Group", "Values": ["web"]}]) == {ids["exact"]}


def test_values_of_one_entry_are_or_and_entries_are_and(ssm: Any) -> None:
    ids = _seed(
        {
            "web-sun": {"Patch Group": "web", "Maintenance Window": "sun"},
            "db-sun": {"Patch Group": "db", "Maintenance Window": "sun"},
            "web-tue": {"Patch Group": "web", "Maintenance Window": "tue"},
            "web-only": {"Patch Group": "web"},
        }
    )
    assert _selected(ssm, [{"Key": "tag:Patch Group", "Values": ["web", "db"]}]) == {
        ids["web-sun"],
        ids["db-sun"],
        ids["web-tue"],
        ids["web-only"],
    }
    assert _selected(
        ssm,
        [
            {"Key": "tag:Patch Group", "Values": ["web", "db"]},
            {"Key": "tag:Maintenance Window", "Values": ["sun"]},
        ],
    ) == {ids["web-sun"], ids["db-sun"]}


def test_tag_key_and_instance_ids(ssm: Any) -> None:
    ids = _seed({"a": {"PatchGroup": "x"}, "b": {"Patch Group": "y"}, "c": {}})
    assert _selected(ssm, [{"Key": "tag-key", "Values": ["PatchGroup"]}]) == {ids["a"]}
    assert _selected(ssm, [{"Key": "InstanceIds", "Values": [ids["b"], ids["c"]]}]) == {ids["b"], ids["c"]}


def test_only_registered_nodes_are_selected_and_stopped_ones_still_are(ssm: Any) -> None:
    tags = {"Patch Group": "web"}
    ids = _seed(
        {"online": tags, "stopped": tags, "lost": tags, "unregistered": tags},
        stopped={"state": "stopped"},
        lost={"ssm": "connection_lost"},
        unregistered={"ssm": "unmanaged"},
    )
    selected = _selected(ssm, [{"Key": "tag:Patch Group", "Values": ["web"]}])
    # A stopped or disconnected node is a target whose invocation cannot be delivered.
    assert selected == {ids["online"], ids["stopped"], ids["lost"]}
    assert _selected(ssm, [{"Key": "InstanceIds", "Values": [ids["unregistered"]]}]) == frozenset()


def test_terminated_instances_are_not_selected(ssm: Any) -> None:
    ids = _seed({"a": {"Patch Group": "web"}, "b": {"Patch Group": "web"}})
    boto3.client("ec2", region_name=REGION).terminate_instances(InstanceIds=[ids["b"]])
    assert _selected(ssm, [{"Key": "tag:Patch Group", "Values": ["web"]}]) == {ids["a"]}


def test_tags_changed_after_registration_are_read_when_resolving(ssm: Any) -> None:
    ids = _seed({"a": {"Patch Group": "web"}})
    window_id = _window(ssm)
    target_id = _target(ssm, window_id, [{"Key": "tag:Patch Group", "Values": ["db"]}])
    assert instances_selected_by_targets(ACCOUNT, REGION, window_id)[target_id] == frozenset()
    boto3.client("ec2", region_name=REGION).create_tags(
        Resources=[ids["a"]], Tags=[{"Key": "Patch Group", "Value": "db"}]
    )
    assert instances_selected_by_targets(ACCOUNT, REGION, window_id)[target_id] == {ids["a"]}


def test_tasks_select_the_union_of_the_window_targets_they_name(ssm: Any) -> None:
    ids = _seed({"web": {"Patch Group": "web"}, "db": {"Patch Group": "db"}, "app": {"Patch Group": "app"}})
    window_id = _window(ssm)
    web = _target(ssm, window_id, [{"Key": "tag:Patch Group", "Values": ["web"]}])
    db = _target(ssm, window_id, [{"Key": "tag:Patch Group", "Values": ["db"]}])
    _target(ssm, window_id, [{"Key": "tag:Patch Group", "Values": ["app"]}])  # registered, used by no task
    both = _task(ssm, window_id, [{"Key": "WindowTargetIds", "Values": [web, db]}])
    only_db = _task(ssm, window_id, [{"Key": "WindowTargetIds", "Values": [db]}])
    by_ids = _task(ssm, window_id, [{"Key": "InstanceIds", "Values": [ids["app"]]}])
    assert instances_selected_by_tasks(ACCOUNT, REGION, window_id) == {
        both: {ids["web"], ids["db"]},
        only_db: {ids["db"]},
        by_ids: {ids["app"]},
    }
    per_instance = tasks_selecting_each_instance(ACCOUNT, REGION)
    assert sorted(s.task_id for s in per_instance[ids["db"]]) == sorted([both, only_db])


def test_resource_groups_are_refused_not_ignored(ssm: Any) -> None:
    _seed({"a": {"Patch Group": "web"}})
    with pytest.raises(UnsupportedTarget, match="resource groups"):
        _selected(ssm, [{"Key": "resource-groups:Name", "Values": ["prod"]}])


def test_index_is_built_once_from_the_tag_store(ssm: Any) -> None:
    ids = _seed({f"n{i}": {"Patch Group": f"g{i % 3}"} for i in range(9)})
    index = build_index(ACCOUNT, REGION)
    assert index.managed == frozenset(ids.values())
    assert len(index.by_tag[("Patch Group", "g0")]) == 3
    assert index.select([{"Key": "tag:Patch Group", "Values": ["g0", "g1"]}]) == {
        ids[f"n{i}"] for i in range(9) if i % 3 != 2
    }
