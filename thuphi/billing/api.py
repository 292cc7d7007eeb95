from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from ninja import Header, Router, Status

from thuphi.billing import selectors, services
from thuphi.billing.models import Bill
from thuphi.billing.schemas import BillIn, BillOut, CancelIn
from thuphi.core.services import idempotent_create, request_fingerprint
from thuphi.registry.selectors import institution_for_write
from thuphi.registry.services import payer_upsert

router = Router(tags=["bills"])


def bill_out(bill: Bill) -> dict:
    base = settings.PUBLIC_BASE_URL
    return {
        "reference": bill.reference,
        "status": bill.status,
        "institution": bill.institution.code,
        "payer_code": bill.payer.code,
        "payer_name": bill.payer.name,
        "title": bill.title,
        "issue_date": bill.issue_date,
        "due_date": bill.due_date,
        "amount_gross": bill.amount_gross,
        "amount_discount": bill.amount_discount,
        "amount_due": bill.amount_due,
        "amount_paid": bill.amount_paid,
        "amount_outstanding": bill.amount_outstanding,
        "vietqr": selectors.bill_qr_payload(bill=bill),
        "vietqr_svg_url": base + reverse("portal:qr_svg", args=[bill.reference]),
        "vietqr_png_url": base + reverse("portal:qr_png", args=[bill.reference]),
        "pay_url": selectors.pay_url(reference=bill.reference),
        "lines": [{"name": ln.name, "kind": ln.kind, "amount": ln.amount, "discount": ln.discount}
                  for ln in bill.lines.all()],
        "cancel_reason": bill.cancel_reason,
    }


@router.post("", response={200: BillOut, 201: BillOut}, summary="Issue a bill (honours Idempotency-Key)")
def create_bill(request, payload: BillIn, idempotency_key: str | None = Header(None, alias="Idempotency-Key")):
    user = request.auth
    data = payload.dict()

    def create() -> str:
        institution = institution_for_write(user=user, code=payload.institution)
        p = payload.payer
        payer = payer_upsert(institution=institution, code=p.code, name=p.name, phone=p.phone,
                             class_name=p.class_name, date_of_birth=p.date_of_birth,
                             insurance_number=p.insurance_number)
        items = [services.LineInput(name=i.name, amount=i.amount, kind=i.kind or "",
                                    discount_percent=i.discount_percent, discount_amount=i.discount_amount)
                 for i in payload.items]
        bill = services.bill_create(actor=user, institution=institution, payer=payer, items=items,
                                    due_date=payload.due_date, title=payload.title)
        return bill.reference

    reference, created = idempotent_create(
        user=user, scope="bills.create", key=idempotency_key, fingerprint=request_fingerprint(data), create=create
    )
    return Status(201 if created else 200, bill_out(selectors.bill_get(user=user, reference=reference)))


@router.get("/{reference}", response=BillOut, summary="A bill by its payment reference")
def get_bill(request, reference: str):
    return bill_out(selectors.bill_get(user=request.auth, reference=reference))


@router.post("/{reference}/cancel", response=BillOut, summary="Cancel an unpaid bill, with a reason")
def cancel_bill(request, reference: str, payload: CancelIn):
    bill = selectors.bill_get(user=request.auth, reference=reference)
    bill = services.bill_cancel(actor=request.auth, bill=bill, reason=payload.reason)
    return bill_out(selectors.bill_get(user=request.auth, reference=bill.reference))
