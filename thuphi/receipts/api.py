"""Staff API for receipts, mounted by the root API at /api/v1/receipts."""
from __future__ import annotations

from ninja import Query, Router, Schema
from pydantic import Field

from thuphi.receipts import selectors, services
from thuphi.receipts.models import Receipt
from thuphi.receipts.schemas import ReceiptCancelIn, ReceiptOut

router = Router(tags=["receipts"])


class ReceiptFilters(Schema):
    bill: str = Field("", max_length=16, description="payment reference of a bill the receipt paid")
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0)


def receipt_out(receipt: Receipt) -> dict:
    url = selectors.verify_url(code=receipt.verification_code)
    return {
        "id": receipt.pk, "receipt_name": receipt.receipt_name, "form_symbol": receipt.form_symbol,
        "serial": receipt.serial, "year": receipt.year, "number": receipt.number_display,
        "issued_at": receipt.issued_at, "issue_date": receipt.issue_date,
        "institution": receipt.institution.code, "institution_name": receipt.institution_name,
        "institution_tax_code": receipt.institution_tax_code, "institution_address": receipt.institution_address,
        "payer_code": receipt.payer_code, "payer_name": receipt.payer_name,
        "bill_reference": receipt.bill_reference, "fee_names": receipt.fee_names, "amount": receipt.amount,
        "amount_in_words": receipt.amount_in_words, "method": receipt.method, "method_label": receipt.method_label,
        "bank_reference": receipt.bank_reference, "credit_id": receipt.credit_id, "status": receipt.status,
        "cancel_reason": receipt.cancel_reason, "cancelled_at": receipt.cancelled_at,
        "cancelled_by": receipt.cancelled_by.username if receipt.cancelled_by_id else "",
        "signed_by": receipt.signed_by, "signature_algorithm": receipt.signature_algorithm,
        "signature": receipt.signature,
        "signature_valid": selectors.receipt_signature_valid(receipt=receipt),
        "verification_code": receipt.verification_code,
        "verify_url": url, "pdf_url": url + "/pdf", "xml_url": url + "/xml",
    }


@router.get("", response=list[ReceiptOut], summary="Receipts in the caller's scope, newest first")
def list_receipts(request, filters: Query[ReceiptFilters]):
    receipts = selectors.receipts_list(user=request.auth, bill_reference=filters.bill, limit=filters.limit,
                                       offset=filters.offset)
    return [receipt_out(r) for r in receipts]


@router.get("/{int:receipt_id}", response=ReceiptOut, summary="One receipt")
def get_receipt(request, receipt_id: int):
    return receipt_out(selectors.receipt_get(user=request.auth, receipt_id=receipt_id))


@router.post("/{int:receipt_id}/cancel", response=ReceiptOut,
             summary="Cancel a receipt, with a reason (it keeps its number; the money is not touched)")
def cancel_receipt(request, receipt_id: int, payload: ReceiptCancelIn):
    receipt = selectors.receipt_get(user=request.auth, receipt_id=receipt_id)
    services.receipt_cancel(actor=request.auth, receipt=receipt, reason=payload.reason)
    return receipt_out(selectors.receipt_get(user=request.auth, receipt_id=receipt_id))
