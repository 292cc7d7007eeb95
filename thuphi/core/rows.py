"""Many rows of one model written in one statement: COPY on PostgreSQL, one executemany INSERT elsewhere.

For bulk paths whose rows are already plain tuples (receipts, outbox messages): Django's bulk_create
spent most of their time preparing every field of every instance."""
from __future__ import annotations

import datetime as dt
import json
import re

from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone


def _uses_copy() -> bool:
    if connection.vendor != "postgresql":
        return False
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return is_psycopg3


def _others(model, fields: tuple[str, ...], now: dt.datetime) -> tuple[list, tuple]:
    """The concrete columns ``fields`` leave out (the primary key aside) and the value each takes:
    ``now`` for auto_now(_add), else the model default, as ``bulk_create`` would give them (Django
    defaults are not database defaults: a column left out of the statement would get NULL)."""
    extra = [f for f in model._meta.concrete_fields if f.attname not in fields and not f.primary_key]
    values = tuple(now if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False) else f.get_default()
                   for f in extra)
    return extra, values


def rows_insert(model, fields: tuple[str, ...], rows: list[tuple], *, skip_conflicts: bool = False,
                now: dt.datetime | None = None) -> None:
    """Insert ``rows`` (values in ``fields`` order, by attname, as the model holds them) in one
    statement, without building a model instance per row; every other column as ``bulk_create``
    would write it (see ``_others``).

    PostgreSQL with psycopg 3: one ``COPY``. It has no ON CONFLICT: with ``skip_conflicts`` it runs
    in a savepoint, and if another transaction took one of the unique keys meanwhile, the rows go
    again as ``INSERT … ON CONFLICT DO NOTHING``. Elsewhere: one ``executemany`` of an INSERT (with
    ON CONFLICT DO NOTHING when ``skip_conflicts``), values prepared by their fields as the ORM
    would. Call it inside the caller's transaction: it opens none of its own (but the savepoint)."""
    if not rows:
        return
    extra, defaults = _others(model, fields, now or timezone.now())
    meta, quote = model._meta, connection.ops.quote_name
    columns = [meta.get_field(name).column for name in fields] + [f.column for f in extra]
    names = ", ".join(map(quote, columns))
    if _uses_copy():
        tail = "".join("\t" + copy_text(v) for v in defaults)
        text = "".join("\t".join(map(copy_text, row)) + tail + "\n" for row in rows)
        statement = f"COPY {quote(meta.db_table)} ({names}) FROM STDIN"
        if not skip_conflicts:
            _copy(statement, text)
            return
        try:
            with transaction.atomic():
                _copy(statement, text)
            return
        except IntegrityError:  # a key taken since we looked: skip it as ON CONFLICT would
            pass
    fields_all = [meta.get_field(name) for name in fields] + extra
    prepared = [_preparer(f) for f in fields_all]
    values = [f.get_db_prep_save(v, connection) for f, v in zip(extra, defaults)]
    sql = (f"INSERT INTO {quote(meta.db_table)} ({names}) VALUES ({', '.join(['%s'] * len(columns))})"
           + (" ON CONFLICT DO NOTHING" if skip_conflicts else ""))
    params = [tuple(v if prep is None else prep(v) for prep, v in zip(prepared, row)) + tuple(values)
              for row in rows]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


#: Fields whose Python value is what the database driver takes: no per-value preparation.
_PLAIN = (models.CharField, models.TextField, models.IntegerField, models.BigIntegerField,
          models.PositiveIntegerField, models.PositiveSmallIntegerField, models.ForeignKey)


def _preparer(field):
    if type(field) in _PLAIN:  # exact types: a subclass may prepare values its own way
        return None
    return lambda value: field.get_db_prep_save(value, connection)


#: What COPY's text format escapes in a value: backslash, tab and line ends.
COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value: object) -> str:
    """One value in COPY's text format: NULL is \\N; backslash, tab and line ends escaped. JSON as
    Django's JSONField writes it (``json.dumps``), dates and instants in ISO 8601 with their offset."""
    kind = type(value)
    if kind is str:  # most values: checked before anything slower
        return value.translate(_COPY_ESCAPES) if COPY_SPECIAL.search(value) else value
    if kind is int:
        return str(value)
    if value is None:
        return "\\N"
    if kind is bool:
        return "t" if value else "f"
    if isinstance(value, (dict, list)):
        value = json.dumps(value)
    elif isinstance(value, (dt.date, dt.datetime)):
        value = value.isoformat()
    text = str(value)  # a TextChoices member prints as its value
    return text.translate(_COPY_ESCAPES) if COPY_SPECIAL.search(text) else text


def _copy(statement: str, text: str) -> None:
    """Rows already in COPY text, sent in one piece on the connection's own (transaction's) session."""
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(text)
