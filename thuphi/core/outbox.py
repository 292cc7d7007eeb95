"""Outbound notifications through an outbox: enqueue inside the business transaction, send later.

Channels are pluggable: e-mail goes through Django's mail backend; SMS and Zalo ZNS take a
provider class named in settings (OUTBOX_CHANNELS). Without one configured, the SMS/Zalo
channel records the message as sent to the log, which is what a hospital intranet without
an SMS contract gets.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from thuphi.core.models import OutboxMessage, OutboxStatus
from thuphi.core.rows import rows_insert

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8


class Channel(Protocol):
    def send(self, *, recipient: str, subject: str, body: str) -> None: ...


class EmailChannel:
    def send(self, *, recipient: str, subject: str, body: str) -> None:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [recipient], fail_silently=False)


class LogChannel:
    """Stand-in for SMS/Zalo until a provider is configured: records what would be sent."""

    def __init__(self, name: str) -> None:
        self.name = name

    def send(self, *, recipient: str, subject: str, body: str) -> None:
        from thuphi.core.masking import mask_number

        log.info("%s to %s: %s", self.name, mask_number(recipient), body[:160])


def channel_for(name: str) -> Channel:
    configured = getattr(settings, "OUTBOX_CHANNELS", {}).get(name)
    if configured:
        return import_string(configured)()
    if name == "email":
        return EmailChannel()
    return LogChannel(name)


def outbox_enqueue(*, channel: str, recipient: str, subject: str, body: str, dedupe_key: str) -> bool:
    """Store a message once per dedupe key; return False when it was already there."""
    if not recipient:
        return False
    try:
        with transaction.atomic():
            OutboxMessage.objects.create(channel=channel, recipient=recipient[:255], subject=subject[:255],
                                         body=body, dedupe_key=dedupe_key[:191], next_attempt_at=timezone.now())
        return True
    except IntegrityError:
        return False


@dataclass(frozen=True)
class OutboxDraft:
    """One message for ``outbox_enqueue_many``; the fields of ``outbox_enqueue``."""

    channel: str
    recipient: str
    subject: str
    body: str
    dedupe_key: str


def outbox_enqueue_many(*, drafts: Iterable[OutboxDraft]) -> int:
    """``outbox_enqueue`` for many messages in two statements: each dedupe key is stored once, by
    this call or an earlier one; messages without a recipient are dropped. Returns how many were
    new when looked up: a concurrent enqueuer of the same key may make that one more than what
    this call inserted, never a second message (the unique key, and ``rows_insert``'s conflict
    handling, see to that)."""
    now = timezone.now()
    fresh: dict[str, tuple] = {}
    for d in drafts:
        key = d.dedupe_key[:191]
        if d.recipient and key not in fresh:
            fresh[key] = (d.channel, d.recipient[:255], d.subject[:255], d.body, key, now)
    if not fresh:
        return 0
    keys = list(fresh)
    for start in range(0, len(keys), 500):  # bounded IN lists (SQLite caps bound parameters)
        for key in OutboxMessage.objects.filter(dedupe_key__in=keys[start:start + 500]).values_list(
                "dedupe_key", flat=True):
            del fresh[key]
    if fresh:
        rows_insert(OutboxMessage, _MESSAGE_FIELDS, list(fresh.values()), skip_conflicts=True, now=now)
    return len(fresh)


#: What ``outbox_enqueue_many`` writes of a message, in row order; the rest takes the model's defaults.
_MESSAGE_FIELDS = ("channel", "recipient", "subject", "body", "dedupe_key", "next_attempt_at")


# --- bulk rows ------------------------------------------------------------------------------------
# Shared with receipts' bulk issuer. It belongs in a core database module of its own.


def _claim(*, limit: int) -> list[int]:
    now = timezone.now()
    with transaction.atomic():
        qs = OutboxMessage.objects.filter(status__in=[OutboxStatus.PENDING, OutboxStatus.FAILED],
                                          next_attempt_at__lte=now).order_by("id")
        if transaction.get_connection().vendor == "postgresql":
            qs = qs.select_for_update(skip_locked=True)
        ids = list(qs.values_list("id", flat=True)[:limit])
        OutboxMessage.objects.filter(pk__in=ids).update(status=OutboxStatus.SENDING)
        return ids


def outbox_dispatch(*, limit: int = 100) -> dict[str, int]:
    """Send what is due. A failure is retried with exponential back-off, up to MAX_ATTEMPTS."""
    counts = {"sent": 0, "failed": 0, "dead": 0}
    for msg in OutboxMessage.objects.filter(pk__in=_claim(limit=limit)).order_by("id"):
        try:
            channel_for(msg.channel).send(recipient=msg.recipient, subject=msg.subject, body=msg.body)
        except Exception as exc:  # noqa: BLE001 - any channel error is retried later
            msg.attempts += 1
            dead = msg.attempts >= MAX_ATTEMPTS
            msg.status = OutboxStatus.DEAD if dead else OutboxStatus.FAILED
            msg.last_error = repr(exc)[:2000]
            msg.next_attempt_at = timezone.now() + dt.timedelta(seconds=30 * 2 ** min(msg.attempts, 10))
            msg.save(update_fields=["attempts", "status", "last_error", "next_attempt_at"])
            counts["dead" if dead else "failed"] += 1
            continue
        msg.attempts += 1
        msg.status = OutboxStatus.SENT
        msg.sent_at = timezone.now()
        msg.save(update_fields=["attempts", "status", "sent_at"])
        counts["sent"] += 1
    return counts
