#!/usr/bin/python3
# The dashboard (/ui/) in headless Chromium against a live 3-node sandbox
# (TLS, enforce): the page loads with no console errors and shows the
# members and their roles; after `tandem sandbox kill` of the primary it
# shows the new primary within a few seconds of the API and an alarm; an
# action without a client certificate or a login is refused (and nothing
# changes); after a login (ui.users, a hash from `tandem ui hash-password`)
# a switchover from the page moves the primary. A screenshot goes to
# build/artifacts/ (CI keeps it).
#
# Run by ctest as integration.ui_browser_test (CMakeLists.txt). Ports:
# TANDEM_TEST_BASE_PORT or 31600 (node i uses P+10i .. P+10i+5). Needs root,
# Debian's chromium, chromium-driver and python3-selenium; without them the
# test is skipped (exit 77) unless TANDEM_REQUIRE_BROWSER or CI is set
# (scripts/test.sh sets it after setup.sh installed them): then it fails.
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

SKIP = 77
TANDEM = os.environ.get("TANDEM_BIN", os.path.join(os.path.dirname(__file__), "../../build/tandem"))
ARTIFACTS = os.environ.get("TANDEM_ARTIFACTS", os.path.join(os.path.dirname(TANDEM), "artifacts"))
BASE = int(os.environ.get("TANDEM_TEST_BASE_PORT", "31600"))
PASSWORD = "dashboard-test-password"
T0 = time.monotonic()


def log(msg):
    print("[%5.1f s] %s" % (time.monotonic() - T0, msg), flush=True)


def need_browser():
    missing = [p for p in ("/usr/bin/chromium", "/usr/bin/chromedriver") if not os.path.exists(p)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("python3-selenium")
    if not missing:
        return
    required = os.environ.get("TANDEM_REQUIRE_BROWSER") or os.environ.get("CI")
    msg = ("ui_browser_test: %s missing; install chromium chromium-driver python3-selenium "
           "(scripts/setup.sh does)" % ", ".join(missing))
    if required:
        print("FAIL: " + msg + " (required here: TANDEM_REQUIRE_BROWSER/CI is set)", flush=True)
        sys.exit(1)
    print("SKIP: " + msg, flush=True)
    sys.exit(SKIP)


def run(*args, check=True, stdin=None, timeout=300):
    r = subprocess.run([TANDEM, *args], input=stdin, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError("tandem %s failed (%d):\n%s%s" % (" ".join(args), r.returncode,
                                                                r.stdout, r.stderr))
    return r


class Sandbox:
    def __init__(self, root):
        self.dir = os.path.join(root, "sb")

    def config(self, node):
        return os.path.join(self.dir, node, "tandem.yaml")

    def api_port(self, node):
        return BASE + 10 * int(node[-1]) + 1

    def status(self, node):
        r = run("-c", self.config(node), "cluster", "status", "--json", check=False, timeout=20)
        try:
            return json.loads(r.stdout) if r.returncode == 0 else None
        except ValueError:
            return None

    def healthy(self, node, members=3):
        st = self.status(node)
        if not st or not st.get("primary"):
            return False
        ms = st.get("members", [])
        replicas = [m for m in ms if m.get("role") == "replica" and m.get("in_sync")]
        sync = st.get("sync") or {}
        return (len(ms) == members and len(replicas) == members - 1 and
                sync.get("failover_ready", False) and not st.get("intent"))


def wait_for(what, cond, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("timed out after %d s waiting for %s" % (timeout, what))


def browser(user_data):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--window-size=1400,1750", "--user-data-dir=" + user_data) + tuple(
                     os.environ.get("TANDEM_CHROMIUM_FLAGS", "").split()):
        o.add_argument(flag)
    o.accept_insecure_certs = True  # the sandbox's own CA
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


def console_errors(d):
    return [e for e in d.get_log("browser") if e.get("level") == "SEVERE"]


def page_roles(d):
    return d.execute_script(
        "return [...document.querySelectorAll('#members tbody tr')].map("
        "r => [r.dataset.node, r.children[1].textContent]);")


def page_primary(d):
    return d.execute_script("return document.body.dataset.primary || '';")


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)
    log("ok: " + msg)


def main():
    need_browser()
    if os.geteuid() != 0:
        print("SKIP: ui_browser_test needs root (the sandbox runs PostgreSQL as postgres)")
        sys.exit(SKIP)
    from selenium.webdriver.common.by import By
    os.makedirs(ARTIFACTS, exist_ok=True)
    root = tempfile.mkdtemp(prefix="tandem-ui-")
    os.chmod(root, 0o755)
    sb = Sandbox(root)
    d = None
    try:
        log("sandbox up (3 nodes, TLS) on base port %d" % BASE)
        run("sandbox", "up", "--nodes", "3", "--dir", sb.dir, "--base-port", str(BASE), timeout=600)
        wait_for("a healthy cluster", lambda: sb.healthy("node1"), 120)
        primary = sb.status("node1")["primary"]
        viewer = "node2" if primary != "node2" else "node3"
        log("primary %s; the dashboard of %s" % (primary, viewer))

        d = browser(os.path.join(root, "chromium"))
        d.get("https://127.0.0.1:%d/ui/" % sb.api_port(viewer))
        wait_for("the members on the page", lambda: len(page_roles(d)) == 3 and page_primary(d), 15)
        roles = dict(page_roles(d))
        st = sb.status(viewer)
        want = {m["name"]: m["role"] for m in st["members"]}
        check(roles == want, "the page shows the members and roles %s" % want)
        errors = console_errors(d)
        check(not errors, "no console errors on load (%s)" % errors)
        check(d.find_element(By.ID, "conn").text == "live", "the page is polling ('live')")

        # An action without authorisation: refused, nothing changed.
        d.find_element(By.ID, "pause").click()
        wait_for("the refusal", lambda: "HTTP 401" in d.find_element(By.ID, "action-result").text, 10)
        check(not sb.status(viewer).get("paused"), "pause without a certificate or login: 401, "
              "the cluster is not paused")

        # Kill the primary: the page follows the API.
        log("sandbox kill %s" % primary)
        killed_at = time.monotonic()
        run("sandbox", "kill", primary, "--dir", sb.dir)
        api_primary = wait_for("a new primary in the API",
                               lambda: (sb.status(viewer) or {}).get("primary") not in (None, primary)
                               and sb.status(viewer)["primary"], 60)
        api_at = time.monotonic()
        wait_for("the new primary on the page", lambda: page_primary(d) == api_primary, 6)
        log("new primary %s: in the API %.1f s after the kill, on the page %.1f s after the API" %
            (api_primary, api_at - killed_at, time.monotonic() - api_at))
        roles = dict(page_roles(d))
        check(roles.get(api_primary) == "primary" and roles.get(primary) != "primary",
              "the page shows %s as primary and %s as not (%s)" % (api_primary, primary, roles))
        alarm = wait_for("an alarm on the page", lambda: d.execute_script(
            "const a = document.querySelector('#alarms li.alarm'); return a && a.dataset.alarm;"), 40)
        check(bool(alarm), "the page shows the alarm %s" % alarm)
        d.save_screenshot(os.path.join(ARTIFACTS, "ui-dashboard-failover.png"))

        # The old primary back with a dashboard user; log in there and switch over.
        run("ui", "hash-password", stdin=PASSWORD + "\n")  # the helper works from a pipe
        hashed = run("ui", "hash-password", stdin=PASSWORD + "\n").stdout.strip()
        with open(sb.config(primary), "a") as f:
            f.write("ui:\n  users:\n    admin: '%s'\n  session_timeout: 10m\n" % hashed)
        run("sandbox", "start", primary, "--dir", sb.dir)
        wait_for("the old primary back as a replica in sync", lambda: sb.healthy(viewer), 90)
        d.get("https://127.0.0.1:%d/ui/" % sb.api_port(primary))
        wait_for("the login form", lambda: d.find_element(By.ID, "login").is_displayed(), 10)
        d.find_element(By.ID, "login-user").send_keys("admin")
        d.find_element(By.ID, "login-password").send_keys("wrong")
        d.find_element(By.ID, "login-button").click()
        wait_for("the wrong password refused",
                 lambda: "HTTP 401" in d.find_element(By.ID, "action-result").text, 10)
        d.find_element(By.ID, "login-user").clear()
        d.find_element(By.ID, "login-user").send_keys("admin")
        d.find_element(By.ID, "login-password").send_keys(PASSWORD)
        d.find_element(By.ID, "login-button").click()
        wait_for("the login", lambda: d.find_element(By.ID, "who").text == "logged in as admin", 10)
        check(True, "logged in as admin (a wrong password first: 401)")
        wait_for("%s in the switchover list" % primary, lambda: d.execute_script(
            "return [...document.getElementById('switchover-to').options].some(o => o.value === '%s')"
            % primary), 10)
        d.execute_script("document.getElementById('switchover-to').value = '%s';" % primary)
        d.find_element(By.ID, "switchover").click()
        wait_for("the switchover accepted",
                 lambda: "switchover:" in d.find_element(By.ID, "action-result").text, 10)
        wait_for("%s primary in the API" % primary,
                 lambda: (sb.status(viewer) or {}).get("primary") == primary, 60)
        wait_for("%s primary on the page" % primary, lambda: page_primary(d) == primary, 6)
        check(True, "a switchover from the page made %s the primary" % primary)
        wait_for("the page settled", lambda: dict(page_roles(d)).get(api_primary) == "replica", 30)
        time.sleep(2.5)  # one more poll: the lag graph has its points
        shot = os.path.join(ARTIFACTS, "ui-dashboard.png")
        d.save_screenshot(shot)
        log("screenshot: %s" % shot)
        log("PASS")
        return 0
    finally:
        if d is not None:
            d.quit()
        subprocess.run([TANDEM, "sandbox", "down", "--dir", sb.dir], capture_output=True)
        if not os.environ.get("TANDEM_KEEP_TEST_DIRS"):
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as e:
        log("FAIL: %s" % e)
        sys.exit(1)
