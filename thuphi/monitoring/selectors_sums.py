"""Sums of the statistics tables over a period: the period cut into exact pieces, one query per grain."""
from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from django.db import connection
from django.db.models import BigIntegerField, F, IntegerField, Q, Sum, Value
from django.db.models.functions import Cast, TruncMonth

from thuphi.monitoring.models import (
    CASHLESS,
    DailyStat,
    InstitutionHalfMonthStat,
    InstitutionMonthStat,
    InstitutionYearStat,
    MonthlyStat,
    NationDayStat,
    NationMonthStat,
)


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
