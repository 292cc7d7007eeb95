"""Background work: apply stored bank notifications that are still pending.

Several workers may run. Each books a batch of events in one transaction
(`services.events_apply_batch`), claimed with SELECT … FOR UPDATE SKIP LOCKED on PostgreSQL, so
two workers never take the same events. If a batch fails (a statement import booked one of its
bank transactions in between, a deadlock, a bad event), it is rolled back whole and its events
are applied one by one with `event_apply`, which re-checks each under its own lock: a race only
costs a no-op, and one bad event cannot hold the others back.
"""
from __future__ import annotations

import logging
import time

from django.db import connection, transaction

from thuphi.payments.models import EventStatus, InboundEvent
from thuphi.payments.services import event_apply, events_apply_batch

log = logging.getLogger(__name__)

#: Events per transaction: large enough that a commit (one WAL flush) is shared by many credits,
#: small enough that a batch holds its bill and statistics locks for a fraction of a second.
BATCH_SIZE = 200


def pending_batch(*, size: int = BATCH_SIZE) -> list[int]:
    """Ids of the oldest pending events not being booked by another worker right now."""
    qs = InboundEvent.objects.filter(status=EventStatus.PENDING).order_by("id")
    if connection.vendor == "postgresql":
        with transaction.atomic():
            return list(qs.select_for_update(skip_locked=True).values_list("id", flat=True)[:size])
    return list(qs.values_list("id", flat=True)[:size])


def apply_pending(*, size: int = BATCH_SIZE) -> int:
    """Settle up to `size` pending events; return how many were taken."""
    try:
        return events_apply_batch(size=size)
    except Exception:  # noqa: BLE001 - the batch is rolled back; apply its events one by one
        log.exception("applying a batch of events failed; applying them one by one")
    done = 0
    for event_id in pending_batch(size=size):
        try:
            event_apply(event_id=event_id)
            done += 1
        except Exception:  # noqa: BLE001 - one bad event must not stop the others
            log.exception("event %s failed", event_id)
    return done


#: Credits finished per sweep pass; a pass that makes progress on a full page runs again at once.
SWEEP_SIZE = 5_000


def sweep_unfinished(*, limit: int = SWEEP_SIZE) -> tuple[int, int]:
    """Give matched credits left without a receipt their receipt and payment confirmations.

    Who needs it: statement lines (booked in bulk; their receipts and messages are left to this
    sweep so an import of a million lines does not wait for them) and any credit whose after-commit
    step a crash cut short. `notify.after_commit_many` is idempotent (one receipt per credit,
    confirmations keyed per credit and bill), so a credit met twice gains nothing twice.
    Returns (credits looked at, receipts now issued among them)."""
    from thuphi.payments.notify import after_commit_many
    from thuphi.receipts.models import Receipt
    from thuphi.receipts.selectors import credits_without_receipt

    ids = credits_without_receipt(limit=limit)
    if not ids:
        return 0, 0
    after_commit_many(ids)
    return len(ids), Receipt.objects.filter(credit_id__in=ids).count()


def run_worker(*, once: bool = False, idle_sleep: float = 0.5) -> None:
    """Apply events, finish credits left without a receipt, send the outbox; `once`: until nothing is
    pending, then return."""
    from thuphi.core.outbox import outbox_dispatch

    sweep_at = 0.0
    while True:
        n = apply_pending()
        # Booked batches issue their own receipts after commit; the sweep finishes statement lines and
        # what a crash left behind. It scans the matched credits, so once a minute, unless it is
        # working through a backlog (a full page with progress: go on at once; none: a credit it
        # cannot finish, e.g. an exhausted receipt serial, must not make it spin).
        if (once and n == 0) or time.monotonic() >= sweep_at:
            seen, issued = sweep_unfinished()
            n += issued
            sweep_at = time.monotonic() + (0 if seen >= SWEEP_SIZE and issued else 60)
        n += sum(outbox_dispatch().values())
        if once and n == 0:
            return
        if n == 0:
            time.sleep(idle_sleep)
