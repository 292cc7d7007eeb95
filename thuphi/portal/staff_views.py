from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from thuphi.billing import selectors as bill_selectors
from thuphi.billing import services as bill_services
from thuphi.billing.models import BillStatus
from thuphi.core.errors import ThuphiError
from thuphi.portal.forms import BillForm, CancelForm
from thuphi.registry.selectors import institution_for_write, institutions_visible_to
from thuphi.registry.services import payer_upsert


class StaffLoginView(LoginView):
    template_name = "portal/staff/login.html"
    redirect_authenticated_user = True


@require_POST
def logout_view(request):
    logout(request)
    return redirect("portal:login")


@login_required
def dashboard(request):
    bills = bill_selectors.bills_visible_to(user=request.user).select_related("institution", "payer")
    status = request.GET.get("status", "")
    if status in BillStatus.values:
        bills = bills.filter(status=status)
    q = request.GET.get("q", "").strip()
    if q:
        bills = bills.filter(reference__icontains=q) | bills.filter(payer__code__iexact=q)
    page = Paginator(bills.order_by("-created_at", "-id"), 25).get_page(request.GET.get("page"))
    return render(request, "portal/staff/dashboard.html",
                  {"page": page, "status": status, "q": q, "statuses": BillStatus.choices,
                   "can_write": request.user.can_write})


@login_required
def bill_new(request):
    if not request.user.can_write:
        # Read-only roles (provincial monitors) get no form at all, not a form that fails on submit.
        return render(request, "portal/staff/forbidden.html",
                      {"message": _("Tài khoản của bạn chỉ có quyền xem, không lập được phiếu thu.")}, status=403)
    institutions = list(institutions_visible_to(user=request.user).order_by("code")[:500])
    form = BillForm(request.POST or None, institutions=institutions)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            institution = institution_for_write(user=request.user, code=d["institution"])
            payer = payer_upsert(institution=institution, code=d["payer_code"], name=d["payer_name"],
                                 phone=d["payer_phone"] or "", class_name=d["class_name"])
            bill = bill_services.bill_create(
                actor=request.user, institution=institution, payer=payer, due_date=d["due_date"],
                items=[bill_services.LineInput(**item) for item in form.items()],
            )
        except ThuphiError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("Đã lập phiếu thu %(r)s.") % {"r": bill.reference})
            return redirect("portal:bill_detail", reference=bill.reference)
    return render(request, "portal/staff/bill_new.html", {"form": form, "line_numbers": range(BillForm.LINES)})


@login_required
def bill_detail(request, reference: str):
    try:
        bill = bill_selectors.bill_get(user=request.user, reference=reference)
    except ThuphiError:
        return render(request, "portal/pay_unknown.html", {"reference": reference[:32]}, status=404)
    cancel_form = CancelForm(request.POST or None)
    if request.method == "POST" and cancel_form.is_valid():
        try:
            bill_services.bill_cancel(actor=request.user, bill=bill, reason=cancel_form.cleaned_data["reason"])
        except ThuphiError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Đã hủy phiếu thu."))
        return redirect("portal:bill_detail", reference=bill.reference)
    return render(request, "portal/staff/bill_detail.html", {
        "bill": bill, "cancel_form": cancel_form, "pay_url": bill_selectors.pay_url(reference=bill.reference),
        "can_write": request.user.can_write,
    })
