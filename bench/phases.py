"""Where a launch's time goes, from bench/phases.bt's events (stdin).

Prints, for syft-sandbox-run and for bwrap, the median of every phase of a
launch over the runs traced, side by side. Phases are measured on each run
from one event to the next, so the rows add up to about the total; a row
that does not apply to a runner is left blank.
"""

import statistics
import sys
from collections import defaultdict

# (label, syft-sandbox-run's span, bwrap's span): each span is a (start
# event, end event) pair as phases.bt names them ("exec job" being the exec
# of the job, bash; "exec init" that of syft-sandbox-run's PID 1, where it
# is executed rather than forked), or
# None where the phase has no counterpart. The indented rows detail the
# one above them.
ROWS = [
    ("process start, options, up to the namespaces' clone", ("start", "ns_clone"), ("start", "ns_clone")),
    ("the namespaces' clone to the job's fork", ("ns_clone", "job_fork"), ("ns_clone", "job_fork")),
    ("  clone, PID 1's start and namespaces, up to its wait", ("ns_clone", "init_recv"), None),
    ("  waiting for the plan (sent ahead, or the go-ahead)", ("init_recv", "init_received"), None),
    ("  root assembled (the go-ahead awaited), up to pivot_root", ("init_received", "pivot"), ("ns_clone", "pivot")),
    ("  after pivot_root, up to the fork (ours: the cgroup placement)", ("pivot", "job_fork"), ("pivot", "job_fork")),
    ("job's setup (fds, session, rlimits, caps, seccomp) and exec", ("job_fork", "exec job"),
     ("job_fork", "exec job")),
    ("the job (bash run.sh)", ("exec job", "job_exit"), ("exec job", "job_exit")),
    ("job's exit until PID 1 tells the runner", ("job_exit", "report"), ("job_exit", "pid1_exit")),
    ("runner: usage, outputs, results, cgroup removed", ("report", "exit_group"), ("pid1_exit", "exit_group")),
    ("runner's own exit, until its parent's wait4", ("exit_group", "reaped"), ("exit_group", "reaped")),
    ("total, to the parent's wait4", ("start", "reaped"), ("start", "reaped")),
]


def runs(lines):
    events = defaultdict(dict)
    kinds = {}
    for line in lines:
        parts = line.split()
        if len(parts) < 4 or parts[0] != "EV":
            continue
        root, time, name = parts[1], int(parts[2]), parts[3]
        if name == "start":
            events[root] = {"start": 0}
            kinds[root] = "bwrap" if parts[4].endswith("/bwrap") else "ours"
            continue
        if name == "exec":
            name = "exec job" if parts[4].endswith("/bash") else "exec init"
        seen = events[root]
        if name in ("pivot", "report"):
            seen[name] = time  # the last one: bwrap pivots twice; PID 1's netlink sendto comes before the report
        elif name == "init_received" and "init_received" in seen:
            continue  # the second is the placement
        else:
            seen.setdefault(name, time)
    for root, seen in events.items():
        if "reaped" in seen and root in kinds:
            yield kinds[root], seen


def main():
    phases = {"ours": defaultdict(list), "bwrap": defaultdict(list)}
    counts = defaultdict(int)
    for kind, seen in runs(sys.stdin):
        spans = [(label, ours if kind == "ours" else theirs) for label, ours, theirs in ROWS]
        if any(span and (span[0] not in seen or span[1] not in seen) for _, span in spans):
            continue
        counts[kind] += 1
        for label, span in spans:
            if span:
                phases[kind][label].append(seen[span[1]] - seen[span[0]])
    if not counts["ours"] or not counts["bwrap"]:
        sys.exit("phases: no complete run traced for both runners (bpftrace attached? run as root?)")
    print(f"  {'phase (median, µs)':64s} {'syft-sandbox-run':>16s} {'bwrap':>7s}")
    for label, _, _ in ROWS:
        cells = [phases[kind].get(label) for kind in ("ours", "bwrap")]
        ours, theirs = (f"{statistics.median(cell):.0f}" if cell else "" for cell in cells)
        print(f"  {label:64s} {ours:>16s} {theirs:>7s}")
    print(f"  ({counts['ours']} and {counts['bwrap']} runs; bwrap's PID 1 builds its root from the clone on, so"
          " its root row starts there)")


if __name__ == "__main__":
    main()
