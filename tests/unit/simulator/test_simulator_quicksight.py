"""QuickSight in the simulated account: datasets and dashboards kept whole, a dashboard whose datasets do
not exist created as failed (DATA_SET_NOT_FOUND), IAM from the SAR, and the template's dashboard
deployed with QuickSightPrincipalArn set."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tagpatch_local import simulator
from tagpatch_local.runner import SimulatedAccount
from tagpatch_local.template import Template, TemplateError

ACCOUNT = "123456789012"
REGION = "us-east-1"
TEMPLATE = Path(__file__).resolve().parents[3] / "template.yaml"
ROOT = {"region_name": REGION, "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
TABLE = {
    "latest": {
        "RelationalTable": {
            "DataSourceArn": f"arn:aws:quicksight:{REGION}:{ACCOUNT}:datasource/src",
            "Catalog": "AwsDataCatalog",
            "Schema": "db",
            "Name": "latest",
            "InputColumns": [{"Name": "owner", "Type": "STRING"}],
        }
    }
}


def definition(*dataset_arns: str) -> dict[str, Any]:
    return {
        "DataSetIdentifierDeclarations": [
            {"Identifier": f"ds{index}", "DataSetArn": arn} for index, arn in enumerate(dataset_arns)
        ],
        "Sheets": [{"SheetId": "one", "Name": "One"}],
    }


@pytest.fixture
def quicksight() -> Iterator[Any]:
    with mock_aws():
        simulator.install()
        client = boto3.client("quicksight", **ROOT)
        client.create_data_source(
            AwsAccountId=ACCOUNT, DataSourceId="src", Name="src", Type="ATHENA",
            DataSourceParameters={"AthenaParameters": {"WorkGroup": "primary"}},
        )  # fmt: skip
        yield client


def create_data_set(client: Any, data_set_id: str = "latest") -> str:
    arn: str = client.create_data_set(
        AwsAccountId=ACCOUNT, DataSetId=data_set_id, Name=data_set_id, PhysicalTableMap=TABLE, ImportMode="DIRECT_QUERY"
    )["Arn"]
    return arn


def test_a_data_set_has_quicksights_arn_and_is_described_whole(quicksight: Any) -> None:
    arn = create_data_set(quicksight)
    assert arn == f"arn:aws:quicksight:{REGION}:{ACCOUNT}:dataset/latest"
    described = quicksight.describe_data_set(AwsAccountId=ACCOUNT, DataSetId="latest")["DataSet"]
    assert described["Arn"] == arn
    assert described["PhysicalTableMap"] == TABLE
    assert described["ImportMode"] == "DIRECT_QUERY"


def test_describing_a_data_set_that_does_not_exist_is_resource_not_found(quicksight: Any) -> None:
    with pytest.raises(ClientError) as caught:
        quicksight.describe_data_set(AwsAccountId=ACCOUNT, DataSetId="nothing")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_dashboard_is_kept_with_its_definition_and_listed(quicksight: Any) -> None:
    arn = create_data_set(quicksight)
    created = quicksight.create_dashboard(AwsAccountId=ACCOUNT, DashboardId="d", Name="D", Definition=definition(arn))
    assert created["Arn"] == f"arn:aws:quicksight:{REGION}:{ACCOUNT}:dashboard/d"
    version = quicksight.describe_dashboard(AwsAccountId=ACCOUNT, DashboardId="d")["Dashboard"]["Version"]
    assert (version["Status"], version.get("Errors"), version["DataSetArns"]) == ("CREATION_SUCCESSFUL", None, [arn])
    described = quicksight.describe_dashboard_definition(AwsAccountId=ACCOUNT, DashboardId="d")
    assert described["Definition"] == definition(arn)
    assert described["ResourceStatus"] == "CREATION_SUCCESSFUL"
    listed = quicksight.list_dashboards(AwsAccountId=ACCOUNT)["DashboardSummaryList"]
    assert [summary["DashboardId"] for summary in listed] == ["d"]


def test_a_dashboard_whose_data_set_does_not_exist_fails_with_data_set_not_found(quicksight: Any) -> None:
    present = create_data_set(quicksight)
    missing = f"arn:aws:quicksight:{REGION}:{ACCOUNT}:dataset/gone"
    quicksight.create_dashboard(
        AwsAccountId=ACCOUNT, DashboardId="d", Name="D", Definition=definition(present, missing)
    )
    version = quicksight.describe_dashboard(AwsAccountId=ACCOUNT, DashboardId="d")["Dashboard"]["Version"]
    assert version["Status"] == "CREATION_FAILED"
    assert [error["Type"] for error in version["Errors"]] == ["DATA_SET_NOT_FOUND"]
    assert missing in version["Errors"][0]["Message"]
    described = quicksight.describe_dashboard_definition(AwsAccountId=ACCOUNT, DashboardId="d")
    assert (described["ResourceStatus"], described["Errors"]) == ("CREATION_FAILED", version["Errors"])


def test_a_dashboard_id_that_exists_is_refused(quicksight: Any) -> None:
    arn = create_data_set(quicksight)
    quicksight.create_dashboard(AwsAccountId=ACCOUNT, DashboardId="d", Name="D", Definition=definition(arn))
    with pytest.raises(ClientError) as caught:
        quicksight.create_dashboard(AwsAccountId=ACCOUNT, DashboardId="d", Name="Other", Definition=definition(arn))
    assert caught.value.response["Error"]["Code"] == "ResourceExistsException"
    assert quicksight.describe_dashboard(AwsAccountId=ACCOUNT, DashboardId="d")["Dashboard"]["Name"] == "D"


def role_client(policy: list[dict[str, Any]]) -> Any:
    iam, sts = boto3.client("iam", **ROOT), boto3.client("sts", **ROOT)
    arn = iam.create_role(RoleName="viewer", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    iam.put_role_policy(
        RoleName="viewer", PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": policy})
    )
    credentials = sts.assume_role(RoleArn=arn, RoleSessionName="fn")["Credentials"]
    return boto3.client(
        "quicksight",
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def test_iam_authorises_quicksight_calls_on_the_dashboard_the_uri_names(quicksight: Any) -> None:
    arn = create_data_set(quicksight)
    mine = f"arn:aws:quicksight:{REGION}:{ACCOUNT}:dashboard/mine"
    client = role_client(
        [
            {
                "Effect": "Allow",
                "Action": ["quicksight:CreateDashboard", "quicksight:DescribeDashboard"],
                "Resource": mine,
            }
        ]
    )
    client.create_dashboard(AwsAccountId=ACCOUNT, DashboardId="mine", Name="Mine", Definition=definition(arn))
    # DescribeDashboardDefinition is authorised as quicksight:DescribeDashboard (the SAR has no action of its own).
    assert client.describe_dashboard_definition(AwsAccountId=ACCOUNT, DashboardId="mine")["Name"] == "Mine"
    with pytest.raises(ClientError) as caught:
        client.create_dashboard(AwsAccountId=ACCOUNT, DashboardId="other", Name="Other", Definition=definition(arn))
    error = caught.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert "quicksight:CreateDashboard" in error["Message"]
    assert f"arn:aws:quicksight:{REGION}:{ACCOUNT}:dashboard/other" in error["Message"]
    with pytest.raises(ClientError) as listing:
        client.list_dashboards(AwsAccountId=ACCOUNT)  # authorised on dashboard/*, which the role lacks
    assert listing.value.response["Error"]["Code"] == "AccessDeniedException"


def test_iam_authorises_create_data_set_on_the_data_source_it_reads(quicksight: Any) -> None:
    source = f"arn:aws:quicksight:{REGION}:{ACCOUNT}:datasource/src"
    denied = role_client([{"Effect": "Allow", "Action": "quicksight:CreateDataSet", "Resource": f"{source}-other"}])
    with pytest.raises(ClientError) as caught:
        create_data_set(denied)
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    assert source in caught.value.response["Error"]["Message"]


# -- the template's dashboard, deployed ----------------------------------------------------------------


@pytest.mark.slow  # deploys the whole stack (~2 s)
def test_the_simulated_account_creates_the_templates_dashboard_over_its_datasets() -> None:
    principal = f"arn:aws:quicksight:{REGION}:{ACCOUNT}:group/default/governance"
    template = Template.load(TEMPLATE)
    with SimulatedAccount(TEMPLATE, parameter_overrides={"QuickSightPrincipalArn": principal}) as account:
        client = account.client("quicksight")
        dashboard_id = account.physical_id("ComplianceDashboard")
        described = client.describe_dashboard_definition(AwsAccountId=ACCOUNT, DashboardId=dashboard_id)
        assert described["ResourceStatus"] == "CREATION_SUCCESSFUL"
        version = client.describe_dashboard(AwsAccountId=ACCOUNT, DashboardId=dashboard_id)["Dashboard"]["Version"]
        assert "Errors" not in version
        data_sets = {
            logical_id: client.describe_data_set(AwsAccountId=ACCOUNT, DataSetId=account.physical_id(logical_id))[
                "DataSet"
            ]
            for logical_id in template.resources
            if template.resource_type(logical_id) == "AWS::QuickSight::DataSet"
        }
        assert sorted(version["DataSetArns"]) == sorted(data_set["Arn"] for data_set in data_sets.values())
        stored_visuals = [
            next(iter(visual.values()))["VisualId"]
            for sheet in described["Definition"]["Sheets"]
            for visual in sheet["Visuals"]
        ]
        template_visuals = [
            next(iter(visual.values()))["VisualId"]
            for sheet in template.resources["ComplianceDashboard"]["Properties"]["Definition"]["Sheets"]
            for visual in sheet["Visuals"]
        ]
        assert stored_visuals == template_visuals
        listed = client.list_dashboards(AwsAccountId=ACCOUNT)["DashboardSummaryList"]
        assert [summary["DashboardId"] for summary in listed] == [dashboard_id]


def test_the_deploy_fails_like_cloudformation_when_the_dashboard_names_a_data_set_that_does_not_exist(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    document = copy.deepcopy(dict(Template.load(TEMPLATE).document))
    declarations = document["Resources"]["ComplianceDashboard"]["Properties"]["Definition"][
        "DataSetIdentifierDeclarations"
    ]
    declarations[0]["DataSetArn"] = {"Fn::Sub": "arn:aws:quicksight:${AWS::Region}:${AWS::AccountId}:dataset/gone"}
    monkeypatch.setattr(Template, "load", classmethod(lambda cls, path: Template(TEMPLATE.parent, document)))
    principal = f"arn:aws:quicksight:{REGION}:{ACCOUNT}:group/default/governance"
    with (
        pytest.raises(TemplateError, match=r"ComplianceDashboard: .*CREATION_FAILED.*DATA_SET_NOT_FOUND.*dataset/gone"),
        SimulatedAccount(TEMPLATE, parameter_overrides={"QuickSightPrincipalArn": principal}),
    ):
        pass


def test_without_a_principal_the_simulated_account_has_no_quicksight() -> None:
    with SimulatedAccount(TEMPLATE) as account:
        assert account.client("quicksight").list_dashboards(AwsAccountId=ACCOUNT)["DashboardSummaryList"] == []
