from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tagpatch_local import fleet
from tagpatch_local.fleet import (
    FleetError,
    FleetInstance,
    GeneratorSpec,
    generate_fleet,
    load_fleet,
    parse_fleet,
)

REPO = Path(__file__).resolve().parents[3]
REGION = "us-east-1"


def _gen(**overrides: Any) -> dict[str, Any]:
    block: dict[str, Any] = {
        "count": 10,
        "seed": 1,
        "patch_groups": {"web-prod": 1},
        "schedules": {"sun-0200": 1},
        "os": {"AMAZON_LINUX_2023": 1},
    }
    block.update(overrides)
    return block


def _instance(**overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"tags": {"Name": "a", "Patch Group": "web"}, "os": "UBUNTU"}
    item.update(overrides)
    return item


def test_parse_explicit_instances() -> None:
    doc = {
        "instances": [
            _instance(),
            _instance(os="WINDOWS", state="stopped", ssm="unmanaged", instance_profile="none"),
            {"os": "AMAZON_LINUX_2"},
        ]
    }
    parsed = parse_fleet(doc, "x.yaml")
    assert parsed[0] == FleetInstance(tags={"Name": "a", "Patch Group": "web"}, os="UBUNTU")
    assert (parsed[1].state, parsed[1].ssm, parsed[1].instance_profile) == ("stopped", "unmanaged", "none")
    assert dict(parsed[2].tags) == {}


def test_an_instance_patch_block_may_make_its_backup_fail() -> None:
    failing, default = parse_fleet({"instances": [_instance(patch={"backup": "failed"}), _instance()]}, "x.yaml")
    assert (failing.patch.backup_fails, default.patch.backup_fails) == (True, False)
    with pytest.raises(FleetError, match=r"instances\[0\]\.patch\.backup: invalid value 'broken'"):
        parse_fleet({"instances": [_instance(patch={"backup": "broken"})]}, "x.yaml")
    from moto import mock_aws

    from tagpatch_local.fleet import set_patch_behaviour
    from tagpatch_local.simulator import executions

    with mock_aws():
        set_patch_behaviour("123456789012", "us-east-1", "i-failing", failing.os, failing.patch)
        set_patch_behaviour("123456789012", "us-east-1", "i-default", default.os, default.patch)
        profiles = executions.run_state("123456789012", "us-east-1").profiles
        assert (profiles["i-failing"].backup_fails, profiles["i-default"].backup_fails) == (True, False)


def test_an_instance_patch_block_may_say_how_long_its_patching_takes() -> None:
    (slow, default) = parse_fleet({"instances": [_instance(patch={"minutes": 45}), _instance()]}, "x.yaml")
    assert (slow.patch.minutes, default.patch.minutes) == (45, None)  # None: the simulator's default
    from moto import mock_aws

    from tagpatch_local.fleet import set_patch_behaviour
    from tagpatch_local.simulator import executions

    with mock_aws():
        set_patch_behaviour("123456789012", "us-east-1", "i-slow", slow.os, slow.patch)
        set_patch_behaviour("123456789012", "us-east-1", "i-default", default.os, default.patch)
        profiles = executions.run_state("123456789012", "us-east-1").profiles
        assert (profiles["i-slow"].minutes, profiles["i-default"].minutes) == (45, None)  # None: by Operation


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"instances": [_instance(), _instance(sssm="online")]},
            'x.yaml: instances[1].sssm: unknown key "sssm"; expected one of tags, os, state',
        ),
        ({"instancez": []}, 'x.yaml: instancez: unknown key "instancez"'),
        ({"instances": [_instance(state="paused")]}, "x.yaml: instances[0].state: invalid value 'paused'"),
        ({"instances": [_instance(ssm="Online")]}, "x.yaml: instances[0].ssm: invalid value 'Online'"),
        (
            {"instances": [_instance(instance_profile="admin")]},
            "x.yaml: instances[0].instance_profile: invalid value 'admin'",
        ),
        ({"instances": [_instance(os="WINDOWS_2022")]}, "x.yaml: instances[0].os: unknown operating system"),
        ({"instances": [{"tags": {}}]}, "x.yaml: instances[0]: missing required key 'os'"),
        (
            {"instances": [_instance(tags=["Name=a"])]},
            "x.yaml: instances[0].tags: expected a mapping, got list",
        ),
        (
            {"instances": [_instance(tags={"Owner": 42})]},
            "x.yaml: instances[0].tags.Owner: tag values must be strings, got 42",
        ),
        (
            {"instances": [_instance(tags={"Patch Group": None})]},
            'x.yaml: instances[0].tags."Patch Group": tag values must be strings, got None',
        ),
        ({"instances": [_instance(tags={"aws:x": "y"})]}, "reserved by AWS"),
        ({"instances": "all"}, "x.yaml: instances: expected a list, got str"),
        (
            {"instances": [_instance(patch={"minutes": 0})]},
            "x.yaml: instances[0].patch.minutes: must be a whole number of minutes from 1 to 1440, got 0",
        ),
        (
            {"generate": _gen(patch={"minutes": {5: 1}})},
            'x.yaml: generate.patch.minutes: unknown key "minutes"',
        ),
        ({"generate": _gen(patch_groups={"web": 0})}, "x.yaml: generate.patch_groups.web: weight must be"),
        ({"generate": _gen(os={"UBUNTU": -1})}, "x.yaml: generate.os.UBUNTU: weight must be a positive"),
        ({"generate": _gen(owners={"t": "heavy"})}, "x.yaml: generate.owners.t: weight must be a positive"),
        ({"generate": _gen(schedules={})}, "x.yaml: generate.schedules: expected at least one"),
        ({"generate": _gen(os={"BEOS": 1})}, "x.yaml: generate.os.BEOS: unknown operating system 'BEOS'"),
        (
            {"generate": _gen(patch_group_key={"Patch-Group": 1})},
            "x.yaml: generate.patch_group_key.\"Patch-Group\": invalid value 'Patch-Group'",
        ),
        ({"generate": _gen(bad_tag_share=1.5)}, "x.yaml: generate.bad_tag_share: share must be a number"),
        ({"generate": _gen(stopped_share=-0.1)}, "x.yaml: generate.stopped_share: share must be"),
        (
            {"generate": _gen(stopped_share=0.6, unmanaged_share=0.6)},
            "must not exceed 1",
        ),
        ({"generate": _gen(count=-1)}, "x.yaml: generate.count: count must be an integer"),
        ({"generate": _gen(count=True)}, "x.yaml: generate.count: count must be an integer"),
        ({"generate": [_gen(), _gen(colour="red")]}, 'x.yaml: generate[1].colour: unknown key "colour"'),
        (
            {"generate": [_gen(), _gen()]},
            "x.yaml: generate[1].name_prefix: name_prefix 'gen' is already used",
        ),
        ({"generate": {"count": 3}}, "x.yaml: generate: missing required key 'patch_groups'"),
        (None, "x.yaml: (top level): the fleet is empty"),
        ([], "x.yaml: (top level): expected a mapping, got list"),
    ],
)
def test_errors_name_file_place_and_key(doc: object, message: str) -> None:
    with pytest.raises(FleetError) as info:
        parse_fleet(doc, "x.yaml")
    assert message in str(info.value)


def test_yaml_errors_report_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(
        "instances:\n  - tags: {Name: a}\n    os: UBUNTU\n  - tags: {Name: b}\n    os: UBUNTU\n    sssm: online\n"
    )
    with pytest.raises(FleetError) as info:
        load_fleet(path)
    assert str(info.value).startswith(f"{path}: instances[1].sssm (line 6): unknown key")


def test_yaml_duplicate_keys_rejected(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text("instances:\n  - os: UBUNTU\n    os: WINDOWS\n")
    with pytest.raises(FleetError, match=r'instances\[0\] \(line 3\): duplicate key "os"'):
        load_fleet(path)


def test_json_fleet(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    path.write_text(json.dumps({"instances": [_instance()], "generate": _gen(count=3)}))
    assert len(load_fleet(path)) == 4
    path.write_text("{not json")
    with pytest.raises(FleetError, match="not valid JSON"):
        load_fleet(path)


def _spec(**overrides: Any) -> GeneratorSpec:
    base: dict[str, Any] = {
        "count": 2000,
        "seed": 42,
        "patch_groups": {"web-prod": 3, "db-prod": 1},
        "schedules": {"cron(0 2 ? * SUN *)": 2, "sun-0200": 1},
        "os": {"AMAZON_LINUX_2023": 5, "WINDOWS": 2, "UBUNTU": 2, "REDHAT_ENTERPRISE_LINUX": 1},
        "owners": {"team-web": 1, "team-data": 1},
        "patch_group_key": {"Patch Group": 3, "PatchGroup": 1},
        "bad_tag_share": 0.05,
        "stopped_share": 0.03,
        "unmanaged_share": 0.03,
        "connection_lost_share": 0.02,
    }
    base.update(overrides)
    return GeneratorSpec(**base)


def test_generator_is_deterministic() -> None:
    assert generate_fleet(_spec()) == generate_fleet(_spec())
    assert generate_fleet(_spec()) != generate_fleet(_spec(seed=43))


def test_generator_counts_and_shares() -> None:
    generated = generate_fleet(_spec())
    assert len(generated) == 2000
    assert len({i.tags["Name"] for i in generated}) == 2000
    assert generated[0].tags["Name"] == "gen-0001"
    assert sum(i.state == "stopped" for i in generated) == 60
    unmanaged = [i for i in generated if i.ssm == "unmanaged"]
    assert len(unmanaged) == 60
    assert sum(i.instance_profile == "none" for i in unmanaged) == 30
    assert all(i.instance_profile == "ssm" for i in generated if i.ssm != "unmanaged")
    assert sum(i.ssm == "connection_lost" for i in generated) == 40
    oses = Counter(i.os for i in generated)
    assert abs(oses["AMAZON_LINUX_2023"] / 2000 - 0.5) < 0.05
    assert abs(oses["WINDOWS"] / 2000 - 0.2) < 0.05
    assert all("Owner" in i.tags for i in generated)

    def clean(i: FleetInstance) -> bool:
        keys = set(i.tags) & set(fleet.PATCH_GROUP_KEYS)
        return (
            len(keys) == 1
            and i.tags.get("Maintenance Window") in {"cron(0 2 ? * SUN *)", "sun-0200"}
            and i.tags[next(iter(keys))] in {"web-prod", "db-prod"}
        )

    dirty = sum(not clean(i) for i in generated)
    assert dirty == 100  # 5 % exactly: every planted problem breaks one of the checks above
    keys = Counter(k for i in generated for k in i.tags if k in fleet.PATCH_GROUP_KEYS)
    assert 0.15 < keys["PatchGroup"] / sum(keys.values()) < 0.35


def test_generator_without_owners_or_problems() -> None:
    generated = generate_fleet(_spec(owners={}, bad_tag_share=0, count=50))
    assert all(
        set(i.tags) == {"Name", "Patch Group", "Maintenance Window"} or "PatchGroup" in i.tags for i in generated
    )
    assert all("Owner" not in i.tags for i in generated)


def test_demo_fleet_loads() -> None:
    demo = load_fleet(REPO / "fleets" / "demo.yaml")
    assert 300 <= len(demo) <= 400
    assert all("Name" in i.tags and "Owner" in i.tags for i in demo)
    assert len({i.os for i in demo}) >= 4
    assert {"stopped"} <= {i.state for i in demo}
    assert {"online", "connection_lost", "unmanaged"} <= {i.ssm for i in demo}
    assert any(i.instance_profile == "none" for i in demo)
    assert any("Patch Group" in i.tags and "PatchGroup" in i.tags for i in demo)
    keys = {k for i in demo for k in i.tags}
    assert {"Patch-Group", "patch group"} <= keys
    schedules = {i.tags.get("Maintenance Window") for i in demo}
    assert {"cron(0 2 * * SUN *)", "rate(1 days)", "cron(0 25 ? * SUN *)", "sunday-2am"} <= schedules
    assert {"sun-0200", "tue-2330"} <= schedules


def test_seed_small_fleet() -> None:
    instances = [
        FleetInstance(tags={"Name": "web-1", "Patch Group": "web"}, os="AMAZON_LINUX_2023"),
        FleetInstance(tags={"Name": "win-1", "PatchGroup": "app"}, os="WINDOWS", ssm="connection_lost"),
        FleetInstance(tags={"Name": "stopped-1"}, os="UBUNTU", state="stopped"),
        FleetInstance(tags={"Name": "ghost-1"}, os="REDHAT_ENTERPRISE_LINUX", ssm="unmanaged", instance_profile="none"),
    ]
    with mock_aws():
        ids = fleet.seed_fleet(instances, region=REGION)
        assert len(ids) == 4
        ec2 = boto3.client("ec2", region_name=REGION)
        found = {
            i["InstanceId"]: i for r in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]
        }
        for instance_id, spec in zip(ids, instances, strict=True):
            described = found[instance_id]
            assert {t["Key"]: t["Value"] for t in described["Tags"]} == dict(spec.tags)
            assert described["State"]["Name"] == spec.state
            has_profile = "IamInstanceProfile" in described
            assert has_profile == (spec.instance_profile == "ssm")
            if has_profile:
                assert described["IamInstanceProfile"]["Arn"].endswith("/" + fleet.INSTANCE_PROFILE_NAME)
        assert found[ids[1]].get("Platform") == "windows"
        assert "Platform" not in found[ids[0]]

        ssm = boto3.client("ssm", region_name=REGION)
        info = {i["InstanceId"]: i for i in ssm.describe_instance_information()["InstanceInformationList"]}
        assert set(info) == set(ids[:3])
        assert info[ids[0]]["PingStatus"] == "Online"
        assert info[ids[0]]["PlatformName"] == "Amazon Linux"
        assert info[ids[0]]["IPAddress"] == found[ids[0]]["PrivateIpAddress"]
        assert info[ids[1]]["PingStatus"] == "ConnectionLost"
        assert info[ids[1]]["PlatformType"] == "Windows"
        assert info[ids[2]]["PingStatus"] == "ConnectionLost"  # stopped: the agent does not ping
        assert info[ids[2]]["PlatformVersion"] == "22.04"

        # Seeding again in the same account reuses the instance profile.
        more = fleet.seed_fleet(instances[:1], region=REGION)
        assert len(more) == 1 and more[0] not in ids


def test_seed_fleet_generated_states_match() -> None:
    generated = generate_fleet(_spec(count=200))
    with mock_aws():
        ids = fleet.seed_fleet(generated, region=REGION)
        ec2 = boto3.client("ec2", region_name=REGION)
        stopped = {
            i["InstanceId"]
            for page in ec2.get_paginator("describe_instances").paginate(
                Filters=[{"Name": "instance-state-name", "Values": ["stopped"]}]
            )
            for r in page["Reservations"]
            for i in r["Instances"]
        }
        assert stopped == {iid for iid, g in zip(ids, generated, strict=True) if g.state == "stopped"}
        ssm = boto3.client("ssm", region_name=REGION)
        managed = [
            i
            for page in ssm.get_paginator("describe_instance_information").paginate()
            for i in page["InstanceInformationList"]
        ]
        assert len(managed) == sum(g.ssm != "unmanaged" for g in generated)


def test_seeding_leaves_moto_backend_unpatched() -> None:
    from moto.ec2.models import ec2_backends

    with mock_aws():
        fleet.seed_fleet([FleetInstance(tags={"Name": "a"}, os="UBUNTU")], region=REGION)
        backend = ec2_backends["123456789012"][REGION]
        assert "describe_images" not in vars(backend)
        assert "get_instance" not in vars(backend)


@pytest.mark.parametrize("written", ["2026-02-30", "2026-02-28", "2026-02-28T25:00:00"])
def test_a_tag_value_yaml_would_read_as_a_date_is_the_text_written(tmp_path: Path, written: str) -> None:
    # PyYAML turned 2026-02-30 into a ValueError traceback, and 2026-02-28 into a date object.
    path = tmp_path / "fleet.yaml"
    path.write_text(f"instances:\n  - os: UBUNTU\n    tags: {{Name: box, Installed: {written}}}\n")
    (only,) = load_fleet(path)
    assert only.tags["Installed"] == written


def test_seeding_refuses_a_tag_ec2_could_not_describe_back() -> None:
    bad = fleet.FleetInstance(tags={"Name": "web\x01one"}, os="UBUNTU")
    with mock_aws(), pytest.raises(fleet.FleetError, match="U\\+0001"):
        fleet.seed_fleet([bad], region=REGION)
