"""Shared test helpers for receipts."""
from __future__ import annotations

from django.utils import timezone

from thuphi.billing.models import Bill
from thuphi.payments.models import Allocation, Credit, CreditSource, CreditStatus


def matched_credit(bill: Bill, amount: int, *, method: str = "transfer", bank_reference: str = "") -> Credit:
    """A matched credit with its allocation, written directly.

    Numbering tests use this instead of the payments service so that they control exactly when a
    receipt is issued, whether or not payments issues receipts after commit.
    """
    credit = Credit.objects.create(
        institution_id=bill.institution_id, bank_account_id=bill.bank_account_id, method=method,
        source=CreditSource.COUNTER, amount=amount, occurred_at=timezone.now(), status=CreditStatus.MATCHED,
        bank_reference=bank_reference,
    )
    Allocation.objects.create(credit=credit, bill=bill, amount=amount)
    return credit
