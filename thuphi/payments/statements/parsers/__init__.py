"""Bank statement files, read into one shape. Pure Python: no Django, no database.

Formats (see docs/statements.md):

* ``csv`` / ``xlsx`` – a spreadsheet export; a :class:`ColumnMapping` says which header names
  carry the date, the amounts, the description... Presets cover the common Vietnamese layouts.
* ``camt053`` / ``camt054`` – ISO 20022 XML, any ``camt.05x.001.xx`` version.
* ``mt940`` – SWIFT MT940 (``:20:``, ``:25:``, ``:60F:``, ``:61:``, ``:86:``, ``:62F:``).

Every parser returns a :class:`ParseResult`: the lines it could read and, for each line it could
not, ``(line_no, Vietnamese message)``. ``line_no`` is the physical line of the file (CSV, XML,
MT940) or the spreadsheet row (XLSX), so a person can find it. A bad line never stops the rest.

Amounts are whole đồng: ``1.234.567``, ``1,234,567`` and ``1.234.567,00`` read as 1234567;
anything below one đồng (``,50``) is an error for that line, never rounded.
"""
from __future__ import annotations

import re

from .camt import parse_camt
from .common import (
    DEFAULT_DATE_FORMATS,
    FORMATS,
    IN,
    MAX_AMOUNT,
    OUT,
    VIETNAM_TZ,
    AmountError,
    ParseResult,
    StatementLine,
    norm_text,
    parse_amount,
    strict_text,
)
from .mt940 import parse_mt940
from .tabular import PRESETS, ColumnMapping, parse_csv, parse_xlsx

# The readers live in one module per format; every name callers used from the single module is
# still importable from here.
__all__ = [
    "DEFAULT_DATE_FORMATS",
    "FORMATS",
    "IN",
    "MAX_AMOUNT",
    "OUT",
    "PRESETS",
    "VIETNAM_TZ",
    "AmountError",
    "ColumnMapping",
    "ParseResult",
    "StatementLine",
    "detect_format",
    "norm_text",
    "parse_amount",
    "parse_camt",
    "parse_csv",
    "parse_mt940",
    "parse_statement",
    "parse_xlsx",
    "strict_text",
]


# --------------------------------------------------------------------------- detection

def detect_format(data: bytes, filename: str = "") -> str:
    """The format of a statement file, from its content first and its name second."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    name = filename.lower()
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "xls"
    if head.startswith(b"<"):
        if b"camt.054" in data[:4096] or b"BkToCstmrDbtCdtNtfctn" in data[:8192]:
            return "camt054"
        return "camt053"
    if head.startswith((b":20:", b"{1:")) or re.search(rb"(?m)^:20:", head) and re.search(rb"(?m)^:25:", head):
        return "mt940"
    if name.endswith((".sta", ".mt940", ".940", ".swi")):
        return "mt940"
    if name.endswith(".xml"):
        return "camt053"
    return "csv"


def parse_statement(data: bytes, *, filename: str = "", fmt: str | None = None,
                    mapping: ColumnMapping | None = None) -> ParseResult:
    fmt = fmt or detect_format(data, filename)
    if fmt == "csv":
        return parse_csv(data, mapping)
    if fmt == "xlsx":
        return parse_xlsx(data, mapping)
    if fmt in ("camt053", "camt054", "camt"):
        return parse_camt(data)  # the document itself says which of the two it is
    if fmt == "mt940":
        return parse_mt940(data)
    if fmt == "xls":
        return ParseResult(fmt="xls", errors=[(0, "Tệp Excel 97-2003 (.xls) không được hỗ trợ: hãy mở và lưu lại "
                                                  "dạng .xlsx hoặc .csv.")])
    return ParseResult(fmt=str(fmt), errors=[(0, f"Định dạng “{fmt}” không được hỗ trợ; chọn một trong: "
                                                 f"{', '.join(FORMATS)}.")])
