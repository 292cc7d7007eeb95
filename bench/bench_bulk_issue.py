"""Benchmark: bulk issuance of 100,000 bills (2 lines each, with VietQR payloads) on PostgreSQL.

    psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE thuphi_bench"
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/thuphi_bench .venv/bin/thuphi migrate --noinput
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/thuphi_bench .venv/bin/python bench/bench_bulk_issue.py

Each round runs, one after the other (so that they see the same load on a shared machine):

* new payers: the first issuance of a school year, every payer is created;
* plain COPY of the same payer, bill and line rows + COMMIT: what the new-payer issuance writes, as
  pre-built tuples, into the emptied tables;
* existing payers: the monthly issuance, payers already on file;
* plain COPY of the same bill and line rows + COMMIT: what the monthly issuance writes;
* the same, rolled back (index upkeep without the deferred foreign-key checks of COMMIT).

The rows of the plain COPYs are those the first round's issuance wrote, read back into memory. The
ratio of each issuance to its plain COPY is taken within a round, and the median of the rounds is
reported, so that a change of load between rounds does not land in the ratio. CPU seconds of this
process and of its PostgreSQL backend are reported beside the wall clock: on a shared machine they
move much less.

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
from thuphi.billing.models import Bill, BillBatch, BillLine, DiscountRule, FeeKind  # noqa: E402
from thuphi.billing.services import LineInput  # noqa: E402
from thuphi.registry.models import Commune, Institution, Payer, PayerCategory  # noqa: E402
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


def backend_pid() -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        return cur.fetchone()[0]


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process on this machine."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(fn, *args) -> dict[str, float]:
    """Wall seconds, CPU seconds of this process (all threads) and of the PostgreSQL backend, load."""
    pid = backend_pid()
    load = loadavg()
    client, server, start = time.process_time(), cpu_of(pid), time.perf_counter()
    fn(*args)
    return {"wall": time.perf_counter() - start, "client_cpu": time.process_time() - client,
            "server_cpu": cpu_of(pid) - server, "load_before": load}


def issue(inst: Institution, rows: list[RosterRow]) -> None:
    bills_bulk_issue(actor=None, institution=inst, rows=rows, schedule=SCHEDULE,
                     due_date=dt.date.today() + dt.timedelta(days=15), batch_name="Thu tháng 11/2026")


def timed_phases(inst: Institution, rows: list[RosterRow]) -> dict[str, float]:
    """Wall time of each step of one issuance, as the main thread sees it.

    The roster is validated chunk by chunk; each valid chunk is rendered as COPY text and queued on
    the pipeline's thread. The look-ups of chunk k+1 (payers on file, references, ids) are queued
    before the COPYs of chunk k, so waiting for them also waits for the COPYs of chunk k-1: that is
    "wait for the database". What is left over is mostly COMMIT: the deferred foreign-key checks.
    """
    from thuphi.billing import bulk

    spent: dict[str, float] = {}
    originals = {"validate": (bulk, "_validate_rows"), "look-ups": (bulk, "_lookups"),
                 "write": (bulk._Issue, "write"), "result": (bulk._Pipeline, "result"),
                 "drain": (bulk._Pipeline, "drain"), "update": (bulk._Issue, "update_payers")}
    labels = {"validate": "validate rows", "look-ups": "(look-ups, on the pipeline thread)",
              "write": "render COPY text + queue it", "result": "wait for the database",
              "drain": "wait for the last COPYs", "update": "update changed payers"}
    saved = {key: getattr(owner, name) for key, (owner, name) in originals.items()}

    def timed(key):
        fn, label = saved[key], labels[key]

        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - start
        return run

    for key, (owner, name) in originals.items():
        setattr(owner, name, timed(key))
    try:
        start = time.perf_counter()
        issue(inst, rows)
        total = time.perf_counter() - start
    finally:
        for key, (owner, name) in originals.items():
            setattr(owner, name, saved[key])
    main_thread = sum(v for k, v in spent.items() if not k.startswith("("))
    spent["COMMIT and the rest"] = total - main_thread
    spent["total"] = total
    return spent


def verify(n: int) -> None:
    assert Bill.objects.count() == n and BillLine.objects.count() == 2 * n, "wrong row counts"
    for bill in Bill.objects.order_by("?")[:200]:
        qr = vietqr.parse_payload(bill.qr_payload)
        assert refcode.is_valid(bill.reference) and qr.purpose == bill.reference and qr.amount == bill.amount_due
        assert len(bill.lines.all()) == 2
    assert Bill.objects.values("reference").distinct().count() == n


def read_back(*models) -> list[tuple[str, list[str], list[tuple]]]:
    """Every row of each model's table, in id order, as tuples: what a plain COPY writes again."""
    from psycopg import sql

    tables = []
    for model in models:
        columns = [f.column for f in model._meta.concrete_fields]
        with connection.cursor() as cur:
            cur.execute(sql.SQL("SELECT {} FROM {} ORDER BY id").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(model._meta.db_table)))
            tables.append((model._meta.db_table, columns, cur.fetchall()))
    return tables


def plain_copy(tables, commit: bool) -> None:
    """COPY pre-built tuples (psycopg's write_row, text format) into the tables, in one transaction."""
    from psycopg import sql

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


LABELS = {"new_payers": "bills_bulk_issue, new payers",
          "plain_copy_payers_commit": "plain COPY of its payer, bill, line rows + COMMIT",
          "existing_payers": "bills_bulk_issue, existing payers",
          "plain_copy_commit": "plain COPY of its bill and line rows + COMMIT",
          "plain_copy_rollback": "the same, rolled back"}
#: Each issuance and the plain COPY of the same rows.
PAIRS = {"new_payers": "plain_copy_payers_commit", "existing_payers": "plain_copy_commit"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bills", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="rounds (each runs every scenario once)")
    parser.add_argument("--profile", action="store_true", help="profile one extra run (new payers) with cProfile")
    parser.add_argument("--phases", action="store_true",
                        help="time the steps of one extra run per scenario (wall clock, COMMIT included)")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("This benchmark needs PostgreSQL: set DATABASE_URL=postgres://…/thuphi_bench")

    n = args.bills
    inst = institution()
    rows = roster(n)
    results: dict[str, list[dict]] = {key: [] for key in LABELS}
    uptime_before = open("/proc/loadavg").read().strip()
    tables = None

    def record(key: str, fn, *fn_args) -> None:
        m = measured(fn, *fn_args)
        results[key].append(m)
        print(f"  {key}: {m['wall']:.2f} s wall, CPU {m['client_cpu']:.2f} s here + {m['server_cpu']:.2f} s "
              f"PostgreSQL, load {m['load_before']:.1f}", file=sys.stderr, flush=True)

    for _round in range(args.runs):
        truncate("registry_payer", *BILL_TABLES)
        record("new_payers", issue, inst, rows)
        verify(n)
        if tables is None:
            tables = read_back(Payer, BillBatch, Bill, BillLine)
        truncate("registry_payer", *BILL_TABLES)
        record("plain_copy_payers_commit", plain_copy, tables, True)
        verify(n)
        truncate(*BILL_TABLES)
        record("existing_payers", issue, inst, rows)
        verify(n)
        truncate(*BILL_TABLES)
        record("plain_copy_commit", plain_copy, tables[1:], True)
        verify(n)
        truncate(*BILL_TABLES)
        record("plain_copy_rollback", plain_copy, tables[1:], False)
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

    def med(key: str, what: str) -> float:
        return statistics.median(m[what] for m in results[key])

    median = {k: med(k, "wall") for k in LABELS}
    rate = {k: n / v for k, v in median.items()}
    # Ratio within each round, then the median: load that changes between rounds stays out of it.
    ratio = {k: statistics.median(a["wall"] / b["wall"] for a, b in zip(results[k], results[base]))
             for k, base in PAIRS.items()}
    report = {
        "benchmark": "bulk_issue", "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": f"DATABASE_URL={os.environ['DATABASE_URL']} .venv/bin/python bench/bench_bulk_issue.py "
                   + " ".join(sys.argv[1:]),
        "machine": machine(), "bills": n, "lines_per_bill": len(SCHEDULE), "runs": args.runs,
        "runs_measured": results, "median_seconds": median, "bills_per_second": rate,
        "median_cpu_seconds": {k: {"client": med(k, "client_cpu"), "server": med(k, "server_cpu")} for k in LABELS},
        "ratio_to_plain_copy": ratio,
        "csv_parse_seconds": csv_parse,
        "loadavg": {"before": uptime_before, "after": open("/proc/loadavg").read().strip()},
        "target_bills_per_second": TARGET,
        "target_met": {k: rate[k] >= TARGET for k in PAIRS}, "phases_seconds": phases,
    }

    print(f"\nBulk issuance, {n:,} bills × {len(SCHEDULE)} lines, median of {args.runs} rounds "
          f"({report['machine']['nproc']} CPU, {report['machine']['cpu']})")
    print(f"{'scenario':<52}{'wall s':>8}{'bills/s':>9}{'CPU here':>10}{'CPU PG':>8}{'× its COPY':>12}")
    for key, label in LABELS.items():
        cpu = report["median_cpu_seconds"][key]
        shown = f"{ratio[key]:.2f}" if key in ratio else "1.00" if key in PAIRS.values() else "–"
        print(f"{label:<52}{median[key]:>8.2f}{rate[key]:>9,.0f}{cpu['client']:>10.2f}{cpu['server']:>8.2f}"
              f"{shown:>12}")
    print(f"parse_roster, {n:,}-row CSV: {csv_parse:.2f} s; /proc/loadavg before: {uptime_before}, "
          f"after: {report['loadavg']['after']}")
    for scenario, steps in phases.items():
        print(f"steps, {scenario}: " + ", ".join(f"{k} {v:.2f}" for k, v in steps.items()))
    print(f"target {TARGET:,} bills/s: " + ", ".join(
        f"{k} {'met' if met else 'MISSED'}" for k, met in report["target_met"].items()))

    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"bulk_issue-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
