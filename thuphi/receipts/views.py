"""Public pages: anyone holding a receipt checks it by the code printed on it (and in its QR).

No rate limit: the code carries 60 random bits, so guessing one is out of reach, and a miss reveals
nothing but "no such code".
"""
from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from thuphi.core.masking import mask_name
from thuphi.receipts import selectors
from thuphi.receipts.models import Receipt
from thuphi.receipts.pdf import receipt_pdf
from thuphi.receipts.xml import VN_TZ, receipt_xml, signature_fingerprint


def _unknown(request, code: str) -> HttpResponse:
    response = render(request, "receipts/verify.html", {"receipt": None, "code": code[:32]}, status=404)
    response["X-Robots-Tag"] = "noindex"
    return response


def _filename(receipt: Receipt, ext: str) -> str:
    return f"bien-lai-{receipt.serial}-{receipt.number_display}.{ext}"


# Private and revalidated: a receipt may be cancelled at any time and the page must say so at once.
@require_GET
@cache_control(private=True, no_cache=True)
def verify(request, code: str):
    receipt = selectors.receipt_public(code=code)
    if receipt is None:
        return _unknown(request, code)
    context = {
        "receipt": receipt,
        "payer_name": mask_name(receipt.payer_name),
        "signature_valid": selectors.receipt_signature_valid(receipt=receipt),
        "fingerprint": signature_fingerprint(receipt.signature),
        "cancelled_at": timezone.localtime(receipt.cancelled_at, VN_TZ) if receipt.cancelled_at else None,
    }
    response = render(request, "receipts/verify.html", context)
    response["X-Robots-Tag"] = "noindex"
    return response


@require_GET
@cache_control(private=True, no_cache=True)
def verify_pdf(request, code: str):
    receipt = selectors.receipt_public(code=code)
    if receipt is None:
        return _unknown(request, code)
    response = HttpResponse(receipt_pdf(receipt=receipt), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{_filename(receipt, "pdf")}"'
    response["X-Robots-Tag"] = "noindex"
    return response


@require_GET
@cache_control(private=True, no_cache=True)
def verify_xml(request, code: str):
    receipt = selectors.receipt_public(code=code)
    if receipt is None:
        return _unknown(request, code)
    response = HttpResponse(receipt_xml(receipt=receipt), content_type="application/xml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_filename(receipt, "xml")}"'
    response["X-Robots-Tag"] = "noindex"
    return response
