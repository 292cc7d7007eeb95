from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.translation import gettext as _

from thuphi.billing.errors import BillNotFound
from thuphi.billing.models import Bill, BillStatus
from thuphi.billing.services import qr_payload_for
from thuphi.core.models import User
from thuphi.registry.selectors import institutions_visible_to


def bills_visible_to(*, user: User) -> QuerySet[Bill]:
    return Bill.objects.filter(institution__in=institutions_visible_to(user=user).values("pk"))


def bill_get(*, user: User, reference: str) -> Bill:
    bill = (
        bills_visible_to(user=user)
        .select_related("institution", "payer", "bank_account")
        .filter(reference=reference.strip().upper())
        .first()
    )
    if bill is None:
        raise BillNotFound(_("Không tìm thấy phiếu thu “%(r)s”.") % {"r": reference})
    return bill


def bill_public(*, reference: str) -> Bill | None:
    """A bill for the payer-facing page: anyone with the reference may see it."""
    return (
        Bill.objects.select_related("institution__commune__province", "payer", "bank_account")
        .prefetch_related("lines")
        .filter(reference=reference.strip().upper())
        .first()
    )


def bill_qr_payload(*, bill: Bill) -> str:
    """The QR to show now: for the outstanding amount, which after a partial payment is less
    than what was stored at issue. A bill that is no longer open (paid, cancelled, refunded) has no QR:
    nothing must invite another transfer."""
    if not bill.is_open:
        return ""
    if bill.status == BillStatus.UNPAID or bill.amount_outstanding == bill.amount_due:
        return bill.qr_payload
    return qr_payload_for(bank_account=bill.bank_account, amount=bill.amount_outstanding, reference=bill.reference)


def pay_url(*, reference: str) -> str:
    return settings.PUBLIC_BASE_URL + reverse("portal:pay", args=[reference])


def open_bills_for_payer(*, institution_code: str, payer_code: str, phone_last4: str) -> list[Bill] | None:
    """Open bills of one payer, or None when the code and the phone's last 4 digits do not match.

    A wrong phone and an unknown payer give the same None, so the page does not reveal which
    payer codes exist.
    """
    from thuphi.registry.models import Payer

    payer = (
        Payer.objects.filter(institution__code__iexact=institution_code, code__iexact=payer_code)
        .select_related("institution")
        .first()
    )
    if payer is None:
        return None
    phones = [p for p in (payer.guardian_phone, payer.phone) if p]
    if not any(p[-4:] == phone_last4 for p in phones):
        return None
    return list(
        payer.bills.filter(status__in=[BillStatus.UNPAID, BillStatus.PARTIALLY_PAID])
        .select_related("institution")
        .order_by("due_date", "id")
    )
