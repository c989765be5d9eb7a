"""The Athena named queries of template.yaml, run on DuckDB over exported snapshot files.

The SQL has one source, template.yaml. It is written in the subset Athena (Trino) and DuckDB share;
`duckdb_sql` makes the only translations the two dialects need, and each is listed in DIALECT:

- Athena's `array_join(array, sep)` is DuckDB's `array_to_string(list, sep)`.

The tables are DuckDB views with the names and columns of the Glue tables (read from template.yaml),
over files in the S3 key layout, hive-partitioned as the Glue tables' registered partitions are:
`compliance/snapshots/dt=YYYY-MM-DD/account_id=<a>/region=<r>/*.jsonl.gz` and
`compliance/latest/account_id=<a>/region=<r>/*.jsonl.gz`, each partition key a string taken from the path.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any, Final

import duckdb

from tagpatch_local.template import Template

REPO: Final = Path(__file__).resolve().parents[1]
DIALECT: Final = ((re.compile(r"\barray_join\("), "array_to_string("),)
GLUE_TO_DUCKDB: Final = {
    "string": "VARCHAR",
    "int": "INTEGER",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "array<string>": "VARCHAR[]",
}


@cache
def repo_template() -> Template:
    """template.yaml, parsed once: each DuckDB connection reads both tables' columns and keys from it."""
    return Template.load(REPO / "template.yaml")


def named_queries(template: Template | None = None) -> dict[str, dict[str, Any]]:
    """Logical id -> the AWS::Athena::NamedQuery's properties."""
    template = template or repo_template()
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in template.resources.items()
        if resource["Type"] == "AWS::Athena::NamedQuery"
    }


def duckdb_sql(athena_sql: str) -> str:
    for pattern, replacement in DIALECT:
        athena_sql = pattern.sub(replacement, athena_sql)
    return athena_sql


def _duckdb_type(glue_type: str) -> str:
    if glue_type in GLUE_TO_DUCKDB:
        return GLUE_TO_DUCKDB[glue_type]
    struct = re.fullmatch(r"struct<(.*)>", glue_type)
    if struct:
        fields = (part.split(":", 1) for part in struct.group(1).split(","))
        return "STRUCT(" + ", ".join(f'"{name}" {_duckdb_type(kind)}' for name, kind in fields) + ")"
    raise ValueError(f"no DuckDB type for Glue type {glue_type}")


def glue_columns(table_logical_id: str, template: Template | None = None) -> list[tuple[str, str]]:
    template = template or repo_template()
    table = template.resources[table_logical_id]["Properties"]["TableInput"]
    return [(str(c["Name"]), str(c["Type"])) for c in table["StorageDescriptor"]["Columns"]]


def partition_keys(table_logical_id: str, template: Template | None = None) -> list[str]:
    template = template or repo_template()
    table = template.resources[table_logical_id]["Properties"]["TableInput"]
    return [str(key["Name"]) for key in table.get("PartitionKeys", [])]


def connect(root: Path) -> duckdb.DuckDBPyConnection:
    """DuckDB with the views `snapshots` and `latest` over root/compliance/ (Glue's names and columns)."""
    connection = duckdb.connect()
    for view, table, folder in (
        ("snapshots", "SnapshotsTable", "compliance/snapshots"),
        ("latest", "LatestTable", "compliance/latest"),
    ):
        columns = "{" + ", ".join(f"'{name}': '{_duckdb_type(kind)}'" for name, kind in glue_columns(table)) + "}"
        keys = partition_keys(table)
        pattern = f"{folder}/{''.join(f'{key}=*/' for key in keys)}*.jsonl.gz"
        # A file outside the partition folders is not the table's: Athena reads registered partitions only.
        options = ", hive_partitioning = true, hive_types_autocast = false"
        # Names from template.yaml and the test's own folder, no outside input.
        source = f"read_json('{root / pattern}', format = 'newline_delimited', columns = {columns}{options})"
        connection.execute(f"CREATE VIEW {view} AS SELECT * FROM {source}")  # noqa: S608
    return connection


def run(connection: duckdb.DuckDBPyConnection, athena_sql: str) -> list[dict[str, Any]]:
    cursor = connection.execute(duckdb_sql(athena_sql))
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def glue_schema(template: Template | None = None) -> dict[str, dict[str, str]]:
    """Glue table name -> column -> Glue type, partition keys included, for every AWS::Glue::Table."""
    template = template or repo_template()
    schema: dict[str, dict[str, str]] = {}
    for resource in template.resources.values():
        if resource["Type"] != "AWS::Glue::Table":
            continue
        table = resource["Properties"]["TableInput"]
        columns = [*table["StorageDescriptor"]["Columns"], *table.get("PartitionKeys", [])]
        schema[str(table["Name"])] = {str(c["Name"]): str(c["Type"]) for c in columns}
    return schema
