"""CSVs written for people open in Excel or LibreOffice, where a cell starting with =, +, -, @, a tab
or a carriage return is run as a formula (CSV injection: a customer named ``=HYPERLINK(...)`` in
the CRM would become a live link in finance's spreadsheet). Such text cells are written with a
leading apostrophe, which spreadsheets show as text; numbers (-12.50) stay numbers."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas takes about 0.3 s to import: `entitlements check` writes no frames
    import pandas as pd

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def neutralise(value: Any) -> Any:
    """The value, or a text value that a spreadsheet would run as a formula, made plain text."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every text cell neutralised (numeric and date columns are left as they are)."""
    import pandas as pd

    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(neutralise)
    return out


def safe_row(row: dict[str, Any]) -> dict[str, Any]:
    return {key: neutralise(value) for key, value in row.items()}
