from __future__ import annotations

from ninja import Header, Router, Status

from thuphi.billing.selectors import bill_get
from thuphi.core.services import idempotent_create, request_fingerprint
from thuphi.payments import services
from thuphi.payments.models import Credit
from thuphi.payments.schemas import PaymentIn, PaymentOut
from thuphi.payments.webhook_http import webhook_response

router = Router(tags=["payments"])
webhooks = Router(tags=["webhooks"])


def payment_out(credit: Credit, reference: str) -> dict:
    from thuphi.billing.models import Bill

    bill = Bill.objects.get(reference=reference)
    return {
        "id": credit.pk, "method": credit.method, "source": credit.source, "amount": credit.amount,
        "status": credit.status, "external_ref": credit.external_ref, "match_reason": credit.match_reason,
        "allocations": [{"reference": a.bill.reference, "amount": a.amount}
                        for a in credit.allocations.select_related("bill")],
        "bill_reference": bill.reference, "bill_status": bill.status, "bill_amount_paid": bill.amount_paid,
    }


@router.post("/bills/{reference}/payments", response={200: PaymentOut, 201: PaymentOut},
             summary="Record a cash, card, transfer or e-wallet payment on a bill (honours Idempotency-Key)")
def record_payment(request, reference: str, payload: PaymentIn,
                   idempotency_key: str | None = Header(None, alias="Idempotency-Key")):
    user = request.auth
    bill = bill_get(user=user, reference=reference)

    def create() -> str:
        credit = services.payment_record(actor=user, bill=bill, method=payload.method, amount=payload.amount,
                                         external_ref=payload.external_ref)
        return str(credit.pk)

    credit_id, created = idempotent_create(
        user=user, scope=f"payments.record:{bill.reference}", key=idempotency_key,
        fingerprint=request_fingerprint(payload.dict()), create=create)
    credit = Credit.objects.get(pk=int(credit_id))
    return Status(201 if created else 200, payment_out(credit, bill.reference))


@webhooks.post("/{provider}", auth=None, summary="Bank credit notifications (sepay, casso, payos, generic)",
               response={200: dict, 201: dict, 401: dict, 404: dict, 409: dict, 422: dict})
def receive_webhook(request, provider: str):
    """verify -> store (unique per provider and event id) -> acknowledge -> apply after commit.

    Production serves this URL through `webhook_http.WebhookHandler` (thuphi.config.wsgi), which
    calls the same function without the middleware stack."""
    return webhook_response(request, provider)
