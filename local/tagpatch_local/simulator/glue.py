"""The Glue Data Catalog's partitions as the simulated account keeps them.

moto 5.2.5 keeps a table's partitions but checks none of a partition's values against the table's
partition keys, and answers GetPartitions with every matching partition at once, whatever MaxResults
says. Here (AWS Glue API Reference, CreatePartition, BatchCreatePartition and GetPartitions):

- A partition whose Values are not one per partition key is refused with InvalidInputException (the
  wording Glue gives: "The number of partition keys do not match the number of partition values").
  CreatePartition fails with it; BatchCreatePartition reports it in that entry's Errors, as it does
  AlreadyExistsException, and creates the others. Whether Glue refuses the whole batch instead is not
  documented (docs/simulator.md).
- GetPartitions answers at most MaxResults partitions (1 to 1,000, the model's bounds) and a NextToken
  for the rest. Glue does not document the page size without MaxResults; the simulator then answers
  them all, as moto does.

What stays moto's: AlreadyExistsException and EntityNotFoundException (a missing database, table or
partition) with their codes, BatchDeletePartition's per-entry EntityNotFoundException, and
BatchGetPartition leaving out partitions that do not exist (it never answers UnprocessedKeys here).
IAM for these operations is simulator/iam.py's, from the SAR (catalog, database and table ARNs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from moto.core.exceptions import JsonRESTError
from moto.glue.exceptions import PartitionAlreadyExistsException
from moto.glue.models import FakeTable
from moto.glue.responses import GlueResponse

from tagpatch_local.simulator.core import correction, moto_patch

KEYS_MISMATCH: Final = "The number of partition keys do not match the number of partition values"


class InvalidInputException(JsonRESTError):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidInputException", message)


def _partition_keys(table: FakeTable) -> list[Any]:
    current: Mapping[str, Any] = table.as_dict()
    return list(current.get("PartitionKeys") or [])


@moto_patch
def _check_partition_values() -> None:
    create = FakeTable.create_partition
    if getattr(create, "_tagpatch_checks_values", False):
        return

    def create_partition(self: FakeTable, partition_input: dict[str, Any]) -> None:
        if len(partition_input.get("Values") or []) != len(_partition_keys(self)):
            raise InvalidInputException(KEYS_MISMATCH)
        create(self, partition_input)

    create_partition._tagpatch_checks_values = True  # type: ignore[attr-defined]
    FakeTable.create_partition = create_partition  # type: ignore[method-assign,assignment]


@correction(
    "BatchCreatePartition",
    service="glue",
    response_class=GlueResponse,
    why="moto lets an entry's InvalidInputException fail the whole batch; Glue reports entries' errors in Errors",
)
def _batch_create_partition(response: Any) -> dict[str, Any]:
    params = response.parameters
    table = response.glue_backend.get_table(params["DatabaseName"], params["TableName"])
    errors: list[dict[str, Any]] = []
    for partition_input in params.get("PartitionInputList") or []:
        try:
            table.create_partition(partition_input)
        except PartitionAlreadyExistsException:
            errors.append(_entry_error(partition_input, "AlreadyExistsException", "Partition already exists."))
        except InvalidInputException:
            errors.append(_entry_error(partition_input, "InvalidInputException", KEYS_MISMATCH))
    return {"Errors": errors} if errors else {}


def _entry_error(partition_input: Mapping[str, Any], code: str, message: str) -> dict[str, Any]:
    return {
        "PartitionValues": list(partition_input.get("Values") or []),
        "ErrorDetail": {"ErrorCode": code, "ErrorMessage": message},
    }


@correction(
    "GetPartitions",
    service="glue",
    response_class=GlueResponse,
    why="moto answers every partition at once, ignoring MaxResults and NextToken",
)
def _get_partitions(response: Any) -> dict[str, Any]:
    params = response.parameters
    found = response.glue_backend.get_partitions(params["DatabaseName"], params["TableName"], params.get("Expression"))
    partitions = [partition.as_dict() for partition in found]
    start = int(params.get("NextToken") or 0)
    size = params.get("MaxResults")
    end = len(partitions) if size is None else start + int(size)
    page: dict[str, Any] = {"Partitions": partitions[start:end]}
    if end < len(partitions):
        page["NextToken"] = str(end)
    return page
