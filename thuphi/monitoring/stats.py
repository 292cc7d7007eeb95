"""Statistics from the ledger: moved incrementally as credits are booked, recomputable from scratch.

The rule for what a credit contributes is written once, in `credit_contribution`, and both paths use it:
- incremental: payments call `stats_on_credit_booked` / `stats_on_credit_reversed` inside the transaction
  that books or reverses the credit; each adds or withdraws exactly `credit_contribution(credit)`;
- rebuild: `stats_rebuild()` replaces the tables with one INSERT … SELECT … GROUP BY over the credits
  (`_contributions_sql` is the same rule in SQL), or with `credit_contribution` itself when
  `method="python"` (slow; for checks). Tests prove the three agree.

What counts: credits whose status is matched or unmatched (money the institution received and keeps).
A reversed credit (chargeback) and an unmatched credit returned to its sender do not count; the payments
code withdraws their contribution when their status changes. The contribution does not depend on the
status, so withdrawing gives back exactly what booking added.
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Count, F, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDate, TruncMonth

from thuphi.monitoring.models import CASHLESS, UNMATCHED, DailyStat, InstitutionMonthStat, MonthlyStat

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
#: Credit statuses whose money counts in the indicators.
COUNTED_STATUSES = ("matched", "unmatched")


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


def _move(model, keys: dict, deltas: dict[str, int]) -> None:
    """Add to one statistics row atomically: UPDATE … SET x = x + n, creating the row on first use.

    get_or_create runs its INSERT in a savepoint and re-reads on a primary-key violation, so two
    transactions creating the same row concurrently both end up incrementing it (PostgreSQL: the
    second waits for the first to commit; SQLite: writers are serialised anyway).
    """
    update = {name: F(name) + n for name, n in deltas.items()}
    if model.objects.filter(**keys).update(**update):
        return
    _obj, created = model.objects.get_or_create(**keys, defaults=deltas)
    if not created:
        model.objects.filter(**keys).update(**update)


def _apply(contribution: Contribution, sign: int) -> None:
    c = contribution
    base = {"institution_id": c.institution_id, "fee_kind": c.fee_kind, "method": c.method}
    delta = {"payments": sign * c.payments, "value": sign * c.value}
    cashless = c.method in CASHLESS
    totals = {**delta, "payments_cashless": delta["payments"] if cashless else 0,
              "value_cashless": delta["value"] if cashless else 0}
    # Fixed order (day, month, institution-month) in every transaction: no lock cycles between payments.
    for model, keys, deltas in ((DailyStat, {**base, "day": c.day}, delta),
                                (MonthlyStat, {**base, "month": c.month}, delta),
                                (InstitutionMonthStat, {"institution_id": c.institution_id, "month": c.month},
                                 totals)):
        _move(model, keys, deltas)
        if sign < 0:
            model.objects.filter(**keys, **dict.fromkeys(deltas, 0)).delete()


def stats_on_credit_booked(*, credit) -> None:
    """Call inside the transaction that books `credit` (status matched or unmatched, allocations written)."""
    _apply(credit_contribution(credit), +1)


def stats_on_credit_reversed(*, credit) -> None:
    """Call inside the transaction that withdraws `credit` from the figures (reversal, return to sender,
    or just before re-booking an unmatched credit as matched), while its allocations still stand."""
    _apply(credit_contribution(credit), -1)


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


def _daily_insert_sql() -> tuple[str, tuple]:
    qn = connection.ops.quote_name
    inner, params = _contributions_queryset().query.sql_with_params()
    sql = (f"INSERT INTO {qn(DailyStat._meta.db_table)} (institution_id, day, fee_kind, method, payments, value) "
           f"SELECT s_inst, s_day, s_kind, s_method, COUNT(*), SUM(s_amount) FROM ({inner}) t "
           f"GROUP BY s_inst, s_day, s_kind, s_method")
    return sql, params


def _monthly_insert_sql() -> tuple[str, tuple]:
    qn = connection.ops.quote_name
    inner, params = (DailyStat.objects.annotate(s_month=TruncMonth("day"))
                     .values("institution_id", "s_month", "fee_kind", "method")
                     .annotate(s_payments=Sum("payments"), s_value=Sum("value"))
                     .order_by().query.sql_with_params())
    sql = (f"INSERT INTO {qn(MonthlyStat._meta.db_table)} (institution_id, month, fee_kind, method, payments, value) "
           f"SELECT institution_id, s_month, fee_kind, method, s_payments, s_value FROM ({inner}) t")
    return sql, params


def _institution_month_insert_sql() -> tuple[str, tuple]:
    from django.db.models import Q

    qn = connection.ops.quote_name
    cashless = Q(method__in=CASHLESS)
    inner, params = (MonthlyStat.objects.values("institution_id", "month")
                     .annotate(s_p=Sum("payments"), s_pc=Coalesce(Sum("payments", filter=cashless), 0),
                               s_v=Sum("value"), s_vc=Coalesce(Sum("value", filter=cashless), 0))
                     .order_by().query.sql_with_params())
    sql = (f"INSERT INTO {qn(InstitutionMonthStat._meta.db_table)} "
           f"(institution_id, month, payments, payments_cashless, value, value_cashless) "
           f"SELECT institution_id, month, s_p, s_pc, s_v, s_vc FROM ({inner}) t")
    return sql, params


def _rebuild_portable() -> None:
    """Any database: empty, one INSERT … SELECT … GROUP BY per table (the ORM writes the SQL)."""
    for model in STAT_MODELS:
        model.objects.all().delete()
    with connection.cursor() as cur:
        cur.execute(*_daily_insert_sql())
        cur.execute(*_monthly_insert_sql())
        cur.execute(*_institution_month_insert_sql())


#: Session settings for the PostgreSQL rebuild (this transaction only): sorts and hashes of millions
#: of rows in memory, and parallel workers for the CREATE TABLE … AS (an INSERT … SELECT never runs
#: in parallel on PostgreSQL).
PG_REBUILD_SETTINGS = {"work_mem": "1GB", "maintenance_work_mem": "1GB", "parallel_setup_cost": "0",
                       "parallel_tuple_cost": "0.001"}
_STAGE = "monitoring_rebuild_"


def _rebuild_postgres() -> None:
    """The same rule as `credit_contribution`, built into new tables that replace the old ones.

    Readers keep reading the old tables until the swap at the very end; writers (payments) wait on the
    EXCLUSIVE lock and then add themselves to the new figures. Steps: the largest line of every bill and
    the first allocation of every credit (one sort each), then the daily sums (parallel hash joins), the
    primary key and the day index, the monthly sums from the daily ones, and the swap.
    """
    from django.conf import settings

    from thuphi.billing.models import BillLine
    from thuphi.payments.models import Allocation, Credit

    daily, monthly = DailyStat._meta.db_table, MonthlyStat._meta.db_table
    instmonth = InstitutionMonthStat._meta.db_table
    options = {**PG_REBUILD_SETTINGS, **getattr(settings, "MONITORING_REBUILD_PG_SETTINGS", {})}
    statuses = ", ".join(f"'{s}'" for s in COUNTED_STATUSES)
    with connection.cursor() as cur:
        cur.execute(f"LOCK TABLE {daily}, {monthly}, {instmonth} IN EXCLUSIVE MODE")
        for name, value in options.items():
            cur.execute("SELECT set_config(%s, %s, true)", [name, str(value)])
        cur.execute(f"DROP TABLE IF EXISTS {_STAGE}bill_kind, {_STAGE}credit_bill, {_STAGE}daily, {_STAGE}monthly, "
                    f"{_STAGE}instmonth")
        cur.execute(f"""CREATE UNLOGGED TABLE {_STAGE}bill_kind AS
            SELECT DISTINCT ON (bill_id) bill_id, kind FROM {BillLine._meta.db_table}
            ORDER BY bill_id, amount - discount DESC, position, id""")
        cur.execute(f"""CREATE UNLOGGED TABLE {_STAGE}credit_bill AS
            SELECT DISTINCT ON (credit_id) credit_id, bill_id FROM {Allocation._meta.db_table}
            WHERE credit_id IS NOT NULL AND reverses_id IS NULL AND amount > 0 ORDER BY credit_id, id""")
        cur.execute(f"ANALYZE {_STAGE}bill_kind")
        cur.execute(f"ANALYZE {_STAGE}credit_bill")
        cur.execute(f"""CREATE TABLE {_STAGE}daily AS
            SELECT c.institution_id::bigint AS institution_id,
                   (c.occurred_at AT TIME ZONE '{VN_TZ.key}')::date AS day,
                   COALESCE(k.kind, '{UNMATCHED}')::varchar(32) AS fee_kind, c.method::varchar(16) AS method,
                   COUNT(*)::bigint AS payments, SUM(c.amount)::bigint AS value
            FROM {Credit._meta.db_table} c
            LEFT JOIN {_STAGE}credit_bill a ON a.credit_id = c.id
            LEFT JOIN {_STAGE}bill_kind k ON k.bill_id = a.bill_id
            WHERE c.status IN ({statuses})
            GROUP BY 1, 2, 3, 4""")
        cur.execute(f"""CREATE TABLE {_STAGE}monthly AS
            SELECT institution_id, date_trunc('month', day)::date AS month, fee_kind, method,
                   SUM(payments)::bigint AS payments, SUM(value)::bigint AS value
            FROM {_STAGE}daily GROUP BY 1, 2, 3, 4""")
        cashless = ", ".join(f"'{m}'" for m in CASHLESS)
        cur.execute(f"""CREATE TABLE {_STAGE}instmonth AS
            SELECT institution_id, month, SUM(payments)::bigint AS payments,
                   COALESCE(SUM(payments) FILTER (WHERE method IN ({cashless})), 0)::bigint AS payments_cashless,
                   SUM(value)::bigint AS value,
                   COALESCE(SUM(value) FILTER (WHERE method IN ({cashless})), 0)::bigint AS value_cashless
            FROM {_STAGE}monthly GROUP BY 1, 2""")
        swaps = [("daily", daily, "institution_id, day, fee_kind, method", "day", "daily_stat_day"),
                 ("monthly", monthly, "institution_id, month, fee_kind, method", "month", "monthly_stat_month"),
                 ("instmonth", instmonth, "institution_id, month", "month", "inst_month_stat_month")]
        for stage, _table, key, period, _index in swaps:
            cur.execute(f"ALTER TABLE {_STAGE}{stage} ADD PRIMARY KEY ({key}), "
                        f"ALTER COLUMN payments SET NOT NULL, ALTER COLUMN value SET NOT NULL")
            cur.execute(f"CREATE INDEX {_STAGE}{stage}_{period} ON {_STAGE}{stage} ({period})")
        cur.execute(f"ALTER TABLE {_STAGE}instmonth ALTER COLUMN payments_cashless SET NOT NULL, "
                    f"ALTER COLUMN value_cashless SET NOT NULL")
        cur.execute(f"DROP TABLE {_STAGE}bill_kind, {_STAGE}credit_bill")
        cur.execute(f"DROP TABLE {daily}, {monthly}, {instmonth}")
        for stage, table, _key, period, index in swaps:
            cur.execute(f"ALTER TABLE {_STAGE}{stage} RENAME TO {table}")
            cur.execute(f"ALTER TABLE {table} RENAME CONSTRAINT {_STAGE}{stage}_pkey TO {table}_pkey")
            cur.execute(f"ALTER INDEX {_STAGE}{stage}_{period} RENAME TO {index}")


STAT_MODELS = (DailyStat, MonthlyStat, InstitutionMonthStat)


def _lock_tables() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            tables = ", ".join(m._meta.db_table for m in STAT_MODELS)
            cur.execute(f"LOCK TABLE {tables} IN EXCLUSIVE MODE")


def stats_rebuild(*, method: str = "sql") -> RebuildReport:
    """Recompute DailyStat and MonthlyStat from the credits and their allocations, atomically."""
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

    daily: dict[tuple, list[int]] = {}
    monthly: dict[tuple, list[int]] = {}
    for credit in Credit.objects.filter(status__in=COUNTED_STATUSES).only(
            "pk", "institution_id", "occurred_at", "method", "amount").iterator(chunk_size=2000):
        c = credit_contribution(credit)
        for table, when in ((daily, c.day), (monthly, c.month)):
            row = table.setdefault((c.institution_id, when, c.fee_kind, c.method), [0, 0])
            row[0] += c.payments
            row[1] += c.value
    DailyStat.objects.bulk_create(
        [DailyStat(institution_id=i, day=d, fee_kind=k, method=m, payments=p, value=v)
         for (i, d, k, m), (p, v) in daily.items()], batch_size=2000)
    MonthlyStat.objects.bulk_create(
        [MonthlyStat(institution_id=i, month=d, fee_kind=k, method=m, payments=p, value=v)
         for (i, d, k, m), (p, v) in monthly.items()], batch_size=2000)
    totals: dict[tuple, list[int]] = {}
    for (i, d, _k, m), (p, v) in monthly.items():
        row = totals.setdefault((i, d), [0, 0, 0, 0])
        cashless = m in CASHLESS
        row[0] += p
        row[1] += p if cashless else 0
        row[2] += v
        row[3] += v if cashless else 0
    InstitutionMonthStat.objects.bulk_create(
        [InstitutionMonthStat(institution_id=i, month=d, payments=p, payments_cashless=pc, value=v, value_cashless=vc)
         for (i, d), (p, pc, v, vc) in totals.items()], batch_size=2000)


def stats_snapshot() -> dict[str, dict[tuple, tuple]]:
    """Both tables as {key: (payments, value)}, rows that net to zero left out: for equality checks."""
    out: dict[str, dict[tuple, tuple]] = {}
    for name, model, when in (("daily", DailyStat, "day"), ("monthly", MonthlyStat, "month")):
        out[name] = {
            (r["institution_id"], r[when], r["fee_kind"], r["method"]): (r["payments"], r["value"])
            for r in model.objects.values("institution_id", when, "fee_kind", "method", "payments", "value")
            if r["payments"] or r["value"]
        }
    out["institution_month"] = {
        (r["institution_id"], r["month"]): (r["payments"], r["payments_cashless"], r["value"], r["value_cashless"])
        for r in InstitutionMonthStat.objects.values("institution_id", "month", "payments", "payments_cashless",
                                                     "value", "value_cashless")
        if r["payments"] or r["value"]
    }
    return out


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
    problems = []
    for name in ("daily", "monthly", "institution_month"):
        for key in sorted(set(current[name]) | set(fresh[name]), key=str):
            if current[name].get(key) != fresh[name].get(key):
                problems.append(f"{name} {key}: kept {current[name].get(key)} ≠ recomputed {fresh[name].get(key)}")
    return problems
