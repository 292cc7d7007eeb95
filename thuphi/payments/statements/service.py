"""Import a bank statement file: read it, book each new credit once, report every line.

Idempotency contract (docs/statements.md):
* a line with a bank reference is identified by (bank account, bank reference) — the same unique
  key as every `Credit`, so a webhook and a statement line for one transfer book once;
* a line without one is identified by a fingerprint of (account, booked date, amount, normalised
  description, how many identical lines came before it in the same file), kept on
  `StatementLineRecord` under a unique constraint, so a repeated or overlapping file books nothing
  twice.

Lines are booked in chunks, each in its own transaction: a crash leaves whole chunks booked and a
re-import completes the rest. Lines that cannot be read are reported with their line number and
write nothing.
"""
from __future__ import annotations

import hashlib
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from thuphi.core.errors import Forbidden
from thuphi.core.formatting import format_number, format_vnd
from thuphi.core.models import User
from thuphi.payments.models import Credit, CreditSource, Method
from thuphi.payments.models_statements import StatementImport, StatementLineRecord
from thuphi.payments.statements.booking import (
    CreditInput,
    RowWriter,
    credit_book_many,
    extract_with_reason,
    filter_in,
    stats_add_booked,
)
from thuphi.payments.statements.parsers import (
    IN,
    ColumnMapping,
    ParseResult,
    StatementLine,
    norm_text,
    parse_statement,
)
from thuphi.registry.models import BankAccount

log = logging.getLogger(__name__)

#: Lines per transaction. Big enough for COPY to pay off, small enough that a chunk's bill locks
#: are held for well under a second.
CHUNK = 5000
MAX_STORED_ERRORS = 1000
_RETRIES = 3


@dataclass
class ImportReport:
    import_id: int | None
    filename: str
    fmt: str
    account_number: str
    preset: str = ""
    lines_read: int = 0
    new_credits: int = 0
    duplicates: int = 0
    skipped_outgoing: int = 0
    skipped_zero: int = 0
    matched: int = 0
    unmatched: int = 0
    amount_new: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def nothing_read(self) -> bool:
        return self.lines_read == 0

    def as_text(self) -> str:
        """The report in Vietnamese, for the command line and for staff."""
        fmt = self.fmt + (f", mẫu {self.preset}" if self.preset else "")
        out = [
            f"Sao kê {self.filename or '(không tên)'} ({fmt}) – tài khoản {self.account_number}",
            f"Số dòng giao dịch đọc được: {format_number(self.lines_read)}",
            f"  Khoản tiền mới ghi sổ: {format_number(self.new_credits)} (tổng {format_vnd(self.amount_new)})",
            f"    – đã gạch nợ phiếu thu: {format_number(self.matched)}",
            f"    – chưa xác định, chờ cán bộ xử lý: {format_number(self.unmatched)}",
            f"  Đã có từ trước (trùng, không ghi lại): {format_number(self.duplicates)}",
            f"  Tiền ra, bỏ qua: {format_number(self.skipped_outgoing)}",
            f"  Số tiền bằng 0, bỏ qua: {format_number(self.skipped_zero)}",
            f"Dòng không đọc được: {format_number(len(self.errors))}",
        ]
        for line_no, message in self.errors:
            where = f"Dòng {line_no}" if line_no else "Tệp"
            out.append(f"  {where}: {message}")
        out.append(f"Thời gian: {self.seconds:.1f} giây".replace(".", ","))
        return "\n".join(out)


def _digits(account: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", account or "").upper()


def same_account(a: str, b: str) -> bool:
    """Account numbers as files write them: spaces, dashes, a BIC or IBAN prefix."""
    a, b = _digits(a), _digits(b)
    if not a or not b:
        return True
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    return len(short) >= 6 and long.endswith(short)


def fingerprint(*, account: str, line: StatementLine, occurrence: int) -> str:
    """The identity of a line without a bank reference (see the module docstring)."""
    parts = ["line", _digits(account), line.booked_at.date().isoformat(), str(line.amount), line.direction,
             norm_text(line.description), str(occurrence)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def reference_fingerprint(*, account: str, reference: str) -> str:
    """The record key of a line with a bank reference: the reference itself, readable and in the
    bank's (mostly increasing) order, so the unique index grows at its end; a hash when too long.

    Never looked up: such a line's identity is the credit's (bank account, bank reference), and the
    unique constraint on the records only repeats it. Records written before this form (a SHA-256 of
    "ref", the account and the reference) stay valid for the same reason."""
    if len(reference) <= 60:
        return "ref:" + reference
    return "ref#" + hashlib.sha256("\x1f".join(["ref", _digits(account), reference]).encode()).hexdigest()[:60]


def statement_import(*, actor: User | None, bank_account: BankAccount, file_bytes: bytes, filename: str = "",
                     fmt: str | None = None, mapping: ColumnMapping | None = None) -> ImportReport:
    """Read a statement file of `bank_account` and book every credit not booked before.

    `actor` None is the system (the `import_statement` command). Staff may import only for an
    institution they write for.
    """
    if actor is not None:
        if not actor.can_write:
            raise Forbidden(_("Tài khoản chỉ có quyền xem."), code="read_only")
        if not actor.is_system_admin and actor.institution_id != bank_account.institution_id:
            raise Forbidden(_("Tài khoản nhận tiền này không thuộc đơn vị của bạn."), code="forbidden")
    started = time.monotonic()
    parsed = parse_statement(file_bytes, filename=filename, fmt=fmt, mapping=mapping)
    preset = mapping.name if (mapping is not None and parsed.fmt in ("csv", "xlsx")) else ""
    report = ImportReport(import_id=None, filename=filename, fmt=parsed.fmt,
                          account_number=bank_account.account_number, preset=preset)
    record = StatementImport.objects.create(
        bank_account=bank_account, filename=filename[:255], fmt=parsed.fmt, preset=preset,
        file_sha256=hashlib.sha256(file_bytes).hexdigest(), created_by=actor)
    report.import_id = record.pk
    finished = False
    try:
        _run(report, parsed, bank_account=bank_account, record=record, actor=actor)
        finished = True
    finally:
        # Saved even on a failure: the chunks committed so far are real, and a re-import of the
        # same file completes the rest without booking anything twice.
        report.errors.sort(key=lambda e: e[0])
        report.seconds = time.monotonic() - started
        _save_record(record, report, finished=finished)
    return report


def _run(report: ImportReport, parsed: ParseResult, *, bank_account: BankAccount, record: StatementImport,
         actor: User | None) -> None:
    account = bank_account.account_number
    errors = report.errors
    errors.extend(parsed.errors)
    if parsed.account_number and not same_account(parsed.account_number, account):
        errors.append((0, _("Tệp là sao kê của tài khoản %(file)s, không phải tài khoản %(ours)s đang nhập: "
                            "không ghi sổ dòng nào.") % {"file": parsed.account_number, "ours": account}))
        return

    todo: list[tuple[StatementLine, str]] = []  # (line, fingerprint), new to this file
    seen_refs: set[str] = set()
    occurrences: dict[str, int] = {}
    for line in parsed.lines:
        if line.account_number and not same_account(line.account_number, account):
            errors.append((line.line_no, _("Dòng của tài khoản %(file)s, không phải tài khoản %(ours)s.")
                           % {"file": line.account_number, "ours": account}))
            continue
        report.lines_read += 1
        if line.direction != IN:
            report.skipped_outgoing += 1
            continue
        if line.amount == 0:
            report.skipped_zero += 1
            continue
        if line.bank_reference:
            if line.bank_reference in seen_refs:
                report.duplicates += 1  # the same bank transaction twice in one file
                continue
            seen_refs.add(line.bank_reference)
            todo.append((line, reference_fingerprint(account=account, reference=line.bank_reference)))
        else:
            base = fingerprint(account=account, line=line, occurrence=0)
            k = occurrences.get(base, 0)
            occurrences[base] = k + 1
            todo.append((line, base if k == 0 else fingerprint(account=account, line=line, occurrence=k)))

    created_by_id = actor.pk if actor is not None else None
    chunks = [todo[start:start + CHUNK] for start in range(0, len(todo), CHUNK)]
    # The pure work of the next chunk (its credits and the references in their descriptions) is done
    # in a helper thread while this one waits for the database on the current chunk. The helper
    # never touches the database; the chunks are still booked one after the other, in file order.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="statement-prepare") as helper:
        upcoming = helper.submit(_prepare, chunks[0]) if chunks else None
        for k, chunk in enumerate(chunks):
            items = upcoming.result()
            if k + 1 < len(chunks):
                upcoming = helper.submit(_prepare, chunks[k + 1])
            for attempt in range(_RETRIES):
                try:
                    counts = _book_chunk(chunk, items, bank_account=bank_account, record=record,
                                         created_by_id=created_by_id)
                    break
                except IntegrityError:
                    # Another import or a webhook booked one of these lines since we looked: look again.
                    if attempt == _RETRIES - 1:
                        raise
                    log.info("statement chunk %s raced another booking; retrying", k)
            report.new_credits += counts["new"]
            report.duplicates += counts["duplicates"]
            report.matched += counts["matched"]
            report.unmatched += counts["unmatched"]
            report.amount_new += counts["amount"]


def _prepare(chunk: list[tuple[StatementLine, str]]) -> list[CreditInput]:
    """The credit each line would become, with the payment references found in its description."""
    return [CreditInput(amount=ln.amount, occurred_at=ln.booked_at, description=ln.description,
                        payer_name=ln.counterparty_name[:255], bank_reference=ln.bank_reference[:128],
                        virtual_account=ln.virtual_account, references=extract_with_reason(ln.description))
            for ln, _fp in chunk]


def _book_chunk(chunk: list[tuple[StatementLine, str]], items: list[CreditInput], *, bank_account: BankAccount,
                record: StatementImport, created_by_id: int | None) -> dict[str, int]:
    with transaction.atomic():
        refs = [ln.bank_reference for ln, _fp in chunk if ln.bank_reference]
        booked_refs: set[str] = set()
        if refs:
            booked_refs = set(filter_in(Credit.objects.filter(bank_account=bank_account), "bank_reference", refs)
                              .values_list("bank_reference", flat=True))
        fps = [fp for ln, fp in chunk if not ln.bank_reference]
        booked_fps: set[str] = set()
        if fps:
            booked_fps = set(filter_in(StatementLineRecord.objects.filter(bank_account=bank_account), "fingerprint",
                                       fps).values_list("fingerprint", flat=True))
        new = [(ln, fp, it) for (ln, fp), it in zip(chunk, items, strict=True)
               if not (ln.bank_reference in booked_refs if ln.bank_reference else fp in booked_fps)]
        counts = {"new": len(new), "duplicates": len(chunk) - len(new), "matched": 0, "unmatched": 0,
                  "amount": sum(ln.amount for ln, _fp, _it in new)}
        if not new:
            return counts
        now = timezone.now()
        items = [it for _ln, _fp, it in new]
        booked = credit_book_many(bank_account=bank_account, source=CreditSource.STATEMENT, method=Method.TRANSFER,
                                  created_by_id=created_by_id, now=now, items=items)
        # The statistics move with the money, in this transaction (credit_book's stats hook, summed).
        stats_add_booked(bank_account=bank_account, method=Method.TRANSFER, items=items, booked=booked)
        records = RowWriter(StatementLineRecord, ("statement_import_id", "bank_account_id", "line_no",
                                                  "fingerprint", "credit_id"), now=now)
        import_id, account_id = record.pk, bank_account.pk
        matched = 0
        for (ln, fp, _it), b in zip(new, booked):
            records.add((import_id, account_id, ln.line_no, fp, b.credit_id))
            matched += b.status == "matched"
        records.flush()
        counts["matched"], counts["unmatched"] = matched, len(new) - matched
        return counts


def _save_record(record: StatementImport, report: ImportReport, *, finished: bool) -> None:
    record.lines_read = report.lines_read
    record.new_credits = report.new_credits
    record.duplicates = report.duplicates
    record.skipped_outgoing = report.skipped_outgoing
    record.skipped_zero = report.skipped_zero
    record.matched = report.matched
    record.unmatched = report.unmatched
    record.amount_new = report.amount_new
    record.error_count = len(report.errors)
    record.errors = [list(e) for e in report.errors[:MAX_STORED_ERRORS]]
    record.seconds = report.seconds
    record.finished = finished
    record.save()
