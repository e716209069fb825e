#!/usr/bin/env bash
# The HTTP API and the dashboard against a real `syft-sandbox-run daemon
# --http`: every response checked against /openapi.json, and the dashboard
# driven in headless Chromium (Debian's chromium and chromium-driver). See
# conftest.py and, for the variables, Tests/run-python-suite.sh.
#
#   bash Tests/API/run.sh [pytest arguments]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec bash "$here/../run-python-suite.sh" "$here" "$@"
