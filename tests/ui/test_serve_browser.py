"""`regwizard serve` in a real browser: Debian's headless Chromium, driven by selenium
through Debian's chromedriver, loads the page from 127.0.0.1, waits for the Welcome
screen, presses Enter on "New setup" and reads the Hosts screen.

The browser resolves no name at all (every host maps to NOTFOUND but 127.0.0.1; the
page's one outside link, a Google font, then fails at once), and background networking
is off. The server runs in a process group of its own, the browser under a chromedriver
in another; both groups are ended by their ids.

xterm.js draws on a canvas, so the terminal's text is read from xterm's own buffer: the
page keeps its terminal in a closure, which the DevTools protocol reaches (the scope of
``window.onresize`` holds textual-serve's terminal class; ``Runtime.queryObjects`` finds
its instance). That path is tied to textual-serve's bundled textual.js (1.1.3, pinned).

REGWIZARD_SERVE_SCREENSHOT=docs/serve-welcome.png saves the Welcome screen, as the
browser shows it, to that file in the repository (the README's picture).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DEADLINE = 90.0  # seconds for each wait; a wait ends as soon as its condition holds
WELCOME = "Set up a private Docker registry"
HOSTS = "Where should the registry run?"


def need(condition: bool, why: str) -> None:
    """Skip here, fail in CI (CI must run the browser test)."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser test, but {why}")
    pytest.skip(why)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, probe: Callable[[], object], deadline: float = DEADLINE) -> object:
    """Poll ``probe`` until it returns something true; fail naming ``what`` at the deadline."""
    end = time.monotonic() + deadline
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > end:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.2)


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def end_group(proc: subprocess.Popen, first: int = signal.SIGINT) -> int | None:
    """Signal the process group ``proc`` leads (we made it), wait, then kill what is left."""
    rc = None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, first)
    with contextlib.suppress(subprocess.TimeoutExpired):
        rc = proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    if rc is None:
        proc.wait(timeout=30)
    return rc


@contextlib.contextmanager
def serving(tmp: Path) -> Iterator[tuple[int, subprocess.Popen]]:
    """``regwizard serve --port P`` with its own HOME and XDG dirs, in its own group."""
    home = tmp / "home"
    for d in ("", ".config", ".local/share", ".cache", "run"):
        (home / d).mkdir(parents=True, exist_ok=True)
    (home / "run").chmod(0o700)
    env = dict(
        os.environ,
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local/share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_RUNTIME_DIR=str(home / "run"),
        PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "regwizard", "serve", "--port", str(port)],
        cwd=tmp,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=open(tmp / "serve.out", "wb"),  # noqa: SIM115 (closed with the process)
        stderr=open(tmp / "serve.err", "wb"),  # noqa: SIM115
        start_new_session=True,
    )
    try:
        wait_for(f"regwizard serve to listen on port {port}", lambda: listening(port))
        yield port, server
    finally:
        end_group(server)


@contextlib.contextmanager
def chromium(tmp: Path) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # Chrome refuses to run as root without it
        "--disable-gpu",
        "--window-size=1280,800",
        f"--user-data-dir={tmp / 'chromium'}",
        # resolve no name: nothing this browser does may leave the machine
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-domain-reliability",
        "--disable-sync",
        "--no-first-run",
        "--no-default-browser-check",
        "--dns-prefetch-disable",
    ):
        opts.add_argument(arg)
    service = Service(
        CHROMEDRIVER, log_output=str(tmp / "chromedriver.log"), popen_kw={"start_new_session": True}
    )
    driver = webdriver.Chrome(service=service, options=opts)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    proc = service.process
    try:
        yield driver
    finally:
        with contextlib.suppress(Exception):
            driver.quit()
        if proc is not None:
            end_group(proc, signal.SIGTERM)


FIND_TERMINAL = """function () {
  const found = this;
  if (found.length !== 1) return "textual-serve terminals on the page: " + found.length;
  window.__regwizardTerminal = found[0].terminal;
  return "";
}"""

READ_TERMINAL = """
const t = window.__regwizardTerminal;
if (!t) return null;
const b = t.buffer.active, out = [];
for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true));
return out.join("\\n");
"""


def expose_terminal(driver) -> str:  # noqa: ANN001
    """Find textual-serve's terminal object (in a closure) and keep it as
    ``window.__regwizardTerminal``; return "" or what went wrong."""
    cdp = driver.execute_cdp_cmd
    fn = cdp("Runtime.evaluate", {"expression": "window.onresize"})["result"]
    if "objectId" not in fn:
        return "no window.onresize yet"
    inner = cdp("Runtime.getProperties", {"objectId": fn["objectId"], "ownProperties": False})
    scopes = [p for p in inner.get("internalProperties", []) if p["name"] == "[[Scopes]]"]
    if not scopes:
        return "window.onresize has no [[Scopes]]"
    scope_list = cdp(
        "Runtime.getProperties", {"objectId": scopes[0]["value"]["objectId"], "ownProperties": True}
    )
    for scope in scope_list["result"]:
        oid = scope["value"].get("objectId")
        if not oid:
            continue
        names = cdp("Runtime.getProperties", {"objectId": oid, "ownProperties": True})
        for var in names["result"]:
            value = var.get("value", {})
            if value.get("type") != "function" or "objectId" not in value:
                continue
            proto = cdp(
                "Runtime.callFunctionOn",
                {
                    "objectId": value["objectId"],
                    "functionDeclaration": "function () { return this.prototype; }",
                },
            )["result"]
            is_it = cdp(
                "Runtime.callFunctionOn",
                {
                    "objectId": value["objectId"],
                    "functionDeclaration": "function () { return !!this.prototype && "
                    "typeof this.prototype.connect === 'function' && "
                    "typeof this.prototype.sendSize === 'function'; }",
                    "returnByValue": True,
                },
            )["result"].get("value")
            if not is_it or "objectId" not in proto:
                continue
            instances = cdp("Runtime.queryObjects", {"prototypeObjectId": proto["objectId"]})
            res = cdp(
                "Runtime.callFunctionOn",
                {
                    "objectId": instances["objects"]["objectId"],
                    "functionDeclaration": FIND_TERMINAL,
                    "returnByValue": True,
                },
            )["result"]
            return res.get("value", "could not read the terminal")
    return "textual-serve's terminal class is not in window.onresize's scope"


def screen_text(driver) -> str:  # noqa: ANN001
    return driver.execute_script(READ_TERMINAL) or ""


def showing(driver, *needles: str) -> str:  # noqa: ANN001
    """The terminal's text once it holds every one of ``needles``, else ""."""
    text = screen_text(driver)
    return text if all(n in text for n in needles) else ""


def test_the_wizard_in_a_browser_from_welcome_to_hosts(tmp_path: Path) -> None:
    need(
        os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER),
        "Debian's chromium and chromium-driver are not installed (scripts/install --test)",
    )
    try:
        import selenium  # noqa: F401
    except ImportError:
        need(False, "selenium is not installed (pip install -e '.[test]')")
    shot = os.environ.get("REGWIZARD_SERVE_SCREENSHOT")

    with serving(tmp_path) as (port, server), chromium(tmp_path) as driver:
        driver.get(f"http://127.0.0.1:{port}/")
        problem = wait_for(
            "textual-serve's terminal on the page",
            lambda: expose_terminal(driver) or "ok",
        )
        assert problem == "ok", problem
        text = wait_for(
            "the Welcome screen in the browser",
            lambda: showing(driver, WELCOME, "New setup"),
        )
        assert "Open a plan file" in text and "Repair a registry" in text, text
        if shot:
            time.sleep(1)  # let xterm finish drawing what its buffer already holds
            png = ROOT / shot  # relative to the repository (the tests run in a temp dir)
            png.parent.mkdir(parents=True, exist_ok=True)
            assert driver.save_screenshot(str(png)), png

        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        # keys go where a person's go: xterm's input element, then the websocket;
        # "New setup" has the focus on Welcome, Enter presses it
        keys = driver.find_element(By.CSS_SELECTOR, ".xterm-helper-textarea")
        driver.execute_script("arguments[0].focus();", keys)
        keys.send_keys(Keys.ENTER)
        text = wait_for(
            "the Hosts screen after Enter on New setup",
            lambda: showing(driver, HOSTS),
        )
        assert "Registry host" in text and "Registry name" in text, text
        assert WELCOME not in text

    # Ctrl-C (SIGINT) on the server: it stops cleanly with 130
    assert server.returncode == 130, (tmp_path / "serve.err").read_text()
    err = (tmp_path / "serve.err").read_text()
    assert f"http://127.0.0.1:{port}/" in err and "Traceback" not in err, err
