from __future__ import annotations

import re

from django.conf import settings
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from thuphi.core.models import User
from thuphi.receipts.errors import ReceiptNotFound
from thuphi.receipts.models import Receipt
from thuphi.receipts.xml import signature_verifies
from thuphi.registry.selectors import institutions_visible_to

#: Where the public verification page lives; the root URLconf mounts thuphi.receipts.urls at
#: "receipts/". Spelled out rather than reversed because it is printed on paper: it must not move
#: if a URL name does.
VERIFY_PATH = "/receipts/verify/"
_CODE_RE = re.compile(r"^[0-9A-Z]{8,16}$")


def credits_without_receipt(*, limit: int) -> list[int]:
    """Ids of matched credits that have no receipt yet, oldest first (so numbers follow the order the
    money arrived): what the sweeps finish."""
    from thuphi.payments.models import Credit, CreditStatus

    return list(Credit.objects.filter(status=CreditStatus.MATCHED, receipt__isnull=True)
                .order_by("id").values_list("pk", flat=True)[:limit])


def receipts_visible_to(*, user: User) -> QuerySet[Receipt]:
    return Receipt.objects.filter(institution__in=institutions_visible_to(user=user).values("pk"))


def receipt_get(*, user: User, receipt_id: int) -> Receipt:
    receipt = (receipts_visible_to(user=user).select_related("institution", "cancelled_by")
               .filter(pk=receipt_id).first())
    if receipt is None:
        # Same answer for "does not exist" and "not yours".
        raise ReceiptNotFound(_("Không tìm thấy biên lai."))
    return receipt


def receipts_list(*, user: User, bill_reference: str = "", limit: int = 50, offset: int = 0) -> list[Receipt]:
    qs = receipts_visible_to(user=user).select_related("institution", "cancelled_by")
    if bill_reference:
        qs = qs.filter(credit__allocations__bill__reference=bill_reference.strip().upper()).distinct()
    return list(qs.order_by("-issued_at", "-id")[offset:offset + limit])


def receipt_public(*, code: str) -> Receipt | None:
    """A receipt by its verification code, for the public page (anyone holding the receipt)."""
    # Typed from paper: case is not significant, and the look-alikes I/L and O read as 1 and 0.
    code = (code or "").strip().upper().translate(str.maketrans("ILO", "110"))
    if not _CODE_RE.match(code):
        return None
    return Receipt.objects.filter(verification_code=code).first()


def receipt_signature_valid(*, receipt: Receipt) -> bool:
    return signature_verifies(receipt)


def verify_url(*, code: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}{VERIFY_PATH}{code}"
