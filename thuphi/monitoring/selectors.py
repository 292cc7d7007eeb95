"""Reading the figures: one scope (who asks, area, sector, kind, period) → facts per institution → indicators.

Every figure starts from `registry.selectors.institutions_visible_to(user)` narrowed to the area, so a
provincial monitor can never sum another province's rows, and an institution user only their own.

Periods: the statistics of whole calendar months inside the range are read from MonthlyStat, the days at
either edge from DailyStat. An aggregate report counts when its whole period lies inside the range.
"""
from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.utils.translation import gettext as _

from thuphi.core.errors import ValidationFailed
from thuphi.core.formatting import share_percent
from thuphi.monitoring.areas import Area, area_authorize, area_parse
from thuphi.monitoring.models import (
    CASHLESS,
    AggregateReport,
    DailyStat,
    InstitutionMonthStat,
    MonthlyStat,
    ReportStatus,
)
from thuphi.registry.models import CASHLESS_METHODS, DigitalPlatform, Institution, InstitutionKind, Sector
from thuphi.registry.selectors import institution_get, institutions_visible_to

#: The pseudo fee kind under which aggregate reports (which do not split by fee) are counted.
REPORTED = "reported"


# --- scope -----------------------------------------------------------------------------------------


@dataclass
class Scope:
    user: object
    area: Area
    sector: str | None
    kind: str | None
    start: dt.date
    end: dt.date  # effective: an old province stops on its last day
    requested_end: dt.date
    institution: Institution | None = None

    @property
    def is_empty_period(self) -> bool:
        return self.end < self.start

    def query(self, **changes) -> dict:
        """The query-string parameters of this scope (for links and exports)."""
        params = {"area": self.area.code, "sector": self.sector or "all", "kind": self.kind or "",
                  "from": self.start.isoformat(), "to": self.requested_end.isoformat(),
                  "institution": self.institution.code if self.institution else ""}
        params.update(changes)
        return {k: v for k, v in params.items() if v}


def parse_date(value, label: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValidationFailed(_("%(label)s phải có dạng YYYY-MM-DD.") % {"label": label},
                               code="invalid_date") from None


def scope_build(*, user, area: str | None = None, sector: str | None = None, kind: str | None = None,
                start=None, end=None, institution: str | None = None, today: dt.date | None = None) -> Scope:
    """Validate and authorize a query. Defaults: this calendar year up to today."""
    from django.utils import timezone

    today = today or timezone.localdate()
    sector = (sector or "all").strip().lower()
    if sector not in ("all", *Sector.values):
        raise ValidationFailed(_("Lĩnh vực phải là education, health hoặc all."), code="invalid_sector")
    kind = (kind or "").strip() or None
    if kind and kind not in InstitutionKind.values:
        raise ValidationFailed(_("Loại hình “%(k)s” không hợp lệ.") % {"k": kind[:40]}, code="invalid_kind")
    start_d = parse_date(start, _("Từ ngày")) or today.replace(month=1, day=1)
    end_d = parse_date(end, _("Đến ngày")) or today
    if end_d < start_d:
        raise ValidationFailed(_("“Đến ngày” phải sau hoặc bằng “Từ ngày”."), code="invalid_period")
    parsed = area_parse(area)
    area_authorize(user=user, area=parsed)
    inst = None
    if institution:
        inst = institution_get(user=user, code=institution)
        if not Institution.objects.filter(parsed.institution_q(), pk=inst.pk).exists():
            raise ValidationFailed(_("Đơn vị không thuộc địa bàn đã chọn."), code="institution_outside_area")
    effective_end = min(end_d, parsed.valid_to) if parsed.valid_to else end_d
    return Scope(user=user, area=parsed, sector=None if sector == "all" else sector, kind=kind, start=start_d,
                 end=effective_end, requested_end=end_d, institution=inst)


def institutions_in(scope: Scope) -> QuerySet[Institution]:
    qs = institutions_visible_to(user=scope.user).filter(scope.area.institution_q())
    if scope.sector:
        qs = qs.filter(sector=scope.sector)
    if scope.kind:
        qs = qs.filter(kind=scope.kind)
    if scope.institution is not None:
        qs = qs.filter(pk=scope.institution.pk)
    return qs


# --- periods --------------------------------------------------------------------------------------


def _month_end(d: dt.date) -> dt.date:
    return d.replace(day=calendar.monthrange(d.year, d.month)[1])


def split_range(start: dt.date, end: dt.date) -> tuple[tuple[dt.date, dt.date] | None, list[tuple[dt.date, dt.date]]]:
    """[start, end] as whole months (first days of the first and last month) and the days left over."""
    if end < start:
        return None, []
    first = start if start.day == 1 else _month_end(start) + dt.timedelta(days=1)
    last = end.replace(day=1) if end == _month_end(end) else end.replace(day=1) - dt.timedelta(days=1)
    last = last.replace(day=1)
    if first > last:
        return None, [(start, end)]
    days = []
    if start < first:
        days.append((start, first - dt.timedelta(days=1)))
    if _month_end(last) < end:
        days.append((_month_end(last) + dt.timedelta(days=1), end))
    return (first, last), days


def _unrestricted(scope: "Scope") -> bool:
    """The whole country for someone who may see it all: no need to filter the statistics by institution."""
    return (scope.area.kind == "nation" and not scope.sector and not scope.kind and scope.institution is None
            and scope.user.is_system_admin)


def stat_sums(inst_qs: QuerySet | None, start: dt.date, end: dt.date, group: list[str],
              fee_kinds: tuple[str, ...] = ()) -> dict[tuple, dict[str, int]]:
    """Ledger sums grouped by `group` (among institution_id, month, fee_kind, method), summed in SQL:
    p, pc, v, vc (payments, cashless payments, value, cashless value), restricted to `fee_kinds` if given.

    Whole months come from InstitutionMonthStat when neither fee kind nor method is asked for (one row per
    institution and month), else from MonthlyStat; the days at the edges from DailyStat.
    `inst_qs` None: every institution (no filter at all)."""
    months, days = split_range(start, end)
    ids = inst_qs.order_by().values("pk") if inst_qs is not None else None
    cashless = Q(method__in=CASHLESS)
    split = {"p": Sum("payments"), "pc": Sum("payments", filter=cashless), "v": Sum("value"),
             "vc": Sum("value", filter=cashless)}
    querysets = []
    if months:
        if set(group) <= {"institution_id", "month"} and not fee_kinds:
            qs = InstitutionMonthStat.objects.filter(month__range=months)
            ann = {"p": Sum("payments"), "pc": Sum("payments_cashless"), "v": Sum("value"),
                   "vc": Sum("value_cashless")}
        else:
            qs = MonthlyStat.objects.filter(month__range=months)
            ann = split
        querysets.append((qs, ann))
    if days:
        q = Q()
        for a, b in days:
            q |= Q(day__range=(a, b))
        qs = DailyStat.objects.filter(q)
        if "month" in group:
            qs = qs.annotate(month=TruncMonth("day"))
        querysets.append((qs, split))
    out: dict[tuple, dict[str, int]] = {}
    for qs, ann in querysets:
        if ids is not None:
            qs = qs.filter(institution_id__in=ids)
        if fee_kinds:
            qs = qs.filter(fee_kind__in=list(fee_kinds))
        for r in qs.values(*group).annotate(**ann).order_by():
            key = tuple(r[g] for g in group)
            row = out.setdefault(key, dict.fromkeys(("p", "pc", "v", "vc"), 0))
            for k in row:
                row[k] += int(r[k] or 0)
    return out


def _figures(row: dict[str, int]) -> Figures:
    return Figures(row["p"], row["pc"], row["v"], row["vc"])


# --- facts ----------------------------------------------------------------------------------------


@dataclass
class Figures:
    payments: int = 0
    payments_cashless: int = 0
    value: int = 0
    value_cashless: int = 0

    def add(self, payments: int, payments_cashless: int, value: int, value_cashless: int) -> None:
        self.payments += payments
        self.payments_cashless += payments_cashless
        self.value += value
        self.value_cashless += value_cashless

    def __iadd__(self, other: "Figures") -> "Figures":
        self.add(other.payments, other.payments_cashless, other.value, other.value_cashless)
        return self

    def __add__(self, other: "Figures") -> "Figures":
        out = Figures()
        out += self
        out += other
        return out

    @property
    def share_count(self):
        return share_percent(self.payments_cashless, self.payments)

    @property
    def share_value(self):
        return share_percent(self.value_cashless, self.value)


@dataclass
class InstitutionFacts:
    id: int
    code: str
    name: str
    sector: str
    kind: str
    ownership: str
    commune_id: str
    commune_name: str
    province_id: str
    province_name: str
    legacy_province_id: str | None
    is_active: bool
    registered_cashless: bool
    has_platform: bool
    ledger: Figures = field(default_factory=Figures)
    reports: Figures = field(default_factory=Figures)
    #: Ledger figures restricted to fee kinds, keyed by the sorted tuple of kinds (fee-restricted targets).
    fee_sets: dict[tuple[str, ...], Figures] = field(default_factory=dict)
    reports_approved: int = 0
    reports_pending: int = 0
    report_methods: set[str] = field(default_factory=set)
    report_platforms: set[str] = field(default_factory=set)

    @property
    def total(self) -> Figures:
        return self.ledger + self.reports

    @property
    def collects_through_thuphi(self) -> bool:
        return self.ledger.payments > 0

    @property
    def has_data(self) -> bool:
        return self.collects_through_thuphi or self.reports_approved > 0

    @property
    def accepts_cashless(self) -> bool:
        return self.registered_cashless or bool(self.report_methods) or self.ledger.payments_cashless > 0

    @property
    def digital(self) -> bool:
        return self.has_platform or bool(self.report_platforms)

    @property
    def counted(self) -> bool:
        return self.is_active or self.has_data


@dataclass
class Completeness:
    expected: int
    received: int
    approved: int

    @property
    def percent(self):
        return share_percent(self.received, self.expected)


@dataclass
class Kpi:
    scope: Scope
    facts: list[InstitutionFacts]
    ledger: Figures
    reports: Figures
    by_method: dict[str, Figures]
    by_fee: dict[str, Figures]

    @property
    def totals(self) -> Figures:
        return self.ledger + self.reports

    @property
    def counted(self) -> list[InstitutionFacts]:
        return [f for f in self.facts if f.counted]

    @property
    def institutions(self) -> int:
        return len(self.counted)

    @property
    def institutions_reporting(self) -> int:
        return sum(1 for f in self.counted if f.has_data)

    @property
    def institutions_cashless(self) -> int:
        return sum(1 for f in self.counted if f.accepts_cashless)

    @property
    def institutions_digital(self) -> int:
        return sum(1 for f in self.counted if f.digital)

    @property
    def completeness(self) -> Completeness:
        expected = [f for f in self.counted if not f.collects_through_thuphi]
        return Completeness(expected=len(expected),
                            received=sum(1 for f in expected if f.reports_approved or f.reports_pending),
                            approved=sum(1 for f in expected if f.reports_approved))


def kpi_compute(scope: Scope, *, fee_sets: list[tuple[str, ...]] = (), breakdowns: bool = False) -> Kpi:
    """Facts per institution (ledger and approved reports) for a scope. `fee_sets`: fee-kind sets whose
    ledger figures are wanted per institution (for fee-restricted targets); `breakdowns`: also the scope's
    figures by fee kind and by method (the dashboard's tables)."""
    fee_sets = [tuple(sorted(k)) for k in fee_sets]
    inst_qs = institutions_in(scope)
    rows = (inst_qs.order_by("code")
            .annotate(has_platform=Exists(DigitalPlatform.objects.filter(institution_id=OuterRef("pk"))))
            .values("pk", "code", "name", "sector", "kind", "ownership", "commune_id", "commune__name",
                    "commune__province_id", "commune__province__name", "legacy_province_id",
                    "is_active", "accepted_methods", "has_platform"))
    facts = {
        r["pk"]: InstitutionFacts(
            id=r["pk"], code=r["code"], name=r["name"], sector=r["sector"], kind=r["kind"],
            ownership=r["ownership"], commune_id=r["commune_id"], commune_name=r["commune__name"],
            province_id=r["commune__province_id"], province_name=r["commune__province__name"],
            legacy_province_id=r["legacy_province_id"], is_active=r["is_active"],
            registered_cashless=bool(set(r["accepted_methods"] or []) & set(CASHLESS)),
            has_platform=r["has_platform"])
        for r in rows
    }
    ledger, reports = Figures(), Figures()
    by_method: dict[str, Figures] = {}
    by_fee: dict[str, Figures] = {}
    if not scope.is_empty_period and facts:
        stats_qs = None if _unrestricted(scope) else inst_qs
        for (inst_id,), row in stat_sums(stats_qs, scope.start, scope.end, ["institution_id"]).items():
            f = facts.get(inst_id)
            if f is not None:
                f.ledger = _figures(row)
                ledger += f.ledger
        for kinds in fee_sets:
            for (inst_id,), row in stat_sums(stats_qs, scope.start, scope.end, ["institution_id"], kinds).items():
                if inst_id in facts:
                    facts[inst_id].fee_sets[kinds] = _figures(row)
        if breakdowns:
            for (fee_kind, method), row in stat_sums(stats_qs, scope.start, scope.end,
                                                     ["fee_kind", "method"]).items():
                by_fee.setdefault(fee_kind, Figures()).__iadd__(_figures(row))
                by_method.setdefault(method, Figures()).__iadd__(_figures(row))
        reps = AggregateReport.objects.filter(
            institution_id__in=inst_qs.order_by().values("pk"), period_start__gte=scope.start,
            period_end__lte=scope.end).exclude(status=ReportStatus.RETURNED).values(
            "institution_id", "status", "payments", "payments_cashless", "value", "value_cashless",
            "cashless_methods", "digital_platforms")
        for r in reps:
            f = facts.get(r["institution_id"])
            if f is None:
                continue
            if r["status"] != ReportStatus.APPROVED:
                f.reports_pending += 1
                continue
            figs = (r["payments"], r["payments_cashless"], r["value"], r["value_cashless"])
            f.reports_approved += 1
            f.reports.add(*figs)
            f.report_methods |= set(r["cashless_methods"] or [])
            f.report_platforms |= set(r["digital_platforms"] or [])
            reports.add(*figs)
            if breakdowns:
                by_fee.setdefault(REPORTED, Figures()).add(*figs)
                by_method.setdefault("reported_cash", Figures()).add(
                    r["payments"] - r["payments_cashless"], 0, r["value"] - r["value_cashless"], 0)
                by_method.setdefault("reported_cashless", Figures()).add(
                    r["payments_cashless"], r["payments_cashless"], r["value_cashless"], r["value_cashless"])
    return Kpi(scope=scope, facts=list(facts.values()), ledger=ledger, reports=reports, by_method=by_method,
               by_fee=by_fee)


# --- breakdowns -----------------------------------------------------------------------------------


@dataclass
class Group:
    key: str
    label: str
    institutions: int = 0
    reporting: int = 0
    cashless: int = 0
    digital: int = 0
    figures: Figures = field(default_factory=Figures)
    link: dict | None = None

    @property
    def share_institutions_cashless(self):
        return share_percent(self.cashless, self.institutions)

    @property
    def share_institutions_digital(self):
        return share_percent(self.digital, self.institutions)


def group_facts(facts: list[InstitutionFacts], key, label) -> list[Group]:
    groups: dict[str, Group] = {}
    for f in facts:
        if not f.counted:
            continue
        k = key(f)
        g = groups.setdefault(k, Group(key=k, label=label(f)))
        g.institutions += 1
        g.reporting += int(f.has_data)
        g.cashless += int(f.accepts_cashless)
        g.digital += int(f.digital)
        g.figures += f.total
    return sorted(groups.values(), key=lambda g: g.label)


def by_commune(kpi: Kpi) -> list[Group]:
    return group_facts(kpi.facts, lambda f: f.commune_id, lambda f: f.commune_name)


def by_province(kpi: Kpi) -> list[Group]:
    return group_facts(kpi.facts, lambda f: f.province_id, lambda f: f.province_name)


def by_kind(kpi: Kpi) -> list[Group]:
    labels = dict(InstitutionKind.choices)
    return group_facts(kpi.facts, lambda f: f.kind, lambda f: str(labels.get(f.kind, f.kind)))


def by_sector(kpi: Kpi) -> list[Group]:
    labels = dict(Sector.choices)
    return group_facts(kpi.facts, lambda f: f.sector, lambda f: str(labels.get(f.sector, f.sector)))


def furthest_behind(kpi: Kpi, limit: int = 10) -> list[InstitutionFacts]:
    """Institutions that do not accept cashless payment first, then those without figures, then the lowest
    cashless share by value (then by count)."""
    def key(f: InstitutionFacts):
        total = f.total
        return (f.accepts_cashless, f.has_data, total.share_value if total.share_value is not None else -1,
                total.share_count if total.share_count is not None else -1, f.code)

    candidates = [f for f in kpi.counted]
    return sorted(candidates, key=key)[:limit]


@dataclass
class MonthPoint:
    month: dt.date
    figures: Figures = field(default_factory=Figures)


def trend(scope: Scope) -> list[MonthPoint]:
    """Monthly figures over the scope's period: ledger by month received, reports by the month their
    period ends (approved only)."""
    if scope.is_empty_period:
        return []
    inst_qs = institutions_in(scope)
    points: dict[dt.date, MonthPoint] = {}
    m = scope.start.replace(day=1)
    while m <= scope.end:
        points[m] = MonthPoint(month=m)
        m = _month_end(m) + dt.timedelta(days=1)
    for (month,), row in stat_sums(None if _unrestricted(scope) else inst_qs, scope.start, scope.end,
                                   ["month"]).items():
        if isinstance(month, dt.datetime):
            month = month.date()
        if isinstance(month, str):
            month = dt.date.fromisoformat(month[:10])
        points.setdefault(month, MonthPoint(month=month)).figures += _figures(row)
    for r in AggregateReport.objects.filter(
            institution_id__in=inst_qs.order_by().values("pk"), status=ReportStatus.APPROVED,
            period_start__gte=scope.start, period_end__lte=scope.end).values(
            "period_end", "payments", "payments_cashless", "value", "value_cashless"):
        month = r["period_end"].replace(day=1)
        points.setdefault(month, MonthPoint(month=month)).figures.add(
            r["payments"], r["payments_cashless"], r["value"], r["value_cashless"])
    return [points[k] for k in sorted(points)]


#: Method labels for the breakdown by payment method (reports only say cash or cashless).
def method_labels() -> dict[str, str]:
    from thuphi.registry.models import PaymentMethod

    labels = {str(k): str(v) for k, v in PaymentMethod.choices}
    labels["reported_cash"] = _("Tiền mặt (báo cáo tổng hợp)")
    labels["reported_cashless"] = _("Không dùng tiền mặt (báo cáo tổng hợp)")
    return labels


def fee_kind_labels() -> dict[str, str]:
    from thuphi.billing.models import FeeKind
    from thuphi.monitoring.models import UNMATCHED

    labels = {str(k): str(v) for k, v in FeeKind.choices}
    labels[UNMATCHED] = _("Chưa xác định khoản thu")
    labels[REPORTED] = _("Báo cáo tổng hợp (không tách khoản thu)")
    return labels


def is_cashless_method(method: str) -> bool:
    return method in CASHLESS_METHODS or method == "reported_cashless"
