"""QuickSight datasets and dashboards as the simulated account keeps them.

moto 5.2.5 stores a dataset's id and name only, under an ARN with `data-set/` where QuickSight's (and
the SAR's) is `dataset/`; it has no DescribeDataSet or DescribeDashboardDefinition; it keeps a
dashboard's definition but creates one whose datasets do not exist, and overwrites a dashboard
whose id is taken. Here:

- CreateDataSet keeps the whole request under the `dataset/` ARN; DescribeDataSet answers it.
- CreateDashboard refuses an id that exists (ResourceExistsException). A definition that declares a
  dataset ARN with no dataset behind it is created with its version CREATION_FAILED and an error of
  type DATA_SET_NOT_FOUND (the model's DashboardErrorType), which DescribeDashboard and
  DescribeDashboardDefinition report: QuickSight creates dashboards asynchronously and reports what
  it could not resolve in the version's Errors (QuickSight API Reference, DashboardVersion). That
  the check is made at creation and not refused outright is the simulator's reading (docs/simulator.md).
- DescribeDashboardDefinition answers the stored definition.

IAM for these operations is simulator/iam.py's, from the SAR (dashboard and dataset ARNs from the URI).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from moto.core.exceptions import JsonRESTError
from moto.quicksight import urls as moto_urls
from moto.quicksight.exceptions import ResourceNotFoundException
from moto.quicksight.models import QuickSightBackend, quicksight_backends
from moto.quicksight.responses import QuickSightResponse

from tagpatch_local.simulator.core import backend_state, correction, moto_patch, operation, request_params

_DATASETS: Final = "_tagpatch_quicksight_datasets"
_DASHBOARDS: Final = "_tagpatch_quicksight_dashboards"

# The paths moto does not route (QuickSight API Reference: DescribeDataSet, DescribeDashboardDefinition).
_EXTRA_PATHS: Final = {
    r"{0}/accounts/(?P<account_id>[\d]+)/data-sets/(?P<datasetid>[^/]+)$": QuickSightResponse.dispatch,
    r"{0}/accounts/(?P<account_id>[^/]+)/dashboards/(?P<dashboard_id>[^/]+)/definition$": QuickSightResponse.dispatch,
}


class ResourceExistsException(JsonRESTError):
    def __init__(self, message: str) -> None:
        super().__init__("ResourceExistsException", message)


@moto_patch
def _route_extra_paths() -> None:
    for path, handler in _EXTRA_PATHS.items():
        moto_urls.url_paths.setdefault(path, handler)


@dataclass
class StoredDataSet:
    request: Mapping[str, Any]
    arn: str
    created: datetime


@dataclass
class StoredDashboard:
    request: Mapping[str, Any]
    arn: str
    created: datetime
    status: str
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def version_arn(self) -> str:
        return f"{self.arn}/version/1"


def _backend(response: Any) -> QuickSightBackend:
    return quicksight_backends[response.current_account][response.region]


def datasets(backend: QuickSightBackend) -> dict[str, StoredDataSet]:
    """DataSetId -> the dataset as created."""
    return backend_state(backend, _DATASETS, dict)


def dashboards(backend: QuickSightBackend) -> dict[str, StoredDashboard]:
    """DashboardId -> the dashboard as created, with its version's status and errors."""
    return backend_state(backend, _DASHBOARDS, dict)


def _uri_segment(response: Any, after: str) -> str:
    parts = urlsplit(response.uri).path.strip("/").split("/")
    return unquote(parts[parts.index(after) + 1])


def _arn(response: Any, kind: str, resource_id: str) -> str:
    return f"arn:aws:quicksight:{response.region}:{response.current_account}:{kind}/{resource_id}"


@correction(
    "CreateDataSet",
    service="quicksight",
    response_class=QuickSightResponse,
    why="moto keeps only the dataset's id and name, under a data-set/ ARN (QuickSight's is dataset/)",
)
def _create_data_set(response: Any) -> dict[str, Any]:
    params = request_params(response)
    data_set_id = str(params["DataSetId"])
    backend = _backend(response)
    if data_set_id in datasets(backend):
        raise ResourceExistsException(f"Data set {data_set_id} already exists.")
    arn = _arn(response, "dataset", data_set_id)
    datasets(backend)[data_set_id] = StoredDataSet(params, arn, datetime.now(UTC))
    return {"Arn": arn, "DataSetId": data_set_id, "Status": 201, "RequestId": "simulated"}


@operation("DescribeDataSet", service="quicksight", response_class=QuickSightResponse)
def _describe_data_set(response: Any) -> dict[str, Any]:
    data_set_id = _uri_segment(response, "data-sets")
    stored = datasets(_backend(response)).get(data_set_id)
    if stored is None:
        raise ResourceNotFoundException(f"Data set {data_set_id} not found.")
    members = ("Name", "PhysicalTableMap", "LogicalTableMap", "ImportMode", "ColumnGroups", "FieldFolders")
    described = {key: copy.deepcopy(stored.request[key]) for key in members if key in stored.request}
    data_set = {
        "Arn": stored.arn,
        "DataSetId": data_set_id,
        "CreatedTime": stored.created,
        "LastUpdatedTime": stored.created,
        **described,
    }
    return {"DataSet": data_set, "Status": 200, "RequestId": "simulated"}


def _missing_datasets(response: Any, definition: Mapping[str, Any]) -> list[dict[str, Any]]:
    known = {stored.arn for stored in datasets(_backend(response)).values()}
    return [
        {
            "Type": "DATA_SET_NOT_FOUND",
            "Message": f"Data set {declaration.get('DataSetArn')} ({declaration.get('Identifier')}) was not found.",
        }
        for declaration in definition.get("DataSetIdentifierDeclarations") or []
        if declaration.get("DataSetArn") not in known
    ]


@correction(
    "CreateDashboard",
    service="quicksight",
    response_class=QuickSightResponse,
    why="moto overwrites a dashboard whose id exists and creates one whose datasets do not exist",
)
def _create_dashboard(response: Any) -> dict[str, Any]:
    params = request_params(response)
    dashboard_id = _uri_segment(response, "dashboards")
    backend = _backend(response)
    if dashboard_id in dashboards(backend):
        raise ResourceExistsException(f"Dashboard {dashboard_id} already exists.")
    errors = _missing_datasets(response, params.get("Definition") or {})
    status = "CREATION_FAILED" if errors else "CREATION_SUCCESSFUL"
    arn = _arn(response, "dashboard", dashboard_id)
    stored = StoredDashboard(params, arn, datetime.now(UTC), status, errors)
    dashboards(backend)[dashboard_id] = stored
    # moto's own record, so that its ListDashboards lists it.
    backend.create_dashboard(
        aws_account_id=response.current_account,
        dashboard_id=dashboard_id,
        name=str(params.get("Name", "")),
        parameters=params.get("Parameters") or {},
        permissions=params.get("Permissions") or [],
        source_entity=params.get("SourceEntity") or {},
        tags=params.get("Tags") or [],
        version_description=str(params.get("VersionDescription", "")),
        dashboard_publish_options=params.get("DashboardPublishOptions") or {},
        theme_arn=str(params.get("ThemeArn", "")),
        definition=params.get("Definition") or {},
        validation_strategy=params.get("ValidationStrategy") or {},
        folder_arns=params.get("FolderArns") or [],
        link_sharing_configuration=params.get("LinkSharingConfiguration") or {},
        link_entities=params.get("LinkEntities") or [],
    ).status = status
    # QuickSight answers before it has built the version; DescribeDashboard tells how it went.
    return {
        "Arn": arn,
        "VersionArn": stored.version_arn,
        "DashboardId": dashboard_id,
        "CreationStatus": "CREATION_IN_PROGRESS",
        "Status": 202,
        "RequestId": "simulated",
    }


def _stored_dashboard(response: Any) -> tuple[str, StoredDashboard]:
    dashboard_id = _uri_segment(response, "dashboards")
    stored = dashboards(_backend(response)).get(dashboard_id)
    if stored is None:
        raise ResourceNotFoundException(f"Dashboard {dashboard_id} not found.")
    return dashboard_id, stored


@correction(
    "DescribeDashboard",
    service="quicksight",
    response_class=QuickSightResponse,
    why="moto always answers a version with no errors, and names the source entity where an ARN belongs",
)
def _describe_dashboard(response: Any) -> dict[str, Any]:
    dashboard_id, stored = _stored_dashboard(response)
    definition = stored.request.get("Definition") or {}
    # Errors has a minimum length of 1 in the model: a version without errors has none listed.
    version: dict[str, Any] = {
        "CreatedTime": stored.created,
        **({"Errors": stored.errors} if stored.errors else {}),
        "VersionNumber": 1,
        "Status": stored.status,
        "Arn": stored.version_arn,
        "DataSetArns": [str(d["DataSetArn"]) for d in definition.get("DataSetIdentifierDeclarations") or []],
        "Sheets": [
            {"SheetId": sheet["SheetId"], **({"Name": sheet["Name"]} if "Name" in sheet else {})}
            for sheet in definition.get("Sheets") or []
        ],
    }
    if stored.request.get("VersionDescription"):
        version["Description"] = stored.request["VersionDescription"]
    dashboard = {
        "DashboardId": dashboard_id,
        "Arn": stored.arn,
        "Name": stored.request.get("Name"),
        "Version": version,
        "CreatedTime": stored.created,
        "LastPublishedTime": stored.created,
        "LastUpdatedTime": stored.created,
    }
    return {"Dashboard": dashboard, "Status": 200, "RequestId": "simulated"}


@operation("DescribeDashboardDefinition", service="quicksight", response_class=QuickSightResponse)
def _describe_dashboard_definition(response: Any) -> dict[str, Any]:
    dashboard_id, stored = _stored_dashboard(response)
    answer: dict[str, Any] = {
        "DashboardId": dashboard_id,
        **({"Errors": stored.errors} if stored.errors else {}),
        "Name": stored.request.get("Name"),
        "ResourceStatus": stored.status,
        "Definition": copy.deepcopy(stored.request.get("Definition") or {}),
        "Status": 200,
        "RequestId": "simulated",
    }
    for member in ("ThemeArn", "DashboardPublishOptions"):
        if stored.request.get(member):
            answer[member] = copy.deepcopy(stored.request[member])
    return answer
