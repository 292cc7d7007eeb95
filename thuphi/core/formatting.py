"""Vietnamese number, money, percentage and date formats (pure Python, no Django).

Conventions: "." groups thousands, "," is the decimal mark, the đồng sign
follows the amount ("37.876.956.607 đ"), dates are dd/mm/yyyy. VND has no minor
unit, so money is always an ``int`` and floats are refused outright: a float
amount means something upstream already lost precision.

Amount in words (``amount_in_words_vi``)
----------------------------------------
Receipts under Decree 123/2020 carry the amount in Vietnamese words. We first
evaluated ``num2words(n, lang="vi")`` (0.5.x) and did not use it because it
breaks the receipt conventions this project needs:

* it drops the hundreds of an inner group: 1,005,000 -> "một triệu năm nghìn"
  (receipts say "một triệu không trăm linh năm nghìn") and 2,021 ->
  "hai nghìn lẻ hai mươi mốt", which is simply wrong;
* it uses "lẻ" where we want "linh" (a choice, but not configurable);
* it is not a dependency of the project.

So the function below is written out. Rules implemented:

* groups of three digits with scales nghìn / triệu / tỷ; above 10^9 the
  number of tỷ is read as a number in its own right (10^12 = "một nghìn tỷ",
  5,003 * 10^9 = "năm nghìn không trăm linh ba tỷ");
* a group that is not the leading one is read in full with its hundreds,
  even when they are zero ("không trăm"), and a group that is entirely zero
  is skipped (no "không nghìn");
* zero tens before a non-zero unit read "linh" (105 = "một trăm linh năm");
* "mười" for 10-19, "mươi" for 20-90;
* unit 1 after "mươi" is "mốt" (21 = "hai mươi mốt"), but 11 = "mười một";
* unit 5 after any tens is "lăm" (15 = "mười lăm", 25 = "hai mươi lăm"),
  otherwise "năm" (5, 105);
* unit 4 stays "bốn" (the literary "tư" is optional and less clear on forms);
* first letter capitalised, " đồng" appended, 0 = "Không đồng".
"""

from __future__ import annotations

import datetime as _dt
from decimal import ROUND_HALF_UP, Decimal

__all__ = [
    "amount_in_words_vi",
    "format_date",
    "format_number",
    "format_percent",
    "format_vnd",
    "share_percent",
]

CURRENCY_SYMBOL = "đ"
THOUSANDS_SEPARATOR = "."
DECIMAL_SEPARATOR = ","
EMPTY_VALUE = "—"  # shown where a ratio has no denominator, not "0%"

_TWO_PLACES = Decimal("0.01")


def _require_int(value: object, name: str) -> int:
    # bool is a subclass of int, and True would otherwise format as "1 đ".
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be int, got {type(value).__name__}")
    return value


def _group_thousands(n: int) -> str:
    # Python's "," grouping is locale-independent; swap it for the Vietnamese
    # separator instead of relying on the process locale.
    return f"{n:,}".replace(",", THOUSANDS_SEPARATOR)


def format_number(n: int) -> str:
    """65902 -> "65.902"."""
    return _group_thousands(_require_int(n, "n"))


def format_vnd(amount: int, *, symbol: bool = True) -> str:
    """37876956607 -> "37.876.956.607 đ"; -1000 -> "-1.000 đ"."""
    text = _group_thousands(_require_int(amount, "amount"))
    return f"{text} {CURRENCY_SYMBOL}" if symbol else text


def share_percent(numerator: int, denominator: int) -> Decimal | None:
    """numerator/denominator as a percentage with two decimals, rounded half-up.

    Computed in integers so that very large VND totals never meet a float or a
    Decimal context precision limit. Returns None when the denominator is 0
    (no payments in the period): "no data" is not "0%".
    """
    num = _require_int(numerator, "numerator")
    den = _require_int(denominator, "denominator")
    if den == 0:
        return None
    negative = (num < 0) != (den < 0)
    num, den = abs(num), abs(den)
    # Hundredths of a percent: num * 100 (percent) * 100 (two decimals).
    hundredths, remainder = divmod(num * 10_000, den)
    if remainder * 2 >= den:  # half-up: ties go away from zero
        hundredths += 1
    if negative:
        hundredths = -hundredths
    return Decimal(hundredths).scaleb(-2)


def format_percent(value: Decimal | None) -> str:
    """Decimal("98.88") -> "98,88%"; None -> "—"."""
    if value is None:
        return EMPTY_VALUE
    if isinstance(value, float):
        raise TypeError("value must be Decimal, not float")
    rounded = Decimal(value).quantize(_TWO_PLACES, rounding=ROUND_HALF_UP)
    text = f"{rounded:,.2f}"
    # Swap separators through a placeholder: "1,234.50" -> "1.234,50".
    text = text.replace(",", "\0").replace(".", DECIMAL_SEPARATOR).replace("\0", THOUSANDS_SEPARATOR)
    return f"{text}%"


def format_date(d: _dt.date) -> str:
    """date(2024, 4, 15) -> "15/04/2024" (a datetime prints its date part)."""
    if not isinstance(d, _dt.date):
        raise TypeError(f"d must be a date, got {type(d).__name__}")
    # f-string rather than strftime: strftime does not zero-pad years < 1000
    # on every platform and depends on the C library.
    return f"{d.day:02d}/{d.month:02d}/{d.year:04d}"


# --- amount in words ---------------------------------------------------------

_DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
# Scales of the three 3-digit groups below one tỷ, most significant first.
_GROUP_SCALES = ("triệu", "nghìn", "")
_BILLION = 1_000_000_000


def _read_group(group: int, *, full: bool) -> list[str]:
    """Words for 0 < group < 1000.

    ``full`` is True for every group except the leading one of the whole
    number: those are read with their hundreds even when zero
    ("không trăm linh năm").
    """
    hundreds, rest = divmod(group, 100)
    tens, units = divmod(rest, 10)
    words: list[str] = []
    with_hundreds = full or hundreds > 0
    if with_hundreds:
        words += [_DIGITS[hundreds], "trăm"]
    if tens == 0:
        if units:
            if with_hundreds:
                words.append("linh")
            words.append(_DIGITS[units])
        return words
    if tens == 1:
        words.append("mười")
    else:
        words += [_DIGITS[tens], "mươi"]
    if units == 1:
        words.append("mốt" if tens >= 2 else "một")
    elif units == 5:
        words.append("lăm")
    elif units:
        words.append(_DIGITS[units])
    return words


def _read_below_billion(n: int, *, leading: bool) -> list[str]:
    """Words for 0 < n < 10^9 as groups of triệu / nghìn / units."""
    groups = (n // 1_000_000, n // 1000 % 1000, n % 1000)
    words: list[str] = []
    for group, scale in zip(groups, _GROUP_SCALES):
        if group == 0:
            continue  # a zero group is skipped: nobody says "không nghìn"
        words += _read_group(group, full=not leading or bool(words))
        if scale:
            words.append(scale)
    return words


def _read_number(n: int, *, leading: bool) -> list[str]:
    """Words for n > 0.

    Above 10^9 the count of tỷ is itself read as a number, so 5,003 * 10^9 is
    "năm nghìn không trăm linh ba tỷ" and 10^12 is "một nghìn tỷ" (a fixed
    scale per group would give "năm nghìn tỷ không trăm linh ba tỷ").
    """
    if n < _BILLION:
        return _read_below_billion(n, leading=leading)
    billions, rest = divmod(n, _BILLION)
    words = _read_number(billions, leading=leading) + ["tỷ"]
    if rest:
        words += _read_below_billion(rest, leading=False)
    return words


def _number_in_words(n: int) -> str:
    if n == 0:
        return _DIGITS[0]
    return " ".join(_read_number(n, leading=True))


def amount_in_words_vi(amount: int) -> str:
    """37876956607 -> "Ba mươi bảy tỷ tám trăm bảy mươi sáu triệu chín trăm năm
    mươi sáu nghìn sáu trăm linh bảy đồng".

    Negative amounts are refused: a receipt states what was paid or refunded,
    and a negative number here means a sign error upstream.
    """
    value = _require_int(amount, "amount")
    if value < 0:
        raise ValueError("amount in words is only defined for amounts >= 0")
    text = _number_in_words(value)
    return f"{text[0].upper()}{text[1:]} đồng"
