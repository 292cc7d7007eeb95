"""Confirmation texts built in bulk say what the one-credit helpers would: pay URL and amounts."""
from __future__ import annotations

import pytest

from thuphi.billing.selectors import pay_url
from thuphi.core.formatting import format_vnd
from thuphi.core.models import OutboxMessage
from thuphi.payments import notify
from thuphi.payments.tests.test_notify_bulk import paid  # noqa: F401 - fixture


def test_the_batch_pay_url_is_reverse_for_every_reference():
    urls = notify._pay_urls()
    for ref in ("HP7K2M9Q", "abc-123_X", "Có dấu", "a b?c#d", "50%"):
        assert urls(ref) == pay_url(reference=ref)


@pytest.mark.django_db
def test_confirmation_text_names_amounts_and_pay_page(paid):  # noqa: F811
    credit = paid[0]
    bill = credit.allocations.get().bill
    bill.refresh_from_db()
    assert notify.payment_confirmations_enqueue_many(credit_ids=[credit.pk]) == 2
    body = OutboxMessage.objects.get(channel="email").body
    assert body == (f"{bill.institution.name} đã nhận {format_vnd(100_000)} cho phiếu thu {bill.reference} "
                    f"({bill.title}). Còn phải nộp: {format_vnd(bill.amount_outstanding)}. "
                    f"Xem: {pay_url(reference=bill.reference)}")
