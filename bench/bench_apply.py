"""Worker apply rate on PostgreSQL: stored bank notifications booked per second by `thuphi worker`.

    .venv/bin/python bench/bench_apply.py                         # 5,000 events, 1 and 2 workers, 3 runs each
    .venv/bin/python bench/bench_apply.py --events 5000 --runs 1 --workers 2
    .venv/bin/python bench/bench_apply.py --phases                # + where one worker's time goes (in-process)

Steps: a fresh database (``thuphi_bench_apply`` on ``BENCH_PG``, default postgres://postgres@127.0.0.1:5432);
one hospital with a generic-webhook connection and as many unpaid bills as events (``bills_bulk_issue``,
real references; payers with a phone, so each payment also queues an SMS confirmation). Per run: the
payments, receipts, outbox and statistics tables are emptied and the bills set unpaid again; N pending
``InboundEvent`` rows are inserted as the webhook endpoint stores them (97% pay one bill in full with
a bank-mangled memo, 2% carry no reference and go to suspense, 1% repeat the bank reference of an
earlier event, i.e. the same transfer reported twice, and are ignored); then W ``thuphi worker``
processes are started and the pending count is polled until it is 0.

Reported per run: the seconds from starting the workers to the last event booked ("drain", includes
Django's start-up), the booking rate after the first commit ("steady"), when the last receipt and
confirmation were done, and the workers' CPU. Each run is then checked: no event pending, every
booked event has exactly one credit that points back at it, `thuphi ledger check` exits 0. Finally
pgbench (TPC-B, 4 clients, 20 s) on the same server gives the ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import (  # noqa: E402
    exit_cleanly_on_sigterm,
    PG,
    cpu_seconds,
    fresh_database,
    ledger_check,
    loadavg,
    median,
    mangled_memo,
    pgbench_tps,
    setup_django,
    start_workers,
    stop,
    bench_world,
    wait_for_quiet,
    write_result,
)

DB = "thuphi_bench_apply"
TARGET = 2_000  # credits per second (issue 3)


def reset() -> None:
    """Empty what booking writes and set every bill unpaid again (TRUNCATE: the ledger refuses DELETE)."""
    from django.db import connection

    from thuphi.billing.models import Bill
    from thuphi.core.models import OutboxMessage
    from thuphi.monitoring.models import DailyStat, InstitutionMonthStat, MonthlyStat
    from thuphi.payments.models import Credit, InboundEvent
    from thuphi.receipts.models import ReceiptCounter

    tables = [m._meta.db_table for m in (InboundEvent, Credit, OutboxMessage, ReceiptCounter, DailyStat,
                                         MonthlyStat, InstitutionMonthStat)]
    with connection.cursor() as cur:
        cur.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        cur.execute(f"UPDATE {Bill._meta.db_table} SET amount_paid = 0, status = 'unpaid'")
    with connection.cursor() as cur:
        for table in (Bill._meta.db_table, *tables):
            cur.execute(f"VACUUM ANALYZE {table}")


def insert_events(world: list[dict], n: int, *, tag: str) -> dict:
    """N pending events, stored as `event_receive` stores them. Returns the expected outcome."""
    import datetime as dt

    from thuphi.payments.models import EventStatus, InboundEvent
    from thuphi.payments.providers import NormalizedCredit
    from thuphi.payments.services import fingerprint
    from thuphi.registry.models import BankAccount

    accounts = {a.account_number: a.pk for a in BankAccount.objects.all()}
    when = dt.datetime(2026, 11, 20, 9, 15, tzinfo=dt.timezone(dt.timedelta(hours=7)))
    rows, expected = [], {"booked": 0, "ignored": 0, "unmatched": 0}
    for i in range(n):
        place = world[i % len(world)]
        account = place["account"]
        ref, amount = place["bills"][(i // len(world)) % len(place["bills"])]
        if i % 100 == 7:  # no reference anywhere: suspense
            description, amount, bank_ref = f"CHUYEN TIEN {i} NGUYEN VAN A", 150_000 + i, f"FT{tag}{i}"
            expected["unmatched"] += 1
        elif i % 100 == 13:  # the bank transaction of the event before, reported again
            description, bank_ref = mangled_memo(i, ref), f"FT{tag}{i - 1}"
            expected["ignored"] += 1
        else:
            description, bank_ref = mangled_memo(i, ref), f"FT{tag}{i}"
        credit = NormalizedCredit(provider="generic", event_id=f"{tag}-{i}", account_number=account,
                                  virtual_account="", amount=amount, direction="in", description=description,
                                  occurred_at=when + dt.timedelta(seconds=i), bank_reference=bank_ref,
                                  is_test=False, payer_name="")
        raw = json.dumps({"id": credit.event_id, "account_number": account, "virtual_account": None,
                          "amount": amount, "description": description,
                          "transaction_date": credit.occurred_at.isoformat(), "reference_code": bank_ref,
                          "type": "credit"}, ensure_ascii=False)
        rows.append(InboundEvent(provider="generic", event_id=credit.event_id, bank_account_id=accounts[account],
                                 raw_body=raw, fingerprint=fingerprint(credit), account_number=account,
                                 virtual_account="", amount=amount, direction="in", description=description,
                                 bank_reference=bank_ref, occurred_at=credit.occurred_at, status=EventStatus.PENDING))
    InboundEvent.objects.bulk_create(rows, batch_size=2000)
    expected["booked"] = n - expected["ignored"]
    return expected


def pending_count(cur) -> int:
    cur.execute("SELECT count(*) FROM payments_inboundevent WHERE status = 'pending'")
    return cur.fetchone()[0]


def measure(url: str, workers: int, n: int, expected: dict, *, timeout: float) -> dict:
    import psycopg

    with psycopg.connect(url, autocommit=True) as poll:
        cur = poll.cursor()
        load_before = loadavg()
        t0 = time.perf_counter()
        procs = start_workers(url, workers)
        first = None
        try:
            while True:
                left = pending_count(cur)
                now = time.perf_counter()
                if first is None and left < n:
                    first = (now, n - left)
                if left == 0:
                    drained = now
                    break
                if now - t0 > timeout:
                    raise RuntimeError(f"{left} events still pending after {timeout:.0f} s")
                if any(p.poll() is not None for p in procs):
                    raise RuntimeError("a worker exited")
                time.sleep(0.05)
            # After the last booking: its receipts and confirmations (issued after commit) and the outbox.
            while True:
                cur.execute("SELECT (SELECT count(*) FROM payments_credit WHERE status = 'matched') - "
                            "(SELECT count(*) FROM receipts_receipt), "
                            "(SELECT count(*) FROM core_outboxmessage WHERE status IN ('pending', 'sending'))")
                missing, unsent = cur.fetchone()
                if missing == 0 and unsent == 0:
                    settled = time.perf_counter()
                    break
                if time.perf_counter() - t0 > timeout * 2:
                    raise RuntimeError(f"{missing} receipts missing, {unsent} messages unsent")
                time.sleep(0.1)
            cpu = sum(cpu_seconds(p.pid) for p in procs)
        finally:
            for p in procs:
                stop(p)
        cur.execute("SELECT count(*) FROM core_outboxmessage")
        messages = cur.fetchone()[0]
    booked = expected["booked"]
    steady = (n - first[1]) / (drained - first[0]) if drained > first[0] else float("nan")
    return {"workers": workers, "events": n, "credits": booked, "drain_s": round(drained - t0, 2),
            "credits_per_s": round(booked / (drained - t0), 1), "steady_events_per_s": round(steady, 1),
            "settled_s": round(settled - t0, 2), "messages": messages,
            "worker_cpu_ms_per_event": round(cpu / n * 1000, 3), "load_before": load_before,
            "load_after": loadavg()}


def verify(url: str, expected: dict) -> dict:
    from django.db.models import Count

    from thuphi.payments.models import Credit, EventStatus, InboundEvent

    by_status = dict(InboundEvent.objects.values_list("status").annotate(n=Count("id")))
    problems = []
    if by_status.get(EventStatus.PENDING, 0):
        problems.append(f"{by_status[EventStatus.PENDING]} events pending")
    if by_status.get(EventStatus.APPLIED, 0) != expected["booked"]:
        problems.append(f"applied {by_status.get(EventStatus.APPLIED, 0)} != {expected['booked']}")
    if by_status.get(EventStatus.IGNORED, 0) != expected["ignored"]:
        problems.append(f"ignored {by_status.get(EventStatus.IGNORED, 0)} != {expected['ignored']}")
    credits = Credit.objects.count()
    linked = Credit.objects.filter(event__status=EventStatus.APPLIED).values("event_id").distinct().count()
    if not (credits == linked == expected["booked"]):
        problems.append(f"credits {credits}, linked to distinct applied events {linked}, expected {expected['booked']}")
    unmatched = Credit.objects.filter(status="unmatched").count()
    if unmatched != expected["unmatched"]:
        problems.append(f"unmatched {unmatched} != {expected['unmatched']}")
    check = ledger_check(url)
    if check.returncode != 0:
        problems.append("thuphi ledger check failed: " + (check.stdout + check.stderr)[-500:])
    return {"ok": not problems, "problems": problems, "events": by_status}


def phases(world: list[dict], n: int) -> dict:
    """One worker's apply loop in this process: the time and the SQL statements of each step."""
    from django.db import connection

    from thuphi.monitoring import services as monitoring
    from thuphi.payments import notify
    from thuphi.payments.statements import booking
    from thuphi.payments.tasks import apply_pending

    spent: dict[str, float] = {}
    queries: dict[str, int] = {}
    current = ["claim, duplicate check, links, event statuses, commit"]

    def timed(owner, name: str, label: str):
        original = getattr(owner, name)

        def run(*args, **kwargs):  # (the timed steps never call one another)
            current.append(label)
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - start
                current.pop()
        setattr(owner, name, run)
        return owner, name, original

    def count(execute, sql, params, many, context):
        queries[current[-1]] = queries.get(current[-1], 0) + 1
        return execute(sql, params, many, context)

    reset()
    insert_events(world, n, tag="P")
    patches = [timed(booking, "credit_book_many", "credit_book_many (credits, ledger, allocations, bills)"),
               timed(monitoring, "stats_on_credits_booked", "monitoring statistics (one batch call)"),
               timed(notify, "after_commit_many", "receipts and SMS confirmations (after commit, one batch call)")]
    cpu0, t0 = time.process_time(), time.perf_counter()
    try:
        with connection.execute_wrapper(count):
            while apply_pending():
                pass
    finally:
        for owner, name, original in patches:
            setattr(owner, name, original)
    total = time.perf_counter() - t0
    label = current[0]
    spent[label] = total - sum(v for k, v in spent.items() if k != label)
    return {"events": n, "seconds": round(total, 2), "events_per_s": round(n / total, 1),
            "cpu_ms_per_event": round((time.process_time() - cpu0) / n * 1000, 3),
            "steps": {k: {"seconds": round(v, 2), "ms_per_event": round(v / n * 1000, 3),
                          "statements_per_event": round(queries.get(k, 0) / n, 2)} for k, v in spent.items()},
            "load": loadavg()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=5_000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--institutions", type=int, default=1)
    ap.add_argument("--no-contacts", action="store_true", help="payers without phone: no SMS confirmations")
    ap.add_argument("--phases", action="store_true", help="also time the steps of one in-process worker")
    ap.add_argument("--no-pgbench", action="store_true")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--quick", action="store_true", help="2,000 events, 1 run per worker count")
    ap.add_argument("--quiet-wait", type=float, default=0, metavar="S",
                    help="before each measured run, wait up to S seconds for the load average to drop")
    ap.add_argument("--quiet-load", type=float, default=1.0, help="...below this (default 1.0)")
    args = ap.parse_args()
    exit_cleanly_on_sigterm()
    if args.quick:
        args.events, args.runs = min(args.events, 2_000), 1
    started = time.time()
    print(f"bench_apply: {args.events} events, workers {args.workers}, {args.runs} run(s), on {PG}/{DB}", flush=True)
    url = fresh_database(DB)
    setup_django(url)
    from django.db import connection

    world = bench_world(bills=args.events, institutions=args.institutions, contacts=not args.no_contacts)
    runs: dict[int, list[dict]] = {}
    failures = []
    for workers in args.workers:
        for run in range(args.runs):
            reset()
            expected = insert_events(world, args.events, tag=f"W{workers}R{run}")
            connection.close()
            wait_for_quiet(args.quiet_load, args.quiet_wait)
            result = measure(url, workers, args.events, expected, timeout=args.timeout)
            result["verify"] = verify(url, expected)
            if not result["verify"]["ok"]:
                failures.append(result["verify"]["problems"])
            runs.setdefault(workers, []).append(result)
            print(f"  {workers} worker(s), run {run + 1}: {result['credits_per_s']:,.0f} credits/s "
                  f"(drain {result['drain_s']} s, steady {result['steady_events_per_s']:,.0f} events/s, "
                  f"receipts and messages done at {result['settled_s']} s), worker CPU "
                  f"{result['worker_cpu_ms_per_event']} ms/event, load {result['load_before'][0]:.2f} -> "
                  f"{result['load_after'][0]:.2f}, checks {'ok' if result['verify']['ok'] else 'FAILED'}",
                  flush=True)
    phase = None
    if args.phases:
        phase = phases(world, min(args.events, 10_000))
        print("  one worker in-process:", json.dumps(phase, ensure_ascii=False), flush=True)
    connection.close()
    tps = None if args.no_pgbench else pgbench_tps()
    summary = {}
    for workers, rs in runs.items():
        rate = median([r["credits_per_s"] for r in rs])
        steady = median([r["steady_events_per_s"] for r in rs])
        summary[workers] = {"credits_per_s_median": rate, "steady_events_per_s_median": steady,
                            "vs_pgbench": round(rate / tps, 3) if tps else None,
                            "target_met": rate >= TARGET}
        print(f"{workers} worker(s): median {rate:,.0f} credits/s (steady {steady:,.0f} events/s)"
              + (f", {rate / tps:.2f} x pgbench TPC-B ({tps:,.0f} tps)" if tps else "")
              + f"; target {TARGET:,}/s {'met' if rate >= TARGET else 'MISSED'}", flush=True)
    path = write_result("apply", {"args": vars(args), "runs": runs, "summary": summary, "pgbench_tps": tps,
                                  "phases": phase, "seconds": round(time.time() - started)})
    print("written", path)
    if failures:
        print("CHECKS FAILED:", failures, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
