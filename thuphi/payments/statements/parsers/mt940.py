"""SWIFT MT940 statements."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace

from .common import IN, OUT, VIETNAM_TZ, AmountError, ParseResult, StatementLine, _decode, parse_amount

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
