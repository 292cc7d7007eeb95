from __future__ import annotations

from django.http import JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Header, Router, Status

from thuphi.billing.selectors import bill_get
from thuphi.core.services import idempotent_create, request_fingerprint
from thuphi.payments import services
from thuphi.payments.models import Credit
from thuphi.payments.schemas import PaymentIn, PaymentOut

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


def _reject(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status=status)


@webhooks.post("/{provider}", auth=None, summary="Bank credit notifications (sepay, casso, payos, generic)",
               response={200: dict, 201: dict, 401: dict, 404: dict, 409: dict, 422: dict})
def receive_webhook(request, provider: str):
    """verify -> store (unique per provider and event id) -> acknowledge -> apply after commit."""
    from thuphi.payments.providers import PROVIDERS, WebhookRejected

    prov = PROVIDERS.get(provider)
    if prov is None:
        return _reject("unknown_provider", _("Nhà cung cấp “%(p)s” không được hỗ trợ.") % {"p": provider[:32]}, 404)
    raw = request.body
    try:
        body = prov.parse_json(raw)
        keys = prov.account_keys(body)
        # Some providers confirm a webhook URL with a ping naming a made-up account (payOS
        # 12345678, Casso 88888888): `?account=` in the configured URL names the real one.
        if request.GET.get("account"):
            keys = [*keys, request.GET["account"][:32]]
        conn = services.connection_for(provider=provider, account_keys=keys)
        if conn is None:
            # Same answer as a bad signature: an unverified caller learns nothing about accounts.
            return _reject("bad_signature", _("Chữ ký hoặc khóa không hợp lệ."), 401)
        prov.verify(headers=request.headers, raw_body=raw, body=body, secrets=conn.secrets, now=timezone.now())
        credits = prov.normalize(body)
    except WebhookRejected as exc:
        status = 422 if exc.code in ("malformed_body", "unsupported_event") else 401
        return _reject(exc.code, exc.message, status)
    results = [services.event_receive(provider=provider, bank_account=conn.bank_account, credit=c, raw_body=raw)
               for c in credits]
    status, body_out = prov.success_response()
    if isinstance(body_out, dict):
        body_out = {**body_out, "thuphi": results}
    # A plain JsonResponse: nothing to validate on the hottest path of the API.
    return JsonResponse(body_out, status=status, safe=False)
