"""The indicators (numerator over denominator, as defined to users) and the targets that apply to a query."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from thuphi.core.formatting import share_percent
from thuphi.monitoring.models import MEASURED_INDICATORS, Comparison, Indicator, Plan, PlanTarget
from thuphi.monitoring.selectors import Bucket, Figures, Kpi, Scope, kpi_compute, nation_mode

DEFINITIONS = {
    Indicator.INSTITUTIONS_DIGITAL: {
        "numerator": gettext_lazy("đơn vị có ít nhất một nền tảng số đang sử dụng (đã đăng ký, hoặc nêu trong "
                                  "báo cáo tổng hợp đã duyệt của kỳ)"),
        "denominator": gettext_lazy("tổng số đơn vị trong phạm vi"),
    },
    Indicator.INSTITUTIONS_CASHLESS: {
        "numerator": gettext_lazy("đơn vị có ít nhất một hình thức thanh toán không dùng tiền mặt (chuyển khoản/"
                                  "VietQR, thẻ, ví điện tử): đã đăng ký, nêu trong báo cáo đã duyệt, hoặc đã thu "
                                  "không dùng tiền mặt trong kỳ"),
        "denominator": gettext_lazy("tổng số đơn vị trong phạm vi"),
    },
    Indicator.SHARE_COUNT: {
        "numerator": gettext_lazy("số giao dịch thanh toán không dùng tiền mặt trong kỳ"),
        "denominator": gettext_lazy("tổng số giao dịch thanh toán trong kỳ (sổ cái thuphi và báo cáo tổng hợp "
                                    "đã duyệt)"),
    },
    Indicator.SHARE_VALUE: {
        "numerator": gettext_lazy("số tiền thu không dùng tiền mặt trong kỳ"),
        "denominator": gettext_lazy("tổng số tiền thu trong kỳ"),
    },
    Indicator.CITIZENS_EHR: {
        "numerator": gettext_lazy("người dân có hồ sơ sức khỏe điện tử"),
        "denominator": gettext_lazy("dân số"),
    },
    Indicator.CITIZENS_EID: {
        "numerator": gettext_lazy("người dân sử dụng định danh điện tử"),
        "denominator": gettext_lazy("dân số"),
    },
}

#: Within this many percentage points below a target, the light is amber rather than red.
NEAR_POINTS = Decimal(10)


def indicator_value(indicator: str, buckets: list[Bucket], fee_kinds: list[str] | None = None,
                    ledger_for_fees: Figures | None = None):
    """(value %, numerator, denominator) of one measured indicator over some counted institutions, summed
    by kind of institution (`Kpi.buckets`). A fee-restricted share reads the ledger figures of those fee
    kinds (`ledger_for_fees` when given: the nation tables) plus the reports, which count whole."""
    if indicator == Indicator.INSTITUTIONS_DIGITAL:
        num, den = sum(b.digital for b in buckets), sum(b.n for b in buckets)
        return share_percent(num, den), num, den
    if indicator == Indicator.INSTITUTIONS_CASHLESS:
        num, den = sum(b.cashless for b in buckets), sum(b.n for b in buckets)
        return share_percent(num, den), num, den
    total = Figures()
    key = tuple(sorted(fee_kinds or []))
    if key and ledger_for_fees is not None:
        total += ledger_for_fees
    for b in buckets:
        if key:
            # Aggregate reports do not split by fee: they count whole toward a fee-restricted target.
            if ledger_for_fees is None:
                total += b.fee_sets.get(key, Figures())
            total += b.reports
        else:
            total += b.total
    if indicator == Indicator.SHARE_COUNT:
        return total.share_count, total.payments_cashless, total.payments
    return total.share_value, total.value_cashless, total.value


@dataclass
class TargetResult:
    plan: Plan
    target: PlanTarget
    actual: Decimal | None
    numerator: int | None
    denominator: int | None
    status: str  # met | near | behind | no_data | not_measured

    @property
    def colour(self) -> str:
        return {"met": "green", "near": "amber", "behind": "red"}.get(self.status, "grey")

    @property
    def status_label(self) -> str:
        return {"met": _("Đạt"), "near": _("Gần đạt"), "behind": _("Chưa đạt"), "no_data": _("Chưa có số liệu"),
                "not_measured": _("thuphi không đo chỉ số này")}[self.status]

    def as_dict(self) -> dict:
        t, p = self.target, self.plan
        return {
            "plan": p.code, "plan_name": p.name, "issuing_body": p.issuing_body, "document": p.document,
            "deadline": p.deadline.isoformat(), "area": plan_area_code(p),
            "indicator": t.indicator, "indicator_label": t.get_indicator_display(), "label": t.label,
            "sector": t.sector or None, "institution_kinds": t.institution_kinds, "ownership": t.ownership or None,
            "fee_kinds": t.fee_kinds, "comparison": t.comparison, "target": float(t.value),
            "actual": None if self.actual is None else float(self.actual),
            "numerator": self.numerator, "denominator": self.denominator, "status": self.status,
        }


def plan_area_code(plan: Plan) -> str:
    if plan.legacy_province_id:
        return f"legacy:{plan.legacy_province_id}"
    return plan.province_id or "VN"


def _compare(actual: Decimal, target: PlanTarget) -> bool:
    return actual > target.value if target.comparison == Comparison.GT else actual >= target.value


def plans_for(scope: Scope):
    """Active plans for the area: nationwide ones everywhere; a province's inside it; an old province's
    inside the old province and inside its successor (counting only institutions that stood in it)."""
    area = scope.area
    q = Q(province__isnull=True, legacy_province__isnull=True)
    if area.province_code:
        q |= Q(province_id=area.province_code)
        q |= Q(legacy_province__successor_id=area.province_code)
    if area.kind == "legacy":
        q = Q(province__isnull=True, legacy_province__isnull=True) | Q(legacy_province_id=area.legacy_code)
    return Plan.objects.filter(q, is_active=True).prefetch_related("targets").order_by("deadline", "code")


def kpi_with_targets(scope: Scope, *, breakdowns: bool = False) -> tuple[Kpi, list[TargetResult]]:
    """The figures of a scope and the targets that apply, in as few queries as possible."""
    plans = list(plans_for(scope))
    nation = nation_mode(scope)
    # Nationwide, fee-restricted targets read the nation tables; per-institution fee figures are needed
    # only elsewhere (and for a plan of an old province, which the nation tables do not know).
    fee_sets = {tuple(sorted(t.fee_kinds)) for p in plans for t in p.targets.all()
                if t.fee_kinds and (not nation or p.legacy_province_id)}
    kpi = kpi_compute(scope, fee_sets=sorted(fee_sets), breakdowns=breakdowns)
    return kpi, targets_for(kpi, plans)


def targets_for(kpi: Kpi, plans=None) -> list[TargetResult]:
    scope = kpi.scope
    buckets = kpi.buckets()
    results = []
    for plan in plans if plans is not None else plans_for(scope):
        for target in plan.targets.all():
            if scope.sector and target.sector and target.sector != scope.sector:
                continue
            if scope.kind and target.institution_kinds and scope.kind not in target.institution_kinds:
                continue
            if target.indicator not in MEASURED_INDICATORS:
                results.append(TargetResult(plan, target, None, None, None, "not_measured"))
                continue
            kinds = set(target.institution_kinds or ())
            chosen = [b for (sector, kind, ownership, legacy), b in buckets.items()
                      if (not plan.legacy_province_id or legacy == plan.legacy_province_id)
                      and (not target.sector or sector == target.sector)
                      and (not kinds or kind in kinds)
                      and (not target.ownership or ownership == target.ownership)]
            ledger_for_fees = None
            if target.fee_kinds and kpi.nation and not plan.legacy_province_id:
                ledger_for_fees = kpi.nation_figures(
                    sectors={target.sector} if target.sector else None, kinds=kinds or None,
                    ownership=target.ownership or None, fee_kinds=set(target.fee_kinds))
            actual, num, den = indicator_value(target.indicator, chosen, target.fee_kinds, ledger_for_fees)
            if actual is None:
                status = "no_data"
            elif _compare(actual, target):
                status = "met"
            elif actual >= target.value - NEAR_POINTS:
                status = "near"
            else:
                status = "behind"
            results.append(TargetResult(plan, target, actual, num, den, status))
    return results


def tile_status(results: list[TargetResult], indicator: str) -> str:
    """The light of an indicator tile (green, amber, red, none): the worst status among its targets."""
    order = ["behind", "near", "met"]
    statuses = [r.status for r in results if r.target.indicator == indicator and r.status in order]
    if not statuses:
        return "none"
    return {"behind": "red", "near": "amber", "met": "green"}[min(statuses, key=order.index)]
