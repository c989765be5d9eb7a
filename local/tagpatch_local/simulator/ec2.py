"""EC2: make moto's tag lookup and DescribeInstances paging fast enough for 100,000-instance fleets; date
backups by the simulated clock; DeregisterImage deletes the image's snapshots when asked."""

from __future__ import annotations

import copy
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import AmiBackend
from moto.ec2.models.elastic_block_store import EBSBackend
from moto.ec2.models.tags import TagBackend
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.responses.instances import InstanceResponse
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, filter_reservations, get_prefix

from tagpatch_local.simulator import clock, iam
from tagpatch_local.simulator.core import MARKER, correction, moto_patch


@moto_patch
def _install_fast_tag_lookup() -> None:
    """Make moto's per-resource tag lookup O(1).

    moto 5.2.5 serialises every EC2 instance's tags with describe_tags(filters={"resource-id": [id]}),
    which scans every tag of every resource: DescribeInstances over 10,000 tagged instances takes
    about 20 s per 1,000-instance page. A single exact id gives the same result from the dict.
    """
    original = TagBackend.describe_tags
    if getattr(original, MARKER, None) is not None:
        return

    def describe_tags(self: Any, filters: dict[str, list[str]] | None = None) -> list[dict[str, str]]:
        if filters is not None and set(filters) == {"resource-id"} and len(filters["resource-id"]) == 1:
            resource_id = filters["resource-id"][0]
            if "*" not in resource_id and "?" not in resource_id:
                tags = self.tags.get(resource_id) or {}
                resource_type = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
                return [
                    {"resource_id": resource_id, "key": k, "value": v, "resource_type": resource_type}
                    for k, v in tags.items()
                ]
        result: list[dict[str, str]] = original(self, filters)
        return result

    setattr(describe_tags, MARKER, "ec2:describe_tags fast path")
    TagBackend.describe_tags = describe_tags  # type: ignore[method-assign]


@moto_patch
def _install_paged_describe_instances() -> None:
    """Serve a DescribeInstances page without copying every reservation in the Region.

    moto 5.2.5 copies and filters every reservation for every page, then slices one page out: reading
    100,000 instances 1,000 a page makes 100 passes over all of them. This answers the same page
    (moto's pagination by reservation, its filters, its NextToken) by copying only the reservations it
    looks at. Requests with InstanceIds keep moto's own path.
    """
    original = InstanceResponse.describe_instances
    if getattr(original, MARKER, None) is not None:
        return

    def describe_instances(self: Any) -> ActionResult:
        token = self._get_param("NextToken")
        reservations = list(self.ec2_backend.reservations.values())
        ids = [reservation.id for reservation in reservations] if token else []
        if self._get_param("InstanceIds", []) or "InstanceId.1" in self.data or (token and token not in ids):
            result: ActionResult = original(self)  # moto's own answers and errors
            return result
        self.error_on_dryrun()
        filters = self._filters_from_querystring()
        max_results = int(self._get_param("MaxResults", 100))
        page: list[Any] = []
        more = False
        for reservation in reservations[ids.index(token) + 1 if token else 0 :]:
            kept = filter_reservations([copy.copy(reservation)], filters)
            if not kept:
                continue
            if len(page) == max_results:
                more = True
                break
            page.extend(kept)
        return ActionResult({"Reservations": page, "NextToken": page[-1].id if more else None})

    describe_instances.__wrapped__ = original  # type: ignore[attr-defined]  # the tests compare both
    setattr(describe_instances, MARKER, "ec2:DescribeInstances paged without copying the Region")
    InstanceResponse.describe_instances = describe_instances  # type: ignore[method-assign]


def instance_tag_values(account_id: str, region: str, key: str) -> set[str]:
    """Every non-empty value of tag `key` on an instance, read from moto's tag store.

    For the harness (the runner subscribes one queue per Owner), not for tagpatch: listing them
    through DescribeInstances would serialise and parse the whole fleet once more per cycle.
    """
    tags: dict[str, dict[str, str]] = ec2_backends[account_id][region].tags
    return {
        value
        for resource_id, resource_tags in tags.items()
        if resource_id.startswith("i-") and (value := resource_tags.get(key))
    }


@moto_patch
def _install_clocked_backups() -> None:
    """Date new images and snapshots by the simulated clock, as EC2 dates them by when they were taken.

    moto 5.2.5 stamps CreationDate and StartTime with the real time; a scenario that advances its clock
    weeks ahead would otherwise see every backup as made before the scenario began.
    """
    original_image = AmiBackend.create_image
    if getattr(original_image, MARKER, None) is not None:
        return
    original_snapshot = EBSBackend.create_snapshot

    def create_image(self: Any, *args: Any, **kwargs: Any) -> Any:
        image = original_image(self, *args, **kwargs)
        fixed = clock.clock(self.account_id, self.region_name).fixed
        if fixed is not None:
            image.creation_date = fixed
        return image

    def create_snapshot(self: Any, *args: Any, **kwargs: Any) -> Any:
        snapshot = original_snapshot(self, *args, **kwargs)
        fixed = clock.clock(self.account_id, self.region_name).fixed
        if fixed is not None:
            snapshot.start_time = fixed
        return snapshot

    setattr(create_image, MARKER, "ec2:CreateImage dated by the simulated clock")
    setattr(create_snapshot, MARKER, "ec2 snapshots dated by the simulated clock")
    AmiBackend.create_image = create_image  # type: ignore[method-assign]
    EBSBackend.create_snapshot = create_snapshot  # type: ignore[method-assign]


def _image_snapshot_ids(image: Any) -> list[str]:
    return [str(m["Ebs"]["SnapshotId"]) for m in image.block_device_mappings if m.get("Ebs", {}).get("SnapshotId")]


@correction(
    "DeregisterImage",
    service="ec2",
    response_class=AmisResponse,
    why="moto 5.2.5 ignores DeleteAssociatedSnapshots: the image's snapshots stay, and no DeleteSnapshotResults",
)
def _deregister_image(response: Any) -> dict[str, Any]:
    """DeregisterImage (EC2 API Reference): with DeleteAssociatedSnapshots, each of the image's snapshots
    is deleted unless another image uses it (`skipped`). Its ReturnCode `missing-permissions` implies the
    caller's ec2:DeleteSnapshot on each snapshot is checked, without failing the call: so the simulator
    checks it (an inference, docs/simulator.md)."""
    image_id = str(response._get_param("ImageId"))
    delete_snapshots = str(response._get_param("DeleteAssociatedSnapshots", "false")).lower() == "true"
    response.error_on_dryrun()
    backend = response.ec2_backend
    image = backend.amis.get(image_id)
    snapshot_ids = _image_snapshot_ids(image) if image is not None else []
    backend.deregister_image(image_id)  # moto's InvalidAMIID errors for an unknown or deregistered image
    if not delete_snapshots:
        return {"Return": True}
    results = []
    for snapshot_id in snapshot_ids:
        if any(snapshot_id in _image_snapshot_ids(other) for other in backend.amis.values()):
            code = "skipped"
        elif not iam.caller_may(response, "ec2", "DeleteSnapshot", {"SnapshotId": snapshot_id}):
            code = "missing-permissions"
        else:
            backend.delete_snapshot(snapshot_id)
            code = "success"
        results.append({"SnapshotId": snapshot_id, "ReturnCode": code})
    return {"Return": True, "DeleteSnapshotResults": results}
