"""Reading the figures: one scope (who asks, area, sector, kind, period) → facts per institution → indicators.

Every figure starts from `registry.selectors.institutions_visible_to(user)` narrowed to the area, so a
provincial monitor can never sum another province's rows, and an institution user only their own.

Periods (`period_pieces`): whole calendar months are read from the month tables; a month the range cuts is
read as its halves (per-institution totals) or as the month, less or plus at most about a week of days at
either edge. National answers for someone who sees the whole country (`nation_mode`) read the nation tables
(a few hundred rows a day or month) for everything but the per-institution totals. An aggregate report
counts when its whole period lies inside the range.
"""
from __future__ import annotations

import datetime as dt
import heapq
import json
from dataclasses import dataclass, field

from django.db.models import Exists, F, OuterRef, Q
from django.utils.translation import gettext as _

from thuphi.core.formatting import share_percent
from thuphi.monitoring.models import CASHLESS, AggregateReport, ReportStatus

# The scope and the period sums live in their own modules; callers keep importing them from here.
from thuphi.monitoring.selectors_scope import (
    Scope,
    _attrs_q,
    institutions_in,
    nation_mode,
    parse_date,
    scope_build,
)
from thuphi.monitoring.selectors_sums import (
    DETAIL,
    NATION,
    NATION_KEY,
    TOTALS,
    Piece,
    _fetch,
    _month_end,
    nation_sums,
    period_pieces,
    sums,
)
from thuphi.registry.models import CASHLESS_METHODS, DigitalPlatform, InstitutionKind, Sector

__all__ = ["DETAIL", "NATION", "NATION_KEY", "REPORTED", "TOTALS", "ZERO", "Bucket", "Completeness", "Figures",
           "Group", "InstitutionFacts", "Kpi", "MonthPoint", "Piece", "Scope", "by_commune", "by_kind",
           "by_area_and_kind", "by_province", "by_sector", "fee_kind_labels", "furthest_behind", "group_facts",
           "group_facts_many", "hundredths",
           "institutions_in", "is_cashless_method", "kpi_compute", "method_labels", "nation_mode",
           "nation_sums", "parse_date", "period_pieces", "scope_build", "sums", "trend"]

#: The pseudo fee kind under which aggregate reports (which do not split by fee) are counted.
REPORTED = "reported"


# --- facts ----------------------------------------------------------------------------------------


@dataclass(slots=True)
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
        return Figures(self.payments + other.payments, self.payments_cashless + other.payments_cashless,
                       self.value + other.value, self.value_cashless + other.value_cashless)

    @property
    def share_count(self):
        return share_percent(self.payments_cashless, self.payments)

    @property
    def share_value(self):
        return share_percent(self.value_cashless, self.value)


def _figures(row) -> Figures:
    return Figures(*row)


def hundredths(numerator: int, denominator: int) -> int | None:
    """`share_percent` in hundredths of a percent as an int (same rounding): for sorting thousands of rows."""
    if denominator == 0:
        return None
    negative = (numerator < 0) != (denominator < 0)
    q, r = divmod(abs(numerator) * 10_000, abs(denominator))
    if r * 2 >= abs(denominator):
        q += 1
    return -q if negative else q


#: Shared by every institution without figures: never modified in place (figures are replaced).
ZERO = Figures()


class InstitutionFacts:
    """One institution of the scope with its figures for the period. Built by `kpi_compute`; once
    `finish()` has run, the derived values (total, has_data, accepts_cashless, …) are plain attributes:
    a national page reads them for thousands of institutions."""

    __slots__ = ("id", "code", "name", "sector", "kind", "ownership", "commune_id", "commune_name", "province_id",
                 "province_name", "legacy_province_id", "is_active", "registered_cashless", "has_platform",
                 "ledger", "reports", "fee_sets", "reports_approved", "reports_pending", "report_methods",
                 "report_platforms", "total", "collects_through_thuphi", "has_data", "accepts_cashless", "digital",
                 "counted")

    def __init__(self, id, code, name, sector, kind, ownership, commune_id, commune_name, province_id,  # noqa: A002
                 province_name, legacy_province_id, is_active, registered_cashless, has_platform):
        self.id, self.code, self.name, self.sector, self.kind = id, code, name, sector, kind
        self.ownership, self.commune_id, self.commune_name = ownership, commune_id, commune_name
        self.province_id, self.province_name, self.legacy_province_id = province_id, province_name, legacy_province_id
        self.is_active, self.registered_cashless, self.has_platform = is_active, registered_cashless, has_platform
        self.ledger = ZERO
        self.reports = ZERO
        #: Ledger figures restricted to fee kinds, keyed by the sorted tuple of kinds (fee-restricted targets).
        self.fee_sets: dict[tuple[str, ...], Figures] = {}
        self.reports_approved = 0
        self.reports_pending = 0
        self.report_methods: set[str] = set()
        self.report_platforms: set[str] = set()
        self.total = ZERO
        self.collects_through_thuphi = self.has_data = False
        self.accepts_cashless = registered_cashless
        self.digital = has_platform
        self.counted = is_active

    def add_report(self, p: int, pc: int, v: int, vc: int, methods, platforms) -> None:
        if self.reports is ZERO:
            self.reports = Figures()
        self.reports.add(p, pc, v, vc)
        self.reports_approved += 1
        self.report_methods.update(methods or ())
        self.report_platforms.update(platforms or ())

    def finish(self) -> None:
        """Derive: ledger and approved reports; figures through thuphi; any data; cashless accepted
        (registered, reported or received); digital platform (registered or reported); counted in scope
        (active, or inactive with figures in the period)."""
        self.total = self.ledger if self.reports is ZERO else self.ledger + self.reports
        self.collects_through_thuphi = self.ledger.payments > 0
        self.has_data = self.collects_through_thuphi or self.reports_approved > 0
        self.accepts_cashless = (self.registered_cashless or bool(self.report_methods)
                                 or self.ledger.payments_cashless > 0)
        self.digital = self.has_platform or bool(self.report_platforms)
        self.counted = self.is_active or self.has_data

    def __repr__(self) -> str:
        return f"InstitutionFacts({self.code})"


@dataclass
class Completeness:
    expected: int
    received: int
    approved: int

    @property
    def percent(self):
        return share_percent(self.received, self.expected)


@dataclass
class Bucket:
    """Counted institutions of one sector, kind, ownership and old province, summed: what targets read."""

    n: int = 0
    digital: int = 0
    cashless: int = 0
    total: Figures = field(default_factory=Figures)
    reports: Figures = field(default_factory=Figures)
    fee_sets: dict[tuple[str, ...], Figures] = field(default_factory=dict)


@dataclass
class Kpi:
    scope: Scope
    facts: list[InstitutionFacts]
    ledger: Figures
    reports: Figures
    by_method: dict[str, Figures]
    by_fee: dict[str, Figures]
    #: National figures come from the nation tables (see nation_mode).
    nation: bool = False
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def totals(self) -> Figures:
        return self.ledger + self.reports

    def _summary(self) -> dict:
        if "summary" not in self._cache:
            counted = [f for f in self.facts if f.counted]
            expected = [f for f in counted if not f.collects_through_thuphi]
            self._cache["summary"] = {
                "counted": counted,
                "reporting": sum(f.has_data for f in counted),
                "through": sum(f.collects_through_thuphi for f in counted),
                "cashless": sum(f.accepts_cashless for f in counted),
                "digital": sum(f.digital for f in counted),
                "completeness": Completeness(
                    expected=len(expected),
                    received=sum(1 for f in expected if f.reports_approved or f.reports_pending),
                    approved=sum(1 for f in expected if f.reports_approved)),
            }
        return self._cache["summary"]

    @property
    def counted(self) -> list[InstitutionFacts]:
        return self._summary()["counted"]

    @property
    def institutions(self) -> int:
        return len(self.counted)

    @property
    def institutions_reporting(self) -> int:
        return self._summary()["reporting"]

    @property
    def institutions_through_thuphi(self) -> int:
        """Counted institutions with ledger figures in the period."""
        return self._summary()["through"]

    @property
    def institutions_cashless(self) -> int:
        return self._summary()["cashless"]

    @property
    def institutions_digital(self) -> int:
        return self._summary()["digital"]

    @property
    def completeness(self) -> Completeness:
        return self._summary()["completeness"]

    def buckets(self) -> dict[tuple, Bucket]:
        """Counted institutions by (sector, kind, ownership, old province)."""
        if "buckets" not in self._cache:
            out: dict[tuple, Bucket] = {}
            for f in self.counted:
                key = (f.sector, f.kind, f.ownership, f.legacy_province_id)
                b = out.get(key)
                if b is None:
                    b = out[key] = Bucket()
                b.n += 1
                b.digital += f.digital
                b.cashless += f.accepts_cashless
                b.total += f.total
                b.reports += f.reports
                for k, figs in f.fee_sets.items():
                    b.fee_sets.setdefault(k, Figures()).__iadd__(figs)
            self._cache["buckets"] = out
        return self._cache["buckets"]

    def refiled(self) -> list:
        if "refiled" not in self._cache:
            from thuphi.monitoring.stats import institutions_refiled

            self._cache["refiled"] = institutions_refiled() if self.nation else []
        return self._cache["refiled"]

    def nation_detail(self) -> dict[tuple, list[int]]:
        """Nation mode: the period's ledger figures by (sector, kind, ownership, fee kind, method), the whole
        country (the scope's sector and kind are applied by the reader)."""
        if "nation_detail" not in self._cache:
            s = self.scope
            self._cache["nation_detail"] = nation_sums(s.start, s.end, self.refiled(), list(NATION_KEY))
        return self._cache["nation_detail"]

    def nation_figures(self, *, sectors=None, kinds=None, ownership=None, fee_kinds=None) -> Figures:
        """Nation mode: ledger figures of the scope restricted to institutions of those sectors, kinds and
        ownership (None: any) and to those fee kinds."""
        s = self.scope
        out = Figures()
        for (sector, kind, own, fee, method), (p, _pc, v, _vc) in self.nation_detail().items():
            if (s.sector and sector != s.sector) or (s.kind and kind != s.kind):
                continue
            if (sectors and sector not in sectors) or (kinds and kind not in kinds) or (ownership and own != ownership):
                continue
            if fee_kinds and fee not in fee_kinds:
                continue
            cashless = method in CASHLESS
            out.add(p, p if cashless else 0, v, v if cashless else 0)
        return out


def kpi_compute(scope: Scope, *, fee_sets: list[tuple[str, ...]] = (), breakdowns: bool = False) -> Kpi:
    """Facts per institution (ledger and approved reports) for a scope. `fee_sets`: fee-kind sets whose
    ledger figures are wanted per institution (for fee-restricted targets; in nation mode targets read the
    nation tables instead); `breakdowns`: also the scope's figures by fee kind and by method (the
    dashboard's tables)."""
    fee_sets = [tuple(sorted(k)) for k in fee_sets]
    nation = nation_mode(scope)
    inst_qs = institutions_in(scope)
    columns = {"c_id": F("pk"), "c_code": F("code"), "c_name": F("name"), "c_sector": F("sector"),
               "c_kind": F("kind"), "c_own": F("ownership"), "c_commune": F("commune_id"),
               "c_commune_name": F("commune__name"), "c_province": F("commune__province_id"),
               "c_province_name": F("commune__province__name"), "c_legacy": F("legacy_province_id"),
               "c_active": F("is_active"), "c_methods": F("accepted_methods"),
               "c_platform": Exists(DigitalPlatform.objects.filter(institution_id=OuterRef("pk")))}
    rows = _fetch(inst_qs.order_by().annotate(**columns).values(*columns).order_by("c_code"))
    cashless_methods = set(CASHLESS)

    registered: dict = {}

    def accepts(value) -> bool:
        """Registered cashless methods (a JSON list; many institutions share the same one)."""
        key = value if isinstance(value, (str, bytes)) else json.dumps(value)
        if key not in registered:
            methods = json.loads(value) if isinstance(value, (str, bytes)) else value
            registered[key] = not cashless_methods.isdisjoint(methods or ())
        return registered[key]

    facts = {r[0]: InstitutionFacts(*r[:11], bool(r[11]), accepts(r[12]), bool(r[13])) for r in rows}
    ledger, reports = Figures(), Figures()
    by_method: dict[str, Figures] = {}
    by_fee: dict[str, Figures] = {}
    kpi = Kpi(scope=scope, facts=list(facts.values()), ledger=ledger, reports=reports, by_method=by_method,
              by_fee=by_fee, nation=nation)
    if not scope.is_empty_period and facts:
        # The whole country without a filter: no list of ids to send to the database.
        ids = None if nation and not scope.sector and not scope.kind else inst_qs.order_by().values("pk")
        for (inst_id,), row in sums(TOTALS, scope.start, scope.end, ["institution_id"], institutions=ids).items():
            f = facts.get(inst_id)
            if f is not None:
                f.ledger = _figures(row)
                ledger += f.ledger
        detail = None
        if not nation and (fee_sets or breakdowns):
            # One pass over the per-institution fee-kind × method rows serves both the fee-restricted
            # targets and the breakdowns (a province: a few thousand rows).
            detail = sums(DETAIL, scope.start, scope.end, ["institution_id", "fee_kind", "method"], institutions=ids)
        for kinds in fee_sets:
            if detail is not None:
                wanted = set(kinds)
                for (inst_id, fee_kind, _method), row in detail.items():
                    if fee_kind in wanted and inst_id in facts:
                        facts[inst_id].fee_sets.setdefault(kinds, Figures()).add(*row)
                continue
            for (inst_id,), row in sums(DETAIL, scope.start, scope.end, ["institution_id"],
                                        where=Q(fee_kind__in=list(kinds)), institutions=ids).items():
                if inst_id in facts:
                    facts[inst_id].fee_sets[kinds] = _figures(row)
        if breakdowns:
            pairs: dict[tuple[str, str], list[int]] = {}
            if nation:
                for (sector, kind, _own, fee, method), row in kpi.nation_detail().items():
                    if (scope.sector and sector != scope.sector) or (scope.kind and kind != scope.kind):
                        continue
                    pair = pairs.setdefault((fee, method), [0, 0, 0, 0])
                    for i in range(4):
                        pair[i] += row[i]
            else:
                for (inst_id, fee, method), row in detail.items():
                    if inst_id not in facts:
                        continue
                    pair = pairs.setdefault((fee, method), [0, 0, 0, 0])
                    for i in range(4):
                        pair[i] += row[i]
            for (fee_kind, method), row in pairs.items():
                if any(row):
                    by_fee.setdefault(fee_kind, Figures()).add(*row)
                    by_method.setdefault(method, Figures()).add(*row)
        reps = AggregateReport.objects.filter(
            institution_id__in=inst_qs.order_by().values("pk"), period_start__gte=scope.start,
            period_end__lte=scope.end).exclude(status=ReportStatus.RETURNED).values_list(
            "institution_id", "status", "payments", "payments_cashless", "value", "value_cashless",
            "cashless_methods", "digital_platforms", "period_end")
        # The trend shows the same approved reports by the month their period ends: kept for it.
        approved_reports: list[tuple] = kpi._cache.setdefault("approved_reports", [])
        for inst_id, status, p, pc, v, vc, methods, platforms, end in reps:
            f = facts.get(inst_id)
            if f is None:
                continue
            if status != ReportStatus.APPROVED:
                f.reports_pending += 1
                continue
            f.add_report(p, pc, v, vc, methods, platforms)
            reports.add(p, pc, v, vc)
            approved_reports.append((end, p, pc, v, vc))
            if breakdowns:
                by_fee.setdefault(REPORTED, Figures()).add(p, pc, v, vc)
                by_method.setdefault("reported_cash", Figures()).add(p - pc, 0, v - vc, 0)
                by_method.setdefault("reported_cashless", Figures()).add(pc, pc, vc, vc)
    _complete(kpi)
    return kpi


def _complete(kpi: Kpi) -> None:
    """One pass over the institutions once their figures are in: derived values, the counts, and the sums
    by (sector, kind, ownership, old province) that targets read."""
    counted: list[InstitutionFacts] = []
    reporting = cashless = digital = expected = received = approved = through = 0
    buckets: dict[tuple, Bucket] = {}
    for f in kpi.facts:
        f.finish()
        if not f.counted:
            continue
        counted.append(f)
        reporting += f.has_data
        cashless += f.accepts_cashless
        digital += f.digital
        if f.collects_through_thuphi:
            through += 1
        else:
            expected += 1
            received += bool(f.reports_approved or f.reports_pending)
            approved += bool(f.reports_approved)
        key = (f.sector, f.kind, f.ownership, f.legacy_province_id)
        b = buckets.get(key)
        if b is None:
            b = buckets[key] = Bucket()
        b.n += 1
        b.digital += f.digital
        b.cashless += f.accepts_cashless
        t, ft = b.total, f.total
        t.payments += ft.payments
        t.payments_cashless += ft.payments_cashless
        t.value += ft.value
        t.value_cashless += ft.value_cashless
        if f.reports is not ZERO:
            b.reports += f.reports
        for k, figs in f.fee_sets.items():
            b.fee_sets.setdefault(k, Figures()).__iadd__(figs)
    kpi._cache["summary"] = {
        "counted": counted, "reporting": reporting, "through": through, "cashless": cashless, "digital": digital,
        "completeness": Completeness(expected=expected, received=received, approved=approved)}
    kpi._cache["buckets"] = buckets


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
    return group_facts_many(facts, [(key, label)])[0]


def group_facts_many(facts: list[InstitutionFacts], groupings: list[tuple]) -> list[list[Group]]:
    """Several groupings ((key, label) pairs) of the counted institutions in one pass: a national page
    groups thousands of institutions by province and by kind."""
    maps: list[dict[str, Group]] = [{} for _ in groupings]
    pairs = list(zip(maps, groupings))
    for f in facts:
        if not f.counted:
            continue
        ft = f.total
        for groups, (key, label) in pairs:
            k = key(f)
            g = groups.get(k)
            if g is None:
                g = groups[k] = Group(key=k, label=label(f))  # the label once per group, not per institution
            g.institutions += 1
            g.reporting += f.has_data
            g.cashless += f.accepts_cashless
            g.digital += f.digital
            t = g.figures
            t.payments += ft.payments
            t.payments_cashless += ft.payments_cashless
            t.value += ft.value
            t.value_cashless += ft.value_cashless
    return [sorted(groups.values(), key=lambda g: g.label) for groups in maps]


def by_commune(kpi: Kpi) -> list[Group]:
    return group_facts(kpi.counted, lambda f: f.commune_id, lambda f: f.commune_name)


def by_province(kpi: Kpi) -> list[Group]:
    return group_facts(kpi.counted, lambda f: f.province_id, lambda f: f.province_name)


def _kind_grouping() -> tuple:
    labels = dict(InstitutionKind.choices)
    return lambda f: f.kind, lambda f: str(labels.get(f.kind, f.kind))


def by_kind(kpi: Kpi) -> list[Group]:
    return group_facts(kpi.counted, *_kind_grouping())


def by_area_and_kind(kpi: Kpi) -> tuple[list[Group], list[Group]]:
    """By province (nation) or commune (elsewhere), and by kind: one pass over the institutions."""
    if kpi.scope.area.kind == "nation":
        area = (lambda f: f.province_id, lambda f: f.province_name)
    else:
        area = (lambda f: f.commune_id, lambda f: f.commune_name)
    areas, kinds = group_facts_many(kpi.counted, [area, _kind_grouping()])
    return areas, kinds


def by_sector(kpi: Kpi) -> list[Group]:
    labels = dict(Sector.choices)
    return group_facts(kpi.counted, lambda f: f.sector, lambda f: str(labels.get(f.sector, f.sector)))


def furthest_behind(kpi: Kpi, limit: int = 10) -> list[InstitutionFacts]:
    """Institutions that do not accept cashless payment first, then those without figures, then the lowest
    cashless share by value (then by count)."""
    def key(f: InstitutionFacts):
        t = f.total
        value = hundredths(t.value_cashless, t.value)
        count = hundredths(t.payments_cashless, t.payments)
        return (f.accepts_cashless, f.has_data, -1 if value is None else value, -1 if count is None else count,
                f.code)

    counted = kpi.counted
    # The key sorts first those not accepting cashless, then those without figures: when they fill the
    # list, the shares of the others need not be computed.
    pool = [f for f in counted if not f.accepts_cashless]
    if len(pool) < limit:
        pool += [f for f in counted if f.accepts_cashless and not f.has_data]
        if len(pool) < limit:
            pool = counted
    return heapq.nsmallest(limit, pool, key=key)


@dataclass
class MonthPoint:
    month: dt.date
    figures: Figures = field(default_factory=Figures)


def trend(scope: Scope, kpi: Kpi | None = None) -> list[MonthPoint]:
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
    if nation_mode(scope):
        from thuphi.monitoring.stats import institutions_refiled

        refiled = kpi.refiled() if kpi is not None else institutions_refiled()
        where = _attrs_q(scope)
        monthly = nation_sums(scope.start, scope.end, refiled, ["month"], where=where,
                              matches=lambda a: (not scope.sector or a[0] == scope.sector)
                              and (not scope.kind or a[1] == scope.kind))
    else:
        monthly = sums(TOTALS, scope.start, scope.end, ["month"], institutions=inst_qs.order_by().values("pk"))
    for (month,), row in monthly.items():
        if isinstance(month, dt.datetime):
            month = month.date()
        if isinstance(month, str):
            month = dt.date.fromisoformat(month[:10])
        points.setdefault(month, MonthPoint(month=month)).figures.add(*row)
    if kpi is not None and kpi.scope is scope and "approved_reports" in kpi._cache:
        approved = kpi._cache["approved_reports"]
    else:
        approved = AggregateReport.objects.filter(
            institution_id__in=inst_qs.order_by().values("pk"), status=ReportStatus.APPROVED,
            period_start__gte=scope.start, period_end__lte=scope.end).values_list(
            "period_end", "payments", "payments_cashless", "value", "value_cashless")
    for end, p, pc, v, vc in approved:
        month = end.replace(day=1)
        points.setdefault(month, MonthPoint(month=month)).figures.add(p, pc, v, vc)
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
