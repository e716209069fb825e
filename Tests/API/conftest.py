"""Fixtures of the HTTP API suite: a real `syft-sandbox-run daemon --http`
on a temporary SyftBox folder, listening on a free loopback port.

`api` (module scope) yields an `Api`: `base` (http://127.0.0.1:PORT),
`token`, `syftbox`, `state_dir`, `owner`, helpers to place SyftBox jobs in
the owner's inbox and to wait for states, and a `requests.Session` that
sends the token. The daemon is stopped with SIGTERM at the end and must
exit 0; its log is printed when a test fails.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests
import yaml

REPO = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("SYFT_SANDBOX_RUN") or REPO / ".build/release/syft-sandbox-run")
OWNER = "do@example.com"
SUBMITTER = "ds@example.com"
WAIT_SECONDS = 30


class Api:
    def __init__(self, root: Path, *options: str):
        self.root = root
        self.syftbox = root / "syftbox"
        self.state_dir = root / "state"
        self.log_path = root / "daemon.log"
        self.owner = OWNER
        self.syftbox.mkdir(parents=True)
        self.inbox = self.syftbox / OWNER / "app_data/job/inbox"
        self.review = self.syftbox / OWNER / "app_data/job/review"
        self.args = [str(BINARY), "daemon", "--syftbox", str(self.syftbox), "--email", OWNER,
                     "--state-dir", str(self.state_dir), "--http", "127.0.0.1:0", "--timeout", "60", *options]
        self.process = None
        self.base = None
        self.token = None

    def start(self):
        if not (BINARY.is_file() and os.access(BINARY, os.X_OK)):
            pytest.fail(f"no syft-sandbox-run binary at {BINARY} (set SYFT_SANDBOX_RUN)")
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            # Whatever it binds (127.0.0.1 or 0.0.0.0), the tests reach it on loopback.
            match = re.search(r"HTTP API listening address=\S+:(\d+)", self.log())
            if match:
                self.base = f"http://127.0.0.1:{match.group(1)}"
                self.token = (self.state_dir / "api-token").read_text().strip()
                return self
            if self.process.poll() is not None:
                pytest.fail(f"the daemon exited ({self.process.returncode}):\n{self.log()}")
            time.sleep(0.05)
        pytest.fail(f"the daemon did not start listening:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                pytest.fail(f"the daemon did not stop on SIGTERM:\n{self.log()}")
        return self.process.returncode if self.process else 0

    # -- HTTP ---------------------------------------------------------------

    def url(self, path: str) -> str:
        return self.base + path

    def session(self, token: bool = True) -> requests.Session:
        session = requests.Session()
        if token:
            session.headers["Authorization"] = f"Bearer {self.token}"
        return session

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url(path), timeout=WAIT_SECONDS, **kwargs)

    def post(self, path: str, token: bool = True, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {self.token}"
        return requests.post(self.url(path), headers=headers, timeout=WAIT_SECONDS, **kwargs)

    def submit_direct(self, files: dict, spec: dict, inputs: dict | None = None) -> str:
        """POST /jobs with code files {name: text}; returns the job id."""
        parts = [("spec", (None, __import__("json").dumps(spec)))]
        parts += [("code_files", (name, text)) for name, text in files.items()]
        parts += [("input_files", (name, text)) for name, text in (inputs or {}).items()]
        response = self.post("/jobs", files=parts)
        assert response.status_code == 201, response.text
        return response.json()["job_id"]

    def wait_job(self, job_id: str, statuses: set[str], timeout: float = WAIT_SECONDS) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(f"/jobs/{job_id}").json()["job"]
            if job["status"] in statuses:
                return job
            time.sleep(0.05)
        pytest.fail(f"job {job_id} never reached {statuses}; last: {job['status']}\n{self.log()}")

    # -- SyftBox ------------------------------------------------------------

    def place_syftbox_job(self, name: str, script: str, submitter: str = SUBMITTER,
                          files: dict | None = None, without: tuple = ()) -> Path:
        """A protocol-1 submission in the owner's inbox, as the client writes
        it; made beside the inbox and renamed in whole, as a sync engine lands
        a folder (written in place, a loaded machine could pause this process
        mid-file past the daemon's settle time, and the daemon would rightly
        refuse the job as changed after receipt). `without`: config.yaml keys
        left out."""
        final = self.inbox / submitter / "v1" / name
        final.parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=self.root))
        (folder / "code").mkdir(parents=True)
        for file_name, text in (files or {"script.sh": script}).items():
            (folder / "code" / file_name).write_text(text)
        (folder / "run.sh").write_text(script)
        config = {
            "canonical_name": "JobSubmissionMetadata", "version": "1", "name": name, "type": "bash",
            "submitted_at": "2026-11-30T10:00:00Z", "entrypoint": None, "dependencies": [],
            "files": sorted((files or {"script.sh": script}).keys()), "is_folder_submission": False,
            "code_path": None, "job_type": "local", "datasets": None, "headers": {}}
        (folder / "config.yaml").write_text(yaml.safe_dump({k: v for k, v in config.items() if k not in without}))
        folder.rename(final)
        return final

    def state(self, name: str, submitter: str = SUBMITTER) -> dict | None:
        path = self.review / submitter / "v1" / name / "state.yaml"
        return yaml.safe_load(path.read_text()) if path.exists() else None

    def wait_state(self, name: str, statuses: set[str], submitter: str = SUBMITTER,
                   timeout: float = WAIT_SECONDS) -> dict:
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.state(name, submitter)
            if state and state.get("status") in statuses:
                return state
            time.sleep(0.05)
        pytest.fail(f"{name} never reached {statuses}; last: {state}\n{self.log()}")

    def job_id_of(self, name: str, submitter: str = SUBMITTER) -> str:
        jobs = self.get("/api/jobs?source=syftbox").json()["jobs"]
        for job in jobs:
            if job["name"] == name and job["submitter"] == submitter:
                return job["id"]
        pytest.fail(f"{name} is not in /api/jobs: {jobs}")


@pytest.fixture(scope="module")
def api(request):
    root = Path(tempfile.mkdtemp(prefix="syft-api-"))
    daemon = Api(root, *getattr(request.module, "DAEMON_OPTIONS", ())).start()
    failed_before = request.session.testsfailed
    try:
        yield daemon
    finally:
        status = daemon.stop()
        if request.session.testsfailed > failed_before:
            print(f"\n--- daemon log ({daemon.log_path}) ---\n{daemon.log()}")
        shutil.rmtree(root, ignore_errors=True)
        assert status == 0, f"the daemon exited {status} on SIGTERM"
