"""Payment confirmations to payers, queued in the outbox after the booking commits."""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple

from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from thuphi.billing.models import Bill
from thuphi.core.formatting import format_vnd
from thuphi.core.outbox import OutboxDraft, outbox_enqueue, outbox_enqueue_many
from thuphi.payments.models import Allocation

log = logging.getLogger(__name__)

#: Credits whose allocations are read (and messages inserted) per statement.
CONFIRMATION_CHUNK = 500


class _Paid(NamedTuple):
    """What a confirmation says about one paid allocation: read as plain values in one join (model
    instances of allocation, bill, payer and institution cost more to build than the text)."""

    credit_id: int
    bill_id: int
    amount: int
    reference: str
    title: str
    status: str
    amount_due: int
    amount_paid: int
    institution_name: str
    email: str
    guardian_phone: str
    phone: str


_PAID_COLUMNS = ("credit_id", "bill_id", "amount", "bill__reference", "bill__title", "bill__status",
                 "bill__amount_due", "bill__amount_paid", "bill__institution__name", "bill__payer__email",
                 "bill__payer__guardian_phone", "bill__payer__phone")
#: References the pay URL carries as they are: reverse() would neither quote nor refuse them.
_PLAIN_REFERENCE = re.compile(r"[A-Za-z0-9_-]+")
_PLACEHOLDER = "REFERENCE"


def _pay_urls() -> Callable[[str], str]:
    """``pay_url`` for many references at one ``reverse`` per batch: the URL of a placeholder, cut
    where the placeholder starts. A reference that URL quoting would change goes through
    ``pay_url`` itself."""
    from thuphi.billing.selectors import pay_url

    sample = pay_url(reference=_PLACEHOLDER)
    if not sample.endswith(_PLACEHOLDER):  # the route changed shape: no shortcut
        return lambda reference: pay_url(reference=reference)
    prefix = sample[:-len(_PLACEHOLDER)]
    return lambda reference: (prefix + reference if _PLAIN_REFERENCE.fullmatch(reference)
                              else pay_url(reference=reference))


def _confirmations(paid: Iterable[_Paid]) -> Iterator[OutboxDraft]:
    """The messages of paid allocations: one per bill paid and per channel the payer has."""
    vnd: dict[int, str] = {}  # a batch repeats the same few amounts

    def money(amount: int) -> str:
        text = vnd.get(amount)
        if text is None:
            text = vnd[amount] = format_vnd(amount)
        return text

    with translation.override("vi"):  # texts and URL as a Vietnamese request would have them
        url_of = _pay_urls()
        body = _("%(inst)s đã nhận %(amount)s cho phiếu thu %(ref)s (%(title)s). Còn phải nộp: %(left)s. "
                 "Xem: %(url)s")
        subject_of = _("Xác nhận thanh toán %(ref)s")
    outstanding = Bill.amount_outstanding.fget  # the bill's own rule, on the values read
    for p in paid:
        text = body % {
            "inst": p.institution_name, "amount": money(p.amount), "ref": p.reference, "title": p.title,
            "left": money(outstanding(p)), "url": url_of(p.reference)}
        subject = subject_of % {"ref": p.reference}
        for channel, recipient in (("email", p.email), ("sms", p.guardian_phone or p.phone)):
            yield OutboxDraft(channel=channel, recipient=recipient, subject=subject, body=text,
                              dedupe_key=f"paid:{p.credit_id}:{p.bill_id}:{channel}")


def _paid(**which) -> list[_Paid]:
    rows = (Allocation.objects.filter(amount__gt=0, **which).order_by("credit_id", "id")
            .values_list(*_PAID_COLUMNS))
    return [_Paid._make(row) for row in rows]


def payment_confirmations_enqueue(*, credit_id: int) -> int:
    """One message per bill paid and per channel the payer has; safe to call twice."""
    n = 0
    with transaction.atomic():
        for d in _confirmations(_paid(credit_id=credit_id)):
            n += outbox_enqueue(channel=d.channel, recipient=d.recipient, subject=d.subject, body=d.body,
                                dedupe_key=d.dedupe_key)
    return n


def payment_confirmations_enqueue_many(*, credit_ids: Sequence[int]) -> int:
    """``payment_confirmations_enqueue`` for many credits: one transaction, one read of the
    allocations (joined with bill, payer and institution) and one insert per chunk. Safe to call
    twice, and after or alongside the one-credit version: the dedupe keys are the same."""
    ids = sorted(set(credit_ids))
    n = 0
    with transaction.atomic():
        for start in range(0, len(ids), CONFIRMATION_CHUNK):
            paid = _paid(credit_id__in=ids[start:start + CONFIRMATION_CHUNK])
            n += outbox_enqueue_many(drafts=_confirmations(paid))
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
    finished by the worker's sweep (``payments.tasks.sweep_unfinished``, receipt and confirmations).
    Confirmations that fail for a credit that did get its receipt are lost, as with ``after_commit``
    (they can be re-sent from the admin)."""
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
