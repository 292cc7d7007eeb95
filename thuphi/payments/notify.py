"""Payment confirmations to payers, queued in the outbox after the booking commits."""
from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from thuphi.core.formatting import format_vnd
from thuphi.core.outbox import OutboxDraft, outbox_enqueue, outbox_enqueue_many
from thuphi.payments.models import Allocation

log = logging.getLogger(__name__)

#: Credits whose allocations are read (and messages inserted) per statement.
CONFIRMATION_CHUNK = 500


def _confirmations(allocations) -> Iterator[OutboxDraft]:
    """The messages of paid allocations (``bill__payer`` and ``bill__institution`` loaded): one per
    bill paid and per channel the payer has."""
    from thuphi.billing.selectors import pay_url

    with translation.override("vi"):
        for alloc in allocations:
            bill, payer = alloc.bill, alloc.bill.payer
            text = _("%(inst)s đã nhận %(amount)s cho phiếu thu %(ref)s (%(title)s). Còn phải nộp: %(left)s. "
                     "Xem: %(url)s") % {
                "inst": bill.institution.name, "amount": format_vnd(alloc.amount), "ref": bill.reference,
                "title": bill.title, "left": format_vnd(bill.amount_outstanding),
                "url": pay_url(reference=bill.reference)}
            subject = _("Xác nhận thanh toán %(ref)s") % {"ref": bill.reference}
            for channel, recipient in (("email", payer.email), ("sms", payer.guardian_phone or payer.phone)):
                yield OutboxDraft(channel=channel, recipient=recipient, subject=subject, body=text,
                                  dedupe_key=f"paid:{alloc.credit_id}:{bill.pk}:{channel}")


def _paid_allocations():
    return Allocation.objects.filter(amount__gt=0).select_related("bill__payer", "bill__institution")


def payment_confirmations_enqueue(*, credit_id: int) -> int:
    """One message per bill paid and per channel the payer has; safe to call twice."""
    n = 0
    with transaction.atomic():
        for d in _confirmations(_paid_allocations().filter(credit_id=credit_id)):
            n += outbox_enqueue(channel=d.channel, recipient=d.recipient, subject=d.subject, body=d.body,
                                dedupe_key=d.dedupe_key)
    return n


def payment_confirmations_enqueue_many(*, credit_ids: Sequence[int]) -> int:
    """``payment_confirmations_enqueue`` for many credits: one transaction, one read of the
    allocations (with bill, payer and institution) and one insert per chunk. Safe to call twice,
    and after or alongside the one-credit version: the dedupe keys are the same."""
    ids = sorted(set(credit_ids))
    n = 0
    with transaction.atomic():
        for start in range(0, len(ids), CONFIRMATION_CHUNK):
            allocations = _paid_allocations().filter(credit_id__in=ids[start:start + CONFIRMATION_CHUNK])
            n += outbox_enqueue_many(drafts=list(_confirmations(allocations.order_by("credit_id", "id"))))
    return n


def after_commit(credit_id: int) -> None:
    """Everything a booked payment triggers outside its transaction. Failures are logged and
    never undo the money: the receipt and the messages can be re-issued from the admin."""
    for step in (_receipt, payment_confirmations_enqueue):
        try:
            step(credit_id=credit_id)
        except Exception:  # noqa: BLE001
            log.exception("post-payment step %s failed for credit %s", step.__name__, credit_id)


def after_commit_many(credit_ids: Sequence[int]) -> None:
    """``after_commit`` for the credits of a committed batch, at a set-based cost: the receipts in
    bulk (``receipts_issue_for_credits``: numbered in credit-id order per institution, one
    transaction per chunk), then the confirmations of all in one transaction. Failures are logged
    and never undo the money. A bulk receipt chunk that fails is retried credit by credit inside
    ``receipts_issue_for_credits``; whatever still has no receipt (a crash, the database gone) is
    issued by the worker's sweep, ``receipts_issue_missing``. Confirmations that fail are lost, as
    with ``after_commit`` (they can be re-sent from the admin)."""
    if not credit_ids:
        return
    for step in (_receipts_many, payment_confirmations_enqueue_many):
        try:
            step(credit_ids=credit_ids)
        except Exception:  # noqa: BLE001
            log.exception("post-payment step %s failed for %s credits", step.__name__, len(credit_ids))


def _receipts_many(*, credit_ids: Sequence[int]) -> None:
    try:
        from thuphi.receipts.services import receipts_issue_for_credits
    except ImportError:  # receipts app not installed
        return
    receipts_issue_for_credits(credit_ids=credit_ids)


def _receipt(*, credit_id: int) -> None:
    try:
        from thuphi.receipts.services import receipt_issue_after_commit
    except ImportError:  # receipts app not installed
        return
    receipt_issue_after_commit(credit_id=credit_id)
