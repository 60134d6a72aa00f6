#!/usr/bin/env bash
# Lint, types and the whole test suite (unit, integration with the real claude CLI).
set -euo pipefail
cd "$(dirname "$0")"
. scripts/venv.sh
"$VENV/bin/pip" install --quiet -c scripts/constraints.txt -e '.[dev]'

echo "== ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
echo "== mypy"
"$VENV/bin/mypy"
"$VENV/bin/mypy" tests
echo "== pytest"
set +e
"$VENV/bin/pytest" "$@"
code=$?
set -e
# 5 = no tests collected: a suite that ran nothing has failed
if [ "$code" = 5 ]; then
  echo "pytest collected no tests" >&2
  exit 1
fi
exit "$code"
