"""Statistics from the ledger: moved incrementally as credits are booked, recomputable from scratch.

The rule for what a credit contributes is written once, in `credit_contribution`, and both paths use it:
- incremental: payments call `stats_on_credit_booked` / `stats_on_credit_reversed` (or, for a batch of
  credits in one transaction, `stats_on_credits_booked` / `stats_on_credits_reversed`) inside the
  transaction that books or reverses the credit; each adds or withdraws exactly its contribution;
- rebuild: `stats_rebuild()` recomputes every table from the credits (`_rebuild_postgres` /
  `_rebuild_portable` are the same rule in SQL), or with `credit_contribution` itself when
  `method="python"` (slow; for checks). Tests prove the three agree.

Tables (models.py): per institution `DailyStat` and `MonthlyStat` (fee kind × method), `InstitutionMonthStat`
and `InstitutionHalfMonthStat` (totals with the cashless split); nationwide `NationDayStat` and
`NationMonthStat` (no institution: by sector, kind and ownership of institution × fee kind × method), whose
rows an institution's payments are filed under as `NationStatFiling` records.

What counts: credits whose status is matched or unmatched (money the institution received and keeps).
A reversed credit (chargeback) and an unmatched credit returned to its sender do not count; the payments
code withdraws their contribution when their status changes. The contribution does not depend on the
status, so withdrawing gives back exactly what booking added.

Locking (PostgreSQL): every call first reads the filing of its institutions (FOR SHARE) and takes a
transaction-level advisory lock per filing group (sector, kind, ownership), in sorted order, before it
touches any statistics row; then it writes each table in a fixed order, each table's rows in key order.
All writers of a group's rows are therefore serialised by that lock: the nationwide rows, shared by every
institution of the group, can never be taken in two orders by two transactions (no deadlock), whatever
order a caller books its credits in. The rebuild locks the filing table first, then the statistics tables.
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Case, Count, F, IntegerField, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce, TruncDate, TruncMonth, TruncYear

from thuphi.monitoring.models import (
    CASHLESS,
    UNMATCHED,
    DailyStat,
    InstitutionHalfMonthStat,
    InstitutionMonthStat,
    InstitutionYearStat,
    MonthlyStat,
    NationDayStat,
    NationMonthStat,
    NationStatFiling,
)

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
#: Credit statuses whose money counts in the indicators.
COUNTED_STATUSES = ("matched", "unmatched")
#: First key of the PostgreSQL advisory locks taken per filing group (the second is a hash of the group).
ADVISORY_NAMESPACE = 40_004


def half_of(day: dt.date) -> int:
    """1 for days 1–15 of a month, 2 from the 16th."""
    return 1 if day.day <= 15 else 2


@dataclass(frozen=True)
class Contribution:
    institution_id: int
    day: dt.date
    fee_kind: str
    method: str
    payments: int
    value: int

    @property
    def month(self) -> dt.date:
        return self.day.replace(day=1)

    @property
    def half(self) -> int:
        return half_of(self.day)

    @property
    def year(self) -> dt.date:
        return self.day.replace(month=1, day=1)


def credit_contribution(credit) -> Contribution:
    """What one credit adds to the statistics.

    - day: the local date (Asia/Ho_Chi_Minh) the money was received (`occurred_at`);
    - fee kind: the kind of the largest line (amount net of discount; then position, id) of the bill of
      the credit's first allocation (lowest id, not itself a reversal); "unmatched" when it has none;
    - method: cash, card, transfer or ewallet as booked; count 1; value the whole amount received.
    """
    from thuphi.billing.models import BillLine
    from thuphi.payments.models import Allocation

    bill_id = (Allocation.objects.filter(credit_id=credit.pk, reverses__isnull=True, amount__gt=0)
               .order_by("pk").values_list("bill_id", flat=True).first())
    fee_kind = UNMATCHED
    if bill_id is not None:
        fee_kind = (BillLine.objects.filter(bill_id=bill_id).annotate(net=F("amount") - F("discount"))
                    .order_by("-net", "position", "pk").values_list("kind", flat=True).first()) or UNMATCHED
    return Contribution(
        institution_id=credit.institution_id,
        day=credit.occurred_at.astimezone(VN_TZ).date(),
        fee_kind=fee_kind,
        method=credit.method,
        payments=1,
        value=int(credit.amount),
    )


def credit_contributions(credits) -> list[Contribution]:
    """`credit_contribution` of many credits in two queries (same rule, same result)."""
    from thuphi.billing.models import BillLine
    from thuphi.payments.models import Allocation

    credits = list(credits)
    first_bill: dict[int, int] = {}
    ids = [c.pk for c in credits]
    for start in range(0, len(ids), 1000):
        for credit_id, bill_id in (Allocation.objects.filter(credit_id__in=ids[start:start + 1000],
                                                             reverses__isnull=True, amount__gt=0)
                                   .order_by("credit_id", "pk").values_list("credit_id", "bill_id")):
            first_bill.setdefault(credit_id, bill_id)
    bills = sorted(set(first_bill.values()))
    kind_of: dict[int, str] = {}
    for start in range(0, len(bills), 1000):
        for bill_id, kind in (BillLine.objects.filter(bill_id__in=bills[start:start + 1000])
                              .annotate(net=F("amount") - F("discount"))
                              .order_by("bill_id", "-net", "position", "pk").values_list("bill_id", "kind")):
            kind_of.setdefault(bill_id, kind)
    out = []
    for c in credits:
        bill_id = first_bill.get(c.pk)
        out.append(Contribution(
            institution_id=c.institution_id, day=c.occurred_at.astimezone(VN_TZ).date(),
            fee_kind=(kind_of.get(bill_id) or UNMATCHED) if bill_id is not None else UNMATCHED,
            method=c.method, payments=1, value=int(c.amount)))
    return out


# --- incremental --------------------------------------------------------------------------------------

def _tables():
    """(model, key columns, value columns) in the order every transaction writes them."""
    detail = ("payments", "value")
    totals = ("payments", "payments_cashless", "value", "value_cashless")
    return (
        (DailyStat, ("institution_id", "day", "fee_kind", "method"), detail),
        (MonthlyStat, ("institution_id", "month", "fee_kind", "method"), detail),
        (InstitutionMonthStat, ("institution_id", "month"), totals),
        (InstitutionHalfMonthStat, ("institution_id", "month", "half"), totals),
        (InstitutionYearStat, ("institution_id", "year"), totals),
        (NationDayStat, ("day", "sector", "kind", "ownership", "fee_kind", "method"), detail),
        (NationMonthStat, ("month", "sector", "kind", "ownership", "fee_kind", "method"), detail),
    )


TABLE_NAMES = ("daily", "monthly", "institution_month", "institution_half", "institution_year", "nation_day",
               "nation_month")


def _rows_of(c: Contribution, sign: int, group: tuple[str, str, str]) -> tuple:
    """What a contribution adds to each table, in `_tables()` order: (key, deltas)."""
    p, v = sign * c.payments, sign * c.value
    pc, vc = (p, v) if c.method in CASHLESS else (0, 0)
    return (((c.institution_id, c.day, c.fee_kind, c.method), (p, v)),
            ((c.institution_id, c.month, c.fee_kind, c.method), (p, v)),
            ((c.institution_id, c.month), (p, pc, v, vc)),
            ((c.institution_id, c.month, c.half), (p, pc, v, vc)),
            ((c.institution_id, c.year), (p, pc, v, vc)),
            ((c.day, *group, c.fee_kind, c.method), (p, v)),
            ((c.month, *group, c.fee_kind, c.method), (p, v)))


def _accumulate(tables: list[dict], c: Contribution, sign: int, group: tuple[str, str, str]) -> None:
    for table, (key, add) in zip(tables, _rows_of(c, sign, group)):
        row = table.get(key)
        if row is None:
            table[key] = list(add)
        else:
            for i, n in enumerate(add):
                row[i] += n


def _filings(institution_ids: set[int]) -> dict[int, tuple[str, str, str]]:
    """The filing (sector, kind, ownership) of each institution, created from the institution on its first
    payment; on PostgreSQL read FOR SHARE (a rebuild, which refiles, waits for this transaction) and
    followed by the advisory lock of each group, taken in sorted order."""
    from thuphi.registry.models import Institution

    ids = sorted(institution_ids)
    table = NationStatFiling._meta.db_table
    pg = connection.vendor == "postgresql"

    def read() -> dict[int, tuple[str, str, str]]:
        if pg:
            with connection.cursor() as cur:
                cur.execute(f"SELECT institution_id, sector, kind, ownership FROM {table} "
                            f"WHERE institution_id = ANY(%s) FOR SHARE", [ids])
                return {r[0]: (r[1], r[2], r[3]) for r in cur.fetchall()}
        return {r[0]: (r[1], r[2], r[3]) for r in NationStatFiling.objects.filter(institution_id__in=ids)
                .values_list("institution_id", "sector", "kind", "ownership")}

    found = read()
    missing = [i for i in ids if i not in found]
    if missing:
        rows = [NationStatFiling(institution_id=i, sector=s, kind=k, ownership=o) for i, s, k, o in
                Institution.objects.filter(pk__in=missing).values_list("pk", "sector", "kind", "ownership")]
        NationStatFiling.objects.bulk_create(rows, ignore_conflicts=True)
        found = read()
    if pg:
        with connection.cursor() as cur:
            for group in sorted(set(found.values())):
                cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [ADVISORY_NAMESPACE, "|".join(group)])
    return found


def _upsert(model, keys: tuple[str, ...], columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Add `rows` (key values then deltas, keys unique and sorted) to the table in one statement:
    INSERT … ON CONFLICT DO UPDATE SET x = x + excluded.x (PostgreSQL waits for a concurrent inserter of the
    same key to commit, then adds; SQLite serialises writers)."""
    qn = connection.ops.quote_name
    table = model._meta.db_table
    names = ", ".join(qn(c) for c in (*keys, *columns))
    one = "(" + ", ".join(["%s"] * (len(keys) + len(columns))) + ")"
    sets = ", ".join(f"{qn(c)} = s.{qn(c)} + excluded.{qn(c)}" for c in columns)
    with connection.cursor() as cur:
        for start in range(0, len(rows), 500):
            chunk = rows[start:start + 500]
            cur.execute(f"INSERT INTO {qn(table)} AS s ({names}) VALUES {', '.join([one] * len(chunk))} "
                        f"ON CONFLICT ({', '.join(qn(k) for k in keys)}) DO UPDATE SET {sets}",
                        [v for row in chunk for v in row])


def _apply_many(contributions: list[Contribution], sign: int) -> None:
    """Add (sign +1) or withdraw (-1) contributions: per table, the deltas summed by key and written in key
    order; on withdrawal, rows left at zero are deleted."""
    if not contributions:
        return
    filing = _filings({c.institution_id for c in contributions})
    deltas: list[dict[tuple, list[int]]] = [{} for _t in _tables()]
    for c in contributions:
        _accumulate(deltas, c, sign, filing[c.institution_id])
    for (model, keys, columns), table in zip(_tables(), deltas):
        rows = [(*k, *d) for k, d in sorted(table.items()) if any(d)]
        if not rows:
            continue
        _upsert(model, keys, columns, rows)
        if sign < 0:
            gone = Q()
            for k, _d in sorted(table.items()):
                gone |= Q(**dict(zip(keys, k)))
            model.objects.filter(gone, **dict.fromkeys(columns, 0)).delete()


def _apply(contribution: Contribution, sign: int) -> None:
    _apply_many([contribution], sign)


def stats_on_credit_booked(*, credit) -> None:
    """Call inside the transaction that books `credit` (status matched or unmatched, allocations written)."""
    _apply(credit_contribution(credit), +1)


def stats_on_credit_reversed(*, credit) -> None:
    """Call inside the transaction that withdraws `credit` from the figures (reversal, return to sender,
    or just before re-booking an unmatched credit as matched), while its allocations still stand."""
    _apply(credit_contribution(credit), -1)


def stats_apply_contributions(*, contributions, sign: int = +1) -> None:
    """Add (+1) or withdraw (-1) contributions computed by the caller, inside its transaction: for a batch
    whose contributions the caller already knows (statement imports), several credits of one key may be
    summed into one Contribution (payments=n, value=their total). Each must follow `credit_contribution`."""
    if sign not in (1, -1):
        raise ValueError("sign must be +1 or -1")
    _apply_many(list(contributions), sign)


def stats_on_credits_booked(*, credits) -> None:
    """`stats_on_credit_booked` for a batch booked in one transaction: one statement per table, rows in key
    order (a batch of statement lines should call this once rather than the single hook per credit)."""
    _apply_many(credit_contributions(credits), +1)


def stats_on_credits_reversed(*, credits) -> None:
    """`stats_on_credit_reversed` for a batch withdrawn in one transaction."""
    _apply_many(credit_contributions(credits), -1)


# --- rebuild -----------------------------------------------------------------------------------------


@dataclass
class RebuildReport:
    method: str
    daily_rows: int
    monthly_rows: int
    payments: int
    value: int
    seconds: float


def _contributions_queryset():
    """One row per counted credit with its contribution: `credit_contribution` written as SQL."""
    from thuphi.billing.models import BillLine
    from thuphi.payments.models import Allocation, Credit

    first_bill = (Allocation.objects.filter(credit_id=OuterRef(OuterRef("pk")), reverses__isnull=True, amount__gt=0)
                  .order_by("pk").values("bill_id")[:1])
    largest_kind = (BillLine.objects.filter(bill_id=Subquery(first_bill))
                    .annotate(net=F("amount") - F("discount")).order_by("-net", "position", "pk").values("kind")[:1])
    return (Credit.objects.filter(status__in=COUNTED_STATUSES)
            .annotate(s_inst=F("institution_id"), s_day=TruncDate("occurred_at", tzinfo=VN_TZ),
                      s_kind=Coalesce(Subquery(largest_kind), Value(UNMATCHED)), s_method=F("method"),
                      s_amount=F("amount"))
            .values("s_inst", "s_day", "s_kind", "s_method", "s_amount"))


def _insert_select(cur, model, columns: list[str], queryset, aliases: list[str]) -> None:
    """INSERT INTO model (columns) SELECT aliases FROM (<the queryset's SQL>): the ORM writes the query."""
    qn = connection.ops.quote_name
    inner, params = queryset.order_by().query.sql_with_params()
    cur.execute(f"INSERT INTO {qn(model._meta.db_table)} ({', '.join(qn(c) for c in columns)}) "
                f"SELECT {', '.join(qn(a) for a in aliases)} FROM ({inner}) t", params)


ROLLUPS = ("monthly", "institution_half", "institution_month", "institution_year", "filing", "nation_day",
           "nation_month")


def derive_rollups(models: dict, cur, only: tuple[str, ...] = ROLLUPS) -> None:
    """The tables derived from the daily one (`only` those named), with INSERT … SELECT … GROUP BY written
    by the ORM (any database). `models` maps the names of ROLLUPS and "daily", "institution" to model
    classes: the current ones, or a migration's historical ones. The filing is every institution's current
    sector, kind and ownership; the nation tables are filed under it."""
    m = models
    cashless = Q(method__in=CASHLESS)
    split = {"s_p": Sum("payments"), "s_pc": Coalesce(Sum("payments", filter=cashless), 0),
             "s_v": Sum("value"), "s_vc": Coalesce(Sum("value", filter=cashless), 0)}
    totals = ["payments", "payments_cashless", "value", "value_cashless"]
    if "monthly" in only:
        _insert_select(cur, m["monthly"], ["institution_id", "month", "fee_kind", "method", "payments", "value"],
                       m["daily"].objects.annotate(s_month=TruncMonth("day")).values(
                           "institution_id", "s_month", "fee_kind", "method").annotate(
                           s_p=Sum("payments"), s_v=Sum("value")),
                       ["institution_id", "s_month", "fee_kind", "method", "s_p", "s_v"])
    if "institution_half" in only:
        half = Case(When(day__day__lte=15, then=Value(1)), default=Value(2), output_field=IntegerField())
        _insert_select(cur, m["institution_half"], ["institution_id", "month", "half", *totals],
                       m["daily"].objects.annotate(s_month=TruncMonth("day"), s_half=half).values(
                           "institution_id", "s_month", "s_half").annotate(**split),
                       ["institution_id", "s_month", "s_half", "s_p", "s_pc", "s_v", "s_vc"])
    if "institution_month" in only:
        _insert_select(cur, m["institution_month"], ["institution_id", "month", *totals],
                       m["institution_half"].objects.values("institution_id", "month").annotate(
                           s_p=Sum("payments"), s_pc=Sum("payments_cashless"), s_v=Sum("value"),
                           s_vc=Sum("value_cashless")),
                       ["institution_id", "month", "s_p", "s_pc", "s_v", "s_vc"])
    if "institution_year" in only:
        _insert_select(cur, m["institution_year"], ["institution_id", "year", *totals],
                       m["institution_month"].objects.annotate(s_year=TruncYear("month")).values(
                           "institution_id", "s_year").annotate(
                           s_p=Sum("payments"), s_pc=Sum("payments_cashless"), s_v=Sum("value"),
                           s_vc=Sum("value_cashless")),
                       ["institution_id", "s_year", "s_p", "s_pc", "s_v", "s_vc"])
    if "filing" in only:
        m["filing"].objects.all().delete()
        _insert_select(cur, m["filing"], ["institution_id", "sector", "kind", "ownership"],
                       m["institution"].objects.values("id", "sector", "kind", "ownership"),
                       ["id", "sector", "kind", "ownership"])
    group = ["sector", "kind", "ownership", "fee_kind", "method", "payments", "value"]
    if "nation_day" in only:
        # Filed under the institution's current sector, kind and ownership: the filing just written.
        assert "filing" in only, "the nation tables are filed under the filing derived with them"
        _insert_select(cur, m["nation_day"], ["day", *group],
                       m["daily"].objects.annotate(
                           s_sector=F("institution__sector"), s_kind=F("institution__kind"),
                           s_own=F("institution__ownership")).values(
                           "day", "s_sector", "s_kind", "s_own", "fee_kind", "method").annotate(
                           s_p=Sum("payments"), s_v=Sum("value")),
                       ["day", "s_sector", "s_kind", "s_own", "fee_kind", "method", "s_p", "s_v"])
    if "nation_month" in only:
        _insert_select(cur, m["nation_month"], ["month", *group],
                       m["nation_day"].objects.annotate(s_month=TruncMonth("day")).values(
                           "s_month", "sector", "kind", "ownership", "fee_kind", "method").annotate(
                           s_p=Sum("payments"), s_v=Sum("value")),
                       ["s_month", "sector", "kind", "ownership", "fee_kind", "method", "s_p", "s_v"])


def current_models() -> dict:
    from thuphi.registry.models import Institution

    return {"daily": DailyStat, "monthly": MonthlyStat, "institution_month": InstitutionMonthStat,
            "institution_half": InstitutionHalfMonthStat, "institution_year": InstitutionYearStat,
            "nation_day": NationDayStat,
            "nation_month": NationMonthStat, "filing": NationStatFiling, "institution": Institution}


def _rebuild_portable() -> None:
    """Any database: empty, then one INSERT … SELECT … GROUP BY per table (the ORM writes the SQL)."""
    for model in STAT_MODELS:
        model.objects.all().delete()
    qn = connection.ops.quote_name
    inner, params = _contributions_queryset().query.sql_with_params()
    with connection.cursor() as cur:
        cur.execute(f"INSERT INTO {qn(DailyStat._meta.db_table)} (institution_id, day, fee_kind, method, payments, "
                    f"value) SELECT s_inst, s_day, s_kind, s_method, COUNT(*), SUM(s_amount) FROM ({inner}) t "
                    f"GROUP BY s_inst, s_day, s_kind, s_method", params)
        derive_rollups(current_models(), cur)


#: Session settings for the PostgreSQL rebuild (this transaction only): sorts and hashes of millions
#: of rows in memory, and parallel workers for the CREATE TABLE … AS (an INSERT … SELECT never runs
#: in parallel on PostgreSQL).
PG_REBUILD_SETTINGS = {"work_mem": "1GB", "maintenance_work_mem": "1GB", "parallel_setup_cost": "0",
                       "parallel_tuple_cost": "0.001"}
_STAGE = "monitoring_rebuild_"


def _month_of(col: str) -> str:
    """The first day of the month of a date column, in plain date arithmetic (no time zone involved)."""
    return f"({col} - (EXTRACT(DAY FROM {col})::int - 1))"


def _rebuild_postgres() -> None:
    """The same rule as `credit_contribution`, built into new tables that replace the old ones.

    Readers keep reading the old tables until the swap at the very end; writers (payments) wait on the
    EXCLUSIVE locks and then add themselves to the new figures. Steps: the largest line of every bill and
    the first allocation of every credit (one sort each), then the daily sums (parallel hash joins, text
    keys compared bytewise), the monthly sums from the daily ones (stored in key order: a province's
    answer reads each institution's rows from a few pages), the half-month and nationwide sums, keys and
    indexes, and the swap. The filing of every institution is its current sector, kind and ownership.
    """
    from django.conf import settings

    from thuphi.billing.models import BillLine
    from thuphi.payments.models import Allocation, Credit
    from thuphi.registry.models import Institution

    t = {name: model._meta.db_table for name, model in current_models().items()}
    options = {**PG_REBUILD_SETTINGS, **getattr(settings, "MONITORING_REBUILD_PG_SETTINGS", {})}
    statuses = ", ".join(f"'{s}'" for s in COUNTED_STATUSES)
    cashless = ", ".join(f"'{m}'" for m in CASHLESS)
    stages = ("bill_kind", "credit_bill", "daily", "monthly", "half", "instmonth", "instyear", "groups", "nday",
              "nmonth")

    def split(p: str = "payments", v: str = "value") -> str:
        return (f"SUM({p})::bigint AS payments, "
                f"COALESCE(SUM({p}) FILTER (WHERE method IN ({cashless})), 0)::bigint AS payments_cashless, "
                f"SUM({v})::bigint AS value, "
                f"COALESCE(SUM({v}) FILTER (WHERE method IN ({cashless})), 0)::bigint AS value_cashless")

    with connection.cursor() as cur:
        _lock_tables(cur)
        for name, value in options.items():
            cur.execute("SELECT set_config(%s, %s, true)", [name, str(value)])
        cur.execute("DROP TABLE IF EXISTS " + ", ".join(_STAGE + s for s in stages))
        cur.execute(f"""CREATE UNLOGGED TABLE {_STAGE}bill_kind AS
            SELECT DISTINCT ON (bill_id) bill_id, kind FROM {BillLine._meta.db_table}
            ORDER BY bill_id, amount - discount DESC, position, id""")
        cur.execute(f"""CREATE UNLOGGED TABLE {_STAGE}credit_bill AS
            SELECT DISTINCT ON (credit_id) credit_id, bill_id FROM {Allocation._meta.db_table}
            WHERE credit_id IS NOT NULL AND reverses_id IS NULL AND amount > 0 ORDER BY credit_id, id""")
        cur.execute(f"ANALYZE {_STAGE}bill_kind")
        cur.execute(f"ANALYZE {_STAGE}credit_bill")
        # Grouped on bytewise ("C") text: sorting ten million keys is a fifth faster than with the
        # database's locale; the columns keep the default collation of the tables Django creates.
        cur.execute(f"""CREATE TABLE {_STAGE}daily AS
            SELECT institution_id, day, fee_kind::varchar(32) COLLATE "default" AS fee_kind,
                   method::varchar(16) COLLATE "default" AS method, payments, value
            FROM (SELECT c.institution_id::bigint AS institution_id,
                         (c.occurred_at AT TIME ZONE '{VN_TZ.key}')::date AS day,
                         COALESCE(k.kind, '{UNMATCHED}') COLLATE "C" AS fee_kind, c.method COLLATE "C" AS method,
                         COUNT(*)::bigint AS payments, SUM(c.amount)::bigint AS value
                  FROM {Credit._meta.db_table} c
                  LEFT JOIN {_STAGE}credit_bill a ON a.credit_id = c.id
                  LEFT JOIN {_STAGE}bill_kind k ON k.bill_id = a.bill_id
                  WHERE c.status IN ({statuses})
                  GROUP BY 1, 2, 3, 4) g""")
        cur.execute(f"DROP TABLE {_STAGE}bill_kind, {_STAGE}credit_bill")
        cur.execute(f"ANALYZE {_STAGE}daily")
        cur.execute(f"""CREATE TABLE {_STAGE}monthly AS
            SELECT institution_id, month, fee_kind::varchar(32) COLLATE "default" AS fee_kind,
                   method::varchar(16) COLLATE "default" AS method, payments, value
            FROM (SELECT institution_id, {_month_of('day')} AS month, fee_kind COLLATE "C" AS fee_kind,
                         method COLLATE "C" AS method, SUM(payments)::bigint AS payments,
                         SUM(value)::bigint AS value
                  FROM {_STAGE}daily GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4) g""")
        cur.execute(f"""CREATE TABLE {_STAGE}half AS
            SELECT institution_id, {_month_of('day')} AS month,
                   (CASE WHEN EXTRACT(DAY FROM day) <= 15 THEN 1 ELSE 2 END)::smallint AS half, {split()}
            FROM {_STAGE}daily GROUP BY 1, 2, 3""")
        cur.execute(f"""CREATE TABLE {_STAGE}instmonth AS
            SELECT institution_id, month, SUM(payments)::bigint AS payments,
                   SUM(payments_cashless)::bigint AS payments_cashless, SUM(value)::bigint AS value,
                   SUM(value_cashless)::bigint AS value_cashless
            FROM {_STAGE}half GROUP BY 1, 2""")
        cur.execute(f"""CREATE TABLE {_STAGE}instyear AS
            SELECT institution_id, (month - (EXTRACT(DOY FROM month)::int - 1)) AS year,
                   SUM(payments)::bigint AS payments, SUM(payments_cashless)::bigint AS payments_cashless,
                   SUM(value)::bigint AS value, SUM(value_cashless)::bigint AS value_cashless
            FROM {_STAGE}instmonth GROUP BY 1, 2""")
        cur.execute(f"DELETE FROM {t['filing']}")
        cur.execute(f"INSERT INTO {t['filing']} (institution_id, sector, kind, ownership) "
                    f"SELECT id, sector, kind, ownership FROM {Institution._meta.db_table}")
        # Grouped on a small integer per filing group and bytewise text (a hash of 190,000 groups), the
        # group's names joined back afterwards: three times faster than grouping on six text columns.
        cur.execute(f"""CREATE UNLOGGED TABLE {_STAGE}groups AS
            SELECT institution_id, dense_rank() OVER (ORDER BY sector, kind, ownership)::int AS g,
                   sector, kind, ownership
            FROM {t['filing']}""")
        cur.execute(f"ANALYZE {_STAGE}groups")
        cur.execute(f"""CREATE TABLE {_STAGE}nday AS
            SELECT t.day, x.sector, x.kind, x.ownership, t.fee_kind::varchar(32) COLLATE "default" AS fee_kind,
                   t.method::varchar(16) COLLATE "default" AS method, t.payments, t.value
            FROM (SELECT d.day, x.g, d.fee_kind COLLATE "C" AS fee_kind, d.method COLLATE "C" AS method,
                         SUM(d.payments)::bigint AS payments, SUM(d.value)::bigint AS value
                  FROM {_STAGE}daily d JOIN {_STAGE}groups x ON x.institution_id = d.institution_id
                  GROUP BY 1, 2, 3, 4) t
            JOIN (SELECT DISTINCT g, sector, kind, ownership FROM {_STAGE}groups) x ON x.g = t.g""")
        cur.execute(f"DROP TABLE {_STAGE}groups")
        cur.execute(f"""CREATE TABLE {_STAGE}nmonth AS
            SELECT {_month_of('day')} AS month, sector, kind, ownership, fee_kind, method,
                   SUM(payments)::bigint AS payments, SUM(value)::bigint AS value
            FROM {_STAGE}nday GROUP BY 1, 2, 3, 4, 5, 6""")
        # (stage, table, primary key, secondary index columns, its name)
        swaps = [("daily", t["daily"], "institution_id, day, fee_kind, method", "day", "daily_stat_day"),
                 ("monthly", t["monthly"], "institution_id, month, fee_kind, method", "month", "monthly_stat_month"),
                 ("instmonth", t["institution_month"], "institution_id, month", "month", "inst_month_stat_month"),
                 ("half", t["institution_half"], "institution_id, month, half", "month, half",
                  "inst_half_stat_month"),
                 ("instyear", t["institution_year"], "institution_id, year", "year", "inst_year_stat_year"),
                 ("nday", t["nation_day"], "day, sector, kind, ownership, fee_kind, method", None, None),
                 ("nmonth", t["nation_month"], "month, sector, kind, ownership, fee_kind, method", None, None)]
        for stage, _table, key, index_columns, _index in swaps:
            not_null = ", ".join(f"ALTER COLUMN {c.strip()} SET NOT NULL" for c in
                                 (*key.split(","), "payments", "value"))
            cur.execute(f"ALTER TABLE {_STAGE}{stage} ADD PRIMARY KEY ({key}), {not_null}")
            if index_columns:
                cur.execute(f"CREATE INDEX {_STAGE}{stage}_idx ON {_STAGE}{stage} ({index_columns})")
        for stage in ("half", "instmonth", "instyear"):
            cur.execute(f"ALTER TABLE {_STAGE}{stage} ALTER COLUMN payments_cashless SET NOT NULL, "
                        f"ALTER COLUMN value_cashless SET NOT NULL")
        cur.execute("DROP TABLE " + ", ".join(table for _s, table, *_r in swaps))
        for stage, table, _key, index_columns, index in swaps:
            cur.execute(f"ALTER TABLE {_STAGE}{stage} RENAME TO {table}")
            cur.execute(f"ALTER TABLE {table} RENAME CONSTRAINT {_STAGE}{stage}_pkey TO {table}_pkey")
            if index_columns:
                cur.execute(f"ALTER INDEX {_STAGE}{stage}_idx RENAME TO {index}")


STAT_MODELS = (DailyStat, MonthlyStat, InstitutionMonthStat, InstitutionHalfMonthStat, InstitutionYearStat,
               NationDayStat, NationMonthStat)


def _lock_tables(cur=None) -> None:
    """PostgreSQL: the filing table first (hooks read it before any statistics row), then the statistics."""
    if connection.vendor != "postgresql":
        return
    tables = ", ".join(m._meta.db_table for m in (NationStatFiling, *STAT_MODELS))
    if cur is not None:
        cur.execute(f"LOCK TABLE {tables} IN EXCLUSIVE MODE")
        return
    with connection.cursor() as c:
        c.execute(f"LOCK TABLE {tables} IN EXCLUSIVE MODE")


def stats_rebuild(*, method: str = "sql") -> RebuildReport:
    """Recompute every statistics table from the credits and their allocations, atomically."""
    if method not in ("sql", "python"):
        raise ValueError("method must be 'sql' or 'python'")
    started = time.perf_counter()
    with transaction.atomic():
        if method == "python":
            _lock_tables()
            for model in STAT_MODELS:
                model.objects.all().delete()
            _rebuild_python()
        elif connection.vendor == "postgresql":
            _rebuild_postgres()
        else:
            _rebuild_portable()
        totals = DailyStat.objects.aggregate(p=Coalesce(Sum("payments"), 0), v=Coalesce(Sum("value"), 0),
                                             n=Count("*"))
        monthly_rows = MonthlyStat.objects.count()
    return RebuildReport(method=method, daily_rows=totals["n"], monthly_rows=monthly_rows, payments=totals["p"],
                         value=totals["v"], seconds=round(time.perf_counter() - started, 3))


def _rebuild_python() -> None:
    from thuphi.payments.models import Credit
    from thuphi.registry.models import Institution

    NationStatFiling.objects.all().delete()
    NationStatFiling.objects.bulk_create(
        [NationStatFiling(institution_id=i, sector=s, kind=k, ownership=o) for i, s, k, o in
         Institution.objects.values_list("pk", "sector", "kind", "ownership")], batch_size=2000)
    group = {f.institution_id: (f.sector, f.kind, f.ownership) for f in NationStatFiling.objects.all()}
    tables: list[dict[tuple, list[int]]] = [{} for _t in _tables()]
    for credit in Credit.objects.filter(status__in=COUNTED_STATUSES).only(
            "pk", "institution_id", "occurred_at", "method", "amount").iterator(chunk_size=2000):
        c = credit_contribution(credit)
        _accumulate(tables, c, +1, group[c.institution_id])
    for (model, keys, columns), table in zip(_tables(), tables):
        model.objects.bulk_create([model(**dict(zip((*keys, *columns), (*k, *d)))) for k, d in table.items()],
                                  batch_size=2000)


def stats_snapshot() -> dict[str, dict[tuple, tuple]]:
    """Every table as {key: figures}, rows that net to zero left out: for equality checks."""
    out: dict[str, dict[tuple, tuple]] = {}
    for name, (model, keys, columns) in zip(TABLE_NAMES, _tables()):
        out[name] = {tuple(r[:len(keys)]): tuple(r[len(keys):])
                     for r in model.objects.values_list(*keys, *columns) if any(r[len(keys):])}
    return out


def institutions_refiled() -> list[tuple[int, tuple[str, str, str], tuple[str, str, str]]]:
    """Institutions whose sector, kind or ownership changed since their figures were filed in the nation
    tables: (id, filed, current). National answers move their figures; a rebuild refiles them."""
    changed = (~Q(sector=F("institution__sector")) | ~Q(kind=F("institution__kind"))
               | ~Q(ownership=F("institution__ownership")))
    rows = NationStatFiling.objects.filter(changed).order_by("institution_id").values_list(
        "institution_id", "sector", "kind", "ownership", "institution__sector", "institution__kind",
        "institution__ownership")
    return [(r[0], (r[1], r[2], r[3]), (r[4], r[5], r[6])) for r in rows]


def stats_check() -> list[str]:
    """Differences between the tables and a fresh computation, without changing anything."""
    current = stats_snapshot()
    fresh: dict = {}

    class _Undo(Exception):
        pass

    try:
        with transaction.atomic():
            stats_rebuild(method="sql")
            fresh.update(stats_snapshot())
            raise _Undo
    except _Undo:
        pass
    problems = [f"institution {i} filed as {filed}, now {now}: its nation rows move at the next rebuild"
                for i, filed, now in institutions_refiled()]
    for name in current:
        for key in sorted(set(current[name]) | set(fresh[name]), key=str):
            if current[name].get(key) != fresh[name].get(key):
                problems.append(f"{name} {key}: kept {current[name].get(key)} ≠ recomputed {fresh[name].get(key)}")
    return problems
