"""Shared pieces of the statement readers: line and result types, amounts, dates, text and decoding."""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

try:
    from zoneinfo import ZoneInfo

    VIETNAM_TZ: dt.tzinfo = ZoneInfo("Asia/Ho_Chi_Minh")
except Exception:  # noqa: BLE001  pragma: no cover - only without tzdata; Vietnam has no DST
    VIETNAM_TZ = dt.timezone(dt.timedelta(hours=7), "ICT")


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


# --------------------------------------------------------------------------- text

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


# --------------------------------------------------------------------------- decoding

def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1258", errors="replace")  # Windows Vietnamese, what old Excel writes
