"""The daemon against syft-job's own runner, on the same jobs.

    python daemon_bench.py BINARY [--jobs N] [--latency-runs N]

approve-to-start: the owner writes `approved` into a pending job's
state.yaml (as the client's approve() does); how long until the daemon
has written `running`.
throughput: N trivial jobs from all approved to all `done`: our daemon
(received and fingerprinted first, every job sandboxed) vs syft-job's
SyftJobRunner.process_approved_jobs on the same jobs.
Prints medians and the ratio; asserts nothing.
"""
import argparse, os, shutil, signal, statistics, subprocess, sys, tempfile, time
import yaml

OWNER, DS = "do@example.com", "ds@example.com"


def dump(data):
    return yaml.dump(data, default_flow_style=False)  # keys sorted, as the client writes


def state(status, **fields):
    base = dict(canonical_name="JobState", version="1", status=status, received_at="2026-11-25T06:00:00.000001Z",
                approved_by=None, approved_at=None, approval_method=None, rejected_by=None, rejected_at=None,
                review_reason=None, completed_at=None, return_code=None)
    base.update(fields)
    return dump(base)


def approved():
    return state("approved", approved_by=OWNER, approved_at="2026-11-25T06:00:01.000001Z", approval_method="manual")


def write_job(root, name, status_text):
    job = os.path.join(root, OWNER, "app_data/job/inbox", DS, "v1", name)
    os.makedirs(os.path.join(job, "code"), exist_ok=True)
    with open(os.path.join(job, "run.sh"), "w") as f:
        f.write("#!/bin/bash\ntrue\n")
    with open(os.path.join(job, "code", "script.sh"), "w") as f:
        f.write("true\n")
    with open(os.path.join(job, "config.yaml"), "w") as f:
        f.write(dump(dict(canonical_name="JobSubmissionMetadata", version="1", name=name, type="bash",
                          submitted_at="2026-11-25T06:00:00.000001Z", entrypoint=None, dependencies=[],
                          files=["script.sh"], is_folder_submission=False, code_path=None, job_type="local",
                          datasets=None, headers={})))
    review = os.path.join(root, OWNER, "app_data/job/review", DS, "v1", name)
    os.makedirs(review, exist_ok=True)
    if status_text is not None:
        with open(os.path.join(review, "state.yaml"), "w") as f:
            f.write(status_text)
    return os.path.join(review, "state.yaml")


def read_status(path):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("status: "):
                    return line.split()[1]
    except FileNotFoundError:
        return None


def start_daemon(binary, root, state_dir, concurrency):
    return subprocess.Popen([binary, "daemon", "--syftbox", root, "--email", OWNER, "--state-dir", state_dir,
                             "--concurrency", str(concurrency)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_until(predicate, timeout, step=0.0005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def approve_to_start(binary, work, runs):
    root = os.path.join(work, "latency")
    names = [f"lat-{i}" for i in range(runs)]
    paths = [write_job(root, name, None) for name in names]  # the daemon receives them: pending
    daemon = start_daemon(binary, root, os.path.join(work, "latency-state"), 1)
    try:
        if not wait_until(lambda: all(read_status(p) == "pending" for p in paths), 30, 0.01):
            raise SystemExit("the daemon did not receive the jobs")
        latencies = []
        for path in paths:
            text = open(path).read().replace("status: pending", "status: approved")
            temporary = path + ".tmp"
            with open(temporary, "w") as f:
                f.write(text)
            began = time.monotonic()
            os.rename(temporary, path)  # the client writes atomically too
            if not wait_until(lambda: read_status(path) in ("running", "done", "failed"), 10):
                raise SystemExit("an approved job did not start")
            latencies.append(time.monotonic() - began)
            wait_until(lambda: read_status(path) in ("done", "failed"), 10, 0.001)
        return latencies
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait()


def ours(binary, root, work, jobs):
    """The daemon receives the jobs first (validated, fingerprinted: pending),
    then the owner approves them all; timed from the approvals to all done."""
    paths = [os.path.join(root, OWNER, "app_data/job/review", DS, "v1", f"job-{i}", "state.yaml") for i in range(jobs)]
    daemon = start_daemon(binary, root, os.path.join(work, "throughput-state"),
                          int(os.environ.get("BENCH_CONCURRENCY", os.cpu_count() or 1)))
    unfinished = list(paths)  # in approval order, which is the order the daemon runs them in

    def finished():
        # The first unfinished job only, and not too often: the benchmark
        # must not take the CPU from what it measures (reading every state
        # file at each look took a twentieth of it).
        while unfinished and read_status(unfinished[0]) in ("done", "failed"):
            unfinished.pop(0)
        return not unfinished

    try:
        if not wait_until(lambda: all(read_status(p) == "pending" for p in paths), 120, 0.05):
            raise SystemExit("the daemon did not receive the jobs")
        cpu_before = cpu_seconds(daemon.pid)
        began = time.monotonic()
        for path in paths:
            temporary = path + ".tmp"
            with open(temporary, "w") as f:
                f.write(approved())
            os.rename(temporary, path)
        if not wait_until(finished, 600, 0.02):
            raise SystemExit("the daemon did not finish the jobs")
        elapsed = time.monotonic() - began
        time.sleep(0.3)  # the last sandboxes reaped and counted
        cpu = cpu_seconds(daemon.pid) - cpu_before
        failed = sum(read_status(p) != "done" for p in paths)
        return elapsed, failed, cpu
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait()


def cpu_seconds(pid):
    """CPU time of the daemon and of its reaped children (every sandbox,
    the jobs' bash included): steadier than wall time on a busy machine."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime


def theirs(root, jobs):
    from syft_job.config import SyftJobConfig
    from syft_job.job_runner import SyftJobRunner
    runner = SyftJobRunner(SyftJobConfig.from_syftbox_folder(root, OWNER))
    began = time.monotonic()
    with open(os.devnull, "w") as sink:
        saved = sys.stdout
        sys.stdout = sink
        try:
            runner.process_approved_jobs(stream_output=False)
        finally:
            sys.stdout = saved
    elapsed = time.monotonic() - began
    paths = [os.path.join(root, OWNER, "app_data/job/review", DS, "v1", f"job-{i}", "state.yaml") for i in range(jobs)]
    return elapsed, sum(read_status(p) != "done" for p in paths)


def filesystem(path):
    """The type of the filesystem holding `path`, from /proc/self/mounts."""
    best, kind = "", "?"
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            _, point, fstype = line.split()[:3]
            if os.path.realpath(path).startswith(point.rstrip("/") + "/") or point == os.path.realpath(path):
                if len(point) > len(best):
                    best, kind = point, fstype
    return kind


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--latency-runs", type=int, default=20)
    parser.add_argument("--dir", default="/var/tmp", help="where the SyftBox folders are made (its filesystem counts)")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="syft-daemon-bench-", dir=args.dir)
    print(f"== in {args.dir} ({filesystem(args.dir)})")
    try:
        latencies = approve_to_start(args.binary, work, args.latency_runs)
        print(f"== daemon: approve-to-start ({len(latencies)} jobs)")
        print(f"  median {statistics.median(latencies) * 1000:8.1f} ms   max {max(latencies) * 1000:.1f} ms"
              "   (target < 50 ms)")
        ours_root, theirs_root = os.path.join(work, "ours"), os.path.join(work, "theirs")
        for i in range(args.jobs):
            write_job(ours_root, f"job-{i}", None)  # submitted: the daemon receives them
            write_job(theirs_root, f"job-{i}", approved())  # syft-job's runner takes approved ones
        ours_time, ours_failed, ours_cpu = ours(args.binary, ours_root, work, args.jobs)
        theirs_time, theirs_failed = theirs(theirs_root, args.jobs)
        print(f"== daemon: {args.jobs} trivial approved jobs, all done")
        print(f"  syft-sandbox-run {ours_time:8.2f} s  ({ours_failed} not done; every job sandboxed)")
        print(f"    CPU per job    {ours_cpu / args.jobs * 1000:8.2f} ms (the daemon and its sandboxes, at"
              f" {1000 / os.sysconf('SC_CLK_TCK'):.0f} ms ticks over the run)")
        print(f"  syft-job runner  {theirs_time:8.2f} s  ({theirs_failed} not done; no sandbox)")
        print(f"  speed-up         {theirs_time / ours_time:8.1f}x   (target >= 20x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
