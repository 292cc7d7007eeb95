"""Crash test: kill -9 the web server and the workers while signed webhooks pour in, restart them, let
the providers retry, and prove every notification was booked exactly once.

    .venv/bin/python bench/crash_webhooks.py                 # 4,000 events, 10% delivered twice, 2 crashes
    .venv/bin/python bench/crash_webhooks.py --events 1000 --kills 1 --seed 7

Steps:
1. a fresh PostgreSQL database (``thuphi_bench_crash`` on ``BENCH_PG``), migrated; a hospital with a
   generic-webhook connection and unpaid bills (``bills_bulk_issue``: real references and VietQR,
   payers with phones, as in the demo);
2. granian, as in production (``PAYMENTS_APPLY_INLINE=0``), and two ``thuphi worker`` processes;
3. the events: each a unique id and bank reference; most pay one bill (in full, in part, or more than
   it owes), some name two bills, some no bill (suspense); ``--duplicates`` of the deliveries are sent
   twice; all shuffled and sent by 4 clients;
4. during the load, ``--kills`` times: SIGKILL to the whole server (master and workers) and to both
   worker processes at once, then both restarted; requests in flight get no answer;
5. the providers' retries: every event not acknowledged with a 2xx is sent again until it is, then
   every event once more;
6. wait until no event is pending and every matched credit has its receipt (the worker's sweep issues
   those a crash left behind);
7. checks, any failure exits 1: ``thuphi ledger check`` exits 0; every event id is stored once and
   applied; every event id and every bank reference has exactly one credit; no event conflict;
   each bill's ``amount_paid`` equals the sum of its allocations and the money the events sent it;
   every matched credit has exactly one receipt.
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from bench_webhooks import Client  # noqa: E402
from common import (  # noqa: E402
    exit_cleanly_on_sigterm,
    PG,
    bench_world,
    fresh_database,
    generic_body,
    ledger_check,
    mangled_memo,
    setup_django,
    start_server,
    start_workers,
    stop,
    write_result,
)

DB = "thuphi_bench_crash"
PORT = 8932


def plan_events(world: list[dict], n: int, rng: random.Random) -> list[dict]:
    """n events with unique ids and bank references, and what each should do to which bill."""
    bills = world[0]["bills"]
    events = []
    for i in range(n):
        roll = rng.random()
        ref, due = bills[i % len(bills)]
        if roll < 0.05:  # no reference: suspense
            memo, amount, pays = f"CHUYEN TIEN {i} NGUYEN VAN A", 100_000 + i, []
        elif roll < 0.10:  # two children's bills in one transfer
            ref2, due2 = bills[(i + 7) % len(bills)]
            memo, amount, pays = f"{ref} {ref2} hai con", due + due2 + 1_000, [ref, ref2]
        elif roll < 0.30:  # part payment
            memo, amount, pays = mangled_memo(i, ref), 200_000 + i, [ref]
        else:
            memo, amount, pays = mangled_memo(i, ref), due, [ref]
        event_id = f"CRASH-{i:06d}"
        events.append({"id": event_id, "amount": amount, "pays": pays,
                       "body": generic_body(event_id=event_id, account=world[0]["account"], amount=amount,
                                            description=memo, reference_code=f"FTC{i:06d}")})
    return events


class Rig:
    """The server and the workers, which the test kills and restarts."""

    def __init__(self, url: str, workers: int):
        self.url, self.n_workers = url, workers
        self.server = None
        self.workers = []
        self.kills = []

    def start(self) -> None:
        self.workers = start_workers(self.url, self.n_workers)
        self.server = start_server(self.url, port=PORT, worker_class="granian", workers=2, threads=8)

    def kill(self) -> None:
        """SIGKILL to the whole server process group and to every worker, at once."""
        t = time.time()
        for p in [self.server, *self.workers]:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in [self.server, *self.workers]:
            p.wait()
        self.kills.append(t)

    def stop(self) -> None:
        for p in [self.server, *self.workers]:
            if p is not None:
                stop(p)


def send_all(bodies: list[tuple[str, bytes]], *, clients: int, acked: set[str], lock: threading.Lock,
             progress: list[int], fail_fast: bool) -> None:
    """Send each body once (clients in parallel); record the ids answered 200."""
    queue = list(bodies)
    qlock = threading.Lock()

    def run() -> None:
        c = Client(PORT)
        while True:
            with qlock:
                if not queue:
                    break
                event_id, body = queue.pop()
            try:
                status, answer = c.post(body)
            except OSError:
                c.close()
                if fail_fast:
                    time.sleep(0.01)
                status, answer = 0, b""
            with lock:
                progress[0] += 1
                if 200 <= status < 300 and b'"success": true' in answer:
                    acked.add(event_id)
        c.close()

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def wait_settled(timeout: float) -> dict:
    """Until no event is pending and every matched credit has a receipt (the sweep runs once a minute)."""
    from django.db import connection

    deadline = time.time() + timeout
    while True:
        with connection.cursor() as cur:
            cur.execute("SELECT (SELECT count(*) FROM payments_inboundevent WHERE status = 'pending'), "
                        "(SELECT count(*) FROM payments_credit c WHERE c.status = 'matched' AND NOT EXISTS "
                        "(SELECT 1 FROM receipts_receipt r WHERE r.credit_id = c.id))")
            pending, no_receipt = cur.fetchone()
        connection.close()
        if pending == 0 and no_receipt == 0:
            return {"pending": 0, "without_receipt": 0}
        if time.time() > deadline:
            return {"pending": pending, "without_receipt": no_receipt}
        time.sleep(1)


def check(url: str, events: list[dict]) -> list[str]:
    from django.db import connection
    from django.db.models import Count, Sum

    from thuphi.billing.models import Bill
    from thuphi.payments.models import Allocation, Credit, EventConflict, InboundEvent
    from thuphi.receipts.models import Receipt

    problems: list[str] = []
    result = ledger_check(url)
    if result.returncode != 0:
        problems.append("thuphi ledger check exited %s: %s" % (result.returncode, (result.stdout + result.stderr)[-800:]))
    ids = {e["id"] for e in events}
    stored = dict(InboundEvent.objects.values_list("event_id").annotate(n=Count("id")))
    if set(stored) != ids or any(n != 1 for n in stored.values()):
        problems.append(f"events stored: {len(stored)} ids for {len(ids)} sent, "
                        f"{sum(1 for n in stored.values() if n != 1)} stored more than once")
    statuses = dict(InboundEvent.objects.values_list("status").annotate(n=Count("id")))
    if statuses != {"applied": len(ids)}:
        problems.append(f"event statuses {statuses}, expected all {len(ids)} applied")
    per_event = dict(Credit.objects.filter(event__isnull=False).values_list("event__event_id").annotate(n=Count("id")))
    missing = ids - set(per_event)
    twice = [k for k, n in per_event.items() if n != 1]
    if missing or twice or Credit.objects.filter(event__isnull=True).exists():
        problems.append(f"credits per event: {len(missing)} events without a credit, {len(twice)} with more than "
                        f"one, {Credit.objects.filter(event__isnull=True).count()} credits without an event")
    per_ref = Credit.objects.values("bank_reference").annotate(n=Count("id")).filter(n__gt=1)
    if per_ref.exists() or Credit.objects.count() != len(ids):
        problems.append(f"{per_ref.count()} bank references booked more than once; {Credit.objects.count()} credits "
                        f"for {len(ids)} events")
    if EventConflict.objects.exists():
        problems.append(f"{EventConflict.objects.count()} event conflicts (a resend is the same body)")
    allocations = dict(Allocation.objects.values_list("bill__reference").annotate(s=Sum("amount")))
    wrong = []
    for ref, paid in Bill.objects.filter(amount_paid__gt=0).values_list("reference", "amount_paid"):
        if allocations.get(ref, 0) != paid:
            wrong.append(f"{ref}: amount_paid {paid}, allocations {allocations.get(ref, 0)}")
    for ref in set(allocations) - set(Bill.objects.filter(amount_paid__gt=0).values_list("reference", flat=True)):
        wrong.append(f"{ref}: allocations {allocations[ref]} but nothing paid")
    if wrong:
        problems.append(f"{len(wrong)} bills whose amount_paid is not their allocations: {wrong[:5]}")
    matched_money = sum(e["amount"] for e in events if e["pays"])
    total_paid = Bill.objects.aggregate(s=Sum("amount_paid"))["s"] or 0
    if total_paid != matched_money:
        problems.append(f"bills received {total_paid} đ in all; the events carrying a reference sent {matched_money} đ")
    per_bill_expected: dict[str, int] = {}
    for e in events:
        if len(e["pays"]) == 1:
            per_bill_expected[e["pays"][0]] = per_bill_expected.get(e["pays"][0], 0) + e["amount"]
    two_bill_refs = {r for e in events if len(e["pays"]) == 2 for r in e["pays"]}
    off = [r for r, amount in per_bill_expected.items() if r not in two_bill_refs and allocations.get(r, 0) != amount]
    if off:
        problems.append(f"{len(off)} bills (paid by single-bill events only) whose allocations differ from what "
                        f"the events sent them, e.g. {off[:3]}")
    no_receipt = Credit.objects.filter(status="matched", receipt__isnull=True).count()
    receipts = Receipt.objects.count()
    if no_receipt or receipts != Credit.objects.filter(status="matched").count():
        problems.append(f"{no_receipt} matched credits without a receipt; {receipts} receipts")
    connection.close()
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=4_000)
    ap.add_argument("--duplicates", type=float, default=0.10, help="share of events delivered twice in the load")
    ap.add_argument("--kills", type=int, default=2)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=20261120)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--quick", action="store_true", help="1,000 events, 1 crash")
    args = ap.parse_args()
    exit_cleanly_on_sigterm()
    if args.quick:
        args.events, args.kills = min(args.events, 1_000), min(args.kills, 1)
    rng = random.Random(args.seed)
    started = time.time()
    print(f"crash_webhooks: {args.events} events, {args.duplicates:.0%} delivered twice, {args.kills} crash(es), "
          f"seed {args.seed}, on {PG}/{DB}", flush=True)
    url = fresh_database(DB)
    setup_django(url)
    from django.db import connection

    world = bench_world(bills=max(500, args.events // 4), contacts=True, code="CRASH")
    connection.close()
    events = plan_events(world, args.events, rng)
    deliveries = [(e["id"], e["body"]) for e in events]
    deliveries += [(e["id"], e["body"]) for e in rng.sample(events, int(len(events) * args.duplicates))]
    rng.shuffle(deliveries)
    acked: set[str] = set()
    lock = threading.Lock()
    progress = [0]
    rig = Rig(url, args.workers)
    rig.start()
    report: dict = {"events": args.events, "deliveries_first_pass": len(deliveries)}
    try:
        marks = [len(deliveries) * (k + 1) // (args.kills + 1) for k in range(args.kills)]

        def killer() -> None:
            for mark in marks:
                while progress[0] < mark:
                    time.sleep(0.005)
                rig.kill()
                print(f"  kill -9 server and workers after {progress[0]} deliveries", flush=True)
                time.sleep(0.5)
                rig.start()
                print("  restarted", flush=True)

        k = threading.Thread(target=killer)
        k.start()
        t0 = time.time()
        send_all(deliveries, clients=args.clients, acked=acked, lock=lock, progress=progress, fail_fast=True)
        k.join()
        first_acked = len(acked)
        report["acknowledged_first_pass"] = first_acked
        print(f"  first pass: {len(deliveries)} deliveries in {time.time() - t0:.1f} s, {first_acked} of "
              f"{len(events)} events acknowledged", flush=True)
        # The providers' retries: whatever got no 2xx, until it does; then everything once more.
        rounds = 0
        while len(acked) < len(events):
            rounds += 1
            if rounds > 20:
                raise RuntimeError(f"{len(events) - len(acked)} events never acknowledged")
            todo = [(e["id"], e["body"]) for e in events if e["id"] not in acked]
            send_all(todo, clients=args.clients, acked=acked, lock=lock, progress=progress, fail_fast=False)
        report["retry_rounds"] = rounds
        again: set[str] = set()
        send_all([(e["id"], e["body"]) for e in events], clients=args.clients, acked=again, lock=lock,
                 progress=progress, fail_fast=False)
        report["acknowledged_on_full_resend"] = len(again)
        print(f"  retries: {rounds} round(s) until all acknowledged; full resend: {len(again)} of {len(events)} "
              f"acknowledged", flush=True)
        settled = wait_settled(args.timeout)
        report["settled"] = settled
    finally:
        rig.stop()
    problems = check(url, events)
    if report.get("acknowledged_on_full_resend") != len(events):
        problems.append(f"full resend: only {report.get('acknowledged_on_full_resend')} of {len(events)} acknowledged")
    if settled["pending"] or settled["without_receipt"]:
        problems.append(f"not settled after {args.timeout:.0f} s: {settled}")
    report.update({"kills": len(rig.kills), "problems": problems, "seconds": round(time.time() - started)})
    write_result("crash_webhooks", report)
    if problems:
        print("CRASH TEST FAILED:", *problems, sep="\n  ", file=sys.stderr)
        return 1
    print(f"crash test passed: {args.events} events, {len(rig.kills)} crash(es), every event booked exactly once, "
          f"ledger check ok ({report['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
