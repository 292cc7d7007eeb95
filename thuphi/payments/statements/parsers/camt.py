"""ISO 20022 camt.053 / camt.054 statements, read with expat (no DTDs, no entities)."""
from __future__ import annotations

import datetime as dt
import re
from xml.parsers import expat

from .common import IN, OUT, VIETNAM_TZ, AmountError, ParseResult, StatementLine, parse_amount

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
