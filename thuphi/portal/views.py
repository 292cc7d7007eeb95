from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from thuphi.billing import selectors as bill_selectors
from thuphi.billing import vietqr
from thuphi.billing.models import BillStatus
from thuphi.core.masking import mask_name
from thuphi.portal import ratelimit
from thuphi.portal.forms import LookupForm
from thuphi.registry import banks
from thuphi.registry.models import Institution


def home(request):
    return render(request, "portal/home.html", {"form": LookupForm()})


@require_GET
def pay(request, reference: str):
    bill = bill_selectors.bill_public(reference=reference)
    if bill is None:
        return render(request, "portal/pay_unknown.html", {"reference": reference[:32]}, status=404)
    payload = bill_selectors.bill_qr_payload(bill=bill)
    bank = banks.bank_by_bin(bill.bank_account.bank_bin) or {}
    context = {
        "bill": bill,
        "payer_name": mask_name(bill.payer.name),
        "bank": bank,
        "qr_payload": payload,
        "qr_svg": vietqr.render_svg(payload, scale=5) if bill.is_open else "",
        "is_cancelled": bill.status == BillStatus.CANCELLED,
        "is_overdue": bill.is_overdue,
        "is_settled": bill.status in (BillStatus.PAID, BillStatus.OVERPAID),
        # A cancelled or refunded bill must not invite a transfer: no QR, no account to copy.
        "show_transfer": bill.status not in (BillStatus.CANCELLED, BillStatus.REFUNDED),
    }
    return render(request, "portal/pay.html", context)


def _open_bill_or_404(reference: str):
    bill = bill_selectors.bill_public(reference=reference)
    if bill is None or not bill.is_open:
        raise Http404
    return bill


@require_GET
@cache_control(private=True, max_age=60)
def qr_svg(request, reference: str):
    bill = _open_bill_or_404(reference)
    svg = vietqr.render_svg(bill_selectors.bill_qr_payload(bill=bill), scale=6)
    return HttpResponse(svg, content_type="image/svg+xml")


@require_GET
@cache_control(private=True, max_age=60)
def qr_png(request, reference: str):
    bill = _open_bill_or_404(reference)
    png = vietqr.render_png(bill_selectors.bill_qr_payload(bill=bill), scale=8)
    response = HttpResponse(png, content_type="image/png")
    response["Content-Disposition"] = f'inline; filename="vietqr-{bill.reference}.png"'
    return response


def lookup(request):
    """Find a payer's open bills by institution + payer code, unlocked by the phone's last 4 digits.

    Rate limited per client address and per (institution, payer code), so neither a payer code
    nor the 10,000 possible endings can be tried by brute force.
    """
    form = LookupForm(request.POST or None)
    bills = None
    error = ""
    status = 200
    if request.method == "POST" and form.is_valid():
        inst_code = form.cleaned_data["institution"].strip()
        payer_code = form.cleaned_data["payer_code"].strip()
        limit, window = settings.PORTAL_LOOKUP_RATE, settings.PORTAL_LOOKUP_WINDOW_SECONDS
        allowed_ip = ratelimit.hit(bucket=f"ip:{ratelimit.client_ip(request)}", limit=limit, window=window)
        allowed_payer = ratelimit.hit(bucket=f"payer:{inst_code.upper()}:{payer_code.upper()}", limit=limit,
                                      window=window)
        if not (allowed_ip and allowed_payer):
            error = _("Bạn đã tra cứu quá nhiều lần. Vui lòng thử lại sau ít phút.")
            status = 429
        else:
            found = bill_selectors.open_bills_for_payer(
                institution_code=inst_code, payer_code=payer_code, phone_last4=form.cleaned_data["phone_last4"]
            )
            if found is None:
                error = _("Không tìm thấy thông tin khớp. Kiểm tra lại mã đơn vị, mã người nộp và 4 số cuối "
                          "điện thoại.")
            else:
                bills = found
    institution_name = ""
    if bills is not None:
        institution_name = Institution.objects.filter(code=form.cleaned_data["institution"].strip()).values_list(
            "name", flat=True).first() or ""
    return render(request, "portal/lookup.html",
                  {"form": form, "bills": bills, "error": error, "institution_name": institution_name},
                  status=status)
