"""Webhook acknowledgement throughput and latency, and the worker's apply rate, on PostgreSQL.

    .venv/bin/python bench/bench_webhooks.py [--events 20000] [--bills 2000]

Steps: fresh database; an institution with a generic connection and bills; signed notifications
prepared in advance; gunicorn (4 processes × 2 threads, PAYMENTS_APPLY_INLINE=0) acknowledges them
as fast as 4 client processes can send (throughput), then at a fixed 200/s (latency); then two
`thuphi worker --once` processes apply everything (apply rate); pgbench TPC-B for the ratio.
The load generator runs on the same 2 cores as the server: figures are for the whole machine.
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import (  # noqa: E402
    THUPHI,
    fresh_database,
    median,
    percentile,
    pgbench_tps,
    setup_django,
    start_server,
    write_result,
)

SECRET = "bench-generic-secret-0123456789"
PORT = 8931


def prepare(n_bills: int) -> tuple[str, list[tuple[str, int]]]:
    import datetime as dt

    from thuphi.billing.services import LineInput, bill_create
    from thuphi.payments.services import connection_set
    from thuphi.registry.models import Commune
    from thuphi.registry.services import BankAccountInput, institution_create, payer_upsert

    commune = Commune.objects.filter(province_id="24").order_by("code").first()
    inst = institution_create(actor=None, code="BENCH-WH", name="Bệnh viện Bench", sector="health",
                              kind="provincial_hospital", ownership="public", commune_code=commune.code,
                              bank_accounts=[BankAccountInput(bank_bin="970436", account_number="0999888777",
                                                              account_name="BENH VIEN BENCH")])
    account = inst.bank_accounts.get()
    connection_set(bank_account=account, provider="generic", secret=SECRET)
    bills = []
    due = dt.date.today() + dt.timedelta(days=30)
    for i in range(n_bills):
        payer = payer_upsert(institution=inst, code=f"BN{i:06d}", name=f"Người bệnh {i}")
        b = bill_create(actor=None, institution=inst, payer=payer, due_date=due,
                        items=[LineInput(name="Viện phí", amount=100_000 + i, kind="hospital_fee")])
        bills.append((b.reference, b.amount_due))
    return account.account_number, bills


def signed_requests(account: str, bills, n: int, prefix: str) -> list[tuple[bytes, str]]:
    from thuphi.payments.providers import sign_generic

    now = int(time.time())
    out = []
    for i in range(n):
        ref, amount = bills[i % len(bills)]
        body = json.dumps({"id": f"{prefix}{i}", "account_number": account, "virtual_account": None,
                           "amount": amount, "description": f"MBVCB.{i}.{ref} THANH TOAN VIEN PHI",
                           "transaction_date": "2026-11-20T09:15:00+07:00", "reference_code": f"FT{prefix}{i}",
                           "type": "credit"}).encode()
        out.append((body, sign_generic(secret=SECRET, raw_body=body, timestamp=now)))
    return out


def client(chunk, rate_per_s, q):
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    lat, bad = [], 0
    start = time.perf_counter()
    for k, (body, sig) in enumerate(chunk):
        if rate_per_s:
            target = start + k / rate_per_s
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        t0 = time.perf_counter()
        for attempt in range(3):
            try:
                conn.request("POST", "/api/v1/webhooks/generic", body=body,
                             headers={"Content-Type": "application/json", "Thuphi-Signature": sig})
                resp = conn.getresponse()
                resp.read()
                break
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        else:
            bad += 1
            continue
        lat.append((time.perf_counter() - t0) * 1000)
        if resp.status != 200:
            bad += 1
    q.put((lat, bad))


def blast(reqs, *, procs: int, rate_total: float | None) -> dict:
    q = mp.Queue()
    chunks = [reqs[i::procs] for i in range(procs)]
    ps = [mp.Process(target=client, args=(c, (rate_total / procs) if rate_total else None, q)) for c in chunks]
    t0 = time.perf_counter()
    for p in ps:
        p.start()
    results = [q.get() for _ in ps]
    for p in ps:
        p.join()
    elapsed = time.perf_counter() - t0
    lat = [x for r in results for x in r[0]]
    return {"requests": len(reqs), "errors": sum(r[1] for r in results), "seconds": round(elapsed, 2),
            "per_second": round(len(reqs) / elapsed, 1), "p50_ms": round(percentile(lat, 50), 2),
            "p95_ms": round(percentile(lat, 95), 2), "p99_ms": round(percentile(lat, 99), 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--bills", type=int, default=2_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    url = fresh_database("thuphi_bench_wh")
    setup_django(url)
    account, bills = prepare(args.bills)
    from django.db import connection

    connection.close()
    server = start_server(url, port=PORT)
    try:
        throughput = []
        for run in range(args.runs):
            reqs = signed_requests(account, bills, args.events, prefix=f"T{run}-")
            throughput.append(blast(reqs, procs=4, rate_total=None))
            print("throughput run", run, throughput[-1], flush=True)
        latency = blast(signed_requests(account, bills, 3_000, prefix="L-"), procs=4, rate_total=200)
        print("latency at 200/s", latency, flush=True)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait()
    from thuphi.payments.models import InboundEvent

    pending = InboundEvent.objects.filter(status="pending").count()
    connection.close()
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    t0 = time.perf_counter()
    workers = [subprocess.Popen([THUPHI, "worker", "--once"], env=env) for _ in range(2)]
    for w in workers:
        w.wait()
    # --once drains one batch per call; loop until nothing is pending.
    while InboundEvent.objects.filter(status="pending").exists():
        connection.close()
        ws = [subprocess.Popen([THUPHI, "worker", "--once"], env=env) for _ in range(2)]
        for w in ws:
            w.wait()
    apply_seconds = time.perf_counter() - t0
    check = subprocess.run([THUPHI, "ledger", "check"], env=env, capture_output=True, text=True)
    tps = pgbench_tps()
    ack = median([r["per_second"] for r in throughput])
    result = {
        "events_per_run": args.events, "ack_runs": throughput, "ack_median_per_s": ack,
        "latency_at_200_per_s": latency, "applied": pending, "apply_seconds": round(apply_seconds, 2),
        "apply_per_s": round(pending / apply_seconds, 1), "pgbench_tps": tps,
        "ack_vs_pgbench": round(ack / tps, 3), "apply_vs_pgbench": round(pending / apply_seconds / tps, 3),
        "ledger_check": check.returncode == 0,
    }
    print(json.dumps(result, indent=2))
    print("written", write_result("webhooks", result))


if __name__ == "__main__":
    main()
