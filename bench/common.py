"""Shared set-up for the benchmarks: PostgreSQL databases, a bench world, servers, workers, signed requests.

Every benchmark that needs PostgreSQL takes its server from ``BENCH_PG`` (default
``postgres://postgres@127.0.0.1:5432``; `bench/run.py` sets it from ``DATABASE_URL``) and works in a
database of its own that it drops and creates: never point these helpers at a database you keep.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
THUPHI = str(VENV_BIN / "thuphi")
OUT = ROOT / "bench" / "out"
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432").rstrip("/")

#: What the server and the workers run with in every benchmark: no DEBUG (it records every query),
#: warnings only, notifications left to `thuphi worker`.
BENCH_ENV = {"DEBUG": "0", "LOG_LEVEL": "WARNING", "PAYMENTS_APPLY_INLINE": "0"}

GENERIC_SECRET = "bench-generic-secret-0123456789"


# --------------------------------------------------------------------------- machine and load

def exit_cleanly_on_sigterm() -> None:
    """SIGTERM (e.g. from bench/run.py or a timeout) raises SystemExit, so `finally:` blocks stop the
    servers and workers a benchmark started instead of leaving them running."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def loadavg() -> tuple[float, float, float]:
    try:
        a, b, c = Path("/proc/loadavg").read_text().split()[:3]
        return float(a), float(b), float(c)
    except OSError:
        return (float("nan"),) * 3


def wait_for_quiet(max_load: float = 1.0, timeout: float = 0) -> tuple[float, float, float]:
    """Wait (up to `timeout` seconds) until the 1-minute load average is below `max_load`."""
    deadline = time.time() + timeout
    while loadavg()[0] >= max_load and time.time() < deadline:
        time.sleep(5)
    return loadavg()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process and its waited-for children (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds of every live process in a process group (a gunicorn master and its workers)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5 of stat: the process group
            total += sum(int(x) for x in fields[11:13]) / os.sysconf("SC_CLK_TCK")
    return total


def backend_cpu_seconds(database: str) -> float:
    """CPU seconds of the PostgreSQL backends now connected to `database` (same machine only)."""
    pids = psql(f"SELECT pid FROM pg_stat_activity WHERE datname = '{database}'").split()
    return sum(cpu_seconds(int(p)) for p in pids if p.isdigit())


def pg_version(url: str | None = None) -> str:
    out = subprocess.run(["psql", f"{url or PG + '/postgres'}", "-Atc", "SHOW server_version"],
                         capture_output=True, text=True)
    return out.stdout.strip()


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "mem": mem, "python": platform.python_version(),
            "postgresql": pg_version(), "date": time.strftime("%Y-%m-%d %H:%M %z"), "loadavg": loadavg()}


# --------------------------------------------------------------------------- databases

def pg_reachable(server: str = PG) -> bool:
    try:
        out = subprocess.run(["psql", f"{server}/postgres", "-Atc", "SELECT 1"], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == "1"


def psql(sql: str, db: str = "postgres") -> str:
    out = subprocess.run(["psql", f"{PG}/{db}", "-v", "ON_ERROR_STOP=1", "-qAtc", sql], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


def fresh_database(name: str) -> str:
    """Drop and create `name`, migrate it, return its DATABASE_URL."""
    psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    psql(f'CREATE DATABASE "{name}"')
    url = f"{PG}/{name}"
    subprocess.run([THUPHI, "migrate", "-v0"], check=True, env={**os.environ, **BENCH_ENV, "DATABASE_URL": url})
    return url


def setup_django(url: str) -> None:
    os.environ.update(BENCH_ENV)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thuphi.config.settings")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def ledger_check(url: str) -> subprocess.CompletedProcess:
    """`thuphi ledger check` as an operator runs it."""
    return subprocess.run([THUPHI, "ledger", "check"], env={**os.environ, **BENCH_ENV, "DATABASE_URL": url},
                          capture_output=True, text=True)


# --------------------------------------------------------------------------- results

def write_result(name: str, data: dict) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2, ensure_ascii=False, default=str))
    return path


def median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    if not n:
        return float("nan")
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def percentile(xs: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(xs)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, int(-(-p / 100 * len(s) // 1)) - 1))
    return s[k]


def pgbench_tps(seconds: int = 20, clients: int = 4, scale: int = 10) -> float:
    """TPC-B-like rate of this machine's PostgreSQL (pgbench defaults: fsync and synchronous_commit as
    configured): the yardstick the figures are divided by."""
    db = "thuphi_bench_pgbench"
    psql(f'DROP DATABASE IF EXISTS "{db}"')
    psql(f'CREATE DATABASE "{db}"')
    subprocess.run(["pgbench", "-q", "-i", "-s", str(scale), f"{PG}/{db}"], check=True, capture_output=True)
    out = subprocess.run(["pgbench", "-c", str(clients), "-j", "2", "-T", str(seconds), f"{PG}/{db}"],
                         check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("tps") and "without initial" in line:
            return float(line.split("=")[1].split()[0])
    for line in out.splitlines():
        if line.startswith("tps"):
            return float(line.split("=")[1].split()[0])
    raise RuntimeError(out)


# --------------------------------------------------------------------------- a bench world

def bench_world(*, bills: int, institutions: int = 1, contacts: bool = True, code: str = "BENCH") -> list[dict]:
    """Hospitals with one bank account each, a generic-webhook connection and `bills` unpaid bills in all
    (issued with `bills_bulk_issue`, real references and VietQR). Returns, per institution,
    {"account": account number, "bills": [(reference, amount due), ...]}.

    `contacts`: payers have a phone number, so every payment also queues an SMS confirmation (the
    demo data's payers do); without, the worker has no messages to queue or send.
    """
    from thuphi.billing.bulk import RosterRow, bills_bulk_issue
    from thuphi.billing.models import Bill
    from thuphi.billing.services import LineInput
    from thuphi.payments.services import connection_set
    from thuphi.registry.models import Commune
    from thuphi.registry.services import BankAccountInput, institution_create

    communes = list(Commune.objects.filter(province_id="24").order_by("code")[:institutions])
    due = dt.date.today() + dt.timedelta(days=30)
    per = -(-bills // institutions)
    world = []
    for k in range(institutions):
        number = f"09{k:02d}8887770"
        inst = institution_create(
            actor=None, code=f"{code}-{k:02d}", name=f"Bệnh viện đo hiệu năng {k}", sector="health",
            kind="provincial_hospital", ownership="public", commune_code=communes[k % len(communes)].code,
            bank_accounts=[BankAccountInput(bank_bin="970436", account_number=number,
                                            account_name=f"BENH VIEN DO HIEU NANG {k}")])
        account = inst.bank_accounts.get()
        connection_set(bank_account=account, provider="generic", secret=GENERIC_SECRET)
        n = min(per, bills - per * k)
        rows = [RosterRow(row=i + 2, code=f"BN{k:02d}{i:07d}", name=f"Người bệnh {i}",
                          phone=f"09{(k * 10_000_000 + i) % 100_000_000:08d}" if contacts else "")
                for i in range(n)]
        bills_bulk_issue(actor=None, institution=inst, rows=rows, due_date=due, batch_name="Viện phí (đo hiệu năng)",
                         schedule=[LineInput(name="Viện phí nội trú", amount=1_250_000, kind="hospital_fee"),
                                   LineInput(name="Tiền ăn", amount=90_000, kind="meals_boarding")])
        world.append({"account": number, "institution_id": inst.pk,
                      "bills": list(Bill.objects.filter(institution=inst).order_by("id")
                                    .values_list("reference", "amount_due"))})
    return world


def mangled_memo(i: int, reference: str) -> str:
    """A transfer description as banks deliver it (see bench/manglers.py for the full catalogue)."""
    shapes = (f"MBVCB.{2427229823 + i}.{174242 + i % 9000}.{reference}.NOP VIEN PHI",
              f"IBFT {reference[:5]} {reference[5:]} thanh toan vien phi",
              f"{reference} NGUYEN VAN A chuyen tien GD {100000 + i % 900000}-090822 15:45:46",
              f"REM Tfr Ac: 1023456789 THANHTOAN{reference}VIENPHI")
    return shapes[i % len(shapes)]


def generic_body(*, event_id: str, account: str, amount: int, description: str, reference_code: str | None,
                 when: str = "2026-11-20T09:15:00+07:00") -> bytes:
    return json.dumps({"id": event_id, "account_number": account, "virtual_account": None, "amount": amount,
                       "description": description, "transaction_date": when, "reference_code": reference_code,
                       "type": "credit"}, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sign(body: bytes, *, secret: str = GENERIC_SECRET, t: int | None = None) -> str:
    """The Thuphi-Signature header, signed now (docs/webhooks.md)."""
    ts = str(int(time.time()) if t is None else t).encode()
    return f"t={ts.decode()},v1=" + hmac.new(secret.encode(), ts + b"." + body, hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------- processes

def start_server(url: str, *, port: int, workers: int = 4, threads: int = 1, worker_class: str = "sync",
                 extra_env: dict | None = None, timeout: float = 60) -> subprocess.Popen:
    """gunicorn serving thuphi on 127.0.0.1:`port`, in its own process group (stop with `stop`).

    Database connections are kept for the whole run (DB_CONN_MAX_AGE), so the CPU of their
    PostgreSQL backends can be read at the end (`backend_cpu_seconds`)."""
    env = {**os.environ, **BENCH_ENV, "DATABASE_URL": url, "DB_CONN_MAX_AGE": "3600", **(extra_env or {})}
    if worker_class == "granian":
        # Rust HTTP front, WSGI app on `threads` blocking threads per worker process (decision 0008).
        args = [str(VENV_BIN / "granian"), "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(workers), "--blocking-threads", str(threads), "--backlog", "2048",
                "--log-level", "warning", "--no-access-log", "thuphi.config.wsgi:application"]
    else:
        args = [str(VENV_BIN / "gunicorn"), "thuphi.config.wsgi:application", "-b", f"127.0.0.1:{port}",
                "-w", str(workers), "-k", worker_class, "--log-level", "warning", "--keep-alive", "30",
                "--backlog", "2048"]
        if worker_class == "gthread":
            args += ["--threads", str(threads)]
    proc = subprocess.Popen(args, env=env, cwd=ROOT, start_new_session=True)
    wait_http(port, timeout=timeout, proc=proc)
    return proc


def start_workers(url: str, n: int, *, once: bool = False, extra_env: dict | None = None) -> list[subprocess.Popen]:
    env = {**os.environ, **BENCH_ENV, "DATABASE_URL": url, **(extra_env or {})}
    return [subprocess.Popen([THUPHI, "worker", *(["--once"] if once else [])], env=env, cwd=ROOT,
                             start_new_session=True) for _ in range(n)]


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Signal a process group we started, and reap it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wait_http(port: int, timeout: float = 60, proc: subprocess.Popen | None = None) -> None:
    import http.client

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/api/v1/openapi.json")
            if c.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on {port} did not come up")


def server_url(database_url: str) -> str:
    """postgres://user@host:port of a DATABASE_URL (the database name dropped)."""
    parts = urlsplit(database_url)
    return f"{parts.scheme}://{parts.netloc}"
