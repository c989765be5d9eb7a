"""Fleet files: what EC2 instances the simulated account holds, how they are tagged, and SSM's view.

A fleet file (YAML or JSON) lists `instances` explicitly and/or asks for `generate`d ones: the hub's
own account (the organization's management account) in its home Region. It may also name the
organization's member `accounts`, each with its Regions and its own `instances`/`generate`, seeded
in every one of its Regions (`FleetFile`, `MemberAccount`). Loading is strict: an unknown key, a bad
enum value or a non-string tag is an error naming the file, the place (and for YAML the line) and the
key, because a silently ignored typo makes a scenario test nothing.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal, cast, get_args

from tagpatch.classes import InstanceClass
from tagpatch.platforms import BY_OPERATING_SYSTEM, OPERATING_SYSTEMS
from tagpatch_local.documents import DocPath, Document, InputError, format_path, load_document

InstanceState = Literal["running", "stopped"]
SsmState = Literal["online", "connection_lost", "unmanaged"]
InstanceProfile = Literal["ssm", "none"]
ExpectedClass = InstanceClass  # what TagValidation should make of an instance
PatchOutcome = Literal["success", "failed", "timeout"]
HookName = Literal["pre_install", "post_install", "on_exit"]

PATCH_GROUP_KEYS: Final = ("Patch Group", "PatchGroup")
MAINTENANCE_WINDOW_KEY: Final = "Maintenance Window"
INSTANCE_PROFILE_NAME: Final = "tagpatch-sim-ssm-instance-profile"
INSTANCE_ROLE_NAME: Final = "tagpatch-sim-ssm-instance-role"
SSM_CORE_POLICY_ARN: Final = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"

_MAX_TAGS: Final = 50  # EC2: 50 user tags per resource
_MAX_TAG_KEY: Final = 128
_MAX_TAG_VALUE: Final = 256
# One fleet, however many `generate` blocks it has: bounds the time and memory a fleet file can cost.
MAX_INSTANCES: Final = 100_000
_STOP_BATCH: Final = 500
_LOST_FOR: Final = timedelta(hours=6)  # how long ago a ConnectionLost node last pinged

# Realistic tag mistakes the generator plants (bad_tag_share); kept here so tests and docs can name them.
NEAR_MISS_PATCH_GROUP_KEYS: Final = ("Patch-Group", "patch group", "Patch_Group", "Patchgroup")
TYPO_SCHEDULES: Final = ("cron(0 2 * * SUN *)", "rate(1 days)", "cron(0 25 ? * SUN *)", "sunday-2am")
TAG_PROBLEMS: Final = (
    "missing_patch_group",
    "missing_schedule",
    "near_miss_key",
    "typo_schedule",
    "invalid_patch_group",
    "conflicting_patch_group",
)


class FleetError(InputError):
    """A fleet file is malformed. The message names the file, the place (and line) and the key."""


@dataclass(frozen=True)
class FleetPatch:
    """How AWS-RunPatchBaseline behaves on the instance (simulated): the fleet file's `patch:` block.

    A Scan reports `missing` and changes nothing; an Install with `result: success` installs them all,
    `failed` leaves them missing and counts them failed, `timeout` reports nothing new.
    """

    missing: int = 0  # applicable patches not installed yet
    critical: int = 0  # of those, Critical or Important security patches
    result: PatchOutcome = "success"  # what the next Install does
    minutes: int | None = None  # how long AWS-RunPatchBaseline runs on it; None: the simulator's default
    # The hook of AWS-RunPatchBaselineWithHooks that fails on it (pre_install, post_install, on_exit), if
    # the task names a document for that hook: the command fails; a post-install or on-exit failure
    # comes after the patches installed.
    failing_hook: HookName | None = None
    # `backup: failed`: an image of it (a backup runbook's aws:createImage) ends failed, so a runbook
    # that aborts on that step never patches it.
    backup_fails: bool = False


@dataclass(frozen=True)
class FleetInstance:
    tags: Mapping[str, str]
    os: str  # SSM OperatingSystem value (tagpatch.platforms.OPERATING_SYSTEMS)
    state: InstanceState = "running"
    ssm: SsmState = "online"
    instance_profile: InstanceProfile = "ssm"
    # The class tag validation should give this instance, when the fleet's author knows it: tests
    # compare it instance by instance. Seeding ignores it.
    expect: ExpectedClass | None = None
    patch: FleetPatch = FleetPatch()


AccountStatus = Literal["ACTIVE", "SUSPENDED"]  # Organizations' Account Status a fleet can ask for


@dataclass(frozen=True)
class MemberAccount:
    """A member account of the simulated organization: the fleet file's `accounts:` entry."""

    id: str  # 12 digits
    name: str
    regions: tuple[str, ...]  # its `instances` are seeded in each
    instances: tuple[FleetInstance, ...] = ()
    status: AccountStatus = "ACTIVE"  # SUSPENDED: closed (CloseAccount), so a cycle must skip it
    ou: tuple[str, ...] = ()  # the OU path from the root (nested OUs); empty: directly under the root
    spoke: bool = True  # whether the spoke stack is deployed in it (StackSets); false: a target lacking it


@dataclass(frozen=True)
class FleetFile:
    """A whole fleet file: the hub's home-Region instances and the organization's member accounts."""

    instances: list[FleetInstance]
    accounts: tuple[MemberAccount, ...] = ()

    def seeded_count(self) -> int:
        """Instances the simulated organization holds once seeded (each account's, in each of its Regions)."""
        return len(self.instances) + sum(len(a.instances) * len(a.regions) for a in self.accounts)


@dataclass(frozen=True)
class PatchDistribution:
    """A `generate` block's `patch:`: weights over missing counts, critical counts and Install results."""

    missing: Mapping[int, float] = field(default_factory=lambda: {0: 1.0})
    critical: Mapping[int, float] = field(default_factory=lambda: {0: 1.0})  # capped at the missing count
    result: Mapping[str, float] = field(default_factory=lambda: {"success": 1.0})


@dataclass(frozen=True)
class GeneratorSpec:
    """A `generate` block. Weight mappings map a choice to a positive relative weight."""

    count: int
    patch_groups: Mapping[str, float]
    schedules: Mapping[str, float]  # schedule expressions or policy window names
    os: Mapping[str, float]
    seed: int = 0
    name_prefix: str = "gen"
    owners: Mapping[str, float] = field(default_factory=dict)  # empty: no Owner tag
    patch_group_key: Mapping[str, float] = field(default_factory=lambda: {"Patch Group": 1.0})
    bad_tag_share: float = 0.0
    stopped_share: float = 0.0
    unmanaged_share: float = 0.0
    connection_lost_share: float = 0.0
    patch: PatchDistribution = PatchDistribution()


# --------------------------------------------------------------------------------------------------
# Parsing

_Path = DocPath

_INSTANCE_KEYS: Final = ("tags", "os", "state", "ssm", "instance_profile", "expect", "patch")
PATCH_KEYS: Final = ("missing", "critical", "result")
# A `generate` block has no per-instance duration or hook failure.
INSTANCE_PATCH_KEYS: Final = (*PATCH_KEYS, "minutes", "failing_hook", "backup")
_BACKUP_OUTCOMES: Final = ("success", "failed")
_MAX_MINUTES: Final = 24 * 60  # AWS-RunPatchBaseline's own execution timeout is far below a day
_MAX_PATCHES: Final = 10_000  # far above any real count of missing patches; catches a stray digit
_GENERATE_KEYS: Final = (
    "count",
    "seed",
    "name_prefix",
    "patch_groups",
    "schedules",
    "os",
    "owners",
    "patch_group_key",
    "bad_tag_share",
    "stopped_share",
    "unmanaged_share",
    "connection_lost_share",
    "patch",
)
_GENERATE_REQUIRED: Final = ("count", "patch_groups", "schedules", "os")
_SHARES: Final = ("bad_tag_share", "stopped_share", "unmanaged_share", "connection_lost_share")


@dataclass(frozen=True)
class _Context:
    source: str
    lines: Mapping[_Path, int]
    prefix: _Path = ()  # where the fleet sits in its file (a scenario's `add` edit)
    already: int = 0  # instances the scenario holds before this fleet is added

    def error(self, path: _Path, message: str) -> FleetError:
        return FleetError(f"{Document(self.source, None, self.lines).where((*self.prefix, *path))}: {message}")


def load_fleet(path: Path) -> list[FleetInstance]:
    """Read a fleet file (JSON if it ends in .json, YAML otherwise) and expand the hub's instances; a file
    that names member `accounts` is refused here (load_fleet_file reads those)."""
    fleet_file = load_fleet_file(path)
    if fleet_file.accounts:
        raise FleetError(f"{path}: names member accounts, which this command does not seed; remove `accounts`")
    return fleet_file.instances


def load_fleet_file(path: Path) -> FleetFile:
    """Read a whole fleet file: the hub's instances and the member accounts with theirs."""
    document = load_document(path, "fleet file", FleetError)
    return _parse_file(document.value, _Context(document.source, document.lines))


def parse_fleet_file_in(document: Document, path: DocPath) -> FleetFile:
    """The whole fleet at `path` inside a larger file (a scenario's inline fleet); errors name its lines."""
    return _parse_file(_value_at(document.value, path), _Context(document.source, document.lines, path))


def parse_fleet(document: object, source: str) -> list[FleetInstance]:
    """Expand an already-parsed fleet document; `source` names it in error messages."""
    return _parse(document, _Context(source, {}))


def parse_fleet_in(document: Document, path: DocPath, already: int = 0) -> list[FleetInstance]:
    """Expand the fleet at `path` inside a larger file, on top of `already` instances; errors name its lines."""
    return _parse(_value_at(document.value, path), _Context(document.source, document.lines, path, already))


def parse_tags_in(document: Document, path: DocPath) -> dict[str, str]:
    """Check the tags at `path` inside a larger file by EC2's rules, as a fleet file's tags are."""
    return _tags(_value_at(document.value, path), (), _Context(document.source, document.lines, path))


def _value_at(value: Any, path: DocPath) -> Any:
    for part in path:
        value = value[part]
    return value


def _parse_file(document: object, ctx: _Context) -> FleetFile:
    top = _mapping(document, (), ctx) if document is not None else None
    if top is not None:
        _check_keys(top, (), _FILE_KEYS, ctx)
    if top is None or "accounts" not in top:
        return FleetFile(_parse(document, ctx))
    hub = {key: value for key, value in top.items() if key != "accounts"}
    instances = _parse(hub, ctx) if hub else []
    accounts = _parse_accounts(top["accounts"], ("accounts",), ctx, len(instances))
    return FleetFile(instances, accounts)


_FILE_KEYS: Final = ("instances", "generate", "accounts")
_ACCOUNT_KEYS: Final = ("id", "name", "regions", "status", "ou", "spoke", "instances", "generate")
_ACCOUNT_STATUSES: Final[tuple[str, ...]] = get_args(AccountStatus)
_ACCOUNT_NAME_MAX: Final = 50  # Organizations' AccountName: 1-50 printable ASCII characters
_OU_NAME_MAX: Final = 128  # Organizations' OrganizationalUnitName
_OU_DEPTH_MAX: Final = 5  # Organizations: OUs nest at most five levels under the root
MAX_ACCOUNTS: Final = 200  # the design's largest organization (docs/decisions.md); bounds seeding time


def _parse_accounts(raw: object, path: _Path, ctx: _Context, hub_instances: int) -> tuple[MemberAccount, ...]:
    from tagpatch_local.account_facts import ACCOUNT_ID  # noqa: PLC0415 - the hub is the management account

    if not isinstance(raw, list) or not raw:
        raise ctx.error(path, f"expected a non-empty list of member accounts, got {_type_name(raw)}")
    if len(raw) > MAX_ACCOUNTS:
        raise ctx.error(path, f"{len(raw)} accounts; at most {MAX_ACCOUNTS}")
    accounts: list[MemberAccount] = []
    seen: dict[str, _Path] = {}
    total = ctx.already + hub_instances
    for index, item in enumerate(raw):
        where = (*path, index)
        account = _parse_account(item, where, ctx, total)
        if account.id == ACCOUNT_ID:
            _check_hub_entry(item, account, where, ctx)
        if account.id in seen:
            raise ctx.error(
                (*where, "id"), f"account {account.id} is already listed at {format_path(seen[account.id])}"
            )
        seen[account.id] = where
        total += len(account.instances) * len(account.regions)
        accounts.append(account)
    return tuple(accounts)


def _check_hub_entry(item: Mapping[str, Any], account: MemberAccount, path: _Path, ctx: _Context) -> None:
    """The hub's own account may be listed for its other Regions: service-managed StackSets skip the
    management account, so its spoke there is a stack of its own (docs/operators.md). Its home Region is
    the top-level `instances`/`generate`, and it is the organization's management account, not a member."""
    from tagpatch_local.account_facts import ACCOUNT_ID, DEFAULT_REGION  # noqa: PLC0415 - as _parse_accounts

    if DEFAULT_REGION in account.regions:
        raise ctx.error(
            (*path, "regions"),
            f"{DEFAULT_REGION} is the hub's home Region; its instances there are the top-level `instances`/`generate`",
        )
    for key in ("ou", "status"):
        if key in item:
            raise ctx.error((*path, key), f"{ACCOUNT_ID} is the hub, the organization's management account: no {key!r}")


def _parse_account(raw: object, path: _Path, ctx: _Context, already: int) -> MemberAccount:
    item = _mapping(raw, path, ctx)
    _check_keys(item, path, _ACCOUNT_KEYS, ctx)
    for key in ("id", "regions"):
        if key not in item:
            raise ctx.error(path, f"missing required key {key!r}")
    account_id = item["id"]
    if not isinstance(account_id, str) or len(account_id) != 12 or not account_id.isdigit():
        hint = "; quote it, YAML reads digits as a number" if isinstance(account_id, int) else ""
        raise ctx.error((*path, "id"), f"an account id is a string of 12 digits, got {account_id!r}{hint}")
    name = item.get("name", f"member-{account_id}")
    printable_ascii = isinstance(name, str) and name.isascii() and name.isprintable()
    if not printable_ascii or not 1 <= len(name) <= _ACCOUNT_NAME_MAX:
        raise ctx.error((*path, "name"), f"an account name is 1-{_ACCOUNT_NAME_MAX} printable ASCII characters")
    regions = _regions(item["regions"], (*path, "regions"), ctx)
    spoke = item.get("spoke", True)
    if not isinstance(spoke, bool):
        raise ctx.error((*path, "spoke"), f"must be true or false, got {spoke!r}")
    fleet_keys = {key: item[key] for key in ("instances", "generate") if key in item}
    instances: list[FleetInstance] = []
    if fleet_keys:
        instances = _parse(fleet_keys, replace(ctx, prefix=(*ctx.prefix, *path)))
        seeded = already + len(instances) * len(regions)
        if seeded > MAX_INSTANCES:
            raise ctx.error(
                path, f"brings the fleet to {seeded:,} instances (in each of its Regions); at most {MAX_INSTANCES:,}"
            )
    return MemberAccount(
        id=account_id,
        name=name,
        regions=regions,
        instances=tuple(instances),
        status=cast(AccountStatus, _enum(item.get("status", "ACTIVE"), (*path, "status"), _ACCOUNT_STATUSES, ctx)),
        ou=_ou_path(item["ou"], (*path, "ou"), ctx) if "ou" in item else (),
        spoke=spoke,
    )


def _regions(raw: object, path: _Path, ctx: _Context) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise ctx.error(path, f"expected a non-empty list of Regions, e.g. [us-east-1, eu-west-1], got {raw!r}")
    known = _known_regions()
    regions: list[str] = []
    for index, region in enumerate(raw):
        if not isinstance(region, str) or region not in known:
            raise ctx.error((*path, index), f"unknown Region {region!r}; expected an AWS Region, e.g. us-east-1")
        if region in regions:
            raise ctx.error((*path, index), f"Region {region} is listed twice")
        regions.append(region)
    return tuple(regions)


@functools.cache
def _known_regions() -> frozenset[str]:
    """The commercial Regions botocore's endpoint data lists for EC2 and SSM (what a member can be seeded in)."""
    import botocore.session  # noqa: PLC0415 - loaded only for a fleet that names accounts

    session = botocore.session.get_session()
    return frozenset(session.get_available_regions("ec2")) & frozenset(session.get_available_regions("ssm"))


def _ou_path(raw: object, path: _Path, ctx: _Context) -> tuple[str, ...]:
    if not isinstance(raw, str) or not raw:
        raise ctx.error(path, f"expected an OU name, or a path of nested OU names (a/b), got {raw!r}")
    names = tuple(raw.split("/"))
    if len(names) > _OU_DEPTH_MAX or any(not 1 <= len(name) <= _OU_NAME_MAX for name in names):
        raise ctx.error(
            path, f"each OU name is 1-{_OU_NAME_MAX} characters, nested at most {_OU_DEPTH_MAX} deep, got {raw!r}"
        )
    return names


def _parse(document: object, ctx: _Context) -> list[FleetInstance]:
    if document is None:
        raise ctx.error((), "the fleet is empty; expected a mapping with 'instances' and/or 'generate'")
    top = _mapping(document, (), ctx)
    _check_keys(top, (), ("instances", "generate"), ctx)
    if not top:
        raise ctx.error((), "expected 'instances' and/or 'generate'")
    fleet: list[FleetInstance] = []
    if "instances" in top:
        items = top["instances"]
        if not isinstance(items, list):
            raise ctx.error(("instances",), f"expected a list, got {_type_name(items)}")
        fleet.extend(_parse_instance(item, ("instances", i), ctx) for i, item in enumerate(items))
    if "generate" in top:
        block = top["generate"]
        specs: list[tuple[_Path, object]]
        if isinstance(block, list):
            specs = [(("generate", i), spec) for i, spec in enumerate(block)]
        else:
            specs = [(("generate",), block)]
        prefixes: dict[str, _Path] = {}
        for path, raw in specs:
            spec = _parse_spec(raw, path, ctx)
            if spec.name_prefix in prefixes:
                raise ctx.error(
                    (*path, "name_prefix"),
                    f"name_prefix {spec.name_prefix!r} is already used by "
                    f"{format_path(prefixes[spec.name_prefix])}; Name tags would collide",
                )
            prefixes[spec.name_prefix] = path
            total = ctx.already + len(fleet) + spec.count
            if total > MAX_INSTANCES:
                raise ctx.error(
                    (*path, "count"),
                    f"brings the fleet to {total:,} instances; at most {MAX_INSTANCES:,} instances in all",
                )
            fleet.extend(generate_fleet(spec))
    return fleet


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _mapping(value: object, path: _Path, ctx: _Context) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ctx.error(path, f"expected a mapping, got {_type_name(value)}")
    for key in value:
        if not isinstance(key, str):
            raise ctx.error(path, f"keys must be strings, got {key!r} ({_type_name(key)})")
    return cast(dict[str, Any], value)


def _check_keys(mapping: Mapping[str, object], path: _Path, allowed: Sequence[str], ctx: _Context) -> None:
    for key in mapping:
        if key not in allowed:
            raise ctx.error((*path, key), f"unknown key {json.dumps(key)}; expected one of {', '.join(allowed)}")


def _enum(value: object, path: _Path, allowed: Sequence[str], ctx: _Context) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ctx.error(path, f"invalid value {value!r}; expected one of {', '.join(allowed)}")
    return value


def _operating_system(value: object, path: _Path, ctx: _Context) -> str:
    if not isinstance(value, str) or value not in OPERATING_SYSTEMS:
        raise ctx.error(
            path,
            f"unknown operating system {value!r}; expected one of {', '.join(sorted(OPERATING_SYSTEMS))}",
        )
    return value


def xml_unsafe_character(text: str) -> str | None:
    """The first character XML 1.0 cannot carry (C0 controls but tab, LF and CR; U+FFFE, U+FFFF;
    lone surrogates). EC2 answers in XML, so a tag holding one could never be described back."""
    for character in text:
        point = ord(character)
        if (point < 0x20 and character not in "\t\n\r") or 0xD800 <= point <= 0xDFFF or point in (0xFFFE, 0xFFFF):
            return f"U+{point:04X}"
    return None


def _tags(value: object, path: _Path, ctx: _Context) -> dict[str, str]:
    tags = _mapping(value, path, ctx)
    if len(tags) > _MAX_TAGS:
        raise ctx.error(path, f"{len(tags)} tags; EC2 allows at most {_MAX_TAGS}")
    for key, tag_value in tags.items():
        if not 1 <= len(key) <= _MAX_TAG_KEY:
            raise ctx.error((*path, key), f"tag keys must be 1-{_MAX_TAG_KEY} characters")
        for what, text in (("key", key), ("value", tag_value)):
            unsafe = xml_unsafe_character(text) if isinstance(text, str) else None
            if unsafe is not None:
                raise ctx.error(
                    (*path, key),
                    f"the tag {what} holds the control character {unsafe}, which EC2's XML answers cannot "
                    "carry (what EC2 does with it is not documented); remove it",
                )
        if key.lower().startswith("aws:"):
            raise ctx.error((*path, key), "tag keys starting with 'aws:' are reserved by AWS")
        if not isinstance(tag_value, str):
            # YAML turns `Owner: 42` or `Patch Group: null` into non-strings; EC2 tags are strings.
            raise ctx.error(
                (*path, key),
                f"tag values must be strings, got {tag_value!r} ({_type_name(tag_value)}); quote it",
            )
        if len(tag_value) > _MAX_TAG_VALUE:
            raise ctx.error((*path, key), f"tag values must be at most {_MAX_TAG_VALUE} characters")
    return dict(tags)


def _parse_instance(raw: object, path: _Path, ctx: _Context) -> FleetInstance:
    item = _mapping(raw, path, ctx)
    _check_keys(item, path, _INSTANCE_KEYS, ctx)
    if "os" not in item:
        raise ctx.error(path, "missing required key 'os'")
    return FleetInstance(
        tags=MappingProxyType(_tags(item.get("tags", {}), (*path, "tags"), ctx)),
        os=_operating_system(item["os"], (*path, "os"), ctx),
        state=cast(InstanceState, _enum(item.get("state", "running"), (*path, "state"), _STATES, ctx)),
        ssm=cast(SsmState, _enum(item.get("ssm", "online"), (*path, "ssm"), _SSM_STATES, ctx)),
        instance_profile=cast(
            InstanceProfile,
            _enum(item.get("instance_profile", "ssm"), (*path, "instance_profile"), _PROFILES, ctx),
        ),
        expect=cast(ExpectedClass, _enum(item["expect"], (*path, "expect"), _CLASSES, ctx))
        if "expect" in item
        else None,
        patch=parse_patch(item["patch"], (*path, "patch"), ctx) if "patch" in item else FleetPatch(),
    )


def _patch_count(value: object, path: _Path, ctx: _Context) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_PATCHES:
        raise ctx.error(path, f"must be a whole number of patches from 0 to {_MAX_PATCHES}, got {value!r}")
    return value


def parse_patch(raw: object, path: _Path, ctx: _Context, base: FleetPatch | None = None) -> FleetPatch:
    """A `patch:` block; keys it leaves out keep `base`'s values (a scenario edit) or the defaults."""
    block = _mapping(raw, path, ctx)
    _check_keys(block, path, INSTANCE_PATCH_KEYS, ctx)
    base = base or FleetPatch()
    missing = _patch_count(block["missing"], (*path, "missing"), ctx) if "missing" in block else base.missing
    critical = _patch_count(block["critical"], (*path, "critical"), ctx) if "critical" in block else base.critical
    if critical > missing:
        raise ctx.error(path, f"critical ({critical}) counts patches among the missing ones ({missing}); lower it")
    result = (
        cast(PatchOutcome, _enum(block["result"], (*path, "result"), _PATCH_OUTCOMES, ctx))
        if "result" in block
        else base.result
    )
    minutes = base.minutes
    if "minutes" in block:
        value = block["minutes"]
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= _MAX_MINUTES:
            raise ctx.error(
                (*path, "minutes"), f"must be a whole number of minutes from 1 to {_MAX_MINUTES}, got {value!r}"
            )
        minutes = value
    hook = (
        cast(HookName, _enum(block["failing_hook"], (*path, "failing_hook"), get_args(HookName), ctx))
        if "failing_hook" in block
        else base.failing_hook
    )
    backup_fails = (
        _enum(block["backup"], (*path, "backup"), _BACKUP_OUTCOMES, ctx) == "failed"
        if "backup" in block
        else base.backup_fails
    )
    return FleetPatch(
        missing=missing,
        critical=critical,
        result=result,
        minutes=minutes,
        failing_hook=hook,
        backup_fails=backup_fails,
    )


def parse_patch_in(document: Document, path: DocPath) -> Mapping[str, Any]:
    """A scenario edit's `set:` for `patch:` checked for shape; applied over each instance's block later."""
    ctx = _Context(document.source, document.lines)
    parse_patch(_value_at(document.value, path), path, ctx)  # the keys and values alone are valid
    return dict(_value_at(document.value, path))


_STATES: Final[tuple[str, ...]] = get_args(InstanceState)
_SSM_STATES: Final[tuple[str, ...]] = get_args(SsmState)
_PROFILES: Final[tuple[str, ...]] = get_args(InstanceProfile)
_CLASSES: Final[tuple[str, ...]] = get_args(ExpectedClass)
_PATCH_OUTCOMES: Final[tuple[str, ...]] = get_args(PatchOutcome)
# What each planted problem makes of an instance's class (precedence over agent and state issues).
_PROBLEM_CLASS: Final[Mapping[str, ExpectedClass]] = {
    "missing_patch_group": "missing_tags",
    "missing_schedule": "missing_tags",
    "near_miss_key": "missing_tags",
    "typo_schedule": "invalid_tags",
    "invalid_patch_group": "invalid_tags",
    "conflicting_patch_group": "invalid_tags",
}


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _weights(
    value: object, path: _Path, ctx: _Context, key_check: Callable[[str, _Path], None] | None = None
) -> dict[str, float]:
    weights = _mapping(value, path, ctx)
    if not weights:
        raise ctx.error(path, "expected at least one weighted choice")
    for key, weight in weights.items():
        if not _number(weight) or not weight > 0 or weight == float("inf"):
            raise ctx.error((*path, key), f"weight must be a positive number, got {weight!r}")
        if key_check is not None:
            key_check(key, (*path, key))
    return {key: float(weight) for key, weight in weights.items()}


def _parse_spec(raw: object, path: _Path, ctx: _Context) -> GeneratorSpec:
    block = _mapping(raw, path, ctx)
    _check_keys(block, path, _GENERATE_KEYS, ctx)
    for key in _GENERATE_REQUIRED:
        if key not in block:
            raise ctx.error(path, f"missing required key {key!r}")
    count = block["count"]
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_INSTANCES:
        raise ctx.error((*path, "count"), f"count must be an integer 0-{MAX_INSTANCES}, got {count!r}")
    seed = block.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ctx.error((*path, "seed"), f"seed must be an integer, got {seed!r}")
    prefix = block.get("name_prefix", "gen")
    if not isinstance(prefix, str) or not prefix:
        raise ctx.error((*path, "name_prefix"), f"name_prefix must be a non-empty string, got {prefix!r}")

    def check_os(key: str, where: _Path) -> None:
        _operating_system(key, where, ctx)

    def check_group_key(key: str, where: _Path) -> None:
        _enum(key, where, PATCH_GROUP_KEYS, ctx)

    shares: dict[str, float] = {}
    for key in _SHARES:
        share = block.get(key, 0.0)
        if not _number(share) or not 0.0 <= share <= 1.0:
            raise ctx.error((*path, key), f"share must be a number from 0 to 1, got {share!r}")
        shares[key] = float(share)
    state_shares = ("stopped_share", "unmanaged_share", "connection_lost_share")
    if sum(shares[k] for k in state_shares) > 1.0:
        raise ctx.error(path, f"{' + '.join(state_shares)} must not exceed 1")

    return GeneratorSpec(
        patch=_parse_distribution(block["patch"], (*path, "patch"), ctx) if "patch" in block else PatchDistribution(),
        count=count,
        seed=seed,
        name_prefix=prefix,
        patch_groups=_weights(block["patch_groups"], (*path, "patch_groups"), ctx),
        schedules=_weights(block["schedules"], (*path, "schedules"), ctx),
        os=_weights(block["os"], (*path, "os"), ctx, check_os),
        owners=_weights(block["owners"], (*path, "owners"), ctx) if "owners" in block else {},
        patch_group_key=(
            _weights(block["patch_group_key"], (*path, "patch_group_key"), ctx, check_group_key)
            if "patch_group_key" in block
            else {"Patch Group": 1.0}
        ),
        **shares,
    )


def _counts(value: object, path: _Path, ctx: _Context) -> dict[int, float]:
    """Weights keyed by a number of patches, e.g. {0: 3, 6: 1} (JSON spells the keys as strings)."""
    if not isinstance(value, dict) or not value:
        raise ctx.error(path, f"expected a mapping of patch counts to weights, e.g. {{0: 3, 6: 1}}, got {value!r}")
    counts: dict[int, float] = {}
    for key, weight in value.items():
        where = (*path, str(key))
        if not _number(weight) or not weight > 0 or weight == float("inf"):
            raise ctx.error(where, f"weight must be a positive number, got {weight!r}")
        count: object = int(key) if isinstance(key, str) and key.isdigit() else key
        counts[_patch_count(count, where, ctx)] = float(weight)
    return counts


def _parse_distribution(raw: object, path: _Path, ctx: _Context) -> PatchDistribution:
    block = _mapping(raw, path, ctx)
    _check_keys(block, path, PATCH_KEYS, ctx)

    def check_result(key: str, where: _Path) -> None:
        _enum(key, where, _PATCH_OUTCOMES, ctx)

    default = PatchDistribution()
    return PatchDistribution(
        missing=_counts(block["missing"], (*path, "missing"), ctx) if "missing" in block else default.missing,
        critical=_counts(block["critical"], (*path, "critical"), ctx) if "critical" in block else default.critical,
        result=_weights(block["result"], (*path, "result"), ctx, check_result) if "result" in block else default.result,
    )


# --------------------------------------------------------------------------------------------------
# Generation


def _pick(rng: random.Random, weights: Mapping[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _plant_tag_problem(rng: random.Random, tags: dict[str, str], group_key: str, problem: str) -> None:
    match problem:
        case "missing_patch_group":
            del tags[group_key]
        case "missing_schedule":
            del tags[MAINTENANCE_WINDOW_KEY]
        case "near_miss_key":
            tags[rng.choice(NEAR_MISS_PATCH_GROUP_KEYS)] = tags.pop(group_key)
        case "typo_schedule":
            tags[MAINTENANCE_WINDOW_KEY] = rng.choice(TYPO_SCHEDULES)
        case "invalid_patch_group":
            # '#', '!', '?' fall outside the patch group name pattern.
            tags[group_key] = tags[group_key] + rng.choice(("#1", "!", "?"))
        case "conflicting_patch_group":
            other = PATCH_GROUP_KEYS[1] if group_key == PATCH_GROUP_KEYS[0] else PATCH_GROUP_KEYS[0]
            tags[other] = tags[group_key] + "-old"
        case _:
            raise AssertionError(problem)


def generate_fleet(spec: GeneratorSpec) -> list[FleetInstance]:
    """Deterministic for a given spec (including its seed). Shares become exact counts (rounded)."""
    rng = random.Random(spec.seed)
    n = spec.count
    order = list(range(n))
    rng.shuffle(order)
    # Disjoint slices of one shuffle give exact, non-overlapping counts for each state.
    stopped_n = round(spec.stopped_share * n)
    unmanaged_n = min(round(spec.unmanaged_share * n), n - stopped_n)
    lost_n = min(round(spec.connection_lost_share * n), n - stopped_n - unmanaged_n)
    stopped = set(order[:stopped_n])
    unmanaged = order[stopped_n : stopped_n + unmanaged_n]
    no_profile = set(unmanaged[: len(unmanaged) // 2])
    unmanaged_set = set(unmanaged)
    lost = set(order[stopped_n + unmanaged_n : stopped_n + unmanaged_n + lost_n])
    bad = set(rng.sample(range(n), round(spec.bad_tag_share * n)))

    width = max(3, len(str(n)))
    fleet: list[FleetInstance] = []
    for i in range(n):
        group_key = _pick(rng, spec.patch_group_key)
        tags = {
            "Name": f"{spec.name_prefix}-{i + 1:0{width}d}",
            group_key: _pick(rng, spec.patch_groups),
            MAINTENANCE_WINDOW_KEY: _pick(rng, spec.schedules),
        }
        if spec.owners:
            tags["Owner"] = _pick(rng, spec.owners)
        operating_system = _pick(rng, spec.os)
        patch = _draw_patch(rng, spec.patch)
        problem = rng.choice(TAG_PROBLEMS) if i in bad else None
        if problem is not None:
            _plant_tag_problem(rng, tags, group_key, problem)
        ssm: SsmState = "online"
        if i in unmanaged_set:
            ssm = "unmanaged"
        elif i in lost:
            ssm = "connection_lost"
        expect: ExpectedClass = "ready"
        if problem is not None:
            expect = _PROBLEM_CLASS[problem]
        elif ssm == "unmanaged" or (ssm == "connection_lost" and i not in stopped):
            expect = "unmanaged"
        elif i in stopped:
            expect = "stopped"
        fleet.append(
            FleetInstance(
                tags=MappingProxyType(tags),
                os=operating_system,
                state="stopped" if i in stopped else "running",
                ssm=ssm,
                instance_profile="none" if i in no_profile else "ssm",
                expect=expect,
                patch=patch,
            )
        )
    return fleet


def _draw_patch(rng: random.Random, distribution: PatchDistribution) -> FleetPatch:
    missing = int(rng.choices(list(distribution.missing), weights=list(distribution.missing.values()))[0])
    critical = int(rng.choices(list(distribution.critical), weights=list(distribution.critical.values()))[0])
    result = cast(PatchOutcome, _pick(rng, distribution.result))
    return FleetPatch(missing=missing, critical=min(critical, missing), result=result)


# --------------------------------------------------------------------------------------------------
# Seeding the simulated account

# moto's default AMIs, by name (EC2 name-filter wildcards), so instances look plausible.
_AMI_NAMES: Final[Mapping[str, str]] = {
    "AMAZON_LINUX_2023": "al2023-ami-2023*x86_64",
    "AMAZON_LINUX_2": "amzn2-ami-*x86_64*",
    "UBUNTU": "ubuntu/images/*",
    "REDHAT_ENTERPRISE_LINUX": "RHEL-*",
    "SUSE": "suse-sles-*",
    "WINDOWS": "Windows_Server-2016-English-Full-Base*",
}


def _choose_amis(images: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """One AMI per operating system; others fall back to any Linux image.

    moto copies EC2's `Platform` ("windows") from the AMI, so Windows needs a Windows image.
    """
    linux = sorted((img for img in images if not img.get("Platform")), key=lambda img: str(img["ImageId"]))
    windows = sorted((img for img in images if img.get("Platform") == "windows"), key=lambda img: str(img["ImageId"]))
    if not linux or not windows:
        raise RuntimeError("moto's default AMIs lack a Linux or a Windows image; cannot seed a fleet")
    chosen: dict[str, str] = {}
    for operating_system in OPERATING_SYSTEMS:
        pool = windows if BY_OPERATING_SYSTEM[operating_system].platform_type == "Windows" else linux
        pattern = _AMI_NAMES.get(operating_system)
        match = next((img for img in pool if pattern and fnmatch.fnmatchcase(str(img.get("Name", "")), pattern)), None)
        chosen[operating_system] = str((match or pool[0])["ImageId"])
    return chosen


def _ensure_instance_profile(iam: Any) -> None:
    from botocore.exceptions import ClientError  # noqa: PLC0415 - see seed_fleet

    try:
        iam.get_instance_profile(InstanceProfileName=INSTANCE_PROFILE_NAME)
        return
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchEntity":
            raise
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    iam.create_role(RoleName=INSTANCE_ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))
    try:
        iam.attach_role_policy(RoleName=INSTANCE_ROLE_NAME, PolicyArn=SSM_CORE_POLICY_ARN)
    except ClientError as exc:
        # moto loads AWS managed policies only with config {"iam": {"load_aws_managed_policies": True}}.
        if exc.response["Error"]["Code"] != "NoSuchEntity":
            raise
    iam.create_instance_profile(InstanceProfileName=INSTANCE_PROFILE_NAME)
    iam.add_role_to_instance_profile(InstanceProfileName=INSTANCE_PROFILE_NAME, RoleName=INSTANCE_ROLE_NAME)


@contextmanager
def _ec2_fast_paths(backend: Any) -> Iterator[None]:
    """Make moto's instance creation O(1) per instance while seeding.

    moto 5.2.5 scans all ~1,300 default AMIs (describe_images), copies every reservation
    (get_instance) and lists every volume (describe_volumes, to tag the new root volume) for each new
    instance, so seeding 10,000 instances one by one is quadratic (100,000 did not finish seeding).
    These shortcuts return the same objects for the exact lookups instance creation makes, and are
    removed again afterwards.
    """
    original_describe_images = backend.describe_images
    original_get_instance = backend.get_instance

    def describe_images(ami_ids: Any = None, filters: Any = None, exec_users: Any = None, owners: Any = None) -> Any:
        if not ami_ids and not exec_users and not owners and filters and set(filters) == {"image-id"}:
            wanted = filters["image-id"]
            wanted = [wanted] if isinstance(wanted, str) else list(wanted)
            if not any("*" in w or "?" in w for w in wanted):
                return [backend.amis[w] for w in wanted if w in backend.amis]
        return original_describe_images(ami_ids=ami_ids, filters=filters, exec_users=exec_users, owners=owners)

    def get_instance(instance_id: str) -> Any:
        newest = next(reversed(backend.reservations.values()), None)
        if newest is not None:
            for instance in newest.instances:
                if instance.id == instance_id:
                    return instance
        return original_get_instance(instance_id)

    def describe_volumes(volume_ids: Any = None, filters: Any = None) -> Any:
        if not filters and volume_ids and len(volume_ids) == 1 and volume_ids[0] in backend.volumes:
            return [backend.volumes[volume_ids[0]]]
        return original_describe_volumes(volume_ids=volume_ids, filters=filters)

    original_describe_volumes = backend.describe_volumes
    backend.describe_images = describe_images
    backend.get_instance = get_instance
    backend.describe_volumes = describe_volumes
    try:
        yield
    finally:
        del backend.describe_images
        del backend.get_instance
        del backend.describe_volumes


def _computer_name(os_name: str, instance_id: str, private_ip: str | None, region: str) -> str:
    if BY_OPERATING_SYSTEM[os_name].platform_type == "Windows":
        return "EC2AMAZ-" + instance_id[-7:].upper()
    suffix = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    return f"ip-{(private_ip or '10.0.0.1').replace('.', '-')}.{suffix}"


def seed_fleet(instances: Sequence[FleetInstance], *, region: str, session: Any = None) -> list[str]:
    """Create `instances` in the active moto account; return their instance ids in order.

    `session` (a boto3 session) picks another simulated account of the organization
    (`clients.account_session`); by default the account the environment's keys sign for.

    Must run inside `mock_aws`. EC2 instances are created on moto's backend directly (through boto3
    each costs ~10-20 ms and grows with the fleet); IAM, AMI lookup and stopping go through boto3.
    Managed instances are registered with the simulator; stopped ones report ConnectionLost since
    a stopped agent does not ping.
    """
    # Seeding writes moto's backend directly, past the API: refuse here what a fleet file is refused.
    for index, item in enumerate(instances):
        for key, value in item.tags.items():
            unsafe = xml_unsafe_character(key) or xml_unsafe_character(value)
            if unsafe is not None:
                raise FleetError(
                    f"instance {index}: tag {json.dumps(key)} holds the control character {unsafe}, which "
                    "EC2's XML answers cannot carry; remove it"
                )
    # boto3 and moto take about a second to import: loaded here, so checking input files stays instant.
    import boto3  # noqa: PLC0415
    from moto.ec2.models import ec2_backends  # noqa: PLC0415

    from tagpatch_local import simulator  # noqa: PLC0415

    simulator.install()
    if not instances:
        return []
    session = session or boto3.session.Session(region_name=region)
    account_id = str(session.client("sts").get_caller_identity()["Account"])
    ec2 = session.client("ec2")
    if any(inst.instance_profile == "ssm" for inst in instances):
        _ensure_instance_profile(session.client("iam"))
    # Filter by name: serialising all ~1,300 default AMIs costs about a second.
    name_filter = [{"Name": "name", "Values": sorted(set(_AMI_NAMES.values()))}]
    amis = _choose_amis(ec2.describe_images(Owners=["amazon"], Filters=name_filter)["Images"])

    backend = ec2_backends[account_id][region]
    ids: list[str] = []
    private_ips: list[str | None] = []
    with _ec2_fast_paths(backend):
        for inst in instances:
            windows = BY_OPERATING_SYSTEM[inst.os].platform_type == "Windows"
            instance_type = "t3.large" if windows else "t3.micro"
            # The same keyword arguments moto's RunInstances handler passes for a minimal request.
            reservation = backend.run_instances(
                amis[inst.os],
                1,
                None,
                [],
                instance_type=instance_type,
                # True skips moto's scan of ~1,300 instance-type offerings per instance (it only
                # warns unless MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION is set anyway).
                is_instance_type_default=True,
                placement=None,
                placement_hostid=None,
                region_name=region,
                subnet_id=None,
                key_name=None,
                security_group_ids=[],
                nics=[],
                private_ip=None,
                associate_public_ip=None,
                tags={"instance": dict(inst.tags)} if inst.tags else {},
                ebs_optimized=False,
                disable_api_stop=False,
                instance_market_options={},
                instance_initiated_shutdown_behavior=None,
                launch_template={},
                hibernation_options={},
                monitoring_state="disabled",
                ipv6_address_count=None,
                metadata_options={},
            )
            created = reservation.instances[0]
            if inst.instance_profile == "ssm":
                backend.associate_iam_instance_profile(
                    instance_id=created.id, iam_instance_profile_name=INSTANCE_PROFILE_NAME
                )
            ids.append(created.id)
            private_ips.append(created.private_ip)

    to_stop = [iid for iid, inst in zip(ids, instances, strict=True) if inst.state == "stopped"]
    for start in range(0, len(to_stop), _STOP_BATCH):
        ec2.stop_instances(InstanceIds=to_stop[start : start + _STOP_BATCH])

    lost_since = datetime.now(UTC) - _LOST_FOR
    for iid, ip, inst in zip(ids, private_ips, instances, strict=True):
        if inst.ssm == "unmanaged":
            continue
        platform = BY_OPERATING_SYSTEM[inst.os]
        online = inst.ssm == "online" and inst.state == "running"
        simulator.register_managed_instance(
            account_id,
            region,
            iid,
            ping_status="Online" if online else "ConnectionLost",
            platform_type=cast(simulator.PlatformType, platform.platform_type),
            platform_name=platform.platform_name,
            platform_version=platform.platform_version,
            ip_address=ip,
            computer_name=_computer_name(inst.os, iid, ip, region),
            last_ping=None if online else lost_since,
        )
    for iid, inst in zip(ids, instances, strict=True):
        set_patch_behaviour(account_id, region, iid, inst.os, inst.patch)
    return ids


def set_patch_behaviour(account_id: str, region: str, instance_id: str, os_name: str, patch: FleetPatch) -> None:
    """Tell the simulated account how AWS-RunPatchBaseline will behave on an instance."""
    from tagpatch_local.simulator import executions  # noqa: PLC0415

    profile = executions.PatchProfile(
        operating_system=os_name,
        missing=patch.missing,
        critical=patch.critical,
        result=patch.result,
        failing_hook=patch.failing_hook,
        backup_fails=patch.backup_fails,
    )
    if patch.minutes is not None:
        profile = replace(profile, minutes=patch.minutes)
    executions.set_patch_profile(account_id, region, instance_id, profile)
