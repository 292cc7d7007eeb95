"""/api/v1/kpi, /api/v1/aggregate-reports, /api/v1/plans (mounted with `api.add_router("", router)`)."""
from __future__ import annotations

from django.utils.translation import gettext as _
from ninja import Query, Router, Status

from thuphi.core.errors import ValidationFailed
from thuphi.core.formatting import share_percent
from thuphi.monitoring import services
from thuphi.monitoring.indicators import kpi_with_targets, plan_area_code
from thuphi.monitoring.models import AggregateReport, Plan, ReportSource, ReportStatus
from thuphi.monitoring.narrative import narrative
from thuphi.monitoring.schemas import KpiOut, PlanIn, PlanOut, ReportIn, ReportOut, ReturnIn
from thuphi.monitoring.selectors import scope_build
from thuphi.registry.selectors import institutions_visible_to

router = Router(tags=["monitoring"])


def _num(d):
    return None if d is None else float(d)


def kpi_out(kpi, targets) -> dict:
    s = kpi.scope
    t = kpi.totals
    c = kpi.completeness
    n = kpi.institutions
    return {
        "area": {"code": s.area.code, "kind": s.area.kind, "name": s.area.name, "province_code": s.area.province_code},
        "sector": s.sector or "all", "kind": s.kind, "institution": s.institution.code if s.institution else None,
        "from": s.start, "to": max(s.end, s.start),
        "institutions": n, "institutions_reporting": kpi.institutions_reporting,
        "institutions_cashless": kpi.institutions_cashless, "institutions_digital": kpi.institutions_digital,
        "payments": t.payments, "payments_cashless": t.payments_cashless, "value": t.value,
        "value_cashless": t.value_cashless, "share_count": _num(t.share_count), "share_value": _num(t.share_value),
        "share_institutions_cashless": _num(share_percent(kpi.institutions_cashless, n)),
        "share_institutions_digital": _num(share_percent(kpi.institutions_digital, n)),
        "sources": {name: {"payments": f.payments, "payments_cashless": f.payments_cashless, "value": f.value,
                           "value_cashless": f.value_cashless}
                    for name, f in (("ledger", kpi.ledger), ("reports", kpi.reports))},
        "completeness": {"expected": c.expected, "received": c.received, "approved": c.approved,
                         "percent": _num(c.percent)},
        "narrative": narrative(kpi),
        "targets": [r.as_dict() for r in targets],
    }


@router.get("/kpi", response=KpiOut, by_alias=True, summary="Plan indicators for an area, sector and period")
def kpi(request, area: str = "VN", sector: str = "all", from_: str | None = Query(None, alias="from"),
        to: str | None = None, kind: str | None = None, institution: str | None = None):
    """`area`: VN, a province code (2 digits), a commune code (5 digits) or `legacy:<old province code>`.
    Shares are percentages with two decimals rounded half-up (98.88). Aggregate reports count when approved
    and their whole period lies inside [from, to]."""
    scope = scope_build(user=request.auth, area=area, sector=sector, kind=kind, start=from_, end=to,
                        institution=institution)
    return kpi_out(*kpi_with_targets(scope))


def report_out(r: AggregateReport) -> dict:
    return {
        "id": r.pk, "institution": r.institution.code, "institution_name": r.institution.name,
        "province_code": r.institution.commune.province_id, "period_start": r.period_start,
        "period_end": r.period_end, "payments": r.payments, "payments_cashless": r.payments_cashless,
        "value": r.value, "value_cashless": r.value_cashless,
        "share_count": _num(share_percent(r.payments_cashless, r.payments)),
        "share_value": _num(share_percent(r.value_cashless, r.value)),
        "cashless_methods": r.cashless_methods, "digital_platforms": r.digital_platforms, "status": r.status,
        "source": r.source, "note": r.note, "return_reason": r.return_reason,
        "submitted_by": r.submitted_by.username if r.submitted_by_id else None, "submitted_at": r.submitted_at,
        "decided_by": r.decided_by.username if r.decided_by_id else None, "decided_at": r.decided_at,
    }


@router.post("/aggregate-reports", response={201: ReportOut}, summary="Submit an aggregate report")
def submit_report(request, payload: ReportIn):
    data = services.ReportInput(**payload.dict())
    report = services.report_submit(actor=request.auth, data=data, source=ReportSource.API)
    return Status(201, report_out(services.report_get(user=request.auth, report_id=report.pk)))


@router.get("/aggregate-reports", response=list[ReportOut], summary="Aggregate reports visible to you")
def list_reports(request, status: str | None = None, institution: str | None = None, limit: int = 100,
                 offset: int = 0):
    if status and status not in ReportStatus.values:
        raise ValidationFailed(_("Trạng thái phải là submitted, approved hoặc returned."), code="invalid_status")
    qs = (AggregateReport.objects.select_related("institution__commune", "submitted_by", "decided_by")
          .filter(institution__in=institutions_visible_to(user=request.auth).order_by().values("pk")))
    if status:
        qs = qs.filter(status=status)
    if institution:
        qs = qs.filter(institution__code=institution)
    limit = max(1, min(limit, 1000))
    return [report_out(r) for r in qs.order_by("-submitted_at", "-id")[offset:offset + limit]]


@router.get("/aggregate-reports/{report_id}", response=ReportOut, summary="One aggregate report")
def get_report(request, report_id: int):
    return report_out(services.report_get(user=request.auth, report_id=report_id))


@router.post("/aggregate-reports/{report_id}/approve", response=ReportOut,
             summary="Approve a submitted report (provincial monitor or system admin)")
def approve_report(request, report_id: int):
    services.report_approve(actor=request.auth, report_id=report_id)
    return report_out(services.report_get(user=request.auth, report_id=report_id))


@router.post("/aggregate-reports/{report_id}/return", response=ReportOut,
             summary="Return a submitted report with a reason (provincial monitor or system admin)")
def return_report(request, report_id: int, payload: ReturnIn):
    services.report_return(actor=request.auth, report_id=report_id, reason=payload.reason)
    return report_out(services.report_get(user=request.auth, report_id=report_id))


def plan_out(p: Plan) -> dict:
    return {
        "code": p.code, "name": p.name, "issuing_body": p.issuing_body, "document": p.document,
        "issued_on": p.issued_on, "area": plan_area_code(p), "deadline": p.deadline, "note": p.note,
        "targets": [{"indicator": t.indicator, "label": t.label, "sector": t.sector or None,
                     "institution_kinds": t.institution_kinds, "ownership": t.ownership or None,
                     "fee_kinds": t.fee_kinds, "comparison": t.comparison, "value": float(t.value)}
                    for t in p.targets.all()],
    }


@router.get("/plans", response=list[PlanOut], summary="Plans and their targets")
def list_plans(request):
    return [plan_out(p) for p in Plan.objects.filter(is_active=True).prefetch_related("targets")]


@router.post("/plans", response={201: PlanOut}, summary="Add a plan with targets (system admin; monitor: own province)")
def create_plan(request, payload: PlanIn):
    data = payload.dict()
    plan = services.plan_create(actor=request.auth, **data)
    return Status(201, plan_out(plan))
