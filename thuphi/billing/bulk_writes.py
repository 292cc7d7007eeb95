"""Bulk issuance writes: the COPY/ORM writer, COPY text rendering and the background pipeline thread."""
from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor

from django.db import connection
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL

from thuphi.billing.models import Bill
from thuphi.core.rows import COPY_SPECIAL, copy_text
from thuphi.registry.models import Institution, Payer

#: Bills per COPY statement or bulk_create call: large enough that per-statement overhead vanishes,
#: small enough that the progress bar moves.
CHUNK = 5000
#: Codes per `IN (...)` lookup (SQLite allows 32,766 parameters).
LOOKUP_CHUNK = 2000


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
#: What is read of a payer on file, and where each column sits in the tuple.
_PAYER_READ = ("id", "code", *_PAYER_UPDATABLE)
_AT = {field: i for i, field in enumerate(_PAYER_READ)}


def _chunks(seq: list, size: int) -> Iterable[list]:
    for start in range(0, len(seq), size):
        yield seq[start:start + size]


_NULL = "\\N"  # NULL in COPY text
# The project's one COPY text renderer (core.rows), under the names this module's callers use.
_COPY_SPECIAL_RE = COPY_SPECIAL
_copy_text = copy_text


def _payer_copy_row(row: tuple) -> str:
    """A PAYER_FIELDS row in COPY text: `_copy_text` of each value, with one escape check for the whole row."""
    pk, code, name, phone, category_id, class_name, grade, guardian_name, guardian_phone, born, insurance = row
    if type(pk) is not int or _COPY_SPECIAL_RE.search(
            f"{code}{name}{phone}{class_name}{grade}{guardian_name}{guardian_phone}{insurance}"):
        return "\t".join(map(_copy_text, row))
    category = _NULL if category_id is None else category_id
    born = _NULL if born is None else born.isoformat()
    return (f"{pk}\t{code}\t{name}\t{phone}\t{category}\t{class_name}\t{grade}\t{guardian_name}\t"
            f"{guardian_phone}\t{born}\t{insurance}")


class _Writer:
    """Reads and inserts for one issuance: COPY on PostgreSQL with psycopg 3, the ORM anywhere else.

    On the COPY path every method works on the raw psycopg connection (not Django's wrapper, which
    belongs to the calling thread), so that `_Pipeline` can run them on its thread; they still run
    in the transaction `bills_bulk_issue` opened.
    """

    def __init__(self) -> None:
        from django.db.backends.postgresql.psycopg_any import is_psycopg3

        self.postgres = connection.vendor == "postgresql"
        self.copy = self.postgres and is_psycopg3
        self._sequences: dict[type, str] = {}
        if self.copy:
            connection.ensure_connection()
            self.raw = connection.connection

    def matching(self, qs: QuerySet, field: str, values: list) -> Iterable[QuerySet]:
        """`qs` narrowed to rows whose `field` is in `values`, as one or more querysets (ORM path)."""
        if self.postgres:
            # One array parameter: thousands of IN placeholders cost more to build than to run.
            meta = qs.model._meta
            column = f"{connection.ops.quote_name(meta.db_table)}.{connection.ops.quote_name(meta.get_field(field).column)}"
            yield qs.filter(RawSQL(f"{column} = ANY(%s)", (list(values),), output_field=BooleanField()))
            return
        for chunk in _chunks(values, LOOKUP_CHUNK):
            yield qs.filter(**{f"{field}__in": chunk})

    def _cursor(self):
        """A cursor binding parameters on the server, with binary results.

        Django's connection makes client-side-binding cursors, which would spell a 100,000-element
        array out as SQL text for the server to parse back.
        """
        import psycopg

        cursor = psycopg.Cursor(self.raw)
        cursor.format = psycopg.pq.Format.BINARY
        return cursor

    def _select(self, model, columns: tuple[str, ...], where: str, params: list) -> list[tuple]:
        from psycopg import sql

        column_of = {f.attname: f.column for f in model._meta.concrete_fields}
        query = sql.SQL("SELECT {} FROM {} WHERE " + where).format(
            sql.SQL(", ").join(sql.Identifier(column_of[c]) for c in columns), sql.Identifier(model._meta.db_table))
        with self._cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall()

    def taken_references(self, refs: list[str]) -> set[str]:
        """Those of `refs` that an issued bill already has."""
        if self.copy:
            return {r for (r,) in self._select(Bill, ("reference",), '"reference" = ANY(%s)', [refs])}
        taken: set[str] = set()
        for qs in self.matching(Bill.objects.all(), "reference", refs):
            taken.update(qs.values_list("reference", flat=True))
        return taken

    def existing_payers(self, *, institution: Institution, codes: list[str]) -> dict[str, tuple]:
        """Payers on file among `codes`: code -> the `_PAYER_READ` columns."""
        if self.copy:
            found = self._select(Payer, _PAYER_READ, '"institution_id" = %s AND "code" = ANY(%s)',
                                 [institution.pk, codes])
        else:
            found = [values for qs in self.matching(Payer.objects.filter(institution=institution), "code", codes)
                     for values in qs.values_list(*_PAYER_READ)]
        return {values[1]: values for values in found}

    def reserve_ids(self, model, n: int) -> list[int] | None:
        """Ids from the table's own sequence, so that COPY can write the ids other rows point to."""
        if not self.copy or n == 0:
            return None
        from psycopg import sql

        with self._cursor() as cur:
            sequence = self._sequences.get(model)
            if sequence is None:
                cur.execute("SELECT pg_get_serial_sequence(%s, %s)", [model._meta.db_table, model._meta.pk.column])
                sequence = self._sequences[model] = cur.fetchone()[0]
            # The name as a literal: PostgreSQL resolves it once. As an expression
            # (pg_get_serial_sequence(...) inside nextval) it is resolved for every id, 4× the cost.
            cur.execute(sql.SQL("SELECT nextval({}::regclass) FROM generate_series(1, %s)").format(
                sql.Literal(sequence)), [n])
            return [row[0] for row in cur.fetchall()]

    def copy_statement(self, model, fields: tuple[str, ...], *, now: dt.datetime) -> tuple[object, str]:
        """The COPY statement for `fields` plus every other column, and the text those others add to each row.

        Columns this module does not know about (added to the model later) get the model's default,
        as bulk_create would give them: Django defaults are not database defaults, so leaving them out
        of COPY would write NULL.
        """
        from psycopg import sql

        meta = model._meta
        column_of = {f.attname: f.column for f in meta.concrete_fields}
        extra = [f for f in meta.concrete_fields if f.attname not in fields and not f.primary_key]
        tail = "".join(
            "\t" + _copy_text(now if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
                              else f.get_default())
            for f in extra)
        columns = [column_of[f] for f in fields] + [f.column for f in extra]
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(meta.db_table), sql.SQL(", ").join(map(sql.Identifier, columns)))
        return statement, tail

    def copy_in(self, statement, text: str) -> None:
        """Send rows already in COPY text format, in one piece (the server never waits on us mid-COPY)."""
        with self.raw.cursor() as cur, cur.copy(statement) as copy:
            copy.write(text)

    def create(self, model, fields: tuple[str, ...], rows: Iterable[tuple]) -> list[int]:
        """bulk_create of `rows` (values in `fields` order); the new ids in order."""
        objs = [model(**dict(zip(fields, values))) for values in rows]
        model.objects.bulk_create(objs, batch_size=CHUNK)
        return [o.pk for o in objs]


class _Skipped(Exception):
    """Work not run because earlier work of the same issuance failed."""


class _Pipeline:
    """Database work of one issuance, run in order on one background thread (COPY path) or at once.

    Python validates and builds the next rows while PostgreSQL runs the previous statement: the two
    processes use both cores instead of taking turns. Only the pipeline's thread uses the connection
    while work is queued, so the caller waits (`result`, `drain`) before any ORM call. Errors come
    back in submission order, as Django's exceptions.
    """

    def __init__(self, *, threaded: bool) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="thuphi-bulk") if threaded else None
        self._pending: deque[tuple[Future, Callable[[], None] | None]] = deque()
        self._failed = False

    def __enter__(self) -> _Pipeline:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._pool is not None:
            # On an error, drop what has not started and wait for what has: the transaction is
            # rolled back on this thread next, and the connection must be free by then.
            self._pool.shutdown(wait=True, cancel_futures=exc_info[0] is not None)

    def _run(self, fn: Callable, args: tuple, kwargs: dict):
        if self._failed:
            raise _Skipped
        try:
            return fn(*args, **kwargs)
        except BaseException:
            self._failed = True
            raise

    def submit(self, fn: Callable, *args, on_done: Callable[[], None] | None = None, **kwargs) -> Future:
        future: Future = Future()
        if self._pool is None:
            future.set_result(fn(*args, **kwargs))
            if on_done is not None:
                on_done()
            return future
        future = self._pool.submit(self._run, fn, args, kwargs)
        self._pending.append((future, on_done))
        return future

    def _settle_oldest(self) -> None:
        future, on_done = self._pending[0]
        with connection.wrap_database_errors:  # psycopg errors become django.db errors
            future.result()
        self._pending.popleft()
        if on_done is not None:
            on_done()

    def result(self, future: Future):
        """`future`'s result, once it and everything submitted before it has run."""
        while self._pending and any(f is future for f, _on_done in self._pending):
            self._settle_oldest()
        with connection.wrap_database_errors:
            return future.result()

    def keep_at_most(self, n: int) -> None:
        while len(self._pending) > n:
            self._settle_oldest()

    def drain(self) -> None:
        self.keep_at_most(0)
