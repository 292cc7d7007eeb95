"""Bulk issuance: a roster (XLSX or CSV) and a fee schedule become one batch of bills, all or nothing.

1. parse (``parse_roster``, ``parse_schedule``): read the file, find the columns by their Vietnamese
   or English headers, keep every value as the spreadsheet gave it, with its row number;
2. validate every row and collect *all* problems (``ValidationFailed.details``);
3. write payers, the batch, bills and lines — in the same single transaction as everything else, so
   that a bad file never leaves half a batch behind: the first bad row stops the writing and the
   transaction is rolled back once the whole file has been checked.

Amounts and discounts come from ``services.build_lines`` (the function single bills use). The
schedule is the same for every payer and the discount depends only on the institution's rules for the
payer's category, so ``build_lines`` runs once for "no category" and once per category with rules.

On PostgreSQL (psycopg 3) payers, bills and lines are written with ``COPY ... FROM STDIN``, ids
reserved from the tables' sequences, on a background thread (``_Pipeline``) while the next chunk of
the roster is validated and rendered: Python and PostgreSQL work side by side instead of in turns.
Elsewhere the same rows go through ``bulk_create``. See docs/decisions/0006-bulk-issuance-writes.md.
"""
from __future__ import annotations

import datetime as dt
import gc
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from thuphi.billing import reference as refcode
from thuphi.billing import vietqr
# The writer, the pipeline thread and the chunk sizes live in bulk_writes.py; tests and benchmarks
# keep reaching them through this module.
from thuphi.billing.bulk_writes import (
    BILL_FIELDS,
    BILL_SHARED,
    CHUNK,
    LINE_FIELDS,
    LINE_SHARED,
    PAYER_FIELDS,
    PAYER_SHARED,
    _AT,
    _Pipeline,
    _Writer,
    _copy_text,
    _payer_copy_row,
)
from thuphi.billing.models import Bill, BillBatch, BillLine, BillStatus, DiscountRule
from thuphi.billing.roster import RosterRow, ROSTER_FIELDS, cell_text, parse_roster, parse_schedule
from thuphi.billing.services import LineInput, build_lines
from thuphi.core.errors import Conflict, Forbidden, ValidationFailed
from thuphi.core.models import User
from thuphi.registry.models import BankAccount, Institution, Payer, PayerCategory, PayerKind, Sector
from thuphi.registry.selectors import default_bank_account, institutions_visible_to

# The registry's own rules for a payer code and a phone number; a bulk import must accept exactly
# what payer_upsert accepts.
from thuphi.registry.services import CODE_RE, PHONE_RE

# parse_* and RosterRow live in roster.py; callers keep importing them from here.
__all__ = [
    "RosterRow",
    "bills_bulk_issue",
    "parse_roster",
    "parse_schedule",
]


ProgressFn = Callable[[int, int], None]


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------

# Payer columns the roster can set, with their database lengths: checked here so that PostgreSQL
# (which refuses an over-long value) and SQLite (which would store it) end up the same.
_MAX_LEN = {"name": 100, "class_name": 32, "grade": 16, "guardian_name": 100}


@dataclass(slots=True)
class _Clean:
    row: int
    code: str
    #: Payer columns given in the file (empty cells left out: they keep what the payer has).
    values: dict[str, object]
    category_id: int | None


def _as_roster_row(item: RosterRow | Mapping, index: int) -> RosterRow:
    if isinstance(item, RosterRow):
        return item
    unknown = set(item) - ROSTER_FIELDS
    if unknown:
        raise TypeError(f"unknown roster fields: {sorted(unknown)}")
    # Without a row number, count as a sheet would: the header is row 1.
    return RosterRow(**{"row": index + 2, **item})


_DMY_RE = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")
_ISO_RE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_PHONE_JUNK_RE = re.compile(r"[\s.()-]")
_INSURANCE_RE = re.compile(r"[A-Z0-9]{10,15}")
_OLDEST_BIRTH = dt.date(1900, 1, 1)


@lru_cache(maxsize=8192)
def _parse_date_text(text: str) -> dt.date | None:
    # Cached: a class list repeats the same few hundred birth dates.
    text = text.split(" ")[0].split("T")[0]  # "2014-09-05 00:00:00" from a CSV export of Excel
    m = _DMY_RE.fullmatch(text)
    if m:
        day, month, year = m.groups()
    else:
        m = _ISO_RE.fullmatch(text)
        if not m:
            return None
        year, month, day = m.groups()
    try:
        return dt.date(int(year), int(month), int(day))
    except ValueError:
        return None


def _parse_date(value: object) -> dt.date | None:
    if type(value) is str:
        return _parse_date_text(value.strip())
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return _parse_date_text(cell_text(value))


def _clean_phone(value: str) -> str:
    value = _PHONE_JUNK_RE.sub("", value)
    return "0" + value[3:] if value.startswith("+84") else value


def _check_row(r: RosterRow, *, categories: dict[str, int], today: dt.date, first_row_of: dict[str, int],
               errors: list[dict]) -> _Clean:
    """The payer columns of one row, cleaned; each problem is appended to `errors`, in column order.

    Runs once per row of rosters of 100,000 lines, hence the direct attribute reads and `cell_text`
    inlined for the usual case of a string cell.
    """
    row = r.row

    def fail(field: str, message: str) -> None:
        errors.append({"row": row, "field": field, "message": message})

    code, name = r.code, r.name
    code = code.strip() if type(code) is str else cell_text(code)
    name = " ".join((name if type(name) is str else cell_text(name)).split())
    if not code:
        fail("code", _("Thiếu mã người nộp."))
    elif not CODE_RE.match(code):
        fail("code", _("Mã “%(c)s” không hợp lệ: chỉ gồm chữ, số, “_”, “.”, “-”, tối đa 32 ký tự.") % {"c": code})
    elif code in first_row_of:
        fail("code", _("Mã “%(c)s” trùng với dòng %(n)d.") % {"c": code, "n": first_row_of[code]})
    else:
        first_row_of[code] = row
    if not name:
        fail("name", _("Thiếu họ tên."))

    values: dict[str, object] = {"name": name}
    class_name, grade, guardian_name = r.class_name, r.grade, r.guardian_name
    class_name = class_name.strip() if type(class_name) is str else cell_text(class_name)
    grade = grade.strip() if type(grade) is str else cell_text(grade)
    guardian_name = guardian_name.strip() if type(guardian_name) is str else cell_text(guardian_name)
    if class_name:
        values["class_name"] = class_name
    if grade:
        values["grade"] = grade
    if guardian_name:
        values["guardian_name"] = guardian_name
    for field, text in (("name", name), ("class_name", class_name), ("grade", grade),
                        ("guardian_name", guardian_name)):
        if len(text) > _MAX_LEN[field]:
            fail(field, _("Dài quá %(n)d ký tự.") % {"n": _MAX_LEN[field]})
    for field, raw in (("phone", r.phone), ("guardian_phone", r.guardian_phone)):
        raw = raw.strip() if type(raw) is str else cell_text(raw)
        if raw:
            phone = raw if PHONE_RE.match(raw) else _clean_phone(raw)
            if not PHONE_RE.match(phone):
                fail(field, _("Số điện thoại “%(p)s” không hợp lệ: cần 10–11 chữ số, bắt đầu bằng 0.") % {"p": raw})
            values[field] = phone
    born = r.date_of_birth
    if born is not None and born != "":
        born = _parse_date(born)
        if born is None:
            fail("date_of_birth", _("Ngày sinh “%(d)s” không đúng dạng dd/mm/yyyy.") % {"d": cell_text(r.date_of_birth)})
        elif not _OLDEST_BIRTH <= born <= today:
            fail("date_of_birth", _("Ngày sinh %(d)s không hợp lý.") % {"d": born.strftime("%d/%m/%Y")})
        else:
            values["date_of_birth"] = born
    insurance = r.insurance_number
    insurance = insurance.strip() if type(insurance) is str else cell_text(insurance)
    if insurance:
        insurance = "".join(insurance.split()).upper()
        if not _INSURANCE_RE.fullmatch(insurance):
            fail("insurance_number", _("Số thẻ BHYT “%(s)s” không hợp lệ: 10–15 chữ và số.") % {"s": insurance})
        values["insurance_number"] = insurance
    category_id = None
    category = r.category
    category = category.strip() if type(category) is str else cell_text(category)
    if category:
        category_id = categories.get(category.casefold())
        if category_id is None:
            fail("category", _("Đối tượng “%(c)s” không có trong danh mục của đơn vị.") % {"c": category})
        values["category_id"] = category_id
    return _Clean(row, code, values, category_id)


def _validate_rows(
    *, rows: list[RosterRow], today: dt.date, categories: dict[str, int], first_row_of: dict[str, int],
    errors: list[dict],
) -> list[_Clean]:
    """`rows` cleaned; their problems appended to `errors`. Called chunk by chunk with the same
    `first_row_of` (code -> first row), so that a code repeated anywhere in the file is reported."""
    return [_check_row(r, categories=categories, today=today, first_row_of=first_row_of, errors=errors)
            for r in rows]


# ---------------------------------------------------------------------------
# References
# ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _pair_tables() -> tuple[list[str], tuple[list[int], ...]]:
    """For the four symbol pairs of a reference body: the pair's text and its share of the check symbol.

    The check symbol is a sum over GF(32) of each body symbol times a fixed weight (reference.py),
    i.e. linear under XOR; so a body's check value is the XOR of the check values of the bodies that
    are zero except for one pair. Those are read from ``reference.check_char`` itself, so the two
    cannot disagree (and the tests compare them on random bodies besides).
    """
    alphabet, zero = refcode.ALPHABET, refcode.ALPHABET[0]
    if refcode.BODY_LEN != 8 or len(alphabet) != 32:
        raise RuntimeError("the reference format changed: update _pair_tables")
    texts = [alphabet[a] + alphabet[b] for a in range(32) for b in range(32)]
    sums = tuple([alphabet.index(refcode.check_char(zero * (2 * k) + t + zero * (6 - 2 * k))) for t in texts]
                 for k in range(4))
    return texts, sums


def _fresh_references(n: int) -> list[str]:
    """`n` random references (secrets), drawn as ``reference.generate()`` draws them, about 4× faster.

    Same rules: 40 random bits for the 8 body symbols, the GF(32) check symbol, and no "TP" after the
    prefix. Not checked for uniqueness here.
    """
    texts, (s0, s1, s2, s3) = _pair_tables()
    alphabet, prefix = refcode.ALPHABET, refcode.PREFIX
    out: list[str] = []
    while len(out) < n:
        need = n - len(out)
        data = secrets.token_bytes(5 * need)
        for i in range(0, 5 * need, 5):
            bits = int.from_bytes(data[i:i + 5], "big")
            a, b, c, d = bits >> 30, (bits >> 20) & 1023, (bits >> 10) & 1023, bits & 1023
            ref = f"{prefix}{texts[a]}{texts[b]}{texts[c]}{texts[d]}{alphabet[s0[a] ^ s1[b] ^ s2[c] ^ s3[d]]}"
            if prefix not in ref[2:]:
                out.append(ref)
    return out


# ---------------------------------------------------------------------------
# Writing (the writer and the pipeline thread are in bulk_writes.py)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Template:
    """The lines and sums one category of payer gets from the schedule."""

    lines: tuple[tuple, ...]  # in LINE_SHARED order
    gross: int
    discount: int


def _templates(*, institution: Institution, schedule: list[LineInput], category_ids: set[int | None]
               ) -> dict[int | None, _Template]:
    out = {}
    for category_id in category_ids:
        stand_in = Payer(institution=institution, category_id=category_id)
        lines, gross, discount = build_lines(institution=institution, payer=stand_in, items=schedule)
        out[category_id] = _Template(
            lines=tuple((ln.fee_item_id, ln.name, str(ln.kind), ln.amount, ln.discount, ln.position) for ln in lines),
            gross=gross, discount=discount,
        )
    return out


class _References:
    """Fresh references for one batch, handed out chunk by chunk.

    Distinct among themselves (40 random bits: two alike in a batch of 100,000 about once in 200
    batches) and from every issued bill. The unique index on the reference is the guarantee; the
    check against issued bills makes a clash (likely once a province holds millions of bills) cost a
    redraw instead of a failed batch.
    """

    def __init__(self, writer: _Writer) -> None:
        self.writer = writer
        self.drawn: set[str] = set()  # every reference drawn for this batch, kept or not

    def take(self, n: int) -> list[str]:
        out: list[str] = []
        while len(out) < n:
            fresh = [ref for ref in dict.fromkeys(_fresh_references(n - len(out))) if ref not in self.drawn]
            self.drawn.update(fresh)
            taken = self.writer.taken_references(fresh)
            out.extend(ref for ref in fresh if ref not in taken)
        return out


@dataclass
class _Lookups:
    """What the database must tell before one chunk of rows is written."""

    existing: dict[str, tuple]  # payers on file, by code (`_PAYER_READ` columns)
    new_payer_ids: list[int] | None  # reserved for the payers to create (COPY path)
    references: list[str]
    bill_ids: list[int] | None  # reserved (COPY path)


def _lookups(*, writer: _Writer, institution: Institution, codes: list[str], references: _References) -> _Lookups:
    """For one chunk: its payers on file, its references, and ids reserved for its new rows.

    Runs on the pipeline's thread, queued ahead of the previous chunk's COPYs (see bills_bulk_issue).
    """
    distinct = list(dict.fromkeys(codes))
    existing = writer.existing_payers(institution=institution, codes=distinct)
    # If the file is good, its codes are distinct and these are exactly the payers to create; if it
    # is not, nothing is written and the reserved ids are simply never used.
    new_payer_ids = writer.reserve_ids(Payer, sum(1 for code in distinct if code not in existing))
    return _Lookups(existing=existing, new_payer_ids=new_payer_ids, references=references.take(len(codes)),
                    bill_ids=writer.reserve_ids(Bill, len(codes)))


class _Issue:
    """Writes one batch chunk by chunk, as the rows are validated: payers, bills, lines.

    What every bill of one template shares (the batch-wide columns, the amounts, the lines, the QR
    up to its purpose) is prepared once per template; per bill only its id, payer, reference and the
    QR's last field and CRC are produced. On the COPY path each chunk becomes three COPY statements
    queued on the pipeline; elsewhere bulk_create runs at once.
    """

    def __init__(self, *, writer: _Writer, pipe: _Pipeline, institution: Institution, bank_account: BankAccount,
                 batch: BillBatch, actor: User | None, templates: dict[int | None, _Template],
                 issue_date: dt.date, due_date: dt.date, now: dt.datetime, total: int,
                 progress: ProgressFn | None) -> None:
        self.writer, self.pipe, self.progress = writer, pipe, progress
        self.templates = templates
        self.done = 0  # bills the database has stored (for progress)
        self.total = total
        self.amount_total = 0
        self.changed: list[tuple[tuple, dict]] = []  # (payer on file, what the file changes)
        self.payer_kind = PayerKind.PATIENT.value if institution.sector == Sector.HEALTH else PayerKind.STUDENT.value
        actor_id = actor.pk if actor is not None else None
        self.payer_common = (institution.pk, self.payer_kind, now)
        # Per template: BILL_SHARED values, and reference -> QR payload (what services.qr_payload_for
        # gives; a zero amount gets a static QR).
        self.bill_common: dict[int | None, tuple] = {}
        self.qr: dict[int | None, Callable[[str], str]] = {}
        for key, tpl in templates.items():
            due = tpl.gross - tpl.discount
            status = BillStatus.PAID.value if due == 0 else BillStatus.UNPAID.value
            self.bill_common[key] = (institution.pk, bank_account.pk, batch.name, status, issue_date, due_date,
                                     tpl.gross, tpl.discount, due, 0, batch.pk, "", None, actor_id, now, now)
            self.qr[key] = vietqr.payload_builder(bank_bin=bank_account.bank_bin,
                                                  account_number=bank_account.account_number, amount=due or None)
        if writer.copy:
            self.payer_statement, extra = writer.copy_statement(Payer, PAYER_FIELDS + PAYER_SHARED, now=now)
            self.payer_tail = "".join("\t" + _copy_text(v) for v in self.payer_common) + extra + "\n"
            self.bill_statement, extra = writer.copy_statement(Bill, BILL_FIELDS + BILL_SHARED, now=now)
            # Row text after the per-bill columns, and a bill's line rows as the pieces its id joins.
            self.bill_tail = {key: "".join("\t" + _copy_text(v) for v in values) + extra + "\n"
                              for key, values in self.bill_common.items()}
            self.line_statement, extra = writer.copy_statement(BillLine, LINE_FIELDS + LINE_SHARED, now=now)
            self.line_parts = {key: [""] + ["".join("\t" + _copy_text(v) for v in line) + extra + "\n"
                                            for line in tpl.lines]
                               for key, tpl in templates.items()}

    def _template_key(self, category_id: int | None) -> int | None:
        # A category without discount rules gets exactly the lines of no category.
        return category_id if category_id in self.templates else None

    def _stored(self, n: int) -> Callable[[], None]:
        def report() -> None:
            self.done += n
            if self.progress is not None:
                self.progress(self.done, self.total)
        return report

    def write(self, cleaned: list[_Clean], lookups: _Lookups) -> None:
        """Queue (or write) the payers, bills and lines of one validated chunk."""
        payer_rows: list[tuple] = []
        bills: list[tuple[int | None, str, int | None]] = []  # (payer id, reference, template key)
        existing, references = lookups.existing, lookups.references
        new_payer_ids = iter(lookups.new_payer_ids or ())
        for c in cleaned:
            current = existing.get(c.code)
            values = c.values
            if current is None:
                pk = next(new_payer_ids, None)
                payer_rows.append((pk, c.code, values["name"], values.get("phone", ""), values.get("category_id"),
                                   values.get("class_name", ""), values.get("grade", ""),
                                   values.get("guardian_name", ""), values.get("guardian_phone", ""),
                                   values.get("date_of_birth"), values.get("insurance_number", "")))
                category_id = c.category_id
            else:
                pk = current[0]
                diff = {f: v for f, v in values.items() if current[_AT[f]] != v}
                if diff:
                    self.changed.append((current, diff))
                category_id = c.category_id if "category_id" in values else current[_AT["category_id"]]
            bills.append((pk, references[len(bills)], self._template_key(category_id)))
        for _pk, _ref, key in bills:
            tpl = self.templates[key]
            self.amount_total += tpl.gross - tpl.discount

        if not self.writer.copy:
            if payer_rows:
                ids = iter(self.writer.create(Payer, PAYER_FIELDS[1:] + PAYER_SHARED,
                                              (row[1:] + self.payer_common for row in payer_rows)))
                bills = [(next(ids) if pk is None else pk, ref, key) for pk, ref, key in bills]
            bill_ids = self.writer.create(Bill, BILL_FIELDS[1:] + BILL_SHARED, (
                (pk, ref, self.qr[key](ref)) + self.bill_common[key] for pk, ref, key in bills))
            self.writer.create(BillLine, LINE_FIELDS + LINE_SHARED, (
                (bill_id,) + line for bill_id, (_pk, _ref, key) in zip(bill_ids, bills)
                for line in self.templates[key].lines))
            self._stored(len(bills))()
            return

        if any(pk is None for pk, _ref, _key in bills):
            raise RuntimeError("more new payers than reserved ids")
        pipe, writer = self.pipe, self.writer
        if payer_rows:
            tail = self.payer_tail
            pipe.submit(writer.copy_in, self.payer_statement, "".join([_payer_copy_row(row) + tail
                                                                        for row in payer_rows]))
        # Every per-bill value is safe as it stands: ints, and references and QR payloads are
        # printable ASCII without tabs or backslashes, so nothing needs escaping.
        qr, bill_tail, line_parts = self.qr, self.bill_tail, self.line_parts
        bill_text, line_text = [], []
        for bill_id, (pk, ref, key) in zip(lookups.bill_ids, bills):
            bill_text.append(f"{bill_id}\t{pk}\t{ref}\t{qr[key](ref)}{bill_tail[key]}")
            line_text.append(str(bill_id).join(line_parts[key]))
        pipe.submit(writer.copy_in, self.bill_statement, "".join(bill_text))
        pipe.submit(writer.copy_in, self.line_statement, "".join(line_text), on_done=self._stored(len(bills)))

    def update_payers(self) -> None:
        """What the file changed in payers already on file (ORM; the pipeline must be idle)."""
        if not self.changed:
            return
        # bulk_update writes every listed field of every object, so each carries its full state.
        update_fields = sorted({f for _current, diff in self.changed for f in diff})
        Payer.objects.bulk_update(
            [Payer(pk=current[0], **{f: diff[f] if f in diff else current[_AT[f]] for f in update_fields})
             for current, diff in self.changed],
            fields=update_fields,
            batch_size=500,
        )


@contextmanager
def _gc_paused():
    """No cyclic garbage collection while a roster is in memory.

    Issuing 100,000 bills creates a few million objects and no reference cycles; the collector's
    full passes over them cost about a fifth of the Python time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _authorize(*, actor: User | None, institution: Institution) -> None:
    if actor is None:
        return
    if not actor.can_write:
        raise Forbidden(_("Tài khoản chỉ có quyền xem."), code="read_only")
    if not institutions_visible_to(user=actor).filter(pk=institution.pk).exists():
        raise Forbidden(_("Tài khoản không thuộc đơn vị này."), code="forbidden")


def bills_bulk_issue(
    *,
    actor: User | None,
    institution: Institution,
    rows: Iterable[RosterRow | Mapping],
    schedule: list[LineInput],
    due_date: dt.date,
    batch_name: str,
    source_filename: str = "",
    progress: ProgressFn | None = None,
) -> BillBatch:
    """Issue one bill per roster row, each with every schedule line, as one batch: all or nothing.

    Every row is validated; if any is bad, ValidationFailed carries one {"row", "field", "message"}
    per problem and nothing is left written. Payers are created or updated by code. Each bill gets a
    fresh reference and the dynamic VietQR for its amount due. `progress(done, total)` is called as
    bills are written.

    Everything happens in one transaction. On PostgreSQL the rows are written while the file is still
    being checked (chunk by chunk, COPY on a background thread); the first bad row stops the writing,
    the rest of the file is still checked so that every problem is reported, and the transaction is
    rolled back.
    """
    _authorize(actor=actor, institution=institution)
    batch_name = " ".join((batch_name or "").split())
    if not batch_name:
        raise ValidationFailed(_("Cần đặt tên cho đợt thu."), code="batch_name_required")
    if len(batch_name) > 200:
        raise ValidationFailed(_("Tên đợt thu dài quá 200 ký tự."), code="batch_name_too_long")
    issue_date = timezone.localdate()
    if due_date < issue_date:
        raise ValidationFailed(_("Hạn nộp không được trước ngày lập phiếu."), code="due_before_issue")
    bank_account = default_bank_account(institution=institution)
    if bank_account is None:
        raise ValidationFailed(_("Đơn vị chưa có tài khoản nhận tiền mặc định."), code="no_bank_account")
    roster = [_as_roster_row(item, i) for i, item in enumerate(rows)]
    if not roster:
        raise ValidationFailed(_("Danh sách không có người nộp nào."), code="empty_roster")

    try:
        with transaction.atomic(), _gc_paused():
            writer = _Writer()
            # Everything the ORM must read or write before the pipeline owns the connection.
            categories = {c.code.casefold(): c.pk for c in PayerCategory.objects.filter(institution=institution)}
            schedule_error = None
            try:
                # The lines depend on the payer's category only through the institution's discount
                # rules: one template for no category, one per category that has rules.
                templates = _templates(institution=institution, schedule=schedule, category_ids={None} | set(
                    DiscountRule.objects.filter(institution=institution).values_list("category_id", flat=True)))
            except ValidationFailed as exc:
                templates, schedule_error = {}, exc  # reported after the rows' own problems
            batch = BillBatch.objects.create(
                institution=institution, name=batch_name, source_filename=(source_filename or "")[:255],
                bill_count=len(roster), amount_total=0, created_by=actor,
            )
            now = timezone.now()
            errors: list[dict] = []
            first_row_of: dict[str, int] = {}
            codes = [cell_text(r.code) for r in roster]
            references = _References(writer)
            with _Pipeline(threaded=writer.copy) as pipe:
                issue = _Issue(writer=writer, pipe=pipe, institution=institution, bank_account=bank_account,
                               batch=batch, actor=actor, templates=templates, issue_date=issue_date,
                               due_date=due_date, now=now, total=len(roster), progress=progress)

                def look_up(start: int) -> Future:
                    return pipe.submit(_lookups, writer=writer, institution=institution,
                                       codes=codes[start:start + CHUNK], references=references)

                # Queue order on the pipeline: look-ups(k+1) go in before COPY(k), so that while
                # Python checks and renders chunk k+1, PostgreSQL stores chunk k; waiting for
                # look-ups(k+1) also waits for COPY(k-1), which bounds how far Python runs ahead.
                lookups = look_up(0) if not schedule_error else None
                for start in range(0, len(roster), CHUNK):
                    following = None
                    if not (errors or schedule_error) and start + CHUNK < len(roster):
                        following = look_up(start + CHUNK)
                    cleaned = _validate_rows(rows=roster[start:start + CHUNK], today=issue_date,
                                             categories=categories, first_row_of=first_row_of, errors=errors)
                    if not (errors or schedule_error):
                        # The first bad row stops the writing; the rest is still checked.
                        issue.write(cleaned, pipe.result(lookups))
                    lookups = following
                if errors:
                    raise ValidationFailed(
                        _("Danh sách có %(n)d lỗi; chưa lập phiếu thu nào.") % {"n": len(errors)},
                        code="roster_invalid", details=errors,
                    )
                if schedule_error:
                    raise schedule_error
                pipe.drain()
            # The pipeline is done: the ORM has the connection again.
            issue.update_payers()
            batch.amount_total = issue.amount_total
            batch.save(update_fields=["amount_total"])
    except IntegrityError as exc:
        # A concurrent import took a payer code or a reference between our checks and the write.
        raise Conflict(_("Dữ liệu vừa bị thay đổi bởi một thao tác khác; chưa lập phiếu thu nào, hãy thử lại."),
                       code="bulk_conflict") from exc
    return batch
