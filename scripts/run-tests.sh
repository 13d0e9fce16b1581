#!/usr/bin/env bash
# Runs the whole pytest suite; a run that collects no test is a failure, not a success.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
.venv/bin/python -m pytest -ra "$@"
rc=$?
if [[ $rc == 5 ]]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit $rc
