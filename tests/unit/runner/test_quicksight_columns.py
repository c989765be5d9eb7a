"""The QuickSight datasets read the Glue tables they name: each input column is one of the table's, of
the matching type, and every table column is either in the dataset or deliberately left out below."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import pytest

from tagpatch_local.template import load_template

TEMPLATE_PATH = Path(__file__).resolve().parents[3] / "template.yaml"

# Glue (Hive) column type -> the QuickSight InputColumn type that reads it (AWS::QuickSight::DataSet
# InputColumn Type: STRING, INTEGER, DECIMAL, DATETIME, BIT, BOOLEAN, JSON).
QUICKSIGHT_TYPE: Final = {"string": "STRING", "int": "INTEGER", "bigint": "INTEGER", "double": "DECIMAL"} | {
    "boolean": "BOOLEAN"
}
# Columns the dashboards do without: bookkeeping, nested values, and long free text.
LEFT_OUT: Final = frozenset(
    {
        "schema_version",
        "snapshot_date",
        "exported_at",
        "ping_status",
        "tag_class",
        "reasons",
        "exception",
        "maintenance_window_tag",
        "last_outcome_reason",
        "period_outcome_reason",
        "compliance_unknown_reason",
        "pending_reboot",
    }
)


def resources() -> Mapping[str, Any]:
    found: Mapping[str, Any] = load_template(TEMPLATE_PATH)["Resources"]
    return found


def glue_columns(table_name: str) -> dict[str, str]:
    (table,) = [
        r["Properties"]["TableInput"]
        for r in resources().values()
        if r["Type"] == "AWS::Glue::Table" and r["Properties"]["TableInput"]["Name"] == table_name
    ]
    columns = [*table["StorageDescriptor"]["Columns"], *table.get("PartitionKeys", [])]
    return {column["Name"]: column["Type"] for column in columns}


# The datasets that read a Glue table whole; a custom SQL dataset (ComplianceExceptionsDataSet) is
# checked as Athena SQL over the Glue tables in test_quicksight_dashboard.py.
DATASETS: Final = sorted(
    name
    for name, r in resources().items()
    if r["Type"] == "AWS::QuickSight::DataSet"
    and all("RelationalTable" in table for table in r["Properties"]["PhysicalTableMap"].values())
)


def test_there_are_datasets_to_check() -> None:
    assert DATASETS == ["ComplianceLatestDataSet", "ComplianceSnapshotsDataSet"]


@pytest.mark.parametrize("dataset", DATASETS)
def test_a_quicksight_dataset_reads_every_column_of_its_glue_table_as_glue_types_it(dataset: str) -> None:
    (physical,) = resources()[dataset]["Properties"]["PhysicalTableMap"].values()
    relational = physical["RelationalTable"]
    glue = glue_columns(relational["Name"])
    read = {column["Name"]: column["Type"] for column in relational["InputColumns"]}
    assert {name: QUICKSIGHT_TYPE.get(glue.get(name, "missing")) for name in read} == read
    assert sorted(set(glue) - set(read) - LEFT_OUT) == [], "Glue columns the dataset neither reads nor leaves out"
    assert sorted(LEFT_OUT & set(read)) == []
