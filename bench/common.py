"""Shared set-up for the benchmarks: a fresh PostgreSQL database, a server, signed requests."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
THUPHI = str(VENV_BIN / "thuphi")
OUT = ROOT / "bench" / "out"
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")


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
    return {"cpus": os.cpu_count(), "cpu": cpu, "mem": mem, "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d")}


def fresh_database(name: str) -> str:
    """Drop and create `name`, migrate it, return its DATABASE_URL."""
    subprocess.run(["psql", f"{PG}/postgres", "-qc", f"DROP DATABASE IF EXISTS {name}"], check=True)
    subprocess.run(["psql", f"{PG}/postgres", "-qc", f"CREATE DATABASE {name}"], check=True)
    url = f"{PG}/{name}"
    subprocess.run([THUPHI, "migrate", "-v0"], check=True, env={**os.environ, "DATABASE_URL": url})
    return url


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thuphi.config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def write_result(name: str, data: dict) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2, ensure_ascii=False, default=str))
    return path


def median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def percentile(xs: list[float], p: float) -> float:
    s = sorted(xs)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, int(round(p / 100 * (len(s) - 1)))))
    return s[k]


def pgbench_tps(seconds: int = 20, clients: int = 4) -> float:
    """TPC-B-like rate of this machine's PostgreSQL: the yardstick our figures are divided by."""
    db = "thuphi_bench_pgbench"
    subprocess.run(["psql", f"{PG}/postgres", "-qc", f"DROP DATABASE IF EXISTS {db}"], check=True)
    subprocess.run(["psql", f"{PG}/postgres", "-qc", f"CREATE DATABASE {db}"], check=True)
    subprocess.run(["pgbench", "-q", "-i", "-s", "10", f"{PG}/{db}"], check=True, capture_output=True)
    out = subprocess.run(["pgbench", "-c", str(clients), "-j", "2", "-T", str(seconds), f"{PG}/{db}"],
                         check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("tps") and "without initial" in line:
            return float(line.split("=")[1].split()[0])
    for line in out.splitlines():
        if line.startswith("tps"):
            return float(line.split("=")[1].split()[0])
    raise RuntimeError(out)


def start_server(url: str, *, port: int, workers: int = 4, threads: int = 2, extra_env: dict | None = None):
    env = {**os.environ, "DATABASE_URL": url, "PAYMENTS_APPLY_INLINE": "0", "LOG_LEVEL": "WARNING",
           **(extra_env or {})}
    proc = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "thuphi.config.wsgi:application", "-b", f"127.0.0.1:{port}",
         "-w", str(workers), "-k", "gthread", "--threads", str(threads), "--log-level", "warning",
         "--keep-alive", "30"], env=env, cwd=ROOT, start_new_session=True)
    wait_http(port)
    return proc


def wait_http(port: int, timeout: float = 30) -> None:
    import http.client

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/api/v1/openapi.json")
            if c.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on {port} did not come up")
