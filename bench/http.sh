#!/usr/bin/env bash
# The HTTP API's benchmark: with 10 000 runs in the history, the latency
# of `GET /api/v1/jobs/history?limit=50` and `GET /api/v1/jobs/stats` under
# 50 concurrent clients (wrk, p50/p99), and the wall time of a CPU-bound
# job printing progress lines with 0 and with 100 SSE clients (curl)
# following it.
#
#   bench/http.sh [--quick] [BINARY]
#
# Prints figures; asserts nothing (machines are noisy). Installs wrk if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
if [[ ${1:-} == --quick ]]; then quick=1; shift; fi
binary=$(realpath "${1:-.build/release/syft-sandbox-run}")
[[ -x $binary ]] || { echo "bench: no binary at $binary (swift build -c release)" >&2; exit 2; }
command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
if ((quick)); then runs=1000 seconds=2 followers=20 lines=2000
else runs=10000 seconds=10 followers=100 lines=20000; fi
exec python3 bench/http_bench.py "$binary" --runs "$runs" --seconds "$seconds" --followers "$followers" --lines "$lines"
