"""What the dashboard and the exports show, assembled once from a scope (read-only)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from thuphi.core.formatting import share_percent
from thuphi.monitoring import selectors
from thuphi.monitoring.areas import NATION, Area
from thuphi.monitoring.indicators import DEFINITIONS, TargetResult, kpi_with_targets, tile_status
from thuphi.monitoring.models import AggregateReport, Indicator
from thuphi.monitoring.narrative import narrative, narrative_details
from thuphi.monitoring.selectors import Figures, Group, Kpi, Scope

#: Above this many institutions the page lists areas to drill into rather than every institution.
INSTITUTION_ROWS_ON_PAGE = 300


@dataclass
class Tile:
    indicator: str
    label: str
    value: object  # Decimal | None
    numerator: int
    denominator: int
    unit: str  # "institutions" | "payments" | "vnd" | "reports"
    targets: list[TargetResult] = field(default_factory=list)
    light: str = "none"
    numerator_text: str = ""
    denominator_text: str = ""
    gauge: str = ""


@dataclass
class Row:
    key: str
    label: str
    figures: Figures
    institutions: int = 0
    cashless: int = 0
    digital: int = 0
    reporting: int = 0
    link: dict | None = None
    note: str = ""

    @property
    def share_institutions_cashless(self):
        return share_percent(self.cashless, self.institutions)


@dataclass
class Dashboard:
    scope: Scope
    kpi: Kpi
    targets: list[TargetResult]
    tiles: list[Tile]
    trend: list
    areas_title: str
    areas: list[Row]
    institutions: list[selectors.InstitutionFacts]
    institutions_truncated: bool
    kinds: list[Row]
    fee_kinds: list[Row]
    methods: list[Row]
    behind: list[selectors.InstitutionFacts]
    reports: list[AggregateReport]
    narrative: str
    details: list[str]
    breadcrumbs: list[tuple[str, dict | None]]


def _tiles(kpi: Kpi, targets: list[TargetResult]) -> list[Tile]:
    t = kpi.totals
    n = kpi.institutions
    c = kpi.completeness
    specs = [
        (Indicator.INSTITUTIONS_CASHLESS, share_percent(kpi.institutions_cashless, n), kpi.institutions_cashless, n,
         "institutions"),
        (Indicator.INSTITUTIONS_DIGITAL, share_percent(kpi.institutions_digital, n), kpi.institutions_digital, n,
         "institutions"),
        (Indicator.SHARE_COUNT, t.share_count, t.payments_cashless, t.payments, "payments"),
        (Indicator.SHARE_VALUE, t.share_value, t.value_cashless, t.value, "vnd"),
    ]
    tiles = []
    for ind, value, num, den, unit in specs:
        # The tile shows the targets measured on the same scope as the tile (no kind/fee restriction);
        # narrower targets are listed in the targets table.
        mine = [r for r in targets if r.target.indicator == ind and not r.target.institution_kinds
                and not r.target.fee_kinds and not r.target.ownership]
        tiles.append(Tile(indicator=str(ind), label=str(Indicator(ind).label), value=value, numerator=num,
                          denominator=den, unit=unit, targets=mine, light=tile_status(mine, ind),
                          numerator_text=str(DEFINITIONS[ind]["numerator"]),
                          denominator_text=str(DEFINITIONS[ind]["denominator"])))
    tiles.append(Tile(indicator="completeness", label=_("Báo cáo tổng hợp đã nhận"), value=c.percent,
                      numerator=c.received, denominator=c.expected, unit="reports",
                      numerator_text=_("đơn vị đã gửi báo cáo cho kỳ (chờ duyệt hoặc đã duyệt); %(a)d đã duyệt")
                      % {"a": c.approved},
                      denominator_text=_("đơn vị chưa thu qua thuphi trong kỳ (phải báo cáo)")))
    return tiles


def _rows(groups: list[Group], link=None) -> list[Row]:
    return [Row(key=g.key, label=g.label, figures=g.figures, institutions=g.institutions, cashless=g.cashless,
                digital=g.digital, reporting=g.reporting, link=link(g) if link else None) for g in groups]


def _breadcrumbs(scope: Scope) -> list[tuple[str, dict | None]]:
    from thuphi.monitoring.areas import area_parse

    crumbs: list[tuple[str, dict | None]] = []
    area: Area | None = scope.area
    chain = []
    while area is not None:
        chain.append(area)
        area = area_parse(area.parent_code) if area.parent_code else None
    user = scope.user
    for a in reversed(chain):
        if a.kind == "nation" and not user.is_system_admin:
            continue
        crumbs.append((a.label, scope.query(area=a.code, institution="")))
    if scope.institution is not None:
        crumbs.append((scope.institution.name, None))
    elif crumbs:
        crumbs[-1] = (crumbs[-1][0], None)
    return crumbs


def dashboard_build(scope: Scope) -> Dashboard:
    kpi, targets = kpi_with_targets(scope, breakdowns=True)
    title = _("Theo tỉnh/thành phố") if scope.area.kind == "nation" else _("Theo xã/phường")
    area_groups, kind_groups = selectors.by_area_and_kind(kpi)
    areas = _rows(area_groups, lambda g: scope.query(area=g.key))
    kinds = _rows(kind_groups, lambda g: scope.query(kind=g.key))
    fee_labels = selectors.fee_kind_labels()
    fee_kinds = [Row(key=k, label=fee_labels.get(k, k), figures=f)
                 for k, f in sorted(kpi.by_fee.items(), key=lambda kv: -kv[1].value)]
    method_labels = selectors.method_labels()
    methods = [Row(key=k, label=method_labels.get(k, k), figures=f,
                   note=_("không dùng tiền mặt") if selectors.is_cashless_method(k) else _("tiền mặt"))
               for k, f in sorted(kpi.by_method.items(), key=lambda kv: -kv[1].value)]
    counted = sorted(kpi.counted, key=lambda f: (f.commune_name, f.name))
    reports = list(AggregateReport.objects.select_related("institution").filter(
        institution_id__in=selectors.institutions_in(scope).order_by().values("pk"), period_start__gte=scope.start, period_end__lte=scope.end)
        .order_by("institution__code", "period_start")[:500])
    return Dashboard(
        scope=scope, kpi=kpi, targets=targets, tiles=_tiles(kpi, targets), trend=selectors.trend(scope, kpi),
        areas_title=title, areas=areas, institutions=counted[:INSTITUTION_ROWS_ON_PAGE],
        institutions_truncated=len(counted) > INSTITUTION_ROWS_ON_PAGE, kinds=kinds, fee_kinds=fee_kinds,
        methods=methods, behind=selectors.furthest_behind(kpi), reports=reports, narrative=narrative(kpi),
        details=narrative_details(kpi, targets), breadcrumbs=_breadcrumbs(scope))


def area_options(user, scope: Scope) -> list[tuple[str, str]]:
    """Areas the user may pick: the nation and provinces (admin), their province, its old provinces and
    its communes."""
    from thuphi.registry.models import Commune, LegacyProvince, Province

    options: list[tuple[str, str]] = []
    if user.is_system_admin:
        options.append((NATION, _("Toàn quốc")))
        options += [(p.code, f"{p.code} – {p.name}") for p in Province.objects.order_by("code")]
    province = scope.area.province_code or getattr(user, "province_id", None)
    if user.institution_id and not user.is_system_admin:
        province = user.institution.commune.province_id
    if province:
        if not user.is_system_admin:
            p = Province.objects.filter(code=province).first()
            if p:
                options.append((p.code, f"{p.code} – {p.name}"))
        options += [(f"legacy:{lp.code}", _("%(name)s (trước 01/07/2025)") % {"name": lp.name})
                    for lp in LegacyProvince.objects.filter(successor_id=province).order_by("code")]
        options += [(c.code, f"{c.code} – {c.name}") for c in Commune.objects.filter(province_id=province)
                    .order_by("name")]
    if scope.area.code not in {o[0] for o in options}:
        options.insert(0, (scope.area.code, scope.area.label))
    return options


def period_presets(today: dt.date) -> list[tuple[str, dt.date, dt.date]]:
    """Quick periods: this month, last month, this quarter, this year, last year."""
    import calendar

    month_start = today.replace(day=1)
    last_month_end = month_start - dt.timedelta(days=1)
    q_start = today.replace(month=3 * ((today.month - 1) // 3) + 1, day=1)
    q_end_month = q_start.month + 2
    q_end = q_start.replace(month=q_end_month, day=calendar.monthrange(today.year, q_end_month)[1])
    return [
        (_("Tháng này"), month_start, today),
        (_("Tháng trước"), last_month_end.replace(day=1), last_month_end),
        (_("Quý này"), q_start, min(q_end, today)),
        (_("Năm nay"), today.replace(month=1, day=1), today),
        (_("Năm trước"), dt.date(today.year - 1, 1, 1), dt.date(today.year - 1, 12, 31)),
    ]
