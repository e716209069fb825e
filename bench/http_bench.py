"""bench/http.sh's work: see there. Everything on loopback, a temporary SyftBox."""

import argparse
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

OWNER = "do@example.com"


class Daemon:
    def __init__(self, binary, root):
        self.args = [binary, "daemon", "--syftbox", str(root / "syftbox"), "--email", OWNER,
                     "--state-dir", str(root / "state"), "--http", "127.0.0.1:0", "--timeout", "600"]
        (root / "syftbox").mkdir(exist_ok=True)
        self.log = root / "daemon.log"
        self.state = root / "state"

    def __enter__(self):
        self.process = subprocess.Popen(self.args, stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            match = re.search(r"HTTP API listening address=127\.0\.0\.1:(\d+)", self.log.read_text())
            if match:
                self.base = f"http://127.0.0.1:{match.group(1)}"
                self.token = (self.state / "api-token").read_text().strip()
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        sys.exit(f"bench: the daemon did not start:\n{self.log.read_text()}")

    def __exit__(self, *_):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)

    def get(self, path):
        with urllib.request.urlopen(self.base + path, timeout=60) as response:
            return json.load(response)


def seed_history(state: Path, runs: int):
    """`runs` finished runs over the last 30 days, as the daemon records them."""
    db = sqlite3.connect(state / "history.sqlite")
    now = datetime.now(timezone.utc)
    statuses = ["succeeded"] * 8 + ["failed", "timed_out"]
    rows = []
    for index in range(runs):
        finished = now - timedelta(seconds=index * 259)
        wall = 40 + (index * 37) % 5000
        started = finished - timedelta(milliseconds=wall)
        fmt = lambda d: d.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        job = f"ds{index % 40}@example.org/v1/job-{index}"
        rows.append((str(uuid.uuid4()), job, f"ds{index % 40}@example.org", f"job-{index}", statuses[index % 10],
                     fmt(started), fmt(finished), wall, 0, 0, "none", 120, 0, None, '{"status": "succeeded"}',
                     format(index, "016x"), "syftbox"))
    db.executemany("""INSERT INTO runs (id, job, submitter, name, status, started_at, finished_at, wall_ms,
                      exit_code, return_code, limit_hit, stdout_bytes, stderr_bytes, reason, record, job_id, source)
                      VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""", rows)
    db.commit()
    db.close()


def wrk(url, seconds, connections=50):
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    def ms(label):
        match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return ms("50%"), ms("99%"), rps, int(errors.group(1)) if errors else 0


def submit(daemon, script_text, name):
    boundary = "bench" + uuid.uuid4().hex
    spec = json.dumps({"entry": "main.sh", "timeout_sec": 600, "name": name})
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"spec\"\r\n\r\n{spec}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"code_files\"; filename=\"main.sh\"\r\n"
            f"Content-Type: text/plain\r\n\r\n{script_text}\r\n--{boundary}--\r\n").encode()
    request = urllib.request.Request(daemon.base + "/jobs", data=body, method="POST", headers={
        "Authorization": f"Bearer {daemon.token}", "Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)["job_id"]


# A job that works and reports as it goes: CPU-bound, a progress line
# every millisecond or so. It first waits a second (the followers
# connect meanwhile), then times its own work and reports it on stderr.
WORKER = """import sys, time
time.sleep(1)
start = time.monotonic()
total = 0
for step in range(LINES):
    total += sum(i * i for i in range(3000))
    print(f"step {step:6d} of LINES: running total {total}", flush=True)
print(f"work_ms={(time.monotonic() - start) * 1000:.0f}", file=sys.stderr)
"""


def run_followed(daemon, lines, followers):
    code = WORKER.replace("LINES", str(lines))
    job = submit(daemon, f"python3 - <<'EOF'\n{code}EOF\n", f"progress-{followers}-followers")
    # Followers are curl processes (each a real client socket), their bytes counted.
    clients = [subprocess.Popen(["curl", "-sN", f"{daemon.base}/jobs/{job}/logs/stream"], stdout=subprocess.PIPE)
               for _ in range(followers)]
    received = [0] * followers
    threads = []
    for index, client in enumerate(clients):
        def drain(index=index, client=client):
            while chunk := client.stdout.read(1 << 16):
                received[index] += len(chunk)
        threads.append(threading.Thread(target=drain))
        threads[-1].start()
    while True:
        view = daemon.get(f"/jobs/{job}")["job"]
        if view["status"] not in ("queued", "running"):
            break
        time.sleep(0.05)
    for client, thread in zip(clients, threads):
        client.wait(timeout=120)
        thread.join(timeout=120)
    with urllib.request.urlopen(f"{daemon.base}/jobs/{job}/logs?stream=stderr", timeout=60) as response:
        work = int(re.search(r"work_ms=(\d+)", response.read().decode()).group(1))
    return work, min(received) if received else 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--runs", type=int, default=10000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--followers", type=int, default=100)
    parser.add_argument("--lines", type=int, default=20000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="syft-http-bench-") as folder:
        root = Path(folder)
        with Daemon(options.binary, root):
            pass  # creates the state folder and the history's schema
        seed_history(root / "state", options.runs)
        with Daemon(options.binary, root) as daemon:
            total = daemon.get("/api/v1/jobs/history?limit=1")["total"]
            print(f"== HTTP API with {total} runs in the history, 50 concurrent clients, {options.seconds} s each")
            for name, path in [("history?limit=50", "/api/v1/jobs/history?limit=50"),
                               ("history?q=job-12&status=failed", "/api/v1/jobs/history?limit=50&q=job-12&status=failed"),
                               ("stats", "/api/v1/jobs/stats")]:
                p50, p99, rps, errors = wrk(daemon.base + path, options.seconds)
                print(f"  {name:32s} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   {rps:8.0f} req/s"
                      + (f"   {errors} errors" if errors else "") + "   (target p99 < 10 ms)")
            print(f"== uncached: one client, {options.runs // 10} distinct pages (offsets) and searches")
            cold = []
            for index in range(options.runs // 10):
                path = (f"/api/v1/jobs/history?limit=50&offset={index * 7}" if index % 2 == 0
                        else f"/api/v1/jobs/history?limit=50&q=job-{index}")
                started = time.perf_counter()
                daemon.get(path)
                cold.append((time.perf_counter() - started) * 1000)
            cold.sort()
            print(f"  history pages                    p50 {cold[len(cold) // 2]:6.2f} ms   "
                  f"p99 {cold[int(len(cold) * 0.99)]:6.2f} ms")
            print(f"== a CPU-bound job printing {options.lines} progress lines, followed live (SSE)")
            alone, _ = run_followed(daemon, options.lines, 0)
            followed, received = run_followed(daemon, options.lines, options.followers)
            print(f"  0 followers                      {alone:8d} ms of work")
            print(f"  {options.followers} followers{' ' * (23 - len(str(options.followers)))}{followed:8d} ms of work"
                  f"   (each received {received / 1e6:.1f} MB of events)")
            print(f"  ratio                            {followed / max(alone, 1):8.2f}x")


if __name__ == "__main__":
    main()
