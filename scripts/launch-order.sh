#!/usr/bin/env bash
# Writes Sources/syft-sandbox-run/launch.order: the functions a one-shot run
# executes (the CLI's and the sandbox init's), hottest first, which the
# release link (lld --symbol-ordering-file, see Package.swift) lays out
# together. Their code then shares a few hundred pages instead of being
# spread over the 36 MB of text: fewer pages for the kernel to map at each
# start and to unmap at each exit. Then the variables whose pages a run
# faults in (the runtime's, Foundation's, libc's): lld moves the section
# holding each, so their pages of .data (copied at the first write) and
# .bss (zeroed at the first touch) are fewer too.
#
#   scripts/launch-order.sh [BINARY]      (root; BINARY: a release build)
#
# The list comes from sampling, so it is close, not exact: a function it
# misses still runs, from wherever the linker put it. Names that no longer
# exist are ignored by the link. Rerun after larger changes to the launch path.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=$(realpath "${1:-.build/release/syft-sandbox-run}")
[[ -x $binary ]] || { echo "launch-order: no binary at $binary (swift build -c release)" >&2; exit 2; }
command -v perf >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null

work=$(mktemp -d /dev/shm/launch-order.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/job/code"
# A job as syft-job submits it: its config.yaml, and an output file.
cp examples/hello/config.yaml "$work/job/"
echo 'echo ok > outputs/result.txt' > "$work/job/run.sh"
runs=${RUNS:-1500}

# User-space samples at a high rate over many runs: a function that runs
# for 50 ns per launch is still seen in most passes of this many runs.
perf record -q -F "${FREQUENCY:-40000}" -e cpu-clock:u -a -o "$work/samples.data" -- \
    bash -c "for _ in \$(seq $runs); do '$binary' --results '$work/results' '$work/job' >/dev/null; done"
# And every page fault's instruction and address: for what the samples
# missed, and for the variables.
perf record -q -e page-faults:u -c 1 -d -a -o "$work/faults.data" -- \
    bash -c "for _ in \$(seq 100); do '$binary' --results '$work/results' '$work/job' >/dev/null; done"

for data in samples faults; do
    perf script -i "$work/$data.data" --no-demangle -F ip,sym,dso 2>/dev/null \
        | awk -v dso="($binary)" '$NF == dso && $2 != "[unknown]" { sub(/\+0x[0-9a-f]+$/, "", $2); print $2 }'
done | sort | uniq -c | sort -rn -k1,1 | awk '{ print $2 }' > Sources/syft-sandbox-run/launch.order
functions=$(wc -l < Sources/syft-sandbox-run/launch.order)

# The variables: each faulting address of the binary's, sorted among its
# symbols (addresses padded to 16 hex digits sort as numbers), names the
# data symbol at or before it (none past the binary's end: the heap).
pad='function pad(a) { while (length(a) < 16) a = "0" a; return a }'
{
    nm -n --defined-only "$binary" | awk "$pad"' NF == 3 { print pad($1), "S", $2, $3 }'
    perf script -i "$work/faults.data" -F comm,addr 2>/dev/null \
        | awk "$pad"' $1 ~ /^(syft-|sandbox)/ { print pad($NF), "F" }'
} | sort -s -k1,1 -k2,2r \
    | awk '$2 == "S" { symbol = ($3 ~ /^[dDbBvV]$/ && !past_end) ? $4 : "" }
           $2 == "S" && $4 == "_end" { past_end = 1 }   # the heap, not a variable
           $2 == "F" && symbol != "" { print symbol }' \
    | sort | uniq -c | sort -rn -k1,1 | awk '{ print $2 }' >> Sources/syft-sandbox-run/launch.order
echo "launch-order: $functions functions and $(( $(wc -l < Sources/syft-sandbox-run/launch.order) - functions )) variables in Sources/syft-sandbox-run/launch.order"
# SwiftPM does not see the file as an input of the link.
echo "launch-order: relink with: rm $binary && swift build -c release --static-swift-stdlib"
