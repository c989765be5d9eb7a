"""SSM patch baselines and patch groups: the AWS-managed default baselines, registrations, tags.

The predefined baselines and their approval rules are written from the Patch Manager User Guide
("Predefined and custom patch baselines"); the operating systems are SSM's, not tagpatch's.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

from moto.ssm.exceptions import InvalidResourceId
from moto.ssm.models import ssm_backends
from moto.utilities.utils import get_partition, load_resource

from tagpatch_local.simulator import quotas
from tagpatch_local.simulator.core import (
    AlreadyExistsException,
    DoesNotExistException,
    ResourceInUseException,
    ResourceLimitExceededException,
    correction,
    drop_none,
    filters_of,
    operation,
    page_of,
    request_params,
    ssm_backend,
    validate_input,
)
from tagpatch_local.simulator.instances import SimulatorState, simulator_state
from tagpatch_local.simulator.quotas import DEFAULT_OPERATING_SYSTEM

# --------------------------------------------------------------------------------------------------
# Patch baselines and patch groups

# The AWS-managed default baseline's name per OperatingSystem (Patch Manager "Predefined baselines").
_MANAGED_BASELINE_NAMES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "AMAZON_LINUX_2023": "AWS-AmazonLinux2023DefaultPatchBaseline",
        "AMAZON_LINUX_2": "AWS-AmazonLinux2DefaultPatchBaseline",
        "UBUNTU": "AWS-UbuntuDefaultPatchBaseline",
        "REDHAT_ENTERPRISE_LINUX": "AWS-RedHatDefaultPatchBaseline",
        "SUSE": "AWS-SuseDefaultPatchBaseline",
        "DEBIAN": "AWS-DebianDefaultPatchBaseline",
        "CENTOS": "AWS-CentOSDefaultPatchBaseline",
        "ORACLE_LINUX": "AWS-OracleLinuxDefaultPatchBaseline",
        "ROCKY_LINUX": "AWS-RockyLinuxDefaultPatchBaseline",
        "ALMA_LINUX": "AWS-AlmaLinuxDefaultPatchBaseline",
        "WINDOWS": "AWS-DefaultPatchBaseline",
        "MACOS": "AWS-MacOSDefaultPatchBaseline",
    }
)
_MANAGED_BASELINE_OWNER: Final = "075727635805"  # the us-east-1 owner; other Regions use other accounts
_MANAGED_BASELINE_DATE: Final = datetime(2023, 3, 15, tzinfo=UTC)

# The operating systems the simulated account has predefined baselines for (all of them are values of
# the PatchBaseline OperatingSystem enum in SSM's service model; a unit test checks that).
OPERATING_SYSTEMS: Final = frozenset(_MANAGED_BASELINE_NAMES)


@dataclass(frozen=True)
class ManagedBaseline:
    """An AWS-managed default patch baseline: its BaselineId is a full ARN in an AWS account."""

    baseline_id: str
    name: str
    operating_system: str

    @property
    def description(self) -> str:
        if self.operating_system == "WINDOWS":
            return "Default Patch Baseline Provided by AWS."
        label = self.name.removeprefix("AWS-").removesuffix("DefaultPatchBaseline")
        return f"Default Patch Baseline for {label} Provided by AWS."

    def approval_rules(self) -> dict[str, Any]:
        os_name = self.operating_system
        if os_name == "WINDOWS":
            patch_filters = [
                {"Key": "CLASSIFICATION", "Values": ["CriticalUpdates", "SecurityUpdates"]},
                {"Key": "MSRC_SEVERITY", "Values": ["Critical", "Important"]},
            ]
            days = 7
        elif os_name in {"UBUNTU", "DEBIAN"}:
            patch_filters = [{"Key": "PRIORITY", "Values": ["Required", "Important", "Standard", "Optional", "Extra"]}]
            days = 0
        elif os_name == "MACOS":
            patch_filters = [{"Key": "CLASSIFICATION", "Values": ["Security", "Bugfix"]}]
            days = 0
        else:
            patch_filters = [
                {"Key": "CLASSIFICATION", "Values": ["Security"]},
                {"Key": "SEVERITY", "Values": ["Critical", "Important"]},
            ]
            days = 7
        return {
            "PatchRules": [
                {
                    "PatchFilterGroup": {"PatchFilters": patch_filters},
                    "ComplianceLevel": "UNSPECIFIED",
                    "ApproveAfterDays": days,
                    "EnableNonSecurity": False,
                }
            ]
        }


@functools.cache
def _moto_default_baseline_arns() -> Mapping[str, Mapping[str, str]]:
    # moto ships the real per-Region ARNs of the AWS-managed default baselines.
    try:
        loaded = load_resource("ssm/resources/default_baselines.json")
    except (FileNotFoundError, ValueError):  # pragma: no cover - depends on moto's packaging
        loaded = {}
    return loaded if isinstance(loaded, dict) else {}


@functools.cache
def managed_baselines(region: str) -> Mapping[str, ManagedBaseline]:
    """The AWS-managed default baseline per OperatingSystem (tagpatch's list) in `region`."""
    known = _moto_default_baseline_arns().get(region, {})
    result: dict[str, ManagedBaseline] = {}
    for os_name in sorted(OPERATING_SYSTEMS):
        arn = known.get(os_name)
        if arn is None:
            digest = hashlib.sha256(f"{region}/{os_name}".encode()).hexdigest()[:16]
            arn = f"arn:{get_partition(region)}:ssm:{region}:{_MANAGED_BASELINE_OWNER}:patchbaseline/pb-0{digest}"
        result[os_name] = ManagedBaseline(arn, _MANAGED_BASELINE_NAMES[os_name], os_name)
    return MappingProxyType(result)


@dataclass(frozen=True)
class _BaselineRef:
    baseline_id: str
    name: str
    operating_system: str
    description: str | None
    default: bool
    custom: Any  # moto's FakePatchBaseline, or None for an AWS-managed baseline
    managed: ManagedBaseline | None

    def identity(self) -> dict[str, Any]:
        return drop_none(
            {
                "BaselineId": self.baseline_id,
                "BaselineName": self.name,
                "OperatingSystem": self.operating_system,
                "BaselineDescription": self.description,
                "DefaultBaseline": self.default,
            }
        )


def _custom_ref(baseline: Any) -> _BaselineRef:
    return _BaselineRef(
        baseline_id=baseline.id,
        name=baseline.name,
        operating_system=baseline.operating_system or DEFAULT_OPERATING_SYSTEM,
        description=baseline.description,
        default=bool(baseline.default_baseline),
        custom=baseline,
        managed=None,
    )


def _managed_ref(managed: ManagedBaseline) -> _BaselineRef:
    return _BaselineRef(
        baseline_id=managed.baseline_id,
        name=managed.name,
        operating_system=managed.operating_system,
        description=managed.description,
        default=True,
        custom=None,
        managed=managed,
    )


def _all_baselines(response: Any) -> list[_BaselineRef]:
    """AWS-managed baselines (by name), then custom ones in creation order."""
    managed = sorted(managed_baselines(response.region).values(), key=lambda m: m.name)
    return [_managed_ref(m) for m in managed] + [_custom_ref(b) for b in ssm_backend(response).baselines.values()]


def _baseline(response: Any, baseline_id: str) -> _BaselineRef:
    custom = ssm_backend(response).baselines.get(baseline_id)
    if custom is not None:
        return _custom_ref(custom)
    for managed in managed_baselines(response.region).values():
        if managed.baseline_id == baseline_id:
            return _managed_ref(managed)
    hint = " (an AWS-managed baseline is addressed by its full ARN)" if baseline_id.startswith("pb-") else ""
    raise DoesNotExistException(f"Patch Baseline {baseline_id} does not exist{hint}.")


def _state(response: Any) -> SimulatorState:
    return simulator_state(response.current_account, response.region)


def _registrations(response: Any) -> dict[tuple[str, str], str]:
    """A consistent snapshot of (patch group, OperatingSystem) -> BaselineId."""
    state = _state(response)
    with state.lock:
        return dict(state.patch_groups)


@correction(
    "CreatePatchBaseline",
    why="moto fails with InvalidResourceId when Tags are given (after creating the baseline), leaves "
    "OperatingSystem unset instead of WINDOWS and has no baseline quota",
)
def _create_patch_baseline(response: Any) -> dict[str, Any]:
    params = request_params(response)
    validate_input("CreatePatchBaseline", params)
    backend = ssm_backend(response)
    if len(backend.baselines) >= quotas.MAX_PATCH_BASELINES:
        raise ResourceLimitExceededException(
            f"Patch baseline limit exceeded: at most {quotas.MAX_PATCH_BASELINES} patch baselines per Region."
        )
    baseline_id = backend.create_patch_baseline(
        name=params.get("Name"),
        operating_system=params.get("OperatingSystem", DEFAULT_OPERATING_SYSTEM),
        global_filters=params.get("GlobalFilters"),
        approval_rules=params.get("ApprovalRules"),
        approved_patches=params.get("ApprovedPatches", []),
        approved_patches_compliance_level=params.get("ApprovedPatchesComplianceLevel", "UNSPECIFIED"),
        approved_patches_enable_non_security=params.get("ApprovedPatchesEnableNonSecurity", False),
        rejected_patches=params.get("RejectedPatches", []),
        rejected_patches_action=params.get("RejectedPatchesAction", "ALLOW_AS_DEPENDENCY"),
        description=params.get("Description"),
        sources=params.get("Sources", []),
        tags=None,
    )
    # Keep tags where moto keeps tags; moto's own tag handlers reject ResourceType PatchBaseline.
    for tag in params.get("Tags") or ():
        backend._resource_tags["PatchBaseline"][baseline_id][tag["Key"]] = tag["Value"]
    return {"BaselineId": baseline_id}


@correction(
    "DeletePatchBaseline",
    why="moto raises a bare KeyError for an unknown baseline and deletes baselines that patch groups use",
)
def _delete_patch_baseline(response: Any) -> dict[str, Any]:
    baseline_id = str(request_params(response).get("BaselineId", ""))
    backend = ssm_backend(response)
    if baseline_id in backend.baselines:
        groups = sorted(g for (g, _), b in _registrations(response).items() if b == baseline_id)
        if groups:
            raise ResourceInUseException(
                f"Patch baseline {baseline_id} is registered with patch group(s) {', '.join(groups)}: "
                "deregister it first."
            )
        del backend.baselines[baseline_id]
        backend._resource_tags["PatchBaseline"].pop(baseline_id, None)
    return {"BaselineId": baseline_id}


_BASELINE_FILTER_KEYS: Final = ("OWNER", "OPERATING_SYSTEM", "NAME_PREFIX")


@correction(
    "DescribePatchBaselines",
    why="moto ignores the OWNER and OPERATING_SYSTEM filters, treats NAME_PREFIX as an exact name, lists "
    "no AWS-managed default baselines and does not paginate",
)
def _describe_patch_baselines(response: Any) -> dict[str, Any]:
    params = request_params(response)
    filters = filters_of(params, _BASELINE_FILTER_KEYS)
    baselines = _all_baselines(response)
    if (owners := filters.get("OWNER")) is not None:
        baselines = [b for b in baselines if ("AWS" if b.managed is not None else "Self") in owners]
    if (systems := filters.get("OPERATING_SYSTEM")) is not None:
        baselines = [b for b in baselines if b.operating_system in systems]
    if (prefixes := filters.get("NAME_PREFIX")) is not None:
        baselines = [b for b in baselines if any(b.name.startswith(p) for p in prefixes)]
    page, token = page_of("DescribePatchBaselines", baselines, params, quotas.BASELINE_PAGE_BOUNDS)
    return drop_none({"BaselineIdentities": [b.identity() for b in page], "NextToken": token})


@operation("GetPatchBaseline")
def _get_patch_baseline(response: Any) -> dict[str, Any]:
    ref = _baseline(response, str(request_params(response).get("BaselineId", "")))
    groups = sorted({g for (g, _), b in _registrations(response).items() if b == ref.baseline_id})
    common = {
        "BaselineId": ref.baseline_id,
        "Name": ref.name,
        "OperatingSystem": ref.operating_system,
        "PatchGroups": groups,
        "Description": ref.description,
    }
    if ref.managed is not None:
        return drop_none(
            {
                **common,
                "GlobalFilters": {"PatchFilters": []},
                "ApprovalRules": ref.managed.approval_rules(),
                "ApprovedPatches": [],
                "ApprovedPatchesComplianceLevel": "UNSPECIFIED",
                "ApprovedPatchesEnableNonSecurity": False,
                "RejectedPatches": [],
                "RejectedPatchesAction": "ALLOW_AS_DEPENDENCY",
                "CreatedDate": _MANAGED_BASELINE_DATE,
                "ModifiedDate": _MANAGED_BASELINE_DATE,
                "Sources": [],
            }
        )
    baseline = ref.custom
    created = getattr(baseline, "tagpatch_created", None)
    if created is None:
        created = datetime.now(UTC)
        baseline.tagpatch_created = created
    return drop_none(
        {
            **common,
            "GlobalFilters": baseline.global_filters or {"PatchFilters": []},
            "ApprovalRules": baseline.approval_rules or {"PatchRules": []},
            "ApprovedPatches": baseline.approved_patches or [],
            "ApprovedPatchesComplianceLevel": baseline.approved_patches_compliance_level or "UNSPECIFIED",
            "ApprovedPatchesEnableNonSecurity": bool(baseline.approved_patches_enable_non_security),
            "RejectedPatches": baseline.rejected_patches or [],
            "RejectedPatchesAction": baseline.rejected_patches_action or "ALLOW_AS_DEPENDENCY",
            "CreatedDate": created,
            "ModifiedDate": created,
            "Sources": baseline.sources or [],
        }
    )


@operation("GetDefaultPatchBaseline")
def _get_default_patch_baseline(response: Any) -> dict[str, Any]:
    os_name = str(request_params(response).get("OperatingSystem") or DEFAULT_OPERATING_SYSTEM)
    managed = managed_baselines(response.region).get(os_name)
    if managed is None:
        raise DoesNotExistException(
            f"The simulator has no default patch baseline for OperatingSystem {os_name} "
            f"(it models {', '.join(sorted(OPERATING_SYSTEMS))})."
        )
    return {"BaselineId": managed.baseline_id, "OperatingSystem": os_name}


@correction(
    "RegisterPatchBaselineForPatchGroup",
    why="moto rejects AWS-managed baseline ARNs, raises AlreadyExistsException without naming the patch "
    "group, and keeps registrations where DescribePatchGroups cannot see them",
)
def _register_patch_baseline_for_patch_group(response: Any) -> dict[str, Any]:
    params = request_params(response)
    validate_input("RegisterPatchBaselineForPatchGroup", params)
    ref = _baseline(response, str(params.get("BaselineId", "")))
    group = str(params.get("PatchGroup", ""))
    state = _state(response)
    with state.lock:
        key = (group, ref.operating_system)
        if key in state.patch_groups:
            raise AlreadyExistsException(
                f"Patch Group {group} already has a baseline registered for OperatingSystem {ref.operating_system}."
            )
        used = {g for (g, _), b in state.patch_groups.items() if b == ref.baseline_id}
        if len(used) >= quotas.MAX_PATCH_GROUPS_PER_BASELINE:
            raise ResourceLimitExceededException(
                f"Patch baseline {ref.baseline_id} already has the maximum of "
                f"{quotas.MAX_PATCH_GROUPS_PER_BASELINE} patch groups."
            )
        state.patch_groups[key] = ref.baseline_id
    return {"BaselineId": ref.baseline_id, "PatchGroup": group}


@correction(
    "DeregisterPatchBaselineForPatchGroup",
    why="moto does not deregister anything (it re-registers the baseline) and never reports a missing registration",
)
def _deregister_patch_baseline_for_patch_group(response: Any) -> dict[str, Any]:
    params = request_params(response)
    ref = _baseline(response, str(params.get("BaselineId", "")))
    group = str(params.get("PatchGroup", ""))
    state = _state(response)
    with state.lock:
        key = (group, ref.operating_system)
        if state.patch_groups.get(key) != ref.baseline_id:
            raise DoesNotExistException(f"Patch Baseline {ref.baseline_id} is not registered with Patch Group {group}.")
        del state.patch_groups[key]
    return {"BaselineId": ref.baseline_id, "PatchGroup": group}


@correction(
    "GetPatchBaselineForPatchGroup",
    why="moto fails when OperatingSystem is omitted (SSM assumes WINDOWS) and reads registrations the "
    "simulator keeps elsewhere",
)
def _get_patch_baseline_for_patch_group(response: Any) -> dict[str, Any]:
    params = request_params(response)
    group = str(params.get("PatchGroup", ""))
    os_name = str(params.get("OperatingSystem") or DEFAULT_OPERATING_SYSTEM)
    baseline_id = _registrations(response).get((group, os_name))
    if baseline_id is None:
        # No registration: the OS's default baseline applies.
        managed = managed_baselines(response.region).get(os_name)
        if managed is None:
            raise DoesNotExistException(f"The simulator has no default patch baseline for {os_name}.")
        baseline_id = managed.baseline_id
    return {"BaselineId": baseline_id, "PatchGroup": group, "OperatingSystem": os_name}


@operation("DescribePatchGroups")
def _describe_patch_groups(response: Any) -> dict[str, Any]:
    params = request_params(response)
    filters = filters_of(params, ("NAME_PREFIX", "OPERATING_SYSTEM"))
    registrations = sorted(_registrations(response).items())
    mappings = []
    for (group, os_name), baseline_id in registrations:
        if (systems := filters.get("OPERATING_SYSTEM")) is not None and os_name not in systems:
            continue
        if (prefixes := filters.get("NAME_PREFIX")) is not None and not any(group.startswith(p) for p in prefixes):
            continue
        try:
            ref = _baseline(response, baseline_id)
        except DoesNotExistException:
            continue  # deleted behind the simulator's back (e.g. straight on moto's backend)
        mappings.append({"PatchGroup": group, "BaselineIdentity": ref.identity()})
    page, token = page_of("DescribePatchGroups", mappings, params, quotas.BASELINE_PAGE_BOUNDS)
    return drop_none({"Mappings": page, "NextToken": token})


# --------------------------------------------------------------------------------------------------
# Tags on patch baselines


def _tag_target(response: Any, params: Mapping[str, Any]) -> tuple[str, str, bool]:
    """(resource type, id, is a patch baseline or association the simulator must handle itself)."""
    from tagpatch_local.simulator.associations import TAGGING_TYPE, association_exists  # noqa: PLC0415

    resource_type = str(params.get("ResourceType", ""))
    resource_id = str(params.get("ResourceId", ""))
    if resource_type == TAGGING_TYPE:
        if not association_exists(response.current_account, response.region, resource_id):
            raise InvalidResourceId()
        return resource_type, resource_id, True
    if resource_type != "PatchBaseline":
        return resource_type, resource_id, False
    if resource_id not in ssm_backend(response).baselines:
        raise InvalidResourceId()
    return resource_type, resource_id, True


@correction(
    "ListTagsForResource",
    why="moto rejects every PatchBaseline with InvalidResourceId, so a baseline's tags cannot be read; and it "
    "has no associations",
)
def _list_tags_for_resource(response: Any) -> dict[str, Any]:
    params = request_params(response)
    resource_type, resource_id, own = _tag_target(response, params)
    backend = ssm_backend(response)
    if own:
        tags = dict(backend._resource_tags[resource_type].get(resource_id, {}))
    else:
        tags = backend.list_tags_for_resource(resource_type=resource_type, resource_id=resource_id)
    return {"TagList": [{"Key": k, "Value": v} for k, v in tags.items()]}


@correction(
    "AddTagsToResource",
    why="moto rejects every PatchBaseline with InvalidResourceId; and it has no associations",
)
def _add_tags_to_resource(response: Any) -> dict[str, Any]:
    params = request_params(response)
    validate_input("AddTagsToResource", params)
    resource_type, resource_id, own = _tag_target(response, params)
    tags = {t["Key"]: t["Value"] for t in params.get("Tags") or ()}
    backend = ssm_backend(response)
    if own:
        backend._resource_tags[resource_type][resource_id].update(tags)
    else:
        backend.add_tags_to_resource(resource_type=resource_type, resource_id=resource_id, tags=tags)
    return {}


@correction(
    "RemoveTagsFromResource",
    why="moto rejects every PatchBaseline with InvalidResourceId; and it has no associations",
)
def _remove_tags_from_resource(response: Any) -> dict[str, Any]:
    params = request_params(response)
    resource_type, resource_id, own = _tag_target(response, params)
    keys = [str(k) for k in params.get("TagKeys") or ()]
    backend = ssm_backend(response)
    if own:
        tags = backend._resource_tags[resource_type][resource_id]
        for key in keys:
            tags.pop(key, None)
    else:
        backend.remove_tags_from_resource(resource_type=resource_type, resource_id=resource_id, keys=keys)
    return {}


def baseline_for_patch_group(account_id: str, region: str, patch_group: str, operating_system: str) -> tuple[str, str]:
    """(baseline id, compliance level of its first approval rule) that a node in `patch_group` uses.

    Patch Manager uses the baseline registered for the node's patch group and OS, else the OS's default
    baseline. Predefined baselines report every patch as UNSPECIFIED.
    """
    state = simulator_state(account_id, region)
    with state.lock:
        baseline_id = state.patch_groups.get((patch_group, operating_system)) if patch_group else None
    if baseline_id is None:
        managed = managed_baselines(region).get(operating_system)
        if managed is None:
            raise DoesNotExistException(f"The simulator has no default patch baseline for {operating_system}.")
        return managed.baseline_id, "UNSPECIFIED"
    custom = ssm_backends[account_id][region].baselines.get(baseline_id)
    if custom is None:
        return baseline_id, "UNSPECIFIED"
    rules = (custom.approval_rules or {}).get("PatchRules") or [{}]
    return baseline_id, str(rules[0].get("ComplianceLevel") or "UNSPECIFIED")
