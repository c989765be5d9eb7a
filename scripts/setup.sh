#!/usr/bin/env bash
# Creates or refreshes the virtualenvs from the pinned lock files. Safe to run again:
# it reinstalls only when a lock file has changed since the last run.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
  if command -v pyenv >/dev/null 2>&1 && prefix=$(pyenv prefix 3.13 2>/dev/null); then
    echo "$prefix/bin/python3.13"; return
  fi
  command -v python3.13 || { echo "setup: Python 3.13 is required (pyenv install 3.13, or python3.13 on PATH)" >&2; exit 1; }
}
PYTHON=$(find_python)

# pip's local mirrors on these machines print a warning per package; keep the log readable.
quiet_pip() { "$@" 2>&1 | grep -v 'is ignored: it is neither a file nor a directory' || true; }

ensure_venv() {  # dir, lock file, extra install command
  local dir=$1 lock=$2 stamp="$1/.tagpatch-lock.sha256" want
  want=$(sha256sum "$lock" pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ -x "$dir/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return; fi
  echo "setup: installing $dir from $lock"
  [ -x "$dir/bin/python" ] || "$PYTHON" -m venv "$dir"
  quiet_pip "$dir/bin/python" -m pip install --disable-pip-version-check -q -r "$lock"
  "$dir/bin/python" -m pip show -q "$(head -1 "$lock" | cut -d= -f1)" >/dev/null 2>&1 \
    || { echo "setup: installing $lock into $dir failed" >&2; exit 1; }
  if [ "$dir" = .venv ]; then
    quiet_pip "$dir/bin/python" -m pip install --disable-pip-version-check -q --no-deps -e .
    "$dir/bin/python" -c "import tagpatch, tagpatch_local" || { echo "setup: tagpatch did not install" >&2; exit 1; }
  fi
  echo "$want" > "$stamp"
}

# Headless Chromium (Debian's package) renders report.html in the test command; skipped when present.
ensure_chromium() {
  if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then return; fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: no chromium and no apt-get; install Chromium to render report.html in the tests" >&2; return
  fi
  echo "setup: installing chromium (Debian's package)"
  local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
}

ensure_venv .venv requirements/dev.txt
ensure_chromium
if [ "${1:-}" = "--with-sam" ]; then
  ensure_venv .venv-sam requirements/sam.txt
  ensure_venv .venv-checkov requirements/checkov.txt
fi
