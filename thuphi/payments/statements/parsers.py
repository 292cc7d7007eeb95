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

import csv
import datetime as dt
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from xml.parsers import expat

try:
    from zoneinfo import ZoneInfo

    VIETNAM_TZ: dt.tzinfo = ZoneInfo("Asia/Ho_Chi_Minh")
except Exception:  # noqa: BLE001  pragma: no cover - only without tzdata; Vietnam has no DST
    VIETNAM_TZ = dt.timezone(dt.timedelta(hours=7), "ICT")

__all__ = [
    "FORMATS",
    "PRESETS",
    "AmountError",
    "ColumnMapping",
    "ParseResult",
    "StatementLine",
    "detect_format",
    "parse_amount",
    "parse_camt",
    "parse_csv",
    "parse_mt940",
    "parse_statement",
    "parse_xlsx",
]

#: architecture.md: one amount is at most 100 billion đồng.
MAX_AMOUNT = 100_000_000_000
FORMATS = ("csv", "xlsx", "camt053", "camt054", "mt940")
IN, OUT = "in", "out"


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One movement on the account. ``amount`` is a whole number of đồng, never negative:
    ``direction`` says whether money came in or went out. Zero lines are kept (amount 0) so
    the importer can count them."""

    line_no: int
    booked_at: dt.datetime
    amount: int
    direction: str
    description: str = ""
    bank_reference: str = ""
    account_number: str = ""
    virtual_account: str = ""
    counterparty_name: str = ""


@dataclass
class ParseResult:
    fmt: str
    lines: list[StatementLine] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    #: The account the file says it is for (header rows, :25:, Acct/Id), when it says so.
    account_number: str = ""

    def error(self, line_no: int, message: str) -> None:
        self.errors.append((line_no, message))


class AmountError(ValueError):
    """A value that is not a whole number of đồng; the message is Vietnamese, for the report."""


# --------------------------------------------------------------------------- amounts

_AMOUNT_NOISE = re.compile(r"(?i)\s|\u00a0|vnd|vnđ|đồng|đ")
_AMOUNT_CHARS = re.compile(r"[0-9.,]+")
_GROUPED = {sep: re.compile(rf"\d{{1,3}}(?:{re.escape(sep)}\d{{3}})+") for sep in ".,"}


def parse_amount(raw: object, *, decimal: str | None = None) -> int:
    """A signed whole number of đồng from a cell or a text.

    ``decimal`` is the decimal separator ("," or "."), or None to infer it: when both "." and ","
    occur the last one is the decimal mark; a single separator followed by exactly three digits is
    a thousands separator (``1.234`` = 1234 đ), otherwise a decimal mark. A fraction must be zero.
    Parentheses or a leading/trailing minus make the amount negative.
    """
    if raw is None or isinstance(raw, bool):
        raise AmountError("Thiếu số tiền.")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, (float, Decimal)):
        if raw != raw or raw in (float("inf"), float("-inf")):  # NaN, infinities
            raise AmountError(f"Không đọc được số tiền “{raw}”.")
        if raw != int(raw):
            raise AmountError(f"Số tiền “{raw}” có phần lẻ dưới một đồng; số tiền VND phải là số nguyên.")
        value = int(raw)
    else:
        text = str(raw).strip()
        s = _AMOUNT_NOISE.sub("", text)
        negative = False
        if s.startswith("(") and s.endswith(")"):
            negative, s = True, s[1:-1]
        if s[:1] in "+-" and s:
            negative ^= s[0] == "-"
            s = s[1:]
        elif s.endswith("-"):
            negative, s = True, s[:-1]
        if not s or not _AMOUNT_CHARS.fullmatch(s) or not any(c.isdigit() for c in s):
            raise AmountError(f"Không đọc được số tiền “{text}”.")
        dec = decimal if decimal in (",", ".") else _infer_decimal(s)
        if dec and dec in s:
            int_part, _sep, frac = s.rpartition(dec)
        else:
            int_part, frac = s, ""
        if not frac.isdigit() and frac:
            raise AmountError(f"Không đọc được số tiền “{text}”.")
        thousands = "." if dec == "," else "," if dec == "." else ("." if "." in int_part else ",")
        if thousands in int_part:
            if not _GROUPED[thousands].fullmatch(int_part):
                raise AmountError(f"Không đọc được số tiền “{text}”: dấu phân cách hàng nghìn sai chỗ.")
            int_part = int_part.replace(thousands, "")
        if int_part and not int_part.isdigit():
            raise AmountError(f"Không đọc được số tiền “{text}”.")
        if frac.strip("0"):
            raise AmountError(f"Số tiền “{text}” có phần lẻ dưới một đồng; số tiền VND phải là số nguyên.")
        value = int(int_part or "0")
        if negative:
            value = -value
    if abs(value) > MAX_AMOUNT:
        raise AmountError("Số tiền vượt quá 100.000.000.000 đồng.")
    return value


def _infer_decimal(s: str) -> str | None:
    last_dot, last_comma = s.rfind("."), s.rfind(",")
    if last_dot >= 0 and last_comma >= 0:
        return "." if last_dot > last_comma else ","
    sep = "." if last_dot >= 0 else "," if last_comma >= 0 else None
    if sep is None or s.count(sep) > 1:
        return None
    tail = len(s) - s.index(sep) - 1
    return None if tail == 3 and s.index(sep) > 0 else sep


# --------------------------------------------------------------------------- dates

DEFAULT_DATE_FORMATS = (
    "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y",
    "%d-%m-%Y %H:%M:%S", "%d-%m-%Y", "%d.%m.%Y",
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d",
)
_DIRECTIVES = {"%d": r"(?P<d>\d{1,2})", "%m": r"(?P<m>\d{1,2})", "%Y": r"(?P<Y>\d{4})", "%y": r"(?P<y>\d{2})",
               "%H": r"(?P<H>\d{1,2})", "%M": r"(?P<M>\d{2})", "%S": r"(?P<S>\d{2})"}


def _compile_date_format(fmt: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(fmt):
        two = fmt[i:i + 2]
        if two in _DIRECTIVES:
            out.append(_DIRECTIVES[two])
            i += 2
        elif fmt[i] == " ":
            out.append(r"\s+")
            i += 1
        else:
            out.append(re.escape(fmt[i]))
            i += 1
    return re.compile("".join(out))


#: Entries kept by the per-file caches of dates and amounts before they start again.
_CACHE_MAX = 100_000


class _AmountReader:
    """`parse_amount` with a fixed decimal mark, remembering the texts it has read: a statement
    has few distinct amounts (fees are the same for everyone), so most cells are a dict look-up."""

    def __init__(self, decimal: str | None):
        self.decimal = decimal
        self.cache: dict[str, int] = {}

    def __call__(self, raw: object) -> int:
        if raw.__class__ is str:
            hit = self.cache.get(raw)
            if hit is None:
                hit = parse_amount(raw, decimal=self.decimal)  # errors are not remembered: raised each time
                if len(self.cache) >= _CACHE_MAX:
                    self.cache.clear()
                self.cache[raw] = hit
            return hit
        return parse_amount(raw, decimal=self.decimal)


class _DateReader:
    """Parses dates with a list of strptime-style formats, fast: the format that worked last is
    tried first, and each format is a compiled regex rather than a strptime call."""

    def __init__(self, formats: Sequence[str]):
        self.formats = tuple(formats) or DEFAULT_DATE_FORMATS
        self.patterns = [_compile_date_format(f) for f in self.formats]
        # Per pattern, the position in m.groups() of Y, y, m, d, H, M, S (None when absent).
        self.groups = [tuple(p.groupindex[k] - 1 if k in p.groupindex else None for k in "YymdHMS")
                       for p in self.patterns]
        self.last = 0
        self.matched = -1  # the pattern the last successful _parse used; -1 for ISO 8601
        self.last_raw: str | None = None
        self.last_value: dt.datetime | None = None
        self.last_used = -1

    def __call__(self, raw: object) -> dt.datetime:
        if raw.__class__ is str:
            # Statements repeat a timestamp on consecutive rows (a date without time on every row
            # of a day, several transfers in one second): read once, as long as the same format
            # would be tried first (so ambiguous custom formats stay exact).
            if raw == self.last_raw and (self.last_used < 0 or self.last_used == self.last):
                return self.last_value
            value = self._parse(raw)
            self.last_raw, self.last_value, self.last_used = raw, value, self.matched
            return value
        return self._parse(raw)

    def _parse(self, raw: object) -> dt.datetime:
        if isinstance(raw, dt.datetime):
            return raw.astimezone(VIETNAM_TZ) if raw.tzinfo else raw.replace(tzinfo=VIETNAM_TZ)
        if isinstance(raw, dt.date):
            return dt.datetime(raw.year, raw.month, raw.day, tzinfo=VIETNAM_TZ)
        text = str(raw).strip() if raw is not None else ""
        if not text:
            raise ValueError("Thiếu ngày giao dịch.")
        n = len(self.patterns)
        for k in range(n):
            idx = (self.last + k) % n
            m = self.patterns[idx].fullmatch(text)
            if m is None:
                continue
            g = m.groups()
            iY, iy, im, i_d, iH, iM, iS = self.groups[idx]
            try:
                year = int(g[iY]) if iY is not None else 2000 + int(g[iy]) if iy is not None else None
                value = dt.datetime(year, int(g[im]), int(g[i_d]), int(g[iH]) if iH is not None else 0,
                                    int(g[iM]) if iM is not None else 0, int(g[iS]) if iS is not None else 0,
                                    tzinfo=VIETNAM_TZ)
            except (TypeError, ValueError):
                raise ValueError(f"Ngày “{text}” không tồn tại.") from None
            self.last = self.matched = idx
            return value
        self.matched = -1
        try:  # ISO 8601 with an offset, as APIs export it
            value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"Không đọc được ngày “{text}” (định dạng chấp nhận: "
                             f"{', '.join(_human_format(f) for f in self.formats[:4])}…).") from None
        return value.astimezone(VIETNAM_TZ) if value.tzinfo else value.replace(tzinfo=VIETNAM_TZ)


def _human_format(fmt: str) -> str:
    return (fmt.replace("%d", "dd").replace("%m", "mm").replace("%Y", "yyyy").replace("%y", "yy")
            .replace("%H", "hh").replace("%M", "mi").replace("%S", "ss"))


# --------------------------------------------------------------------------- column mapping

def norm_text(value: object) -> str:
    """Lower case, no diacritics (đ → d), every run of other characters one space."""
    text = str(value or "").replace("đ", "d").replace("Đ", "D")
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


def strict_text(value: object) -> str:
    """Lower case with the diacritics kept ("nợ" is not "no"), other runs one space."""
    text = unicodedata.normalize("NFC", str(value or "")).lower()
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


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

def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1258", errors="replace")  # Windows Vietnamese, what old Excel writes


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


# --------------------------------------------------------------------------- camt.053 / camt.054

_CAMT_NS = re.compile(r"urn:iso:std:iso:20022:tech:xsd:(camt\.05[34])\.001\.\d+")


class _XmlForbidden(ValueError):
    pass


def _parse_xml(data: bytes):
    """ElementTree with the line of each element, and no DTD or entity declarations at all
    (no billion laughs, no external entities)."""
    import xml.etree.ElementTree as ET

    builder = ET.TreeBuilder()
    lines: dict[object, int] = {}
    parser = expat.ParserCreate(namespace_separator="}")
    parser.buffer_text = True

    def start(tag, attrs):
        el = builder.start("{" + tag if "}" in tag else tag, attrs)
        lines[el] = parser.CurrentLineNumber

    def forbid(*_args):
        raise _XmlForbidden("Tệp XML có khai báo DTD/ENTITY: không chấp nhận vì lý do an toàn.")

    parser.StartElementHandler = start
    parser.EndElementHandler = lambda tag: builder.end("{" + tag if "}" in tag else tag)
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = forbid
    parser.EntityDeclHandler = forbid
    parser.Parse(data, True)
    return builder.close(), lines


def parse_camt(data: bytes) -> ParseResult:
    """ISO 20022 bank-to-customer statement (camt.053) or debit/credit notification (camt.054)."""
    try:
        root, lines = _parse_xml(data)
    except _XmlForbidden as exc:
        return ParseResult(fmt="camt053", errors=[(1, str(exc))])
    except expat.ExpatError as exc:
        return ParseResult(fmt="camt053", errors=[(exc.lineno, f"Tệp XML hỏng: {expat.ErrorString(exc.code)}.")])
    ns = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else ""
    m = _CAMT_NS.fullmatch(ns)
    kind = m.group(1).replace(".", "") if m else ""
    body = None
    for child in root:
        local = child.tag.rsplit("}", 1)[-1]
        if local in ("BkToCstmrStmt", "BkToCstmrDbtCdtNtfctn", "BkToCstmrAcctRpt"):
            body = child
            kind = kind or ("camt054" if local == "BkToCstmrDbtCdtNtfctn" else "camt053")
    result = ParseResult(fmt=kind or "camt053")
    if body is None:
        result.error(lines.get(root, 1), "Không phải tệp ISO 20022 camt.053/camt.054 (thiếu BkToCstmrStmt hoặc "
                                         "BkToCstmrDbtCdtNtfctn).")
        return result

    def q(path: str) -> str:
        return "/".join(f"{{{ns}}}{p}" if ns and p not in (".", "..") else p for p in path.split("/"))

    def text(el, path: str) -> str:
        found = el.find(q(path)) if el is not None else None
        return " ".join((found.text or "").split()) if found is not None else ""

    for report in body:
        local = report.tag.rsplit("}", 1)[-1]
        if local not in ("Stmt", "Ntfctn", "Rpt"):
            continue
        acct = report.find(q("Acct"))
        account = text(acct, "Id/IBAN") or text(acct, "Id/Othr/Id")
        account = re.sub(r"\s", "", account)
        result.account_number = result.account_number or account
        acct_ccy = text(acct, "Ccy")
        for ntry in report.findall(q("Ntry")):
            _camt_entry(ntry, lines.get(ntry, 0), account, acct_ccy, q, text, result)
    return result


def _camt_entry(ntry, line_no, account, acct_ccy, q, text, result: ParseResult) -> None:
    status = text(ntry, "Sts/Cd") or text(ntry, "Sts")
    if status and status.upper() not in ("BOOK",):
        result.error(line_no, f"Bút toán ở trạng thái {status} (chưa hạch toán), không ghi sổ.")
        return
    ind = text(ntry, "CdtDbtInd").upper()
    if ind not in ("CRDT", "DBIT"):
        result.error(line_no, f"CdtDbtInd “{ind}” không hợp lệ (cần CRDT hoặc DBIT).")
        return
    direction = IN if ind == "CRDT" else OUT
    raw_when = text(ntry, "BookgDt/DtTm") or text(ntry, "BookgDt/Dt") or text(ntry, "ValDt/DtTm") \
        or text(ntry, "ValDt/Dt")
    try:
        booked_at = _iso_datetime(raw_when)
    except ValueError:
        result.error(line_no, f"Không đọc được ngày hạch toán “{raw_when}”.")
        return
    entry_ref = text(ntry, "AcctSvcrRef") or text(ntry, "NtryRef")
    entry_info = text(ntry, "AddtlNtryInf")
    details = ntry.findall(q("NtryDtls/TxDtls"))
    amt_el = ntry.find(q("Amt"))
    parts: list[tuple[object, object]] = []  # (amount element, TxDtls or None)
    if len(details) > 1 and all(_tx_amount_el(d, q) is not None for d in details):
        parts = [(_tx_amount_el(d, q), d) for d in details]  # a batch booking: one line per transaction
    else:
        parts = [(amt_el, details[0] if details else None)]
    for k, (amount_el, tx) in enumerate(parts):
        if amount_el is None:
            result.error(line_no, "Bút toán thiếu số tiền (Amt).")
            return
        ccy = amount_el.get("Ccy") or acct_ccy
        if ccy and ccy.upper() != "VND":
            result.error(line_no, f"Bút toán bằng {ccy}, không phải VND.")
            continue
        try:
            amount = parse_amount((amount_el.text or "").strip(), decimal=".")
        except AmountError as exc:
            result.error(line_no, str(exc))
            continue
        if amount < 0:
            result.error(line_no, "Số tiền âm trong Amt; chiều giao dịch phải ghi ở CdtDbtInd.")
            continue
        ustrd = [" ".join((u.text or "").split()) for u in tx.findall(q("RmtInf/Ustrd"))] if tx is not None else []
        description = " ".join(u for u in ustrd if u) or (text(tx, "AddtlTxInf") if tx is not None else "") \
            or entry_info
        tx_ref = text(tx, "Refs/AcctSvcrRef") if tx is not None else ""
        if len(parts) > 1:
            reference = tx_ref or (f"{entry_ref}/{k + 1}" if entry_ref else "")
        else:
            reference = entry_ref or tx_ref
        party = "Dbtr" if direction == IN else "Cdtr"
        name = ""
        va = ""
        if tx is not None:
            name = text(tx, f"RltdPties/{party}/Nm") or text(tx, f"RltdPties/{party}/Pty/Nm")
            own = "CdtrAcct" if direction == IN else "DbtrAcct"
            va = text(tx, f"RltdPties/{own}/Id/Othr/Id") or text(tx, f"RltdPties/{own}/Id/IBAN")
            va = re.sub(r"\s", "", va)
            if va == account:
                va = ""
        result.lines.append(StatementLine(
            line_no=line_no, booked_at=booked_at, amount=amount, direction=direction, description=description,
            bank_reference=reference[:128], account_number=account, virtual_account=va[:32],
            counterparty_name=name[:255],
        ))


def _tx_amount_el(tx, q):
    return tx.find(q("Amt")) if tx.find(q("Amt")) is not None else tx.find(q("AmtDtls/TxAmt/Amt"))


def _iso_datetime(raw: str) -> dt.datetime:
    if not raw:
        raise ValueError("empty")
    if len(raw) == 10:
        d = dt.date.fromisoformat(raw)
        return dt.datetime(d.year, d.month, d.day, tzinfo=VIETNAM_TZ)
    value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return value.astimezone(VIETNAM_TZ) if value.tzinfo else value.replace(tzinfo=VIETNAM_TZ)


# --------------------------------------------------------------------------- MT940

_TAG = re.compile(r"^:(\d{2}[A-Z]?):(.*)$")
_MT_61 = re.compile(
    r"""^(?P<vd>\d{6})(?P<ed>\d{4})?(?P<mark>R?[CD])(?P<funds>[A-Z])?(?P<amount>\d[\d,]{0,14}|,\d+)
        (?P<type>[A-Z][A-Z0-9]{3})?(?P<custref>(?:(?!//).){0,16}?)(?://(?P<bankref>.{0,23}?))?
        (?:\n(?P<extra>.*))?$""", re.VERBOSE | re.DOTALL)
_MT_BALANCE = re.compile(r"^(?P<mark>[CD])(?P<date>\d{6})(?P<ccy>[A-Z]{3})(?P<amount>[\d,]+)$")
_WRAP = 65  # SWIFT x-character lines: a full line was wrapped, not ended


def parse_mt940(data: bytes | str) -> ParseResult:
    text = _decode(data) if isinstance(data, bytes) else data
    result = ParseResult(fmt="mt940")
    tags: list[tuple[int, str, list[str]]] = []  # (line_no, tag, value lines)
    for no, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r")
        stripped = line.strip()
        # SWIFT envelope ({1:...}{2:...}{4:) and the end-of-message marker.
        if stripped.startswith("{") or stripped in ("-}", "-"):
            if ":20:" in stripped:
                line = stripped[stripped.index(":20:"):]
            else:
                continue
        m = _TAG.match(line.strip())
        if m:
            tags.append((no, m.group(1), [m.group(2)]))
        elif tags and line.strip():
            tags[-1][2].append(line.rstrip())
    if not tags:
        result.error(1, "Không tìm thấy thẻ MT940 nào (:20:, :25:, :61:...).")
        return result

    account = ""
    currency = ""
    opening: int | None = None
    moved = 0
    clean = True
    pending: StatementLine | None = None
    for line_no, tag, values in tags:
        value = "\n".join(values)
        if tag != "86" and pending is not None:
            result.lines.append(pending)
            pending = None
        if tag == "20":
            account, currency, opening, moved, clean = "", "", None, 0, True
        elif tag == "25":
            account = re.sub(r"\s", "", value.split("/")[-1])
            result.account_number = result.account_number or account
        elif tag in ("60F", "60M"):
            bal = _MT_BALANCE.match(value.strip())
            if bal is None:
                result.error(line_no, f"Không đọc được số dư đầu kỳ “{value.strip()}”.")
                clean = False
                continue
            currency = bal.group("ccy")
            try:
                opening = parse_amount(bal.group("amount"), decimal=",") * (1 if bal.group("mark") == "C" else -1)
            except AmountError as exc:
                result.error(line_no, str(exc))
                clean = False
        elif tag == "61":
            pending, ok = _mt940_line(line_no, value, account, currency, result)
            if pending is not None:
                moved += pending.amount if pending.direction == IN else -pending.amount
            clean = clean and ok
        elif tag == "86":
            if pending is not None:
                pending = replace(pending, description=_join_wrapped(values))
        elif tag in ("62F", "62M"):
            bal = _MT_BALANCE.match(value.strip())
            if bal is not None and opening is not None and clean:
                try:
                    closing = parse_amount(bal.group("amount"), decimal=",") * (1 if bal.group("mark") == "C" else -1)
                except AmountError:
                    continue
                if opening + moved != closing:
                    result.error(line_no, f"Số dư cuối kỳ {closing:,} ≠ số dư đầu kỳ {opening:,} cộng các giao dịch "
                                          f"{moved:,}: tệp có thể bị cắt hoặc thiếu dòng.".replace(",", "."))
            if tag == "62F":
                opening = None
    if pending is not None:
        result.lines.append(pending)
    return result


def _mt940_line(line_no: int, value: str, account: str, currency: str,
                result: ParseResult) -> tuple[StatementLine | None, bool]:
    m = _MT_61.match(value)
    if m is None:
        result.error(line_no, f"Không đọc được dòng :61: “{value.splitlines()[0][:60]}”.")
        return None, False
    if currency and currency != "VND":
        result.error(line_no, f"Sao kê bằng {currency}, không phải VND.")
        return None, False
    try:
        amount = parse_amount(m.group("amount"), decimal=",")
    except AmountError as exc:
        result.error(line_no, str(exc))
        return None, False
    vd = m.group("vd")
    try:
        value_date = dt.date(2000 + int(vd[:2]), int(vd[2:4]), int(vd[4:]))
        booked = value_date
        if m.group("ed"):
            ed = m.group("ed")
            booked = dt.date(value_date.year, int(ed[:2]), int(ed[2:]))
            # Entry date across the new year from the value date (value 31/12, entry 02/01).
            if (booked - value_date).days > 180:
                booked = booked.replace(year=booked.year - 1)
            elif (value_date - booked).days > 180:
                booked = booked.replace(year=booked.year + 1)
    except ValueError:
        result.error(line_no, f"Ngày trong dòng :61: “{value[:10]}” không tồn tại.")
        return None, False
    mark = m.group("mark")
    direction = IN if mark in ("C", "RD") else OUT
    bankref = (m.group("bankref") or "").strip()
    custref = (m.group("custref") or "").strip()
    reference = bankref or ("" if custref.upper() in ("", "NONREF") else custref)
    extra = " ".join((m.group("extra") or "").split())
    return StatementLine(
        line_no=line_no, booked_at=dt.datetime(booked.year, booked.month, booked.day, tzinfo=VIETNAM_TZ),
        amount=amount, direction=direction, description=extra, bank_reference=reference[:128],
        account_number=account,
    ), True


def _join_wrapped(values: list[str]) -> str:
    out = ""
    for i, part in enumerate(values):
        if i and len(values[i - 1]) < _WRAP:
            out += " "
        out += part
    return " ".join(out.split())


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
