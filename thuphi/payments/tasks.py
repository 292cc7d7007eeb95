"""Background work: apply stored bank notifications that are still pending.

Several workers may run: each claims events with SELECT … FOR UPDATE SKIP LOCKED on PostgreSQL;
`event_apply` re-checks the status under its own lock, so a race only costs a no-op.
"""
from __future__ import annotations

import logging
import time

from django.db import connection, transaction

from thuphi.payments.models import EventStatus, InboundEvent
from thuphi.payments.services import event_apply

log = logging.getLogger(__name__)


def pending_batch(*, size: int = 200) -> list[int]:
    qs = InboundEvent.objects.filter(status=EventStatus.PENDING).order_by("id")
    if connection.vendor == "postgresql":
        with transaction.atomic():
            return list(qs.select_for_update(skip_locked=True).values_list("id", flat=True)[:size])
    return list(qs.values_list("id", flat=True)[:size])


def apply_pending(*, size: int = 200) -> int:
    done = 0
    for event_id in pending_batch(size=size):
        try:
            event_apply(event_id=event_id)
            done += 1
        except Exception:  # noqa: BLE001 - one bad event must not stop the others
            log.exception("event %s failed", event_id)
    return done


def run_worker(*, once: bool = False, idle_sleep: float = 0.5) -> None:
    from thuphi.core.outbox import outbox_dispatch
    from thuphi.receipts.services import receipts_issue_missing

    sweep_at = 0.0
    while True:
        n = apply_pending()
        # Receipts are issued after each booking commits; the sweep catches any a crash left behind.
        # It scans all matched credits, so once a minute is enough.
        if once or time.monotonic() >= sweep_at:
            n += receipts_issue_missing()
            sweep_at = time.monotonic() + 60
        n += sum(outbox_dispatch().values())
        if once:
            return
        if n == 0:
            time.sleep(idle_sleep)
