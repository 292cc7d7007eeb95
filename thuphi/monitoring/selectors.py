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

import calendar
import datetime as dt
import heapq
import json
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import BigIntegerField, Exists, F, IntegerField, OuterRef, Q, QuerySet, Sum, Value
from django.db.models.functions import Cast, TruncMonth
from django.utils.translation import gettext as _

from thuphi.core.errors import ValidationFailed
from thuphi.core.formatting import share_percent
from thuphi.monitoring.areas import Area, area_authorize, area_parse
from thuphi.monitoring.models import (
    CASHLESS,
    AggregateReport,
    DailyStat,
    InstitutionHalfMonthStat,
    InstitutionMonthStat,
    InstitutionYearStat,
    MonthlyStat,
    NationDayStat,
    NationMonthStat,
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


@dataclass(frozen=True)
class Piece:
    """A signed part of a period, at the grain of one statistics table: the year `first` (1 January), whole
    months `first`–`last` (first days), one half (`half` 1 or 2) of the month `first`, or the days
    `first`–`last`."""

    level: str  # year | month | half | day
    first: dt.date
    last: dt.date
    half: int = 0
    sign: int = 1

    def dates(self) -> list[dt.date]:
        """The months (first days) or days the piece covers."""
        if self.level == "year":
            return [self.first]
        out, d = [], self.first
        while d <= self.last:
            out.append(d)
            d = (d.replace(day=28) + dt.timedelta(days=4)).replace(day=1) if self.level == "month" else \
                d + dt.timedelta(days=1)
        return out


def _pieces_q(pieces: list[Piece]) -> Q:
    """Pieces of one grain as a filter the primary keys can use: `month IN (…)` / `day IN (…)` (several
    ranges OR-ed together would leave the index only the institution to seek on)."""
    level = pieces[0].level
    if level == "half":
        q = Q()
        for p in pieces:
            q |= Q(month=p.first, half=p.half)
        return Q(month__in=sorted({p.first for p in pieces})) & q
    dates = sorted({d for p in pieces for d in p.dates()})
    return Q(**{f"{level}__in": dates})


def _unit(whole: Piece, start: dt.date, end: dt.date, first: dt.date, last: dt.date) -> list[Piece]:
    """[first, last] inside the unit [start, end] (a month or a half): the unit itself, its days, or the
    unit less the days around them, whichever reads fewer days. Exact: a unit's row is the sum of its days."""
    inside = (last - first).days + 1
    length = (end - start).days + 1
    if inside == length:
        return [whole]
    if inside <= length - inside:
        return [Piece("day", first, last)]
    out = [whole]
    if start < first:
        out.append(Piece("day", start, first - dt.timedelta(days=1), sign=-1))
    if last < end:
        out.append(Piece("day", last + dt.timedelta(days=1), end, sign=-1))
    return out


def _month_pieces(start: dt.date, end: dt.date, halves: bool) -> list[Piece]:
    """[start, end] as runs of whole months, and for a month cut by the range its halves (when the table has
    them) or the month, plus or minus at most about a week of days per edge."""
    if end < start:
        return []
    pieces: list[Piece] = []
    run: list[dt.date] = []
    m = start.replace(day=1)
    while m <= end:
        m_end = _month_end(m)
        a, b = max(start, m), min(end, m_end)
        if a == m and b == m_end:
            run = [run[0], m] if run else [m, m]
        else:
            if run:
                pieces.append(Piece("month", run[0], run[1]))
                run = []
            if halves:
                for h, (hs, he) in ((1, (m, m.replace(day=15))), (2, (m.replace(day=16), m_end))):
                    x, y = max(a, hs), min(b, he)
                    if x <= y:
                        pieces += _unit(Piece("half", m, m, half=h), hs, he, x, y)
            else:
                pieces += _unit(Piece("month", m, m), m, m_end, a, b)
        m = m_end + dt.timedelta(days=1)
    if run:
        pieces.append(Piece("month", run[0], run[1]))
    return pieces


def _cost(pieces: list[Piece]) -> int:
    """Rows read per institution, roughly: a year, month or half row each; about three rows a day."""
    return sum(len(p.dates()) * (3 if p.level == "day" else 1) for p in pieces)


def period_pieces(start: dt.date, end: dt.date, *, halves: bool, years: bool = False) -> list[Piece]:
    """[start, end] as signed pieces, each exact because a year, month or half row is the sum of its days.
    Runs of whole months; a month cut by the range as its halves (when the table has them) or the whole
    month, plus or minus at most about a week of days per edge; with `years`, a year covered whole as its
    row, and a year mostly covered as its row less the rest. 16/3–15/4 is the second half of March plus the
    first half of April; 1/1–28/11 is the year less December, less November's last two days."""
    if end < start:
        return []
    if not years:
        return _month_pieces(start, end, halves)
    out: list[Piece] = []
    for y in range(start.year, end.year + 1):
        first, last = dt.date(y, 1, 1), dt.date(y, 12, 31)
        a, b = max(start, first), min(end, last)
        if a == first and b == last:
            out.append(Piece("year", first, first))
            continue
        direct = _month_pieces(a, b, halves)
        rest = [Piece("year", first, first)]
        for x, z in ((first, a - dt.timedelta(days=1)), (b + dt.timedelta(days=1), last)):
            if x <= z:
                rest += [Piece(p.level, p.first, p.last, p.half, -p.sign) for p in _month_pieces(x, z, halves)]
        out += rest if _cost(rest) < _cost(direct) else direct
    return out


#: The statistics tables by grain. Totals per institution (the cashless split stored); per institution by
#: fee kind and method; nationwide by sector, kind and ownership of institution, fee kind and method.
TOTALS = {"year": InstitutionYearStat, "month": InstitutionMonthStat, "half": InstitutionHalfMonthStat,
          "day": DailyStat}
DETAIL = {"month": MonthlyStat, "day": DailyStat}
NATION = {"month": NationMonthStat, "day": NationDayStat}
NATION_KEY = ("sector", "kind", "ownership", "fee_kind", "method")


def _annotations(model) -> dict:
    """The four sums, cast back to bigint (PostgreSQL sums bigints as numeric, which the driver would turn
    into Decimals: thousands of rows a national answer)."""
    def total(column: str, **kw):
        return Cast(Sum(column, **kw), BigIntegerField())

    if model in (InstitutionYearStat, InstitutionMonthStat, InstitutionHalfMonthStat):
        return {"s_p": total("payments"), "s_pc": total("payments_cashless"), "s_v": total("value"),
                "s_vc": total("value_cashless")}
    cashless = Q(method__in=CASHLESS)
    return {"s_p": total("payments"), "s_pc": total("payments", filter=cashless), "s_v": total("value"),
            "s_vc": total("value", filter=cashless)}


def _as_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    return value


def _fetch(queryset) -> list[tuple]:
    """The rows of a values() queryset straight from the cursor: thousands of rows without Django's
    per-row conversions (the caller converts what it needs)."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def sums(source: dict, start: dt.date, end: dt.date, group: list[str], *, where: Q | None = None,
         institutions=None) -> dict[tuple, list[int]]:
    """Ledger figures over [start, end] grouped by `group` (fields of the tables; "month" for the day
    table is the month of the day), summed in SQL: {key: [payments, cashless payments, value, cashless
    value]}. One query per grain and sign. `institutions`: a queryset of ids or a list (None: all);
    `where`: a further filter (fee kinds, sector, kind). Keys whose figures net to zero are left out."""
    merged: dict[tuple[str, int], list[Piece]] = {}
    years = "year" in source and "month" not in group  # a year row cannot be split by month
    for piece in period_pieces(start, end, halves="half" in source, years=years):
        merged.setdefault((piece.level, piece.sign), []).append(piece)
    width = len(group)
    dates = [i for i, g in enumerate(group) if g in ("month", "day")]
    parts = []
    for (level, sign), group_pieces in merged.items():
        model = source[level]
        qs = model.objects.filter(_pieces_q(group_pieces))
        if where is not None:
            qs = qs.filter(where)
        if institutions is not None:
            qs = qs.filter(institution_id__in=institutions)
        # Every column an annotation, in this order: the rows are (group…, sign, sums…).
        keys = {f"g{i}": TruncMonth("day") if g == "month" and level == "day" else F(g) for i, g in enumerate(group)}
        keys["g_sign"] = Value(sign, output_field=IntegerField())
        parts.append(qs.annotate(**keys).values(*keys).annotate(**_annotations(model)).order_by())
    out: dict[tuple, list[int]] = {}
    # One query per grain and sign: as a UNION ALL, PostgreSQL would plan them in parallel, and starting
    # the workers costs more than these small aggregates.
    for r in (row for part in parts for row in _fetch(part)):
        key = r[:width]
        if dates:
            key = tuple(_as_date(v) if i in dates else v for i, v in enumerate(key))
        sign = r[width]
        row = out.get(key)
        if row is None:
            row = out[key] = [0, 0, 0, 0]
        for i in range(4):
            row[i] += sign * int(r[width + 1 + i] or 0)
    return {k: v for k, v in out.items() if any(v)}


def nation_mode(scope: "Scope") -> bool:
    """The whole country for someone who sees it all: national figures come from the nation tables."""
    return scope.area.kind == "nation" and scope.institution is None and scope.user.is_system_admin


def _attrs_q(scope: "Scope") -> Q:
    q = Q()
    if scope.sector:
        q &= Q(sector=scope.sector)
    if scope.kind:
        q &= Q(kind=scope.kind)
    return q


def nation_sums(start: dt.date, end: dt.date, refiled: list, group: list[str], where: Q | None = None,
                matches=None) -> dict[tuple, list[int]]:
    """Sums of the nation tables, exact even for institutions whose sector, kind or ownership changed since
    their figures were filed (`refiled`, from stats.institutions_refiled): their own figures are read per
    institution and moved from the filed group to the current one. `group` among NATION_KEY and "month";
    `matches(attrs)` says whether a (sector, kind, ownership) passes `where` (for the moves)."""
    out = sums(NATION, start, end, group, where=where)
    if not refiled:
        return out
    attrs = ("sector", "kind", "ownership")
    per_inst = sums(DETAIL, start, end, ["institution_id", *[g for g in group if g not in attrs]],
                    institutions=[i for i, _f, _c in refiled])
    moves = {i: (filed, current) for i, filed, current in refiled}
    for (inst_id, *rest), figs in per_inst.items():
        filed, current = moves[inst_id]
        for sign, a in ((-1, filed), (+1, current)):
            if matches is not None and not matches(a):
                continue
            values = dict(zip(attrs, a))
            values.update(zip([g for g in group if g not in attrs], rest))
            key = tuple(values[g] for g in group)
            row = out.setdefault(key, [0, 0, 0, 0])
            for i in range(4):
                row[i] += sign * figs[i]
    return {k: v for k, v in out.items() if any(v)}


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
            "cashless_methods", "digital_platforms")
        for inst_id, status, p, pc, v, vc, methods, platforms in reps:
            f = facts.get(inst_id)
            if f is None:
                continue
            if status != ReportStatus.APPROVED:
                f.reports_pending += 1
                continue
            f.add_report(p, pc, v, vc, methods, platforms)
            reports.add(p, pc, v, vc)
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
    reporting = cashless = digital = expected = received = approved = 0
    buckets: dict[tuple, Bucket] = {}
    for f in kpi.facts:
        f.finish()
        if not f.counted:
            continue
        counted.append(f)
        reporting += f.has_data
        cashless += f.accepts_cashless
        digital += f.digital
        if not f.collects_through_thuphi:
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
        "counted": counted, "reporting": reporting, "cashless": cashless, "digital": digital,
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
    groups: dict[str, Group] = {}
    for f in facts:
        if not f.counted:
            continue
        k = key(f)
        g = groups.get(k)
        if g is None:
            g = groups[k] = Group(key=k, label=label(f))  # the label once per group, not per institution
        g.institutions += 1
        g.reporting += f.has_data
        g.cashless += f.accepts_cashless
        g.digital += f.digital
        t, ft = g.figures, f.total
        t.payments += ft.payments
        t.payments_cashless += ft.payments_cashless
        t.value += ft.value
        t.value_cashless += ft.value_cashless
    return sorted(groups.values(), key=lambda g: g.label)


def by_commune(kpi: Kpi) -> list[Group]:
    return group_facts(kpi.counted, lambda f: f.commune_id, lambda f: f.commune_name)


def by_province(kpi: Kpi) -> list[Group]:
    return group_facts(kpi.counted, lambda f: f.province_id, lambda f: f.province_name)


def by_kind(kpi: Kpi) -> list[Group]:
    labels = dict(InstitutionKind.choices)
    return group_facts(kpi.counted, lambda f: f.kind, lambda f: str(labels.get(f.kind, f.kind)))


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
    for end, p, pc, v, vc in AggregateReport.objects.filter(
            institution_id__in=inst_qs.order_by().values("pk"), status=ReportStatus.APPROVED,
            period_start__gte=scope.start, period_end__lte=scope.end).values_list(
            "period_end", "payments", "payments_cashless", "value", "value_cashless"):
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
