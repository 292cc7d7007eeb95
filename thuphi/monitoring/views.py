"""Monitoring pages: the dashboard and its exports, aggregate reports (form, upload, approval)."""
from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from thuphi.core.errors import Forbidden, NotFound, ThuphiError, ValidationFailed
from thuphi.core.models import INSTITUTION_ROLES, Role
from thuphi.monitoring import charts, exports, services, uploads
from thuphi.monitoring.areas import default_area_code
from thuphi.monitoring.dashboard import area_options, dashboard_build, period_presets
from thuphi.monitoring.forms import ReportForm, ReturnForm, UploadForm
from thuphi.monitoring.models import AggregateReport, ReportSource, ReportStatus
from thuphi.monitoring.selectors import scope_build
from thuphi.registry.models import InstitutionKind, Sector
from thuphi.registry.selectors import institutions_visible_to

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _forbidden(request, message: str):
    return render(request, "portal/staff/forbidden.html", {"message": message}, status=403)


def _scope(request):
    g = request.GET
    return scope_build(user=request.user, area=g.get("area") or default_area_code(request.user),
                       sector=g.get("sector") or "all", kind=g.get("kind") or None, start=g.get("from") or None,
                       end=g.get("to") or None, institution=g.get("institution") or None)


def _scope_or_default(request):
    """The scope asked for; a bad parameter falls back to the default view with a message."""
    try:
        return _scope(request), None
    except Forbidden as exc:
        return None, _forbidden(request, exc.message)
    except (ValidationFailed, NotFound) as exc:
        messages.error(request, exc.message)
        return scope_build(user=request.user, area=default_area_code(request.user)), None


def can_decide(user) -> bool:
    return user.is_active and (user.is_system_admin or user.role == Role.PROVINCIAL_MONITOR)


def can_submit(user) -> bool:
    return user.is_active and (user.is_system_admin or user.role in (*INSTITUTION_ROLES, Role.PROVINCIAL_MONITOR))


@login_required
def dashboard(request):
    scope, denied = _scope_or_default(request)
    if denied:
        return denied
    d = dashboard_build(scope)
    for t in d.tiles:
        t.gauge = charts.gauge(t.value, t.targets, label=t.label)
    query = urlencode(scope.query())
    today = timezone.localdate()
    presets = [(label, urlencode(scope.query(**{"from": a.isoformat(), "to": b.isoformat()})))
               for label, a, b in period_presets(today)]
    return render(request, "monitoring/dashboard.html", {
        "d": d, "scope": scope, "query": query, "presets": presets,
        "area_options": area_options(request.user, scope), "sectors": Sector.choices,
        "kinds": InstitutionKind.choices, "trend_svg": charts.trend(d.trend),
        "can_decide": can_decide(request.user),
        "can_submit": can_submit(request.user),
        "pending": AggregateReport.objects.filter(
            status=ReportStatus.SUBMITTED,
            institution__in=institutions_visible_to(user=request.user).order_by().values("pk")).count(),
    })


def _export(request, kind: str):
    try:
        scope = _scope(request)
    except Forbidden as exc:
        return _forbidden(request, exc.message)
    except ThuphiError as exc:
        return HttpResponse(exc.message, status=exc.status, content_type="text/plain; charset=utf-8")
    d = dashboard_build(scope)
    if kind == "xlsx":
        response = HttpResponse(exports.xlsx(d), content_type=XLSX)
    else:
        response = HttpResponse(exports.pdf(d), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{exports.filename(d, kind)}"'
    return response


@login_required
def export_xlsx(request):
    return _export(request, "xlsx")


@login_required
def export_pdf(request):
    return _export(request, "pdf")


# --- aggregate reports -------------------------------------------------------------------------------


def _report_institutions(user):
    qs = institutions_visible_to(user=user).filter(is_active=True).order_by("code")
    return list(qs[:2000]) if can_submit(user) else []


@login_required
def reports(request):
    visible = institutions_visible_to(user=request.user).order_by().values("pk")
    qs = (AggregateReport.objects.select_related("institution__commune", "submitted_by", "decided_by")
          .filter(institution__in=visible))
    default_status = ReportStatus.SUBMITTED if can_decide(request.user) else ""
    status = request.GET.get("status", default_status)
    if status in ReportStatus.values:
        qs = qs.filter(status=status)
    q = request.GET.get("q", "").strip()
    if q:
        qs = qs.filter(institution__code__icontains=q) | qs.filter(institution__name__icontains=q)
    page = Paginator(qs.order_by("-submitted_at", "-id"), 50).get_page(request.GET.get("page"))
    return render(request, "monitoring/reports.html", {
        "page": page, "status": status, "q": q, "statuses": ReportStatus.choices,
        "can_decide": can_decide(request.user), "can_submit": can_submit(request.user),
        "return_form": ReturnForm(), "upload_form": UploadForm(),
    })


@login_required
def report_new(request):
    if not can_submit(request.user):
        return _forbidden(request, _("Tài khoản của bạn không gửi được báo cáo tổng hợp."))
    institutions = _report_institutions(request.user)
    form = ReportForm(request.POST or None, institutions=institutions,
                      initial={"institution": request.user.institution.code if request.user.institution_id else None})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            report = services.report_submit(
                actor=request.user, source=ReportSource.FORM,
                data=services.ReportInput(**{k: data[k] for k in (
                    "institution", "period_start", "period_end", "payments", "payments_cashless", "value",
                    "value_cashless", "cashless_methods", "digital_platforms", "note")}))
        except ThuphiError as exc:
            details = exc.details if isinstance(exc.details, list) else []
            for d in details:
                field = d.get("field") if d.get("field") in form.fields else None
                form.add_error(field, d["message"])
            if not details:
                form.add_error(None, exc.message)
        else:
            messages.success(request, _("Đã gửi báo cáo của %(i)s, kỳ %(a)s–%(b)s: chờ tỉnh duyệt.") % {
                "i": report.institution.name, "a": report.period_start.strftime("%d/%m/%Y"),
                "b": report.period_end.strftime("%d/%m/%Y")})
            return redirect("monitoring:reports")
    return render(request, "monitoring/report_new.html", {"form": form, "upload_form": UploadForm()})


@login_required
def report_upload(request):
    if not can_submit(request.user):
        return _forbidden(request, _("Tài khoản của bạn không gửi được báo cáo tổng hợp."))
    form = UploadForm(request.POST or None, request.FILES or None)
    result = None
    if request.method == "POST" and form.is_valid():
        f = form.cleaned_data["file"]
        if f.size > 5 * 1024 * 1024:
            form.add_error("file", _("Tệp tối đa 5 MB."))
        else:
            rows, errors = uploads.parse_upload(f.name, f.read())
            if not errors and not rows:
                form.add_error("file", _("Tệp không có dòng số liệu nào."))
            elif errors:
                result = {"errors": errors, "created": []}
            else:
                outcome = services.reports_submit_many(actor=request.user, rows=rows)
                result = {"errors": outcome.errors, "created": outcome.created}
                if outcome.created:
                    messages.success(request, _("Đã gửi %(n)d báo cáo: chờ tỉnh duyệt.") % {"n": len(outcome.created)})
                    return redirect("monitoring:reports")
    return render(request, "monitoring/report_upload.html", {"form": form, "result": result}, status=
                  422 if result and result["errors"] else 200)


@login_required
def report_template(request, ext: str):
    institutions = _report_institutions(request.user)
    if ext == "xlsx":
        response = HttpResponse(uploads.template_xlsx(institutions), content_type=XLSX)
    else:
        response = HttpResponse(uploads.template_csv(institutions), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="mau-bao-cao-tong-hop.{ext}"'
    return response


def _back(request):
    target = request.POST.get("next") or ""
    if target.startswith("/monitoring/") and "//" not in target:
        return redirect(target)
    return redirect("monitoring:reports")


@login_required
@require_POST
def report_approve(request, report_id: int):
    try:
        report = services.report_approve(actor=request.user, report_id=report_id)
    except ThuphiError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Đã duyệt báo cáo của %(i)s.") % {"i": report.institution.name})
    return _back(request)


@login_required
@require_POST
def report_return(request, report_id: int):
    form = ReturnForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationFailed(_("Cần ghi lý do trả lại báo cáo."), code="reason_required")
        report = services.report_return(actor=request.user, report_id=report_id, reason=form.cleaned_data["reason"])
    except ThuphiError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Đã trả lại báo cáo của %(i)s.") % {"i": report.institution.name})
    return _back(request)
