"""The QuickSight dashboard of template.yaml as the CreateDashboard request CloudFormation sends, and the
checks QuickSight makes that botocore cannot: which columns each dataset has, and which visuals exist.

AWS::QuickSight::Dashboard's properties carry the API's member names (CloudFormation User Guide,
AWS::QuickSight::Dashboard), so the request is the resolved properties. botocore's model checks members,
types, enums and lengths (`model_problems`); `reference_problems` checks what only QuickSight knows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from tagpatch_local.simulator.core import StrictValidator, service_model

OPERATION: Final = "CreateDashboard"


def model_problems(request: Mapping[str, Any]) -> list[str]:
    """What the quicksight model says is wrong with a CreateDashboard request: missing required members,
    unknown members, wrong types, values outside an enum, lengths and sizes past their bounds."""
    shape = service_model("quicksight").operation_model(OPERATION).input_shape
    errors = StrictValidator().validate(dict(request), shape)
    return errors.generate_report().splitlines() if errors.has_errors() else []


def column_identifiers(value: Any, shape: Any, path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(path, ColumnIdentifier) for every column the definition names, found by the model's shapes."""
    if shape.name == "ColumnIdentifier" and isinstance(value, Mapping):
        yield path, value
    elif shape.type_name == "structure" and isinstance(value, Mapping):
        for key, item in value.items():
            if key in shape.members:
                yield from column_identifiers(item, shape.members[key], f"{path}.{key}" if path else key)
    elif shape.type_name == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            yield from column_identifiers(item, shape.member, f"{path}[{index}]")


def dataset_columns(dataset_properties: Mapping[str, Any]) -> set[str]:
    """The columns an AWS::QuickSight::DataSet declares: its physical tables' input columns (a relational
    table's InputColumns, a custom SQL's Columns). The template's datasets have no logical table map."""
    columns: set[str] = set()
    for table in dataset_properties.get("PhysicalTableMap", {}).values():
        for kind, members in (("RelationalTable", "InputColumns"), ("CustomSql", "Columns")):
            columns |= {str(column["Name"]) for column in table.get(kind, {}).get(members, [])}
    return columns


def _visual_ids(sheet: Mapping[str, Any]) -> list[str]:
    return [str(next(iter(visual.values()))["VisualId"]) for visual in sheet.get("Visuals", [])]


def _column_problems(definition: Mapping[str, Any], columns_by_arn: Mapping[str, set[str]]) -> list[str]:
    problems: list[str] = []
    declared = {str(d["Identifier"]): str(d["DataSetArn"]) for d in definition.get("DataSetIdentifierDeclarations", [])}
    for identifier, arn in declared.items():
        if arn not in columns_by_arn:
            problems.append(f"DataSetIdentifierDeclarations: {identifier} names {arn}, which is no dataset")
    columns = {identifier: set(columns_by_arn.get(arn, set())) for identifier, arn in declared.items()}
    for field in definition.get("CalculatedFields", []):
        identifier = str(field.get("DataSetIdentifier"))
        if identifier not in declared:
            problems.append(f"CalculatedFields: {field.get('Name')} is on undeclared dataset {identifier}")
            continue
        columns[identifier].add(str(field["Name"]))
    shape = service_model("quicksight").shape_for("DashboardVersionDefinition")
    for path, column in column_identifiers(definition, shape):
        identifier, name = str(column.get("DataSetIdentifier")), str(column.get("ColumnName"))
        if identifier not in declared:
            problems.append(f"{path}: dataset identifier {identifier} is not declared")
        elif name not in columns[identifier]:
            problems.append(f"{path}: column {name} is not in dataset {identifier}")
    return problems


def _filter_scope_problems(definition: Mapping[str, Any], sheets: Mapping[str, list[str]]) -> list[str]:
    problems: list[str] = []
    for group in definition.get("FilterGroups", []):
        scope = group.get("ScopeConfiguration", {}).get("SelectedSheets", {})
        for scoping in scope.get("SheetVisualScopingConfigurations", []):
            sheet_id = str(scoping["SheetId"])
            if sheet_id not in sheets:
                problems.append(f"FilterGroups: {group['FilterGroupId']} is scoped to unknown sheet {sheet_id}")
                continue
            problems += [
                f"FilterGroups: {group['FilterGroupId']} names {visual_id}, not on {sheet_id}"
                for visual_id in scoping.get("VisualIds", [])
                if visual_id not in sheets[sheet_id]
            ]
    return problems


def _layout_problems(sheet: Mapping[str, Any]) -> list[str]:
    placed = [
        str(element["ElementId"])
        for layout in sheet.get("Layouts", [])
        for element in layout.get("Configuration", {}).get("GridLayout", {}).get("Elements", [])
    ]
    visuals = _visual_ids(sheet)
    return [f"Sheets: {sheet['SheetId']}'s visual {v} is in no layout" for v in visuals if v not in placed] + [
        f"Sheets: {sheet['SheetId']}'s layout places {e}, which is no visual" for e in placed if e not in visuals
    ]


def reference_problems(definition: Mapping[str, Any], columns_by_arn: Mapping[str, set[str]]) -> list[str]:
    """What QuickSight would refuse that botocore cannot see: a dataset identifier nobody declares, a
    declared dataset that does not exist, a column its dataset lacks (calculated fields count as the
    dataset's), filters scoped to visuals or sheets that do not exist, and visuals no layout places."""
    sheets = {str(sheet["SheetId"]): _visual_ids(sheet) for sheet in definition.get("Sheets", [])}
    return [
        *_column_problems(definition, columns_by_arn),
        *_filter_scope_problems(definition, sheets),
        *(problem for sheet in definition.get("Sheets", []) for problem in _layout_problems(sheet)),
    ]
