"""Every Athena statement tagpatch ships parses as Athena (Trino) SQL, by sqlglot, independently of DuckDB.

tests/unit/product/test_compliance_queries.py runs the same statements (one source: template.yaml's named
queries, through tests.compliance_sql) on DuckDB; a statement DuckDB accepts but Athena would not
parse, or one naming a column the Glue tables lack, fails here instead of in the Athena console.
"""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot.errors import OptimizeError, ParseError
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema

from tests.compliance_sql import glue_schema, named_queries

QUERIES = named_queries()


def check_athena_sql(statement: str) -> None:
    """Parse as Athena SQL (raising on any error) and resolve every column against the Glue tables."""
    (tree,) = sqlglot.parse(statement, read="athena", error_level=sqlglot.ErrorLevel.RAISE)
    assert tree is not None
    qualify(
        tree,
        schema=MappingSchema(dict[str, object](glue_schema()), dialect="athena"),
        dialect="athena",
        validate_qualify_columns=True,
    )


def test_the_template_ships_named_queries() -> None:
    assert len(QUERIES) >= 9


@pytest.mark.parametrize("logical_id", sorted(QUERIES))
def test_named_query_parses_as_athena_sql(logical_id: str) -> None:
    check_athena_sql(str(QUERIES[logical_id]["QueryString"]))


@pytest.mark.parametrize(
    "broken",
    [
        "SELECT dt, count(* FROM snapshots",  # an unclosed parenthesis
        "SELECT owner FROM latest WHERE",  # a WHERE with no condition
        "SELEC owner FROM latest",  # a misspelt keyword
    ],
)
def test_a_broken_statement_fails_to_parse(broken: str) -> None:
    with pytest.raises(ParseError):
        check_athena_sql(broken)


def test_a_statement_naming_an_unknown_column_fails() -> None:
    with pytest.raises(OptimizeError, match="no_such_column"):
        check_athena_sql("SELECT no_such_column FROM latest")


def test_a_named_query_broken_in_the_template_fails() -> None:
    statement = str(QUERIES["ComplianceNowQuery"]["QueryString"]).replace("GROUP BY compliance", "GROUP BY (compliance")
    with pytest.raises(ParseError):
        check_athena_sql(statement)
