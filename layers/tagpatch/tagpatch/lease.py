"""The cycle lease: at most one cycle at a time, even when ListExecutions has not caught up.

ListExecutions is eventually consistent, and the schedule's own retries can start two executions
seconds apart that each list none of the other. The lease is one object in the artifact bucket,
written with S3's conditional writes, so that S3, not a listing, decides:

- PrepareCycle takes it with `PutObject(IfNoneMatch="*")`: of two writers exactly one gets 200, the
  other 412 PreconditionFailed (or 409 ConditionalRequestConflict while the first is in flight);
- a lease past its expiry (its cycle crashed or timed out before releasing) is taken over with
  `PutObject(IfMatch=<the ETag read>)`, so of two takeovers only the first write wins;
- the cycle releases it at its end, on the success and the failure path of the state machine, with
  `DeleteObject(IfMatch=<its ETag>)`, so it never deletes a lease another execution took over.

The lease is per target (tagpatch.targets): two targets' cycles run side by side, two cycles of one
target exclude each other. The home target keeps the single-account stack's key.

A lease expires LEASE_SECONDS after its execution started: the state machine's TimeoutSeconds, after
which that execution is over whatever happened, so a crashed cycle blocks at most one lease's time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from botocore.exceptions import ClientError

from tagpatch.aws import client, error_code
from tagpatch.cycle import iso_z, parse_time
from tagpatch.errors import CycleAlreadyRunning
from tagpatch.targets import Target

LEASE_KEY: Final = "locks/patch-cycle.lease.json"
TARGET_LEASE_PREFIX: Final = "locks/targets/"
LEASE_SECONDS: Final = 4 * 3600  # the state machine's TimeoutSeconds (tests/unit/runner/test_template.py checks)
# A conditional write that lost: 412 when the condition failed, 409 when a conflicting write was in flight.
LOST_WRITE: Final = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})


@dataclass(frozen=True)
class Lease:
    execution_id: str
    taken: datetime
    expires: datetime
    etag: str

    @property
    def execution_name(self) -> str:
        return self.execution_id.rsplit(":", 1)[-1]


def lease_key(target: Target | None, home: Target | None) -> str:
    """The lease object of `target`'s cycles: home's (or no target's) is LEASE_KEY."""
    if target is None or target == home:
        return LEASE_KEY
    return f"{TARGET_LEASE_PREFIX}{target.account_id}/{target.region}/patch-cycle.lease.json"


def _body(execution_id: str, start: datetime) -> bytes:
    expires = start + timedelta(seconds=LEASE_SECONDS)
    return json.dumps(
        {"execution_id": execution_id, "taken": iso_z(start), "expires": iso_z(expires)}, sort_keys=True
    ).encode()


def _refusal(holder: Lease | None) -> CycleAlreadyRunning:
    if holder is None:
        who = "another execution of this state machine took the cycle lease at the same moment"
    else:
        who = (
            f"execution {holder.execution_name} of this state machine holds the cycle lease "
            f"(taken {iso_z(holder.taken)}, until {iso_z(holder.expires)} at the latest)"
        )
    return CycleAlreadyRunning(
        f"{who}; this cycle stops so that two cycles never change the same maintenance windows at once. "
        "Start it again once that one has ended"
    )


def read_lease(bucket: str, key: str = LEASE_KEY) -> Lease | None:
    """The lease as it stands, or None when no cycle holds it."""
    try:
        found = client("s3").get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error_code(error) in ("NoSuchKey", "404"):
            return None
        raise
    data = json.loads(found["Body"].read())
    return Lease(
        execution_id=str(data["execution_id"]),
        taken=parse_time(str(data["taken"]), "lease taken"),
        expires=parse_time(str(data["expires"]), "lease expires"),
        etag=str(found["ETag"]),
    )


def _put(bucket: str, key: str, execution_id: str, start: datetime, **condition: str) -> Lease:
    answer = client("s3").put_object(
        Bucket=bucket, Key=key, Body=_body(execution_id, start), ContentType="application/json", **condition
    )
    return Lease(execution_id, start, start + timedelta(seconds=LEASE_SECONDS), str(answer["ETag"]))


def take_over(bucket: str, execution_id: str, start: datetime, expired: Lease, key: str = LEASE_KEY) -> Lease:
    """Replace `expired` (read earlier), only if it is still the lease S3 holds."""
    try:
        return _put(bucket, key, execution_id, start, IfMatch=expired.etag)
    except ClientError as error:
        # 412: someone replaced it since it was read; NoSuchKey: its holder released it meanwhile.
        if error_code(error) in LOST_WRITE | {"NoSuchKey"}:
            raise _refusal(read_lease(bucket, key)) from error
        raise


def take_lease(bucket: str, execution_id: str, start: datetime, key: str = LEASE_KEY) -> Lease:
    """Take the cycle lease for the execution that started at `start`, or raise CycleAlreadyRunning."""
    try:
        return _put(bucket, key, execution_id, start, IfNoneMatch="*")
    except ClientError as error:
        if error_code(error) not in LOST_WRITE:
            raise
    current = read_lease(bucket, key)
    if current is None:  # released between the write and the read: the next start may try again
        raise _refusal(None)
    if current.execution_id == execution_id:
        return current  # a retried PrepareCycle whose first answer was lost
    if current.expires > start:
        raise _refusal(current)
    return take_over(bucket, execution_id, start, current, key)


def release_lease(bucket: str, execution_id: str, key: str = LEASE_KEY) -> bool:
    """Delete the lease if `execution_id` holds it; False when it does not (never taken, taken over)."""
    current = read_lease(bucket, key)
    if current is None or current.execution_id != execution_id:
        return False
    try:
        client("s3").delete_object(Bucket=bucket, Key=key, IfMatch=current.etag)
    except ClientError as error:
        if error_code(error) in LOST_WRITE | {"NoSuchKey"}:
            return False  # taken over after it expired, between the read and the delete
        raise
    return True
