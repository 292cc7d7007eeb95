"""Bulk issuance: a roster (XLSX or CSV) and a fee schedule become one batch of bills, all or nothing.

Three steps, in this order, so that a bad file never leaves half a batch behind:

1. parse (``parse_roster``, ``parse_schedule``): read the file, find the columns by their Vietnamese
   or English headers, keep every value as the spreadsheet gave it, with its row number;
2. validate every row and collect *all* problems (``ValidationFailed.details``), before any write;
3. write in one transaction: payers, the batch, bills, lines.

Amounts and discounts come from ``services.build_lines`` (the function single bills use). The
schedule is the same for every payer and the discount depends only on the payer's category, so
``build_lines`` runs once per category present in the roster, not once per payer.

On PostgreSQL (psycopg 3) payers, bills and lines are written with ``COPY ... FROM STDIN`` and ids
reserved from the table's sequence; elsewhere with ``bulk_create``. Both paths write the same
tuples, built by the same code.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from django.db import IntegrityError, connection, transaction
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext as _

from thuphi.billing import reference as refcode
from thuphi.billing.models import Bill, BillBatch, BillLine, BillStatus
from thuphi.billing.roster import RosterRow, ROSTER_FIELDS, cell_text, parse_roster, parse_schedule
from thuphi.billing.services import LineInput, build_lines, qr_payload_for
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

#: Bills per COPY statement or bulk_create call: large enough that per-statement overhead vanishes,
#: small enough that the progress bar moves.
CHUNK = 5000
#: Rows per write to a COPY stream: the server stores one block while the next is built.
COPY_BLOCK = 500
#: Codes per `IN (...)` lookup (SQLite allows 32,766 parameters).
LOOKUP_CHUNK = 2000

ProgressFn = Callable[[int, int], None]


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------

# Payer columns the roster can set, with their database lengths: checked here so that PostgreSQL
# (which refuses an over-long value) and SQLite (which would store it) end up the same.
_MAX_LEN = {"name": 100, "class_name": 32, "grade": 16, "guardian_name": 100}


@dataclass
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
    """The payer columns of one row, cleaned; each problem is appended to `errors`.

    Runs once per row of rosters of 100,000 lines, hence the direct attribute reads.
    """
    row = r.row

    def fail(field: str, message: str) -> None:
        errors.append({"row": row, "field": field, "message": message})

    code = cell_text(r.code)
    name = " ".join(cell_text(r.name).split())
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
    for field, value in (("class_name", r.class_name), ("grade", r.grade), ("guardian_name", r.guardian_name)):
        text = cell_text(value)
        if text:
            values[field] = text
    for field, limit in _MAX_LEN.items():
        if len(values.get(field, "")) > limit:
            fail(field, _("Dài quá %(n)d ký tự.") % {"n": limit})
    for field, value in (("phone", r.phone), ("guardian_phone", r.guardian_phone)):
        raw = cell_text(value)
        if raw:
            phone = raw if PHONE_RE.match(raw) else _clean_phone(raw)
            if not PHONE_RE.match(phone):
                fail(field, _("Số điện thoại “%(p)s” không hợp lệ: cần 10–11 chữ số, bắt đầu bằng 0.") % {"p": raw})
            values[field] = phone
    if r.date_of_birth is not None and r.date_of_birth != "":
        born = _parse_date(r.date_of_birth)
        if born is None:
            fail("date_of_birth", _("Ngày sinh “%(d)s” không đúng dạng dd/mm/yyyy.") % {"d": cell_text(r.date_of_birth)})
        elif not _OLDEST_BIRTH <= born <= today:
            fail("date_of_birth", _("Ngày sinh %(d)s không hợp lý.") % {"d": born.strftime("%d/%m/%Y")})
        else:
            values["date_of_birth"] = born
    insurance = cell_text(r.insurance_number)
    if insurance:
        insurance = "".join(insurance.split()).upper()
        if not _INSURANCE_RE.fullmatch(insurance):
            fail("insurance_number", _("Số thẻ BHYT “%(s)s” không hợp lệ: 10–15 chữ và số.") % {"s": insurance})
        values["insurance_number"] = insurance
    category_id = None
    category = cell_text(r.category)
    if category:
        category_id = categories.get(category.casefold())
        if category_id is None:
            fail("category", _("Đối tượng “%(c)s” không có trong danh mục của đơn vị.") % {"c": category})
        values["category_id"] = category_id
    return _Clean(row=row, code=code, values=values, category_id=category_id)


def _validate_rows(
    *, institution: Institution, rows: list[RosterRow], today: dt.date
) -> tuple[list[_Clean], list[dict]]:
    categories = {c.code.casefold(): c.pk for c in PayerCategory.objects.filter(institution=institution)}
    errors: list[dict] = []
    first_row_of: dict[str, int] = {}
    cleaned = [_check_row(r, categories=categories, today=today, first_row_of=first_row_of, errors=errors)
               for r in rows]
    return cleaned, errors


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------

# Columns written per row, and columns many rows share (see _Writer).
PAYER_FIELDS = ("id", "code", "name", "phone", "category_id", "class_name", "grade", "guardian_name",
                "guardian_phone", "date_of_birth", "insurance_number")
PAYER_SHARED = ("institution_id", "kind", "created_at")
BILL_FIELDS = ("id", "payer_id", "reference", "qr_payload")
BILL_SHARED = ("institution_id", "bank_account_id", "title", "status", "issue_date", "due_date", "amount_gross",
               "amount_discount", "amount_due", "amount_paid", "batch_id", "cancel_reason", "cancelled_at",
               "created_by_id", "created_at", "updated_at")
LINE_FIELDS = ("bill_id",)
LINE_SHARED = ("fee_item_id", "name", "kind", "amount", "discount", "position")
_PAYER_UPDATABLE = ("name", "phone", "category_id", "class_name", "grade", "guardian_name", "guardian_phone",
                    "date_of_birth", "insurance_number")


def _chunks(seq: list, size: int) -> Iterable[list]:
    for start in range(0, len(seq), size):
        yield seq[start:start + size]


_COPY_SPECIAL_RE = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: object) -> str:
    """One value in COPY's text format (NULL is \\N; backslash, tab and newlines escaped)."""
    kind = type(value)
    if kind is str:  # the common case first: this runs for every value of every payer row
        return value.translate(_COPY_ESCAPES) if _COPY_SPECIAL_RE.search(value) else value
    if kind is int:
        return str(value)
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        value = json.dumps(value)
    text = str(value)  # a TextChoices member prints as its value
    return text.translate(_COPY_ESCAPES) if _COPY_SPECIAL_RE.search(text) else text


class _Writer:
    """Inserts rows: COPY on PostgreSQL with psycopg 3, bulk_create anywhere else.

    A row is `values` (in the order of `fields`) plus, optionally, a `shared` tuple (in the order
    of `shared_fields`) that many rows have in common: the batch-wide columns of a bill, the
    lines of a category's template. COPY renders each distinct shared tuple once; that and
    writing text in blocks is most of what separates this from a plain COPY.
    """

    def __init__(self) -> None:
        from django.db.backends.postgresql.psycopg_any import is_psycopg3

        self.postgres = connection.vendor == "postgresql"
        self.copy = self.postgres and is_psycopg3

    def matching(self, qs: QuerySet, field: str, values: list) -> Iterable[QuerySet]:
        """`qs` narrowed to rows whose `field` is in `values`, as one or more querysets."""
        if self.postgres:
            # One array parameter: thousands of IN placeholders cost more to build than to run.
            meta = qs.model._meta
            column = f"{connection.ops.quote_name(meta.db_table)}.{connection.ops.quote_name(meta.get_field(field).column)}"
            yield qs.filter(RawSQL(f"{column} = ANY(%s)", (list(values),), output_field=BooleanField()))
            return
        for chunk in _chunks(values, LOOKUP_CHUNK):
            yield qs.filter(**{f"{field}__in": chunk})

    def reserve_ids(self, model, n: int) -> list[int] | None:
        """Ids from the table's own sequence, so that COPY can write the ids other rows point to."""
        if not self.copy or n == 0:
            return None
        table, pk = model._meta.db_table, model._meta.pk.column
        with connection.cursor() as cur:
            cur.execute("SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                        [table, pk, n])
            return [row[0] for row in cur.fetchall()]

    def insert(self, model, fields: tuple[str, ...], shared_fields: tuple[str, ...],
               rows: Iterable[tuple[tuple, tuple]]) -> list[int] | None:
        """Insert (values, shared) pairs; return the new ids in order (None for COPY: ids were reserved).

        `rows` may be a generator: COPY consumes it while sending, so building the next rows
        overlaps with the server storing the previous ones.
        """
        if self.copy:
            self._copy(model, fields + shared_fields, rows)
            return None
        all_fields = fields + shared_fields
        objs = [model(**dict(zip(all_fields, values + common))) for values, common in rows]
        model.objects.bulk_create(objs, batch_size=CHUNK)
        return [o.pk for o in objs]

    def _copy(self, model, fields: tuple[str, ...], rows: Iterable[tuple[tuple, tuple]]) -> None:
        from psycopg import sql

        meta = model._meta
        column_of = {f.attname: f.column for f in meta.concrete_fields}
        columns = [column_of[f] for f in fields]
        # Columns this module does not know about (added to the model later) get the model's
        # default, as bulk_create would give them: Django defaults are not database defaults, so
        # leaving them out of COPY would write NULL.
        extra = [f for f in meta.concrete_fields if f.attname not in fields and not f.primary_key]
        now = timezone.now()
        tail = "".join(
            "\t" + _copy_text(now if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
                              else f.get_default())
            for f in extra) + "\n"
        columns += [f.column for f in extra]
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(meta.db_table), sql.SQL(", ").join(map(sql.Identifier, columns)))
        rendered: dict[int, str] = {}
        # Django does not wrap errors raised through the raw psycopg cursor; this turns a unique
        # violation into django.db.IntegrityError like every other write.
        with connection.wrap_database_errors, connection.cursor() as cur:
            with cur.cursor.copy(statement) as copy:
                block: list[str] = []
                for values, common in rows:
                    common_text = rendered.get(id(common))
                    if common_text is None:
                        common_text = rendered[id(common)] = "".join("\t" + _copy_text(v) for v in common) + tail
                    block.append("\t".join(map(_copy_text, values)) + common_text)
                    if len(block) == COPY_BLOCK:
                        copy.write("".join(block))
                        block.clear()
                if block:
                    copy.write("".join(block))


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


def _allocate_references(*, writer: _Writer, n: int) -> list[str]:
    """`n` fresh references, distinct among themselves and from every issued bill."""
    refs: set[str] = set()
    to_check: list[str] = []
    while True:
        while len(refs) < n:
            ref = refcode.generate()
            if ref not in refs:
                refs.add(ref)
                to_check.append(ref)
        taken: set[str] = set()
        for qs in writer.matching(Bill.objects.all(), "reference", to_check):
            taken.update(qs.values_list("reference", flat=True))
        if not taken:
            return list(refs)
        refs -= taken
        to_check = []


def _existing_payers(*, writer: _Writer, institution: Institution, codes: list[str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    columns = ("id", "code", *_PAYER_UPDATABLE)
    for qs in writer.matching(Payer.objects.filter(institution=institution), "code", codes):
        for values in qs.values_list(*columns):
            out[values[1]] = dict(zip(columns, values))
    return out


def _upsert_payers(*, writer: _Writer, institution: Institution, cleaned: list[_Clean],
                   existing: dict[str, dict], now: dt.datetime) -> dict[str, int]:
    """Payer ids by code, after creating the new payers and updating what the file changed."""
    kind = PayerKind.PATIENT.value if institution.sector == Sector.HEALTH else PayerKind.STUDENT.value
    ids = {code: p["id"] for code, p in existing.items()}
    new = [c for c in cleaned if c.code not in existing]
    reserved = writer.reserve_ids(Payer, len(new))
    rows = []
    for i, c in enumerate(new):
        v = c.values
        rows.append((reserved[i] if reserved else None, c.code, v["name"], v.get("phone", ""), v.get("category_id"),
                     v.get("class_name", ""), v.get("grade", ""), v.get("guardian_name", ""),
                     v.get("guardian_phone", ""), v.get("date_of_birth"), v.get("insurance_number", "")))
    common = (institution.pk, kind, now)
    created = writer.insert(Payer, PAYER_FIELDS, PAYER_SHARED, ((row, common) for row in rows))
    for c, pk in zip(new, created or reserved or []):
        ids[c.code] = pk

    changed_objs, changed_fields = [], set()
    for c in cleaned:
        current = existing.get(c.code)
        if current is None:
            continue
        diff = {f: v for f, v in c.values.items() if current[f] != v}
        if diff:
            changed_fields.update(diff)
            changed_objs.append({**current, **diff})
    if changed_objs:
        # bulk_update writes every listed field of every object, so each carries its full state.
        update_fields = sorted(changed_fields)
        Payer.objects.bulk_update(
            [Payer(pk=p["id"], **{f: p[f] for f in update_fields}) for p in changed_objs],
            fields=update_fields,
            batch_size=500,
        )
    return ids


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

    Every row is validated first; if any is bad, ValidationFailed carries one
    {"row", "field", "message"} per problem and nothing is written. Payers are created or updated by
    code. Each bill gets a fresh reference and the dynamic VietQR for its amount due.
    `progress(done, total)` is called as bills are written.
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
        with transaction.atomic():
            cleaned, errors = _validate_rows(institution=institution, rows=roster, today=issue_date)
            if errors:
                raise ValidationFailed(
                    _("Danh sách có %(n)d lỗi; chưa lập phiếu thu nào.") % {"n": len(errors)},
                    code="roster_invalid", details=errors,
                )
            writer = _Writer()
            existing = _existing_payers(writer=writer, institution=institution, codes=[c.code for c in cleaned])
            category_of = {
                c.code: c.category_id if "category_id" in c.values
                else existing.get(c.code, {}).get("category_id")
                for c in cleaned
            }
            templates = _templates(institution=institution, schedule=schedule,
                                   category_ids=set(category_of.values()))
            references = _allocate_references(writer=writer, n=len(cleaned))
            # Nothing has been written up to here.
            now = timezone.now()
            payer_ids = _upsert_payers(writer=writer, institution=institution, cleaned=cleaned,
                                       existing=existing, now=now)
            total_due = sum(templates[category_of[c.code]].gross - templates[category_of[c.code]].discount
                            for c in cleaned)
            batch = BillBatch.objects.create(
                institution=institution, name=batch_name, source_filename=(source_filename or "")[:255],
                bill_count=len(cleaned), amount_total=total_due, created_by=actor,
            )
            _write_bills(
                writer=writer, institution=institution, bank_account=bank_account, batch=batch, actor=actor,
                payers=[(payer_ids[c.code], templates[category_of[c.code]]) for c in cleaned],
                references=references, issue_date=issue_date, due_date=due_date, now=now, progress=progress,
            )
    except IntegrityError as exc:
        # A concurrent import took a payer code or a reference between our checks and the write.
        raise Conflict(_("Dữ liệu vừa bị thay đổi bởi một thao tác khác; chưa lập phiếu thu nào, hãy thử lại."),
                       code="bulk_conflict") from exc
    return batch


def _write_bills(
    *,
    writer: _Writer,
    institution: Institution,
    bank_account: BankAccount,
    batch: BillBatch,
    actor: User | None,
    payers: list[tuple[int, _Template]],
    references: list[str],
    issue_date: dt.date,
    due_date: dt.date,
    now: dt.datetime,
    progress: ProgressFn | None,
) -> None:
    total = len(payers)
    actor_id = actor.pk if actor is not None else None
    # What every bill of one template has in common (BILL_SHARED order), built once per template.
    common: dict[int, tuple] = {}
    for _payer_id, tpl in payers:
        if id(tpl) not in common:
            due = tpl.gross - tpl.discount
            status = BillStatus.PAID.value if due == 0 else BillStatus.UNPAID.value
            common[id(tpl)] = (institution.pk, bank_account.pk, batch.name, status, issue_date, due_date, tpl.gross,
                               tpl.discount, due, 0, batch.pk, "", None, actor_id, now, now)
    # One round trip for every id rather than one per chunk.
    reserved = writer.reserve_ids(Bill, total) or [None] * total
    done = 0
    for start in range(0, total, CHUNK):
        part = payers[start:start + CHUNK]
        ids = reserved[start:start + CHUNK]

        def bill_rows(part=part, ids=ids, start=start):
            for i, (payer_id, tpl) in enumerate(part):
                reference = references[start + i]
                qr = qr_payload_for(bank_account=bank_account, amount=tpl.gross - tpl.discount, reference=reference)
                yield (ids[i], payer_id, reference, qr), common[id(tpl)]

        bill_ids = writer.insert(Bill, BILL_FIELDS, BILL_SHARED, bill_rows()) or ids
        writer.insert(BillLine, LINE_FIELDS, LINE_SHARED, (
            ((bill_id,), line) for bill_id, (_payer_id, tpl) in zip(bill_ids, part) for line in tpl.lines))
        done += len(part)
        if progress is not None:
            progress(done, total)
