"""The compliance tables' partitions in the hub's Glue catalog, registered by each target's ComplianceExport.

Account ids are known only at run time, so the tables are partitioned by account and Region with
registered partitions rather than projected ones (docs/decisions.md, "One compliance view"). Each
target's export registers its own: the day's `snapshots` partition, its `latest` partition and its
resource data sync partitions, and drops its `snapshots` partitions of the dates the bucket's lifecycle
rule has expired. Reconciled: the target's partitions are read first (GetPartitions) and only what
differs is written, so a rerun writes nothing. A partition's storage is its table's, at the folder its
values name under the table's location. Each refusal is kept, not raised, so the other tables are
still registered; the handler fails the cycle with them once the rest is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Final

from botocore.exceptions import ClientError

from tagpatch.aws import client, error_code, error_message, paginate
from tagpatch.errors import ConfigurationError
from tagpatch.targets import Target

# The one resourcetype= folder SSM's resource data sync writes a managed node's types under (SSM User Guide).
SYNC_RESOURCE_TYPE: Final = "ManagedInstanceInventory"
DATE_KEY: Final = "dt"
# The partition keys that name the target: ours (account_id) and the resource data sync's (accountid).
ACCOUNT_KEYS: Final = frozenset({"account_id", "accountid"})
REGION_KEY: Final = "region"
CREATE_BATCH: Final = 100  # BatchCreatePartition's PartitionInputList at most (Glue API Reference)
DELETE_BATCH: Final = 25  # BatchDeletePartition's PartitionsToDelete at most
PAGE_SIZE: Final = 1000  # GetPartitions' MaxResults at most
# The one entry error that means the entry is as this run wanted (another run got there first).
CREATED: Final = "AlreadyExistsException"
DROPPED: Final = "EntityNotFoundException"


@dataclass(frozen=True)
class CatalogTables:
    """The compliance database and its tables, as the stack names them (the function's environment)."""

    database: str
    snapshots: str
    latest: str
    sync: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return (self.snapshots, self.latest, *self.sync)


@dataclass(frozen=True)
class TableShape:
    """What a partition of a table copies from it: its partition keys and storage (StorageDescriptor)."""

    name: str
    keys: tuple[str, ...]
    storage: Mapping[str, Any]

    @classmethod
    def of(cls, table: Mapping[str, Any]) -> TableShape:
        return cls(
            str(table["Name"]),
            tuple(str(key["Name"]) for key in table.get("PartitionKeys") or []),
            dict(table.get("StorageDescriptor") or {}),
        )

    def values(self, target: Target, day: date) -> tuple[str, ...]:
        """This target's partition of the table (on `day`, for a table partitioned by date)."""
        known = {DATE_KEY: day.isoformat(), REGION_KEY: target.region, "resourcetype": SYNC_RESOURCE_TYPE}
        known |= dict.fromkeys(ACCOUNT_KEYS, target.account_id)
        unknown = [key for key in self.keys if key not in known]
        if unknown or not self.keys:
            raise ConfigurationError(
                f"Glue table {self.name} is partitioned by {', '.join(self.keys) or 'nothing'}; tagpatch registers "
                f"partitions by {DATE_KEY}, account and Region ({', '.join(sorted(known))})"
            )
        return tuple(known[key] for key in self.keys)

    def target_filter(self, target: Target) -> str:
        """A GetPartitions expression for every partition of the target (account ids and Regions are
        validated names, so they are quoted as they are)."""
        terms = [
            f"{key} = '{target.account_id if key in ACCOUNT_KEYS else target.region}'"
            for key in self.keys
            if key in ACCOUNT_KEYS or key == REGION_KEY
        ]
        return " AND ".join(terms)

    def partition_input(self, values: Sequence[str]) -> dict[str, Any]:
        folder = "".join(f"{key}={value}/" for key, value in zip(self.keys, values, strict=True))
        location = f"{str(self.storage.get('Location', '')).rstrip('/')}/{folder}"
        return {"Values": list(values), "StorageDescriptor": {**self.storage, "Location": location}}


@dataclass(frozen=True)
class TablePlan:
    table: TableShape
    create: tuple[tuple[str, ...], ...] = ()
    delete: tuple[tuple[str, ...], ...] = ()


def plan_table(
    table: TableShape, registered: Iterable[Sequence[str]], target: Target, day: date, oldest_kept: date | None
) -> TablePlan:
    """What to write for one table: the target's partition if it is missing, and (a table partitioned
    by date, given `oldest_kept`) the target's partitions of earlier dates."""
    have = {tuple(values) for values in registered}
    wanted = table.values(target, day)
    create = () if wanted in have else (wanted,)
    delete: tuple[tuple[str, ...], ...] = ()
    if oldest_kept is not None and DATE_KEY in table.keys:
        position = table.keys.index(DATE_KEY)
        delete = tuple(sorted(values for values in have if values[position] < oldest_kept.isoformat()))
    return TablePlan(table, create, delete)


@dataclass
class Registration:
    """What this run did to the catalog, and each refusal (`table: code: message`)."""

    created: int = 0
    deleted: int = 0
    refused: list[str] = field(default_factory=list)


def _batches(items: Sequence[tuple[str, ...]], size: int) -> Iterable[Sequence[tuple[str, ...]]]:
    return (items[start : start + size] for start in range(0, len(items), size))


def entry_refusals(table: str, errors: Iterable[Mapping[str, Any]], done: str) -> list[str]:
    """A batch call's entry errors that are refusals: every one but `done` (CREATED or DROPPED)."""
    refusals = []
    for entry in errors:
        detail = entry.get("ErrorDetail") or {}
        if detail.get("ErrorCode") != done:
            values = "/".join(entry.get("PartitionValues") or [])
            refusals.append(f"{table} ({values}): {detail.get('ErrorCode')}: {detail.get('ErrorMessage', '')}")
    return refusals


def _apply(glue: Any, database: str, plan: TablePlan, outcome: Registration) -> None:
    name = plan.table.name
    for batch in _batches(plan.create, CREATE_BATCH):
        inputs = [plan.table.partition_input(values) for values in batch]
        answer = glue.batch_create_partition(DatabaseName=database, TableName=name, PartitionInputList=inputs)
        errors = answer.get("Errors") or []
        outcome.created += len(batch) - len(errors)
        outcome.refused += entry_refusals(name, errors, CREATED)
    for batch in _batches(plan.delete, DELETE_BATCH):
        doomed = [{"Values": list(values)} for values in batch]
        answer = glue.batch_delete_partition(DatabaseName=database, TableName=name, PartitionsToDelete=doomed)
        errors = answer.get("Errors") or []
        outcome.deleted += len(batch) - len(errors)
        outcome.refused += entry_refusals(name, errors, DROPPED)


def register_partitions(tables: CatalogTables, target: Target, day: date, retention_days: int) -> Registration:
    """Register the target's partitions of every compliance table, and drop its snapshot partitions of
    dates older than `retention_days` (the bucket's lifecycle rule expires their files)."""
    glue = client("glue")
    oldest_kept = day - timedelta(days=retention_days)
    outcome = Registration()
    for name in tables.names:
        try:
            table = TableShape.of(glue.get_table(DatabaseName=tables.database, Name=name)["Table"])
            registered = [
                partition["Values"]
                for partition in paginate(
                    glue.get_partitions,
                    "Partitions",
                    DatabaseName=tables.database,
                    TableName=name,
                    Expression=table.target_filter(target),
                    ExcludeColumnSchema=True,
                    MaxResults=PAGE_SIZE,
                )
            ]
            _apply(glue, tables.database, plan_table(table, registered, target, day, oldest_kept), outcome)
        except ClientError as error:
            # The other tables are still registered; the handler fails the cycle with this once it has written.
            outcome.refused.append(f"{name}: {error_code(error)}: {error_message(error)}")
    return outcome


def refusal_message(refused: Sequence[str]) -> str:
    return (
        f"Glue refused {len(refused)} change(s) to the compliance tables' partitions (the snapshot and "
        f"report.html were written; Athena does not see this target's rows there until they are): {'; '.join(refused)}"
    )
