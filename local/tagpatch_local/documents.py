"""Reading the runner's input files strictly: fleet files, scenarios, patch policies, `--input` files.

Every problem becomes one `InputError` line that names the file, the place (with the line, for YAML)
and what to do, so `tagpatch run` can refuse bad input before the simulated account is built:
a missing file, a directory, text that is not UTF-8, a duplicate key (JSON parsers and PyYAML
otherwise keep the last one silently) and YAML aliases that would expand into millions of values.
"""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from tagpatch.yaml_text import TextDatesLoader

# Aliases may repeat shared blocks (anchors are fine); beyond this many extra values they are a
# "billion laughs" document, which would hang every walk over it.
MAX_ALIAS_EXPANSION: Final = 100_000
# Every input file is read whole and parsed in Python: this bounds the time and memory that takes
# (a fleet of thousands of instances is a few hundred KB; larger fleets use `generate`).
MAX_FILE_BYTES: Final = 4 * 1024 * 1024
_TOO_LARGE: Final = "use a fleet's `generate` block for large fleets"


# PyYAML's constructors for explicit tags (`!!int x`, `!!float x`) raise these instead of a YAMLError.
CONSTRUCTION_ERRORS: Final = (ValueError, TypeError, AttributeError, KeyError, OverflowError)

DocPath = tuple[str | int, ...]


class InputError(ValueError):
    """Bad input for `tagpatch run`: one line naming the file, the place and what to do."""


def format_path(path: DocPath) -> str:
    """`instances[1].tags."Patch Group"`: the dotted place of a value, quoting keys that need it."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            out += f".{part}" if out else part
        else:
            out += f".{json.dumps(part)}" if out else json.dumps(part)
    return out or "(top level)"


@dataclass(frozen=True)
class Document:
    """A parsed file and the line of each of its values (YAML only), for error messages."""

    source: str
    value: Any
    lines: Mapping[DocPath, int] = field(default_factory=dict)

    def line_of(self, path: DocPath) -> int | None:
        """The line of `path`, or of the nearest enclosing value the file told us about."""
        for cut in range(len(path), -1, -1):
            line = self.lines.get(path[:cut])
            if line is not None:
                return line
        return None

    def where(self, path: DocPath) -> str:
        line = self.line_of(path)
        return f"{self.source}: {format_path(path)}" + (f" (line {line})" if line is not None else "")


def read_text(path: Path, what: str, error: type[InputError] = InputError) -> str:
    """The file's text, or an `error` saying why it cannot be read: missing, a folder, not a regular
    file (a device or a named pipe would never end or never answer), over MAX_FILE_BYTES, not UTF-8."""
    try:
        info = path.stat()
    except FileNotFoundError as exc:
        raise error(f"{path}: no such {what}; check the path (relative paths start from {Path.cwd()})") from exc
    except OSError as exc:
        raise error(f"{path}: cannot read the {what}: {exc.strerror}") from exc
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{path}: is a folder; give the path of a {what}")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{path}: not a regular file (a device, a named pipe or a socket); give the path of a {what}")
    if info.st_size > MAX_FILE_BYTES:
        raise error(f"{path}: {info.st_size:,} bytes; at most {MAX_FILE_BYTES:,} bytes: {_TOO_LARGE}")
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)  # the file may have grown since stat()
    except OSError as exc:
        raise error(f"{path}: cannot read the {what}: {exc.strerror}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise error(f"{path}: more than {MAX_FILE_BYTES:,} bytes; at most {MAX_FILE_BYTES:,} bytes: {_TOO_LARGE}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(
            f"{path}: line {line}: byte 0x{data[exc.start]:02x} is not UTF-8; save the {what} as UTF-8 text"
        ) from exc


def parse_json(text: str, source: str, error: type[InputError] = InputError) -> Any:
    """JSON that refuses duplicate keys (json.loads keeps the last one without a word)."""

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise error(f"{source}: duplicate key {json.dumps(key)}; keep only one")
            seen[key] = value
        return seen

    try:
        return json.loads(text, object_pairs_hook=unique)
    except json.JSONDecodeError as exc:
        raise error(f"{source}: line {exc.lineno} column {exc.colno}: not valid JSON: {exc.msg}") from exc
    except RecursionError as exc:
        raise error(f"{source}: nested too deeply to read") from exc


def parse_yaml(text: str, source: str, error: type[InputError] = InputError) -> Document:
    """YAML (safe tags only) with line numbers, refusing duplicate keys and alias bombs."""
    try:
        # The reader checks every character as it is made: a NUL byte already fails here.
        loader = TextDatesLoader(text)
    except yaml.YAMLError as exc:
        raise error(f"{source}: not valid YAML: {_one_line(exc)}") from exc
    try:
        node = loader.get_single_node()
        if node is None:
            return Document(source, None)
        _check_alias_expansion(node, source, error)
        lines = _yaml_lines(node, source, error)
        value = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise error(f"{source}: not valid YAML: {_one_line(exc)}") from exc
    except CONSTRUCTION_ERRORS as exc:
        raise error(f"{source}: not valid YAML: a tagged value cannot be read ({' '.join(str(exc).split())})") from exc
    except RecursionError as exc:
        raise error(f"{source}: nested too deeply to read") from exc
    finally:
        loader.dispose()
    return Document(source, value, lines)


def load_document(path: Path, what: str, error: type[InputError] = InputError) -> Document:
    """Read a JSON file (by its .json suffix) or a YAML file, strictly."""
    text = read_text(path, what, error)
    if path.suffix.lower() == ".json":
        return Document(str(path), parse_json(text, str(path), error))
    return parse_yaml(text, str(path), error)


def _one_line(exc: yaml.YAMLError) -> str:
    """PyYAML's messages span lines and quote the source; keep the problem and where it is."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"line {mark.line + 1} column {mark.column + 1}: {exc.problem}"
    return " ".join(str(exc).split())


def _check_alias_expansion(root: yaml.Node, source: str, error: type[InputError]) -> None:
    """Count the values the document expands to, each shared node once per reference."""
    expanded: dict[int, int] = {}  # id(node) -> values under it, aliases expanded
    in_progress: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            in_progress.discard(key)
            expanded[key] = 1 + sum(expanded[id(child)] for child in _children(node))
            continue
        if key in expanded:
            continue
        if key in in_progress:
            line = node.start_mark.line + 1
            raise error(f"{source}: line {line}: a YAML alias refers to a block that contains it; remove the cycle")
        in_progress.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in expanded)
    distinct = len(expanded)
    if expanded[id(root)] - distinct > MAX_ALIAS_EXPANSION:
        raise error(
            f"{source}: YAML aliases (*name) expand the document to {expanded[id(root)]:,} values; "
            f"at most {MAX_ALIAS_EXPANSION:,} may come from aliases: write the values out or use fewer aliases"
        )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _yaml_lines(node: yaml.Node, source: str, error: type[InputError], path: DocPath = ()) -> dict[DocPath, int]:
    """Line numbers (1-based) of every node, keyed by its path; also rejects duplicate keys."""
    lines: dict[DocPath, int] = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        seen: set[object] = set()
        for key_node, value_node in node.value:
            key: Any = key_node.value if isinstance(key_node, yaml.ScalarNode) else repr(key_node)
            if key in seen:
                raise error(
                    f"{source}: {format_path(path)} (line {key_node.start_mark.line + 1}): "
                    f"duplicate key {json.dumps(key)}; keep only one"
                )
            seen.add(key)
            lines.update(_yaml_lines(value_node, source, error, (*path, key)))
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_yaml_lines(item, source, error, (*path, index)))
    return lines
