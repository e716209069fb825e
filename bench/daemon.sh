#!/usr/bin/env bash
# The daemon's benchmark: approve-to-start latency, and N trivial jobs
# through the daemon vs syft-job's own runner (PyPI syft-job==0.1.40, in a
# virtualenv made here).
#
#   bench/daemon.sh [--quick] [BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=200 latency=20
if [[ ${1:-} == --quick ]]; then jobs=20 latency=5; shift; fi
binary=$(realpath "${1:-.build/release/syft-sandbox-run}")
venv=${SYFT_BENCH_VENV:-/tmp/syft-bench-venv}
if [[ ! -x $venv/bin/python ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q syft-job==0.1.40
fi
# On disk (where a SyftBox folder lives) and on tmpfs: every job creates
# and replaces a few small files, and an ext4 without a journal (this CI
# machine's) makes each new inode skip past every one deleted in the last
# minute, which the tmpfs run leaves out. Both runners use the same folder.
for dir in /var/tmp /dev/shm; do
    "$venv/bin/python" bench/daemon_bench.py "$binary" --jobs "$jobs" --latency-runs "$latency" --dir "$dir"
done
