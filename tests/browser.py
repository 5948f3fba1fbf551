"""Open an HTML report in Debian's headless Chromium with the network off, as a reader would.

Drives Chromium over the DevTools protocol on a pipe (--remote-debugging-pipe), so it needs no
extra package and no socket. `open_report` returns what the page did: the plotly figures it drew,
console errors and any request that left the file system, and saves a full-page screenshot; `browse`
keeps the page open to read its DOM, click in it and take a screenshot of its first screen.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from entitlements.reports.render import CHROMIUM_OFFLINE_FLAGS

VIEWPORT_WIDTH = 1600
MAX_SHOT_HEIGHT = 16000


class Chromium:
    """Just enough of the Chrome DevTools Protocol, over --remote-debugging-pipe (fds 3 and 4)."""

    FLAGS = (*CHROMIUM_OFFLINE_FLAGS, "--no-sandbox", "--disable-quic", "--remote-debugging-pipe")

    def __init__(self, binary: str, profile: Path):
        to_child_r, self._w = os.pipe()
        self._r, from_child_w = os.pipe()

        def wire_fds():  # in the child: its fd 3 reads our commands, its fd 4 writes replies
            a = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        argv = [binary, *self.FLAGS, f"--user-data-dir={profile}", "about:blank"]
        if _can_unshare_net():
            argv = ["unshare", "--net", *argv]  # no network interface at all, when allowed
        self.proc = subprocess.Popen(
            argv,
            preexec_fn=wire_fds,
            close_fds=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buf = b""
        self._next_id = 0
        self._replies: dict[int, dict] = {}
        self.events: list[dict] = []

    def _pump(self, timeout: float) -> None:
        ready, _, _ = select.select([self._r], [], [], timeout)
        if not ready:
            return
        chunk = os.read(self._r, 1 << 20)
        if not chunk:
            raise RuntimeError(f"chromium closed the pipe (exit {self.proc.poll()})")
        self._buf += chunk
        while b"\0" in self._buf:
            raw, self._buf = self._buf.split(b"\0", 1)
            msg = json.loads(raw)
            if "id" in msg:
                self._replies[msg["id"]] = msg
            else:
                self.events.append(msg)

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout=30.0):
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self._w, data) :]
        deadline = time.monotonic() + timeout
        while self._next_id not in self._replies:
            if time.monotonic() > deadline:
                raise TimeoutError(method)
            self._pump(0.2)
        reply = self._replies.pop(self._next_id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_for(self, method: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for ev in self.events:
                if ev["method"] == method:
                    return ev
            self._pump(0.2)
        raise TimeoutError(method)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.call("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._r)
        os.close(self._w)


def _can_unshare_net() -> bool:
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode == 0


PLOTS_JS = """
[...document.querySelectorAll('.plotly-graph-div')].map(d => ({
  id: d.id,
  mainSvg: d.querySelectorAll('.main-svg').length,
  traces: d.querySelectorAll('.trace').length,
  points: d.querySelectorAll('.trace .point').length,
  data: (d.data || []).length,
}))
"""


def _errors(events: list[dict]) -> list[str]:
    out = []
    for ev in events:
        p = ev.get("params", {})
        if ev["method"] == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            out.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
        elif ev["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
        elif ev["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
            out.append(f"log: {p['entry']['text']} {p['entry'].get('url', '')}")
    return out


def _external_requests(events: list[dict]) -> list[str]:
    return [
        ev["params"]["request"]["url"]
        for ev in events
        if ev["method"] == "Network.requestWillBeSent"
        and not ev["params"]["request"]["url"].startswith(("file:", "data:", "about:", "blob:"))
    ]


@dataclass(frozen=True)
class RenderedPage:
    plots: list[dict]  # per plotly figure: svg layers, traces, points, data series drawn
    errors: list[str]  # console errors and uncaught exceptions
    external_requests: list[str]  # anything fetched from outside file:, data:, about:, blob:


def chromium_binary() -> str:
    """Chromium's path; fails in CI and skips elsewhere when it is not installed (`make browser`)."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: run `make browser`")
        pytest.skip("chromium not installed (`make browser`)")
    return binary


class BrowserPage:
    """A page loaded offline in Chromium (`browse`): run JavaScript in it, click, take screenshots."""

    def __init__(self, browser: Chromium, session: str, width: int):
        self._browser = browser
        self._session = session
        self.width = width

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (JSON-serialisable), exceptions raised."""
        reply = self._browser.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=self._session,
        )
        if "exceptionDetails" in reply:
            raise RuntimeError(f"{expression!r}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def click(self, selector: str) -> None:
        """A click on the first element matching the CSS selector (as the reader's mouse would)."""
        found = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return false; e.click(); return true; })()"
        )
        if not found:
            raise AssertionError(f"no element matches {selector!r}")

    def wait_for_plots(self, timeout: float = 20) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            plots = self.evaluate(PLOTS_JS)
            if (plots and all(p["mainSvg"] and p["points"] for p in plots)) or time.monotonic() > deadline:
                return plots
            self._browser._pump(0.25)

    def screenshot(self, path: Path, *, full_page: bool = False) -> Path:
        """A PNG of the first screen (the viewport), or of the whole page (up to MAX_SHOT_HEIGHT)."""
        metrics = self._browser.call("Page.getLayoutMetrics", session=self._session)
        height = (
            metrics["cssContentSize"]["height"] if full_page else metrics["cssLayoutViewport"]["clientHeight"]
        )
        shot = self._browser.call(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": full_page,
                "clip": {
                    "x": 0,
                    "y": 0,
                    "width": self.width,
                    "height": min(height, MAX_SHOT_HEIGHT),
                    "scale": 1,
                },
            },
            session=self._session,
            timeout=60,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def headline_figures(self) -> dict[tuple[str, str], str]:
        """The headline's figures (layout.Headline) as the page holds them: (figure key, its currency or
        item, e.g. a migration step) -> its exact value."""
        found = self.evaluate(
            "[...document.querySelectorAll('.ent-headline [data-figure]')].map(e => [e.dataset.figure,"
            " e.dataset.currency || e.dataset.item || '', e.dataset.value])"
        )
        return {(key, of): value for key, of, value in found}

    @property
    def errors(self) -> list[str]:
        return _errors(self._browser.events)

    @property
    def external_requests(self) -> list[str]:
        return _external_requests(self._browser.events)


@contextlib.contextmanager
def browse(html: Path, width: int = VIEWPORT_WIDTH, height: int = 900) -> Iterator[BrowserPage]:
    """`html` loaded in headless Chromium at width x height with the network off, its load event fired."""
    binary = chromium_binary()
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        browser = Chromium(binary, Path(profile))
        try:
            target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            attached = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})
            session = attached["sessionId"]
            for method in ("Runtime.enable", "Log.enable", "Page.enable", "Network.enable"):
                browser.call(method, session=session)
            browser.call(
                "Network.emulateNetworkConditions",
                {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
                session=session,
            )
            browser.call(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                session=session,
            )
            browser.call("Page.navigate", {"url": html.resolve().as_uri()}, session=session)
            browser.wait_for("Page.loadEventFired", timeout=60)
            yield BrowserPage(browser, session, width)
        finally:
            browser.close()


def open_report(html: Path, screenshot: Path) -> RenderedPage:
    """Load `html` offline, wait for its figures to draw, save a full-page PNG to `screenshot`."""
    with browse(html) as page:
        plots = page.wait_for_plots()
        page.screenshot(screenshot, full_page=True)
        return RenderedPage(plots, page.errors, page.external_requests)
