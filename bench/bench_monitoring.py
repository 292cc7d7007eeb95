"""Monitoring benchmark on PostgreSQL: 10 million booked payments over 3,000 institutions.

    .venv/bin/python bench/bench_monitoring.py                      # generate once (kept), then measure
    .venv/bin/python bench/bench_monitoring.py --regenerate         # drop the data and generate again
    .venv/bin/python bench/bench_monitoring.py --credits 200000     # a quick look at a smaller scale

What it does, in order:
1. migrates a dedicated PostgreSQL database (``--database-url``, default
   postgres://postgres@127.0.0.1:5432/thuphi_bench_monitoring; created when missing);
2. generates, in SQL (INSERT … SELECT over generate_series, seeded), 3,000 institutions in the 34
   provinces with one bank account each, 100 payers each, 4 million paid bills of two lines and
   10 million credits over 2 years (1/7/2024–30/6/2026; 92 % matched, 6 % unmatched, 1.5 % reversed
   with their negative allocations, 0.5 % returned; 25 % cash, 12 % card, 55 % transfer, 8 % e-wallet);
3. times the full rebuild (``stats_rebuild()``), which is how every statistics table is produced here,
   then proves the rows are what the incremental path would have produced: for a sample of institutions,
   every counted credit goes through ``credit_contribution`` (the function the payment hooks use) and the
   sums must equal the daily rows; and that every rollup (month, half month, institution-month and -year,
   nationwide day and month) adds up to the daily table;
4. times the incremental hook itself (``stats_on_credit_booked``) on existing credits, rolled back;
5. measures ``GET /api/v1/kpi`` and the dashboard page through Django's test client (DEBUG off):
   50 requests per query after 3 warm-ups; p50, p95, max. The shipped plans are (re)loaded first, so
   every answer evaluates its targets (the Decision 27 one is restricted to tuition and hospital fees).

Nothing here is mocked: the same code paths as production, on the same PostgreSQL the tests use.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/thuphi_bench_monitoring"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            log(f"created database {name}")


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thuphi.config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# --- generation -----------------------------------------------------------------------------------


def _fill(model, given: dict[str, str]) -> tuple[str, str]:
    """Column list and SELECT expressions for `model`: `given` SQL per column, the rest from field defaults."""
    from django.db.models import NOT_PROVIDED

    cols, exprs = [], []
    for f in model._meta.concrete_fields:
        col = f.column
        if col in given:
            expr = given[col]
        elif f.primary_key:
            continue  # from the sequence
        elif f.null:
            expr = "NULL"
        elif f.default is not NOT_PROVIDED and not callable(f.default):
            d = f.default
            expr = ("TRUE" if d else "FALSE") if isinstance(d, bool) else (str(d) if isinstance(d, int) else
                                                                          "'" + str(d).replace("'", "''") + "'")
        elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            expr = "now()"
        elif f.get_internal_type() == "JSONField":
            expr = "'[]'::jsonb"
        elif f.get_internal_type() in ("CharField", "TextField", "SlugField", "EmailField"):
            expr = "''"
        else:
            raise RuntimeError(f"{model.__name__}.{f.name}: no value given and no default")
        cols.append(col)
        exprs.append(expr)
    return ", ".join(cols), ", ".join(exprs)


def generate(n_inst: int, n_bills: int, n_credits: int) -> dict:
    from django.db import connection, transaction

    from thuphi.billing.models import Bill, BillLine
    from thuphi.payments.models import Allocation, Credit
    from thuphi.registry.models import BankAccount, Commune, Institution, Payer

    started = time.perf_counter()
    edu_kinds = ["kindergarten", "primary", "lower_secondary", "upper_secondary", "university"]
    health_kinds = ["commune_health_station", "regional_medical_centre", "provincial_hospital", "private_hospital"]
    communes = list(Commune.objects.order_by("province_id", "code").values_list("code", "province_id"))
    by_province: dict[str, list[str]] = {}
    for code, prov in communes:
        by_province.setdefault(prov, []).append(code)
    provinces = sorted(by_province)
    legacy = {}
    from thuphi.registry.models import LegacyProvince

    for lp in LegacyProvince.objects.order_by("code"):
        legacy.setdefault(lp.successor_id, []).append(lp.code)
    insts = []
    for i in range(n_inst):
        prov = provinces[i % len(provinces)]
        pool = by_province[prov]
        commune = pool[(i // len(provinces) * 7) % len(pool)]
        education = i % 2 == 0
        kinds = edu_kinds if education else health_kinds
        methods = ["cash"] if i % 10 == 9 else ["cash", "transfer", "card"] if i % 3 else ["transfer"]
        insts.append(Institution(
            code=f"BENCH-{i:05d}", name=f"{'Trường' if education else 'Cơ sở y tế'} số {i}",
            sector="education" if education else "health", kind=kinds[(i // 2) % len(kinds)],
            ownership="private" if i % 11 == 0 else "public", commune_id=commune,
            legacy_province_id=legacy[prov][(i // len(provinces)) % len(legacy[prov])], accepted_methods=methods))
    with transaction.atomic():
        Institution.objects.bulk_create(insts, batch_size=1000)
        inst_ids = list(Institution.objects.filter(code__startswith="BENCH-").order_by("code")
                        .values_list("pk", flat=True))
        assert inst_ids == list(range(inst_ids[0], inst_ids[0] + n_inst)), "institution ids not contiguous"
        BankAccount.objects.bulk_create([
            BankAccount(institution_id=pk, bank_bin="970436", account_number=f"9{k:09d}",
                        account_name="DON VI", is_default=True) for k, pk in enumerate(inst_ids)], batch_size=1000)
        acc_ids = list(BankAccount.objects.filter(institution_id__in=inst_ids).order_by("institution_id")
                       .values_list("pk", flat=True))
        assert acc_ids == list(range(acc_ids[0], acc_ids[0] + n_inst)), "bank account ids not contiguous"
    I0, A0 = inst_ids[0], acc_ids[0]
    P = 100
    with connection.cursor() as cur:
        cur.execute("SELECT setseed(0.4242)")
        cur.execute("SET synchronous_commit = off")
        # Generated rows are consistent by construction: skip the per-row foreign-key triggers while
        # loading (superuser only; the benchmark database is its own).
        cur.execute("SET session_replication_role = replica")
        cur.execute("SET work_mem = '256MB'")

        def nextid(model) -> int:
            cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM {model._meta.db_table}")
            return cur.fetchone()[0]

        def insert(model, given: dict[str, str], source: str) -> None:
            cols, exprs = _fill(model, given)
            t = time.perf_counter()
            cur.execute(f"INSERT INTO {model._meta.db_table} ({cols}) SELECT {exprs} FROM {source}")
            log(f"  {model.__name__}: {cur.rowcount:,} rows in {time.perf_counter() - t:.1f} s")

        def setval(model) -> None:
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{model._meta.db_table}', 'id'), "
                        f"(SELECT MAX(id) FROM {model._meta.db_table}))")

        P0 = nextid(Payer)
        insert(Payer, {"id": f"{P0} + g", "institution_id": f"{I0} + (g - 1) / {P}",
                       "kind": f"CASE WHEN ((g - 1) / {P}) % 2 = 0 THEN 'student' ELSE 'patient' END",
                       "code": "'P' || g", "name": "'Người nộp ' || g"},
               f"generate_series(1::bigint, {n_inst * P}) g")
        setval(Payer)
        B0 = nextid(Bill)
        insert(Bill, {"id": f"{B0} + b", "institution_id": f"{I0} + (b - 1) % {n_inst}",
                      "payer_id": f"{P0} + 1 + ((b - 1) % {n_inst}) * {P} + ((b - 1) / {n_inst}) % {P}",
                      "bank_account_id": f"{A0} + (b - 1) % {n_inst}", "reference": "'BX' || b",
                      "status": "'paid'", "issue_date": "DATE '2024-07-01'", "due_date": "DATE '2026-06-30'",
                      "amount_gross": "1000000", "amount_discount": "0", "amount_due": "1000000",
                      "amount_paid": "1000000", "qr_payload": "''"},
               f"generate_series(1::bigint, {n_bills}) b")
        setval(Bill)
        # Two lines per bill; which is larger (hence the bill's fee kind) varies with the bill.
        insert(BillLine, {"bill_id": f"{B0} + b", "name": "'Khoản ' || l",
                          "kind": f"CASE WHEN ((b - 1) % {n_inst}) % 2 = 0 THEN "
                                  "(ARRAY['tuition','meals_boarding','services','student_insurance'])[1 + (b + l) % 4] "
                                  "ELSE (ARRAY['hospital_fee','deposit','services','other'])[1 + (b * l) % 4] END",
                          "amount": "100000 + ((b * 7919 + l * 104729) % 900000)", "discount": "0",
                          "position": "l"},
               f"generate_series(1::bigint, {n_bills}) b CROSS JOIN generate_series(1::bigint, 2) l")
        t = time.perf_counter()
        cur.execute(f"""CREATE TEMP TABLE stage AS SELECT n, 1 + floor(random() * {n_bills})::int AS bill_no,
                        random() AS rs, random() AS rm, 20000 + floor(random() * 4980000)::bigint AS amount,
                        TIMESTAMPTZ '2024-07-01 00:00:00+07' + random() * INTERVAL '730 days' AS at
                        FROM generate_series(1::bigint, {n_credits}) n""")
        log(f"  staging {n_credits:,} credits in {time.perf_counter() - t:.1f} s")
        C0 = nextid(Credit)
        status = ("CASE WHEN rs < 0.92 THEN 'matched' WHEN rs < 0.98 THEN 'unmatched' WHEN rs < 0.995 "
                  "THEN 'reversed' ELSE 'returned' END")
        method = ("CASE WHEN rm < 0.25 THEN 'cash' WHEN rm < 0.37 THEN 'card' WHEN rm < 0.92 THEN 'transfer' "
                  "ELSE 'ewallet' END")
        insert(Credit, {"id": f"{C0} + n", "institution_id": f"{I0} + (bill_no - 1) % {n_inst}",
                        "bank_account_id": f"CASE WHEN rm >= 0.37 THEN {A0} + (bill_no - 1) % {n_inst} END",
                        "method": method, "source": "CASE WHEN rm < 0.37 THEN 'counter' ELSE 'webhook' END",
                        "amount": "amount", "occurred_at": "at", "status": status}, "stage")
        setval(Credit)
        AL0 = nextid(Allocation)
        insert(Allocation, {"id": f"{AL0} + n", "credit_id": f"{C0} + n", "bill_id": f"{B0} + bill_no",
                            "amount": "amount"}, "stage WHERE rs < 0.92 OR (rs >= 0.98 AND rs < 0.995)")
        insert(Allocation, {"id": f"{AL0} + {n_credits} + n", "credit_id": f"{C0} + n",
                            "bill_id": f"{B0} + bill_no", "amount": "-amount", "reverses_id": f"{AL0} + n"},
               "stage WHERE rs >= 0.98 AND rs < 0.995")
        setval(Allocation)
        cur.execute("DROP TABLE stage")
        cur.execute("SET session_replication_role = DEFAULT")
        t = time.perf_counter()
        cur.execute("ANALYZE")
        log(f"  analyze in {time.perf_counter() - t:.1f} s")
    return {"seconds": round(time.perf_counter() - started, 1)}


def counts() -> dict:
    from django.db import connection

    out = {}
    with connection.cursor() as cur:
        for table in ("registry_institution", "billing_bill", "billing_billline", "payments_credit",
                      "payments_allocation", "monitoring_dailystat", "monitoring_monthlystat",
                      "monitoring_institutionhalfmonthstat", "monitoring_institutionyearstat",
                      "monitoring_nationdaystat", "monitoring_nationmonthstat"):
            cur.execute(f"SELECT COUNT(*) FROM {table}")
            out[table] = cur.fetchone()[0]
    return out


def wipe() -> None:
    from django.db import connection

    with connection.cursor() as cur:
        # CASCADE also empties the users (and the plans they created): plans are reloaded by main().
        cur.execute("TRUNCATE monitoring_dailystat, monitoring_monthlystat, monitoring_institutionmonthstat, "
                    "monitoring_institutionhalfmonthstat, monitoring_institutionyearstat, monitoring_nationdaystat, "
                    "monitoring_nationmonthstat, "
                    "monitoring_nationstatfiling, monitoring_aggregatereport, "
                    "payments_allocation, payments_credit, billing_billline, billing_bill, registry_payer, "
                    "registry_bankaccount, registry_institution CASCADE")


# --- checks and measurements ------------------------------------------------------------------------


def verify_sample(n: int = 3) -> dict:
    """The rows the rebuild wrote equal what the incremental function gives for every credit of a sample."""
    from thuphi.monitoring.models import DailyStat
    from thuphi.monitoring.stats import COUNTED_STATUSES, credit_contribution
    from thuphi.payments.models import Credit
    from thuphi.registry.models import Institution

    ids = list(Institution.objects.filter(code__startswith="BENCH-").order_by("pk").values_list("pk", flat=True))
    sample = [ids[0], ids[len(ids) // 2 + 1], ids[-1]][:n]
    t = time.perf_counter()
    expected: dict[tuple, list[int]] = {}
    credits = 0
    for c in Credit.objects.filter(institution_id__in=sample, status__in=COUNTED_STATUSES).only(
            "pk", "institution_id", "occurred_at", "method", "amount").iterator(chunk_size=2000):
        k = credit_contribution(c)
        row = expected.setdefault((k.institution_id, k.day, k.fee_kind, k.method), [0, 0])
        row[0] += k.payments
        row[1] += k.value
        credits += 1
    kept = {(r.institution_id, r.day, r.fee_kind, r.method): [r.payments, r.value]
            for r in DailyStat.objects.filter(institution_id__in=sample)}
    assert kept == expected, "rebuild and incremental contributions differ"
    return {"institutions": len(sample), "credits": credits, "rows": len(kept),
            "seconds": round(time.perf_counter() - t, 1)}


def verify_rollups() -> dict:
    """Every rollup adds up to the daily table (PostgreSQL EXCEPT both ways must be empty)."""
    from django.db import connection

    t = time.perf_counter()
    month = "(day - (EXTRACT(DAY FROM day)::int - 1))"
    half = "(CASE WHEN EXTRACT(DAY FROM day) <= 15 THEN 1 ELSE 2 END)"
    cashless = "method IN ('card', 'ewallet', 'transfer')"
    split = (f"SUM(payments), SUM(payments) FILTER (WHERE {cashless}), SUM(value), "
             f"SUM(value) FILTER (WHERE {cashless})")
    pairs = {
        "monthly": (f"SELECT institution_id, {month}, fee_kind, method, SUM(payments), SUM(value) "
                    f"FROM monitoring_dailystat GROUP BY 1, 2, 3, 4",
                    "SELECT institution_id, month, fee_kind, method, payments, value FROM monitoring_monthlystat"),
        "institution_half": (f"SELECT institution_id, {month}, {half}, {split} FROM monitoring_dailystat "
                             f"GROUP BY 1, 2, 3",
                             "SELECT institution_id, month, half, payments, NULLIF(payments_cashless, 0), value, "
                             "NULLIF(value_cashless, 0) FROM monitoring_institutionhalfmonthstat"),
        "institution_month": (f"SELECT institution_id, {month}, {split} FROM monitoring_dailystat GROUP BY 1, 2",
                              "SELECT institution_id, month, payments, NULLIF(payments_cashless, 0), value, "
                              "NULLIF(value_cashless, 0) FROM monitoring_institutionmonthstat"),
        "institution_year": ("SELECT institution_id, (day - (EXTRACT(DOY FROM day)::int - 1)), "
                             f"{split} FROM monitoring_dailystat GROUP BY 1, 2",
                             "SELECT institution_id, year, payments, NULLIF(payments_cashless, 0), value, "
                             "NULLIF(value_cashless, 0) FROM monitoring_institutionyearstat"),
        "nation_day": ("SELECT d.day, i.sector, i.kind, i.ownership, d.fee_kind, d.method, SUM(d.payments), "
                       "SUM(d.value) FROM monitoring_dailystat d JOIN registry_institution i "
                       "ON i.id = d.institution_id GROUP BY 1, 2, 3, 4, 5, 6",
                       "SELECT day, sector, kind, ownership, fee_kind, method, payments, value "
                       "FROM monitoring_nationdaystat"),
        "nation_month": (f"SELECT {month}, sector, kind, ownership, fee_kind, method, SUM(payments), SUM(value) "
                         f"FROM monitoring_nationdaystat GROUP BY 1, 2, 3, 4, 5, 6",
                         "SELECT month, sector, kind, ownership, fee_kind, method, payments, value "
                         "FROM monitoring_nationmonthstat"),
    }
    out = {}
    with connection.cursor() as cur:
        for name, (a, b) in pairs.items():
            cur.execute(f"SELECT (SELECT COUNT(*) FROM (({a}) EXCEPT ({b})) x), (SELECT COUNT(*) FROM (({b}) EXCEPT ({a})) y)")
            missing, extra = cur.fetchone()
            assert (missing, extra) == (0, 0), f"{name}: {missing} rows missing, {extra} extra"
            cur.execute(f"SELECT COUNT(*) FROM ({b}) z")
            out[name] = cur.fetchone()[0]
    out["seconds"] = round(time.perf_counter() - t, 1)
    return out


def time_hook(n: int = 1000) -> dict:
    """stats_on_credit_booked on existing credits (each in a savepoint; everything rolled back)."""
    from django.db import transaction

    from thuphi.monitoring.services import stats_on_credit_booked
    from thuphi.payments.models import Credit

    credits = list(Credit.objects.filter(status="matched").order_by("?")[:n])
    times = []

    class Undo(Exception):
        pass

    try:
        with transaction.atomic():
            for c in credits:
                t = time.perf_counter()
                stats_on_credit_booked(credit=c)
                times.append((time.perf_counter() - t) * 1000)
            raise Undo
    except Undo:
        pass
    return summary(times)


def summary(ms: list[float]) -> dict:
    s = sorted(ms)
    return {"n": len(s), "p50_ms": round(statistics.median(s), 1),
            "p95_ms": round(s[max(0, int(len(s) * 0.95) - 1)], 1), "max_ms": round(s[-1], 1)}


def measure(client, path: str, headers: dict | None = None, runs: int = 50, warmup: int = 3) -> dict:
    for _ in range(warmup):
        r = client.get(path, headers=headers or {})
        assert r.status_code == 200, (path, r.status_code, r.content[:300])
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        r = client.get(path, headers=headers or {})
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200
    # the machine is shared: the 1-minute load average when the case ends
    return {**summary(times), "load": round(os.getloadavg()[0], 2)}


def latencies(runs: int) -> list[dict]:
    from django.test import Client

    # What a server process does when it loads the application (gc.freeze after start-up, see wsgi.py):
    # the answers are measured in a process set up like the server's.
    import thuphi.config.wsgi  # noqa: F401

    from thuphi.core.models import Role, User
    from thuphi.core.services import token_create

    admin, _ = User.objects.get_or_create(username="bench-admin", defaults={"role": Role.SYSTEM_ADMIN})
    monitor, _ = User.objects.get_or_create(username="bench-monitor",
                                            defaults={"role": Role.PROVINCIAL_MONITOR, "province_id": "24"})
    _t, admin_token = token_create(username=admin.username)
    _t, monitor_token = token_create(username=monitor.username)
    from thuphi.registry.models import Institution

    commune = Institution.objects.filter(code__startswith="BENCH-", commune__province_id="24").values_list(
        "commune_id", flat=True).first()
    api = Client()
    a = {"Authorization": f"Bearer {admin_token}"}
    m = {"Authorization": f"Bearer {monitor_token}"}
    cases = [
        ("kpi", "VN, 2 years (all data)", "/api/v1/kpi?area=VN&from=2024-07-01&to=2026-06-30", a),
        ("kpi", "VN, year 2025", "/api/v1/kpi?area=VN&from=2025-01-01&to=2025-12-31", a),
        ("kpi", "VN, health, 16/3–15/4/2025", "/api/v1/kpi?area=VN&sector=health&from=2025-03-16&to=2025-04-15", a),
        ("kpi", "VN, primary schools, 7/2–23/8/2025",
         "/api/v1/kpi?area=VN&kind=primary&from=2025-02-07&to=2025-08-23", a),
        ("kpi", "province 24, year 2025", "/api/v1/kpi?area=24&from=2025-01-01&to=2025-12-31", m),
        ("kpi", "province 24, 16/3–15/4/2025", "/api/v1/kpi?area=24&from=2025-03-16&to=2025-04-15", m),
        ("kpi", "legacy:24, 2 years", "/api/v1/kpi?area=legacy:24&from=2024-07-01&to=2026-06-30", m),
        ("kpi", f"commune {commune}, year 2025", f"/api/v1/kpi?area={commune}&from=2025-01-01&to=2025-12-31", m),
    ]
    out = []
    for kind, label, path, headers in cases:
        r = measure(api, path, headers, runs=runs)
        out.append({"what": f"GET /api/v1/kpi — {label}", **r})
        log(f"  {out[-1]}")
    page = Client()
    page.force_login(monitor)
    for label, path in [("province 24, year 2025", "/monitoring/?area=24&from=2025-01-01&to=2025-12-31"),
                        ("province 24, health, 16/3–15/4/2025",
                         "/monitoring/?area=24&sector=health&from=2025-03-16&to=2025-04-15"),
                        ("province 24, 2 years", "/monitoring/?area=24&from=2024-07-01&to=2026-06-30"),
                        ("province 24, 7/2–23/8/2025", "/monitoring/?area=24&from=2025-02-07&to=2025-08-23"),
                        (f"commune {commune}, year 2025", f"/monitoring/?area={commune}&from=2025-01-01&to=2025-12-31")]:
        out.append({"what": f"dashboard — {label}", **measure(page, path, runs=runs)})
        log(f"  {out[-1]}")
    admin_page = Client()
    admin_page.force_login(admin)
    for label, path in [("VN (system admin), year 2025", "/monitoring/?area=VN&from=2025-01-01&to=2025-12-31"),
                        ("VN (system admin), 2 years", "/monitoring/?area=VN&from=2024-07-01&to=2026-06-30"),
                        ("VN (system admin), health, 16/3–15/4/2025",
                         "/monitoring/?area=VN&sector=health&from=2025-03-16&to=2025-04-15"),
                        ("VN (system admin), 7/2–23/8/2025", "/monitoring/?area=VN&from=2025-02-07&to=2025-08-23")]:
        out.append({"what": f"dashboard — {label}", **measure(admin_page, path, runs=runs)})
        log(f"  {out[-1]}")
    return out


def machine() -> dict:
    def sh(cmd: str) -> str:
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:  # noqa: BLE001
            return ""

    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    mem = sh("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        pg = cur.fetchone()[0]
        cur.execute("SHOW shared_buffers")
        sb = cur.fetchone()[0]
    return {"nproc": os.cpu_count(), "cpu": cpu, "ram": mem, "postgresql": pg, "shared_buffers": sb,
            "python": platform.python_version(), "date": dt.date.today().isoformat(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    p.add_argument("--institutions", type=int, default=3000)
    p.add_argument("--bills", type=int, default=4_000_000)
    p.add_argument("--credits", type=int, default=10_000_000)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--regenerate", action="store_true")
    p.add_argument("--rebuilds", type=int, default=2, help="how many timed rebuilds (0: keep the tables)")
    p.add_argument("--latency-only", action="store_true",
                   help="skip the rebuilds and checks: measure the answer times on the tables as they are")
    p.add_argument("--json", help="write the results here as JSON")
    args = p.parse_args()
    if not args.database_url.startswith("postgres"):
        sys.exit("this benchmark is for PostgreSQL")
    ensure_database(args.database_url)
    setup_django(args.database_url)
    results: dict = {"machine": machine(), "command": " ".join(["python", *sys.argv])}
    have = counts()
    if args.regenerate or have["payments_credit"] != args.credits:
        log("wiping and generating (this takes a few minutes)")
        wipe()
        results["generation"] = generate(args.institutions, args.bills, args.credits)
    from thuphi.monitoring.plans import plans_sync

    plans_sync()  # the shipped plans (a wipe empties them with the users): every answer evaluates targets
    results["counts_before"] = counts()
    log(f"data: {results['counts_before']}")

    from thuphi.monitoring.services import stats_rebuild

    if args.latency_only:
        results["latency"] = latencies(args.runs)
        print(json.dumps(results, indent=2, ensure_ascii=False, default=str))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str))
        return
    rebuilds = []
    for i in range(args.rebuilds):
        r = stats_rebuild()
        rebuilds.append({"seconds": r.seconds, "daily_rows": r.daily_rows, "monthly_rows": r.monthly_rows,
                         "payments": r.payments, "value": r.value})
        log(f"rebuild {i + 1}: {rebuilds[-1]} (load {os.getloadavg()[0]:.2f})")
    results["rebuild"] = rebuilds
    from django.db import connection

    from thuphi.monitoring.stats import STAT_MODELS

    with connection.cursor() as cur:
        for model in STAT_MODELS:
            cur.execute(f"VACUUM ANALYZE {model._meta.db_table}")
    results["verify_sample"] = verify_sample()
    log(f"rebuild = incremental on a sample: {results['verify_sample']}")
    results["verify_rollups"] = verify_rollups()
    log(f"rollups add up to the daily table: {results['verify_rollups']}")
    results["hook"] = time_hook()
    log(f"incremental hook: {results['hook']}")
    results["latency"] = latencies(args.runs)
    print(json.dumps(results, indent=2, ensure_ascii=False, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str))


if __name__ == "__main__":
    main()
