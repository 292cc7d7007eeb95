"""Matching benchmark: how many mangled bank memos reach the right bill, and how fast.

    .venv/bin/python bench/bench_matching.py            # 20,000 bills, 50,000 genuine, 10,000 decoys
    .venv/bin/python bench/bench_matching.py --bills 2000 --genuine 5000 --decoys 1000   # quick look

Builds a throwaway SQLite database under ``--data-dir`` (default ``/tmp/bench_match``; the file
is deleted and migrated afresh on every run), issues bills for two institutions (a school and a
hospital, a few bills cancelled), generates memos with :mod:`bench.manglers` and sends each
through :func:`thuphi.payments.matching.match_credit` as a credit to the receiving institution.

A genuine memo is *right* when the match is exactly its bill, *wrong* when any other bill is in
the match, *unmatched* otherwise. A decoy must never be matched. Everything is seeded.

The functions above ``main`` (``build_world``, ``make_workload``, ``evaluate``) need a configured
Django and are reused by ``thuphi/payments/tests/test_matching_quality.py`` at a small scale.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.manglers import (  # noqa: E402
    STRESS_KINDS,
    TYPO_KINDS,
    Memo,
    MemoFactory,
    Person,
    random_person,
)

TARGET_RIGHT = 0.995


@dataclass
class Institution:
    id: int
    code: str
    sector: str
    open_bills: list[tuple[int, str, Person]] = field(default_factory=list)  # (bill id, reference, person)
    cancelled_bills: list[tuple[int, str, Person]] = field(default_factory=list)


@dataclass
class World:
    institutions: list[Institution]

    @property
    def bill_count(self) -> int:
        return sum(len(i.open_bills) + len(i.cancelled_bills) for i in self.institutions)


@dataclass(frozen=True)
class Payment:
    institution_id: int
    memo: Memo
    bill_id: int | None  # the bill the payer meant (genuine, stress, typo decoys)


def build_world(*, seed: int, n_bills: int, cancelled_share: float = 0.02, code_prefix: str = "BENCH") -> World:
    """Two institutions with `n_bills` bills between them (60% school, 40% hospital)."""
    from django.db import transaction

    from thuphi.billing import reference as refcode
    from thuphi.billing.models import Bill, BillStatus
    from thuphi.billing.services import qr_payload_for
    from thuphi.registry.models import BankAccount, Commune, Payer
    from thuphi.registry.services import BankAccountInput, institution_create

    rng = random.Random(seed)
    communes = list(Commune.objects.filter(province_id="24").order_by("code")[:2])
    specs = [
        ("education", "primary", "Trường Tiểu học Kinh Bắc", 0.6),
        ("health", "provincial_hospital", "Bệnh viện Đa khoa tỉnh Bắc Ninh", 0.4),
    ]
    taken: set[str] = set(Bill.objects.values_list("reference", flat=True))
    today = dt.date(2025, 11, 20)
    institutions = []
    with transaction.atomic():
        for n, (sector, kind, name, share) in enumerate(specs, start=1):
            inst = institution_create(
                actor=None, code=f"{code_prefix}-{n:02d}", name=name, sector=sector, kind=kind,
                ownership="public", commune_code=communes[n - 1].code, tax_code="2300123456",
                bank_accounts=[BankAccountInput(bank_bin="970436", account_number=f"9{seed % 10**6:06d}{n:03d}",
                                                account_name=name.upper())])
            account = BankAccount.objects.get(institution=inst, is_default=True)
            count = round(n_bills * share) if n < len(specs) else n_bills - sum(
                len(i.open_bills) + len(i.cancelled_bills) for i in institutions)
            people = [random_person(rng, sector=sector) for _ in range(count)]
            payers = Payer.objects.bulk_create([
                Payer(institution=inst, kind="student" if sector == "education" else "patient",
                      code=f"P{k:07d}", name=p.name, guardian_name=p.guardian, class_name=p.class_name)
                for k, p in enumerate(people)], batch_size=2000)
            bills = []
            for payer, person in zip(payers, people):
                while True:
                    ref = refcode.generate(rng)
                    if ref not in taken:
                        taken.add(ref)
                        break
                amount = rng.choice([450_000, 884_520, 1_200_000, 350_000, 2_500_000, 5_000_000, 175_500])
                cancelled = rng.random() < cancelled_share
                bills.append(Bill(
                    institution=inst, payer=payer, bank_account=account, reference=ref,
                    title="Tiền ăn bán trú tháng 11" if sector == "education" else "Tạm ứng viện phí",
                    status=BillStatus.CANCELLED if cancelled else BillStatus.UNPAID,
                    cancel_reason="Nhập trùng" if cancelled else "",
                    issue_date=today - dt.timedelta(days=10), due_date=today + dt.timedelta(days=rng.randint(0, 30)),
                    amount_gross=amount, amount_due=amount,
                    qr_payload=qr_payload_for(bank_account=account, amount=amount, reference=ref)))
            bills = Bill.objects.bulk_create(bills, batch_size=2000)
            entry = Institution(id=inst.pk, code=inst.code, sector=sector)
            for bill, person in zip(bills, people):
                target = entry.cancelled_bills if bill.status == BillStatus.CANCELLED else entry.open_bills
                target.append((bill.pk, bill.reference, person))
            institutions.append(entry)
    return World(institutions)


def make_workload(world: World, *, seed: int, n_genuine: int, n_decoys: int, n_stress: int = 0) -> list[Payment]:
    """Genuine payments, decoys and stress memos, shuffled, each addressed to one institution."""
    factory = MemoFactory(seed)
    rng = random.Random(seed + 1)
    insts = world.institutions
    weights = [len(i.open_bills) for i in insts]
    out: list[Payment] = []

    def pick_inst() -> Institution:
        return rng.choices(insts, weights)[0]

    for _ in range(n_genuine):
        inst = pick_inst()
        bill_id, ref, person = rng.choice(inst.open_bills)
        out.append(Payment(inst.id, factory.genuine(ref, person), bill_id))
    for k in range(n_stress):
        inst = pick_inst()
        bill_id, ref, person = rng.choice(inst.open_bills)
        out.append(Payment(inst.id, factory.stress(STRESS_KINDS[k % len(STRESS_KINDS)], ref, person), bill_id))
    for _ in range(n_decoys):
        inst = pick_inst()
        kind = factory.decoy_kind()
        bill_id, ref, person = rng.choice(inst.open_bills)
        if kind in TYPO_KINDS:
            out.append(Payment(inst.id, factory.typo(kind, ref, person), bill_id))
        elif kind == "other_institution_ref":
            other = rng.choice([i for i in insts if i.id != inst.id])
            _oid, oref, operson = rng.choice(other.open_bills)
            out.append(Payment(inst.id, factory.with_foreign_ref(kind, oref, operson), None))
        elif kind == "cancelled_bill_ref" and inst.cancelled_bills:
            _cid, cref, cperson = rng.choice(inst.cancelled_bills)
            out.append(Payment(inst.id, factory.with_foreign_ref(kind, cref, cperson), None))
        elif kind == "tphcm_digits":
            out.append(Payment(inst.id, factory.tphcm_digits(), None))
        elif kind == "phone_account_numbers":
            out.append(Payment(inst.id, factory.phone_account_numbers(person), None))
        else:
            out.append(Payment(inst.id, factory.random_memo(person), None))
    rng.shuffle(out)
    return out


@dataclass
class Tally:
    n: int = 0
    right: int = 0
    wrong: int = 0
    unmatched: int = 0

    def add(self, outcome: str) -> None:
        self.n += 1
        setattr(self, outcome, getattr(self, outcome) + 1)

    def as_dict(self) -> dict:
        return {"n": self.n, "right": self.right, "wrong": self.wrong, "unmatched": self.unmatched}


@dataclass
class Result:
    genuine: Tally = field(default_factory=Tally)
    genuine_by_tag: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    decoys: Tally = field(default_factory=Tally)  # right = matched its intended bill (typos only)
    decoys_by_kind: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    stress_by_kind: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    unmatched_reasons: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    failures: list[dict] = field(default_factory=list)  # genuine not right, decoys matched
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process only: robust on a shared, loaded machine
    extract_seconds: float = 0.0
    extract_cpu_seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def right_rate(self) -> float:
        return self.genuine.right / self.genuine.n if self.genuine.n else 1.0

    @property
    def decoys_matched(self) -> int:
        return self.decoys.n - self.decoys.unmatched

    def summary(self) -> dict:
        lat = sorted(self.latencies_ms)
        total = self.genuine.n + self.decoys.n + sum(t.n for t in self.stress_by_kind.values())
        return {
            "genuine": self.genuine.as_dict(), "right_rate": self.right_rate,
            "decoys": self.decoys.as_dict(), "decoys_matched": self.decoys_matched,
            "genuine_by_tag": {k: v.as_dict() for k, v in sorted(self.genuine_by_tag.items())},
            "decoys_by_kind": {k: v.as_dict() for k, v in sorted(self.decoys_by_kind.items())},
            "stress_by_kind": {k: v.as_dict() for k, v in sorted(self.stress_by_kind.items())},
            "unmatched_reasons": {k: dict(v.most_common(5)) for k, v in self.unmatched_reasons.items()},
            "calls": total, "seconds": self.seconds, "cpu_seconds": self.cpu_seconds,
            "calls_per_second": total / self.seconds if self.seconds else None,
            "calls_per_cpu_second": total / self.cpu_seconds if self.cpu_seconds else None,
            "latency_ms_p50": lat[len(lat) // 2] if lat else None,
            "latency_ms_p99": lat[int(len(lat) * 0.99)] if lat else None,
            "extract_only_per_second": total / self.extract_seconds if self.extract_seconds else None,
            "extract_only_per_cpu_second": total / self.extract_cpu_seconds if self.extract_cpu_seconds else None,
            "failures": self.failures[:30],
        }


def _reason_class(reason: str) -> str:
    if "not a bill of this institution" in reason:
        return "reference not a bill of this institution"
    if " is cancelled" in reason:
        return "bill is cancelled"
    if reason.startswith("no valid payment reference"):
        return "no valid reference"
    return reason[:60]


def evaluate(payments: list[Payment], *, keep_failures: int = 200) -> Result:
    from thuphi.billing import reference as refcode
    from thuphi.payments.matching import match_credit

    res = Result()
    t_start, c_start = time.perf_counter(), time.process_time()
    for p in payments:
        t0 = time.perf_counter()
        match, why = match_credit(institution_id=p.institution_id, virtual_account="", description=p.memo.text)
        res.latencies_ms.append((time.perf_counter() - t0) * 1000)
        ids = match.bill_ids if match else []
        if not ids:
            outcome = "unmatched"
        elif ids == [p.bill_id]:
            outcome = "right"
        else:
            outcome = "wrong"
        kind = p.memo.kind
        if kind == "genuine":
            res.genuine.add(outcome)
            for tag in p.memo.tags:
                res.genuine_by_tag[tag].add(outcome)
        elif kind in STRESS_KINDS:
            res.stress_by_kind[kind].add(outcome)
        else:
            res.decoys.add(outcome)
            res.decoys_by_kind[kind].add(outcome)
        if outcome == "unmatched":
            res.unmatched_reasons[kind][_reason_class(why)] += 1
        failed = (kind == "genuine" and outcome != "right") or (kind not in ("genuine", *STRESS_KINDS)
                                                                and outcome != "unmatched")
        if failed and len(res.failures) < keep_failures:
            res.failures.append({"kind": kind, "outcome": outcome, "ref": p.memo.ref, "text": p.memo.text,
                                 "tags": list(p.memo.tags), "why": why or (match.reason if match else "")})
    res.seconds, res.cpu_seconds = time.perf_counter() - t_start, time.process_time() - c_start
    t0, c0 = time.perf_counter(), time.process_time()
    for p in payments:
        refcode.extract_with_reason(p.memo.text)
    res.extract_seconds, res.extract_cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    return res


# --- report ---------------------------------------------------------------------------------


def _pct(a: int, n: int) -> str:
    return f"{100 * a / n:.2f}%" if n else "–"


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if not cpu:
        try:
            cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
            cpu = next((ln.split(":", 1)[1].strip() for ln in cpu.splitlines() if ln.startswith("Model name")), "")
        except OSError:
            cpu = platform.processor()
    ram = ""
    try:
        kb = int(next(ln for ln in Path("/proc/meminfo").read_text().splitlines()
                      if ln.startswith("MemTotal")).split()[1])
        ram = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    import django
    import sqlite3

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else ""
    return {"nproc": os.cpu_count(), "cpu": cpu, "ram": ram, "loadavg": load, "python": platform.python_version(),
            "django": django.get_version(), "sqlite": sqlite3.sqlite_version,
            "date": dt.datetime.now().astimezone().isoformat(timespec="seconds")}


def render(res: Result, *, args: argparse.Namespace, world: World, setup_seconds: float) -> str:
    s = res.summary()
    g = res.genuine
    lines = [
        f"bills: {world.bill_count} over {len(world.institutions)} institutions "
        f"({sum(len(i.cancelled_bills) for i in world.institutions)} cancelled); "
        f"setup {setup_seconds:.1f} s; seed {args.seed}",
        "",
        "| | n | right bill | wrong bill | unmatched |",
        "|---|---:|---:|---:|---:|",
        f"| genuine | {g.n} | {g.right} ({_pct(g.right, g.n)}) | {g.wrong} | {g.unmatched} |",
        f"| decoys | {res.decoys.n} | {res.decoys.right} (own bill) | {res.decoys.wrong} | {res.decoys.unmatched} |",
        "",
        f"target ≥ {TARGET_RIGHT:.1%} right, 0 wrong: "
        + ("MET" if res.right_rate >= TARGET_RIGHT and g.wrong == 0 and res.decoys_matched == 0 else "NOT MET"),
        "",
        "Genuine, per mangling (a payment usually carries several):",
        "",
        "| mangling | n | right | wrong | unmatched |",
        "|---|---:|---:|---:|---:|",
    ]
    for tag, t in sorted(res.genuine_by_tag.items(), key=lambda kv: (-kv[1].n, kv[0])):
        lines.append(f"| {tag} | {t.n} | {_pct(t.right, t.n)} | {t.wrong} | {t.unmatched} |")
    lines += ["", "Decoys, per kind (all must be unmatched):", "",
              "| decoy | n | matched own bill | matched other bill | unmatched | why unmatched |",
              "|---|---:|---:|---:|---:|---|"]
    for kind, t in sorted(res.decoys_by_kind.items()):
        why = "; ".join(f"{reason} ({n})" for reason, n in res.unmatched_reasons.get(kind, Counter()).most_common())
        lines.append(f"| {kind} | {t.n} | {t.right} | {t.wrong} | {t.unmatched} | {why} |")
    if res.stress_by_kind:
        lines += ["", "Stress (beyond the matcher's promise, not in the target):", "",
                  "| stress | n | right | wrong | unmatched |", "|---|---:|---:|---:|---:|"]
        for kind, t in sorted(res.stress_by_kind.items()):
            lines.append(f"| {kind} | {t.n} | {_pct(t.right, t.n)} | {t.wrong} | {t.unmatched} |")
    lines += [
        "",
        f"throughput, one process: {s['calls']} match_credit calls in {res.seconds:.1f} s wall = "
        f"{s['calls_per_second']:,.0f}/s ({s['calls_per_cpu_second']:,.0f} per CPU-second; "
        f"p50 {s['latency_ms_p50']:.2f} ms, p99 {s['latency_ms_p99']:.2f} ms); memo scanning alone "
        f"{s['extract_only_per_second']:,.0f}/s ({s['extract_only_per_cpu_second']:,.0f} per CPU-second)",
    ]
    bad = [f for f in res.failures if f["kind"] == "genuine" or f["outcome"] != "unmatched"]
    if bad:
        lines += ["", "First failures:"]
        for f in bad[:15]:
            lines.append(f"  {f['kind']} {f['outcome']} {f['ref']} {f['text']!r} tags={f['tags']} why={f['why']!r}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bills", type=int, default=20_000)
    ap.add_argument("--genuine", type=int, default=50_000)
    ap.add_argument("--decoys", type=int, default=10_000)
    ap.add_argument("--stress", type=int, default=2_000, help="memos beyond the promise, reported apart")
    ap.add_argument("--seed", type=int, default=20251120)
    ap.add_argument("--data-dir", default="/tmp/bench_match")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)

    data_dir = Path(args.data_dir).resolve()
    if data_dir == (ROOT / "var").resolve():
        ap.error("refusing to use the project's own data directory")
    if os.environ.get("THUPHI_ENV") == "production":
        ap.error("not on a production environment")
    os.environ["THUPHI_DATA_DIR"] = str(data_dir)
    os.environ.pop("DATABASE_URL", None)  # always the throwaway SQLite file
    os.environ["DEBUG"] = "0"  # no query log growing over 60,000 calls
    os.environ["DJANGO_SETTINGS_MODULE"] = "thuphi.config.settings"
    data_dir.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        (data_dir / f"thuphi.sqlite3{suffix}").unlink(missing_ok=True)

    import django
    from django.core.management import call_command

    django.setup()
    t0 = time.perf_counter()
    call_command("migrate", verbosity=0)
    world = build_world(seed=args.seed, n_bills=args.bills)
    payments = make_workload(world, seed=args.seed, n_genuine=args.genuine, n_decoys=args.decoys,
                             n_stress=args.stress)
    setup = time.perf_counter() - t0
    res = evaluate(payments)
    print(render(res, args=args, world=world, setup_seconds=setup))
    m = machine()
    print(f"\nmachine: nproc={m['nproc']}, {m['cpu']}, RAM {m['ram']}, Python {m['python']}, "
          f"Django {m['django']}, SQLite {m['sqlite']}, load average {m['loadavg']} at the end, {m['date']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "machine": m, **res.summary()},
                                              ensure_ascii=False, indent=2))
    ok = res.right_rate >= TARGET_RIGHT and res.genuine.wrong == 0 and res.decoys_matched == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
