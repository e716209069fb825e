#!/usr/bin/env bash
# Interop tests: the real syft-job client (PyPI, pinned in requirements.txt)
# against `syft-sandbox-run daemon`. See test_syft_job_interop.py and, for
# the variables, Tests/run-python-suite.sh.
#
#   bash Tests/Interop/run.sh [pytest arguments]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec bash "$here/../run-python-suite.sh" "$here" "$@"
