"""Running the installed `tagpatch` console script as a user would: a new process, another folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TAGPATCH = Path(sys.executable).parent / "tagpatch"


def tagpatch(
    *args: str, cwd: Path, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`tagpatch run ARGS` from `cwd`, in an environment without the test suite's AWS settings."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "POWERTOOLS_", "PYTEST_")) and key != "MOTO_ACCOUNT_ID"
    }
    environment.update(env or {})
    return subprocess.run(
        [str(TAGPATCH), "run", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_refused(completed: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 2 with one line on stderr naming each fragment, no traceback, nothing on stdout."""
    error = completed.stderr
    assert completed.returncode == 2, (completed.returncode, error[-2000:], completed.stdout[-2000:])
    assert "Traceback" not in error
    assert error.startswith("tagpatch: error: ") and error.count("\n") == 1, error
    for fragment in fragments:
        assert fragment in error, (fragment, error)
    assert completed.stdout == ""
    return error
