"""The OpenAPI document (`GET /openapi.json`) kept true against the real daemon.

- The document is a valid OpenAPI 3.1 document, and its operations are
  exactly the routes the Swift router registers (Sources/Runner/HTTP).
- Every operation is called for real: its success cases and its documented
  errors (401 without or with a wrong token, 403 for a foreign Host header,
  400 bad query values and artifact paths, 404 unknown ids, 409 wrong
  states, 413 uploads over --max-upload, 415 non-multipart, 422 bad specs).
  Each answer is checked against the document: the status code is one the
  operation lists, the content type is one it documents for that status,
  the body validates against the schema (JSON Schema 2020-12; the events of
  the SSE stream against LogEvent and EndEvent), required headers are there.
- Every (operation, status) the document lists must have been seen by the
  end of the module (a few that cannot be provoked are named in
  UNPROVOKED), so a route or a status documented but not served fails, and
  so does one served but not documented.

The document is fetched from the daemon; with OPENAPI_FROM_FILE=1 it is read
from Sources/Runner/HTTP/Assets/openapi.json instead (OPENAPI_FROM_FILE=PATH:
from that file), to work on it without rebuilding the binary, which embeds it.
"""

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from requests.structures import CaseInsensitiveDict

from conftest import Api, REPO, SUBMITTER, WAIT_SECONDS

DOCUMENT_FILE = REPO / "Sources/Runner/HTTP/Assets/openapi.json"
ROUTER_SOURCES = REPO / "Sources/Runner/HTTP"
DOC_URI = "urn:syft-sandbox-run:openapi"
MAX_UPLOAD = 4096
# A small cap, so that 413 is cheap to provoke; every other upload here is smaller.
DAEMON_OPTIONS = ("--max-upload", "4K", "--concurrency", "4")
# Documented, but not provoked here: the daemon answers 503 only while it stops.
UNPROVOKED = {("post", "/jobs", "503"), ("post", "/api/jobs/{id}/restart", "503")}
UNKNOWN_JOB = "0123456789abcdef"
UNKNOWN_RUN = "01234567-89ab-cdef-0123-456789abcdef"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


# -- the contract -----------------------------------------------------------


class RawResponse:
    """What http.client answered, shaped like a requests.Response (for
    requests whose path must reach the server byte for byte)."""

    def __init__(self, response: http.client.HTTPResponse):
        self.status_code = response.status
        self.headers = CaseInsensitiveDict(response.getheaders())
        self.content = response.read()
        self.text = self.content.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.content)


class Contract:
    """The document, and the (method, path template, status) seen."""

    def __init__(self, document: dict):
        self.doc = document
        self.registry = Registry().with_resource(DOC_URI, DRAFT202012.create_resource(document))
        self.seen: set[tuple[str, str, str]] = set()

    def operations(self):
        for template, item in self.doc["paths"].items():
            for method in METHODS:
                if method in item:
                    yield method, template, item[method]

    def resolve(self, node: dict, pointer: str) -> tuple[dict, str]:
        while "$ref" in node:
            target = node["$ref"]
            assert target.startswith("#/"), f"only local references are expected: {target}"
            pointer = target[1:]
            node = self.doc
            for part in pointer.lstrip("/").split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
        return node, pointer

    def validate(self, instance, pointer: str, what: str):
        validator = Draft202012Validator({"$ref": f"{DOC_URI}#{pointer}"}, registry=self.registry)
        errors = sorted(validator.iter_errors(instance), key=lambda error: list(error.absolute_path))
        if errors:
            details = "\n".join(f"  at /{'/'.join(map(str, error.absolute_path))}: {error.message[:500]}"
                                for error in map(deepest, errors[:10]))
            pytest.fail(f"{what} does not match {pointer}:\n{details}\nbody: {json.dumps(instance)[:2000]}")

    def schema_pointer(self, name: str) -> str:
        assert name in self.doc["components"]["schemas"], f"no schema {name} in the document"
        return f"/components/schemas/{name}"

    def check(self, response, method: str, template: str, status: int | None = None, body: bool = True):
        """Checks an answer of operation (method, template) against the document."""
        what = f"{method.upper()} {template} ({response.status_code})"
        item = self.doc["paths"].get(template)
        assert item is not None and method in item, f"{method.upper()} {template} is not in the document"
        documented = item[method]["responses"]
        code = str(response.status_code)
        text = response.text[:500] if body else ""
        assert code in documented, f"{what}: the document does not list status {code} for it: {text}"
        if status is not None:
            assert response.status_code == status, f"{what}: expected {status}: {text}"
        escaped = template.replace("~", "~0").replace("/", "~1")
        spec, pointer = self.resolve(documented[code], f"/paths/{escaped}/{method}/responses/{code}")
        for name, header in spec.get("headers", {}).items():
            header, header_pointer = self.resolve(header, f"{pointer}/headers/{name}")
            value = response.headers.get(name)
            if header.get("required"):
                assert value is not None, f"{what}: the {name} header is missing"
            if value is not None and "schema" in header:
                self.validate(value, f"{header_pointer}/schema", f"{what}: header {name}")
        content = spec.get("content", {})
        content_type = response.headers.get("Content-Type", "")
        media = content_type.split(";")[0].strip().lower()
        if content:
            assert media in content, f"{what}: Content-Type {content_type!r} is not one of {sorted(content)}"
            schema_pointer = f"{pointer}/content/{media.replace('/', '~1')}/schema"
            schema = content[media].get("schema", {})
            if body and media == "application/json" and schema.get("type") != "string":
                try:
                    instance = response.json()
                except ValueError:
                    pytest.fail(f"{what}: the body is not JSON: {response.text[:500]}")
                self.validate(instance, schema_pointer, what)
            elif body and media == "text/event-stream":
                self.check_events(parse_events(response.text), what, content[media])
            elif body and media.startswith("text/"):
                response.content.decode("utf-8")  # text, as its charset says
        else:
            assert not response.content, f"{what}: a body the document does not describe"
        self.seen.add((method, template, code))
        return response

    def check_events(self, events: list[dict], what: str, media: dict | None = None):
        """The events of the log stream: LogEvent data, then one `end` with EndEvent data."""
        media = media or self.doc["paths"]["/jobs/{id}/logs/stream"]["get"]["responses"]["200"]["content"][
            "text/event-stream"]
        kinds = media["x-sse-events"]
        assert events, f"{what}: no event"
        for index, event in enumerate(events):
            kind = event.get("event", "message")
            assert kind in kinds, f"{what}: an event of kind {kind!r}, which the document does not describe"
            try:
                data = json.loads(event["data"])
            except (KeyError, ValueError):
                pytest.fail(f"{what}: event {index} has no JSON data: {event}")
            self.validate(data, kinds[kind][1:], f"{what}: event {index} ({kind})")
            if kind == "message":
                assert re.fullmatch(r"[0-9]+", event.get("id", "")), f"{what}: event {index} has no numeric id"
        assert [event.get("event") for event in events].count("end") == 1, f"{what}: not exactly one end event"
        assert events[-1].get("event") == "end", f"{what}: the end event is not the last"


def deepest(error):
    """Of an anyOf/oneOf error, the branch's error that got furthest into the instance."""
    while error.context:
        error = max(error.context, key=lambda child: len(child.absolute_path))
    return error


def parse_events(text: str) -> list[dict]:
    """Server-Sent Events: fields of each blank-line-separated event (comments dropped)."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        event: dict = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            event[name] = event[name] + "\n" + value if name == "data" and name in event else value
        if event:
            events.append(event)
    return events


# -- fixtures ---------------------------------------------------------------


@pytest.fixture(scope="module")
def document(api) -> dict:
    source = os.environ.get("OPENAPI_FROM_FILE")
    if source:
        return json.loads((DOCUMENT_FILE if source == "1" else Path(source)).read_text())
    response = requests.get(api.url("/openapi.json"), timeout=WAIT_SECONDS)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def contract(document) -> Contract:
    return Contract(document)


class Client:
    """Calls operations of the document and checks each answer."""

    def __init__(self, api: Api, contract: Contract):
        self.api = api
        self.contract = contract

    def call(self, method: str, template: str, status: int | None = None, *, values: dict | None = None,
             path: str | None = None, token: bool | str | None = None, headers: dict | None = None,
             body: bool = True, **kwargs) -> requests.Response:
        """`template` filled with `values` (each quoted), or `path` as given."""
        if path is None:
            path = template
            for name, value in (values or {}).items():
                path = path.replace("{" + name + "}", quote(str(value), safe="/" if name == "path" else ""))
        headers = dict(headers or {})
        if token is None:
            token = method != "get"
        if token is True:
            headers["Authorization"] = f"Bearer {self.api.token}"
        elif token:
            headers["Authorization"] = f"Bearer {token}"
        response = requests.request(method.upper(), self.api.url(path), headers=headers, timeout=WAIT_SECONDS,
                                    stream=not body, **kwargs)
        return self.contract.check(response, method, template, status, body=body)

    def raw(self, method: str, template: str, path: str, status: int | None = None, token: bool = False):
        """A request whose path reaches the server exactly as written (no client normalisation)."""
        host, port = self.api.base.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=WAIT_SECONDS)
        headers = {"Authorization": f"Bearer {self.api.token}"} if token else {}
        connection.request(method.upper(), path, headers=headers)
        try:
            return self.contract.check(RawResponse(connection.getresponse()), method, template, status)
        finally:
            connection.close()

    def job(self, job_id: str) -> dict:
        return self.call("get", "/jobs/{id}", 200, values={"id": job_id}).json()["job"]

    def wait_job(self, job_id: str, statuses: set[str], timeout: float = WAIT_SECONDS) -> dict:
        deadline = time.monotonic() + timeout
        job = None
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job["status"] in statuses:
                return job
            time.sleep(0.1)
        pytest.fail(f"job {job_id} never reached {statuses}; last: {job and job['status']}\n{self.api.log()}")

    def submit(self, spec: dict, files: dict, inputs: dict | None = None, status: int = 201, **kwargs):
        parts = [("spec", (None, json.dumps(spec), "application/json"))]
        parts += [("code_files", (name, text, "application/octet-stream")) for name, text in files.items()]
        parts += [("input_files", (name, text, "application/octet-stream")) for name, text in (inputs or {}).items()]
        return self.call("post", "/jobs", status, files=parts, **kwargs)


@pytest.fixture(scope="module")
def client(api, contract) -> Client:
    return Client(api, contract)


# A job that writes to both streams, reads its input and arguments, and
# leaves outputs in a subfolder and at the top.
API_JOB = r'''import json, os, sys
print("hello from the api job", flush=True)
print("a warning", file=sys.stderr, flush=True)
out = os.environ["JOB_OUTPUT_DIR"]
os.makedirs(os.path.join(out, "sub", "deep"), exist_ok=True)
with open(os.path.join(out, "sub", "deep", "table.csv"), "w") as f:
    f.write("a,b\n1,2\n")
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump({"args": sys.argv[1:], "input": open(os.path.join(os.environ["JOB_INPUT_DIR"], "in.txt")).read(),
               "greeting": os.environ.get("GREETING"), "helper": __import__("helpers.util").util.VALUE}, f)
with open(os.path.join(out, "notes file.txt"), "w") as f:
    f.write("notes\n")
'''


@pytest.fixture(scope="module")
def api_job(client) -> dict:
    """A finished API job: its id, its run's id, its job view."""
    spec = {"entry": "main.py", "args": ["one", "two words"], "timeout_sec": 30, "net_policy": "none",
            "env": {"GREETING": "hi"}, "name": "openapi api job"}
    response = client.submit(spec, {"main.py": API_JOB, "helpers/__init__.py": "", "helpers/util.py": "VALUE = 42\n"},
                             {"in.txt": "forty-two"})
    body = response.json()
    job_id = body["job_id"]
    assert body["status"] == "queued"
    assert response.headers["Location"] == f"/jobs/{job_id}"
    job = client.wait_job(job_id, {"succeeded", "failed", "timed_out", "killed", "setup_failed", "refused"})
    assert job["status"] == "succeeded", job
    assert job["runs"], job
    return {"id": job_id, "run": job["runs"][0]["id"], "job": job}


def wait_runs(client: Client, job_id: str, count: int) -> dict:
    """The job once its history has `count` runs."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        job = client.job(job_id)
        if len(job["runs"]) >= count:
            return job
        assert time.monotonic() < deadline, f"job {job_id} has {len(job['runs'])} runs, not {count}"
        time.sleep(0.1)


def place_and_wait(api: Api, name: str, script: str, statuses=frozenset({"pending"})) -> str:
    api.place_syftbox_job(name, script)
    api.wait_state(name, set(statuses))
    return api.job_id_of(name)


# -- the document ---------------------------------------------------------


def test_openapi_document_is_valid_openapi_3_1(document):
    assert document["openapi"] == "3.1.0"
    validate_openapi(document)
    for name, schema in document["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
    described = document["info"]["description"]
    for word in ("run id", "job id", "UUID", "Bearer", "loopback"):
        assert word.lower() in described.lower(), f"the top-level description does not explain {word}"


def test_openapi_document_is_served(client, api):
    response = client.call("get", "/openapi.json", 200)
    if not os.environ.get("OPENAPI_FROM_FILE"):
        assert response.json() == json.loads(DOCUMENT_FILE.read_text()), (
            "the daemon serves another openapi.json than the working tree's (rebuild the binary)")
    also = client.call("get", "/assets/{name}", 200, values={"name": "openapi.json"})
    assert also.json() == response.json()


def router_operations() -> set[tuple[str, str]]:
    """(method, template) of every route the Swift router registers."""
    found = set()
    for source in sorted(ROUTER_SOURCES.glob("*.swift")):
        assert not re.search(r"router\.(group|on|addRoutes)\(", source.read_text()), (
            f"{source.name} registers routes in a way router_operations() does not read: teach it")
        for method, route in re.findall(r'router\.(get|post|put|patch|delete|head)\(\s*"([^"]*)"', source.read_text()):
            template = re.sub(r":([A-Za-z_]+)", r"{\1}", route)
            template = template.replace("/**", "/{path}")
            found.add((method, template))
    return found


def test_openapi_document_lists_exactly_the_routes(contract):
    if not ROUTER_SOURCES.is_dir():
        pytest.skip("no Swift sources here")
    registered = router_operations()
    assert registered, "no router.get/post/... found in Sources/Runner/HTTP"
    documented = {(method, template) for method, template, _ in contract.operations()}
    assert not registered - documented, f"routes not in the document: {sorted(registered - documented)}"
    assert not documented - registered, f"documented operations no route serves: {sorted(documented - registered)}"


# -- who may do what (every operation) ------------------------------------


def fill(template: str) -> str:
    return (template.replace("{id}", UNKNOWN_JOB).replace("{name}", "app.js").replace("{path}", "x.txt"))


def test_openapi_every_operation_refuses_a_wrong_token(client, contract):
    for method, template, operation in contract.operations():
        response = client.call(method, template, 401, path=fill(template), token="0" * 64)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        if operation["security"] == [{"bearerAuth": []}]:
            # Writes: no token at all is refused too, before anything else is looked at.
            response = client.call(method, template, 401, path=fill(template), token=False)
            assert "token" in response.json()["error"]
        else:
            assert {} in operation["security"], f"{method} {template}: reads without a token are allowed on loopback"
            assert method == "get"


def test_openapi_every_operation_refuses_a_foreign_host(client, contract):
    for method, template, _ in contract.operations():
        for host in ("evil.example", "evil.example:80", "127.0.0.1.evil.example"):
            response = client.call(method, template, 403, path=fill(template), headers={"Host": host})
            assert "loopback" in response.json()["error"]
    # Loopback names are answered.
    for host in ("localhost", "127.0.0.1", "app.localhost:8080"):
        client.call("get", "/api/version", 200, headers={"Host": host})


# -- status, dashboard ----------------------------------------------------


def test_openapi_status_version_metrics(client, api):
    status = client.call("get", "/api/status", 200).json()
    assert status["owner"] == api.owner and status["config"]["max_upload_bytes"] == MAX_UPLOAD
    assert status["state"] == "running" and status["config"]["http"] == api.base.removeprefix("http://")
    version = client.call("get", "/api/version", 200).json()
    assert version["name"] == "syft-sandbox-run" and version["version"] == status["version"]
    metrics = client.call("get", "/metrics", 200).text
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", metrics, re.MULTILINE))
    assert types == {"syft_jobs_finished_total": "counter", "syft_jobs_received_total": "counter",
                     "syft_job_duration_seconds": "histogram", "syft_jobs_running": "gauge",
                     "syft_jobs_queued": "gauge", "syft_sandbox_setup_failures_total": "counter"}, types
    described = client.contract.doc["paths"]["/metrics"]["get"]["responses"]["200"]["description"]
    assert all(f"`{name}" in described for name in types), "the document does not name every metric"


def test_openapi_dashboard_and_assets(client):
    page = client.call("get", "/", 200)
    assert "<html" in page.text.lower()
    for name, media in (("app.js", "text/javascript"), ("app.css", "text/css"), ("index.html", "text/html")):
        response = client.call("get", "/assets/{name}", 200, values={"name": name})
        assert response.headers["Content-Type"].startswith(media)
    client.call("get", "/assets/{name}", 404, values={"name": "nope.js"})
    for name in ("%2e%2e", "..%2Fpolicies", "app.js%00"):
        client.raw("get", "/assets/{name}", f"/assets/{name}", 404)


# -- POST /jobs and the API job -------------------------------------------


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "openapi-test-boundary") -> bytes:
    body = b""
    for field, filename, data in parts:
        disposition = f'form-data; name="{field}"' + (f'; filename="{filename}"' if filename is not None else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


def lying_upload(api: Api) -> RawResponse:
    """POST /jobs whose Content-Length promises more than is sent before the client stops sending."""
    body = multipart([("spec", None, b'{"entry": "main.py"}'), ("code_files", "main.py", b"print(1)")])
    host, port = api.base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=WAIT_SECONDS)
    connection.putrequest("POST", "/jobs")
    for name, value in (("Authorization", f"Bearer {api.token}"), ("Content-Length", str(len(body) + 500)),
                        ("Content-Type", "multipart/form-data; boundary=openapi-test-boundary")):
        connection.putheader(name, value)
    connection.endheaders(body[:-40])
    connection.sock.shutdown(socket.SHUT_WR)
    try:
        return RawResponse(connection.getresponse())
    finally:
        connection.close()


def test_openapi_submit_job(api_job):
    job = api_job["job"]
    assert job["source"] == "api" and job["name"] == "openapi api job" and job["live"] is False
    assert job["spec"]["args"] == ["one", "two words"] and job["spec"]["timeout_sec"] == 30
    assert job["actions"] == ["restart"] and job["result"]["status"] == "succeeded"
    assert [artifact["path"] for artifact in job["artifacts"]] == ["notes file.txt", "sub/deep/table.csv",
                                                                    "summary.json"]


def test_openapi_submit_errors(client, api):
    code = {"main.py": "print(1)\n"}
    # 401: no token.
    client.submit({"entry": "main.py"}, code, status=401, token=False)
    # 415: not multipart.
    client.call("post", "/jobs", 415, json={"entry": "main.py"})
    client.call("post", "/jobs", 415, data=b"x", headers={"Content-Type": "multipart/form-data"})
    # 413: larger than --max-upload, as Content-Length says and as the body turns out (chunked).
    client.submit({"entry": "main.py"}, {"main.py": "#" * (2 * MAX_UPLOAD)}, status=413)
    chunk = multipart([("spec", None, b'{"entry": "main.py"}'), ("code_files", "main.py", b"#" * 1024)])

    def chunks():
        yield chunk[:200]
        for _ in range(8):
            yield b"#" * 1024

    client.call("post", "/jobs", 413, data=chunks(),
                headers={"Content-Type": "multipart/form-data; boundary=openapi-test-boundary"})
    # 400: unusable bodies and names.
    boundary_type = {"Content-Type": "multipart/form-data; boundary=openapi-test-boundary"}
    bad_bodies = [
        multipart([("spec", None, b"{not json")]),
        multipart([("spec", None, b"{}"), ("extra", None, b"1")]),
        multipart([("spec", None, b"{}"), ("code_files", "../main.py", b"1")]),
        multipart([("spec", None, b"{}"), ("code_files", "/etc/main.py", b"1")]),
        multipart([("spec", None, b"{}"), ("code_files", "-rf.py", b"1")]),
        multipart([("spec", None, b"{}"), ("code_files", "", b"1")]),
        multipart([("spec", None, b"{}"), ("code_files", "main.py", b"1"), ("code_files", "main.py", b"2")]),
        multipart([("spec", None, b"{}"), ("input_files", "a\\\\b.txt", b"1")]),  # a\\b.txt on the wire
        # cut short: no closing boundary
        multipart([("spec", None, b'{"entry": "main.py"}')])[: -len("--openapi-test-boundary--\r\n")],
        b"nothing like multipart",
    ]
    for body in bad_bodies:
        response = client.call("post", "/jobs", 400, data=body, headers=boundary_type)
        assert response.json()["error"]
    # 400: a body shorter than its Content-Length said.
    client.contract.check(lying_upload(api), "post", "/jobs", 400)
    # 422: no spec, or a spec that cannot run.
    client.call("post", "/jobs", 422, data=multipart([("code_files", "main.py", b"print(1)")]), headers=boundary_type)
    for spec in ({"entry": 5}, {"args": "not a list"}, {"entry": "main.txt"}, {"entry": "other.py"},
                 {"entry": "../main.py"}, {"timeout_sec": 0}, {"timeout_sec": 61}, {"net_policy": "internet"},
                 {"net_policy": "host"}, {"env": {"SYFT_X": "1"}}, {"env": {"1BAD": "1"}}, {"env": {"A": 1}},
                 {"mem_limit_mb": 8}, {"pids_limit": 0}, {"runtime": "ruby"}, {"name": "x" * 201},
                 {"name": "a\u0007b"}, {"args": ["a\u0000b"]}):
        response = client.submit(spec, code, status=422)
        assert response.json()["error"]
    # Keys left out take their defaults; unknown keys are ignored.
    client.submit({"unknown_key": True}, code)


def test_openapi_get_job(client, api_job):
    job_id, run_id = api_job["id"], api_job["run"]
    envelope = client.call("get", "/jobs/{id}", 200, values={"id": job_id}).json()
    assert envelope["job"]["id"] == job_id and envelope["log_lines"] >= 2
    # A run id names its job.
    assert client.job(run_id)["id"] == job_id
    for unknown in (UNKNOWN_JOB, "f" * 32, UNKNOWN_RUN, "no-such-job", "..%2F"):
        response = client.call("get", "/jobs/{id}", 404, values={"id": unknown})
        assert response.json()["error"]


def test_openapi_job_logs(client, api_job):
    job_id = api_job["id"]
    both = client.call("get", "/jobs/{id}/logs", 200, values={"id": job_id}).text
    assert "hello from the api job" in both and "a warning" in both
    stdout = client.call("get", "/jobs/{id}/logs", 200, values={"id": job_id}, params={"stream": "stdout"}).text
    stderr = client.call("get", "/jobs/{id}/logs", 200, values={"id": job_id}, params={"stream": "stderr"}).text
    assert stdout == "hello from the api job\n" and stderr == "a warning\n"
    assert client.call("get", "/jobs/{id}/logs", 200, values={"id": api_job["run"]}).text == both
    client.call("get", "/jobs/{id}/logs", 400, values={"id": job_id}, params={"stream": "both"})
    client.call("get", "/jobs/{id}/logs", 404, values={"id": UNKNOWN_JOB})


def test_openapi_log_stream_of_a_finished_job(client, api_job, contract):
    job_id = api_job["id"]
    response = client.call("get", "/jobs/{id}/logs/stream", 200, values={"id": job_id})
    events = parse_events(response.text)
    text = "".join(json.loads(event["data"])["text"] for event in events if "event" not in event)
    assert "hello from the api job" in text and "a warning" in text
    end = json.loads(events[-1]["data"])
    assert end["status"] == "succeeded" and end["exit_code"] == 0
    # Resuming after the first event leaves it out.
    first = int(events[0]["id"])
    resumed = client.call("get", "/jobs/{id}/logs/stream", 200, values={"id": job_id},
                          headers={"Last-Event-ID": str(first)})
    assert [event.get("id") for event in parse_events(resumed.text)] == [event.get("id") for event in events[1:]]
    client.call("get", "/jobs/{id}/logs/stream", 404, values={"id": UNKNOWN_JOB})


def test_openapi_artifacts(client, api_job):
    job_id = api_job["id"]
    expected = {"notes file.txt": ("text/plain", b"notes\n"), "sub/deep/table.csv": ("text/csv", b"a,b\n1,2\n")}
    for path, (media, content) in expected.items():
        response = client.call("get", "/jobs/{id}/artifacts/{path}", 200, values={"id": job_id, "path": path})
        assert response.content == content and response.headers["Content-Type"].startswith(media)
        assert response.headers["Content-Disposition"].endswith(quote(path.split("/")[-1]))
    summary = client.call("get", "/jobs/{id}/artifacts/{path}", 200,
                          values={"id": api_job["run"], "path": "summary.json"}).json()
    assert summary == {"args": ["one", "two words"], "input": "forty-two", "greeting": "hi", "helper": 42}
    template = "/jobs/{id}/artifacts/{path}"
    # Paths that try to leave the outputs, or are not usable: 400, before anything is opened.
    for path in ("..%2Fsummary.json", "sub%2Fdeep%2Ftable.csv", "%2e%2e/%2e%2e/etc/passwd", "sub/%2e%2e/summary.json",
                 "sub/%2E/deep", "%zz", "a%00b", "/".join(["d"] * 33)):
        response = client.raw("get", template, f"/jobs/{job_id}/artifacts/{path}", 400)
        assert response.json()["error"]
    # A folder is not a file.
    client.call("get", template, 403, values={"id": job_id, "path": "sub/deep"})
    client.call("get", template, 404, values={"id": job_id, "path": "nope.txt"})
    client.call("get", template, 404, values={"id": job_id, "path": "sub/deep/table.csv/more"})
    client.call("get", template, 404, values={"id": UNKNOWN_JOB, "path": "summary.json"})
    # A component longer than a file name can be is no file: refused or not found, not an internal error.
    long_name = client.call("get", template, None, values={"id": job_id, "path": "a" * 300})
    assert long_name.status_code in (400, 404), long_name.text


def test_openapi_list_jobs(client, api_job):
    jobs = client.call("get", "/api/jobs", 200).json()["jobs"]
    assert api_job["id"] in [job["id"] for job in jobs]
    api_jobs = client.call("get", "/api/jobs", 200, params={"source": "api"}).json()["jobs"]
    assert api_jobs and all(job["source"] == "api" for job in api_jobs)
    succeeded = client.call("get", "/api/jobs", 200, params={"status": "succeeded"}).json()["jobs"]
    assert api_job["id"] in [job["id"] for job in succeeded]
    assert all(job["status"] == "succeeded" for job in succeeded)
    client.call("get", "/api/jobs", 200, params={"source": "syftbox"})
    client.call("get", "/api/jobs", 400, params={"source": "elsewhere"})


# A job that writes a line, then waits long enough to be stopped.
SLOW_JOB = 'import time\nprint("tick", flush=True)\ntime.sleep(25)\nprint("never", flush=True)\n'


def read_until(response, pieces, marker: bytes, limit: float = WAIT_SECONDS) -> bytes:
    """Reads the streamed body until `marker` has come; returns all read so far."""
    deadline = time.monotonic() + limit
    text = b""
    for piece in pieces:
        text += piece
        if marker in text:
            return text
        assert time.monotonic() < deadline, f"{marker!r} did not come: {text[-500:]!r}"
    pytest.fail(f"the stream ended without {marker!r}: {text[-500:]!r}")


def test_openapi_api_job_actions(client, api, contract):
    job_id = client.submit({"entry": "slow.py", "name": "openapi slow"}, {"slow.py": SLOW_JOB}).json()["job_id"]
    client.wait_job(job_id, {"running"})
    # Follow it live: the first event comes while it runs.
    stream = client.call("get", "/jobs/{id}/logs/stream", 200, values={"id": job_id}, body=False)
    pieces = stream.iter_content(chunk_size=None)
    text = read_until(stream, pieces, b"tick")
    deadline = time.monotonic() + WAIT_SECONDS
    while "tick" not in client.call("get", "/jobs/{id}/logs", 200, values={"id": job_id}).text:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    running = client.job(job_id)
    assert running["status"] == "running" and running["actions"] == ["stop"] and running["live"] is True
    assert running["current_run"] and running["started_at"] and running["finished_at"] is None
    listed = client.call("get", "/api/jobs", 200, params={"status": "queued,running", "source": "api"}).json()["jobs"]
    assert job_id in [job["id"] for job in listed]
    # An API job is not reviewed; a running one cannot be restarted.
    client.call("post", "/api/jobs/{id}/approve", 409, values={"id": job_id})
    client.call("post", "/api/jobs/{id}/reject", 409, values={"id": job_id}, json={"reason": "no"})
    client.call("post", "/api/jobs/{id}/restart", 409, values={"id": job_id})
    stopped = client.call("post", "/api/jobs/{id}/stop", 202, values={"id": job_id}).json()
    assert stopped["job_id"] == job_id and stopped["status"] == "stopping"
    text += read_until(stream, pieces, b"event: end")
    text += read_until(stream, pieces, b"\n\n", limit=5) if not text.endswith(b"\n\n") else b""
    stream.close()
    events = parse_events(text.decode())
    contract.check_events(events, "GET /jobs/{id}/logs/stream (live)")
    assert json.loads(events[-1]["data"])["status"] == "killed"
    killed = client.wait_job(job_id, {"killed"})
    assert killed["current_run"] is None and killed["runs"][0]["id"] == running["current_run"]
    assert killed["runs"][0]["limit_hit"] == "cancelled"
    client.call("post", "/api/jobs/{id}/stop", 409, values={"id": job_id})
    # Run again: queued, a new run; stopped again.
    again = client.call("post", "/api/jobs/{id}/restart", 202, values={"id": job_id}).json()
    assert again["status"] == "queued" and again["job"]["id"] == job_id
    client.call("post", "/api/jobs/{id}/stop", 202, values={"id": job_id})
    client.wait_job(job_id, {"killed"})
    wait_runs(client, job_id, 2)
    for action in ("stop", "restart", "approve", "reject"):
        client.call("post", f"/api/jobs/{{id}}/{action}", 404, values={"id": UNKNOWN_JOB}, json={"reason": "x"})


# -- SyftBox jobs: the owner's review -------------------------------------

OUTPUT_SCRIPT = "echo review output\nmkdir -p outputs\necho result > outputs/result.txt\n"


def test_openapi_review_approve_restart(client, api):
    job_id = place_and_wait(api, "openapi-approve", OUTPUT_SCRIPT)
    job = client.job(job_id)
    assert job["source"] == "syftbox" and job["status"] == "pending" and job["actions"] == ["approve", "reject"]
    assert client.job("openapi-approve")["id"] == job_id  # a SyftBox job's name names it
    # The end event of a job that is not running is its status.
    events = parse_events(client.call("get", "/jobs/{id}/logs/stream", 200, values={"id": job_id}).text)
    assert json.loads(events[-1]["data"])["status"] == "pending"
    client.call("post", "/api/jobs/{id}/approve", 400, values={"id": job_id}, data=b"not json")
    client.call("post", "/api/jobs/{id}/approve", 413, values={"id": job_id}, data=b" " * (70 << 10))
    client.call("post", "/api/jobs/{id}/stop", 409, values={"id": job_id})
    client.call("post", "/api/jobs/{id}/restart", 409, values={"id": job_id})
    approved = client.call("post", "/api/jobs/{id}/approve", 200, values={"id": job_id},
                           json={"reason": "looks fine"}).json()
    assert approved["status"] == "approved" and approved["job"]["state"]["approval_method"] == "manual"
    api.wait_state("openapi-approve", {"done"})
    client.call("post", "/api/jobs/{id}/approve", 409, values={"id": job_id})
    client.call("post", "/api/jobs/{id}/reject", 409, values={"id": job_id}, json={"reason": "too late"})
    client.call("post", "/api/jobs/{id}/stop", 409, values={"id": job_id})
    job = wait_runs(client, job_id, 1)
    assert job["status"] == "done" and job["result"]["status"] == "succeeded"
    assert "result.txt" in [artifact["path"] for artifact in job["artifacts"]]
    result = client.call("get", "/jobs/{id}/artifacts/{path}", 200, values={"id": job_id, "path": "result.txt"})
    assert result.content == b"result\n"
    # A symlink in the outputs is not followed.
    outputs = api.review / SUBMITTER / "v1" / "openapi-approve" / "outputs"
    (outputs / "link.txt").symlink_to("/etc/hostname")
    client.call("get", "/jobs/{id}/artifacts/{path}", 403, values={"id": job_id, "path": "link.txt"})
    (outputs / "link.txt").unlink()
    # Run again, as the client's rerun().
    again = client.call("post", "/api/jobs/{id}/restart", 202, values={"id": job_id}).json()
    assert again["status"] == "approved"
    api.wait_state("openapi-approve", {"done"})
    wait_runs(client, job_id, 2)
    assert "review output" in client.call("get", "/jobs/{id}/logs", 200, values={"id": job_id}).text


def test_openapi_review_reject(client, api):
    job_id = place_and_wait(api, "openapi-reject", OUTPUT_SCRIPT)
    client.call("post", "/api/jobs/{id}/reject", 422, values={"id": job_id})
    client.call("post", "/api/jobs/{id}/reject", 422, values={"id": job_id}, json={"reason": ""})
    client.call("post", "/api/jobs/{id}/reject", 400, values={"id": job_id}, data=b"[1, 2]")
    client.call("post", "/api/jobs/{id}/reject", 413, values={"id": job_id}, data=b" " * (70 << 10))
    # The reason in the query (form-encoded: `+` is a space) when there is no body.
    rejected = client.call("post", "/api/jobs/{id}/reject", 200, values={"id": job_id},
                           params={"reason": "not this dataset"}).json()
    assert rejected["status"] == "rejected" and rejected["job"]["status"] == "rejected"
    state = api.state("openapi-reject")
    job = client.job(job_id)
    assert state["status"] == "rejected" and job["actions"] == []
    for action in ("approve", "stop", "restart"):
        client.call("post", f"/api/jobs/{{id}}/{action}", 409, values={"id": job_id})
    client.call("post", "/api/jobs/{id}/reject", 409, values={"id": job_id}, json={"reason": "again"})
    assert state["review_reason"] == "not this dataset", "?reason=not+this+dataset is not read as 'not this dataset'"
    assert job["state"]["review_reason"] == "not this dataset"


def test_openapi_review_stop_running(client, api):
    job_id = place_and_wait(api, "openapi-stop", "echo started\nsleep 25\necho never\n")
    client.call("post", "/api/jobs/{id}/approve", 200, values={"id": job_id}, params={"reason": "ok"})
    api.wait_state("openapi-stop", {"running"})
    stopped = client.call("post", "/api/jobs/{id}/stop", 202, values={"id": job_id}).json()
    assert stopped["status"] == "stopping"
    api.wait_state("openapi-stop", {"failed"})


def test_openapi_review_job_without_type(client, api):
    """A config.yaml without `type` (the client's default, python): the record still has every key."""
    api.place_syftbox_job("openapi-untyped", "echo untyped\n", without=("type",))
    api.wait_state("openapi-untyped", {"pending"})
    job_id = api.job_id_of("openapi-untyped")
    client.call("post", "/api/jobs/{id}/approve", 200, values={"id": job_id})
    api.wait_state("openapi-untyped", {"done"})
    job = wait_runs(client, job_id, 1)
    assert job["config"]["type"] == "python" and job["result"] is not None


# -- the history ------------------------------------------------------------


def test_openapi_history(client, api_job):
    template = "/api/v1/jobs/history"
    page = client.call("get", template, 200).json()
    assert page["limit"] == 50 and page["offset"] == 0 and page["total"] >= len(page["runs"]) >= 1
    found = client.call("get", template, 200, path=template + "?q=OpenAPI%20api&source=api&status=succeeded").json()
    assert api_job["run"] in [run["id"] for run in found["runs"]]
    assert all(run["source"] == "api" and run["status"] == "succeeded" for run in found["runs"])
    none = client.call("get", template, 200, params={"q": "no such job", "status": "succeeded"}).json()
    assert none["runs"] == [] and none["total"] == 0
    for sort in ("finished_at", "started_at", "duration", "name", "status", "submitter"):
        for order in ("asc", "desc"):
            client.call("get", template, 200, params={"sort": sort, "order": order, "limit": 500})
    one = client.call("get", template, 200, params={"limit": 1, "offset": 1}).json()
    assert len(one["runs"]) <= 1 and one["limit"] == 1 and one["offset"] == 1
    for params in ({"limit": 0}, {"limit": 501}, {"limit": "ten"}, {"limit": "1.5"}, {"offset": -1},
                   {"offset": 2 ** 31}, {"sort": "size"}, {"order": "up"}, {"q": "x" * 201}):
        response = client.call("get", template, 400, params=params)
        assert response.json()["error"]
    # In a query, `+` is a space (form encoding: what URLSearchParams, HTML forms and requests send).
    plus = client.call("get", template, 200, path=template + "?q=openapi+api").json()
    assert api_job["run"] in [run["id"] for run in plus["runs"]], "q=openapi+api does not find 'openapi api job'"


def test_openapi_stats(client, api_job):
    stats = client.call("get", "/api/v1/jobs/stats", 200).json()
    assert stats["total"] >= 1 and stats["by_status"].get("succeeded", 0) >= 1
    assert sum(sum(bucket["counts"].values()) for bucket in stats["timeline"]["buckets"]) >= 1


def test_openapi_run_logs(client, api_job):
    logs = client.call("get", "/api/v1/jobs/history/{id}/logs", 200, values={"id": api_job["run"]}).json()
    assert logs["job_id"] == api_job["id"] and logs["stdout"] == "hello from the api job\n"
    assert logs["stderr_bytes"] == len(logs["stderr"].encode())
    for unknown in (UNKNOWN_RUN, api_job["id"], "not-a-run"):
        client.call("get", "/api/v1/jobs/history/{id}/logs", 404, values={"id": unknown})


# -- beyond loopback: logs and artifacts need the token -------------------


class WideApi(Api):
    """A daemon bound to 0.0.0.0 (only ever reached on 127.0.0.1 here)."""

    def __init__(self, root: Path):
        super().__init__(root, *DAEMON_OPTIONS)
        self.args[self.args.index("127.0.0.1:0")] = "0.0.0.0:0"


def test_openapi_private_reads_beyond_loopback(contract):
    root = Path(tempfile.mkdtemp(prefix="syft-api-wide-"))
    wide = WideApi(root).start()
    try:
        client = Client(wide, contract)
        script = 'import os\nprint("wide")\nopen(os.environ["JOB_OUTPUT_DIR"] + "/summary.json", "w").write("{}")\n'
        job_id = client.submit({"entry": "main.py"}, {"main.py": script}).json()["job_id"]
        job = client.wait_job(job_id, {"succeeded"})
        run_id = job["runs"][0]["id"]
        private = [("/jobs/{id}/logs", {"id": job_id}), ("/jobs/{id}/logs/stream", {"id": job_id}),
                   ("/jobs/{id}/artifacts/{path}", {"id": job_id, "path": "summary.json"}),
                   ("/api/v1/jobs/history/{id}/logs", {"id": run_id})]
        cookie = {"Cookie": f"syft_sandbox_token={wide.token}"}
        for template, values in private:
            response = client.call("get", template, 401, values=values, token=False)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            client.call("get", template, 200, values=values, token=True)
            client.call("get", template, 200, values=values, token=False, headers=cookie)
            client.call("get", template, 401, values=values, token=False,
                        headers={"Cookie": "syft_sandbox_token=" + "0" * 64})
        # Everything else is read without it; a foreign Host is not refused there.
        for template, values in (("/jobs/{id}", {"id": job_id}), ("/api/status", {}), ("/api/jobs", {})):
            client.call("get", template, 200, values=values, token=False, headers={"Host": "runner.example"})
    finally:
        status = wide.stop()
        shutil.rmtree(root, ignore_errors=True)
    assert status == 0, "the daemon bound beyond loopback did not stop cleanly"


# -- the end ----------------------------------------------------------------


def test_openapi_cleanup(client, api_job):
    template = "/api/v1/jobs/history/cleanup"
    for older_than in ("36500", "5000d", "12h", "90m", "3600s"):
        response = client.call("delete", template, 200, params={"older_than": older_than}).json()
        assert response["deleted"] == 0 and response["older_than_seconds"] > 0
    for params in ({}, {"older_than": ""}, {"older_than": "-1"}, {"older_than": "5x"}, {"older_than": "36501"},
                   {"older_than": "1w"}):
        client.call("delete", template, 400, params=params)
    client.call("delete", template, 401, params={"older_than": "30"}, token=False)
    total = client.call("get", "/api/v1/jobs/history", 200).json()["total"]
    time.sleep(1.1)  # every run finished more than a second ago
    removed = client.call("delete", template, 200, params={"older_than": "1s"}).json()
    assert removed["deleted"] >= total
    assert client.call("get", "/api/v1/jobs/history", 200).json()["total"] == 0
    client.call("get", "/api/v1/jobs/history/{id}/logs", 404, values={"id": api_job["run"]})


def test_openapi_every_documented_answer_was_seen(request, contract):
    names = {item.originalname for item in request.session.items if item.module is request.module}
    defined = {name for name, value in vars(request.module).items() if name.startswith("test_") and callable(value)}
    if names != defined:
        pytest.skip("only part of the module ran: the coverage check needs all of it")
    documented = {(method, template, status) for method, template, operation in contract.operations()
                  for status in operation["responses"]}
    operations = {(method, template) for method, template, _ in contract.operations()}
    exercised = {(method, template) for method, template, status in contract.seen if status < "400"}
    assert operations <= exercised, f"operations never answered with success: {sorted(operations - exercised)}"
    missing = documented - contract.seen - UNPROVOKED
    assert not missing, f"documented answers no test provoked: {sorted(missing)}"
    assert not UNPROVOKED - documented, f"UNPROVOKED names answers the document lacks: {UNPROVOKED - documented}"
