"""The customer statement: every active entitlement with the mart's remaining allowance, renewal dates as
in the mart, escaped values, no external URLs, clear errors, and the `statement` command.

Uses the session fixture `demo_warehouse` (tests/conftest.py): a warehouse built by the real pipeline.
"""

from __future__ import annotations

import re
import shutil
from datetime import date, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

import pytest

from entitlements.serve.statement import format_date, load_statement, render_statement, write_statement
from entitlements.warehouse import connect
from tests.browser import browse
from tests.conftest import entitlements

pytestmark = pytest.mark.integration


class StatementPage(HTMLParser):
    """The rows of a statement page (entitlements and renewals), the text of their cells by class,
    and every URL the page would fetch."""

    FETCHING: ClassVar[dict[str, str]] = {
        "script": "src",
        "link": "href",
        "img": "src",
        "iframe": "src",
        "source": "src",
    }

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.entitlements: list[tuple[dict[str, str | None], dict[str, str]]] = []
        self.renewals: list[tuple[dict[str, str | None], dict[str, str]]] = []
        self.fetched: list[str] = []
        self.urls: list[str] = []
        self.text: list[str] = []
        self._row: tuple[dict, dict] | None = None
        self._cell: list[str] | None = None
        self._cell_classes: list[str] = []
        self._in_script = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script":
            self._in_script = True
        if tag in self.FETCHING and attributes.get(self.FETCHING[tag]):
            self.fetched.append(str(attributes[self.FETCHING[tag]]))
        self.urls.extend(
            str(v) for k, v in attrs if k in ("src", "href", "action", "data", "poster") and v is not None
        )
        classes = (attributes.get("class") or "").split()
        if tag == "tr" and ("entitlement" in classes or "renewal" in classes):
            self._row = (attributes, {})
            (self.entitlements if "entitlement" in classes else self.renewals).append(self._row)
        elif tag == "td" and self._row is not None:
            self._cell, self._cell_classes = [], classes

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False
        elif tag == "td" and self._cell is not None and self._row is not None:
            text = " ".join("".join(self._cell).split())
            for cls in self._cell_classes:
                self._row[1][cls] = text
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if not self._in_script:
            self.text.append(data)


def shown_quantity(text: str) -> Decimal | None:
    """A quantity as the page shows it, back to a number; None for 'Unlimited'."""
    if text == "Unlimited":
        return None
    return Decimal(text.replace(",", ""))


def input_error_type() -> type[Exception]:
    try:
        from entitlements.serve.check import CheckInputError
    except ModuleNotFoundError:
        return ValueError
    return CheckInputError


def mart_rows(warehouse: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = connect(warehouse, read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def customers_with_entitlements(demo_warehouse: Path) -> list[str]:
    customers = [
        r[0]
        for r in mart_rows(
            demo_warehouse, "select distinct customer_id from marts.fct_active_entitlements order by 1"
        )
    ]
    assert len(customers) > 10
    return customers


@pytest.fixture(scope="module")
def pages(demo_warehouse: Path, customers_with_entitlements: list[str]) -> dict[str, StatementPage]:
    return {
        c: StatementPage(render_statement(load_statement(demo_warehouse, c)))
        for c in customers_with_entitlements
    }


def test_every_active_entitlement_is_listed_with_the_marts_remaining_quantity(
    demo_warehouse: Path, pages: dict[str, StatementPage]
) -> None:
    kinds = set()
    for customer, page in pages.items():
        expected = {
            (line_id, code): (remaining, used, limit)
            for line_id, code, remaining, used, limit in mart_rows(
                demo_warehouse,
                "select contract_line_id, entitlement_code, remaining_quantity, used_quantity, limit_quantity"
                " from marts.fct_active_entitlements where customer_id = ?",
                [customer],
            )
        }
        shown = {(a["data-line"], a["data-code"]): cells for a, cells in page.entitlements}
        assert len(shown) == len(page.entitlements), f"{customer}: an entitlement is listed twice"
        assert set(shown) == set(expected), customer
        for key, (remaining, used, limit) in expected.items():
            cells = shown[key]
            assert shown_quantity(cells["remaining"]) == remaining, (customer, key, cells)
            assert shown_quantity(cells["limit"]) == limit, (customer, key, cells)
            assert shown_quantity(cells["used"]) == used, (customer, key, cells)
            kinds.add("unlimited" if limit is None else "limited")
        # every entitlement code of the customer is on the page, as text a reader sees
        text = " ".join(page.text)
        assert {code for _, code in expected} <= set(re.findall(r"[A-Z][A-Z_]+", text)), customer
    assert kinds == {"limited", "unlimited"}, "the demo should exercise both"


def test_renewal_rows_are_the_marts_contracts_not_yet_ended(
    demo_warehouse: Path, pages: dict[str, StatementPage]
) -> None:
    seen_renewed = False
    for customer, page in pages.items():
        expected = {
            contract_id: (end_date, days, window)
            for contract_id, end_date, days, window in mart_rows(
                demo_warehouse,
                "select contract_id, end_date, days_to_expiry, renewal_window from marts.fct_renewal_pipeline"
                " where customer_id = ? and renewal_window <> 'expired_not_renewed' and days_to_expiry > 0",
                [customer],
            )
        }
        shown = {a["data-contract"]: cells for a, cells in page.renewals}
        assert set(shown) == set(expected), customer
        for contract_id, (end_date, days, window) in expected.items():
            assert shown[contract_id]["renewal-date"] == format_date(end_date), (customer, contract_id)
            assert int(shown[contract_id]["days"]) == days, (customer, contract_id)
            seen_renewed |= window == "renewed"
    assert seen_renewed, "the demo should show a contract already renewed"


def test_default_statement_date_is_the_warehouse_as_of(demo_warehouse: Path) -> None:
    (as_of,) = mart_rows(demo_warehouse, "select max(as_of_date) from marts.fct_active_entitlements")[0]
    assert load_statement(demo_warehouse, "C00001").statement_date == as_of
    assert f'id="statement-date">{format_date(as_of)}<' in render_statement(
        load_statement(demo_warehouse, "C00001")
    )


def test_another_date_lists_the_entitlements_active_then(
    demo_warehouse: Path, customers_with_entitlements: list[str]
) -> None:
    from entitlements.serve.asof import active_entitlements

    (as_of,) = mart_rows(demo_warehouse, "select max(as_of_date) from marts.fct_active_entitlements")[0]
    on = as_of - timedelta(days=140)
    frame = active_entitlements(demo_warehouse, on)
    customer = frame["customer_id"].value_counts().index[0]
    statement = load_statement(demo_warehouse, customer, on)
    assert statement.statement_date == on
    rows = frame[frame["customer_id"] == customer]
    assert sorted((ln.contract_line_id, ln.entitlement_code) for ln in statement.lines) == sorted(
        zip(rows["contract_line_id"], rows["entitlement_code"], strict=True)
    )
    assert all(r.end_date > on and r.days_to_expiry == (r.end_date - on).days for r in statement.renewals)


def test_a_date_after_the_warehouse_as_of_is_refused(demo_warehouse: Path) -> None:
    with pytest.raises(input_error_type(), match="after the warehouse's as-of date"):
        load_statement(demo_warehouse, "C00001", date(2099, 1, 1))


def test_unknown_customer_raises_naming_it(demo_warehouse: Path, tmp_path: Path) -> None:
    out = tmp_path / "statement.html"
    with pytest.raises(input_error_type(), match="C99999"):
        write_statement(demo_warehouse, "C99999", out)
    assert not out.exists()


def test_missing_warehouse_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_statement(tmp_path / "none.duckdb", "C00001", tmp_path / "s.html")


def test_page_is_self_contained_and_customer_facing(pages: dict[str, StatementPage]) -> None:
    for customer, page in pages.items():
        assert page.fetched == [], f"{customer}: the page fetches {page.fetched}"
        external = [u for u in page.urls if re.match(r"(?i)\s*(https?:)?//", u)]
        assert external == [], f"{customer}: external URLs {external}"
        text = " ".join(page.text).lower()
        for internal in ("leak", "approved_by", "approver", "select ", "entitlement_id", "fct_", "stg_"):
            assert internal not in text, f"{customer}: {internal!r} on a customer page"


def test_the_page_holds_no_script_and_loads_nothing(demo_warehouse: Path) -> None:
    # The chart is HTML bars: no plotly.js (4.8 MB inlined before) for one chart of a mailed page.
    html = render_statement(load_statement(demo_warehouse, "C00001"))
    assert "<script" not in html
    assert not re.search(r"<link[^>]+href=", html)
    assert not re.search(r"(?i)url\(\s*['\"]?(https?:)?//", html)
    assert not re.search(r"(?i)@import", html)
    assert len(html.encode()) < 100_000


def test_values_are_escaped(warehouse_copy: Path, tmp_path: Path) -> None:
    con = connect(warehouse_copy)
    try:
        con.execute(
            "update marts.dim_customers set customer_name = '<script>alert(1)</script> & \"Sons\"'"
            " where customer_id = 'C00001'"
        )
    finally:
        con.close()
    html = write_statement(warehouse_copy, "C00001", tmp_path / "s.html").read_text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;Sons&#34;" in html


def test_statement_command_writes_the_page(demo_warehouse: Path, tmp_path: Path) -> None:
    pytest.importorskip("entitlements.serve.check", reason="the statement command imports the check")
    out = tmp_path / "out" / "statement_C00001.html"
    result = entitlements("statement", "--customer", "C00001", "--warehouse", demo_warehouse, "--out", out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert out.is_file() and str(out) in result.stdout
    assert "Customer 00001" in out.read_text()


def test_statement_command_unknown_customer_exits_2(demo_warehouse: Path, tmp_path: Path) -> None:
    pytest.importorskip("entitlements.serve.check", reason="the statement command imports the check")
    out = tmp_path / "s.html"
    result = entitlements("statement", "--customer", "C99999", "--warehouse", demo_warehouse, "--out", out)
    assert result.returncode == 2
    assert "C99999" in result.stderr
    assert not out.exists()


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless Chromium is not installed")
def test_chart_bars_drawn_in_chromium_are_the_marts_shares_used(demo_warehouse: Path, tmp_path: Path) -> None:
    """Each limited allowance is one bar, fullest first, as wide as its share used (used / limit of
    the mart) on a scale ending at 100 % or the largest share; the dotted line is at 100 %."""
    limited = sorted(
        (
            float(used / limit * 100)
            for used, limit in mart_rows(
                demo_warehouse,
                "select used_quantity, limit_quantity from marts.fct_active_entitlements"
                " where customer_id = 'C00001' and limit_quantity is not null",
            )
        ),
        reverse=True,
    )
    assert limited and limited[0] > 0, "C00001 should have limited allowances, some used"
    page = write_statement(demo_warehouse, "C00001", tmp_path / "s.html")
    script = (
        "[...document.querySelectorAll('.chart .track')].map(t => [t.clientWidth,"
        " t.querySelector('.bar').offsetWidth, t.querySelector('.limit').offsetLeft])"
    )
    with browse(page) as view:
        measured = view.evaluate(script)
        assert view.errors == []
    scale = max(100.0, limited[0])
    assert len(measured) == len(limited)
    for (track, bar, limit_line), share in zip(measured, limited, strict=True):
        assert abs(bar - track * share / scale) <= 1.5, (bar, track, share)
        assert abs(limit_line - track * 100 / scale) <= 1.5, (limit_line, track)
