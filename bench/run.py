"""Run every benchmark, each in its own process, and print a summary (`make bench`).

    .venv/bin/python bench/run.py                    # the sizes of docs/benchmarks.md (an hour or more)
    .venv/bin/python bench/run.py --quick            # small sizes: a few minutes, to see that all still run
    .venv/bin/python bench/run.py --only webhooks apply crash
    DATABASE_URL=postgres://user:pw@dbhost:5432/thuphi .venv/bin/python bench/run.py

PostgreSQL: the server of ``DATABASE_URL`` when it names one, else postgres://postgres@127.0.0.1:5432.
The database ``DATABASE_URL`` names is never written to: each benchmark works in scratch databases of
its own on that server (``thuphi_bench_*``), which this script drops at the end unless ``--keep``, except
the two whose data is expensive to make and is reused on purpose (``thuphi_bench_stmt``,
``thuphi_bench_monitoring``). If PostgreSQL cannot be reached, nothing runs and the exit status is 2.

bench_matching runs on a throwaway SQLite file (it measures matching, not the database);
bench_statement always uses ``thuphi_bench_stmt`` on 127.0.0.1 (its own convention).
Each benchmark's full output goes to bench/out/run-<name>.log; the exit status is 1 if any failed.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from common import OUT, ROOT, loadavg, server_url  # noqa: E402

PY = sys.executable
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432"

# name -> (script, full-size arguments, --quick arguments); "{pg}" is the server, "{db:NAME}" a scratch
# database made (and migrated) by this script.
BENCHMARKS: dict[str, tuple[str, list[str], list[str]]] = {
    "matching": ("bench_matching.py", [], ["--bills", "2000", "--genuine", "5000", "--decoys", "1000",
                                           "--stress", "200"]),
    "bulk_issue": ("bench_bulk_issue.py", ["--runs", "3"], ["--bills", "10000", "--runs", "1"]),
    "statement": ("bench_statement.py", ["--lines", "1000000", "--runs", "3"], ["--lines", "20000", "--runs", "1"]),
    "monitoring": ("bench_monitoring.py", ["--database-url", "{pg}/thuphi_bench_monitoring"],
                   ["--database-url", "{pg}/thuphi_benchrun_monitoring_quick", "--institutions", "300",
                    "--bills", "80000", "--credits", "200000", "--runs", "5"]),
    "webhooks": ("bench_webhooks.py", [], ["--quick"]),
    "apply": ("bench_apply.py", [], ["--quick"]),
    "crash": ("crash_webhooks.py", [], ["--quick"]),
}
#: Scratch databases the benchmarks (re)create on every run; dropped at the end unless --keep.
SCRATCH = ("thuphi_bench_wh", "thuphi_bench_apply", "thuphi_bench_crash", "thuphi_bench_pgbench",
           "thuphi_benchrun_bulk", "thuphi_benchrun_monitoring_quick")


def psql(server: str, sql: str) -> subprocess.CompletedProcess:
    return subprocess.run(["psql", f"{server}/postgres", "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
                          capture_output=True, text=True, timeout=60)


def reachable(server: str) -> tuple[bool, str]:
    try:
        out = psql(server, "SHOW server_version")
    except FileNotFoundError:
        return False, "psql is not installed (Debian: apt-get install postgresql-client)"
    except subprocess.TimeoutExpired:
        return False, "no answer within 60 s"
    if out.returncode != 0:
        return False, out.stderr.strip() or f"psql exited with {out.returncode}"
    return True, out.stdout.strip()


def scratch_database(server: str, name: str, env: dict) -> str:
    """Drop, create and migrate a database for one benchmark; return its URL."""
    for sql in (f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'):
        out = psql(server, sql)
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
    url = f"{server}/{name}"
    subprocess.run([str(Path(PY).parent / "thuphi"), "migrate", "-v0"], check=True,
                   env={**env, "DATABASE_URL": url, "DEBUG": "0"}, cwd=ROOT)
    return url


def run_one(name: str, script: str, args: list[str], env: dict) -> dict:
    OUT.mkdir(parents=True, exist_ok=True)
    log_path = OUT / f"run-{name}.log"
    cmd = [PY, str(ROOT / "bench" / script), *args]
    print(f"\n=== {name}: {' '.join(cmd[1:])}   (load average {loadavg()[0]:.2f})", flush=True)
    started = time.time()
    tail: list[str] = []
    with open(log_path, "w") as log, subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                                        stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
            if line.strip():
                tail = (tail + [line.rstrip()])[-6:]
        code = proc.wait()
    return {"name": name, "code": code, "seconds": time.time() - started, "tail": tail, "log": log_path}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: checks that every benchmark still runs")
    ap.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these")
    ap.add_argument("--keep", action="store_true", help="keep the scratch databases")
    args = ap.parse_args()

    configured = os.environ.get("DATABASE_URL", "")
    server = server_url(configured) if configured.startswith(("postgres://", "postgresql://")) else DEFAULT_PG
    if configured and not configured.startswith(("postgres://", "postgresql://")):
        print(f"DATABASE_URL is not PostgreSQL ({configured.split(':', 1)[0]}); using {DEFAULT_PG}")
    ok, info = reachable(server)
    if not ok:
        print(f"bench/run.py: PostgreSQL is not reachable at {server}: {info}\n"
              "The benchmarks measure PostgreSQL. Start it (Debian: apt-get install postgresql; "
              "service postgresql start), or set DATABASE_URL=postgres://USER[:PASSWORD]@HOST:PORT/DB "
              "for a server where that user may create databases.", file=sys.stderr)
        return 2
    print(f"PostgreSQL {info} at {server}; {os.cpu_count()} CPUs; load average {loadavg()}; "
          f"{'quick' if args.quick else 'full'} sizes")
    if server != DEFAULT_PG and (not args.only or "statement" in args.only):
        print("note: bench_statement always uses thuphi_bench_stmt on 127.0.0.1")

    base_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    base_env.update({"BENCH_PG": server, "PYTHONUNBUFFERED": "1"})
    results = []
    for name in args.only or list(BENCHMARKS):
        script, full, quick = BENCHMARKS[name]
        bench_args = [a.replace("{pg}", server) for a in (quick if args.quick else full)]
        env = dict(base_env)
        try:
            if name == "bulk_issue":  # it expects a migrated database in DATABASE_URL and empties its tables
                env["DATABASE_URL"] = scratch_database(server, "thuphi_benchrun_bulk", base_env)
            results.append(run_one(name, script, bench_args, env))
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            results.append({"name": name, "code": -1, "seconds": 0.0, "tail": [f"could not start: {exc}"], "log": None})
    if not args.keep:
        for name in SCRATCH:
            psql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    print("\n=== summary" + (" (quick sizes: not the documented figures)" if args.quick else ""))
    for r in results:
        status = "ok" if r["code"] == 0 else f"FAILED ({r['code']})"
        print(f"--- {r['name']}: {status}, {r['seconds']:.0f} s" + (f", log {r['log']}" if r["log"] else ""))
        for line in r["tail"]:
            print(f"    {line}")
    failed = [r["name"] for r in results if r["code"] != 0]
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
