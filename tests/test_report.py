"""The leakage report: executed from the notebook, numbers equal to the mart, renders offline in Chromium.

Uses the session fixture `demo_warehouse` (tests/conftest.py): a warehouse built by the real pipeline.
The browser test drives Debian's headless Chromium over the DevTools protocol on a pipe
(--remote-debugging-pipe), so it needs no extra package and no socket.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from plotly.offline import get_plotlyjs

from entitlements.report import REPORTS, render_report
from entitlements.warehouse import DEFAULT_REPORTS, PROJECT_ROOT

RENDER_BUDGET_S = 60
VIEWPORT_WIDTH = 1600
MAX_SHOT_HEIGHT = 16000


@pytest.fixture(scope="module")
def leakage_report(demo_warehouse: Path, tmp_path_factory) -> tuple[Path, float]:
    out_dir = tmp_path_factory.mktemp("reports")
    start = time.perf_counter()
    html = render_report("leakage", demo_warehouse, out_dir)
    return html, time.perf_counter() - start


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _mart(warehouse: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


# --------------------------------------------------------------------------- execution and numbers


def test_leakage_report_executes_and_writes_outputs(leakage_report):
    html, seconds = leakage_report
    out_dir = html.parent
    assert html == out_dir / "leakage.html"
    assert html.stat().st_size > 0
    assert seconds < RENDER_BUDGET_S, f"report took {seconds:.1f}s"
    for table in ("currency_totals", "category_totals", "top_customers", "largest_leaks"):
        assert (out_dir / f"leakage_{table}.csv").is_file(), table


def test_currency_totals_equal_the_mart_to_the_cent(leakage_report, demo_warehouse):
    html, _ = leakage_report
    rows = _read_csv(html.parent / "leakage_currency_totals.csv")
    reported = {r["currency"]: Decimal(r["total_amount"]) for r in rows}
    expected = dict(
        _mart(demo_warehouse, "select currency, sum(amount) from marts.fct_revenue_leakage group by currency")
    )
    assert expected, "the demo warehouse has no leakage rows"
    assert reported == expected
    # written with exactly two decimals, as money
    assert all(re.fullmatch(r"-?\d+\.\d{2}", r["total_amount"]) for r in rows)


def test_category_totals_add_up_per_currency(leakage_report, demo_warehouse):
    html, _ = leakage_report
    by_currency: dict[str, Decimal] = {}
    for r in _read_csv(html.parent / "leakage_category_totals.csv"):
        by_currency[r["currency"]] = by_currency.get(r["currency"], Decimal(0)) + Decimal(r["total_amount"])
    expected = dict(
        _mart(demo_warehouse, "select currency, sum(amount) from marts.fct_revenue_leakage group by currency")
    )
    assert by_currency == expected


def test_largest_leaks_are_the_largest_rows_with_explanations(leakage_report, demo_warehouse):
    html, _ = leakage_report
    rows = _read_csv(html.parent / "leakage_largest_leaks.csv")
    assert rows and all(r["explanation"] for r in rows)
    for cur in {r["currency"] for r in rows}:
        shown = [Decimal(r["amount"]) for r in rows if r["currency"] == cur]
        top = _mart(
            demo_warehouse,
            "select amount from marts.fct_revenue_leakage where currency = "
            f"'{cur}' order by amount desc limit {len(shown)}",
        )
        assert shown == [a for (a,) in top]


def test_html_is_self_contained_with_code_hidden(leakage_report):
    html_path, _ = leakage_report
    html = html_path.read_text(encoding="utf-8")
    bundle = get_plotlyjs()
    assert html.count(bundle) == 1, "plotly.js must be embedded inline exactly once"
    assert not re.findall(r"<script[^>]*\bsrc\s*=", html, flags=re.I), "no external script"
    assert not re.findall(r"<link[^>]*\bhref\s*=\s*[\"']?https?:", html, flags=re.I)
    # plotly.js itself names cdn.plot.ly as its (unused) topojson default; nothing else may.
    assert html.count("cdn.plot.ly") == bundle.count("cdn.plot.ly")
    assert html.count('class="plotly-graph-div"') == 2
    assert "open_warehouse" not in html, "code cells must be hidden"
    assert "Traceback" not in html


def test_currency_parameter_filters_the_report(demo_warehouse, tmp_path):
    (cur, total), *_ = _mart(
        demo_warehouse,
        "select currency, sum(amount) from marts.fct_revenue_leakage group by currency order by 1",
    )
    html = render_report("leakage", demo_warehouse, tmp_path, {"currency": cur.lower()})
    rows = _read_csv(html.parent / "leakage_currency_totals.csv")
    assert [(r["currency"], Decimal(r["total_amount"])) for r in rows] == [(cur, total)]
    assert {r["currency"] for r in _read_csv(html.parent / "leakage_largest_leaks.csv")} == {cur}


def test_unknown_report_is_refused(demo_warehouse, tmp_path):
    assert "leakage" in REPORTS
    with pytest.raises(ValueError, match="unknown report"):
        render_report("nope", demo_warehouse, tmp_path)


# --------------------------------------------------------------------------- headless Chromium


class Chromium:
    """Just enough of the Chrome DevTools Protocol, over --remote-debugging-pipe (fds 3 and 4)."""

    FLAGS = (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        "--remote-debugging-pipe",
        # networking off: nothing resolves and every proxied request goes to a closed port
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--proxy-server=127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
    )

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


def test_report_renders_offline_in_chromium(leakage_report):
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: run `make browser`")
        pytest.skip("chromium not installed (`make browser`)")
    html, _ = leakage_report
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
                {"width": VIEWPORT_WIDTH, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                session=session,
            )
            browser.call("Page.navigate", {"url": html.resolve().as_uri()}, session=session)
            browser.wait_for("Page.loadEventFired", timeout=60)

            deadline = time.monotonic() + 20
            while True:
                plots = browser.call(
                    "Runtime.evaluate", {"expression": PLOTS_JS, "returnByValue": True}, session=session
                )["result"]["value"]
                if plots and all(p["mainSvg"] and p["points"] for p in plots):
                    break
                if time.monotonic() > deadline:
                    break
                browser._pump(0.25)

            height = browser.call("Page.getLayoutMetrics", session=session)["cssContentSize"]["height"]
            shot = browser.call(
                "Page.captureScreenshot",
                {
                    "format": "png",
                    "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": VIEWPORT_WIDTH, "height": min(height, MAX_SHOT_HEIGHT)}
                    | {"scale": 1},
                },
                session=session,
                timeout=60,
            )
            events = list(browser.events)
        finally:
            browser.close()

    screenshot = PROJECT_ROOT / DEFAULT_REPORTS / "leakage.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.write_bytes(base64.b64decode(shot["data"]))

    assert _errors(events) == []
    assert _external_requests(events) == []
    assert len(plots) == 2, plots
    for p in plots:
        assert p["mainSvg"] >= 1, p
        assert p["data"] >= 1 and p["traces"] >= 1 and p["points"] >= 1, p
