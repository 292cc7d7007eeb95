"""Which bill(s) a credit pays, and why. Pure reads; booking is in services."""
from __future__ import annotations

from dataclasses import dataclass

from thuphi.billing import reference as refcode
from thuphi.billing.models import Bill, BillStatus
from thuphi.payments.models import VirtualAccount

#: Bills that can still take money. A cancelled or refunded bill never does: such a credit
#: goes to the review queue instead.
PAYABLE = (BillStatus.UNPAID, BillStatus.PARTIALLY_PAID, BillStatus.PAID, BillStatus.OVERPAID)


@dataclass(frozen=True)
class Match:
    bill_ids: list[int]
    reason: str


def match_credit(*, institution_id: int, virtual_account: str, description: str) -> tuple[Match | None, str]:
    """Return (match, reason). A None match comes with the reason it could not be made.

    A reference only matches a bill of the institution that owns the receiving account: a
    valid code of another institution's bill in the memo is not ours to book.
    """
    if virtual_account:
        va = (VirtualAccount.objects.filter(number=virtual_account, is_active=True,
                                            bank_account__institution_id=institution_id)
              .select_related("bill").first())
        if va is not None:
            if va.bill_id:
                if va.bill.status in PAYABLE:
                    return Match([va.bill_id], f"virtual account {virtual_account} belongs to bill "
                                               f"{va.bill.reference}"), ""
                return None, f"virtual account {virtual_account}: bill {va.bill.reference} is {va.bill.status}"
            bill = (Bill.objects.filter(payer_id=va.payer_id, status__in=(BillStatus.UNPAID,
                                                                            BillStatus.PARTIALLY_PAID))
                    .order_by("due_date", "id").first())
            if bill is not None:
                return Match([bill.pk], f"virtual account {virtual_account} of payer; oldest open bill "
                                        f"{bill.reference}"), ""
            return None, f"virtual account {virtual_account}: payer has no open bill"
    found = refcode.extract_with_reason(description or "")
    if not found:
        return None, "no valid payment reference in the description"
    refs = [r for r, _how in found]
    bills = {b.reference: b for b in Bill.objects.filter(reference__in=refs, institution_id=institution_id)
             .only("id", "reference", "status")}
    ids, reasons, problems = [], [], []
    for ref, how in found:
        bill = bills.get(ref)
        if bill is None:
            problems.append(f"{ref} is not a bill of this institution")
        elif bill.status not in PAYABLE:
            problems.append(f"{ref} is {bill.status}")
        else:
            ids.append(bill.pk)
            reasons.append(f"reference {ref} found in description ({how})")
    if not ids:
        return None, "; ".join(problems)
    return Match(ids, "; ".join(reasons + problems)), ""
