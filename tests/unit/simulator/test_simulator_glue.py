"""Glue partitions in the simulated account: values checked against the table's keys (InvalidInputException,
per entry in BatchCreatePartition), AlreadyExists/EntityNotFound as Glue answers them, GetPartitions
paged by MaxResults, and IAM on the catalog, database and table ARNs the SAR requires."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tagpatch_local import simulator
from tagpatch_local.simulator.iam import Request, authorizations

ACCOUNT = "123456789012"
REGION = "us-east-1"
ROOT = {"region_name": REGION, "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
KEYS = [{"Name": "account_id", "Type": "string"}, {"Name": "region", "Type": "string"}]


def partition(*values: str) -> dict[str, Any]:
    return {"Values": list(values), "StorageDescriptor": {"Location": "s3://b/t/" + "/".join(values) + "/"}}


@pytest.fixture
def glue() -> Iterator[Any]:
    with mock_aws():
        simulator.install()
        client = boto3.client("glue", **ROOT)
        client.create_database(DatabaseInput={"Name": "db"})
        client.create_table(
            DatabaseName="db",
            TableInput={"Name": "t", "PartitionKeys": KEYS, "StorageDescriptor": {"Location": "s3://b/t/"}},
        )
        yield client


def code_of(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return str(caught.value.response["Error"]["Code"])


def test_a_partition_needs_one_value_per_partition_key(glue: Any) -> None:
    assert code_of(glue.create_partition, DatabaseName="db", TableName="t", PartitionInput=partition("111")) == (
        "InvalidInputException"
    )
    answer = glue.batch_create_partition(
        DatabaseName="db", TableName="t", PartitionInputList=[partition("111"), partition("111", REGION)]
    )
    assert [(e["PartitionValues"], e["ErrorDetail"]["ErrorCode"]) for e in answer["Errors"]] == [
        (["111"], "InvalidInputException")
    ]
    registered = glue.get_partitions(DatabaseName="db", TableName="t")["Partitions"]
    assert [p["Values"] for p in registered] == [["111", REGION]]


def test_existing_and_missing_partitions_answer_as_glue_does(glue: Any) -> None:
    glue.batch_create_partition(DatabaseName="db", TableName="t", PartitionInputList=[partition("111", REGION)])
    again = glue.batch_create_partition(
        DatabaseName="db", TableName="t", PartitionInputList=[partition("111", REGION), partition("222", REGION)]
    )
    assert [e["ErrorDetail"]["ErrorCode"] for e in again["Errors"]] == ["AlreadyExistsException"]
    existing = partition("111", REGION)
    assert code_of(glue.create_partition, DatabaseName="db", TableName="t", PartitionInput=existing) == (
        "AlreadyExistsException"
    )
    assert code_of(glue.get_partition, DatabaseName="db", TableName="t", PartitionValues=["333", REGION]) == (
        "EntityNotFoundException"
    )
    assert code_of(glue.batch_create_partition, DatabaseName="db", TableName="none", PartitionInputList=[]) == (
        "EntityNotFoundException"
    )
    deleted = glue.batch_delete_partition(
        DatabaseName="db", TableName="t", PartitionsToDelete=[{"Values": ["111", REGION]}, {"Values": ["333", REGION]}]
    )
    assert [e["ErrorDetail"]["ErrorCode"] for e in deleted["Errors"]] == ["EntityNotFoundException"]


def test_get_partitions_pages_by_max_results_and_filters_by_expression(glue: Any) -> None:
    accounts = [f"{n:012d}" for n in range(5)]
    glue.batch_create_partition(
        DatabaseName="db", TableName="t", PartitionInputList=[partition(a, r) for a in accounts for r in ("r1", "r2")]
    )
    first = glue.get_partitions(DatabaseName="db", TableName="t", MaxResults=4)
    assert len(first["Partitions"]) == 4 and first["NextToken"]
    pages = glue.get_paginator("get_partitions").paginate(DatabaseName="db", TableName="t", MaxResults=4)
    assert sum(len(page["Partitions"]) for page in pages) == 10
    expression = f"account_id = '{accounts[2]}' AND region = 'r2'"
    one = glue.get_partitions(DatabaseName="db", TableName="t", Expression=expression)
    assert [p["Values"] for p in one["Partitions"]] == [[accounts[2], "r2"]]


def test_partition_calls_are_authorised_on_the_catalog_database_and_table() -> None:
    request = Request("glue", "BatchCreatePartition", {"DatabaseName": "db", "TableName": "t"}, REGION, ACCOUNT)
    checks = authorizations(request)
    assert sorted(c.resource for c in checks) == [
        f"arn:aws:glue:{REGION}:{ACCOUNT}:catalog",
        f"arn:aws:glue:{REGION}:{ACCOUNT}:database/db",
        f"arn:aws:glue:{REGION}:{ACCOUNT}:table/db/t",
    ]


def test_a_role_without_the_table_is_refused(glue: Any) -> None:
    iam, sts = boto3.client("iam", **ROOT), boto3.client("sts", **ROOT)
    arn = iam.create_role(RoleName="reader", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    statement = {
        "Effect": "Allow",
        "Action": "glue:GetPartitions",
        "Resource": [f"arn:aws:glue:{REGION}:{ACCOUNT}:catalog", f"arn:aws:glue:{REGION}:{ACCOUNT}:database/db"],
    }
    document = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    iam.put_role_policy(RoleName="reader", PolicyName="p", PolicyDocument=document)
    credentials = sts.assume_role(RoleArn=arn, RoleSessionName="fn")["Credentials"]
    role = boto3.client(
        "glue",
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    assert code_of(role.get_partitions, DatabaseName="db", TableName="t") == "AccessDeniedException"
