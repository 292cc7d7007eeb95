"""Benchmark: bulk issuance of 100,000 bills (2 lines each, with VietQR payloads) on PostgreSQL.

    psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE thuphi_bench"
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/thuphi_bench .venv/bin/thuphi migrate --noinput
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/thuphi_bench .venv/bin/python bench/bench_bulk_issue.py

Scenarios, each run `--runs` times (median reported):

* new payers: the first issuance of a school year, every payer is created (tables emptied before each run);
* existing payers: the monthly issuance, payers already on file (bills emptied before each run);
* plain COPY: the same bill and line tuples as the last run, read back into memory, written with
  COPY into the emptied bill tables, once rolled back and once committed (COMMIT runs the deferred
  foreign-key checks). The committed one is the floor for what any issuance can reach here.

The database is emptied (TRUNCATE): point it only at a database made for benchmarking.
Results go to bench/out/bulk_issue-<time>.json; `--phases` times the steps of one extra run per
scenario, `--profile` prints a cProfile of one extra run.
"""
from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import os
import platform
import pstats
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/thuphi_bench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thuphi.config.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402

from thuphi.billing import vietqr  # noqa: E402
from thuphi.billing import reference as refcode  # noqa: E402
from thuphi.billing.bulk import RosterRow, bills_bulk_issue, parse_roster  # noqa: E402
from thuphi.billing.models import Bill, BillLine, DiscountRule, FeeKind  # noqa: E402
from thuphi.billing.services import LineInput  # noqa: E402
from thuphi.registry.models import Commune, Institution, PayerCategory  # noqa: E402
from thuphi.registry.services import BankAccountInput, institution_create  # noqa: E402

TARGET = 10_000  # bills per second
INSTITUTION = "BENCH-THCS-01"
SCHEDULE = [LineInput(name="Tiền ăn bán trú tháng 11", amount=450_000, kind=FeeKind.MEALS_BOARDING),
            LineInput(name="Bảo hiểm y tế học sinh", amount=884_520, kind=FeeKind.STUDENT_INSURANCE)]
BILL_TABLES = ("billing_billline", "billing_bill", "billing_billbatch")


def machine() -> dict:
    cpu = ""
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as fh:
        mem_kb = int(fh.readline().split()[1])
    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        pg = cur.fetchone()[0]
    return {"nproc": os.cpu_count(), "cpu": cpu, "ram_gib": round(mem_kb / 1024 / 1024, 1),
            "python": platform.python_version(), "postgresql": pg, "kernel": platform.release()}


def institution() -> Institution:
    inst = Institution.objects.filter(code=INSTITUTION).first()
    if inst is None:
        commune = Commune.objects.filter(province_id="24").order_by("code").first()
        inst = institution_create(
            actor=None, code=INSTITUTION, name="Trường THCS Đo Hiệu Năng", sector="education",
            kind="lower_secondary", ownership="public", commune_code=commune.code,
            bank_accounts=[BankAccountInput(bank_bin="970436", account_number="0991000123456",
                                            account_name="TRUONG THCS DO HIEU NANG")],
        )
    cat, _ = PayerCategory.objects.get_or_create(institution=inst, code="HN", defaults={"name": "Hộ nghèo"})
    DiscountRule.objects.get_or_create(institution=inst, category=cat, fee_kind=FeeKind.MEALS_BOARDING,
                                       defaults={"discount_type": "percent", "value": 50})
    return inst


def roster(n: int) -> list[RosterRow]:
    # One payer in 20 in the discount category, as in a typical school.
    return [RosterRow(row=i + 2, code=f"HS{i:06d}", name=f"Nguyễn Văn Học Sinh {i}", class_name=f"{6 + i % 4}A{i % 9}",
                      grade=str(6 + i % 4), guardian_name=f"Trần Thị Phụ Huynh {i}", phone=f"09{i % 100_000_000:08d}",
                      date_of_birth="05/09/2013", category="HN" if i % 20 == 0 else "")
            for i in range(n)]


def truncate(*tables: str) -> None:
    with connection.cursor() as cur:
        cur.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        cur.execute("VACUUM ANALYZE registry_payer")  # same planner statistics at the start of every run
        for t in BILL_TABLES:
            cur.execute(f"VACUUM ANALYZE {t}")


def loadavg() -> float:
    with open("/proc/loadavg") as fh:
        return float(fh.read().split()[0])


def issue(inst: Institution, rows: list[RosterRow]) -> float:
    start = time.perf_counter()
    bills_bulk_issue(actor=None, institution=inst, rows=rows, schedule=SCHEDULE,
                     due_date=dt.date.today() + dt.timedelta(days=15), batch_name="Thu tháng 11/2026")
    return time.perf_counter() - start


def timed_phases(inst: Institution, rows: list[RosterRow]) -> dict[str, float]:
    """Wall time of each step of one issuance; what is left over is mostly COMMIT (deferred FK checks)."""
    from thuphi.billing import bulk

    steps = {"_validate_rows": "validate", "_existing_payers": "find existing payers",
             "_allocate_references": "references", "_upsert_payers": "write payers", "_write_bills": "write bills+lines"}
    spent: dict[str, float] = {}
    originals = {name: getattr(bulk, name) for name in steps}

    def timed(name):
        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                return originals[name](*args, **kwargs)
            finally:
                spent[steps[name]] = spent.get(steps[name], 0.0) + time.perf_counter() - start
        return run

    for name in steps:
        setattr(bulk, name, timed(name))
    try:
        total = issue(inst, rows)
    finally:
        for name, fn in originals.items():
            setattr(bulk, name, fn)
    spent["commit and the rest"] = total - sum(spent.values())
    spent["total"] = total
    return spent


def verify(n: int) -> None:
    assert Bill.objects.count() == n and BillLine.objects.count() == 2 * n, "wrong row counts"
    for bill in Bill.objects.order_by("?")[:200]:
        qr = vietqr.parse_payload(bill.qr_payload)
        assert refcode.is_valid(bill.reference) and qr.purpose == bill.reference and qr.amount == bill.amount_due
    assert Bill.objects.values("reference").distinct().count() == n


def copy_baseline(runs: int) -> dict[str, list[float]]:
    """COPY the rows the last issuance wrote, as pre-built tuples, into the emptied bill tables.

    Two floors: rolled back (index upkeep only) and committed (plus the deferred foreign-key
    checks that every real issuance pays at COMMIT). The committed run leaves the same rows behind.
    """
    from psycopg import sql

    tables = []
    for model in (Bill, BillLine):
        columns = [f.column for f in model._meta.concrete_fields]
        with connection.cursor() as cur:
            cur.execute(sql.SQL("SELECT {} FROM {} ORDER BY id").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(model._meta.db_table)))
            tables.append((model._meta.db_table, columns, cur.fetchall()))
    times: dict[str, list[float]] = {"plain_copy_rollback": [], "plain_copy_commit": []}
    for _ in range(runs):
        for commit in (False, True):
            with connection.cursor() as cur:
                cur.execute("TRUNCATE billing_billline, billing_bill CASCADE")
            start = time.perf_counter()
            with transaction.atomic():
                with connection.cursor() as cur:
                    for table, columns, rows in tables:
                        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))
                        with cur.cursor.copy(statement) as copy:
                            for row in rows:
                                copy.write_row(row)
                if not commit:
                    transaction.set_rollback(True)
            times["plain_copy_commit" if commit else "plain_copy_rollback"].append(time.perf_counter() - start)
    return times


def parse_csv_time(rows: list[RosterRow]) -> float:
    header = "Mã,Họ tên,Lớp,Khối,Phụ huynh,Điện thoại,Ngày sinh,Đối tượng\n"
    body = "".join(f"{r.code},{r.name},{r.class_name},{r.grade},{r.guardian_name},{r.phone},{r.date_of_birth},"
                   f"{r.category}\n" for r in rows)
    data = (header + body).encode()
    start = time.perf_counter()
    parsed = parse_roster(file_bytes=data, filename="roster.csv")
    elapsed = time.perf_counter() - start
    assert len(parsed) == len(rows)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bills", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="profile one extra run (new payers) with cProfile")
    parser.add_argument("--phases", action="store_true",
                        help="time the steps of one extra run per scenario (wall clock, COMMIT included)")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("This benchmark needs PostgreSQL: set DATABASE_URL=postgres://…/thuphi_bench")

    n = args.bills
    inst = institution()
    rows = roster(n)
    results: dict[str, list[float]] = {"new_payers": [], "existing_payers": []}
    load_before = loadavg()

    for _ in range(args.runs):
        truncate("registry_payer", *BILL_TABLES)
        results["new_payers"].append(issue(inst, rows))
        print(f"  new payers: {results['new_payers'][-1]:.2f} s", file=sys.stderr)
    verify(n)
    for _ in range(args.runs):
        truncate(*BILL_TABLES)
        results["existing_payers"].append(issue(inst, rows))
        print(f"  existing payers: {results['existing_payers'][-1]:.2f} s", file=sys.stderr)
    verify(n)
    results.update(copy_baseline(args.runs))
    verify(n)
    csv_parse = parse_csv_time(rows)

    if args.profile:
        truncate("registry_payer", *BILL_TABLES)
        profile = cProfile.Profile()
        profile.runcall(issue, inst, rows)
        pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(25)

    phases = {}
    if args.phases:
        for scenario in ("new_payers", "existing_payers"):
            truncate(*(("registry_payer",) if scenario == "new_payers" else ()), *BILL_TABLES)
            phases[scenario] = timed_phases(inst, rows)

    median = {k: statistics.median(v) for k, v in results.items()}
    rate = {k: n / v for k, v in median.items()}
    report = {
        "benchmark": "bulk_issue", "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": f"DATABASE_URL={os.environ['DATABASE_URL']} .venv/bin/python bench/bench_bulk_issue.py "
                   + " ".join(sys.argv[1:]),
        "machine": machine(), "bills": n, "lines_per_bill": len(SCHEDULE), "runs": args.runs,
        "seconds": results, "median_seconds": median, "bills_per_second": rate,
        "ratio_to_copy_commit": {k: median[k] / median["plain_copy_commit"] for k in ("new_payers", "existing_payers")},
        "csv_parse_seconds": csv_parse, "loadavg_1min": {"before": load_before, "after": loadavg()}, "target_bills_per_second": TARGET,
        "target_met": rate["new_payers"] >= TARGET, "phases_seconds": phases,
    }

    print(f"\nBulk issuance, {n:,} bills × {len(SCHEDULE)} lines, median of {args.runs} runs "
          f"({report['machine']['nproc']} CPU, {report['machine']['cpu']})")
    print(f"{'scenario':<42}{'median s':>10}{'bills/s':>10}{'× COPY+commit':>15}")
    labels = {"new_payers": "bills_bulk_issue, new payers", "existing_payers": "bills_bulk_issue, existing payers",
              "plain_copy_commit": "plain COPY of the same rows + COMMIT",
              "plain_copy_rollback": "plain COPY of the same rows, rolled back"}
    for key, label in labels.items():
        ratio = median[key] / median["plain_copy_commit"]
        print(f"{label:<42}{median[key]:>10.2f}{rate[key]:>10,.0f}{ratio:>15.2f}")
    print(f"parse_roster, {n:,}-row CSV: {csv_parse:.2f} s; load average {report['loadavg_1min']}")
    for scenario, steps in phases.items():
        print(f"steps, {scenario}: " + ", ".join(f"{k} {v:.2f}" for k, v in steps.items()))
    print(f"target {TARGET:,} bills/s: {'met' if report['target_met'] else 'MISSED'}")

    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"bulk_issue-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
