"""Webhook acknowledgement: signed generic notifications stored and answered per second, and the latency
at a steady 200 per second, on PostgreSQL behind granian (the production set-up, decision 0008) and
gunicorn for comparison.

    .venv/bin/python bench/bench_webhooks.py                      # 20,000 per run, 3 runs, then 200/s for 30 s
    .venv/bin/python bench/bench_webhooks.py --events 5000 --runs 1 --rate-seconds 10
    .venv/bin/python bench/bench_webhooks.py --server granian:2x4 --server gthread:2x4   # compare server set-ups

Steps: a fresh database (``thuphi_bench_wh`` on ``BENCH_PG``); one hospital with a generic-webhook
connection and 2,000 unpaid bills; gunicorn with DEBUG off and ``PAYMENTS_APPLY_INLINE=0`` (the
worker books later; bench_apply.py measures that). Clients (``--clients`` processes, one keep-alive
connection each, plain sockets) sign every request when they send it, as a provider does, with a new
event id (a bank-mangled memo naming a real bill).

* throughput: each client sends its share back to back (closed loop); requests per second over the run;
* latency: ``--rate`` requests per second spread over the clients on a fixed schedule (open loop);
  latency is counted from the scheduled send time, so a stall also counts for the requests that
  queued behind it.

Every answer must be 200 with ``"success": true``; afterwards every event must be stored exactly once.
The clients run on the same cores as gunicorn and PostgreSQL: figures are for the whole machine.
pgbench (TPC-B, 4 clients, 20 s) on the same server gives the ratio.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import (  # noqa: E402
    exit_cleanly_on_sigterm,
    PG,
    backend_cpu_seconds,
    bench_world,
    group_cpu_seconds,
    fresh_database,
    generic_body,
    loadavg,
    mangled_memo,
    median,
    percentile,
    pgbench_tps,
    setup_django,
    sign,
    start_server,
    stop,
    wait_for_quiet,
    write_result,
)

DB = "thuphi_bench_wh"
PORT = 8931
PATH = "/api/v1/webhooks/generic"
TARGET_RATE, TARGET_P99_MS = 1_000, 100


# --------------------------------------------------------------------------- a small HTTP/1.1 client

class Client:
    """One keep-alive connection that POSTs pre-built bodies; reconnects when the server closes."""

    def __init__(self, port: int, path: str = PATH):
        self.port, self.path = port, path
        self.sock: socket.socket | None = None
        self.buf = b""

    def _connect(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None

    def post(self, body: bytes) -> tuple[int, bytes]:
        for attempt in range(3):
            try:
                if self.sock is None:
                    self._connect()
                head = (f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(body)}\r\nThuphi-Signature: {sign(body)}\r\n\r\n").encode()
                self.sock.sendall(head + body)
                return self._response()
            except OSError:
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _response(self) -> tuple[int, bytes]:
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the server")
            self.buf += chunk
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the server")
            rest += chunk
        body, self.buf = rest[:length], rest[length:]
        if close:
            self.close()
        return status, body


def client_proc(bodies: list[bytes], rate: float | None, start_at: float, port: int, q, path: str = PATH,
                expect: int = 200) -> None:
    c = Client(port, path)
    lat, late, bad, statuses = [], [], [], {}
    while time.time() < start_at:
        time.sleep(0.001)
    cpu0 = time.process_time()
    t_start = time.perf_counter()
    for k, body in enumerate(bodies):
        scheduled = None
        if rate:
            scheduled = t_start + k / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        t0 = time.perf_counter()
        try:
            status, answer = c.post(body)
        except OSError as exc:
            bad.append(repr(exc))
            continue
        t1 = time.perf_counter()
        lat.append((t1 - t0) * 1000)
        if scheduled is not None:
            late.append((t1 - min(scheduled, t0)) * 1000)
        statuses[status] = statuses.get(status, 0) + 1
        if status != expect or (expect == 200 and b'"success": true' not in answer):
            bad.append(f"{status} {answer[:200]!r}")
    c.close()
    q.put({"lat": lat, "late": late, "bad": bad, "statuses": statuses, "first": t_start,
           "last": time.perf_counter(), "cpu": time.process_time() - cpu0})


def blast(bodies: list[bytes], *, clients: int, rate: float | None, port: int, server=None, path: str = PATH,
          expect: int = 200) -> dict:
    q = mp.Queue()
    cpu = (group_cpu_seconds(server.pid), backend_cpu_seconds(DB)) if server is not None else None
    start_at = time.time() + 0.5
    procs = [mp.Process(target=client_proc, args=(bodies[i::clients], rate / clients if rate else None, start_at,
                                                  port, q, path, expect)) for i in range(clients)]
    for p in procs:
        p.start()
    results = [q.get() for _ in procs]
    for p in procs:
        p.join()
    if cpu is not None:
        cpu = (group_cpu_seconds(server.pid) - cpu[0], backend_cpu_seconds(DB) - cpu[1])
    # perf_counter is system-wide on Linux (CLOCK_MONOTONIC), so the clients' clocks compare.
    elapsed = max(r["last"] for r in results) - min(r["first"] for r in results)
    lat = [x for r in results for x in r["lat"]]
    late = [x for r in results for x in r["late"]]
    bad = [x for r in results for x in r["bad"]]
    statuses: dict[int, int] = {}
    for r in results:
        for k, v in r["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    out = {"requests": len(bodies), "errors": len(bad), "statuses": statuses, "seconds": round(elapsed, 2),
           "per_second": round(len(bodies) / elapsed, 1),
           "p50_ms": round(percentile(lat, 50), 2), "p95_ms": round(percentile(lat, 95), 2),
           "p99_ms": round(percentile(lat, 99), 2), "max_ms": round(max(lat, default=float("nan")), 2)}
    n = len(bodies)
    out["client_cpu_ms_per_req"] = round(sum(r["cpu"] for r in results) / n * 1000, 3)
    if cpu is not None:
        out["server_cpu_ms_per_req"] = round(cpu[0] / n * 1000, 3)
        out["postgres_cpu_ms_per_req"] = round(cpu[1] / n * 1000, 3)
    if rate:
        out.update({"rate": rate, "sched_p50_ms": round(percentile(late, 50), 2),
                    "sched_p99_ms": round(percentile(late, 99), 2),
                    "sched_max_ms": round(max(late, default=float("nan")), 2)})
    if bad:
        out["first_errors"] = bad[:5]
    return out


def bodies_for(world: list[dict], n: int, prefix: str) -> list[bytes]:
    place = world[0]
    out = []
    for i in range(n):
        ref, amount = place["bills"][i % len(place["bills"])]
        out.append(generic_body(event_id=f"{prefix}{i}", account=place["account"], amount=amount,
                                description=mangled_memo(i, ref), reference_code=f"FT{prefix}{i}"))
    return out


def parse_server(spec: str) -> dict:
    """"sync:4" (4 sync workers), "gthread:2x4" (2 processes x 4 threads) or "granian:2x4" (2 processes x 4
    blocking threads)."""
    kind, _, size = spec.partition(":")
    if kind == "sync":
        return {"worker_class": "sync", "workers": int(size or 4), "threads": 1}
    procs, _, threads = (size or "2x4").partition("x")
    if kind == "granian":
        return {"worker_class": "granian", "workers": int(procs), "threads": int(threads or 1)}
    return {"worker_class": "gthread", "workers": int(procs), "threads": int(threads or 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=20_000, help="requests per throughput run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--clients", type=int, default=12, help="client processes (one connection each); a closed loop "
                    "with few clients measures their round trips (fsync at each commit), not the server")
    ap.add_argument("--server", action="append", help='server set-up: "granian:PxT", "gthread:PxT" (gunicorn) or '
                                                      '"sync:N" (repeatable; default granian:2x8 and gthread:2x8)')
    ap.add_argument("--rate", type=float, default=200.0, help="requests per second of the latency run")
    ap.add_argument("--rate-seconds", type=float, default=30.0)
    ap.add_argument("--bills", type=int, default=2_000)
    ap.add_argument("--no-pgbench", action="store_true")
    ap.add_argument("--quick", action="store_true", help="3,000 requests, 1 run, 10 s of latency")
    ap.add_argument("--quiet-wait", type=float, default=0, metavar="S",
                    help="before each measured run, wait up to S seconds for the load average to drop")
    ap.add_argument("--quiet-load", type=float, default=1.0, help="...below this (default 1.0)")
    args = ap.parse_args()
    exit_cleanly_on_sigterm()
    if args.quick:
        args.events, args.runs, args.rate_seconds = min(args.events, 3_000), 1, min(args.rate_seconds, 10)
    servers = args.server or ["granian:2x8", "gthread:2x8"]
    print(f"bench_webhooks: {args.events} requests x {args.runs} runs, {args.clients} clients, servers {servers}, "
          f"latency at {args.rate:.0f}/s for {args.rate_seconds:.0f} s, on {PG}/{DB}", flush=True)
    url = fresh_database(DB)
    setup_django(url)
    from django.db import connection

    world = bench_world(bills=args.bills, contacts=True)
    connection.close()
    results, failures = {}, []
    sent = 0
    for spec in servers:
        conf = parse_server(spec)
        server = start_server(url, port=PORT, **conf)
        try:
            blast(bodies_for(world, 300, f"warm-{spec}-"), clients=args.clients, rate=None, port=PORT)
            sent += 300
            # The floor: the same server answering a request that reaches no database (an unknown
            # provider: 404 from the same view, through the same middleware).
            wait_for_quiet(args.quiet_load, args.quiet_wait)
            floor = blast(bodies_for(world, 3_000, "floor-"), clients=args.clients, rate=None, port=PORT,
                          server=server, path="/api/v1/webhooks/none", expect=404)
            print(f"  {spec} floor (404, no database): {floor['per_second']:,.0f}/s, server CPU "
                  f"{floor['server_cpu_ms_per_req']} ms per request", flush=True)
            runs = []
            for run in range(args.runs):
                wait_for_quiet(args.quiet_load, args.quiet_wait)
                load = loadavg()
                r = blast(bodies_for(world, args.events, f"T-{spec}-{run}-"), clients=args.clients, rate=None,
                          port=PORT, server=server)
                sent += args.events
                r["load_before"], r["load_after"] = load, loadavg()
                runs.append(r)
                print(f"  {spec} throughput run {run + 1}: {r['per_second']:,.0f}/s, p50 {r['p50_ms']} ms, "
                      f"p99 {r['p99_ms']} ms, errors {r['errors']}, CPU ms per request: server "
                      f"{r['server_cpu_ms_per_req']}, PostgreSQL {r['postgres_cpu_ms_per_req']}, clients "
                      f"{r['client_cpu_ms_per_req']}; load {load[0]:.2f} -> {r['load_after'][0]:.2f}", flush=True)
                if r["errors"]:
                    failures.append((spec, "throughput", r.get("first_errors")))
            n_rate = int(args.rate * args.rate_seconds)
            wait_for_quiet(args.quiet_load, args.quiet_wait)
            load = loadavg()
            lat = blast(bodies_for(world, n_rate, f"L-{spec}-"), clients=args.clients, rate=args.rate, port=PORT,
                        server=server)
            sent += n_rate
            lat["load_before"], lat["load_after"] = load, loadavg()
            print(f"  {spec} at {args.rate:.0f}/s: p50 {lat['sched_p50_ms']} ms, p99 {lat['sched_p99_ms']} ms "
                  f"(service time p99 {lat['p99_ms']} ms), max {lat['sched_max_ms']} ms, errors {lat['errors']}",
                  flush=True)
            if lat["errors"]:
                failures.append((spec, "latency", lat.get("first_errors")))
        finally:
            stop(server)
        ack = median([r["per_second"] for r in runs])
        results[spec] = {"throughput_runs": runs, "ack_median_per_s": ack, "latency": lat, "floor_404": floor}
    from thuphi.payments.models import InboundEvent

    stored = InboundEvent.objects.count()
    distinct = InboundEvent.objects.values("event_id").distinct().count()
    if not (stored == distinct == sent):
        failures.append(("store", f"{stored} events stored, {distinct} distinct, {sent} sent"))
    connection.close()
    tps = None if args.no_pgbench else pgbench_tps()
    for spec, res in results.items():
        ack, lat = res["ack_median_per_s"], res["latency"]
        res["vs_pgbench"] = round(ack / tps, 3) if tps else None
        res["targets"] = {"ack_per_s": ack >= TARGET_RATE, "p99_at_rate": lat["sched_p99_ms"] < TARGET_P99_MS}
        print(f"{spec}: median {ack:,.0f} acknowledgements/s"
              + (f" = {ack / tps:.2f} x pgbench TPC-B ({tps:,.0f} tps)" if tps else "")
              + f" (target {TARGET_RATE:,}: {'met' if ack >= TARGET_RATE else 'MISSED'}); "
              f"p99 at {args.rate:.0f}/s {lat['sched_p99_ms']} ms (target < {TARGET_P99_MS}: "
              f"{'met' if lat['sched_p99_ms'] < TARGET_P99_MS else 'MISSED'})", flush=True)
    path = write_result("webhooks", {"args": vars(args), "results": results, "pgbench_tps": tps, "stored": stored})
    print("written", path)
    if failures:
        print("FAILED:", failures, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
