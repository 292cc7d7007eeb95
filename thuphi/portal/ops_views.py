"""Staff pages for money operations: review queue, cashier shift, refunds, reports."""
from __future__ import annotations


from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l
from django.views.decorators.http import require_POST

from thuphi.billing.selectors import bill_get
from thuphi.core.errors import ThuphiError
from thuphi.payments import refunds, reports, services, shifts
from thuphi.payments.models import Credit, CreditStatus, Refund
from thuphi.registry.selectors import institution_get, institutions_visible_to


def _credit(request, credit_id: int) -> Credit | None:
    return Credit.objects.filter(pk=credit_id,
                                 institution__in=institutions_visible_to(user=request.user).values("pk")).first()


def _run(request, fn, ok: str) -> None:
    try:
        fn()
    except ThuphiError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, ok)


@login_required
def review_queue(request):
    credits = list(Credit.objects.filter(institution__in=institutions_visible_to(user=request.user).values("pk"),
                                         status=CreditStatus.UNMATCHED)
                   .select_related("institution").order_by("-occurred_at")[:50])
    try:
        from thuphi.payments.review import suggestions_for
    except ImportError:
        suggestions_for = None
    rows = [{"credit": c, "suggestions": suggestions_for(credit=c) if suggestions_for else []} for c in credits]
    return render(request, "portal/staff/ops/review.html", {"rows": rows, "can_write": request.user.can_write})


@login_required
@require_POST
def review_match(request, credit_id: int):
    credit = _credit(request, credit_id)
    if credit is None:
        messages.error(request, _("Không tìm thấy khoản tiền."))
        return redirect("portal:review")
    pairs = []
    for n in range(5):
        ref = (request.POST.get(f"ref_{n}") or "").strip()
        amount = (request.POST.get(f"amount_{n}") or "").replace(".", "").replace(",", "").strip()
        if ref:
            pairs.append((ref, amount))

    def do():
        splits = []
        for ref, amount in pairs:
            if not amount.isdigit():
                raise ThuphiError(_("Số tiền phải là số nguyên đồng."))
            splits.append((bill_get(user=request.user, reference=ref), int(amount)))
        services.credit_match_manual(actor=request.user, credit=credit, splits=splits,
                                     note=request.POST.get("note", ""))

    _run(request, do, _("Đã gạch nợ khoản tiền."))
    return redirect("portal:review")


@login_required
@require_POST
def review_return(request, credit_id: int):
    credit = _credit(request, credit_id)
    if credit is None:
        messages.error(request, _("Không tìm thấy khoản tiền."))
        return redirect("portal:review")
    _run(request, lambda: refunds.refund_request(
        actor=request.user, kind="return_unmatched", credit=credit, amount=credit.amount,
        reason=request.POST.get("reason", ""), payee_name=request.POST.get("payee_name", ""),
        payee_bank_bin=request.POST.get("payee_bank_bin", ""), payee_account=request.POST.get("payee_account", "")),
        _("Đã lập yêu cầu trả lại; cần người khác duyệt."))
    return redirect("portal:review")


class ShiftOpenForm(forms.Form):
    opening_float = forms.IntegerField(label=_l("Tiền đầu ca (đồng)"), min_value=0, initial=0)


class ShiftCloseForm(forms.Form):
    counted_cash = forms.IntegerField(label=_l("Tiền mặt đếm được (đồng)"), min_value=0)
    note = forms.CharField(label=_l("Ghi chú"), required=False, max_length=255)


@login_required
def shift_page(request):
    current = shifts.shift_current(actor=request.user)
    open_form = ShiftOpenForm(request.POST if request.POST.get("action") == "open" else None)
    close_form = ShiftCloseForm(request.POST if request.POST.get("action") == "close" else None)
    if request.method == "POST":
        if request.POST.get("action") == "open" and open_form.is_valid():
            _run(request, lambda: shifts.shift_open(actor=request.user,
                                                    opening_float=open_form.cleaned_data["opening_float"]),
                 _("Đã mở ca."))
            return redirect("portal:shift")
        if request.POST.get("action") == "close" and close_form.is_valid():
            d = close_form.cleaned_data
            _run(request, lambda: shifts.shift_close(actor=request.user, counted_cash=d["counted_cash"],
                                                     note=d["note"]), _("Đã đóng ca."))
            return redirect("portal:shift")
    last = request.user.shifts.filter(status="closed").order_by("-closed_at").first()
    expected = shifts.shift_expected_cash(shift=current) if current else None
    return render(request, "portal/staff/ops/shift.html", {"current": current, "expected": expected, "last": last,
                                                           "open_form": open_form, "close_form": close_form})


@login_required
def refunds_page(request):
    visible = institutions_visible_to(user=request.user)
    qs = Refund.objects.filter(institution__in=visible.values("pk")).select_related(
        "institution", "requested_by", "decided_by", "payer").order_by("-requested_at")[:100]
    return render(request, "portal/staff/ops/refunds.html", {
        "refunds": qs, "institutions": visible.order_by("code")[:50], "user_id": request.user.pk,
        "can_write": request.user.can_write})


@login_required
@require_POST
def refund_action(request, refund_id: int):
    refund = Refund.objects.filter(pk=refund_id, institution__in=institutions_visible_to(
        user=request.user).values("pk")).first()
    action = request.POST.get("action")
    if refund is None:
        messages.error(request, _("Không tìm thấy yêu cầu hoàn tiền."))
    elif action in ("approve", "reject"):
        _run(request, lambda: refunds.refund_decide(actor=request.user, refund=refund, approve=action == "approve",
                                                    note=request.POST.get("note", "")), _("Đã ghi quyết định."))
    elif action == "paid":
        _run(request, lambda: refunds.refund_mark_paid(actor=request.user, refund=refund), _("Đã ghi nhận đã chi."))
    return redirect("portal:refunds")


@login_required
def payment_order_download(request, code: str):
    try:
        inst = institution_get(user=request.user, code=code)
        data = refunds.refunds_payment_order(actor=request.user, institution_id=inst.pk)
    except ThuphiError as exc:
        messages.error(request, exc.message)
        return redirect("portal:refunds")
    resp = HttpResponse(data, content_type="text/csv; charset=utf-8")
    resp["Content-Disposition"] = f'attachment; filename="lenh-chi-hoan-tien-{inst.code}.csv"'
    return resp


class ReportForm(forms.Form):
    institution = forms.ChoiceField(label=_l("Đơn vị"))
    date_from = forms.DateField(label=_l("Từ ngày"), widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_l("Đến ngày"), widget=forms.DateInput(attrs={"type": "date"}))
    kind = forms.ChoiceField(label=_l("Báo cáo"), choices=[("reconciliation", _l("Đối soát")),
                                                           ("cashier", _l("Thu ngân cuối ngày (ngày đầu)"))])


@login_required
def reports_page(request):
    institutions = list(institutions_visible_to(user=request.user).order_by("code")[:500])
    today = timezone.localdate()
    form = ReportForm(request.GET or None, initial={"date_from": today.replace(day=1), "date_to": today})
    form.fields["institution"].choices = [(i.code, f"{i.code} – {i.name}") for i in institutions]
    if request.GET and form.is_valid():
        d = form.cleaned_data
        inst = institution_get(user=request.user, code=d["institution"])
        if d["kind"] == "cashier":
            data = reports.cashier_day_xlsx(report=reports.cashier_day_report(institution=inst, day=d["date_from"]))
            name = f"thu-ngan-{inst.code}-{d['date_from']}.xlsx"
        else:
            if d["date_to"] < d["date_from"]:
                form.add_error("date_to", _("Ngày kết thúc trước ngày bắt đầu."))
                return render(request, "portal/staff/ops/reports.html", {"form": form})
            data = reports.reconciliation_xlsx(report=reports.reconciliation_report(
                institution=inst, date_from=d["date_from"], date_to=d["date_to"]))
            name = f"doi-soat-{inst.code}-{d['date_from']}-{d['date_to']}.xlsx"
        resp = HttpResponse(data, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        resp["Content-Disposition"] = f'attachment; filename="{name}"'
        return resp
    return render(request, "portal/staff/ops/reports.html", {"form": form})


