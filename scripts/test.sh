#!/usr/bin/env bash
# Every test suite, as CI runs them (after the release build):
#   1. swift test: unit tests per module and integration tests that start
#      real sandboxes and daemons (root or unprivileged user namespaces);
#   2. Tests/Interop: the real syft-job client (PyPI) against the daemon;
#   3. Tests/API: the HTTP API against /openapi.json, and the dashboard in
#      headless Chromium.
# The Python suites use .build/release/syft-sandbox-run (or $SYFT_SANDBOX_RUN).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
swift test
bash Tests/Interop/run.sh
bash Tests/API/run.sh
