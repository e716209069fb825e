"""The dashboard (`GET /`) in a real browser: Debian's headless Chromium,
driven through Selenium and Debian's chromedriver, against the daemon of
the `api` fixture.

- submit a job with the dashboard's form (asking for the owner's token),
  watch its live log while it runs (ANSI colours rendered), see it end,
  and download its output file from the job page;
- approve a pending SyftBox job with the review list's button: state.yaml
  becomes approved, then done;
- save screenshots of the overview and a job page at 1280 px and at a
  phone's 390x844, with no horizontal overflow on the phone;
- the browser's console shows no error (a CSP violation would be one).

Chromium and chromedriver are required (`apt-get install chromium
chromium-driver`, as scripts/install-deps.sh does): missing, the test fails.

Variables: SCREENSHOT_DIR (default /tmp/syft-dashboard-screenshots);
CHROMIUM and CHROMEDRIVER (default /usr/bin/chromium, /usr/bin/chromedriver);
DASHBOARD_ASSETS, for working on the dashboard without rebuilding: a folder
whose index.html, app.js and app.css a small proxy in front of the daemon
serves instead of the embedded ones (e.g. Sources/Runner/HTTP/Assets).
"""

import base64
import http.client
import os
import shutil
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOT_DIR = Path(os.environ.get("SCREENSHOT_DIR") or "/tmp/syft-dashboard-screenshots")
WAIT = 30

# Prints coloured lines for about 6 s (stdout and stderr), reads its input
# file and its arguments, and writes an output file.
JOB_SCRIPT = r'''import os, sys, time
print("\x1b[1;32mdashboard job starting\x1b[0m", flush=True)
for i in range(1, 9):
    print(f"\x1b[36mtick {i}\x1b[0m of 8", flush=True)
    if i % 3 == 0:
        print(f"\x1b[33mwarning {i}\x1b[0m", file=sys.stderr, flush=True)
    time.sleep(0.75)
text = open(os.path.join(os.environ["JOB_INPUT_DIR"], "input.txt")).read().strip()
with open(os.path.join(os.environ["JOB_OUTPUT_DIR"], "result.txt"), "w") as out:
    out.write(f"input says: {text}\nargs: {sys.argv[1:]}\n")
print("\x1b[1;32mdashboard job done\x1b[0m", flush=True)
'''
INPUT_TEXT = "forty-two"
EXPECTED_RESULT = "input says: forty-two\nargs: ['alpha', 'beta gamma']\n"


# -- the browser ---------------------------------------------------------


@pytest.fixture(scope="module")
def browser(api):
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(f"the dashboard test needs Chromium and chromedriver; missing: {', '.join(missing)} "
                    "(Debian: apt-get install chromium chromium-driver, or run scripts/install-deps.sh)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as error:
        pytest.fail(f"selenium is not installed ({error}): see Tests/API/requirements.txt")

    downloads = Path(tempfile.mkdtemp(prefix="syft-dashboard-downloads-"))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--window-size=1280,900", "--disable-gpu",
                     "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
        "download.directory_upgrade": True, "safebrowsing.enabled": False})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    proxy = AssetProxy(os.environ["DASHBOARD_ASSETS"], api.base) if os.environ.get("DASHBOARD_ASSETS") else None
    driver.base = proxy.base if proxy else api.base
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()
        if proxy:
            proxy.stop()
        shutil.rmtree(downloads, ignore_errors=True)


def wait_for(condition, what, timeout=WAIT, interval=0.1):
    """Polls `condition` until it returns something truthy, which it returns."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as error:  # an element replaced while read, not there yet, …
            last_error = error
        time.sleep(interval)
    pytest.fail(f"timed out waiting for {what}" + (f" (last error: {last_error!r})" if last_error else ""))


def find(driver, css):
    from selenium.webdriver.common.by import By
    return driver.find_element(By.CSS_SELECTOR, css)


def find_all(driver, css):
    from selenium.webdriver.common.by import By
    return driver.find_elements(By.CSS_SELECTOR, css)


def visible(driver, css):
    elements = find_all(driver, css)
    return elements[0] if elements and elements[0].is_displayed() else None


def click(driver, css):
    element = wait_for(lambda: visible(driver, css), css)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def answer_token_dialog(driver, token, required=False):
    """Enters the owner's token when the dashboard asks for it."""
    dialog = wait_for(lambda: visible(driver, "#token-dialog[open]"), "the token dialog") if required \
        else visible(driver, "#token-dialog[open]")
    if not dialog:
        return False
    field = find(driver, "#token-input")
    field.clear()
    field.send_keys(token)
    click(driver, "#token-save")
    wait_for(lambda: not find_all(driver, "#token-dialog[open]"), "the token dialog to close")
    return True


def console_errors(driver):
    return [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]


def assert_no_console_errors(driver):
    errors = console_errors(driver)
    assert not errors, "the browser console shows errors:\n" + "\n".join(entry["message"] for entry in errors)


def no_horizontal_overflow(driver):
    width, inner, client = driver.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth, document.documentElement.clientWidth]")
    return width <= inner and width <= max(client, 390), (width, inner, client)


def save_full_page(driver, name):
    """A screenshot of the whole page (beyond the viewport) into SCREENSHOT_DIR."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    driver.execute_script("window.scrollTo(0, 0)")
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 8000), "scale": 1}})
    path = SCREENSHOT_DIR / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    assert path.stat().st_size > 1000, f"{path} is not a screenshot"
    return path


def open_page(driver, fragment=""):
    driver.get(driver.base + "/" + fragment)
    deadline = time.monotonic() + 10
    while not find_all(driver, "#status-state"):
        if time.monotonic() > deadline:
            pytest.fail("the page has no dashboard (#status-state): a binary built before the dashboard's assets? "
                        "(they are embedded at build time; DASHBOARD_ASSETS serves a folder's instead)")
        time.sleep(0.1)
    wait_for(lambda: find(driver, "#status-state").get_attribute("data-status") == "running",
             "the status header to say running")


# -- the tests -----------------------------------------------------------


def test_dashboard_submit_live_log_and_download(api, browser, tmp_path):
    driver = browser
    open_page(driver)
    assert find(driver, "#status-owner").text == api.owner
    assert find(driver, "#status-version").text

    code = tmp_path / "main.py"
    code.write_text(JOB_SCRIPT)
    data = tmp_path / "input.txt"
    data.write_text(INPUT_TEXT + "\n")

    click(driver, "#nav-submit")
    wait_for(lambda: visible(driver, "#submit-form"), "the submit form")
    find(driver, "#submit-name").send_keys("dashboard-demo")
    entry = find(driver, "#submit-entry")
    entry.clear()
    entry.send_keys("main.py")
    find(driver, "#submit-code-files").send_keys(str(code))
    find(driver, "#submit-input-files").send_keys(str(data))
    find(driver, "#submit-args").send_keys("alpha\nbeta gamma")
    find(driver, "#submit-timeout").send_keys("60")
    click(driver, "#submit-button")

    # The first action asks for the owner's token, once.
    answer_token_dialog(driver, api.token, required=True)
    wait_for(lambda: "#/jobs/" in driver.current_url, "the job's page", timeout=WAIT)
    job_id = driver.current_url.split("#/jobs/", 1)[1]
    assert job_id
    wait_for(lambda: visible(driver, "#view-job"), "the job view")

    # The live log shows lines while the job still runs.
    wait_for(lambda: "tick 2" in find(driver, "#job-log").text, "the live log to show tick 2", timeout=WAIT)
    job = api.get(f"/jobs/{job_id}").json()["job"]
    assert job["status"] == "running", f"the log showed tick 2 but the job is {job['status']}"
    assert job["live"] is True
    assert "tick 8" not in find(driver, "#job-log").text
    assert find(driver, "#job-name").text == "dashboard-demo"
    assert visible(driver, "#job-action-stop"), "a running job offers Stop"

    # Then the end: the status, every line, ANSI colours as styled spans.
    wait_for(lambda: find(driver, "#job-log-end").get_attribute("data-status") == "succeeded",
             "the end of the log stream")
    wait_for(lambda: find(driver, "#job-status").text == "succeeded", "the job's status to be succeeded")
    log = find(driver, "#job-log")
    text = log.text
    for line in ("dashboard job starting", "tick 1 of 8", "tick 8 of 8", "warning 6", "dashboard job done"):
        assert line in text, f"{line!r} missing from the log:\n{text}"
    assert "\x1b" not in text and "[36m" not in text and "[0m" not in text, text
    coloured = find_all(driver, "#job-log span.ansi-fg-36")
    assert any("tick 1" in span.text for span in coloured), "cyan ANSI text is not a styled span"
    assert find_all(driver, "#job-log span.ansi-bold.ansi-fg-32"), "bold green ANSI text is not a styled span"
    assert find_all(driver, "#job-log span.log-stderr"), "stderr is not marked"
    assert api.get(f"/jobs/{job_id}").json()["job"]["status"] == "succeeded"
    wait_for(lambda: find_all(driver, "#job-actions [data-action='restart']"), "the Run again button")

    # The output file, downloaded through the job page's link.
    link = wait_for(lambda: visible(driver, "a[data-testid='artifact-link'][data-path='result.txt']"),
                    "the result.txt download link")
    assert "/artifacts/result.txt" in link.get_attribute("href")
    link.click()
    downloaded = browser.downloads / "result.txt"
    wait_for(lambda: downloaded.is_file() and not list(browser.downloads.glob("*.crdownload")),
             "the download of result.txt")
    assert downloaded.read_text() == EXPECTED_RESULT

    # The job's details: its spec, limits, a run.
    config = find(driver, "#job-config").text
    assert "main.py" in config and "alpha beta gamma" in config
    assert "60 s" in find(driver, "#job-limits").text
    wait_for(lambda: find_all(driver, "#job-runs-body tr[data-testid='run-row']"), "the runs list")
    assert_no_console_errors(driver)


def test_dashboard_approves_a_pending_syftbox_job(api, browser):
    driver = browser
    name = "dashboard-review"
    api.place_syftbox_job(name, "#!/bin/bash\necho reviewed-through-the-dashboard\n")
    api.wait_state(name, {"pending"})

    open_page(driver)
    item_css = f"li[data-testid='review-item'][data-job-name='{name}']"
    wait_for(lambda: visible(driver, item_css), "the pending job in the review list")
    assert int(find(driver, "#review-count").text) >= 1
    click(driver, item_css + " button[data-testid='review-approve']")
    answer_token_dialog(driver, api.token)  # only when this test runs alone

    state = api.wait_state(name, {"approved", "running", "done"})
    assert state["status"] in {"approved", "running", "done"}
    state = api.wait_state(name, {"done"})
    assert state["status"] == "done"
    wait_for(lambda: not find_all(driver, item_css), "the job to leave the review list")

    # Its page: done, with its log.
    job_id = api.job_id_of(name)
    open_page(driver, f"#/jobs/{job_id}")
    wait_for(lambda: find(driver, "#job-status").text == "done", "the job page to say done")
    wait_for(lambda: "reviewed-through-the-dashboard" in find(driver, "#job-log").text, "the job's log")
    assert "approved" in find(driver, "#job-config").text
    assert_no_console_errors(driver)


def test_dashboard_screenshots_and_phone_layout(api, browser):
    driver = browser
    jobs = api.get("/api/jobs?source=api").json()["jobs"]
    job_id = jobs[0]["id"] if jobs else api.submit_direct({"main.py": JOB_SCRIPT.replace("0.75", "0.01")},
                                                          {"entry": "main.py", "args": ["alpha", "beta gamma"]},
                                                          inputs={"input.txt": INPUT_TEXT})
    api.wait_job(job_id, {"succeeded", "failed", "timed_out", "killed"})
    pages = {"overview": "", "job": f"#/jobs/{job_id}", "submit": "#/submit"}

    def show(fragment):
        open_page(driver, fragment)
        if fragment.startswith("#/jobs/"):
            wait_for(lambda: find(driver, "#job-log-end").get_attribute("data-status"), "the job's log")
            wait_for(lambda: find_all(driver, "#job-runs-body tr"), "the job's runs")
        elif not fragment:
            wait_for(lambda: find_all(driver, "#history-body tr[data-testid='history-row']"), "the history")
            wait_for(lambda: find_all(driver, "#stats-chart svg"), "the chart")
        time.sleep(0.3)  # layout settles (fonts, the chart's width)

    try:
        for name, fragment in pages.items():
            show(fragment)
            if name != "submit":
                print(f"screenshot: {save_full_page(driver, f'{name}-1280')}")
        # The chart: stacked bars built as SVG nodes.
        show("")
        assert find_all(driver, "#stats-chart svg g.bar rect[class^='s-']"), "no bar in the chart"
        assert find(driver, "#stats-total").text.isdigit()

        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
        for name, fragment in pages.items():
            show(fragment)
            fits, widths = no_horizontal_overflow(driver)
            assert fits, f"{name} overflows horizontally at 390 px (scrollWidth, innerWidth, clientWidth): {widths}"
            if name != "submit":
                print(f"screenshot: {save_full_page(driver, f'{name}-390')}")
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert_no_console_errors(driver)


# -- serving the work tree's assets (DASHBOARD_ASSETS, development only) --


class AssetProxy:
    """Serves index.html and /assets/* from a folder, with the daemon's CSP,
    and forwards every other request to the daemon (streaming, for SSE)."""

    CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
           "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
    TYPES = {"html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8",
             "css": "text/css; charset=utf-8", "json": "application/json"}

    def __init__(self, folder: str, upstream: str):
        folder, target, types, csp = Path(folder), urlsplit(upstream), self.TYPES, self.CSP

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                name = "index.html" if path == "/" else path[len("/assets/"):] if path.startswith("/assets/") else None
                if name and "/" not in name and (folder / name).is_file():
                    body = (folder / name).read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Type", types.get(name.rsplit(".", 1)[-1], "application/octet-stream"))
                    self.send_header("Content-Security-Policy", csp)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self.forward()

            def forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                headers["Host"] = target.netloc
                upstream_connection = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
                upstream_connection.request(self.command, self.path, body=body, headers=headers)
                response = upstream_connection.getresponse()
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    while chunk := response.read1(65536):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    upstream_connection.close()

            do_POST = do_DELETE = forward

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
