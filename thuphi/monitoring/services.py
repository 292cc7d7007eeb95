"""Every write of the monitoring app: statistics hooks, aggregate reports (submit → approve | return), plans.

The payments app calls `stats_on_credit_booked` / `stats_on_credit_reversed` inside the transaction that
books or withdraws a credit (see thuphi/monitoring/stats.py for the rule and the rebuild).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from thuphi.core.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed
from thuphi.core.models import INSTITUTION_ROLES, Role
from thuphi.monitoring.models import (
    CASHLESS,
    MEASURED_INDICATORS,
    REPORT_TRANSITIONS,
    AggregateReport,
    Comparison,
    DailyStat,
    Indicator,
    Plan,
    PlanTarget,
    ReportSource,
    ReportStatus,
)
from thuphi.monitoring.stats import (  # noqa: F401  (the payments app imports them from here)
    RebuildReport,
    credit_contribution,
    stats_apply_contributions,
    stats_on_credit_booked,
    stats_on_credit_reversed,
    stats_on_credits_booked,
    stats_on_credits_reversed,
    stats_rebuild,
)
from thuphi.registry.models import Institution, InstitutionKind, Ownership, PlatformKind, Sector
from thuphi.registry.selectors import institutions_visible_to

#: Bounds on reported figures: far above any real institution's period, far inside 64-bit sums.
MAX_REPORTED_PAYMENTS = 10**12
MAX_REPORTED_VALUE = 10**15


@dataclass
class ReportInput:
    institution: str
    period_start: dt.date | None
    period_end: dt.date | None
    payments: object
    payments_cashless: object
    value: object
    value_cashless: object
    cashless_methods: list[str] = field(default_factory=list)
    digital_platforms: list[str] = field(default_factory=list)
    note: str = ""


def _problem(fieldname: str, code: str, message: str) -> dict:
    return {"field": fieldname, "code": code, "message": message}


def report_check(data: ReportInput, *, today: dt.date | None = None) -> list[dict]:
    """Every problem with the figures themselves (no database), as {field, code, message}."""
    today = today or timezone.localdate()
    problems: list[dict] = []
    labels = {"payments": _("Số giao dịch"), "payments_cashless": _("Số giao dịch không dùng tiền mặt"),
              "value": _("Giá trị giao dịch"), "value_cashless": _("Giá trị không dùng tiền mặt")}
    numbers: dict[str, int] = {}
    for name, label in labels.items():
        raw = getattr(data, name)
        if isinstance(raw, bool) or not isinstance(raw, int):
            problems.append(_problem(name, "invalid_number", _("%(l)s phải là số nguyên.") % {"l": label}))
            continue
        if raw < 0:
            problems.append(_problem(name, "negative_value", _("%(l)s không được âm.") % {"l": label}))
            continue
        bound = MAX_REPORTED_PAYMENTS if name.startswith("payments") else MAX_REPORTED_VALUE
        if raw > bound:
            problems.append(_problem(name, "value_too_large", _("%(l)s quá lớn.") % {"l": label}))
            continue
        numbers[name] = raw
    if not data.period_start or not data.period_end:
        problems.append(_problem("period_start", "period_required", _("Cần ghi từ ngày và đến ngày của kỳ báo cáo.")))
    elif data.period_end < data.period_start:
        problems.append(_problem("period_end", "invalid_period", _("“Đến ngày” phải sau hoặc bằng “Từ ngày”.")))
    elif data.period_end > today:
        problems.append(_problem("period_end", "period_in_future", _("Kỳ báo cáo chưa kết thúc (đến ngày %(d)s).")
                                 % {"d": data.period_end.strftime("%d/%m/%Y")}))
    if len(numbers) == 4:
        if numbers["payments_cashless"] > numbers["payments"]:
            problems.append(_problem("payments_cashless", "cashless_above_total",
                                     _("Số giao dịch không dùng tiền mặt (%(a)s) lớn hơn tổng số giao dịch (%(b)s).")
                                     % {"a": numbers["payments_cashless"], "b": numbers["payments"]}))
        if numbers["value_cashless"] > numbers["value"]:
            problems.append(_problem("value_cashless", "cashless_above_total",
                                     _("Giá trị không dùng tiền mặt (%(a)s) lớn hơn tổng giá trị (%(b)s).")
                                     % {"a": numbers["value_cashless"], "b": numbers["value"]}))
        if (numbers["payments"] == 0) != (numbers["value"] == 0):
            problems.append(_problem("value", "figures_inconsistent",
                                     _("Số giao dịch và giá trị giao dịch phải cùng bằng 0 hoặc cùng lớn hơn 0.")))
        if (numbers["payments_cashless"] == 0) != (numbers["value_cashless"] == 0):
            problems.append(_problem("value_cashless", "figures_inconsistent",
                                     _("Số và giá trị giao dịch không dùng tiền mặt phải cùng bằng 0 hoặc cùng "
                                       "lớn hơn 0.")))
    methods = list(data.cashless_methods or [])
    bad = [m for m in methods if m not in CASHLESS]
    if bad:
        problems.append(_problem("cashless_methods", "invalid_method",
                                 _("Hình thức không dùng tiền mặt phải là transfer, card hoặc ewallet (không nhận: "
                                   "%(m)s).") % {"m": ", ".join(map(str, bad))}))
    elif numbers.get("payments_cashless") and not methods:
        problems.append(_problem("cashless_methods", "cashless_methods_required",
                                 _("Có giao dịch không dùng tiền mặt: cần nêu hình thức (transfer, card, ewallet).")))
    bad = [p for p in (data.digital_platforms or []) if p not in PlatformKind.values]
    if bad:
        problems.append(_problem("digital_platforms", "invalid_platform",
                                 _("Nền tảng số không hợp lệ: %(p)s.") % {"p": ", ".join(map(str, bad))}))
    if len(data.note or "") > 500:
        problems.append(_problem("note", "note_too_long", _("Ghi chú tối đa 500 ký tự.")))
    return problems


def _raise_problems(problems: list[dict]) -> None:
    if problems:
        raise ValidationFailed(problems[0]["message"], code=problems[0]["code"], details=problems)


def report_institution(*, actor, code: str) -> Institution:
    """The institution a user may report for: their own, any in their province (monitor), any (admin)."""
    code = (code or "").strip()
    inst = Institution.objects.filter(code=code).first()
    if inst is None:
        message = _("Không có đơn vị mã “%(c)s”.") % {"c": code[:32]}
        raise ValidationFailed(message, code="unknown_institution",
                               details=[_problem("institution", "unknown_institution", message)])
    allowed = actor.is_system_admin or (
        actor.role in (*INSTITUTION_ROLES, Role.PROVINCIAL_MONITOR)
        and institutions_visible_to(user=actor).filter(pk=inst.pk).exists())
    if not allowed:
        raise Forbidden(_("Chỉ gửi được báo cáo của đơn vị mình."), code="institution_forbidden")
    return inst


def _overlaps(inst: Institution, start: dt.date, end: dt.date, status: str, exclude_pk=None):
    qs = AggregateReport.objects.filter(institution=inst, status=status, period_start__lte=end, period_end__gte=start)
    if exclude_pk:
        qs = qs.exclude(pk=exclude_pk)
    return qs.order_by("period_start").first()


def _check_against_existing(inst: Institution, start: dt.date, end: dt.date, exclude_pk=None) -> None:
    approved = _overlaps(inst, start, end, ReportStatus.APPROVED, exclude_pk)
    if approved:
        raise Conflict(_("Kỳ báo cáo trùng với báo cáo đã duyệt của đơn vị (%(a)s–%(b)s).")
                       % {"a": approved.period_start.strftime("%d/%m/%Y"), "b": approved.period_end.strftime("%d/%m/%Y")},
                       code="period_overlaps_approved", details={"report_id": approved.pk})


def report_submit(*, actor, data: ReportInput, source: str = ReportSource.API,
                  today: dt.date | None = None) -> AggregateReport:
    """Validate and store a report as submitted; it counts once the province approves it."""
    inst = report_institution(actor=actor, code=data.institution)
    _raise_problems(report_check(data, today=today))
    with transaction.atomic():
        # One institution's reports are checked and written one at a time.
        inst = Institution.objects.select_for_update().get(pk=inst.pk)
        _check_against_existing(inst, data.period_start, data.period_end)
        pending = _overlaps(inst, data.period_start, data.period_end, ReportStatus.SUBMITTED)
        if pending:
            raise Conflict(_("Đã có báo cáo chờ duyệt trùng kỳ (%(a)s–%(b)s); chờ tỉnh duyệt hoặc trả lại.")
                           % {"a": pending.period_start.strftime("%d/%m/%Y"),
                              "b": pending.period_end.strftime("%d/%m/%Y")},
                           code="period_overlaps_submitted", details={"report_id": pending.pk})
        if DailyStat.objects.filter(institution=inst, day__range=(data.period_start, data.period_end)).exists():
            raise Conflict(_("Đơn vị đã thu qua thuphi trong kỳ này: số liệu lấy từ sổ cái, không cần báo cáo."),
                           code="collected_through_thuphi")
        return AggregateReport.objects.create(
            institution=inst, period_start=data.period_start, period_end=data.period_end, payments=data.payments,
            payments_cashless=data.payments_cashless, value=data.value, value_cashless=data.value_cashless,
            cashless_methods=sorted(set(data.cashless_methods or [])),
            digital_platforms=sorted(set(data.digital_platforms or [])), source=source,
            note=(data.note or "").strip()[:500], submitted_by=actor)


def report_get(*, user, report_id: int) -> AggregateReport:
    report = (AggregateReport.objects.select_related("institution__commune__province", "submitted_by", "decided_by")
              .filter(pk=report_id, institution__in=institutions_visible_to(user=user).order_by().values("pk"))
              .first())
    if report is None:
        raise NotFound(_("Không tìm thấy báo cáo %(id)s.") % {"id": report_id}, code="report_not_found")
    return report


def _decide(*, actor, report_id: int, target: str, reason: str = "") -> AggregateReport:
    report = report_get(user=actor, report_id=report_id)
    if not (actor.is_system_admin or actor.role == Role.PROVINCIAL_MONITOR):
        raise Forbidden(_("Chỉ cán bộ giám sát cấp tỉnh hoặc quản trị hệ thống được duyệt/trả lại báo cáo."),
                        code="approver_only")
    with transaction.atomic():
        inst = Institution.objects.select_for_update().get(pk=report.institution_id)
        report = AggregateReport.objects.select_for_update().get(pk=report.pk)
        if target not in REPORT_TRANSITIONS[ReportStatus(report.status)]:
            raise InvalidTransition(_("Báo cáo đang ở trạng thái “%(s)s”, không chuyển sang “%(t)s” được.")
                                    % {"s": report.get_status_display(), "t": ReportStatus(target).label})
        if target == ReportStatus.APPROVED:
            _check_against_existing(inst, report.period_start, report.period_end, exclude_pk=report.pk)
        report.status = target
        report.return_reason = reason
        report.decided_by = actor
        report.decided_at = timezone.now()
        report.save(update_fields=["status", "return_reason", "decided_by", "decided_at"])
        return report


def report_approve(*, actor, report_id: int) -> AggregateReport:
    return _decide(actor=actor, report_id=report_id, target=ReportStatus.APPROVED)


def report_return(*, actor, report_id: int, reason: str) -> AggregateReport:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(_("Cần ghi lý do trả lại báo cáo."), code="reason_required")
    return _decide(actor=actor, report_id=report_id, target=ReportStatus.RETURNED, reason=reason[:500])


@dataclass
class UploadResult:
    created: list[AggregateReport]
    errors: list[dict]  # {row, field, code, message}


def reports_submit_many(*, actor, rows: list[tuple[int, ReportInput]], source: str = ReportSource.UPLOAD,
                        today: dt.date | None = None) -> UploadResult:
    """An uploaded file: all rows or none. Every problem is reported with its row number."""
    from thuphi.core.errors import ThuphiError

    errors: list[dict] = []
    created: list[AggregateReport] = []
    seen: dict[str, list[tuple[int, dt.date, dt.date]]] = {}
    try:
        with transaction.atomic():
            for rownum, data in rows:
                clash = [other for other, a, b in seen.get(data.institution, [])
                         if data.period_start and data.period_end and a <= data.period_end and data.period_start <= b]
                if clash:
                    errors.append({"row": rownum, "field": "period_start", "code": "period_overlaps_in_file",
                                   "message": _("Trùng kỳ với dòng %(n)d của cùng đơn vị.") % {"n": clash[0]}})
                    continue
                try:
                    created.append(report_submit(actor=actor, data=data, source=source, today=today))
                except ThuphiError as exc:
                    details = exc.details if isinstance(exc.details, list) else [
                        {"field": "", "code": exc.code, "message": exc.message}]
                    errors += [{"row": rownum, **d} for d in details]
                if data.period_start and data.period_end:
                    seen.setdefault(data.institution, []).append((rownum, data.period_start, data.period_end))
            if errors:
                raise _UploadRejected
    except _UploadRejected:
        return UploadResult(created=[], errors=errors)
    return UploadResult(created=created, errors=[])


class _UploadRejected(Exception):
    pass


# --- plans ------------------------------------------------------------------------------------------


def plan_create(*, actor, code: str, name: str, issuing_body: str, deadline: dt.date, targets: list[dict],
                area: str = "VN", document: str = "", issued_on: dt.date | None = None, note: str = "") -> Plan:
    """A plan with its targets. System admins add any; provincial monitors add plans of their province."""
    from django.utils.text import slugify

    from thuphi.monitoring.areas import area_parse

    parsed = area_parse(area)
    if not actor.is_system_admin:
        if not (actor.role == Role.PROVINCIAL_MONITOR and parsed.kind in ("province", "legacy")
                and parsed.province_code == actor.province_id):
            raise Forbidden(_("Chỉ quản trị hệ thống, hoặc cán bộ giám sát cho tỉnh mình, được thêm kế hoạch."),
                            code="forbidden")
    if parsed.kind == "commune":
        raise ValidationFailed(_("Kế hoạch thuộc toàn quốc hoặc một tỉnh/thành phố."), code="invalid_area")
    code = slugify(code or "")[:64]
    if not code or not (name or "").strip() or not (issuing_body or "").strip():
        raise ValidationFailed(_("Cần mã, tên kế hoạch và cơ quan ban hành."), code="plan_fields_required")
    if not targets:
        raise ValidationFailed(_("Kế hoạch cần ít nhất một chỉ tiêu."), code="targets_required")
    rows = []
    for i, t in enumerate(targets, 1):
        try:
            value = Decimal(str(t.get("value")))
        except (InvalidOperation, TypeError):
            value = Decimal(-1)
        bad = (t.get("indicator") not in Indicator.values or not (0 <= value <= 100)
               or t.get("comparison", "gte") not in Comparison.values
               or (t.get("sector") or "") not in ("", *Sector.values)
               or any(k not in InstitutionKind.values for k in t.get("institution_kinds") or [])
               or (t.get("ownership") or "") not in ("", *Ownership.values))
        if bad:
            raise ValidationFailed(_("Chỉ tiêu thứ %(n)d không hợp lệ.") % {"n": i}, code="invalid_target")
        rows.append(PlanTarget(indicator=t["indicator"], value=value.quantize(Decimal("0.01")),
                               comparison=t.get("comparison", "gte"), sector=t.get("sector") or "",
                               institution_kinds=list(t.get("institution_kinds") or []),
                               ownership=t.get("ownership") or "", fee_kinds=list(t.get("fee_kinds") or []),
                               label=(t.get("label") or "")[:255]))
    with transaction.atomic():
        if Plan.objects.filter(code=code).exists():
            raise Conflict(_("Mã kế hoạch “%(c)s” đã tồn tại.") % {"c": code}, code="plan_exists")
        plan = Plan.objects.create(
            code=code, name=name.strip()[:255], issuing_body=issuing_body.strip()[:255], document=document[:100],
            issued_on=issued_on, deadline=deadline, note=note,
            province_id=parsed.province_code if parsed.kind == "province" else None,
            legacy_province_id=parsed.legacy_code if parsed.kind == "legacy" else None, created_by=actor)
        for row in rows:
            row.plan = plan
        PlanTarget.objects.bulk_create(rows)
    return plan


__all__ = ["MEASURED_INDICATORS", "ReportInput", "RebuildReport", "credit_contribution", "plan_create",
           "report_approve", "report_check", "report_get", "report_return", "report_submit", "reports_submit_many",
           "stats_on_credit_booked", "stats_on_credit_reversed", "stats_rebuild"]
