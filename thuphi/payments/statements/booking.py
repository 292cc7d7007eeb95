"""Booking many bank credits at once: the same rows as `services.credit_book`, written in bulk.

`credit_book_many` is for statement imports, where a file brings thousands of credits. It writes
exactly what calling `services.credit_book` once per credit (in the same order, in one transaction)
would write: the same `Credit` rows, the same matching decisions and reasons, the same balanced
ledger transactions and entries (in the same order), the same `Allocation`s, and the same final
`amount_paid` and status on each bill. `tests/test_statements.py` proves it by booking the same
credits both ways into two copies of one state and comparing every row.

What differs is how: the bills the credits can touch are locked once, in id order (the lock order
every money path shares), the matching runs against that locked snapshot and is replayed in order
in memory, and the rows are written with PostgreSQL's COPY (SQLite: executemany) using ids taken
from the tables' sequences. Must run inside the caller's transaction, like `credit_book`.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from thuphi.billing import reference as refcode
from thuphi.billing.models import Bill, BillLine, BillStatus, FeeKind
from thuphi.billing.services import assert_transition, status_for
from thuphi.payments.errors import LedgerUnbalanced
from thuphi.payments.matching import PAYABLE
from thuphi.payments.models import (
    Account,
    Allocation,
    Credit,
    CreditSource,
    CreditStatus,
    LedgerEntry,
    LedgerTransaction,
    Method,
    VirtualAccount,
)
from thuphi.registry.models import BankAccount

# Kept in step with services.DEBIT_ACCOUNT (imported lazily there to avoid an import cycle).
_OPEN = (BillStatus.UNPAID, BillStatus.PARTIALLY_PAID)
_CLOSED_FOR_MONEY = (BillStatus.CANCELLED, BillStatus.REFUNDED)
# Plain strings for the rows (COPY adapts str, not Django's choice enums, by design of clarity).
_SUSPENSE, _FEE_REVENUE, _PAYER_CREDIT = Account.SUSPENSE.value, Account.FEE_REVENUE.value, Account.PAYER_CREDIT.value
_MATCHED, _UNMATCHED = CreditStatus.MATCHED.value, CreditStatus.UNMATCHED.value


# --------------------------------------------------------------------------- references, fast

_TP_ANYWHERE = re.compile(rf"T[^A-Z0-9]{{0,{refcode.MAX_SPLIT_GAP}}}P")


def extract_with_reason(description: str) -> list[tuple[str, str]]:
    """Exactly `billing.reference.extract_with_reason`, several times faster on bank memos.

    Three shortcuts that cannot change the answer: ASCII text (what banks send) is normalised by
    `upper()` alone; a text with no "T" followed by "P" within a split gap has no candidate at all;
    a pair of tokens whose junction holds no "TP" has no split candidate. The equivalence is tested
    on generated memos against the original (tests/test_statements.py).
    """
    if not description:
        return []
    text = description.upper() if description.isascii() else refcode.normalize(description)
    if _TP_ANYWHERE.search(text) is None:
        return []
    LENGTH = refcode.LENGTH
    runs = [(m.start(), m.group()) for m in refcode._ALNUM_RUN_RE.finditer(text)]
    accept = refcode._accept
    Hit = refcode._Hit
    whole = []
    for start, token in runs:
        if len(token) < LENGTH or "TP" not in token:
            continue
        for m in refcode._CANDIDATE_RE.finditer(token):
            accepted = accept(m.group(1))
            if accepted is None:
                continue
            ref, confused = accepted
            reason = refcode.EXACT if len(token) == LENGTH else refcode.GLUED
            s = start + m.start()
            whole.append(Hit(ref, s, s + LENGTH, reason + (refcode.CONFUSABLE_SUFFIX if confused else "")))
    split = []
    for (a_start, a), (b_start, b) in zip(runs, runs[1:]):
        if b_start - (a_start + len(a)) > refcode.MAX_SPLIT_GAP:
            continue
        a_tail = a[-(LENGTH - 1):]
        joined = a_tail + b[: LENGTH - 1]
        if "TP" not in joined:
            continue
        cut = len(a_tail)
        for m in refcode._CANDIDATE_RE.finditer(joined):
            if not (m.start() < cut < m.start() + LENGTH):
                continue
            accepted = accept(m.group(1))
            if accepted is None:
                continue
            ref, confused = accepted
            s = a_start + len(a) - cut + m.start()
            e = b_start + (m.start() + LENGTH - cut)
            split.append(Hit(ref, s, e, refcode.JOINED_SPLIT + (refcode.CONFUSABLE_SUFFIX if confused else "")))
    if not whole and not split:
        return []
    hits = whole + [h for h in split if not any(h.start < w.end and w.start < h.end for w in whole)]
    hits.sort(key=lambda h: (h.start, h.rank))
    best: dict[str, object] = {}
    order: list[str] = []
    for h in hits:
        seen = best.get(h.ref)
        if seen is None:
            best[h.ref] = h
            order.append(h.ref)
        elif h.rank < seen.rank:
            best[h.ref] = Hit(seen.ref, seen.start, seen.end, h.reason)
    return [(ref, best[ref].reason) for ref in order]


# --------------------------------------------------------------------------- bulk rows

def allocate_ids(model: type[Model], n: int, *more: type[Model]) -> list[int] | list[list[int]]:
    """`n` fresh primary keys for `model` (and for each of `more`, in one round trip), taken from the
    tables' sequences (PostgreSQL) or past the highest ever used (SQLite, which holds its write lock
    for the whole transaction)."""
    models = (model, *more)
    if n <= 0:
        return [] if not more else [[] for _m in models]
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cols = ", ".join("nextval(pg_get_serial_sequence(%s, %s))" for _m in models)
            params = [x for m in models for x in (m._meta.db_table, m._meta.pk.column)]
            cur.execute(f"SELECT {cols} FROM generate_series(1, %s)", [*params, n])
            columns = [list(c) for c in zip(*cur.fetchall())]
        elif connection.vendor == "sqlite":
            columns = []
            for m in models:
                table = m._meta.db_table
                cur.execute(f'SELECT MAX("{m._meta.pk.column}") FROM "{table}"')
                top = cur.fetchone()[0] or 0
                cur.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
                row = cur.fetchone()
                start = max(top, row[0] if row else 0) + 1
                columns.append(list(range(start, start + n)))
        else:
            raise NotImplementedError(f"bulk booking supports PostgreSQL and SQLite, not {connection.vendor}")
    return columns if more else columns[0]


def filter_in(qs, field: str, values: Iterable) -> object:
    """`qs.filter(field__in=values)`, as `= ANY(array)` on PostgreSQL: one parameter instead of
    thousands (Django's psycopg cursor binds parameters on the client, per placeholder)."""
    values = list(values)
    if connection.vendor != "postgresql":
        return qs.filter(**{f"{field}__in": values})
    meta = qs.model._meta
    return qs.extra(where=[f'"{meta.db_table}"."{meta.get_field(field).column}" = ANY(%s)'], params=[values])


class RowWriter:
    """Inserts plain tuples into a model's table, every concrete column filled.

    `fields` are the attnames the caller supplies, in tuple order; every other column gets what
    Django would have written: `now` for auto_now(_add), the field default, or NULL. A column
    added later with a default therefore keeps working without touching this code.
    """

    def __init__(self, model: type[Model], fields: Sequence[str], *, now: dt.datetime):
        meta = model._meta
        self.model = model
        self.table = meta.db_table
        supplied = [meta.get_field(a) for a in fields]
        names = set(fields)
        extra = [f for f in meta.concrete_fields if f.attname not in names and not (f.primary_key and f.auto_created)]
        self.extra_values = tuple(self._default(f, now) for f in extra)
        self.fields = supplied + extra
        self.columns = [f.column for f in self.fields]
        self.rows: list[tuple] = []

    @staticmethod
    def _default(f, now):
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            return now
        if f.has_default():
            return f.get_default()
        if f.null:
            return None
        if f.blank and f.get_internal_type() in ("CharField", "TextField"):
            return ""
        raise RuntimeError(f"{f.model.__name__}.{f.name} has no default: the bulk writer must supply it")

    def add(self, row: tuple) -> None:
        self.rows.append(row)

    def flush(self) -> int:
        rows, self.rows = self.rows, []
        if not rows:
            return 0
        extra = self.extra_values
        cols = ", ".join(f'"{c}"' for c in self.columns)
        if connection.vendor == "postgresql":
            with connection.cursor() as cur, connection.wrap_database_errors:
                raw = cur.cursor
                with raw.copy(f'COPY "{self.table}" ({cols}) FROM STDIN') as copy:
                    write = copy.write_row
                    for r in rows:
                        write(r + extra)
            return len(rows)
        # SQLite (and the tests): Django's own conversions, one executemany.
        convert = [self._converter(f) for f in self.fields]
        params = [[c(v) if c else v for c, v in zip(convert, r + extra)] for r in rows]
        sql = f'INSERT INTO "{self.table}" ({cols}) VALUES ({", ".join(["%s"] * len(self.columns))})'
        with connection.cursor() as cur:
            cur.executemany(sql, params)
        return len(rows)

    @staticmethod
    def _converter(f):
        kind = f.get_internal_type()
        if kind == "DateTimeField":
            return connection.ops.adapt_datetimefield_value
        if kind == "DateField":
            return connection.ops.adapt_datefield_value
        if kind == "JSONField":
            return lambda v, f=f: f.get_db_prep_value(v, connection)
        return None


def update_bills(changed: Iterable[_Bill], *, now: dt.datetime) -> None:
    """One statement for every bill whose paid amount moved (what `bill_record_payment` saves)."""
    changed = list(changed)
    if not changed:
        return
    meta = Bill._meta
    table = meta.db_table
    c_paid, c_status, c_upd, c_id = (meta.get_field(n).column for n in ("amount_paid", "status", "updated_at", "id"))
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute(
                f'UPDATE "{table}" AS b SET "{c_paid}" = v.paid, "{c_status}" = v.status, "{c_upd}" = %s '
                f'FROM unnest(%s::bigint[], %s::bigint[], %s::varchar[]) AS v(id, paid, status) WHERE b."{c_id}" = v.id',
                [now, [b.id for b in changed], [b.paid for b in changed], [b.status for b in changed]])
        else:
            ts = connection.ops.adapt_datetimefield_value(now)
            cur.executemany(f'UPDATE "{table}" SET "{c_paid}" = %s, "{c_status}" = %s, "{c_upd}" = %s WHERE "{c_id}" = %s',
                            [[b.paid, b.status, ts, b.id] for b in changed])


# --------------------------------------------------------------------------- the booking

@dataclass
class CreditInput:
    """A credit to book: what a statement line (or any bank movement) says."""

    amount: int
    occurred_at: dt.datetime
    description: str = ""
    payer_name: str = ""
    bank_reference: str = ""
    virtual_account: str = ""
    external_ref: str = ""


@dataclass
class Booked:
    credit_id: int
    status: str
    bill_ids: list[int] = field(default_factory=list)


class _Bill:
    __slots__ = ("id", "reference", "status", "due", "paid", "payer_id", "due_date", "dirty")

    def __init__(self, row):
        self.id, self.reference, self.status, self.due, self.paid, self.payer_id, self.due_date = row
        self.dirty = False


_CREDIT_FIELDS = ("id", "institution_id", "bank_account_id", "method", "source", "amount", "description",
                  "payer_name", "bank_reference", "external_ref", "occurred_at", "status", "match_reason",
                  "created_by_id")
_TXN_FIELDS = ("id", "kind", "institution_id", "credit_id", "memo", "occurred_at")
_ENTRY_FIELDS = ("transaction_id", "account", "institution_id", "bank_account_id", "payer_id", "bill_id", "debit",
                 "credit")
_ALLOC_FIELDS = ("credit_id", "bill_id", "amount", "ledger_transaction_id")


def credit_book_many(*, bank_account: BankAccount, items: Sequence[CreditInput],
                     source: str = CreditSource.STATEMENT, method: str = Method.TRANSFER,
                     created_by_id: int | None = None, now: dt.datetime | None = None) -> list[Booked]:
    """Create and book one credit per item, in order, as `credit_book` would one by one."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("credit_book_many must run inside a transaction")
    if not items:
        return []
    from thuphi.payments.services import DEBIT_ACCOUNT  # services imports matching; avoid a cycle

    now = now or timezone.now()
    inst = bank_account.institution_id
    method, source = str(method), str(source)
    debit_account = str(DEBIT_ACCOUNT[method])
    entry_bank_id = bank_account.pk if debit_account == Account.BANK else None

    # 1. What each credit could match, read without locks (as match_credit does).
    va_numbers = {it.virtual_account for it in items if it.virtual_account}
    vas: dict[str, tuple[int | None, int | None]] = {}
    if va_numbers:
        vas = {n: (b, p) for n, b, p in filter_in(VirtualAccount.objects.filter(
            is_active=True, bank_account__institution_id=inst), "number", va_numbers)
            .values_list("number", "bill_id", "payer_id")}
    found: list[list[tuple[str, str]] | None] = []
    refs: set[str] = set()
    for it in items:
        if it.virtual_account and it.virtual_account in vas:
            found.append(None)
        else:
            f = extract_with_reason(it.description or "")
            found.append(f)
            refs.update(r for r, _how in f)
    ref_ids: dict[str, int] = {}
    if refs:
        ref_ids = dict(filter_in(Bill.objects.filter(institution_id=inst), "reference", refs)
                       .values_list("reference", "id"))
    candidate_ids = set(ref_ids.values()) | {b for b, _p in vas.values() if b}
    payer_ids = {p for b, p in vas.values() if not b and p}
    if payer_ids:
        candidate_ids |= set(filter_in(Bill.objects.filter(status__in=_OPEN), "payer_id", payer_ids)
                             .values_list("id", flat=True))

    # 2. Lock every bill that may take money, in id order, and read it under the lock.
    bills: dict[int, _Bill] = {}
    if candidate_ids:
        rows = (filter_in(Bill.objects.select_for_update(), "id", candidate_ids).order_by("pk")
                .values_list("id", "reference", "status", "amount_due", "amount_paid", "payer_id", "due_date"))
        bills = {r[0]: _Bill(r) for r in rows}
    by_ref = {ref: bills[i] for ref, i in ref_ids.items() if i in bills}
    payer_bills: dict[int, list[_Bill]] = {}
    for b in sorted(bills.values(), key=lambda b: (b.due_date, b.id)):
        if b.payer_id in payer_ids:
            payer_bills.setdefault(b.payer_id, []).append(b)
    earning = set(filter_in(BillLine.objects.exclude(kind=FeeKind.DEPOSIT), "bill_id", bills)
                  .values_list("bill_id", flat=True).distinct()) if bills else set()

    # 3. Replay credit_book for each credit against the locked snapshot.
    # One ledger transaction per credit, so both id ranges come in one round trip.
    credit_ids, txn_ids = allocate_ids(Credit, len(items), LedgerTransaction)
    planned: list[tuple[CreditInput, int, str, str, list[tuple[str, int, int, int | None, int | None]],
                        list[tuple[int, int]]]] = []
    n_txn = 0
    for it, cid, f in zip(items, credit_ids, found):
        bill_ids, reason = _match(it, f, vas, bills, by_ref, payer_bills)
        if bill_ids:
            bill_ids = [i for i in dict.fromkeys(bill_ids) if i in bills and bills[i].status in PAYABLE]
            if not bill_ids:
                reason = (reason + "; " if reason else "") + "bill no longer payable"
        amount = it.amount
        if not bill_ids:
            lines = [(debit_account, amount, 0, entry_bank_id, None, None),
                     (_SUSPENSE, 0, amount, None, None, None)]
            planned.append((it, cid, "unmatched_credit", reason, lines, []))
            n_txn += 1
            continue
        lines = [(debit_account, amount, 0, entry_bank_id, None, None)]
        takes: list[tuple[_Bill, int]] = []
        remaining = amount
        for i, bid in enumerate(bill_ids):
            if remaining == 0:
                break
            bill = bills[bid]
            outstanding = max(bill.due - bill.paid, 0)
            take = remaining if i == len(bill_ids) - 1 else min(remaining, outstanding)
            if take == 0:
                continue
            to_revenue = min(take, outstanding) if bid in earning else 0
            lines.append((_FEE_REVENUE, 0, to_revenue, None, bill.payer_id, bid))
            lines.append((_PAYER_CREDIT, 0, take - to_revenue, None, bill.payer_id, bid))
            takes.append((bill, take))
            remaining -= take
        allocs = []
        for bill, take in takes:
            _record_payment(bill, take)
            allocs.append((bill.id, take))
        planned.append((it, cid, "payment", reason, lines, allocs))
        n_txn += 1

    # 4. Write: credits, ledger transactions, entries, allocations, then the bills.
    assert n_txn == len(txn_ids)
    credits = RowWriter(Credit, _CREDIT_FIELDS, now=now)
    txns = RowWriter(LedgerTransaction, _TXN_FIELDS, now=now)
    entries = RowWriter(LedgerEntry, _ENTRY_FIELDS, now=now)
    allocations = RowWriter(Allocation, _ALLOC_FIELDS, now=now)
    booked: list[Booked] = []
    for (it, cid, kind, reason, lines, allocs), tid in zip(planned, txn_ids):
        lines = [ln for ln in lines if ln[1] or ln[2]]
        debits = sum(ln[1] for ln in lines)
        if not lines or debits != sum(ln[2] for ln in lines) or any(ln[1] < 0 or ln[2] < 0 for ln in lines):
            raise LedgerUnbalanced(f"{kind}: debits {debits} != credits")
        status = _MATCHED if kind == "payment" else _UNMATCHED
        credits.add((cid, inst, bank_account.pk, method, source, it.amount, it.description, it.payer_name[:255],
                     it.bank_reference[:128], it.external_ref[:128], it.occurred_at, status, reason, created_by_id))
        txns.add((tid, kind, inst, cid, reason[:255], it.occurred_at))
        for account, debit, credit, bank_id, payer_id, bill_id in lines:
            entries.add((tid, account, inst, bank_id, payer_id, bill_id, debit, credit))
        for bill_id, take in allocs:
            allocations.add((cid, bill_id, take, tid))
        booked.append(Booked(cid, status, [b for b, _t in allocs]))
    credits.flush()
    txns.flush()
    entries.flush()
    allocations.flush()
    update_bills((b for b in bills.values() if b.dirty), now=now)
    return booked


def _match(it: CreditInput, found, vas, bills: dict[int, _Bill], by_ref: dict[str, _Bill],
           payer_bills: dict[int, list[_Bill]]) -> tuple[list[int], str]:
    """`matching.match_credit` against the in-memory bills: (bill ids, reason) or ([], why not)."""
    va = it.virtual_account
    if found is None:  # an active virtual account of this institution
        bill_id, payer_id = vas[va]
        if bill_id:
            bill = bills[bill_id]
            if bill.status in PAYABLE:
                return [bill_id], f"virtual account {va} belongs to bill {bill.reference}"
            return [], f"virtual account {va}: bill {bill.reference} is {bill.status}"
        bill = next((b for b in payer_bills.get(payer_id, ()) if b.status in _OPEN), None)
        if bill is not None:
            return [bill.id], f"virtual account {va} of payer; oldest open bill {bill.reference}"
        return [], f"virtual account {va}: payer has no open bill"
    if not found:
        return [], "no valid payment reference in the description"
    ids, reasons, problems = [], [], []
    for ref, how in found:
        bill = by_ref.get(ref)
        if bill is None:
            problems.append(f"{ref} is not a bill of this institution")
        elif bill.status not in PAYABLE:
            problems.append(f"{ref} is {bill.status}")
        else:
            ids.append(bill.id)
            reasons.append(f"reference {ref} found in description ({how})")
    if not ids:
        return [], "; ".join(problems)
    return ids, "; ".join(reasons + problems)


def _record_payment(bill: _Bill, amount: int) -> None:
    """`billing.services.bill_record_payment` on the in-memory bill."""
    from thuphi.billing.errors import InvalidTransition

    new_paid = bill.paid + amount
    if new_paid < 0:
        raise InvalidTransition("Số tiền đã nộp không thể âm.")
    target = status_for(amount_due=bill.due, amount_paid=new_paid)
    if bill.status in _CLOSED_FOR_MONEY:
        raise InvalidTransition("Phiếu thu đã hủy hoặc đã hoàn tiền, không nhận thêm tiền.")
    assert_transition(current=bill.status, target=target)
    bill.paid = new_paid
    bill.status = str(target)
    bill.dirty = True
