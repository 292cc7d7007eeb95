"""Payment confirmations to payers, queued in the outbox after the booking commits."""
from __future__ import annotations

import logging

from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from thuphi.core.formatting import format_vnd
from thuphi.core.outbox import outbox_enqueue
from thuphi.payments.models import Allocation

log = logging.getLogger(__name__)


def payment_confirmations_enqueue(*, credit_id: int) -> int:
    """One message per bill paid and per channel the payer has; safe to call twice."""
    from thuphi.billing.selectors import pay_url

    n = 0
    with translation.override("vi"), transaction.atomic():
        for alloc in Allocation.objects.filter(credit_id=credit_id, amount__gt=0).select_related(
                "bill__payer", "bill__institution"):
            bill, payer = alloc.bill, alloc.bill.payer
            text = _("%(inst)s đã nhận %(amount)s cho phiếu thu %(ref)s (%(title)s). Còn phải nộp: %(left)s. "
                     "Xem: %(url)s") % {
                "inst": bill.institution.name, "amount": format_vnd(alloc.amount), "ref": bill.reference,
                "title": bill.title, "left": format_vnd(bill.amount_outstanding),
                "url": pay_url(reference=bill.reference)}
            subject = _("Xác nhận thanh toán %(ref)s") % {"ref": bill.reference}
            for channel, recipient in (("email", payer.email), ("sms", payer.guardian_phone or payer.phone)):
                n += outbox_enqueue(channel=channel, recipient=recipient, subject=subject, body=text,
                                    dedupe_key=f"paid:{credit_id}:{bill.pk}:{channel}")
    return n


def after_commit(credit_id: int) -> None:
    """Everything a booked payment triggers outside its transaction. Failures are logged and
    never undo the money: the receipt and the messages can be re-issued from the admin."""
    for step in (_receipt, payment_confirmations_enqueue):
        try:
            step(credit_id=credit_id)
        except Exception:  # noqa: BLE001
            log.exception("post-payment step %s failed for credit %s", step.__name__, credit_id)


def _receipt(*, credit_id: int) -> None:
    try:
        from thuphi.receipts.services import receipt_issue_after_commit
    except ImportError:  # receipts app not installed
        return
    receipt_issue_after_commit(credit_id=credit_id)
