"""Writing a run's files into --out: each whole or not at all, and never through a symbolic link.

Each file is written to a temporary file beside it and renamed over the name: a reader (or a run
that fails midway) sees the old file or the new one, never half of one, and a name that is a link
is replaced, not followed, so nothing outside --out is changed.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TextIO, cast


@contextmanager
def atomic_stream(path: Path) -> Iterator[IO[bytes]]:
    """A binary stream whose bytes become `path` when the block ends without an error."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_atomically(path: Path, data: bytes) -> None:
    with atomic_stream(path) as stream:
        stream.write(data)


def write_text_atomically(path: Path, text: str) -> None:
    write_atomically(path, text.encode("utf-8"))


def write_jsonl_atomically(path: Path, lines: Iterable[Any]) -> None:
    """One JSON document a line, as UTF-8 (not escaped: tag values are often not ASCII)."""
    with atomic_stream(path) as stream:
        for line in lines:
            stream.write((json.dumps(line, ensure_ascii=False, default=str) + "\n").encode("utf-8"))


def open_log(path: Path) -> TextIO:
    """The functions' log, written while the run goes: refuses to follow a link at its name."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    return cast(TextIO, os.fdopen(descriptor, "w", encoding="utf-8"))
