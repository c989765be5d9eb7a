"""Patch exceptions: governance's file of instances that may stay unpatched, each until a stated date.

The file (`policy/patch-exceptions.yaml`) ships in the PatchPolicyLayer next to the patch policy, so
a change is reviewed and deployed like code. Each entry selects instances by exactly one of
`instance_id`, `name`, `patch_group` or `tag` ({key: value}), and carries `reason`, `approved_by`,
`expires` (an ISO date; `until` is accepted as the same key) and optionally `ticket` and `hold`
(true: the instances' windows scan them instead of installing, see tagpatch.desired).

An exception is live up to and including its expiry date (UTC) and is then ignored: the instance is
held to the rules again with nobody having to remember. Bad input never aborts a cycle: a malformed
entry is dropped with a specific reason (the cycle reports it), and an unreadable file drops them
all, which holds every instance to the rules. `make test` loads the repo's file strictly, so a bad
file is rejected before deploy.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final, NotRequired, TypedDict

import yaml

from tagpatch.errors import InvalidPatchExceptions, shown_key
from tagpatch.targets import Target
from tagpatch.yaml_text import TextDatesLoader

INSTANCE_ID: Final = re.compile(r"^(i|mi)-[0-9a-f]{8,17}$")
SELECTORS: Final = ("instance_id", "name", "patch_group", "tag")
_ENTRY_KEYS: Final = frozenset({*SELECTORS, "reason", "approved_by", "expires", "until", "ticket", "hold"})
_TOP_KEYS: Final = frozenset({"version", "settings", "exceptions"})
_SETTINGS_KEYS: Final = frozenset({"max_days", "notice_days", "governance_owner"})
DEFAULT_MAX_DAYS: Final = 90
DEFAULT_NOTICE_DAYS: Final = (7,)
DEFAULT_GOVERNANCE_OWNER: Final = "governance"
_PATCH_GROUP_KEYS: Final = ("Patch Group", "PatchGroup")
_TEXT_LIMIT: Final = 500
# Far above any real file (an entry is a few hundred bytes); stops a stray huge file being read whole.
MAX_FILE_BYTES: Final = 1024 * 1024


class ExceptionSummary(TypedDict):
    """What an instance report line carries about its exception (`exception` / `expired_exception`)."""

    reason: str
    expires: str
    approved_by: str
    ticket: str | None
    selector: str
    # Present (true) only for an exception that holds patching back: the window scans, never installs.
    hold: NotRequired[bool]


@dataclass(frozen=True)
class PatchException:
    selector_key: str  # one of SELECTORS
    selector_value: str  # for `tag`: "key=value"
    reason: str
    approved_by: str
    expires: date  # the last day (UTC) the exception holds
    ticket: str | None = None
    tag_key: str | None = None  # for `tag`
    hold: bool = False  # hold patching back: the instances' windows scan them and install nothing

    @property
    def selector(self) -> str:
        return (
            f"{self.selector_key}={self.selector_value}" if self.selector_key != "tag" else f"tag:{self.selector_value}"
        )

    def matches(self, instance_id: str, tags: Mapping[str, str]) -> bool:
        if self.selector_key == "instance_id":
            return instance_id == self.selector_value
        if self.selector_key == "name":
            return tags.get("Name") == self.selector_value
        if self.selector_key == "patch_group":
            return any(tags.get(key, "").strip() == self.selector_value for key in _PATCH_GROUP_KEYS)
        value = self.selector_value.split("=", 1)[1]
        return self.tag_key is not None and tags.get(self.tag_key) == value

    def is_live(self, now: datetime) -> bool:
        return now.astimezone(UTC).date() <= self.expires

    def days_left(self, now: datetime) -> int:
        """Whole days from `now` (UTC date) to the expiry date; 0 on the last day."""
        return (self.expires - now.astimezone(UTC).date()).days

    def summary(self) -> ExceptionSummary:
        found: ExceptionSummary = {
            "reason": self.reason,
            "expires": self.expires.isoformat(),
            "approved_by": self.approved_by,
            "ticket": self.ticket,
            "selector": self.selector,
        }
        if self.hold:
            found["hold"] = True
        return found


@dataclass(frozen=True)
class ExceptionSet:
    exceptions: tuple[PatchException, ...] = ()
    errors: tuple[str, ...] = ()  # every entry dropped, and why
    max_days: int = DEFAULT_MAX_DAYS
    notice_days: tuple[int, ...] = DEFAULT_NOTICE_DAYS
    governance_owner: str = DEFAULT_GOVERNANCE_OWNER
    source: str = field(default="<memory>", compare=False)

    def match(self, instance_id: str, tags: Mapping[str, str], now: datetime) -> Match:
        """The live exception for an instance (latest expiry wins), and the latest expired one."""
        found = [e for e in self.exceptions if e.matches(instance_id, tags)]
        live = sorted((e for e in found if e.is_live(now)), key=lambda e: e.expires)
        expired = sorted((e for e in found if not e.is_live(now)), key=lambda e: e.expires)
        return Match(live[-1] if live else None, expired[-1] if expired else None)


@dataclass(frozen=True)
class Match:
    live: PatchException | None
    expired: PatchException | None


def _text(entry: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: {key} must be a non-empty string (got {value!r})")
    if len(value) > _TEXT_LIMIT:
        raise ValueError(f"{where}: {key} is longer than {_TEXT_LIMIT} characters")
    return value.strip()


def _iso_day(text: str, where: str) -> date:
    """An ISO date, or a full ISO time read as its UTC day (`2026-12-01T10:00:00Z`)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text) if "T" in text else None
    except ValueError:
        moment = None
    if moment is None:
        raise ValueError(f"{where}: expires {text!r} is not an ISO date (YYYY-MM-DD)")
    return moment.astimezone(UTC).date() if moment.tzinfo else moment.date()


def _expiry(entry: Mapping[str, Any], where: str, now: datetime | None, max_days: int) -> date:
    if "expires" in entry and "until" in entry:
        raise ValueError(f"{where}: give one of expires or until, not both")
    if "expires" not in entry and "until" not in entry:
        raise ValueError(f"{where}: expires is required (an ISO date, e.g. 2026-12-31); exceptions must end")
    raw = entry.get("expires", entry.get("until"))
    if isinstance(raw, datetime):
        raw = raw.astimezone(UTC).date() if raw.tzinfo else raw.date()
    if not isinstance(raw, date):
        raw = _iso_day(str(raw).strip(), where)
    if now is None:
        return raw
    latest = now.astimezone(UTC).date() + timedelta(days=max_days)
    if raw > latest:
        raise ValueError(
            f"{where}: expires {raw.isoformat()} is more than {max_days} days away (latest allowed "
            f"{latest.isoformat()}); renew the exception nearer the date instead"
        )
    return raw


def _entry(raw: object, where: str, now: datetime | None, max_days: int) -> PatchException:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: must be a mapping (got {type(raw).__name__})")
    unknown = sorted(str(k) for k in raw if k not in _ENTRY_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}; expected {', '.join(sorted(_ENTRY_KEYS))}")
    chosen = [key for key in SELECTORS if key in raw]
    if len(chosen) != 1:
        raise ValueError(f"{where}: select instances with exactly one of {', '.join(SELECTORS)} (got {len(chosen)})")
    selector_key = chosen[0]
    tag_key = None
    if selector_key == "tag":
        tag = raw["tag"]
        if not isinstance(tag, Mapping) or len(tag) != 1:
            raise ValueError(f"{where}: tag must be one key: value pair, e.g. {{Application: billing}}")
        ((key, value),) = tag.items()
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise ValueError(f"{where}: tag key and value must be strings (got {key!r}: {value!r})")
        tag_key, selector_value = key, f"{key}={value}"
    else:
        selector_value = str(_text(raw, selector_key, where))
        if selector_key == "instance_id" and not INSTANCE_ID.match(selector_value):
            raise ValueError(f"{where}: instance_id {selector_value!r} is not an instance id (i-0123456789abcdef0)")
    return PatchException(
        selector_key=selector_key,
        selector_value=selector_value,
        reason=str(_text(raw, "reason", where)),
        approved_by=str(_text(raw, "approved_by", where)),
        expires=_expiry(raw, where, now, max_days),
        ticket=_text(raw, "ticket", where, required=False),
        tag_key=tag_key,
        hold=_hold(raw, where),
    )


def _hold(entry: Mapping[str, Any], where: str) -> bool:
    value = entry.get("hold", False)
    if not isinstance(value, bool):
        raise ValueError(f"{where}: hold must be true or false (got {value!r})")
    return value


def _settings(raw: object, source: str) -> tuple[int, tuple[int, ...], str]:
    if raw is None:
        return DEFAULT_MAX_DAYS, DEFAULT_NOTICE_DAYS, DEFAULT_GOVERNANCE_OWNER
    if not isinstance(raw, Mapping):
        raise InvalidPatchExceptions(f"{source}: settings must be a mapping")
    unknown = sorted(str(k) for k in raw if k not in _SETTINGS_KEYS)
    if unknown:
        raise InvalidPatchExceptions(f"{source}: settings.{shown_key(unknown[0])}: unknown key")
    max_days = raw.get("max_days", DEFAULT_MAX_DAYS)
    if isinstance(max_days, bool) or not isinstance(max_days, int) or not 1 <= max_days <= 366:
        raise InvalidPatchExceptions(f"{source}: settings.max_days must be a whole number from 1 to 366")
    notice = raw.get("notice_days", list(DEFAULT_NOTICE_DAYS))
    if (
        not isinstance(notice, list)
        or not notice
        or not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= max_days for n in notice)
    ):
        raise InvalidPatchExceptions(f"{source}: settings.notice_days must be a list of whole days, 0 to max_days")
    owner = raw.get("governance_owner", DEFAULT_GOVERNANCE_OWNER)
    if not isinstance(owner, str) or not owner.strip():
        raise InvalidPatchExceptions(f"{source}: settings.governance_owner must be a non-empty string")
    return max_days, tuple(sorted(set(notice), reverse=True)), owner.strip()


def parse_exceptions(
    document: object, source: str, now: datetime | None, entries_read: Sequence[EntryRead] = ()
) -> ExceptionSet:
    """The file's exceptions; entries that break a rule are dropped into `errors`.

    A file that is not an exceptions file at all (wrong top level, bad settings) raises
    InvalidPatchExceptions; callers at run time turn that into "no exceptions" plus the error.
    `now` None checks everything but the expiry horizon (which depends on when the cycle runs);
    `entries_read` gives each entry's line and duplicate key, when the document came from a file.
    """
    if document is None:
        return ExceptionSet(source=source)
    if not isinstance(document, Mapping):
        raise InvalidPatchExceptions(f"{source}: must be a mapping with an `exceptions` list")
    unknown = sorted(str(k) for k in document if k not in _TOP_KEYS)
    if unknown:
        expected = ", ".join(sorted(_TOP_KEYS))
        raise InvalidPatchExceptions(f"{source}: {shown_key(unknown[0])}: unknown key; expected {expected}")
    if document.get("version", 1) != 1:
        raise InvalidPatchExceptions(f"{source}: version must be 1")
    max_days, notice_days, governance = _settings(document.get("settings"), source)
    entries = document.get("exceptions") or []
    if not isinstance(entries, list):
        raise InvalidPatchExceptions(f"{source}: exceptions must be a list")
    parsed: list[PatchException] = []
    errors: list[str] = []
    for index, raw in enumerate(entries):
        read = entries_read[index] if index < len(entries_read) else EntryRead()
        where = f"{source}: exceptions[{index}]" + (f" (line {read.line})" if read.line else "")
        try:
            if read.duplicate:
                raise ValueError(f"{where}: {read.duplicate}; keep only one")
            parsed.append(_entry(raw, where, now, max_days))
        except ValueError as error:
            errors.append(str(error))
    return ExceptionSet(tuple(parsed), tuple(errors), max_days, notice_days, governance, source)


@dataclass(frozen=True)
class EntryRead:
    """What reading the file told about one entry: its line, and a key it gives twice."""

    line: int | None = None
    duplicate: str | None = None


def read_exceptions_file(path: Path, source: str) -> tuple[object, tuple[EntryRead, ...]]:
    """The file's YAML, read strictly: a regular file within MAX_FILE_BYTES, UTF-8, dates kept as text,
    a key given twice refused (PyYAML keeps the last one). A problem with the whole file raises
    InvalidPatchExceptions naming its line; a duplicate key inside an entry only condemns that entry."""
    try:
        info = path.stat()
    except OSError as error:
        raise InvalidPatchExceptions(f"{source}: cannot read it: {error.strerror}") from error
    if not stat.S_ISREG(info.st_mode):
        raise InvalidPatchExceptions(f"{source}: not a regular file")
    if info.st_size > MAX_FILE_BYTES:
        raise InvalidPatchExceptions(f"{source}: {info.st_size:,} bytes, larger than {MAX_FILE_BYTES:,}")
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise InvalidPatchExceptions(f"{source}: cannot read it: {error.strerror}") from error
    if len(data) > MAX_FILE_BYTES:
        raise InvalidPatchExceptions(f"{source}: larger than {MAX_FILE_BYTES:,} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise InvalidPatchExceptions(
            f"{source}: line {line}: byte 0x{data[error.start]:02x} is not UTF-8; save the file as UTF-8"
        ) from error
    try:
        loader = TextDatesLoader(text)  # the reader already refuses a NUL byte here
    except yaml.YAMLError as error:
        raise InvalidPatchExceptions(f"{source}: not valid YAML: {' '.join(str(error).split())}") from error
    try:
        node = loader.get_single_node()
        if node is None:
            return None, ()
        entries_read = _check_keys_once(node, source)
        return loader.construct_document(node), entries_read
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark is not None else ""
        raise InvalidPatchExceptions(f"{source}: not valid YAML: {where}{error.problem}") from error
    except (yaml.YAMLError, RecursionError) as error:
        raise InvalidPatchExceptions(f"{source}: not valid YAML: {' '.join(str(error).split())}") from error
    except (ValueError, TypeError, AttributeError, KeyError, OverflowError) as error:
        # PyYAML's constructors for explicit tags (`!!int x`) raise these rather than a YAMLError.
        raise InvalidPatchExceptions(
            f"{source}: a tagged value cannot be read: {' '.join(str(error).split())}"
        ) from error
    finally:
        loader.dispose()


def _duplicate_key(node: yaml.Node) -> str | None:
    """The first key a mapping (or any mapping inside it) gives twice, with its line."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            seen: set[object] = set()
            for key_node, value_node in current.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)
                if key in seen:
                    return f"duplicate key {key!r} on line {key_node.start_mark.line + 1}"
                seen.add(key)
                stack.append(value_node)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
    return None


def _check_keys_once(root: yaml.Node, source: str) -> tuple[EntryRead, ...]:
    """Refuse a key given twice outside the entries; return each entry's line and duplicate key."""
    if not isinstance(root, yaml.MappingNode):
        return ()
    entries: tuple[EntryRead, ...] = ()
    seen: set[object] = set()
    for key_node, value_node in root.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)
        if key in seen:
            raise InvalidPatchExceptions(
                f"{source}: (line {key_node.start_mark.line + 1}): duplicate key {key!r}; keep only one"
            )
        seen.add(key)
        if key == "exceptions" and isinstance(value_node, yaml.SequenceNode):
            entries = tuple(EntryRead(item.start_mark.line + 1, _duplicate_key(item)) for item in value_node.value)
        else:
            duplicate = _duplicate_key(value_node)
            if duplicate is not None:
                raise InvalidPatchExceptions(f"{source}: {key}: {duplicate}; keep only one")
    return entries


def load_exceptions(path: Path | None, now: datetime, *, strict: bool = False) -> ExceptionSet:
    """Read the exceptions file; None or a missing file means no exceptions.

    strict (the pre-deploy check) raises on any dropped entry; otherwise a broken file yields no
    exceptions and its error, so the cycle goes on holding every instance to the rules.
    """
    if path is None or not path.exists():
        return ExceptionSet(source=str(path))
    source = path.name
    try:
        document, entries_read = read_exceptions_file(path, source)
        found = parse_exceptions(document, source, now, entries_read)
    except InvalidPatchExceptions as error:
        if strict:
            raise InvalidPatchExceptions(str(error)) from error
        return ExceptionSet(errors=(f"{source}: ignored entirely: {error}",), source=source)
    if strict and found.errors:
        raise InvalidPatchExceptions("; ".join(found.errors))
    return found


# --- notices before and at expiry --------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """One message about one exception to one owner: `days` before expiry, or `expired`."""

    key: str  # ledger key: the same notice is never sent twice
    owner: str
    kind: str  # "expiring" | "expired"
    exception: ExceptionSummary
    days_left: int
    instances: tuple[Mapping[str, Any], ...]

    def subject(self) -> str:
        if self.kind == "expired":
            return f"tagpatch: patch exception {self.exception['selector']} has expired"[:100]
        return f"tagpatch: patch exception {self.exception['selector']} expires in {self.days_left} days"[:100]

    def body(self, limit: int = 50) -> str:
        e = self.exception
        head = (
            f"The patch exception for {e['selector']} (reason: {e['reason']}; approved by {e['approved_by']}"
            f"{'; ticket ' + e['ticket'] if e['ticket'] else ''}) "
        )
        if self.kind == "expired":
            head += f"expired on {e['expires']}. These instances are held to the patching rules again:"
        else:
            head += (
                f"expires on {e['expires']} ({self.days_left} days). After that the instances below are "
                "held to the patching rules again; renew it in patch-exceptions.yaml if it is still needed:"
            )
        lines = [head, ""]
        lines += [f"- {i['instance_id']} ({i.get('name') or 'no Name tag'})" for i in self.instances[:limit]]
        if len(self.instances) > limit:
            lines.append(f"... and {len(self.instances) - limit} more")
        return "\n".join(lines)


def due_notices(
    lines: Iterable[Mapping[str, Any]],
    notice_days: Sequence[int],
    governance_owner: str,
    default_owner: str,
    sent: Mapping[str, Any],
    now: datetime,
    target: Target | None = None,
) -> list[Notice]:
    """Notices due now and not in the ledger `sent`, one per (exception, notice, owner).

    An expiring notice is due once the exception is within the largest notice day not yet passed;
    crossing several notice days between two cycles sends only the nearest one. Governance gets a
    copy of each, under its own owner value. A member target's keys name its account and Region: the
    hub keeps one ledger, and an owner of one name in two accounts is told of each account's instances.
    """
    grouped: dict[tuple[str, str, str], tuple[ExceptionSummary, int, list[Mapping[str, Any]]]] = {}
    today = now.astimezone(UTC).date()
    for line in lines:
        for field_name, kind in (("exception", "expiring"), ("expired_exception", "expired")):
            summary = line.get(field_name)
            if not isinstance(summary, Mapping):
                continue
            days_left = (date.fromisoformat(str(summary["expires"])) - today).days
            if kind == "expiring":
                crossed = [n for n in notice_days if days_left <= n]
                if not crossed:
                    continue
                stage = f"{min(crossed)}d"
            else:
                stage = "expired"
            base = f"{summary['expires']}|{stage}|{summary['selector']}"
            if target is not None:
                base += f"|{target.label}"
            owner = str(line.get("owner") or default_owner)
            for who in dict.fromkeys((owner, governance_owner)):
                key = f"{base}|{who}"
                if key in sent:
                    continue
                entry = grouped.setdefault((key, who, kind), (summary, days_left, []))  # type: ignore[arg-type]
                entry[2].append({"instance_id": line.get("instance_id"), "name": line.get("name")})
    return [
        Notice(key, who, kind, summary, days_left, tuple(instances))
        for (key, who, kind), (summary, days_left, instances) in sorted(grouped.items())
    ]


def prune_ledger(sent: Mapping[str, str], now: datetime, keep_days: int = 120) -> dict[str, str]:
    """Drop ledger entries for exceptions that expired long ago (keys carry the expiry date)."""
    cutoff = now.astimezone(UTC).date() - timedelta(days=keep_days)
    kept: dict[str, str] = {}
    for key, value in sent.items():
        parts = key.split("|")
        try:
            expires = date.fromisoformat(parts[0])
        except ValueError:
            continue
        if expires >= cutoff:
            kept[key] = value
    return kept
