"""Run artifacts: the fleet as compressed JSON Lines in S3, so states pass keys, never fleets."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any, Final, NotRequired, TypedDict

from botocore.exceptions import ClientError

from tagpatch.aws import client, error_code
from tagpatch.classes import InstanceClass, ReportClass
from tagpatch.errors import ArtifactError
from tagpatch.exceptions import ExceptionSummary


class SsmFacts(TypedDict):
    registered: bool
    ping_status: str | None
    platform_type: str | None
    platform_name: str | None
    platform_version: str | None
    agent_version: str | None


class InventoryRecord(TypedDict):
    """One instance as discovery saw it."""

    instance_id: str
    name: str | None
    state: str
    tags: dict[str, str]
    platform_details: str | None
    instance_profile_arn: str | None
    launch_time: str | None
    os: str | None
    ssm: SsmFacts


# Functional syntax because `class` is the wire name and a Python keyword.
InstanceReport = TypedDict(
    "InstanceReport",
    {
        "instance_id": str,
        "name": str | None,
        "owner": str | None,
        "class": ReportClass,
        "reasons": list[str],
        "warnings": list[str],
        "patch_group": str | None,
        "patch_group_key": str | None,
        "maintenance_window": str | None,
        "window_key": str | None,
        "window_kind": str | None,
        "os": str | None,
        "state": str,
        "ping_status": str | None,
        "in_scope": bool,
        # The patch group and window tags as written, for judging what SSM's targets select.
        "targeting_tags": NotRequired[dict[str, str]],
        # The class the tags alone give; `class` is `excepted` while a patch exception is live.
        "tag_class": NotRequired[InstanceClass],
        # The live patch exception (reason, expires, approved_by, ticket, selector), if any.
        "exception": NotRequired[ExceptionSummary],
        # True while that live exception says `hold: true`: patching is held back (Scan, no Install).
        "held": NotRequired[bool],
        # The latest exception that matched but has expired: the instance is held to the rules again.
        "expired_exception": NotRequired[ExceptionSummary],
        # Its rollout wave's gate (tagpatch.gates.GateDecision.to_json()); `held` too while it is closed.
        "gate": NotRequired[dict[str, Any]],
    },
)
"""One instance after tag validation: the line app teams and governance read."""


# zlib's default level: on these JSON Lines level 9 took 2.4x as long for 3% smaller objects.
GZIP_LEVEL: Final = 6
LINES_PER_WRITE: Final = 1000  # one compressor call per thousand lines, not two per line


def encode_jsonl_gz(records: Iterable[Any]) -> bytes:
    buffer = io.BytesIO()
    # mtime=0 keeps the bytes identical for identical content.
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) as stream:
        lines: list[str] = []
        for record in records:
            lines.append(json.dumps(record, separators=(",", ":"), sort_keys=True))
            if len(lines) == LINES_PER_WRITE:
                stream.write(("\n".join(lines) + "\n").encode())
                lines.clear()
        if lines:
            stream.write(("\n".join(lines) + "\n").encode())
    return buffer.getvalue()


def decode_jsonl_gz(data: bytes) -> Iterator[Any]:
    with gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb") as stream:
        for line in stream:
            if line.strip():
                yield json.loads(line)


def put_jsonl_gz(bucket: str, key: str, records: Iterable[Any]) -> int:
    """Write records to S3; returns the compressed size in bytes."""
    body = encode_jsonl_gz(records)
    client("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/x-ndjson")
    return len(body)


def get_jsonl_gz(bucket: str, key: str) -> Iterator[Any]:
    return decode_jsonl_gz(get_bytes(bucket, key))


def put_json(bucket: str, key: str, document: Any) -> None:
    body = json.dumps(document, indent=1, sort_keys=True).encode()
    client("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")


# What S3 answers for a key that does not exist, to a caller allowed to know (s3:ListBucket).
MISSING_KEY_CODES: Final = frozenset({"NoSuchKey", "404"})


def get_bytes(bucket: str, key: str) -> bytes:
    try:
        body: bytes = client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error_code(error) in {*MISSING_KEY_CODES, "NoSuchBucket"}:
            raise ArtifactError(f"run artifact s3://{bucket}/{key} does not exist ({error_code(error)})") from error
        raise
    return body


def get_bytes_if_exists(bucket: str, key: str) -> bytes | None:
    """The object's bytes, or None only when S3 says the key does not exist.

    S3 answers GetObject on a missing key with 403 AccessDenied unless the caller may list the bucket,
    and AWS does not document whether that check honours an s3:prefix condition. So the key is looked
    up with a listing of exactly its own name (which a prefix-scoped s3:ListBucket allows) before it is
    read. AccessDenied, NoSuchBucket and every other error are raised: they never mean "no object".
    """
    s3 = client("s3")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("Contents", [])
    if not any(item.get("Key") == key for item in listed):
        return None
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error_code(error) in MISSING_KEY_CODES:
            return None  # deleted between the listing and the read
        raise
    return body


def put_bytes(bucket: str, key: str, body: bytes, content_type: str) -> None:
    client("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
