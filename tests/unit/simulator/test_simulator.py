from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.serialize import TimestampSerializer
from moto.ssm.responses import SimpleSystemManagerResponse

from tagpatch_local import simulator

ACCOUNT = "123456789012"
REGION = "us-east-1"


def _register(n: int, *, start: int = 0, **overrides: Any) -> list[str]:
    return _register_ids([f"i-{i:017x}" for i in range(start, start + n)], **overrides)


def _register_ids(ids: list[str], **overrides: Any) -> list[str]:
    for instance_id in ids:
        kwargs: dict[str, Any] = {
            "ping_status": "Online",
            "platform_type": "Linux",
            "platform_name": "Amazon Linux",
            "platform_version": "2023",
            "ip_address": "10.0.0.1",
            "computer_name": "ip-10-0-0-1.ec2.internal",
        }
        kwargs.update(overrides)
        simulator.register_managed_instance(ACCOUNT, REGION, instance_id, **kwargs)
    return ids


def _all_ids(ssm: Any, **kwargs: Any) -> list[str]:
    ids: list[str] = []
    while True:
        page = ssm.describe_instance_information(**kwargs)
        ids.extend(item["InstanceId"] for item in page["InstanceInformationList"])
        if "NextToken" not in page:
            return ids
        kwargs["NextToken"] = page["NextToken"]


def test_pagination_returns_every_instance_once_in_order(ssm: Any) -> None:
    # Register out of order: output must still be sorted by instance id.
    expected = sorted(_register(60, start=60) + _register(60))
    pages = []
    kwargs: dict[str, Any] = {"MaxResults": 50}
    while True:
        page = ssm.describe_instance_information(**kwargs)
        pages.append([i["InstanceId"] for i in page["InstanceInformationList"]])
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]
    assert [len(p) for p in pages] == [50, 50, 20]
    assert [i for p in pages for i in p] == expected


def test_exact_page_boundary_hands_out_no_empty_page(ssm: Any) -> None:
    _register(50)
    page = ssm.describe_instance_information(MaxResults=50)
    assert len(page["InstanceInformationList"]) == 50
    assert "NextToken" not in page


def test_paginator_and_item_fields(ssm: Any) -> None:
    _register(7)
    items = [
        item
        for page in ssm.get_paginator("describe_instance_information").paginate(PaginationConfig={"PageSize": 5})
        for item in page["InstanceInformationList"]
    ]
    assert len(items) == 7
    item = items[0]
    assert item["ResourceType"] == "EC2Instance"
    assert item["SourceType"] == "AWS::EC2::Instance"
    assert item["SourceId"] == item["InstanceId"]
    assert item["PlatformName"] == "Amazon Linux"
    assert item["IPAddress"] == "10.0.0.1"
    assert isinstance(item["LastPingDateTime"], datetime)


def test_filters(ssm: Any) -> None:
    linux = _register(3)
    windows = _register(
        2,
        start=10,
        platform_type="Windows",
        platform_name="Microsoft Windows Server 2022 Datacenter",
        platform_version="10.0.20348",
    )
    lost = _register(2, start=20, ping_status="ConnectionLost")
    assert _all_ids(ssm, Filters=[{"Key": "PlatformTypes", "Values": ["Windows"]}]) == windows
    assert _all_ids(ssm, Filters=[{"Key": "PingStatus", "Values": ["ConnectionLost"]}]) == lost
    assert _all_ids(ssm, Filters=[{"Key": "InstanceIds", "Values": [linux[1], windows[0]]}]) == [
        linux[1],
        windows[0],
    ]
    # Filters AND together.
    both = [
        {"Key": "PlatformTypes", "Values": ["Linux"]},
        {"Key": "PingStatus", "Values": ["Online"]},
    ]
    assert _all_ids(ssm, Filters=both) == linux
    legacy = [{"key": "PingStatus", "valueSet": ["Online"]}, {"key": "PlatformTypes", "valueSet": ["Linux"]}]
    assert _all_ids(ssm, InstanceInformationFilterList=legacy) == linux
    assert _all_ids(ssm, Filters=[{"Key": "InstanceIds", "Values": ["i-0123456789abcdef0"]}]) == []


def test_tag_filters_read_ec2_tags(ssm: Any) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    image_id = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    reservation = ec2.run_instances(
        ImageId=image_id,
        MinCount=2,
        MaxCount=2,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Patch Group", "Value": "web"}]}],
    )
    tagged = sorted(i["InstanceId"] for i in reservation["Instances"])
    _register(2)
    _register_ids(tagged, platform_name="Ubuntu", platform_version="22.04")
    assert _all_ids(ssm, Filters=[{"Key": "tag:Patch Group", "Values": ["web"]}]) == tagged
    assert _all_ids(ssm, Filters=[{"Key": "tag-key", "Values": ["Patch Group"]}]) == tagged


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"MaxResults": 51}, "ValidationException"),
        ({"MaxResults": 1000}, "ValidationException"),
        ({"NextToken": "not-a-token"}, "InvalidNextToken"),
        ({"Filters": [{"Key": "Colour", "Values": ["red"]}]}, "InvalidFilterKey"),
        ({"InstanceInformationFilterList": [{"key": "tag:x", "valueSet": ["y"]}]}, "InvalidFilterKey"),
        (
            {"Filters": [{"Key": "PingStatus", "Values": ["Sleeping"]}]},
            "InvalidInstanceInformationFilterValue",
        ),
        (
            {
                "Filters": [{"Key": "PingStatus", "Values": ["Online"]}],
                "InstanceInformationFilterList": [{"key": "PingStatus", "valueSet": ["Online"]}],
            },
            "ValidationException",
        ),
    ],
)
def test_service_errors(ssm: Any, kwargs: dict[str, Any], code: str) -> None:
    _register(1)
    with pytest.raises(ClientError) as info:
        ssm.describe_instance_information(**kwargs)
    assert info.value.response["Error"]["Code"] == code


def test_max_results_error_message(ssm: Any) -> None:
    with pytest.raises(ClientError, match="less than or equal to 50"):
        ssm.describe_instance_information(MaxResults=51)


def test_max_results_below_minimum_rejected_client_side(ssm: Any) -> None:
    # botocore checks minimums itself, so the request never reaches the simulator.
    from botocore.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        ssm.describe_instance_information(MaxResults=4)


def test_validate_output_accepts_good_and_datetime() -> None:
    good = {
        "InstanceInformationList": [
            {
                "InstanceId": "i-0123456789abcdef0",
                "PingStatus": "Online",
                "LastPingDateTime": datetime.now(UTC),
                "ResourceType": "EC2Instance",
            }
        ]
    }
    simulator.validate_output("ssm", "DescribeInstanceInformation", good)


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ({"InstanceId": "i-0123456789abcdef0", "PingStatus": "Sleeping"}, "PingStatus"),
        ({"InstanceId": "not-an-id"}, "InstanceId"),
        ({"InstanceId": "i-0123456789abcdef0", "IsLatestVersion": "yes"}, "IsLatestVersion"),
        ({"InstanceId": "i-0123456789abcdef0", "Colour": "red"}, "Colour"),
        ({"InstanceId": "i-0123456789abcdef0", "LastPingDateTime": object()}, "LastPingDateTime"),
        ({"InstanceId": "i-0123456789abcdef0", "IamRole": "r" * 65}, "IamRole"),
    ],
)
def test_validate_output_rejects_bad_fake(item: dict[str, Any], fragment: str) -> None:
    with pytest.raises(simulator.FakeOutputError, match=fragment):
        simulator.validate_output("ssm", "DescribeInstanceInformation", {"InstanceInformationList": [item]})


def test_bad_fake_output_fails_loudly_through_boto3(ssm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _register(1)
    state = simulator.simulator_state(ACCOUNT, REGION)
    node = next(iter(state.managed_instances.values()))
    monkeypatch.setitem(state.managed_instances, node.instance_id, dataclasses.replace(node, agent_version="x"))
    with pytest.raises(simulator.FakeOutputError, match="AgentVersion"):
        ssm.describe_instance_information()


def test_install_is_idempotent() -> None:
    name = "describe_instance_information"
    simulator.install()
    method = getattr(SimpleSystemManagerResponse, name)
    simulator.install()
    assert getattr(SimpleSystemManagerResponse, name) is method
    assert "ssm:DescribeInstanceInformation" in simulator.installed_operations()


def test_install_refuses_to_shadow_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    simulator.install()

    def describe_instance_information(self: Any) -> None:  # what a future moto might ship
        return None

    monkeypatch.setattr(SimpleSystemManagerResponse, "describe_instance_information", describe_instance_information)
    with pytest.raises(simulator.MotoImplementsOperationError, match="moto now implements"):
        simulator.install()


def test_state_resets_with_mock() -> None:
    simulator.install()
    with mock_aws():
        _register(3)
        client = boto3.client("ssm", region_name=REGION)
        assert len(client.describe_instance_information()["InstanceInformationList"]) == 3
    with mock_aws():
        client = boto3.client("ssm", region_name=REGION)
        assert client.describe_instance_information()["InstanceInformationList"] == []
        assert dict(simulator.managed_instances(ACCOUNT, REGION)) == {}


def test_set_ping_status_and_deregister(ssm: Any) -> None:
    ids = _register(2)
    simulator.set_ping_status(ACCOUNT, REGION, ids[0], "ConnectionLost")
    assert _all_ids(ssm, Filters=[{"Key": "PingStatus", "Values": ["ConnectionLost"]}]) == [ids[0]]
    simulator.deregister_managed_instance(ACCOUNT, REGION, ids[1])
    assert _all_ids(ssm) == [ids[0]]


def test_register_rejects_bad_enums() -> None:
    with mock_aws(), pytest.raises(ValueError, match="ping_status"):
        simulator.register_managed_instance(
            ACCOUNT,
            REGION,
            "i-0123456789abcdef0",
            ping_status="Up",  # type: ignore[arg-type]
            platform_type="Linux",
            platform_name="x",
            platform_version="1",
        )


def test_pages_over_a_large_fleet_see_every_node_once(ssm: Any) -> None:
    # Its speed is measured in benchmarks/ (Discovery's pages), not timed here.
    registered = _register(2000)
    found = _all_ids(ssm, MaxResults=50)
    assert found == sorted(registered) and len(set(found)) == 2000


def test_fast_tag_lookup_matches_moto(ssm: Any) -> None:
    from moto.ec2.models import ec2_backends

    ec2 = boto3.client("ec2", region_name=REGION)
    image_id = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    tags = [{"Key": "Name", "Value": "a"}, {"Key": "Patch Group", "Value": "web"}]
    reservation = ec2.run_instances(
        ImageId=image_id,
        MinCount=2,
        MaxCount=2,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )
    backend = ec2_backends[ACCOUNT][REGION]
    instance_id = reservation["Instances"][0]["InstanceId"]
    fast = backend.describe_tags(filters={"resource-id": [instance_id]})
    # A wildcard takes moto's own (scanning) path: same rows either way.
    slow = backend.describe_tags(filters={"resource-id": [instance_id[:-1] + "?"]})
    assert fast == slow
    assert [row["key"] for row in fast] == ["Name", "Patch Group"]
    assert fast[0]["resource_type"] == "instance"


@pytest.mark.parametrize(
    ("filters", "page_size"),
    [
        ([], 5),
        ([{"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}], 5),
        ([{"Name": "instance-state-name", "Values": ["stopped"]}], 1000),
        ([{"Name": "tag:Patch Group", "Values": ["web"]}], 6),
    ],
)
def test_paged_describe_instances_answers_as_moto_does(
    ssm: Any, monkeypatch: pytest.MonkeyPatch, filters: list[dict[str, Any]], page_size: int
) -> None:
    from moto.ec2.responses.instances import InstanceResponse

    ec2 = boto3.client("ec2", region_name=REGION)
    image_id = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    for count, group in ((3, "web"), (1, "db"), (9, "web"), (2, "db"), (4, "web")):  # multi-instance reservations
        ids = [
            i["InstanceId"]
            for i in ec2.run_instances(
                ImageId=image_id,
                MinCount=count,
                MaxCount=count,
                TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Patch Group", "Value": group}]}],
            )["Instances"]
        ]
        ec2.stop_instances(InstanceIds=ids[::2])

    def pages() -> list[list[tuple[str, list[str]]]]:
        found = []
        for page in ec2.get_paginator("describe_instances").paginate(
            Filters=filters, PaginationConfig={"PageSize": page_size}
        ):
            found.append(
                [(r["ReservationId"], [i["InstanceId"] for i in r["Instances"]]) for r in page["Reservations"]]
            )
        return found

    paged = pages()
    monkeypatch.setattr(InstanceResponse, "describe_instances", InstanceResponse.describe_instances.__wrapped__)  # type: ignore[attr-defined]
    assert paged == pages()
    assert sum(len(ids) for page in paged for _, ids in page) > 0


def test_remembered_attribute_names_serialise_exactly_as_moto_does(ssm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    from moto.core.serialize import AttributePicker

    ec2 = boto3.client("ec2", region_name=REGION)
    image_id = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ids = [
        i["InstanceId"]
        for i in ec2.run_instances(
            ImageId=image_id,
            MinCount=4,
            MaxCount=4,
            TagSpecifications=[
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": "Patch Group", "Value": "web"}, {"Key": "Name", "Value": "a"}],
                }
            ],
        )["Instances"]
    ]
    ec2.stop_instances(InstanceIds=ids[:1])
    _register_ids(ids[1:], platform_name="Ubuntu", platform_version="22.04")
    ssm.create_maintenance_window(
        Name="web-sunday", Schedule="cron(0 2 ? * SUN *)", Duration=3, Cutoff=1, AllowUnassociatedTargets=False
    )
    bodies: list[bytes] = []

    def keep_body(http_response: Any, **_: Any) -> None:
        bodies.append(re.sub(rb"<requestId>[^<]*</requestId>", b"", http_response.content))

    for client in (ec2, ssm):
        client.meta.events.register("after-call.*.*", keep_body)

    def calls() -> list[bytes]:
        bodies.clear()
        ec2.describe_instances()
        ec2.describe_instances(InstanceIds=ids[:2])
        ec2.describe_tags()
        ssm.describe_instance_information()
        ssm.describe_maintenance_windows()
        ssm.describe_patch_baselines()
        return list(bodies)

    remembered = calls()
    assert len(remembered) == 6 and all(remembered)
    monkeypatch.setattr(AttributePicker, "__call__", AttributePicker.__call__.__wrapped__)  # type: ignore[attr-defined]
    assert calls() == remembered


@pytest.mark.slow  # launches and serialises every kind of instance twice, through moto's writer and ours (~2 s)
def test_fast_ec2_serialiser_writes_exactly_what_moto_does(ssm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The planned structures and the XML writer (`simulator/serialization.py`) against moto's own path."""
    import re

    from moto.core.serialize import EC2Serializer

    ec2 = boto3.client("ec2", region_name=REGION)
    image_id = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    windows_image = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "platform", "Values": ["windows"]}])[
        "Images"
    ]
    iam = boto3.client("iam", region_name=REGION)
    iam.create_role(RoleName="node", AssumeRolePolicyDocument="{}")
    iam.create_instance_profile(InstanceProfileName="node")
    iam.add_role_to_instance_profile(InstanceProfileName="node", RoleName="node")
    odd = "a & b <c> \"d\" 'e' é ✓"
    launches: list[dict[str, Any]] = [
        {"MinCount": 3, "MaxCount": 3, "Tags": [("Patch Group", "web"), ("Name", odd)]},
        {"MinCount": 1, "MaxCount": 1, "Tags": [("Patch Group", ""), ("Owner", "team-a")]},
        {"MinCount": 2, "MaxCount": 2, "Tags": [], "IamInstanceProfile": {"Name": "node"}},
        {"MinCount": 4, "MaxCount": 4, "Tags": [("PatchGroup", "db")], "Windows": True},
        {"MinCount": 1, "MaxCount": 1, "Tags": [(odd, odd)], "KeyName": None},
    ]
    ids: list[str] = []
    for launch in launches:
        kwargs: dict[str, Any] = {
            "ImageId": windows_image[0]["ImageId"] if launch.get("Windows") and windows_image else image_id,
            "MinCount": launch["MinCount"],
            "MaxCount": launch["MaxCount"],
        }
        if launch["Tags"]:
            kwargs["TagSpecifications"] = [
                {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in launch["Tags"]]}
            ]
        if "IamInstanceProfile" in launch:
            kwargs["IamInstanceProfile"] = launch["IamInstanceProfile"]
        ids.extend(i["InstanceId"] for i in ec2.run_instances(**kwargs)["Instances"])
    ec2.stop_instances(InstanceIds=ids[::3])
    ec2.terminate_instances(InstanceIds=ids[1:2])
    bodies: list[bytes] = []

    def keep_body(http_response: Any, **_: Any) -> None:
        bodies.append(re.sub(rb"<requestId>[^<]*</requestId>", b"", http_response.content))

    ec2.meta.events.register("after-call.*.*", keep_body)
    live = [{"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]

    def calls() -> list[bytes]:
        bodies.clear()
        for page_size in (5, 6, 1000):
            for filters in ([], live, [{"Name": "tag:Patch Group", "Values": ["web", ""]}]):
                for _ in ec2.get_paginator("describe_instances").paginate(
                    Filters=filters, PaginationConfig={"PageSize": page_size}
                ):
                    pass
        ec2.describe_instances(Filters=[{"Name": "tag:Patch Group", "Values": ["nobody"]}])  # empty
        ec2.describe_instances(InstanceIds=ids[:2])
        ec2.describe_instance_status(IncludeAllInstances=True)
        ec2.describe_tags()
        ec2.describe_images(Owners=["amazon"])
        ec2.describe_iam_instance_profile_associations()
        for code in ("NotAnInstanceId", "i-00000000000000000"):  # errors take the same path
            with pytest.raises(ClientError):
                ec2.describe_instances(InstanceIds=[code])
        return list(bodies)

    fast = calls()
    assert len(fast) > 12 and all(fast)
    assert any(b"<iamInstanceProfile>" in body for body in fast)
    assert any(b"a &amp; b &lt;c&gt;" in body for body in fast)
    for name in ("_serialize_body", "_serialize_type_structure"):
        monkeypatch.setattr(EC2Serializer, name, getattr(EC2Serializer, name).__wrapped__)
    assert calls() == fast
    convert = TimestampSerializer._convert_timestamp_to_str
    monkeypatch.setattr(TimestampSerializer, "_convert_timestamp_to_str", convert.__wrapped__)  # type: ignore[attr-defined]
    assert calls() == fast


@pytest.mark.parametrize("timestamp_format", ["iso8601", "iso8601_zeroed", "unixtimestamp", "rfc822"])
def test_remembered_timestamps_convert_as_moto_does(timestamp_format: str) -> None:
    import datetime as dt

    serializer = TimestampSerializer(timestamp_format)
    convert = TimestampSerializer._convert_timestamp_to_str
    values: list[Any] = [
        "2026-11-29T01:02:03Z",
        "2026-11-29T01:02:03.456789Z",
        "2026-11-29T01:02:03+02:00",
        "2026-11-29T01:02:03.000+0000",
        "2026-11-29T01:02:03",
        "2026-11-29",
        "1764378123",
        dt.datetime(2026, 11, 29, 1, 2, 3, tzinfo=dt.UTC),
        1764378123.5,
    ]
    for value in values * 2:  # the second round answers from what was remembered
        expected = convert.__wrapped__(serializer, value, timestamp_format)  # type: ignore[attr-defined]
        assert convert(serializer, value, timestamp_format) == expected
        assert type(convert(serializer, value, timestamp_format)) is type(expected)


@pytest.mark.parametrize(
    "body",
    [
        {"R": {"@xmlns": "http://x/", "a": "1 & <2>", "b": "", "c": None, "d": [], "e": ["x", "", None]}},
        {"R": {"a": {"b": {"c": [{"d": True, "e": False, "f": 3, "g": 2.5}, {}, {"h": {"#text": "t"}}]}}}},
        {"R": {"@xmlns": 'q"uote', "#text": "cdata", "a": "z"}},
        {"R": {}},
        {"R": None},
        {"R": {"a": [["nested"]]}},  # xmltodict writes str(list): the fallback does
        {"R": {"@attr": "x"}},
        {"R": {"a": ("t", "u")}},
        {"R": {"bad name": "x"}},
        {"R": "x", "S": "y"},
    ],
)
def test_fast_xml_writer_matches_xmltodict(body: dict[str, Any]) -> None:
    import xmltodict  # type: ignore[import-untyped]
    from moto.core.serialize import EC2Serializer

    from tagpatch_local.simulator.serialization import _Unusual, fast_unparse

    def reference() -> str:
        return str(xmltodict.unparse(body, full_document=True, pretty=False, short_empty_elements=True))

    try:
        fast = fast_unparse(body)
    except _Unusual:
        # Unusual bodies are left to xmltodict, through the patched serialiser too.
        serializer = EC2Serializer.__new__(EC2Serializer)
        serializer.pretty_print = False
        try:
            expected = reference()
        except ValueError as error:
            with pytest.raises(ValueError, match=re.escape(str(error))):
                serializer._serialize_body(body)
        else:
            assert serializer._serialize_body(body) == expected
        return
    assert fast == reference()


def test_planned_json_structures_serialise_exactly_as_moto_does(ssm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """SSM answers (moto's and the simulator's fakes) with planned structures against moto's own path."""
    from moto.core.serialize import JSONSerializer

    ids = _register(7)
    _register(3, start=7, ping_status="ConnectionLost", ip_address=None, computer_name=None)
    _register(2, start=10, platform_type="Windows", platform_name="Microsoft Windows Server 2022")
    window = ssm.create_maintenance_window(
        Name="web-sunday", Schedule="cron(0 2 ? * SUN *)", Duration=3, Cutoff=1, AllowUnassociatedTargets=False
    )["WindowId"]
    ssm.register_target_with_maintenance_window(
        WindowId=window, ResourceType="INSTANCE", Targets=[{"Key": "InstanceIds", "Values": ids[:2]}]
    )
    ssm.put_parameter(Name="/odd", Value='a & b <c> "d" é ✓', Type="String")
    ssm.create_patch_baseline(Name="web", OperatingSystem="AMAZON_LINUX_2023", Description="x")
    bodies: list[bytes] = []

    def keep_body(http_response: Any, **_: Any) -> None:
        bodies.append(http_response.content)

    ssm.meta.events.register("after-call.*.*", keep_body)

    def calls() -> list[bytes]:
        bodies.clear()
        for page_size in (5, 50):
            for filters in ([], [{"Key": "PingStatus", "Values": ["ConnectionLost"]}]):
                for _ in ssm.get_paginator("describe_instance_information").paginate(
                    Filters=filters, PaginationConfig={"PageSize": page_size}
                ):
                    pass
        ssm.describe_instance_information(Filters=[{"Key": "PlatformTypes", "Values": ["MacOS"]}])  # empty
        ssm.describe_maintenance_windows()
        ssm.describe_maintenance_window_targets(WindowId=window)
        ssm.get_parameter(Name="/odd")
        ssm.describe_patch_baselines()
        return list(bodies)

    planned = calls()
    assert len(planned) > 8 and all(planned)
    monkeypatch.setattr(
        JSONSerializer,
        "_serialize_type_structure",
        JSONSerializer._serialize_type_structure.__wrapped__,  # type: ignore[attr-defined]
    )
    assert calls() == planned
    convert = TimestampSerializer._convert_timestamp_to_str
    monkeypatch.setattr(TimestampSerializer, "_convert_timestamp_to_str", convert.__wrapped__)  # type: ignore[attr-defined]
    assert calls() == planned


def test_planned_lookups_read_the_instance_dict_only_where_getattr_would() -> None:
    """The generated writers look a name up in the instance's dict only when getattr could find it nowhere else."""
    from tagpatch_local.simulator.serialization import _read_from_instance_dict

    class Plain:
        kind = "class attribute"

        def __init__(self) -> None:
            self.own = 1

        @property
        def computed(self) -> int:
            return 2

    class Child(Plain):
        pass

    class Dynamic:
        def __getattr__(self, name: str) -> str:
            return name

    class Slotted:
        __slots__ = ("own",)

    child = _read_from_instance_dict(Child)
    assert child("own") and child("missing")
    assert not child("kind") and not child("computed") and not child("__init__")
    for cls in (Dynamic, Slotted, str, datetime):  # getattr is not a dict lookup for these
        assert not _read_from_instance_dict(cls)("own"), cls
    for name in ("own", "missing"):
        assert getattr(Child(), name, None) == Child().__dict__.get(name)
