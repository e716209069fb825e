"""Interop: the real syft-job client (0.1.40, see requirements.txt) against
`syft-sandbox-run daemon`.

Everything a data scientist or data owner does goes through the client's own
API (`get_client`, `setup_ds_job_folder_as_do`, `submit_bash_job`,
`submit_python_job`, `JobInfo.approve`, `.jobs`, `.stdout`, `.stderr`,
`.output_paths`) on a local SyftBox folder, the way the client runs on both
sides of a SyftBox sync without a server: `get_client(folder, email)` needs no
configuration file. The daemon is the binary in $SYFT_SANDBOX_RUN, started
as a subprocess and stopped with SIGTERM (it must exit 0).

The comparison test runs syft-job's own runner (`SyftJobRunner.
process_approved_jobs`, what `syft-job-runner` does each poll) on a copy of
the same folder and compares the two review trees file by file.
"""

import difflib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import yaml
from syft_job import get_client, job_registry
from syft_job.client import JobClient
from syft_job.config import SyftJobConfig
from syft_perms import SyftPermContext

REPO = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("SYFT_SANDBOX_RUN") or REPO / ".build/release/syft-sandbox-run")
DO = "do@example.com"
DS = "ds@example.com"
TIMEOUT_MARKER = "\n--- PROCESS TIMED OUT ---\n"
# Every wait is bounded, and all of them together: a daemon that hangs fails
# the tests, it does not hold up CI (whose interop step must stay under 3 min).
WAIT_SECONDS = 60
SESSION_DEADLINE = time.monotonic() + 150


# ----------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------


class Daemon:
    """`syft-sandbox-run daemon` on a SyftBox folder, its state folder outside
    the SyftBox tree, its log in a file shown on failure."""

    def __init__(self, syftbox: Path, state_dir: Path, log: Path, *options: str):
        self.log_path = log
        self.args = [str(BINARY), "daemon", "--syftbox", str(syftbox), "--email", DO,
                     "--state-dir", str(state_dir), *options]
        self.process = None

    def __enter__(self):
        if not (BINARY.is_file() and os.access(BINARY, os.X_OK)):
            pytest.fail(f"no syft-sandbox-run binary at {BINARY} (set SYFT_SANDBOX_RUN)")
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check_alive(self):
        if self.process.poll() is not None:
            pytest.fail(f"the daemon exited ({self.process.returncode}) early:\n{self.log()}")

    def stop(self) -> int:
        """SIGTERM; the daemon must exit 0 within its shutdown time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                pytest.fail(f"the daemon did not stop within 30 s of SIGTERM:\n{self.log()}")
        self._log.close()
        return self.process.returncode

    def __exit__(self, kind, error, trace):
        if self.process.poll() is None:
            if kind is None:
                code = self.stop()
                assert code == 0, f"the daemon exited {code} on SIGTERM:\n{self.log()}"
            else:
                self.process.kill()
                self.process.wait()
                self._log.close()
                print(f"daemon log:\n{self.log()}")
        return False


def wait_for(predicate, what: str, daemon: Daemon = None, seconds: float = WAIT_SECONDS):
    deadline = min(time.monotonic() + seconds, SESSION_DEADLINE)
    while True:
        value = predicate()
        if value:
            return value
        if daemon is not None:
            daemon.check_alive()
        if time.monotonic() > deadline:
            log = f"\ndaemon log:\n{daemon.log()}" if daemon else ""
            pytest.fail(f"timed out waiting for {what}{log}")
        time.sleep(0.1)


def client(root: Path, email: str) -> JobClient:
    return get_client(str(root), email)


def old_client(root: Path, email: str) -> JobClient:
    """A client speaking protocol 0 to the owner, as syft-job <= 0.1.38 did:
    the real client's own protocol-0 codec (no v1 segment, files without
    canonical_name/version), chosen the way syft negotiates with an old peer."""
    config = SyftJobConfig.from_syftbox_folder(str(root), email)
    return JobClient(config, peer_schemas={DO: job_registry.schema_for_protocol_version("0")})


def make_syftbox(root: Path) -> Path:
    """A SyftBox folder with the owner's datasite and the submitter set up by
    the owner (`setup_ds_job_folder_as_do`: inbox/DS write, review/DS read)."""
    root.mkdir(parents=True)
    client(root, DO).setup_ds_job_folder_as_do(DS)
    client(root, DS)  # the submitter's own datasite folder
    return root


def job_dir(root: Path, area: str, name: str, protocol: str = "1") -> Path:
    base = root / DO / "app_data" / "job" / area / DS
    return base / "v1" / name if protocol == "1" else base / name


def jobs_of(root: Path, email: str = DO) -> dict:
    """The jobs in the owner's datasite as `email`'s client lists them."""
    return {job.name: job for job in client(root, email).jobs if job.datasite_owner_email == DO}


def snapshot(folder: Path) -> dict:
    """Relative path -> file bytes, or None for a folder."""
    found = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_symlink():
            found[relative] = ("symlink", os.readlink(path))
        elif path.is_dir():
            found[relative] = None
        else:
            found[relative] = path.read_bytes()
    return found


def state_yaml(root: Path, name: str, protocol: str = "1") -> dict:
    return yaml.safe_load((job_dir(root, "review", name, protocol) / "state.yaml").read_text())


def finished(root: Path, names, protocol: str = "1"):
    """All of `names` done or failed (read off the files: no client scan)."""
    def check():
        for name in names:
            path = job_dir(root, "review", name, protocol) / "state.yaml"
            try:
                if yaml.safe_load(path.read_text()).get("status") not in ("done", "failed"):
                    return False
            except (FileNotFoundError, AttributeError):
                return False
        return True
    return check


def received(root: Path, names, protocol: str = "1"):
    """The daemon wrote a state for all of `names`."""
    return lambda: all((job_dir(root, "review", n, protocol) / "state.yaml").exists() for n in names)


def review_text(job, name: str) -> str:
    return (job.job_review_path / name).read_text()


# ----------------------------------------------------------------------------
# a. The client end to end against the daemon
# ----------------------------------------------------------------------------

WRITES_OUTPUT = """#!/bin/bash
echo "writing the result"
mkdir -p outputs
printf 'answer=42\\n' > outputs/result.txt
"""
EXITS_THREE = """#!/bin/bash
echo "about to fail"
echo "something went wrong" >&2
exit 3
"""
SLEEPS = """#!/bin/bash
echo "going to sleep"
sleep 30
echo "woke up"
"""


def test_client_submits_approves_and_reads_results(tmp_path):
    root = make_syftbox(tmp_path / "SyftBox")
    ds = client(root, DS)
    with Daemon(root, tmp_path / "state", tmp_path / "daemon.log", "--timeout", "2") as daemon:
        scripts = {"write-output": WRITES_OUTPUT, "exit-three": EXITS_THREE, "sleeper": SLEEPS}
        for name, script in scripts.items():
            ds.submit_bash_job(DO, script, job_name=name)
        inbox_before = snapshot(root / DO / "app_data" / "job" / "inbox")

        # The daemon receives them (the client's own scan never runs first).
        wait_for(received(root, scripts), "the daemon to receive the jobs", daemon)
        jobs = jobs_of(root)
        assert {name: job.status for name, job in jobs.items()} == dict.fromkeys(scripts, "pending")

        for job in jobs.values():
            job.approve()
        wait_for(finished(root, scripts), "the jobs to finish", daemon)

        jobs = jobs_of(root)
        assert {name: job.status for name, job in jobs.items()} == {
            "write-output": "done", "exit-three": "failed", "sleeper": "failed"}
        # The return code as the client parsed it from state.yaml (JobInfo has
        # no public accessor), and returncode.txt as its rerun() knows it.
        assert {name: job._state.return_code for name, job in jobs.items()} == {
            "write-output": 0, "exit-three": 3, "sleeper": -1}
        assert {name: review_text(job, "returncode.txt") for name, job in jobs.items()} == {
            "write-output": "0", "exit-three": "3", "sleeper": "-1"}
        for job in jobs.values():
            assert job._state.completed_at is not None
            assert job._state.approved_by == DO and job.approval_method == "manual"

        done = jobs["write-output"]
        assert str(done.stdout) == "writing the result\n"
        assert str(done.stderr) == ""
        assert [path.name for path in done.output_paths] == ["result.txt"]
        assert done.output_paths[0].read_text() == "answer=42\n"

        failed = jobs["exit-three"]
        # The client shows stdout for done jobs only; stderr for failed ones too.
        assert review_text(failed, "stdout.txt") == "about to fail\n"
        assert str(failed.stderr) == "something went wrong\n"
        assert failed.output_paths == []

        timed_out = jobs["sleeper"]
        assert review_text(timed_out, "stdout.txt") == "going to sleep\n" + TIMEOUT_MARKER
        assert str(timed_out.stderr) == TIMEOUT_MARKER

        # The submitter's client reads the same results from the owner's datasite.
        seen_by_ds = jobs_of(root, DS)
        assert {name: job.status for name, job in seen_by_ds.items()} == {
            name: job.status for name, job in jobs.items()}
        assert str(seen_by_ds["write-output"].stdout) == "writing the result\n"

        # The outputs are hidden from the submitter until the owner shares
        # them; the job's state stays readable (syft_perms' own evaluation
        # of the permission files).
        permissions = SyftPermContext(datasite=root / DO)
        for name in scripts:
            review = job_dir(root, "review", name).relative_to(root / DO)
            assert permissions.open(f"{review}/state.yaml").has_read_access(DS), name
            assert not permissions.open(f"{review}/outputs/").has_read_access(DS), name
            assert not permissions.open(f"{review}/outputs/result.txt").has_read_access(DS), name

        # The daemon ran the jobs from snapshots: the inbox is as submitted.
        assert snapshot(root / DO / "app_data" / "job" / "inbox") == inbox_before


# ----------------------------------------------------------------------------
# b. Our review tree against the one syft-job's runner writes
# ----------------------------------------------------------------------------

# Jobs whose results depend on nothing but the job (no environment, paths or
# times printed: syft-job passes the runner's whole environment through and
# runs in the inbox folder, we do neither).
COMPARED_JOBS = {
    "cmp-output": """#!/bin/bash
echo "result follows"
echo "a warning" >&2
mkdir -p code/outputs/nested
printf 'answer=42\\n' > code/outputs/result.txt
printf 'deep\\n' > code/outputs/nested/deep.txt
mkdir -p outputs
printf 'beside code\\n' > outputs/direct.txt
""",
    "cmp-fail-with-output": """#!/bin/bash
mkdir -p code/outputs
printf 'partial\\n' > code/outputs/partial.txt
echo "giving up" >&2
exit 1
""",
    "cmp-exit-three": EXITS_THREE,
    "cmp-timeout": SLEEPS,
    "cmp-no-newline": """#!/bin/bash
printf 'no trailing newline'
printf 'nor here' >&2
""",
    "cmp-silent": "true\n",
}
COMPARED_OLD_JOBS = {
    "cmp-old": """#!/bin/bash
echo "old protocol"
mkdir -p code/outputs
printf 'v0\\n' > code/outputs/v0.txt
""",
}

# Differences between the two review trees that are ours being stricter,
# by path relative to review/: (which side has it, why).
ALLOWED_DIFFERENCES = {
    f"{DS}/v1/cmp-output/outputs/direct.txt": (
        "ours only",
        "syft-job collects code/outputs/ only: what a bash job writes to outputs/ "
        "relative to its working folder (the inbox job folder) stays in the "
        "submitter-writable inbox, written there by the owner's runner, and never "
        "reaches review/. We never write the inbox: one outputs folder is mounted "
        "at both outputs/ and code/outputs/ and collected into review/ "
        "(SYFTBOX-PROTOCOL.md, Running a job).",
    ),
}

COMPLETED_AT = re.compile(r"^completed_at: '(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z)'$", re.M)


def normalized(relative: str, content):
    """state.yaml's completed_at is the one value that differs by nature
    (received_at and approved_at were written before the copy)."""
    if content is None or not relative.endswith("/state.yaml"):
        return content
    text = content.decode()
    assert COMPLETED_AT.search(text), f"{relative}: no completed_at timestamp:\n{text}"
    return COMPLETED_AT.sub("completed_at: <time>", text).encode()


def describe(content) -> str:
    if content is None:
        return "<folder>"
    return content.decode(errors="replace") if isinstance(content, bytes) else repr(content)


@pytest.mark.parametrize("set_up,shared", [(True, False), (False, False), (True, True)],
                         ids=["submitter-set-up", "no-permission-files", "shared-with-submitter"])
def test_review_tree_matches_syft_job_runner(tmp_path, set_up, shared):
    """With the submitter set up, the runner's rules go into review/DS/
    syft.pub.yaml; without (no permission file above the review folder),
    each job's outputs/ gets its own syft.pub.yaml. Shared: syft-job's
    runner with share_outputs_with_submitter and share_logs_with_submitter,
    the daemon with --share-outputs --share-logs: the same rules."""
    if set_up:
        ours = make_syftbox(tmp_path / "ours")
    else:
        ours = tmp_path / "ours"
        ours.mkdir()
        client(ours, DO)
        client(ours, DS)
    for name, script in COMPARED_JOBS.items():
        client(ours, DS).submit_bash_job(DO, script, job_name=name)
    for name, script in COMPARED_OLD_JOBS.items():
        old_client(ours, DS).submit_bash_job(DO, script, job_name=name)
    jobs = jobs_of(ours)  # the owner's client receives them (scan_inbox)
    assert {job.status for job in jobs.values()} == {"pending"}
    # Approved in the order syft-job's runner takes them (protocol 0 then 1,
    # each by name), so that the rules it appends to review/DS/syft.pub.yaml
    # come in the same order as ours (the daemon runs one at a time here and
    # takes approved jobs by approval time).
    for name in sorted(COMPARED_OLD_JOBS) + sorted(COMPARED_JOBS):
        jobs[name].approve()

    theirs = tmp_path / "theirs"
    shutil.copytree(ours, theirs, symlinks=True)

    runner = subprocess.run(
        [sys.executable, "-c",
         "import sys; from syft_job import create_runner; "
         "create_runner(sys.argv[1], sys.argv[2]).process_approved_jobs("
         "share_outputs_with_submitter=sys.argv[3] == '1', share_logs_with_submitter=sys.argv[3] == '1')",
         str(theirs), DO, "1" if shared else "0"],
        env={**os.environ, "SYFT_DEFAULT_JOB_TIMEOUT_SECONDS": "2"},
        cwd=tmp_path, capture_output=True, text=True, timeout=WAIT_SECONDS)
    assert runner.returncode == 0, runner.stdout + runner.stderr

    sharing = ["--share-outputs", "--share-logs"] if shared else []
    with Daemon(ours, tmp_path / "state", tmp_path / "daemon.log", "--timeout", "2",
                "--concurrency", "1", *sharing) as daemon:
        wait_for(finished(ours, COMPARED_JOBS), "the daemon to run the jobs", daemon)
        wait_for(finished(ours, COMPARED_OLD_JOBS, "0"), "the daemon to run the old jobs", daemon)

    # Both trees through the client first: the same statuses.
    assert {n: j.status for n, j in jobs_of(ours).items()} == {n: j.status for n, j in jobs_of(theirs).items()}

    review = Path(DO) / "app_data" / "job" / "review"
    mine = {path: normalized(path, content) for path, content in snapshot(ours / review).items()}
    reference = {path: normalized(path, content) for path, content in snapshot(theirs / review).items()}
    if set_up:
        assert f"{DS}/syft.pub.yaml" in reference
        if shared:  # the comparison below has something to compare
            assert f"v1/cmp-output/stdout.txt" in reference[f"{DS}/syft.pub.yaml"].decode()
    else:
        assert f"{DS}/v1/cmp-output/outputs/syft.pub.yaml" in reference

    problems = []
    for path in sorted(set(mine) | set(reference)):
        if path in mine and path in reference:
            if mine[path] == reference[path]:
                continue
            side = "different"
            detail = "".join(difflib.unified_diff(
                describe(reference[path]).splitlines(keepends=True), describe(mine[path]).splitlines(keepends=True),
                "syft-job", "ours"))
        else:
            side = "ours only" if path in mine else "syft-job only"
            detail = describe(mine.get(path, reference.get(path)))
        allowed = ALLOWED_DIFFERENCES.get(path)
        if allowed and allowed[0] == side:
            continue
        problems.append(f"{path}: {side}\n{detail}")
    # An allowed difference that no longer happens is stale: say so.
    for path, (side, _) in ALLOWED_DIFFERENCES.items():
        if side == "ours only" and not (path in mine and path not in reference):
            problems.append(f"{path}: listed as '{side}' but is not")
    assert not problems, "review trees differ:\n\n" + "\n\n".join(problems) + f"\n\ndaemon log:\n{daemon.log()}"


def test_a_job_cannot_share_its_own_outputs(tmp_path):
    """A permission file the job writes into its outputs is not collected
    (syft-job's runner copies it, and the outputs leak before review)."""
    root = make_syftbox(tmp_path / "SyftBox")
    client(root, DS).submit_bash_job(DO, """#!/bin/bash
echo secret > outputs/secret.txt
printf 'rules:\\n- pattern: "**"\\n  access:\\n    read: ["*"]\\n' > outputs/syft.pub.yaml
""", job_name="self-sharing")
    with Daemon(root, tmp_path / "state", tmp_path / "daemon.log", "--timeout", "20") as daemon:
        wait_for(received(root, ["self-sharing"]), "the daemon to receive the job", daemon)
        jobs_of(root)["self-sharing"].approve()
        wait_for(finished(root, ["self-sharing"]), "the job to finish", daemon)
    assert jobs_of(root)["self-sharing"].status == "done"
    outputs = job_dir(root, "review", "self-sharing").relative_to(root / DO) / "outputs"
    assert (root / DO / outputs / "secret.txt").exists()
    assert not (root / DO / outputs / "syft.pub.yaml").exists()
    assert not SyftPermContext(datasite=root / DO).open(f"{outputs}/secret.txt").has_read_access(DS)


# ----------------------------------------------------------------------------
# c. A protocol-0 submission
# ----------------------------------------------------------------------------

def test_protocol_zero_job_runs_and_lands_in_its_review_folder(tmp_path):
    root = make_syftbox(tmp_path / "SyftBox")
    old_client(root, DS).submit_bash_job(DO, """#!/bin/bash
echo "old protocol"
mkdir -p outputs
printf 'v0\\n' > outputs/v0.txt
""", job_name="old-job")
    inbox = job_dir(root, "inbox", "old-job", "0")
    config = yaml.safe_load((inbox / "config.yaml").read_text())
    assert "canonical_name" not in config and "version" not in config
    assert not (root / DO / "app_data" / "job" / "inbox" / DS / "v1").exists()

    with Daemon(root, tmp_path / "state", tmp_path / "daemon.log", "--timeout", "20") as daemon:
        wait_for(received(root, ["old-job"], "0"), "the daemon to receive the job", daemon)
        state = state_yaml(root, "old-job", "0")
        assert state["status"] == "pending"
        assert "canonical_name" not in state and "version" not in state

        job = jobs_of(root)["old-job"]
        assert job.status == "pending"
        job.approve()
        wait_for(finished(root, ["old-job"], "0"), "the job to finish", daemon)

    review = job_dir(root, "review", "old-job", "0")
    assert review == root / DO / "app_data" / "job" / "review" / DS / "old-job"
    assert (review / "stdout.txt").read_text() == "old protocol\n"
    assert (review / "stderr.txt").read_text() == ""
    assert (review / "returncode.txt").read_text() == "0"
    assert (review / "outputs" / "v0.txt").read_text() == "v0\n"
    state = state_yaml(root, "old-job", "0")
    assert state["status"] == "done" and state["return_code"] == 0
    assert "canonical_name" not in state and "version" not in state
    assert not (root / DO / "app_data" / "job" / "review" / DS / "v1").exists()
    # The owner-only rule for its outputs, in the protocol-0 layout.
    rules = yaml.safe_load((root / DO / "app_data" / "job" / "review" / DS / "syft.pub.yaml").read_text())["rules"]
    assert {"access": {"admin": [], "read": [DO], "write": []}, "pattern": "old-job/outputs/**"} in rules

    job = jobs_of(root)["old-job"]
    assert job.status == "done"
    assert str(job.stdout) == "old protocol\n"
    assert [path.name for path in job.output_paths] == ["v0.txt"]


# ----------------------------------------------------------------------------
# d. A python job without a network
# ----------------------------------------------------------------------------

# What uv prints when it cannot reach the index or fetch an interpreter.
NO_NETWORK = re.compile(
    r"Failed to (download|fetch)|dns error|Network is unreachable|Could not connect|tcp connect error"
    r"|failed to lookup address|No interpreter found|No download found|error sending request",
    re.I)


def test_python_job_without_network_fails_clearly(tmp_path):
    root = make_syftbox(tmp_path / "SyftBox")
    source = tmp_path / "main.py"
    source.write_text("print('hello from python')\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "No syft install source advertised by DO"
        client(root, DS).submit_python_job(DO, str(source), job_name="py-job", dependencies=["numpy"])
    assert "uv pip install" in (job_dir(root, "inbox", "py-job") / "run.sh").read_text()

    # A timeout well past what a failing install takes: the job must end on
    # its own, not at the limit. --net is left at its default, none.
    started = time.monotonic()
    with Daemon(root, tmp_path / "state", tmp_path / "daemon.log", "--timeout", "60") as daemon:
        wait_for(received(root, ["py-job"]), "the daemon to receive the job", daemon)
        jobs_of(root)["py-job"].approve()
        wait_for(finished(root, ["py-job"]), "the python job to end", daemon, seconds=50)
    elapsed = time.monotonic() - started

    job = jobs_of(root)["py-job"]
    stderr = str(job.stderr)
    print(f"py-job ended after {elapsed:.1f} s, return code {job._state.return_code}, stderr:\n{stderr}")
    assert job.status == "failed"
    assert job._state.return_code not in (0, -1, None)
    assert TIMEOUT_MARKER not in stderr
    # uv is there (scripts/install-deps.sh): it ran, and failed for want of the network.
    assert shutil.which("uv", path="/usr/local/bin:/usr/bin:/bin"), "uv is not installed on the host"
    assert "uv: command not found" not in stderr and "uv: not found" not in stderr, stderr
    assert NO_NETWORK.search(stderr), stderr
    # And the runner says so, in stderr.txt and in the state the client shows.
    assert "ran without a network" in stderr, stderr
    assert "without a network" in (job.review_reason or ""), job.review_reason


# ----------------------------------------------------------------------------
# e. The owner's other moves: rerun(), accept_by_depositing_result()
# ----------------------------------------------------------------------------

RECORDS_ITS_RUN = """#!/bin/bash
echo "run $SYFT_JOB_ID"
mkdir -p outputs
echo "$SYFT_JOB_ID" > outputs/run.txt
"""


def test_rerun_runs_the_job_again(tmp_path):
    """The client's rerun() (done -> approved, logs and outputs removed):
    the daemon runs it again, as a new run, and the results are the new run's."""
    root = make_syftbox(tmp_path / "SyftBox")
    client(root, DS).submit_bash_job(DO, RECORDS_ITS_RUN, job_name="again")
    with Daemon(root, tmp_path / "state", tmp_path / "daemon.log", "--timeout", "20") as daemon:
        wait_for(received(root, ["again"]), "the daemon to receive the job", daemon)
        jobs_of(root)["again"].approve()
        wait_for(finished(root, ["again"]), "the first run", daemon)
        first = jobs_of(root)["again"]
        assert first.status == "done"
        first_run = first.output_paths[0].read_text().strip()
        assert str(first.stdout) == f"run {first_run}\n"
        first_completed = first._state.completed_at

        first.rerun()
        review = job_dir(root, "review", "again")
        wait_for(lambda: state_yaml(root, "again")["status"] == "done" and (review / "stdout.txt").exists()
                 and state_yaml(root, "again")["completed_at"] is not None,
                 "the second run", daemon)
    second = jobs_of(root)["again"]
    second_run = second.output_paths[0].read_text().strip()
    assert second_run != first_run, "the outputs are still the first run's"
    assert str(second.stdout) == f"run {second_run}\n"
    assert second._state.completed_at != first_completed
    assert (review / "returncode.txt").read_text() == "0"


def test_a_deposited_result_is_left_alone(tmp_path):
    """accept_by_depositing_result(): on a pending job the daemon never runs
    it; on a job the daemon is running (the owner's client still thought it
    approved), the sandbox is stopped and the deposited outputs stay as they
    are, with no log of the stopped run written over them."""
    root = make_syftbox(tmp_path / "SyftBox")
    ds = client(root, DS)
    ds.submit_bash_job(DO, "#!/bin/bash\necho ran > outputs/ran.txt\n", job_name="deposit-pending")
    ds.submit_bash_job(DO, "#!/bin/bash\necho started\nmkdir -p outputs\necho partial > outputs/partial.txt\nsleep 30\n",
                       job_name="deposit-running")
    result = tmp_path / "result.csv"
    result.write_text("owner,result\n")
    with Daemon(root, tmp_path / "state", tmp_path / "daemon.log", "--timeout", "60") as daemon:
        wait_for(received(root, ["deposit-pending", "deposit-running"]), "the daemon to receive the jobs", daemon)
        jobs = jobs_of(root)
        jobs["deposit-pending"].accept_by_depositing_result(str(result))
        running = jobs["deposit-running"]
        running.approve()  # the client's object now says approved
        wait_for(lambda: state_yaml(root, "deposit-running")["status"] == "running", "the job to start", daemon)
        time.sleep(0.5)  # it has written its partial output by now
        running.accept_by_depositing_result(str(result))
        wait_for(lambda: "cancelled by the owner" in daemon.log() or "status=done" in daemon.log(),
                 "the daemon to see the deposit", daemon)
        time.sleep(1.0)  # anything the daemon would still write lands meanwhile
        for name in ("deposit-pending", "deposit-running"):
            state = state_yaml(root, name)
            assert state["status"] == "done" and state["return_code"] == 0, (name, state)
            review = job_dir(root, "review", name)
            assert sorted(p.name for p in (review / "outputs").iterdir() if p.name != "syft.pub.yaml") == ["result.csv"], name
            assert (review / "outputs" / "result.csv").read_text() == "owner,result\n"
            assert not (review / "stdout.txt").exists(), f"{name}: a log was written over the deposited result"
            assert not (review / "returncode.txt").exists(), name
            assert not [p for p in review.iterdir() if ".partial-" in p.name], name
        # The pending one never ran at all.
        assert "deposit-pending" not in "".join(l for l in daemon.log().splitlines() if "running" in l)
