"""The QuickSight dashboard of template.yaml (ComplianceDashboard), as the CreateDashboard request
CloudFormation sends: it fits the quicksight API model, every column it names is its dataset's, and
it shows what governance asked for (issue #25)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from sqlglot.errors import OptimizeError
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema

from tagpatch_local.quicksight_dashboard import (
    column_identifiers,
    dataset_columns,
    model_problems,
    reference_problems,
)
from tagpatch_local.simulator.core import service_model
from tagpatch_local.template import Template, resolve
from tests.compliance_sql import glue_schema

REPO_ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = REPO_ROOT / "template.yaml"
DASHBOARD = "ComplianceDashboard"
ACCOUNT = "123456789012"
REGION = "eu-west-1"
PARAMETERS = {
    "QuickSightPrincipalArn": f"arn:aws:quicksight:{REGION}:{ACCOUNT}:group/default/governance",
    "ComplianceDatabaseName": "tagpatch_compliance",
}


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.load(TEMPLATE)


def resolver_for(template: Template) -> Any:
    """Refs and GetAtts as CloudFormation would give them in a stack named `tagpatch`."""

    def resolver(logical_id: str, attribute: str | None) -> str:
        pseudo = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::StackName": "tagpatch"}
        if attribute is None and logical_id in {**pseudo, **PARAMETERS}:
            return {**pseudo, **PARAMETERS}[logical_id]
        kind = template.resource_type(logical_id)
        properties = template.resources[logical_id].get("Properties", {})
        if kind == "AWS::Glue::Database" and attribute is None:
            return str(resolve(properties["DatabaseInput"]["Name"], resolver))
        if kind == "AWS::Athena::WorkGroup" and attribute is None:
            return str(resolve(properties["Name"], resolver))
        if kind == "AWS::QuickSight::DataSet" and attribute == "Arn":
            return f"arn:aws:quicksight:{REGION}:{ACCOUNT}:dataset/{resolve(properties['DataSetId'], resolver)}"
        if kind == "AWS::QuickSight::DataSource" and attribute == "Arn":
            return f"arn:aws:quicksight:{REGION}:{ACCOUNT}:datasource/{resolve(properties['DataSourceId'], resolver)}"
        raise AssertionError(f"the test does not resolve {logical_id}.{attribute}")

    return resolver


def dashboard_request(template: Template) -> dict[str, Any]:
    """The CreateDashboard request: the resolved properties, whose names are the API's."""
    request = resolve(template.resources[DASHBOARD]["Properties"], resolver_for(template))
    assert isinstance(request, dict)
    return request


def columns_by_arn(template: Template) -> dict[str, set[str]]:
    resolver = resolver_for(template)
    return {
        resolver(logical_id, "Arn"): dataset_columns(template.resources[logical_id]["Properties"])
        for logical_id in template.resources
        if template.resource_type(logical_id) == "AWS::QuickSight::DataSet"
    }


def referenced_columns(template: Template) -> set[tuple[str, str]]:
    """(dataset identifier, column) of every column the definition's visuals and filters name."""
    shape = service_model("quicksight").shape_for("DashboardVersionDefinition")
    definition = dashboard_request(template)["Definition"]
    return {(str(c["DataSetIdentifier"]), str(c["ColumnName"])) for _, c in column_identifiers(definition, shape)}


# -- the quicksight model ------------------------------------------------------------------------------


def test_the_dashboard_fits_the_quicksight_models_create_dashboard_request(template: Template) -> None:
    request = dashboard_request(template)
    assert request["Definition"]["Sheets"], "the dashboard has no sheets"
    assert model_problems(request) == []


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        pytest.param(
            lambda d: d["Definition"]["Sheets"][0]["Visuals"][0]["KPIVisual"].pop("VisualId"),
            r"Missing required parameter.*VisualId",
            id="required member missing",
        ),
        pytest.param(
            lambda d: d["Definition"]["Sheets"][0]["Visuals"][4]["BarChartVisual"]["ChartConfiguration"].update(
                Orientation="SIDEWAYS"
            ),
            r"Invalid value for .*Orientation.*'SIDEWAYS'",
            id="value outside its enum",
        ),
        pytest.param(
            lambda d: d["Definition"]["CalculatedFields"][0].update(Name="x" * 129),
            r"Invalid length for .*CalculatedFields\[0\]\.Name",
            id="string past its maximum length",
        ),
        pytest.param(
            lambda d: d["Definition"]["Sheets"][0]["Layouts"][0]["Configuration"]["GridLayout"]["Elements"][0].update(
                ColumnSpan="wide"
            ),
            r"Invalid type for parameter .*ColumnSpan",
            id="wrong type",
        ),
        pytest.param(
            lambda d: d["Definition"]["Sheets"][0].update(Colour="blue"),
            r'Unknown parameter in .*"Colour"',
            id="member the API does not have",
        ),
    ],
)
def test_a_broken_copy_of_the_dashboard_fails_the_model_check(template: Template, break_it: Any, expected: str) -> None:
    broken = copy.deepcopy(dashboard_request(template))
    break_it(broken)
    problems = model_problems(broken)
    assert any(re.search(expected, problem) for problem in problems), problems


# -- what botocore cannot check ------------------------------------------------------------------------


def test_every_dataset_identifier_and_column_of_the_dashboard_is_declared(template: Template) -> None:
    definition = dashboard_request(template)["Definition"]
    assert referenced_columns(template), "the check found no column references to check"
    assert reference_problems(definition, columns_by_arn(template)) == []


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        pytest.param(
            lambda d: d["Sheets"][0]["Visuals"][4]["BarChartVisual"]["ChartConfiguration"]["FieldWells"][
                "BarChartAggregatedFieldWells"
            ]["Category"][0]["CategoricalDimensionField"]["Column"].update(ColumnName="team"),
            r"column team is not in dataset latest",
            id="a column its dataset lacks",
        ),
        pytest.param(
            lambda d: d["Sheets"][0]["Visuals"][3]["LineChartVisual"]["ChartConfiguration"]["FieldWells"][
                "LineChartAggregatedFieldWells"
            ]["Values"][0]["NumericalMeasureField"]["Column"].update(DataSetIdentifier="history"),
            r"dataset identifier history is not declared",
            id="an undeclared dataset identifier",
        ),
        pytest.param(
            lambda d: d["DataSetIdentifierDeclarations"][0].update(
                DataSetArn=f"arn:aws:quicksight:{REGION}:{ACCOUNT}:dataset/gone"
            ),
            r"names arn:aws:quicksight:.*dataset/gone, which is no dataset",
            id="a declared dataset that does not exist",
        ),
        pytest.param(
            lambda d: d["CalculatedFields"].pop(1),
            r"column scan_stale_or_missing is not in dataset latest",
            id="a calculated field dropped",
        ),
        pytest.param(
            lambda d: d["FilterGroups"][0]["ScopeConfiguration"]["SelectedSheets"]["SheetVisualScopingConfigurations"][
                0
            ]["VisualIds"].append("no-such-visual"),
            r"names no-such-visual, not on compliance",
            id="a filter scoped to a visual that does not exist",
        ),
        pytest.param(
            lambda d: d["Sheets"][1]["Layouts"][0]["Configuration"]["GridLayout"]["Elements"].pop(),
            r"visual active-exceptions is in no layout",
            id="a visual no layout places",
        ),
    ],
)
def test_a_broken_copy_of_the_dashboard_fails_the_reference_check(
    template: Template, break_it: Any, expected: str
) -> None:
    definition = copy.deepcopy(dashboard_request(template)["Definition"])
    break_it(definition)
    problems = reference_problems(definition, columns_by_arn(template))
    assert any(re.search(expected, problem) for problem in problems), problems


def test_the_exceptions_dataset_reads_fields_the_exception_struct_has(template: Template) -> None:
    struct = glue_schema(template)["latest"]["exception"]
    fields = set(re.findall(r"(\w+):", struct))
    sql = template.resources["ComplianceExceptionsDataSet"]["Properties"]["PhysicalTableMap"]["exceptions"][
        "CustomSql"
    ]["SqlQuery"]["Fn::Sub"]
    read = set(re.findall(r"\bexception\.(\w+)", sql))
    assert read, "the exceptions dataset reads no field of the exception struct"
    assert read <= fields


def athena_tree(sql: str) -> Any:
    """The statement parsed as Athena SQL with every column resolved against the Glue tables."""
    (tree,) = sqlglot.parse(sql, read="athena", error_level=sqlglot.ErrorLevel.RAISE)
    assert tree is not None
    schema = MappingSchema({PARAMETERS["ComplianceDatabaseName"]: dict[str, object](glue_schema())}, dialect="athena")
    return qualify(tree, schema=schema, dialect="athena", validate_qualify_columns=True)


def custom_sql_tables(template: Template) -> list[tuple[str, dict[str, Any]]]:
    resolver = resolver_for(template)
    return [
        (logical_id, resolve(table["CustomSql"], resolver))
        for logical_id in template.resources
        if template.resource_type(logical_id) == "AWS::QuickSight::DataSet"
        for table in template.resources[logical_id]["Properties"]["PhysicalTableMap"].values()
        if "CustomSql" in table
    ]


def test_each_custom_sql_dataset_is_athena_sql_over_the_glue_tables_giving_the_columns_it_declares(
    template: Template,
) -> None:
    tables = custom_sql_tables(template)
    assert tables, "no dataset reads custom SQL"
    for logical_id, table in tables:
        selected = [column.alias_or_name for column in athena_tree(table["SqlQuery"]).selects]
        assert selected == [column["Name"] for column in table["Columns"]], logical_id


def test_custom_sql_naming_a_column_the_glue_table_lacks_fails(template: Template) -> None:
    ((_, table),) = custom_sql_tables(template)
    with pytest.raises(OptimizeError, match="exception_owner"):
        athena_tree(table["SqlQuery"].replace("SELECT instance_id,", "SELECT instance_id, exception_owner,"))


# -- what it shows, and to whom --------------------------------------------------------------------------


def test_the_dashboard_shows_what_governance_asked_for(template: Template) -> None:
    shown = referenced_columns(template)
    wanted = {
        ("latest", "compliant_percent_now"),  # compliance % now
        ("snapshots", "compliant_percent_daily"),  # ... and as a daily trend
        ("snapshots", "snapshot_day"),
        ("latest", "owner"),  # non-compliant instances by owner, patch group and OS
        ("latest", "patch_group"),
        ("latest", "os"),
        ("latest", "compliance"),
        ("latest", "critical_missing"),  # critical patches missing
        ("latest", "days_since_last_success"),  # days since the last successful install
        ("latest", "scan_status"),  # stale or never-scanned instances
        ("exceptions", "exception_expires"),  # active exceptions and their expiry
        ("latest", "last_outcome"),  # the outcomes of the last windows
        ("latest", "account_id"),  # non-compliant instances by account and by Region (#26)
        ("latest", "region"),
    }
    assert wanted <= shown, sorted(wanted - shown)


def test_the_dashboard_exists_with_the_datasets_and_is_shared_with_the_same_principal(template: Template) -> None:
    quicksight = [
        logical_id
        for logical_id in template.resources
        if template.resource_type(logical_id).startswith("AWS::QuickSight::")
    ]
    assert DASHBOARD in quicksight
    assert {template.resources[logical_id].get("Condition") for logical_id in quicksight} == {"HasQuickSight"}
    permissions = template.resources[DASHBOARD]["Properties"]["Permissions"]
    assert [p["Principal"] for p in permissions] == [{"Ref": "QuickSightPrincipalArn"}]
    # A viewer: it reads and queries the dashboard; changes come from the stack only.
    assert set(permissions[0]["Actions"]) == {
        "quicksight:DescribeDashboard",
        "quicksight:ListDashboardVersions",
        "quicksight:QueryDashboard",
    }
