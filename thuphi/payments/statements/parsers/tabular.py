"""CSV and XLSX statements: column mappings, the bank presets and the shared row reader."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

from .common import (
    DEFAULT_DATE_FORMATS,
    IN,
    OUT,
    AmountError,
    ParseResult,
    StatementLine,
    _AmountReader,
    _DateReader,
    _decode,
    norm_text,
    strict_text,
)

# --------------------------------------------------------------------------- column mapping

def _header_keys(cell: object) -> tuple[set[str], set[str]]:
    """A header cell and each part of a bilingual one ("Nợ/ Debit", "Ngày GD\\nDate"), with and without
    diacritics."""
    raw = str(cell or "")
    parts = [raw] + re.split(r"[/\n|()]", raw)
    strict = {strict_text(p) for p in parts} - {""}
    loose = {norm_text(p) for p in parts} - {""}
    return strict, loose


def _aliases(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = (value,)
    return tuple(strict_text(v) for v in value if strict_text(v))


@dataclass(frozen=True)
class ColumnMapping:
    """Which header names hold which field in a CSV/XLSX export.

    Each field takes one name or a tuple of names, tried in order; names compare without case or
    punctuation, and without diacritics too when longer than three letters ("Ghi no" matches
    "Ghi nợ", but "No" does not match "Nợ"); a bilingual header ("Có / Credit") matches either half.
    Amounts come either from two columns, ``credit`` (money in) and ``debit`` (money out), or from
    one signed ``amount`` column (negative = out) optionally with a ``direction`` column
    (C/D, CR/DR, Có/Nợ, "Tiền vào"/"Tiền ra", in/out).
    The header row is the first of the top ``header_search_rows`` rows that names a date column
    and an amount column; rows above it (bank name, account, period) are read for the account number.
    """

    date: tuple[str, ...] | str = ()
    credit: tuple[str, ...] | str = ()
    debit: tuple[str, ...] | str = ()
    amount: tuple[str, ...] | str = ()
    direction: tuple[str, ...] | str = ()
    description: tuple[str, ...] | str = ()
    reference: tuple[str, ...] | str = ()
    account: tuple[str, ...] | str = ()
    virtual_account: tuple[str, ...] | str = ()
    counterparty: tuple[str, ...] | str = ()
    date_formats: tuple[str, ...] = DEFAULT_DATE_FORMATS
    #: "," or "." for the decimal mark; None infers it per value (see parse_amount).
    decimal: str | None = None
    #: CSV field separator; None sniffs it from the first lines (",", ";", tab, "|").
    delimiter: str | None = None
    header_search_rows: int = 40
    #: Some exports (VietinBank) leave the date blank on rows of the same day.
    fill_down_date: bool = False
    name: str = "custom"
    label: str = ""

    def __post_init__(self) -> None:
        for f in ("date", "credit", "debit", "amount", "direction", "description", "reference", "account",
                  "virtual_account", "counterparty"):
            object.__setattr__(self, f, _aliases(getattr(self, f)))
        if self.decimal not in (None, ",", "."):
            raise ValueError("decimal must be ',', '.' or None")
        if not self.date or not (self.credit or self.amount):
            raise ValueError("a mapping needs a date column and a credit or amount column")

    def merged(self, other: ColumnMapping, *, name: str = "auto") -> ColumnMapping:
        """This mapping's names first, then the other's: for the auto-detecting preset."""
        fields = {}
        for f in ("date", "credit", "debit", "amount", "direction", "description", "reference", "account",
                  "virtual_account", "counterparty"):
            fields[f] = tuple(dict.fromkeys(getattr(self, f) + getattr(other, f)))
        fmts = tuple(dict.fromkeys(self.date_formats + other.date_formats))
        return replace(self, **fields, date_formats=fmts, name=name, label=self.label)


_COMMON_DESC = ("Nội dung", "Nội dung giao dịch", "Diễn giải", "Mô tả", "Mô tả giao dịch", "Chi tiết giao dịch",
                "Description", "Details", "Transaction description", "Narrative", "Remark", "Content")
_COMMON_REF = ("Số tham chiếu", "Số bút toán", "Mã giao dịch", "Số giao dịch", "Số chứng từ", "Số CT",
               "Reference", "Reference number", "Ref", "Transaction no", "Transaction number",
               "Transaction ID", "Mã tham chiếu")
_COMMON_COUNTERPARTY = ("Tên người chuyển", "Người chuyển", "Đối tác", "Tên đối ứng", "Tên tài khoản đối ứng",
                        "Remitter", "Counterparty", "Payer name", "Beneficiary name")

#: Presets for the usual exports. Column names come from the banks' internet-banking exports as
#: seen in public statement-parsing code and in users' samples; a bank may change them, and each
#: preset is documented in docs/statements.md with what to verify.
PRESETS: dict[str, ColumnMapping] = {
    "vcb": ColumnMapping(
        name="vcb", label="Vietcombank (VCB Digibank / VCB DigiBiz, Excel hoặc CSV)",
        date=("Ngày giao dịch", "Ngày GD", "Transaction date", "Ngày"),
        credit=("Số tiền ghi có", "Ghi có", "Credit", "Có"),
        debit=("Số tiền ghi nợ", "Ghi nợ", "Debit", "Nợ"),
        description=("Mô tả", "Nội dung", "Diễn giải", "Description"),
        reference=("Số tham chiếu", "Số CT", "Reference number", "Reference"),
        counterparty=_COMMON_COUNTERPARTY,
    ),
    "vietinbank": ColumnMapping(
        name="vietinbank", label="VietinBank (eFAST / iPay, lịch sử giao dịch)",
        date=("Ngày giao dịch", "Transaction date", "Ngày hạch toán", "Accounting date", "Ngày phát sinh"),
        credit=("Có", "Credit", "Ghi có"),
        debit=("Nợ", "Debit", "Ghi nợ"),
        description=("Mô tả giao dịch", "Transaction description", "Nội dung"),
        reference=("Số giao dịch", "Transaction number", "Số tham chiếu"),
        counterparty=("Tên đối ứng", "Đối ứng", "Corresponsive name") + _COMMON_COUNTERPARTY,
        fill_down_date=True,
    ),
    "bidv": ColumnMapping(
        name="bidv", label="BIDV (BIDV iBank / SmartBanking, báo cáo chi tiết số dư tài khoản)",
        date=("Ngày hiệu lực", "Ngày giao dịch", "Effective date", "Transaction date", "Date"),
        credit=("Ghi có", "Credit", "Số tiền ghi có"),
        debit=("Ghi nợ", "Debit", "Số tiền ghi nợ"),
        description=("Mô tả", "Nội dung", "Description"),
        reference=("Số tham chiếu", "Số bút toán", "Reference", "Số CT"),
        counterparty=_COMMON_COUNTERPARTY,
    ),
    "mb": ColumnMapping(
        name="mb", label="MB (MBBank, sao kê chi tiết tài khoản)",
        date=("Ngày giao dịch", "Transaction date", "Ngày hạch toán", "Posting date"),
        credit=("Phát sinh có", "Credit", "Số tiền ghi có", "Ghi có"),
        debit=("Phát sinh nợ", "Debit", "Số tiền ghi nợ", "Ghi nợ"),
        description=("Nội dung", "Diễn giải", "Description"),
        reference=("Số bút toán", "Mã giao dịch", "Số tham chiếu", "Reference", "Transaction no"),
        counterparty=_COMMON_COUNTERPARTY,
    ),
    "techcombank": ColumnMapping(
        name="techcombank", label="Techcombank (sổ phụ kiêm phiếu báo nợ/có, truy vấn giao dịch)",
        date=("Ngày giao dịch", "Transaction date", "Ngày"),
        credit=("Có", "Credit", "Ghi có"),
        debit=("Nợ", "Debit", "Ghi nợ"),
        description=("Diễn giải", "Details", "Nội dung", "Description"),
        reference=("Số bút toán", "Transaction no", "Mã giao dịch", "Reference"),
        counterparty=("Đối tác", "Remitter") + _COMMON_COUNTERPARTY,
    ),
    "acb": ColumnMapping(
        name="acb", label="ACB (bảng sao kê giao dịch)",
        date=("Ngày giao dịch", "Ngày hiệu lực", "Transaction date", "Ngày"),
        credit=("Tiền gửi vào", "Gửi vào", "Ghi có", "Credit"),
        debit=("Tiền rút ra", "Rút ra", "Ghi nợ", "Debit"),
        description=("Nội dung giao dịch", "Nội dung", "Description"),
        reference=("Số GD", "Số giao dịch", "Số chứng từ", "Mã giao dịch", "Reference"),
        counterparty=("Tên người nhận/người chuyển", "Đơn vị thụ hưởng/Người chuyển") + _COMMON_COUNTERPARTY,
    ),
    # One signed amount column and explicit English names: what intermediaries (SePay, Casso)
    # and most accounting tools export, and the easiest layout to produce by hand.
    "generic": ColumnMapping(
        name="generic", label="Chuẩn thuphi / xuất từ SePay, Casso (một cột số tiền có dấu)",
        date=("transaction_date", "transactionDate", "Ngày giao dịch", "Thời gian", "Ngày", "Date", "booked_at"),
        amount=("amount", "Số tiền", "transferAmount", "Số tiền giao dịch"),
        credit=("credit", "Tiền vào", "Số tiền vào", "amount_in"),
        debit=("debit", "Tiền ra", "Số tiền ra", "amount_out"),
        direction=("direction", "type", "transferType", "Loại giao dịch", "Loại", "Nợ/Có", "D/C", "CR/DR"),
        description=("description", "content", "Nội dung", "Nội dung chuyển khoản") + _COMMON_DESC,
        reference=("reference", "referenceCode", "reference_code", "bank_reference", "Mã tham chiếu") + _COMMON_REF,
        account=("account_number", "accountNumber", "Số tài khoản", "Tài khoản", "Account", "Account no"),
        virtual_account=("virtual_account", "subAccount", "Tài khoản ảo", "Tài khoản phụ", "Virtual account"),
        counterparty=("counterparty_name", "payer_name") + _COMMON_COUNTERPARTY,
    ),
}


def _auto_mapping() -> ColumnMapping:
    merged = PRESETS["generic"]
    for key in ("vcb", "vietinbank", "bidv", "mb", "techcombank", "acb"):
        merged = merged.merged(PRESETS[key])
    merged = replace(merged, description=tuple(dict.fromkeys(merged.description + _aliases(_COMMON_DESC))),
                     reference=tuple(dict.fromkeys(merged.reference + _aliases(_COMMON_REF))),
                     name="auto", label="Tự nhận dạng theo tên cột")
    return merged


PRESETS["auto"] = _auto_mapping()

_DIRECTION_WORDS = {
    IN: {"c", "cr", "crdt", "credit", "co", "ghi co", "tien vao", "vao", "in", "+", "nhan"},
    OUT: {"d", "dr", "dbit", "debit", "no", "ghi no", "tien ra", "ra", "out", "-", "chuyen di"},
}
_SUMMARY = re.compile(r"^(tong|total|cong phat sinh|cong so|cong|so du|opening|closing|ending|balance)( |$)")
_ACCOUNT_LABEL = re.compile(r"(?<!ten )(so tai khoan|tai khoan|account no|account number|stk)\b(?! name)")
_DIGITS_RUN = re.compile(r"\d[\d .-]{5,30}\d")
_WHITESPACE = re.compile(r"\s")


class _Columns:
    """A mapping resolved against one header row: field -> column index (or None)."""

    FIELDS = ("date", "credit", "debit", "amount", "direction", "description", "reference", "account",
              "virtual_account", "counterparty")

    def __init__(self, mapping: ColumnMapping, header: Sequence[object]):
        keys = [_header_keys(c) for c in header]
        used: set[int] = set()
        self.idx: dict[str, int | None] = {}
        for f in self.FIELDS:
            self.idx[f] = None
            for alias in getattr(mapping, f):
                # Without diacritics only names longer than three letters: "Nợ" must not match "No".
                loose = norm_text(alias)
                loose = loose if len(loose) > 3 else None
                hit = next((i for i, (strict, lk) in enumerate(keys)
                            if i not in used and (alias in strict or loose in lk)), None)
                if hit is not None:
                    self.idx[f] = hit
                    used.add(hit)
                    break

    @property
    def usable(self) -> bool:
        return self.idx["date"] is not None and (self.idx["credit"] is not None or self.idx["amount"] is not None)

    def describe(self, header: Sequence[object]) -> str:
        return ", ".join(f"{f}={header[i]!s}" for f, i in self.idx.items() if i is not None)


def _cell(row: Sequence[object], i: int | None) -> object:
    if i is None or i >= len(row):
        return None
    return row[i]


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split())


def _account_in_preamble(rows: Iterable[Sequence[object]]) -> str:
    for row in rows:
        cells = [_text(c) for c in row if not _blank(c)]
        for i, cell in enumerate(cells):
            if _ACCOUNT_LABEL.search(norm_text(cell)):
                for candidate in [cell.split(":", 1)[-1]] + cells[i + 1:i + 3]:
                    m = _DIGITS_RUN.search(candidate)
                    if m:
                        return re.sub(r"\D", "", m.group())
    return ""


def _rows_to_lines(rows: Iterator[tuple[int, Sequence[object]]], mapping: ColumnMapping, fmt: str) -> ParseResult:
    """The shared body of the CSV and XLSX readers: find the header, then read each data row."""
    result = ParseResult(fmt=fmt)
    preamble: list[Sequence[object]] = []
    cols: _Columns | None = None
    for row_no, row in rows:
        if _blank_row(row):
            continue
        cols = _Columns(mapping, row)
        if cols.usable:
            break
        cols = None
        preamble.append(row)
        if len(preamble) >= mapping.header_search_rows:
            break
    if cols is None:
        names = ", ".join(mapping.date[:3])
        result.error(0, f"Không tìm thấy dòng tiêu đề trong {mapping.header_search_rows} dòng đầu: cần một cột ngày "
                        f"({names}…) và một cột số tiền có/ghi có. Hãy chọn mẫu ngân hàng (--preset) hoặc khai báo cột.")
        return result
    result.account_number = _account_in_preamble(preamble)
    read_date = _DateReader(mapping.date_formats)
    idx = cols.idx
    i_date, i_credit, i_debit, i_amount, i_dir = idx["date"], idx["credit"], idx["debit"], idx["amount"], idx["direction"]
    i_desc, i_ref, i_acct, i_va, i_cp = (idx["description"], idx["reference"], idx["account"], idx["virtual_account"],
                                         idx["counterparty"])
    read_amount = _AmountReader(mapping.decimal)
    fill_down = mapping.fill_down_date
    summary_skip = (i_desc, i_ref, i_cp)
    strip_ws = _WHITESPACE.sub
    last_date: dt.datetime | None = None
    append = result.lines.append
    # The hot loop of a large import: cells are read by index once, texts are plain str for CSV.
    # A row of blank cells has a blank date and no amount, so it falls in the first branch.
    for row_no, row in rows:
        n = len(row)
        raw_date = row[i_date] if i_date < n else None
        if raw_date is None or (isinstance(raw_date, str) and not raw_date.strip()):
            has_money = any(not _blank(_cell(row, i)) for i in (i_credit, i_debit, i_amount) if i is not None)
            if not has_money or _is_summary(row, summary_skip):
                continue  # a continuation, footer or total row: not a transaction
            if not (fill_down and last_date is not None):
                result.error(row_no, "Thiếu ngày giao dịch." + ("" if fill_down else
                                     " Nếu ngân hàng để trống ngày ở các dòng cùng ngày, chọn mẫu --preset vietinbank."))
                continue
            booked_at = last_date
        else:
            try:
                booked_at = read_date(raw_date)
            except ValueError as exc:
                if _is_summary(row, summary_skip):
                    continue
                result.error(row_no, str(exc))
                continue
            last_date = booked_at
        try:
            amount, direction = _row_amount(row, i_credit, i_debit, i_amount, i_dir, read_amount)
        except AmountError as exc:
            result.error(row_no, str(exc))
            continue
        v = row[i_desc] if i_desc is not None and i_desc < n else None
        description = " ".join(v.split()) if v.__class__ is str else _text(v)
        v = row[i_ref] if i_ref is not None and i_ref < n else None
        reference = (" ".join(v.split()) if v.__class__ is str else _text(v))[:128]
        account = strip_ws("", _text(row[i_acct])) if i_acct is not None and i_acct < n else ""
        va = strip_ws("", _text(row[i_va])) if i_va is not None and i_va < n else ""
        v = row[i_cp] if i_cp is not None and i_cp < n else None
        counterparty = (" ".join(v.split()) if v.__class__ is str else _text(v))[:255]
        append(StatementLine(row_no, booked_at, amount, direction, description, reference, account, va, counterparty))
    return result


def _blank_row(row: Sequence[object]) -> bool:
    return all(_blank(c) for c in row)


def _is_summary(row: Sequence[object], skip: tuple[int | None, ...] = ()) -> bool:
    """A totals or balance row ("Tổng cộng", "Cộng phát sinh", "Số dư cuối kỳ"): a text cell says so.
    The description and reference cells do not count: a payer may well write "tong" there."""
    for i, c in enumerate(row):
        if i in skip:
            continue
        if isinstance(c, str) and c.strip() and not c.strip()[0].isdigit():
            text = norm_text(c)
            if _SUMMARY.match(text) and not text.startswith("cong ty"):
                return True
    return False


def _row_amount(row, i_credit, i_debit, i_amount, i_dir, read_amount) -> tuple[int, str]:
    if i_credit is not None or i_debit is not None:
        c_raw, d_raw = _cell(row, i_credit), _cell(row, i_debit)
        c = 0 if _blank(c_raw) or c_raw == "-" else read_amount(c_raw)
        d = 0 if _blank(d_raw) or d_raw == "-" else read_amount(d_raw)
        if c and d:
            raise AmountError("Dòng có cả số tiền ghi có và ghi nợ; không biết là tiền vào hay tiền ra.")
        if c or (i_amount is None or _blank(_cell(row, i_amount))):
            if c < 0 or d < 0:
                # A negative in the credit column is money out, and the other way round.
                return (abs(c), OUT) if c < 0 else (abs(d), IN)
            return (c, IN) if c or not d else (d, OUT)
    value = read_amount(_cell(row, i_amount))
    direction = IN if value >= 0 else OUT
    if i_dir is not None and not _blank(_cell(row, i_dir)):
        word = norm_text(_cell(row, i_dir)) or str(_cell(row, i_dir)).strip()
        if word in _DIRECTION_WORDS[IN]:
            direction = IN
        elif word in _DIRECTION_WORDS[OUT]:
            direction = OUT
        else:
            raise AmountError(f"Không hiểu chiều giao dịch “{_cell(row, i_dir)}” (cần C/D, Có/Nợ, in/out).")
    return abs(value), direction


# --------------------------------------------------------------------------- CSV

def _sniff_delimiter(sample: str) -> str:
    lines = [ln for ln in sample.splitlines()[:30] if ln.strip()]
    best, best_score = ",", -1
    for cand in (",", ";", "\t", "|"):
        counts = [len(next(csv.reader([ln], delimiter=cand), [])) for ln in lines]
        wide = [c for c in counts if c > 1]
        # The delimiter that splits most lines into the same, largest number of fields.
        score = (max(wide.count(c) for c in set(wide)) * 100 + max(wide)) if wide else 0
        if score > best_score:
            best, best_score = cand, score
    return best


def parse_csv(data: bytes | str, mapping: ColumnMapping | None = None) -> ParseResult:
    mapping = mapping or PRESETS["auto"]
    text = _decode(data) if isinstance(data, bytes) else data
    delimiter = mapping.delimiter or _sniff_delimiter(text[:8192])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)

    def rows() -> Iterator[tuple[int, list[str]]]:
        start = 1
        try:
            for row in reader:
                yield start, row
                start = reader.line_num + 1
        except csv.Error as exc:
            raise _CsvBroken(start, str(exc)) from exc

    try:
        return _rows_to_lines(rows(), mapping, "csv")
    except _CsvBroken as exc:
        result = ParseResult(fmt="csv")
        result.error(exc.line_no, f"Tệp CSV hỏng từ dòng này: {exc.detail}")
        return result


class _CsvBroken(Exception):
    def __init__(self, line_no: int, detail: str):
        super().__init__(detail)
        self.line_no, self.detail = line_no, detail


# --------------------------------------------------------------------------- XLSX

def parse_xlsx(data: bytes, mapping: ColumnMapping | None = None) -> ParseResult:
    from openpyxl import load_workbook

    mapping = mapping or PRESETS["auto"]
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - zip, XML or openpyxl errors: the file is not a workbook
        result = ParseResult(fmt="xlsx")
        result.error(0, f"Không mở được tệp Excel (.xlsx): {exc.__class__.__name__}.")
        return result
    try:
        first: ParseResult | None = None
        for ws in wb.worksheets:
            if hasattr(ws, "reset_dimensions"):
                ws.reset_dimensions()  # some exporters write a wrong <dimension>; read every cell
            rows = ((i, row) for i, row in enumerate(ws.iter_rows(min_row=1, values_only=True), start=1))
            result = _rows_to_lines(rows, mapping, "xlsx")
            if result.lines or any(no for no, _m in result.errors):
                return result
            first = first or result
        return first or ParseResult(fmt="xlsx", errors=[(0, "Tệp Excel không có trang tính nào.")])
    finally:
        wb.close()
