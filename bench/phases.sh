#!/usr/bin/env bash
# Where a launch's time goes: a trivial job's launch through
# syft-sandbox-run and through bubblewrap (bench.sh's command line), cut
# into phases at the kernel's events (process exec, fork and exit, and a
# few syscalls: the clone into the namespaces, the go-ahead, pivot_root),
# each phase's median printed side by side.
#
#   bench/phases.sh [--runs N] [--apart MS] [BINARY]
#
# --apart: a pause of MS milliseconds after each run (default none: runs
# follow each other, as bench.sh's back-to-back rows), for the latency of
# one run on a quiet machine (its 20 ms rows): what the CPUs' waking from
# idle costs shows there.
#
# Needs root and bpftrace (tracepoints only). The tracing itself adds a
# little to every traced syscall: compare the rows with each other, and
# take the totals from bench.sh. BINARY defaults to
# .build/release/syft-sandbox-run.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/baseline.sh

runs=100
apart=0
while [[ ${1:-} == --runs || ${1:-} == --apart ]]; do
    if [[ $1 == --runs ]]; then runs=$2; else apart=$2; fi
    shift 2
done
[[ $runs =~ ^[1-9][0-9]*$ && $apart =~ ^[0-9]+$ ]] \
    || { echo "phases: --runs takes a count, --apart whole milliseconds" >&2; exit 2; }
pause=$(printf '%d.%03d' $((apart / 1000)) $((apart % 1000)))
binary=$(realpath "${1:-.build/release/syft-sandbox-run}")
bwrap=$(command -v bwrap) || { echo "phases: bwrap is missing (apt-get install -y bubblewrap)" >&2; exit 1; }
command -v bpftrace >/dev/null || { echo "phases: bpftrace is missing (apt-get install -y bpftrace)" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "phases: bpftrace needs root" >&2; exit 1; }
# Tracepoints are found through tracefs, which a fresh boot may not have
# mounted (nor debugfs, bpftrace's other place to look).
if [[ ! -e /sys/kernel/tracing/events && ! -e /sys/kernel/debug/tracing/events ]]; then
    mount -t tracefs nodev /sys/kernel/tracing \
        || { echo "phases: no tracefs, and it cannot be mounted at /sys/kernel/tracing" >&2; exit 1; }
fi

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/syft-phases.XXXXXX")
tracer=""
cleanup() {
    # On a failure (the events are not read): no waiting on a missed SIGINT.
    [[ -n $tracer ]] && kill -KILL "$tracer" 2>/dev/null && wait "$tracer" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/job"
# A copy at a short path: bpftrace compares the first 64 bytes of a path.
cp "$binary" "$work/syft-sandbox-run"
binary=$work/syft-sandbox-run
printf 'true\n' > "$work/job/run.sh"

bpftrace bench/phases.bt "$binary" "$bwrap" > "$work/events" 2> "$work/tracer.log" &
tracer=$!
for _ in $(seq 100); do grep -q Attaching "$work/events" 2>/dev/null && break; sleep 0.1; done
grep -q Attaching "$work/events" || { echo "phases: bpftrace did not attach:" >&2; cat "$work/tracer.log" >&2; exit 1; }
sleep 1 # the probes are attached once the program has printed; let them settle

# Word-split when run: the folders' paths hold no spaces (mktemp's).
baseline=$(bwrap_command "$work/job")
cd "$work/job"
for _ in $(seq "$runs"); do
    "$binary" --results "$work/results" "$work/job" > /dev/null
    if ((apart)); then sleep "$pause"; fi
    $baseline > /dev/null
    if ((apart)); then sleep "$pause"; fi
done
cd - > /dev/null
# SIGINT makes bpftrace flush its events and exit; now and then it misses
# one (seen in CI: asleep in epoll_wait, the signal caught, no exit), so it
# is sent again every second, and after 10 s the tracer is killed.
for _ in $(seq 10); do
    kill -INT "$tracer" 2>/dev/null || break
    for _ in $(seq 10); do kill -0 "$tracer" 2>/dev/null || break 2; sleep 0.1; done
done
kill -KILL "$tracer" 2>/dev/null && echo "phases: bpftrace did not stop on SIGINT; its events may be cut short" >&2
wait "$tracer" || true
tracer=""
echo "== where a trivial job's launch goes ($runs runs each, alternating$( ((apart)) && echo ", ${apart} ms apart"))"
python3 bench/phases.py < "$work/events"
