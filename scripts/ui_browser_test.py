#!/usr/bin/env python3
"""Drives the DeerFlow web UI in a real Chromium (selenium + chromium-driver) against a real
`deerflow server`, and writes screenshots of every page, light and dark, to .build/ui-screenshots/.

    python ui_browser_test.py DEERFLOW_BINARY

Checks: every page loads with no console error; a run triggered from the form (and a field error
for a bad parameter); the run page's graph and timeline change without a reload; a log line appears
while the task runs; cancelling a run; a login with a token (and 401 without); the escaping cases
(`<script>` and `"><img onerror=...>` in a task log, a parameter and a task description render as
text). Exits 1 on the first failure, printing it. scripts/test runs it.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHOTS = os.path.join(ROOT, ".build", "ui-screenshots")
XSS = '<script>window.__xss=1</script>'
IMG = '"><img src=x onerror="window.__xss=2">'

WORKFLOW = f"""
name: etl
description: 'Nightly extract, transform, load {IMG}'
schedule:
  cron: "0 2 * * *"
params:
  day: {{type: string, default: "2024-06-01"}}
  rows: {{type: int, default: 1000}}
  token: {{type: string, default: "s3cret-token", secret: true}}
tasks:
  - id: extract
    type: shell
    description: 'pulls rows {XSS}'
    script: |
      echo "extracting $DEERFLOW_PARAM_ROWS rows"
      echo '{XSS}'
      echo '{IMG}'
      sleep 2
      echo "extract-finished-line"
      sleep 2
  - id: transform
    type: shell
    depends_on: [extract]
    script: for i in 1 2 3; do echo "step $i"; sleep 1; done
  - id: validate
    type: shell
    depends_on: [extract]
    script: echo validating; exit 3
    retries: 1
    retry_delay: 1s
  - id: load
    type: shell
    depends_on: [transform, validate]
    script: echo load
  - id: report
    type: noop
    depends_on: [transform]
"""

SLOW = """
name: slow
description: One long task, to cancel
tasks:
  - id: wait
    type: shell
    script: echo waiting; sleep 60
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, directory, tokens=None):
        self.port = free_port()
        env = dict(os.environ)
        if tokens:
            env["DEERFLOW_API_TOKENS"] = tokens
        self.log = open(os.path.join(directory, f"server-{self.port}.log"), "w")
        self.process = subprocess.Popen(
            [binary, "server", "--workflows", os.path.join(directory, "workflows"),
             "--database", f"sqlite://{directory}/deerflow-{self.port}.sqlite",
             "--api-port", str(self.port), "--metrics-port", str(free_port())],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.url = f"http://127.0.0.1:{self.port}"
        for _ in range(150):
            try:
                urllib.request.urlopen(self.url + "/health/live", timeout=1)
                return
            except Exception:
                time.sleep(0.2)
        raise SystemExit("deerflow server did not start; see " + self.log.name)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def browser(dark=False):
    options = Options()
    options.add_argument("--headless=new")
    options.add_argument("--no-sandbox")
    options.add_argument("--disable-gpu")
    options.add_argument("--window-size=1400,1000")
    options.add_argument("--force-prefers-reduced-motion")
    if dark:
        options.add_argument("--force-dark-mode")
        options.add_argument("--blink-settings=preferredColorScheme=0")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chromium = "/usr/bin/chromium"
    if os.path.exists(chromium):
        options.binary_location = chromium
    service = Service("/usr/bin/chromedriver") if os.path.exists("/usr/bin/chromedriver") else Service()
    return webdriver.Chrome(options=options, service=service)


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def console_errors(driver):
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE" and "favicon" not in entry["message"]]


def load(driver, url, path, name=None):
    driver.get(url + path)
    errors = console_errors(driver)
    check(not errors, f"console errors on {path}: {errors}")
    check(driver.execute_script("return window.__xss || 0") == 0, f"injected script ran on {path}")
    if name:
        shoot(driver, name)


def shoot(driver, name):
    os.makedirs(SHOTS, exist_ok=True)
    height = driver.execute_script("return Math.min(document.documentElement.scrollHeight, 4000)")
    driver.set_window_size(1400, max(900, height))
    driver.save_screenshot(os.path.join(SHOTS, f"{name}.png"))
    driver.set_window_size(1400, 1000)


def api(url, method, path, body=None, token=None):
    request = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode() if body is not None else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def wait(driver, condition, seconds=20, message="condition"):
    """Waits until `condition` holds. Live updates replace parts of the page while we look, so an
    element found a moment ago may be gone (stale): that is "not yet", not a failure."""
    def holds(d):
        try:
            return condition(d)
        except (StaleElementReferenceException, NoSuchElementException):
            return False
    try:
        WebDriverWait(driver, seconds, poll_frequency=0.2).until(holds)
    except TimeoutException:
        console = "\n".join(entry.get("message", "") for entry in driver.get_log("browser"))
        raise AssertionError(f"timed out waiting for {message} (at {driver.current_url}; browser console: {console or 'empty'})")


def settled(read, seconds=10):
    """What `read` returns, read again when a live update replaced the element while it was read."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return read()
        except (StaleElementReferenceException, NoSuchElementException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def click(driver, selector, seconds=10):
    """Clicks the element `selector` finds, finding it again when a live update replaced it
    between finding and clicking."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            driver.find_element(By.CSS_SELECTOR, selector).click()
            return
        except (StaleElementReferenceException, NoSuchElementException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def main():
    binary = sys.argv[1]
    directory = tempfile.mkdtemp(prefix="deerflow-ui-")
    os.makedirs(os.path.join(directory, "workflows"))
    with open(os.path.join(directory, "workflows", "etl.yaml"), "w") as f:
        f.write(WORKFLOW)
    with open(os.path.join(directory, "workflows", "slow.yaml"), "w") as f:
        f.write(SLOW)
    server = Server(binary, directory)
    passed = 0
    try:
        driver = browser()
        try:
            url = server.url
            # A field error for a bad parameter, next to the field; nothing is created.
            load(driver, url, "/workflows/etl")
            click(driver, "details.trigger summary")
            driver.find_element(By.NAME, "param[rows]").send_keys("many")
            click(driver, "details.trigger button[type=submit]")
            wait(driver, lambda d: "not an int" in d.find_element(By.CSS_SELECTOR, ".field-error").text, message="the field error for a bad parameter")
            check(api(url, "GET", "/api/v1/runs")["runs"] == [], "a run was created from a bad form")
            driver.get_log("browser")  # the 422 of that form is expected
            passed += 1
            # Trigger from the form, with a param that must show as text.
            day = driver.find_element(By.NAME, "param[day]")
            day.send_keys(XSS)
            driver.find_element(By.NAME, "param[rows]").clear()
            driver.find_element(By.NAME, "param[rows]").send_keys("7")
            click(driver, "details.trigger button[type=submit]")
            wait(driver, lambda d: "/runs/" in d.current_url, message="the run page after triggering")
            run_url = driver.current_url.split("?")[0]
            run_id = run_url.rsplit("/", 1)[1]
            passed += 1
            # The graph and the timeline change without a reload.
            marker = driver.execute_script("window.__marker = 42; return window.__marker")
            first_dag = settled(lambda: driver.find_element(By.ID, "run-dag").get_attribute("innerHTML"))
            first_timeline = settled(lambda: driver.find_element(By.ID, "run-timeline").get_attribute("innerHTML"))
            wait(driver, lambda d: d.find_element(By.ID, "run-dag").get_attribute("innerHTML") != first_dag, message="the DAG to change")
            wait(driver, lambda d: d.find_element(By.ID, "run-timeline").get_attribute("innerHTML") != first_timeline, message="the timeline to change")
            check(driver.execute_script("return window.__marker") == marker, "the page was reloaded")
            passed += 1
            # A log line appears while the task runs.
            driver.get(run_url + "?task=extract#log")
            wait(driver, lambda d: "extract-finished-line" in d.find_element(By.ID, "log").text, seconds=25, message="a new log line while the task runs")
            check(XSS in settled(lambda: driver.find_element(By.ID, "log").text), "the log's <script> line is not shown as text")
            check(IMG in settled(lambda: driver.find_element(By.ID, "log").text), "the log's img line is not shown as text")
            passed += 1
            # Wait for the end, then the escaping cases on every page.
            for _ in range(100):
                if api(url, "GET", f"/api/v1/runs/{run_id}")["status"] in ("success", "failed"):
                    break
                time.sleep(0.3)
            for path, name in [("/", "overview"), ("/runs", "runs"), (f"/runs/{run_id}?task=extract", "run"),
                               (f"/runs/{run_id}?task=validate&attempt=2", "run-log-attempt"), ("/workflows", "workflows"),
                               ("/workflows/etl", "workflow"), ("/workers", "workers"), ("/alerts", "alerts"), ("/dashboard", "metrics")]:
                load(driver, url, path, name + "-light")
                check(not driver.find_elements(By.CSS_SELECTOR, "main img"), f"an injected <img> became an element on {path}")
            driver.get(url + f"/runs/{run_id}")
            check(XSS in driver.find_element(By.TAG_NAME, "main").text, "the parameter's <script> is not shown as text")
            driver.get(url + "/workflows/etl")
            check(IMG in driver.find_element(By.TAG_NAME, "main").text, "the description's img is not shown as text")
            passed += 1
            # Cancel a run with the form.
            slow = api(url, "POST", "/api/v1/workflows/slow/runs", {})
            driver.get(url + f"/runs/{slow['id']}")
            click(driver, "form[action$='/cancel'] button")
            wait(driver, lambda d: "cancelled" in d.find_element(By.ID, "run-state").text, message="the run to show cancelled")
            check(api(url, "GET", f"/api/v1/runs/{slow['id']}")["status"] == "cancelled", "the run was not cancelled")
            passed += 1
        finally:
            driver.quit()
        dark = browser(dark=True)
        try:
            for path, name in [("/", "overview"), ("/runs", "runs"), (f"/runs/{run_id}?task=extract", "run"), ("/workflows", "workflows"),
                               ("/workflows/etl", "workflow"), ("/workers", "workers"), ("/alerts", "alerts"), ("/dashboard", "metrics")]:
                load(dark, server.url, path, name + "-dark")
            passed += 1
        finally:
            dark.quit()
    finally:
        server.stop()

    # With tokens: 401 and the login form without a session; a login; logout.
    secured = Server(binary, directory, tokens="ui-t0ken")
    try:
        try:
            urllib.request.urlopen(secured.url + "/runs", timeout=5)
            raise AssertionError("GET /runs answered without a token")
        except urllib.error.HTTPError as error:
            check(error.code == 401, f"GET /runs without a token answered {error.code}")
        driver = browser()
        try:
            driver.get(secured.url + "/runs")
            driver.get_log("browser")  # the 401 is expected
            shoot(driver, "login-light")
            driver.find_element(By.NAME, "token").send_keys("wrong")
            click(driver, "form[action='/login'] button")
            # The click submits a form: the answer is a new page, so wait for it rather than look at once.
            wait(driver, lambda d: "not one of" in d.find_element(By.CSS_SELECTOR, ".error").text, message="a wrong token refused")
            driver.get_log("browser")
            driver.find_element(By.NAME, "token").send_keys("ui-t0ken")
            click(driver, "form[action='/login'] button")
            wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "h1") and d.find_element(By.CSS_SELECTOR, "h1").text == "Runs", message="the runs page after login")
            check("ui-t0ken" not in driver.current_url, "the token is in the URL")
            cookie = driver.get_cookie("deerflow_session")
            check(cookie and cookie.get("httpOnly") and cookie.get("sameSite") == "Strict", f"session cookie: {cookie}")
            click(driver, "form.logout button")
            wait(driver, lambda d: d.find_elements(By.NAME, "token"), message="the login form after logout")
            passed += 1
        finally:
            driver.quit()
    finally:
        secured.stop()
    print(f"ui browser test: {passed} passed, 0 failed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as error:
        print(f"ui browser test: FAILED: {error}", file=sys.stderr)
        print("ui browser test: 0 passed, 1 failed")
        sys.exit(1)
