"""The bulk row writer behind outbox_enqueue_many and the bulk receipts: COPY on PostgreSQL, an
executemany INSERT elsewhere; either way the rows bulk_create would have written, each once."""
from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from thuphi.core import outbox
from thuphi.core import rows as core_rows
from thuphi.core.models import OutboxMessage, OutboxStatus
from thuphi.core.outbox import OutboxDraft, outbox_enqueue, outbox_enqueue_many
from thuphi.core.rows import rows_insert

pytestmark = pytest.mark.django_db

#: Text COPY must escape (tab, newlines, backslash, its own NULL marker) and text it must not touch.
AWKWARD = "Trường\tTiểu học\nSố 1\r\n\\N \\ \"trích\" 'dẫn' % %s {a,b} — 100.000 đ"
POSTGRES = connection.vendor == "postgresql"


@pytest.fixture
def copies(monkeypatch):
    """The COPY statements sent (PostgreSQL path)."""
    sent: list[str] = []
    real = core_rows._copy

    def spy(statement, text):
        sent.append(statement)
        real(statement, text)

    monkeypatch.setattr(core_rows, "_copy", spy)
    return sent


def test_awkward_text_is_stored_exactly_with_the_model_defaults(copies):
    # given drafts whose text holds every character COPY or SQL quoting could mangle
    drafts = [OutboxDraft(channel="email", recipient="a@example.vn", subject=AWKWARD, body=AWKWARD * 3,
                          dedupe_key="k:awkward"),
              OutboxDraft(channel="sms", recipient="0912345678", subject="", body="", dedupe_key="k:empty"),
              OutboxDraft(channel="sms", recipient="", subject="S", body="B", dedupe_key="k:nobody")]
    # when they are enqueued in bulk
    with CaptureQueriesContext(connection) as ctx:
        assert outbox_enqueue_many(drafts=drafts) == 2
    # then each is stored as given, pending, with the defaults bulk_create gave
    stored = {m.dedupe_key: m for m in OutboxMessage.objects.all()}
    assert set(stored) == {"k:awkward", "k:empty"}
    assert (stored["k:awkward"].subject, stored["k:awkward"].body) == (AWKWARD, AWKWARD * 3)
    assert (stored["k:empty"].subject, stored["k:empty"].body) == ("", "")
    for m in stored.values():
        assert (m.status, m.attempts, m.last_error, m.sent_at) == (OutboxStatus.PENDING, 0, "", None)
        assert m.created_at is not None and m.next_attempt_at is not None
    # by one COPY on PostgreSQL, one INSERT statement elsewhere
    # (Django logs an executemany as "<n> times: <statement>")
    inserts = [q for q in ctx.captured_queries if 'INSERT INTO "core_outboxmessage"' in q["sql"]]
    if POSTGRES:
        assert len(copies) == 1 and copies[0].startswith('COPY "core_outboxmessage"') and not inserts
    else:
        assert not copies and len(inserts) == 1


def test_a_key_taken_meanwhile_is_skipped_not_doubled_nor_an_error(copies):
    # given a message already stored under a key the batch did not see when it looked
    assert outbox_enqueue(channel="email", recipient="a@example.vn", subject="S", body="first", dedupe_key="k1")
    now = OutboxMessage.objects.get().next_attempt_at
    rows = [("email", "a@example.vn", "S", "second", "k1", now), ("email", "b@example.vn", "S", "new", "k2", now)]
    # when the rows are written with conflicts skipped, inside a transaction that goes on afterwards
    with transaction.atomic():
        rows_insert(OutboxMessage, outbox._MESSAGE_FIELDS, rows, skip_conflicts=True, now=now)
        assert OutboxMessage.objects.count() == 2  # the transaction is still usable
    # then the first message is untouched and the new one stored once (on PostgreSQL the COPY
    # failed on the key and the INSERT … ON CONFLICT DO NOTHING retry wrote it)
    assert dict(OutboxMessage.objects.values_list("dedupe_key", "body")) == {"k1": "first", "k2": "new"}
    assert len(copies) == (1 if POSTGRES else 0)


def test_a_conflict_is_an_error_unless_skipped_and_writes_nothing():
    assert outbox_enqueue(channel="email", recipient="a@example.vn", subject="S", body="first", dedupe_key="k1")
    now = OutboxMessage.objects.get().next_attempt_at
    rows = [("email", "b@example.vn", "S", "new", "k2", now), ("email", "a@example.vn", "S", "again", "k1", now)]
    with pytest.raises(IntegrityError), transaction.atomic():
        rows_insert(OutboxMessage, outbox._MESSAGE_FIELDS, rows, now=now)
    assert list(OutboxMessage.objects.values_list("dedupe_key", flat=True)) == ["k1"]


def test_no_rows_is_no_statement():
    with CaptureQueriesContext(connection) as ctx:
        rows_insert(OutboxMessage, outbox._MESSAGE_FIELDS, [])
        assert outbox_enqueue_many(drafts=[]) == 0
    assert ctx.captured_queries == []
