"""Booking many bank credits at once: the same rows as `services.credit_book`, written in bulk.

`credit_book_many` is for statement imports (and the worker's batches of notifications), where
thousands of credits arrive together. It writes exactly what calling `services.credit_book` once
per credit (in the same order, in one transaction) would write: the same `Credit` rows, the same
matching decisions and reasons, the same balanced ledger transactions and entries (in the same
order), the same `Allocation`s, and the same final `amount_paid` and status on each bill.
`tests/test_statements.py` and `tests/test_statement_bulk.py` prove it by booking the same credits
both ways into two copies of one state and comparing every row, and the statistics.

What differs is how (docs/decisions/0005-bulk-statement-booking.md):
* the bills the credits can touch are locked and read in one statement, in id order (the lock
  order every money path shares); the matching runs against that locked snapshot and is replayed
  in order in memory;
* the rows are written with PostgreSQL's COPY in text format (SQLite: executemany), each row
  rendered by a formatter compiled for its table, with ids taken from the tables' sequences;
* look-ups send their thousands of ids and references as one array literal;
* `stats_add_booked` moves the monitoring statistics, summed per day and fee kind, through
  monitoring's `stats_apply_contributions`: one statement per table instead of several per
  credit. Receipts and payment confirmations are left to the worker's sweep
  (`payments.tasks.sweep_unfinished`), which works through a large import page after page.
Must run inside the caller's transaction, like `credit_book`.
"""
from __future__ import annotations

import datetime as dt
import json
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
_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_ALNUM_SPAN = re.compile(r"[A-Z0-9]*")
_PREFIX_LEN = len(refcode.PREFIX)


def _position_tables() -> tuple[dict[str, int], ...]:
    """The check sum is linear (XOR) in the body's symbols: the sum of a body is the XOR of what each
    symbol adds at its position, which is the sum of a body holding that symbol alone (zeros being 0)."""
    zero = refcode.ALPHABET[0]
    n = refcode.BODY_LEN
    return tuple({ch: refcode._checksum(zero * i + ch + zero * (n - 1 - i)) for ch in refcode.ALPHABET}
                 for i in range(n))


_P0, _P1, _P2, _P3, _P4, _P5, _P6, _P7 = _position_tables()
assert refcode.BODY_LEN == 8


def _accept(raw: str) -> tuple[str, bool] | None:
    """`billing.reference._accept` (canonical form of an 11-character candidate, and whether O/I/L
    were read as 0/1) with the check sum from eight table look-ups."""
    body = raw[_PREFIX_LEN:]
    f = body.translate(refcode._CONFUSABLE)
    if refcode.ALPHABET[_P0[f[0]] ^ _P1[f[1]] ^ _P2[f[2]] ^ _P3[f[3]] ^ _P4[f[4]] ^ _P5[f[5]] ^ _P6[f[6]]
                        ^ _P7[f[7]]] != f[8]:
        return None
    return refcode.PREFIX + f, f != body


def extract_with_reason(description: str) -> list[tuple[str, str]]:
    """Exactly `billing.reference.extract_with_reason`, several times faster on bank memos.

    Four shortcuts that cannot change the answer: ASCII text (what banks send) is normalised by
    `upper()` alone; a text with no "T" followed by "P" within a split gap has no candidate at all;
    only the tokens around such "TP"s are looked at; a pair of tokens whose junction holds no "TP"
    has no split candidate. The equivalence is tested
    on generated memos against the original (tests/test_statements.py).
    """
    if not description:
        return []
    text = description.upper() if description.isascii() else refcode.normalize(description)
    first = _TP_ANYWHERE.search(text)
    if first is None:
        return []
    LENGTH = refcode.LENGTH
    # Every candidate starts at the "T" of a "T…P" match and ends within LENGTH + MAX_SPLIT_GAP
    # characters of it: only the alphanumeric runs from the one holding the first such "T" to the
    # one holding the last candidate's possible end can take part (whole runs, so that a token's
    # length, which tells "exact" from "glued", is its real length).
    lo = first.start()
    hi = lo
    for m in _TP_ANYWHERE.finditer(text, lo + 1):
        hi = m.start()
    while lo and text[lo - 1] in _ALNUM:
        lo -= 1
    end = _ALNUM_SPAN.match(text, min(len(text), hi + LENGTH + refcode.MAX_SPLIT_GAP)).end()
    runs = [(m.start(), m.group()) for m in refcode._ALNUM_RUN_RE.finditer(text, lo, end)]
    accept = _accept
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
    if len(whole) + len(split) == 1:  # the usual memo: one reference
        h = (whole or split)[0]
        return [(h.ref, h.reason)]
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
            # The sequences are looked up once, not per row (pg_get_serial_sequence reads the catalog).
            seqs = []
            for m in models:
                cur.execute("SELECT pg_get_serial_sequence(%s, %s)::regclass::oid", [m._meta.db_table, m._meta.pk.column])
                seqs.append(int(cur.fetchone()[0]))
            cols = ", ".join(f"nextval({oid}::regclass)" for oid in seqs)
            cur.execute(f"SELECT {cols} FROM generate_series(1, %s)", [n])
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


_INT_KINDS = frozenset({"AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField",
                        "SmallIntegerField", "PositiveIntegerField", "PositiveBigIntegerField",
                        "PositiveSmallIntegerField", "ForeignKey", "OneToOneField"})


def pg_array(values: Iterable, *, ints: bool) -> str:
    """A PostgreSQL array literal ('{1,2}', '{"a","b"}'), sent as one text parameter and cast in SQL.

    psycopg adapts a Python list element by element in Python; for the thousands of ids and
    references a chunk looks up, one string built by `join` costs a fraction of that."""
    if ints:
        return "{" + ",".join(map(str, map(int, values))) + "}"
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in map(str, values)) + "}"


def filter_in(qs, field: str, values: Iterable) -> object:
    """`qs.filter(field__in=values)`, as `= ANY(array literal)` on PostgreSQL: one parameter instead
    of thousands (Django's psycopg cursor binds parameters on the client, per placeholder)."""
    values = list(values)
    if connection.vendor != "postgresql":
        return qs.filter(**{f"{field}__in": values})
    meta = qs.model._meta
    f = meta.get_field(field)
    ints = f.get_internal_type() in _INT_KINDS
    cast = "bigint[]" if ints else "text[]"
    return qs.extra(where=[f'"{meta.db_table}"."{f.column}" = ANY(%s::{cast})'], params=[pg_array(values, ints=ints)])


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
#: Rows per write to a COPY stream: the server stores one block while the next is formatted.
COPY_BLOCK = 2000


def _copy_escape(value: object) -> str:
    return str(value).translate(_COPY_ESCAPES)


def _text_expr(f, var: str) -> str:
    """A Python expression rendering `var` (a value of field `f`) in COPY's text format."""
    kind = f.get_internal_type()
    if kind in _INT_KINDS:
        body = f"str({var})"
    elif kind in ("CharField", "TextField", "SlugField", "EmailField", "URLField", "UUIDField",
                  "GenericIPAddressField", "DecimalField"):
        # Printable text without a backslash needs no escaping (Vietnamese letters are printable).
        body = (f"({var} if {var}.__class__ is str and {var}.isprintable() and '\\\\' not in {var} "
                f"else esc({var}))")
    elif kind in ("DateTimeField", "DateField", "TimeField"):
        body = f"{var}.isoformat()"
    elif kind == "BooleanField":
        body = f"('t' if {var} else 'f')"
    elif kind == "FloatField":
        body = f"repr(float({var}))"
    elif kind == "JSONField":
        body = f"esc(json.dumps({var}, cls=enc_{var}))"
    else:
        raise NotImplementedError(f"COPY writer: {f.model.__name__}.{f.name} ({kind})")
    return f"(N if {var} is None else {body})"


def _compile_copy_formatter(fields: Sequence) -> object:
    """A function turning a tuple of values for `fields` into one line of COPY text (no newline).

    Generated once per writer so that a row costs one call and one f-string, not a Python call
    per value: the rows of a million-line statement are formatted in a couple of seconds."""
    names = [f"a{i}" for i in range(len(fields))]
    env = {"N": "\\N", "esc": _copy_escape, "json": json}
    for f, var in zip(fields, names):
        if f.get_internal_type() == "JSONField":
            env[f"enc_{var}"] = f.encoder
    line = " + '\\t' + ".join(_text_expr(f, var) for f, var in zip(fields, names))
    src = f"def fmt(row):\n    {', '.join(names)}, = row\n    return {line}\n"
    exec(compile(src, "<copy formatter>", "exec"), env)  # noqa: S102 - source built from field types only
    return env["fmt"]


_FORMATTERS: dict[tuple, object] = {}


def _copy_formatter(model: type[Model], attnames: tuple[str, ...]):
    key = (model, attnames)
    fmt = _FORMATTERS.get(key)
    if fmt is None:
        meta = model._meta
        fmt = _FORMATTERS[key] = _compile_copy_formatter([meta.get_field(a) for a in attnames])
    return fmt


class RowWriter:
    """Inserts plain tuples into a model's table, every concrete column filled.

    `fields` are the attnames the caller supplies, in tuple order; every other column gets what
    Django would have written: `now` for auto_now(_add), the field default, or NULL. A column
    added later with a default therefore keeps working without touching this code.

    PostgreSQL: COPY in text format, each row rendered by a formatter compiled for these fields,
    the constant columns rendered once. SQLite (and the tests): one executemany.
    """

    def __init__(self, model: type[Model], fields: Sequence[str], *, now: dt.datetime):
        meta = model._meta
        self.model = model
        self.table = meta.db_table
        supplied = [meta.get_field(a) for a in fields]
        names = set(fields)
        extra = [f for f in meta.concrete_fields if f.attname not in names and not (f.primary_key and f.auto_created)]
        self.extra_values = tuple(self._default(f, now) for f in extra)
        self.supplied = supplied
        self.extra = extra
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
        cols = ", ".join(f'"{c}"' for c in self.columns)
        if connection.vendor == "postgresql":
            fmt = _copy_formatter(self.model, tuple(f.attname for f in self.supplied))
            suffix = ""
            if self.extra:
                suffix = "\t" + _copy_formatter(self.model, tuple(f.attname for f in self.extra))(self.extra_values)
            with connection.cursor() as cur, connection.wrap_database_errors:
                with cur.cursor.copy(f'COPY "{self.table}" ({cols}) FROM STDIN') as copy:
                    for start in range(0, len(rows), COPY_BLOCK):
                        block = [fmt(r) for r in rows[start:start + COPY_BLOCK]]
                        copy.write((suffix + "\n").join(block) + suffix + "\n")
            return len(rows)
        # SQLite (and the tests): Django's own conversions, one executemany.
        extra = self.extra_values
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
                f'FROM unnest(%s::bigint[], %s::bigint[], %s::text[]) AS v(id, paid, status) WHERE b."{c_id}" = v.id',
                [now, pg_array((b.id for b in changed), ints=True), pg_array((b.paid for b in changed), ints=True),
                 pg_array((b.status for b in changed), ints=False)])
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
    #: `extract_with_reason(description)` when the caller already has it (None: found here).
    references: list[tuple[str, str]] | None = None


@dataclass
class Booked:
    credit_id: int
    status: str
    bill_ids: list[int] = field(default_factory=list)
    #: The fee kind monitoring counts the credit under: the kind of the largest line of the first
    #: bill it paid; "" in suspense (or for a bill without lines). See `stats_add_booked`.
    fee_kind: str = ""


class _Bill:
    __slots__ = ("id", "institution_id", "reference", "status", "due", "paid", "payer_id", "due_date", "dirty")

    def __init__(self, row):
        self.id, self.institution_id, self.reference, self.status, self.due, self.paid, self.payer_id, \
            self.due_date = row
        self.dirty = False


_CREDIT_FIELDS = ("id", "institution_id", "bank_account_id", "method", "source", "amount", "description",
                  "payer_name", "bank_reference", "external_ref", "occurred_at", "status", "match_reason",
                  "created_by_id")
_TXN_FIELDS = ("id", "kind", "institution_id", "credit_id", "memo", "occurred_at")
_ENTRY_FIELDS = ("transaction_id", "account", "institution_id", "bank_account_id", "payer_id", "bill_id", "debit",
                 "credit")
_ALLOC_FIELDS = ("credit_id", "bill_id", "amount", "ledger_transaction_id")
_BILL_COLUMNS = ("id", "institution_id", "reference", "status", "amount_due", "amount_paid", "payer_id", "due_date")


def _lock_bills(*, institution_id: int, refs: set[str], bill_ids: set[int], payer_ids: set[int]) -> dict[int, _Bill]:
    """Lock, in id order, every bill the credits may pay, and read it under the lock: the bills of
    the institution named by a reference, the bills of virtual accounts, and the open bills of the
    payers of virtual accounts. One statement (the lock order every money path shares)."""
    if not (refs or bill_ids or payer_ids):
        return {}
    meta = Bill._meta
    if connection.vendor == "postgresql":
        col = {n: f'"{meta.get_field(n).column}"' for n in _BILL_COLUMNS}
        sql = (f'SELECT {", ".join(col[n] for n in _BILL_COLUMNS)} FROM "{meta.db_table}" '
               f'WHERE ({col["institution_id"]} = %s AND {col["reference"]} = ANY(%s::text[])) '
               f'OR {col["id"]} = ANY(%s::bigint[]) '
               f'OR ({col["payer_id"]} = ANY(%s::bigint[]) AND {col["status"]} = ANY(%s::text[])) '
               f'ORDER BY {col["id"]} FOR UPDATE')
        with connection.cursor() as cur:
            cur.execute(sql, [institution_id, pg_array(refs, ints=False), pg_array(bill_ids, ints=True),
                              pg_array(payer_ids, ints=True), pg_array((str(s) for s in _OPEN), ints=False)])
            rows = cur.fetchall()
    else:
        from django.db.models import Q

        cond = Q(pk__in=[])
        if refs:
            cond |= Q(institution_id=institution_id, reference__in=refs)
        if bill_ids:
            cond |= Q(pk__in=bill_ids)
        if payer_ids:
            cond |= Q(payer_id__in=payer_ids, status__in=_OPEN)
        rows = Bill.objects.select_for_update().filter(cond).order_by("pk").values_list(*_BILL_COLUMNS)
    return {r[0]: _Bill(r) for r in rows}


def _bill_lines(bill_ids: Iterable[int]) -> tuple[set[int], dict[int, str]]:
    """For the locked bills: the ones with a line that is earned (not a deposit: tạm ứng is held for
    the payer), and the fee kind of each bill's largest line, which is what monitoring counts a
    payment under (`monitoring.stats.credit_contribution`: amount net of discount, then position, id)."""
    rows = filter_in(BillLine.objects.all(), "bill_id", bill_ids).values_list(
        "bill_id", "kind", "amount", "discount", "position", "id")
    earning: set[int] = set()
    best: dict[int, tuple] = {}
    deposit = FeeKind.DEPOSIT.value
    for bill_id, kind, amount, discount, position, line_id in rows:
        if kind != deposit:
            earning.add(bill_id)
        key = (discount - amount, position, line_id)
        seen = best.get(bill_id)
        if seen is None or key < seen[0]:
            best[bill_id] = (key, kind)
    return earning, {b: kind for b, (_key, kind) in best.items()}


def credit_book_many(*, bank_account: BankAccount, items: Sequence[CreditInput],
                     source: str = CreditSource.STATEMENT, method: str = Method.TRANSFER,
                     created_by_id: int | None = None, now: dt.datetime | None = None) -> list[Booked]:
    """Create and book one credit per item, in order, as `credit_book` would one by one.

    The monitoring statistics are the caller's: `stats_add_booked` moves them for the whole batch
    (or call `stats_on_credit_booked` per credit); receipts and messages too (after commit)."""
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

    # 1. What each credit could match (as match_credit reads it): its virtual account, else the
    #    references in its description.
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
            f = it.references if it.references is not None else extract_with_reason(it.description or "")
            found.append(f)
            for r, _how in f:
                refs.add(r)
    payer_ids = {p for b, p in vas.values() if not b and p}

    # 2. Lock every bill that may take money, in id order, and read it under the lock.
    bills = _lock_bills(institution_id=inst, refs=refs, bill_ids={b for b, _p in vas.values() if b},
                        payer_ids=payer_ids)
    by_ref = {b.reference: b for b in bills.values() if b.institution_id == inst}
    payer_bills: dict[int, list[_Bill]] = {}
    if payer_ids:
        for b in sorted(bills.values(), key=lambda b: (b.due_date, b.id)):
            if b.payer_id in payer_ids:
                payer_bills.setdefault(b.payer_id, []).append(b)
    earning, kinds = _bill_lines(bills) if bills else (set(), {})

    # 3. Replay credit_book for each credit against the locked snapshot, writing the rows as we go.
    # One ledger transaction per credit, so both id ranges come in one round trip.
    credit_ids, txn_ids = allocate_ids(Credit, len(items), LedgerTransaction)
    credits = RowWriter(Credit, _CREDIT_FIELDS, now=now)
    txns = RowWriter(LedgerTransaction, _TXN_FIELDS, now=now)
    entries = RowWriter(LedgerEntry, _ENTRY_FIELDS, now=now)
    allocations = RowWriter(Allocation, _ALLOC_FIELDS, now=now)
    add_credit, add_txn, add_entry, add_alloc = credits.add, txns.add, entries.add, allocations.add
    bank_pk = bank_account.pk
    booked: list[Booked] = []
    for it, cid, tid, f in zip(items, credit_ids, txn_ids, found):
        amount = it.amount
        if amount <= 0:
            raise LedgerUnbalanced(f"credit of {amount}: an entry must be one positive side")
        bill_ids, reason = _match(it, f, vas, bills, by_ref, payer_bills)
        if bill_ids:
            bill_ids = [i for i in dict.fromkeys(bill_ids) if i in bills and bills[i].status in PAYABLE]
            if not bill_ids:
                reason = (reason + "; " if reason else "") + "bill no longer payable"
        occurred = it.occurred_at
        if not bill_ids:
            add_credit((cid, inst, bank_pk, method, source, amount, it.description, it.payer_name[:255],
                        it.bank_reference[:128], it.external_ref[:128], occurred, _UNMATCHED, reason,
                        created_by_id))
            add_txn((tid, "unmatched_credit", inst, cid, reason[:255], occurred))
            add_entry((tid, debit_account, inst, entry_bank_id, None, None, amount, 0))
            add_entry((tid, _SUSPENSE, inst, None, None, None, 0, amount))
            booked.append(Booked(cid, _UNMATCHED))
            continue
        # Earlier bills take what they still owe; the last takes the rest (credit_book's rule).
        lines = []
        paid_ids = []
        remaining = amount
        last = len(bill_ids) - 1
        for i, bid in enumerate(bill_ids):
            if remaining == 0:
                break
            bill = bills[bid]
            outstanding = bill.due - bill.paid
            if outstanding < 0:
                outstanding = 0
            take = remaining if i == last else min(remaining, outstanding)
            if take == 0:
                continue
            to_revenue = min(take, outstanding) if bid in earning else 0
            if to_revenue:
                lines.append((tid, _FEE_REVENUE, inst, None, bill.payer_id, bid, 0, to_revenue))
            if take - to_revenue:
                lines.append((tid, _PAYER_CREDIT, inst, None, bill.payer_id, bid, 0, take - to_revenue))
            _record_payment(bill, take)
            add_alloc((cid, bid, take, tid))
            paid_ids.append(bid)
            remaining -= take
        if sum(ln[7] for ln in lines) != amount:
            raise LedgerUnbalanced(f"payment: debits {amount} != credits")
        add_credit((cid, inst, bank_pk, method, source, amount, it.description, it.payer_name[:255],
                    it.bank_reference[:128], it.external_ref[:128], occurred, _MATCHED, reason, created_by_id))
        add_txn((tid, "payment", inst, cid, reason[:255], occurred))
        add_entry((tid, debit_account, inst, entry_bank_id, None, None, amount, 0))
        for ln in lines:
            add_entry(ln)
        booked.append(Booked(cid, _MATCHED, paid_ids, kinds.get(paid_ids[0], "")))

    # 4. Write: credits, ledger transactions, entries, allocations, then the bills.
    credits.flush()
    txns.flush()
    entries.flush()
    allocations.flush()
    update_bills((b for b in bills.values() if b.dirty), now=now)
    return booked


def stats_add_booked(*, bank_account: BankAccount, method: str, items: Sequence[CreditInput],
                     booked: Sequence[Booked]) -> None:
    """Move the monitoring statistics for credits `credit_book_many` just booked, in the same
    transaction: what `stats_on_credit_booked` (which `credit_book` calls) adds for each, i.e. its
    local day, the fee kind of the first bill it paid (or "unmatched"), its method, one payment and
    its amount — summed per (day, fee kind) and written by monitoring in one statement per table
    (`stats_apply_contributions`).

    The contributions are computed here from what the booking already holds in memory: monitoring's
    batch hook that takes credits, `stats_on_credits_booked`, reads their allocations and bill lines
    back, which cost about 80 ms per thousand credits, 14 % of an import (docs/benchmarks.md). The
    test suite compares the result with the per-credit hook and with a rebuild from the ledger.
    """
    from thuphi.monitoring.models import UNMATCHED
    from thuphi.monitoring.services import stats_apply_contributions
    from thuphi.monitoring.stats import VN_TZ, Contribution

    totals: dict[tuple[dt.date, str], list[int]] = {}
    last_at = last_day = None
    for it, b in zip(items, booked, strict=True):
        at = it.occurred_at
        if at != last_at:
            last_at, last_day = at, at.astimezone(VN_TZ).date()
        key = (last_day, b.fee_kind or UNMATCHED)
        t = totals.get(key)
        if t is None:
            totals[key] = [1, it.amount]
        else:
            t[0] += 1
            t[1] += it.amount
    inst, method = bank_account.institution_id, str(method)
    stats_apply_contributions(contributions=[
        Contribution(institution_id=inst, day=day, fee_kind=kind, method=method, payments=n, value=value)
        for (day, kind), (n, value) in sorted(totals.items())], sign=+1)


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
    if len(found) == 1:  # the usual memo: one reference
        ref, how = found[0]
        bill = by_ref.get(ref)
        if bill is None:
            return [], f"{ref} is not a bill of this institution"
        if bill.status not in PAYABLE:
            return [], f"{ref} is {bill.status}"
        return [bill.id], f"reference {ref} found in description ({how})"
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


_PAYABLE_TARGETS = {str(s) for s in PAYABLE}


def _record_payment(bill: _Bill, amount: int) -> None:
    """`billing.services.bill_record_payment` on the in-memory bill."""
    from thuphi.billing.errors import InvalidTransition

    new_paid = bill.paid + amount
    if new_paid < 0:
        raise InvalidTransition("Số tiền đã nộp không thể âm.")
    if bill.status in _CLOSED_FOR_MONEY:
        raise InvalidTransition("Phiếu thu đã hủy hoặc đã hoàn tiền, không nhận thêm tiền.")
    target = str(status_for(amount_due=bill.due, amount_paid=new_paid))
    if target != bill.status:
        assert_transition(current=bill.status, target=target)
    bill.paid = new_paid
    bill.status = target
    bill.dirty = True
