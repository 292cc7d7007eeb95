"""Benchmark: a one-million-line bank statement read, matched and booked on PostgreSQL.

    .venv/bin/python bench/bench_statement.py                  # 1,000,000 lines, median of 3 runs
    .venv/bin/python bench/bench_statement.py --lines 100000 --runs 1
    .venv/bin/python bench/bench_statement.py --lines 50000 --runs 1 --phases   # where the time goes
    .venv/bin/python bench/bench_statement.py --lines 50000 --runs 1 --profile  # cProfile of the client

The server is ``BENCH_PG`` (default ``postgres://postgres@127.0.0.1:5432``), database ``thuphi_bench_stmt``.

What it does:
1. creates the PostgreSQL database ``thuphi_bench_stmt`` (psql) and migrates it;
2. issues the bills once (reused by later invocations): one institution, 10,000 payers and
   ``lines - 2%`` bills with valid references and one fee line each, written with COPY;
3. writes a Vietcombank-layout CSV of ``lines`` credits: 98% carry a bill's reference in a memo
   mangled the way banks do (prefix, trace number, suffix), 2% carry none (they go to suspense and
   are identified by fingerprint, having no bank reference either);
4. times ``statement_import`` (parse + match + book, the whole service) per run, resetting the
   payments and statistics tables and the bills between runs (TRUNCATE: the ledger's row triggers
   refuse DELETE), with the CPU seconds of this process and of its PostgreSQL backend;
5. after the first run checks the ledger (`ledger_check().ok`), the monitoring statistics against a
   rebuild (`stats_check()`), that exactly the referenced bills are paid, and that importing the
   same file again books nothing.

Prints seconds, lines/s, the machine and the load average (the workplace's cores are shared).
Target (issue): < 60 s for 1,000,000 lines.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

DB = "thuphi_bench_stmt"
ACCOUNT = "1023456789"
ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432").rstrip("/")


def psql(sql: str, db: str = "postgres") -> str:
    """Run statements separated by ";" one by one (VACUUM refuses to share a transaction)."""
    cmds = [c.strip() for c in sql.split(";") if c.strip()]
    args = ["psql", f"{PG}/{db}", "-v", "ON_ERROR_STOP=1", "-qAt"]
    for c in cmds:
        args += ["-c", c]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()


def setup_django() -> None:
    if not psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB}'"):
        psql(f"CREATE DATABASE {DB}")
    os.environ["DATABASE_URL"] = f"{PG}/{DB}"
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thuphi.config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def issue_bills(n_bills: int):
    """One institution, its payers and n_bills unpaid bills; reused when already there."""
    from django.db import transaction

    from thuphi.billing.models import Bill, BillLine, BillStatus, FeeKind
    from thuphi.billing.services import qr_payload_for
    from thuphi.billing import reference as refcode
    from thuphi.payments.statements.booking import RowWriter, allocate_ids
    from thuphi.registry.models import BankAccount, Commune, Institution, Payer
    from thuphi.registry.services import BankAccountInput, institution_create

    inst = Institution.objects.filter(code="BENCH-STMT").first()
    if inst is None:
        commune = Commune.objects.filter(province_id="24").order_by("code").first()
        inst = institution_create(actor=None, code="BENCH-STMT", name="Bệnh viện Đa khoa tỉnh (benchmark)",
                                  sector="health", kind="provincial_hospital", ownership="public",
                                  commune_code=commune.code, bank_accounts=[BankAccountInput(
                                      bank_bin="970436", account_number=ACCOUNT, account_name="BV DA KHOA TINH")])
    account = BankAccount.objects.get(institution=inst, account_number=ACCOUNT)
    have = Bill.objects.filter(institution=inst).count()
    if have >= n_bills:
        refs = list(Bill.objects.filter(institution=inst).order_by("id").values_list("reference", "amount_due")
                    [:n_bills])
        return account, refs
    if not Payer.objects.filter(institution=inst).exists():
        Payer.objects.bulk_create([Payer(institution=inst, kind="patient", code=f"BN{i:06d}", name=f"Người bệnh {i}")
                                   for i in range(10_000)], batch_size=5000)
    payer_ids = list(Payer.objects.filter(institution=inst).values_list("id", flat=True))
    rng = random.Random(2026)
    taken = set(Bill.objects.values_list("reference", flat=True))
    today = dt.date(2026, 11, 1)
    t0 = time.monotonic()
    todo = n_bills - have
    batch = 50_000
    while todo > 0:
        n = min(batch, todo)
        with transaction.atomic():
            now = dt.datetime.now(dt.timezone.utc)
            bills = RowWriter(Bill, ("id", "institution_id", "payer_id", "bank_account_id", "reference", "title",
                                     "status", "issue_date", "due_date", "amount_gross", "amount_discount",
                                     "amount_due", "amount_paid", "qr_payload"), now=now)
            lines = RowWriter(BillLine, ("bill_id", "name", "kind", "amount", "discount", "position"), now=now)
            for bid in allocate_ids(Bill, n):
                ref = refcode.generate(rng)
                while ref in taken:
                    ref = refcode.generate(rng)
                taken.add(ref)
                amount = rng.choice((150_000, 334_520, 450_000, 884_520, 1_334_520, 2_500_000))
                bills.add((bid, inst.pk, rng.choice(payer_ids), account.pk, ref, "Viện phí đợt 11/2026",
                           BillStatus.UNPAID.value, today, today + dt.timedelta(days=30), amount, 0, amount, 0,
                           qr_payload_for(bank_account=account, amount=amount, reference=ref)))
                lines.add((bid, "Viện phí", FeeKind.HOSPITAL_FEE.value, amount, 0, 0))
            bills.flush()
            lines.flush()
        todo -= n
        print(f"  bills issued: {n_bills - todo:,} ({time.monotonic() - t0:.0f} s)", flush=True)
    psql("VACUUM ANALYZE billing_bill; VACUUM ANALYZE billing_billline;", DB)
    refs = list(Bill.objects.filter(institution=inst).order_by("id").values_list("reference", "amount_due")[:n_bills])
    return account, refs


def write_statement(path: Path, refs: list[tuple[str, int]], n_lines: int) -> None:
    """A Vietcombank-layout CSV: preamble, header, the lines, a totals row."""
    rng = random.Random(7)
    start = dt.datetime(2026, 11, 1, 7, 0, 0)
    with_ref = len(refs)
    out = [
        "NGÂN HÀNG TMCP NGOẠI THƯƠNG VIỆT NAM (VIETCOMBANK)",
        "SAO KÊ TÀI KHOẢN / STATEMENT OF ACCOUNT",
        f"Số tài khoản / Account number:,{ACCOUNT}",
        "Loại tiền / Currency:,VND",
        "",
        "STT,Ngày giao dịch,Số tham chiếu,Số tiền ghi nợ,Số tiền ghi có,Số dư,Mô tả",
    ]
    ref_slots = set(rng.sample(range(n_lines), with_ref)) if with_ref < n_lines else set(range(n_lines))
    k = 0
    total = 0
    for i in range(n_lines):
        when = start + dt.timedelta(seconds=2 * i)
        stamp = when.strftime("%d/%m/%Y %H:%M:%S")
        if i in ref_slots and k < with_ref:
            ref, amount = refs[k]
            k += 1
            trace = rng.randrange(100000, 999999)
            memo = rng.choice((
                f"MBVCB.{rng.randrange(10**9, 10**10)}.{trace}.{ref} NOP VIEN PHI GD {trace}-{when:%d%m%y %H:%M:%S}",
                f"IBFT {ref[:5]} {ref[5:]} THANH TOAN VIEN PHI Trace {trace}",
                f"{ref} NGUYEN VAN A NOP TIEN",
                f"CT DEN:{trace} THANHTOAN{ref}VIENPHI",
            ))
            bank_ref = f"{5000 + i // 100000}.{i:07d}"
        else:
            amount = rng.choice((50_000, 100_000, 200_000))
            memo = rng.choice(("UNG HO QUY BENH NHAN NGHEO", "CHUYEN TIEN", "NOP TIEN KHAM BENH"))
            memo = f"{memo} {rng.randrange(10**6)}"
            bank_ref = ""
        total += amount
        out.append(f'{i + 1},{stamp},{bank_ref},,"{amount:,}",,{memo}')
    out.append(f',Tổng cộng / Total,,,"{total:,}",,')
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def reset() -> None:
    from django.apps import apps

    tables = {m._meta.db_table for m in apps.get_app_config("monitoring").get_models() if m.__name__.endswith("Stat")}
    existing = set(psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", DB).split())
    stats = ", ".join(sorted(tables & existing))
    psql("TRUNCATE payments_statementlinerecord, payments_statementimport, payments_allocation, "
         f"payments_ledgerentry, payments_ledgertransaction, payments_credit, {stats} CASCADE; "
         "UPDATE billing_bill SET amount_paid = 0, status = 'unpaid' WHERE amount_paid <> 0 OR status <> 'unpaid'; "
         "VACUUM ANALYZE billing_bill; VACUUM ANALYZE billing_billline; CHECKPOINT", DB)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process on this machine (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Phases:
    """Wall seconds spent in each database step of the booking (--phases): the writes, the bill
    update, the id allocation, the commits; what is left of a chunk is look-ups and Python."""

    def __init__(self):
        import collections

        self.seconds = collections.Counter()

    def wrap(self, owner, name: str, label):
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            t = time.monotonic()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label(args) if callable(label) else label] += time.monotonic() - t

        setattr(owner, name, timed)

    def install(self):
        from django.db.backends.base.base import BaseDatabaseWrapper

        from thuphi.payments.statements import booking, service

        self.wrap(booking.RowWriter, "flush", lambda a: "COPY " + a[0].table)
        self.wrap(booking, "update_bills", "UPDATE bills")
        self.wrap(booking, "allocate_ids", "ids (nextval)")
        self.wrap(booking, "_lock_bills", "lock + read bills")
        self.wrap(service, "stats_add_booked", "statistics")
        self.wrap(service, "credit_book_many", "credit_book_many (all of it)")
        self.wrap(service, "_book_chunk", "chunks (all of it)")
        self.wrap(service, "parse_statement", "parse")
        self.wrap(BaseDatabaseWrapper, "_commit", "COMMIT (deferred FK checks)")

    def print(self, wall: float) -> None:
        for k, v in sorted(self.seconds.items(), key=lambda kv: -kv[1]):
            print(f"    {k:32s} {v:8.2f} s  {100 * v / wall:5.1f} %")


def machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    mem = next((int(ln.split()[1]) // 1024 // 1024 for ln in open("/proc/meminfo") if ln.startswith("MemTotal")), 0)
    pg = psql("SHOW server_version") + ", shared_buffers " + psql("SHOW shared_buffers") + \
        ", max_wal_size " + psql("SHOW max_wal_size")
    return (f"{os.cpu_count()} cores ({cpu}), {mem} GiB RAM, PostgreSQL {pg}, Python {platform.python_version()}, "
            f"{dt.date.today().isoformat()}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-ref-share", type=float, default=0.02)
    ap.add_argument("--phases", action="store_true", help="time each database step of the booking")
    ap.add_argument("--profile", action="store_true", help="cProfile of the client (first run)")
    ap.add_argument("--no-checks", action="store_true", help="skip the ledger/statistics checks after run 1")
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()
    setup_django()
    from django.db import connection

    from thuphi.billing.models import Bill
    from thuphi.monitoring.stats import stats_check
    from thuphi.payments.ledger import ledger_check
    from thuphi.payments.statements.parsers import PRESETS, parse_statement
    from thuphi.payments.statements.service import statement_import

    n_bills = args.lines - int(args.lines * args.no_ref_share)
    print(f"machine: {machine()}")
    account, refs = issue_bills(n_bills)
    # Named after the bills it pays, so a cached file never refers to another database's bills.
    digest = hashlib.sha256("".join(r for r, _a in refs).encode()).hexdigest()[:12]
    path = Path(f"/tmp/bench_statement_{args.lines}_{digest}.csv")
    if not path.exists():
        write_statement(path, refs, args.lines)
    data = path.read_bytes()
    print(f"statement: {path} ({len(data) / 1e6:.0f} MB, {args.lines:,} lines, {len(refs):,} with a reference)")
    t, cpu = time.monotonic(), time.process_time()
    parsed = parse_statement(data, filename=path.name, mapping=PRESETS["vcb"])
    print(f"parse only: {time.monotonic() - t:.1f} s wall, {time.process_time() - cpu:.1f} s CPU "
          f"({len(parsed.lines):,} lines, {len(parsed.errors)} errors)")
    del parsed
    phases = Phases() if args.phases else None
    if phases:
        phases.install()
    runs = []
    for run in range(args.runs):
        reset()
        connection.ensure_connection()
        with connection.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            backend = cur.fetchone()[0]
        if phases:
            phases.seconds.clear()
        load = os.getloadavg()
        t, cpu, server = time.monotonic(), time.process_time(), cpu_seconds(backend)
        prof = None
        if args.profile and run == 0:
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
        report = statement_import(actor=None, bank_account=account, file_bytes=data, filename=path.name,
                                  mapping=PRESETS["vcb"])
        if prof:
            prof.disable()
        wall = time.monotonic() - t
        cpu, server = time.process_time() - cpu, cpu_seconds(backend) - server
        after = os.getloadavg()
        runs.append({"wall": wall, "client_cpu": cpu, "server_cpu": server, "load_before": load, "load_after": after})
        print(f"run {run + 1}: {wall:.1f} s wall, {args.lines / wall:,.0f} lines/s; CPU {cpu:.1f} s in this process, "
              f"{server:.1f} s in its PostgreSQL backend; new {report.new_credits:,}, matched {report.matched:,}, "
              f"unmatched {report.unmatched:,}, errors {len(report.errors)}; load average {load[0]:.2f} before, "
              f"{after[0]:.2f} after", flush=True)
        if phases:
            phases.print(wall)
            runs[-1]["phases"] = dict(phases.seconds)
        if prof:
            import pstats

            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        assert report.new_credits == args.lines and report.matched == len(refs), report.as_text()[:2000]
        if run == 0 and not args.no_checks:
            t = time.monotonic()
            check = ledger_check()
            paid = Bill.objects.filter(institution=account.institution, status="paid").count()
            print(f"  ledger_check ok={check.ok} ({time.monotonic() - t:.0f} s); bills paid: {paid:,} "
                  f"of {len(refs):,} referenced")
            assert check.ok and paid == len(refs), check.problems[:5]
            t = time.monotonic()
            drift = stats_check()
            print(f"  statistics = rebuild from the ledger: {not drift} ({time.monotonic() - t:.0f} s)")
            assert not drift, drift[:5]
            again = statement_import(actor=None, bank_account=account, file_bytes=data, filename=path.name,
                                     mapping=PRESETS["vcb"])
            print(f"  same file again: {again.new_credits} new, {again.duplicates:,} duplicates, "
                  f"{again.seconds:.1f} s")
            assert again.new_credits == 0
    times = [r["wall"] for r in runs]
    med = statistics.median(times)
    print(f"RESULT: {args.lines:,} lines, median {med:.1f} s over {len(times)} run(s) "
          f"({', '.join(f'{x:.1f}' for x in times)}), {args.lines / med:,.0f} lines/s; target < 60 s")
    if args.json:
        import json

        Path(args.json).write_text(json.dumps({"lines": args.lines, "machine": machine(), "runs": runs,
                                               "median_wall": med}, indent=1, default=str))


if __name__ == "__main__":
    main()
