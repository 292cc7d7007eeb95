"""The set-based statement booking (statements/booking.py) against the one-by-one path.

A whole statement file, imported in several chunks, must leave exactly what booking its lines one
by one with `services.credit_book` leaves: credits, ledger transactions and entries, allocations,
bills, and the monitoring statistics; and importing it again, or a file overlapping it, must add
nothing. The receipts of such an import come from the worker's sweep."""
from __future__ import annotations

import datetime as dt
import random
from types import SimpleNamespace

import pytest
from django.db import transaction

from thuphi.billing.models import BillStatus, FeeKind
from thuphi.billing.services import LineInput, bill_cancel, bill_create
from thuphi.monitoring.stats import stats_check, stats_snapshot
from thuphi.payments import ledger
from thuphi.payments.models import (
    Credit,
    CreditSource,
    CreditStatus,
    LedgerEntry,
    Method,
    StatementLineRecord,
    VirtualAccount,
)
from thuphi.payments.statements import booking, service
from thuphi.payments.statements.parsers import IN, PRESETS, VIETNAM_TZ, parse_statement
from thuphi.payments.statements.service import statement_import
from thuphi.payments.tests.test_statements import _in_savepoint, _snapshot
from thuphi.registry.models import BankAccount, Payer

ACCOUNT = "1023456701"
HEADER = "transaction_date,amount,direction,reference,virtual_account,counterparty_name,description"


@pytest.fixture
def hospital(institution):
    """Twelve bills of four patients (deposits among them), one cancelled, one of another
    institution, and virtual accounts of a bill and of a payer."""
    account = BankAccount.objects.get(institution=institution, is_default=True)
    rng = random.Random(3)
    payers = [Payer.objects.create(institution=institution, kind="patient", code=f"BN{i}", name=f"Người bệnh {i}")
              for i in range(4)]
    bills = []
    for i in range(12):
        kind = FeeKind.DEPOSIT if i % 5 == 0 else FeeKind.HOSPITAL_FEE
        items = [LineInput(name="Tạm ứng" if kind == FeeKind.DEPOSIT else "Viện phí", kind=kind,
                           amount=rng.choice([200_000, 350_000, 1_000_000]))]
        if i % 3 == 0:
            items.append(LineInput(name="Bảo hiểm y tế", amount=rng.choice([50_000, 884_520]),
                                   kind=FeeKind.STUDENT_INSURANCE))
        bills.append(bill_create(actor=None, institution=institution, payer=payers[i % 4], items=items,
                                 due_date=dt.date.today() + dt.timedelta(days=30 - i)))
    bill_cancel(actor=None, bill=bills[-1], reason="Lập nhầm")
    VirtualAccount.objects.create(bank_account=account, number="9601023456701001", bill=bills[2])
    VirtualAccount.objects.create(bank_account=account, number="9601023456701002", payer=payers[1])
    return SimpleNamespace(institution=institution, account=account, bills=bills, payers=payers)


def statement(hospital, *, n: int, seed: int, start: int = 0) -> bytes:
    """A generic-layout CSV of lines `start`..`start + n` of one seeded stream of bank movements:
    references (plain, split, glued, two in one memo, unknown, cancelled), virtual accounts, lines
    without a bank reference (some identical), partial and over-payments, money out, zero lines,
    and an unreadable line. The same seed gives the same line at the same position, so two calls
    with overlapping ranges describe overlapping statements."""
    exact = hospital.bills[10]  # paid once, exactly, by line 1; no other line names it
    refs = [b.reference for b in hospital.bills if b.pk != exact.pk]
    rows = [HEADER]
    base = dt.datetime(2026, 11, 18, 7, 0)
    for i in range(start, start + n):
        rng = random.Random(seed * 100_003 + i)
        r1, r2 = rng.choice(refs), rng.choice(refs)
        memo, va = rng.choice([
            (f"MBVCB.{rng.randrange(10**9)}.174242.{r1} NOP TIEN GD 174242", ""),
            (f"IBFT {r1[:5]} {r1[5:]} VIEN PHI", ""),
            (f"THANHTOAN{r1}VIENPHI", ""),
            (f"{r1} {r2} nop chung", ""),
            ("TPJWYEPFZX0 khong co phieu nay", ""),
            ("UNG HO QUY BENH NHAN NGHEO", ""),
            (f"{r1} qua tai khoan ao", "9601023456701001"),
            ("tai khoan ao cua nguoi benh", "9601023456701002"),
        ])
        amount = rng.choice([50_000, 200_000, 350_000, 884_520, 1_334_520, 2_000_000])
        direction = "C"
        if i % 17 == 5:
            direction = "D"
        if i % 23 == 7:
            amount = 0
        bank_ref = f"FT26{i:06d}" if rng.random() < 0.7 else ""
        when = base + dt.timedelta(minutes=7 * i)
        if i % 11 == 3:  # the same transfer without a reference, twice on one day: two payments
            memo, amount, bank_ref, va, when = "NOP TIEN KHAM", 100_000, "", "", base.replace(hour=6)
        if i == 1:
            memo, amount, direction, va = f"{exact.reference} NOP DU", exact.amount_due, "C", ""
        if i % 29 == 13:
            rows.append(f"{when:%d/%m/%Y %H:%M},\"1.500,5\",C,{bank_ref},,,{memo}")  # fraction: an error
            continue
        rows.append(f"{when:%d/%m/%Y %H:%M},{amount},{direction},{bank_ref},{va},NGUYEN VAN A,{memo}")
    return ("\n".join(rows) + "\n").encode()


def one_by_one(hospital, data: bytes) -> None:
    """What the import must amount to, with the slow path: every new credit line of the file
    created and booked by `credit_book`, in file order (the same reference twice in the file once)."""
    from thuphi.payments.services import credit_book

    seen = set()
    for ln in parse_statement(data, filename="s.csv", mapping=PRESETS["generic"]).lines:
        if ln.direction != IN or ln.amount == 0:
            continue
        if ln.bank_reference:
            if ln.bank_reference in seen:
                continue
            seen.add(ln.bank_reference)
        credit = Credit.objects.create(
            institution_id=hospital.institution.pk, bank_account=hospital.account, method=Method.TRANSFER,
            source=CreditSource.STATEMENT, amount=ln.amount, description=ln.description,
            payer_name=ln.counterparty_name, bank_reference=ln.bank_reference, occurred_at=ln.booked_at,
            status=CreditStatus.UNMATCHED)
        credit_book(credit=credit, virtual_account=ln.virtual_account)


def do_import(hospital, data: bytes):
    return statement_import(actor=None, bank_account=hospital.account, file_bytes=data, filename="s.csv",
                            mapping=PRESETS["generic"])


def with_stats(fn):
    def run():
        fn()
        assert stats_check() == []
    return run


@pytest.mark.django_db
def test_an_import_in_chunks_books_exactly_what_credit_book_books_line_by_line(hospital, monkeypatch):
    monkeypatch.setattr(service, "CHUNK", 9)
    data = statement(hospital, n=160, seed=1)
    expected = _in_savepoint(with_stats(lambda: one_by_one(hospital, data)))
    expected_stats = {}
    report_box = {}

    def bulk():
        report_box["r"] = do_import(hospital, data)
        expected_stats.update(stats_snapshot())

    got = _in_savepoint(with_stats(bulk))
    assert got == expected
    # the file exercised every branch, and the report adds up
    statuses = {s for *_x, s in expected["bills"]}
    assert {"paid", "overpaid", "partially_paid", "cancelled"} <= statuses
    reasons = " | ".join(c[12] for c in expected["credits"])
    for needle in ("joined_split", "glued", "not a bill of this institution", "is cancelled", "oldest open bill",
                   "belongs to bill", "no valid payment reference"):
        assert needle in reasons, needle
    report = report_box["r"]
    assert report.new_credits == len(expected["credits"]) and report.errors and report.skipped_outgoing
    assert report.skipped_zero and report.matched + report.unmatched == report.new_credits
    assert sum(c[4] for c in expected["credits"]) == report.amount_new
    # ... and the statistics are those of the slow path, credit by credit
    one = {}

    def slow():
        one_by_one(hospital, data)
        one.update(stats_snapshot())

    _in_savepoint(slow)
    assert expected_stats == one and expected_stats["daily"]


def identities(data: bytes) -> tuple[set[str], dict[tuple, int]]:
    """The bank transactions a file shows, by the documented rule: its bank references, and for lines
    without one, how many identical lines (day, amount, description) it has."""
    refs, plain = set(), {}
    for ln in parse_statement(data, filename="s.csv", mapping=PRESETS["generic"]).lines:
        if ln.direction != IN or ln.amount == 0:
            continue
        if ln.bank_reference:
            refs.add(ln.bank_reference)
        else:
            key = (ln.booked_at.date(), ln.amount, ln.description)
            plain[key] = plain.get(key, 0) + 1
    return refs, plain


@pytest.mark.django_db
def test_the_same_statement_again_or_an_overlapping_one_adds_nothing_twice(hospital, monkeypatch):
    monkeypatch.setattr(service, "CHUNK", 4)
    a, b = statement(hospital, n=60, seed=2), statement(hospital, n=60, seed=2, start=40)  # lines 40..59 in both
    first = do_import(hospital, a)
    assert first.new_credits > 30
    state = _snapshot()
    again = do_import(hospital, a)
    assert (again.new_credits, again.duplicates) == (0, first.new_credits)
    assert _snapshot() == state  # nothing written: no credit, entry, allocation, bill change
    overlap = do_import(hospital, b)
    assert 0 < overlap.duplicates < overlap.new_credits + overlap.duplicates
    assert do_import(hospital, b).new_credits == 0 and do_import(hospital, a).new_credits == 0
    # each transaction once: every reference of either file, and identical lines as many times as
    # the file showing the most of them
    (refs_a, plain_a), (refs_b, plain_b) = identities(a), identities(b)
    expected = len(refs_a | refs_b) + sum(max(plain_a.get(k, 0), plain_b.get(k, 0)) for k in {*plain_a, *plain_b})
    assert Credit.objects.count() == first.new_credits + overlap.new_credits == expected
    assert StatementLineRecord.objects.count() == Credit.objects.count()
    assert ledger.ledger_check().ok and stats_check() == []


@pytest.mark.django_db
def test_overlap_is_exact_for_identical_lines_without_a_reference(hospital):
    def csv(n: int) -> bytes:
        rows = [HEADER] + ["18/11/2026,100000,C,,,,UNG HO QUY" for _ in range(n)]
        return ("\n".join(rows) + "\n").encode()

    assert do_import(hospital, csv(2)).new_credits == 2
    later = do_import(hospital, csv(3))  # the bank's later statement shows the same two and a third
    assert (later.new_credits, later.duplicates) == (1, 2)
    assert Credit.objects.filter(amount=100_000).count() == 3
    assert LedgerEntry.objects.filter(account="suspense").count() == 3


@pytest.mark.django_db
def test_awkward_text_survives_the_bulk_writer(hospital):
    texts = ["a\tb", "line\nbreak", "back\\slash", "\\N", 'quote " and , comma', "Nộp tiền khám bệnh ĐỢT 2",
             "trailing\\", "cr\rlf", "{braces}", ""]
    items = [booking.CreditInput(amount=1000 + i, occurred_at=dt.datetime(2026, 11, 18, 8, i, tzinfo=VIETNAM_TZ),
                                 description=t, payer_name=t[:20], bank_reference=f"X{i}" + t[:5])
             for i, t in enumerate(texts)]
    with transaction.atomic():
        booked = booking.credit_book_many(bank_account=hospital.account, items=items)
    got = {c.pk: (c.description, c.payer_name, c.bank_reference, c.amount, c.occurred_at)
           for c in Credit.objects.all()}
    assert [got[b.credit_id] for b in booked] == [
        (it.description, it.payer_name, it.bank_reference, it.amount, it.occurred_at) for it in items]
    assert ledger.ledger_check().ok


@pytest.mark.django_db
def test_an_imported_payment_gets_its_receipt_from_the_sweep(hospital):
    from thuphi.receipts.models import Receipt
    from thuphi.receipts.services import receipts_issue_missing

    report = do_import(hospital, statement(hospital, n=40, seed=4))
    assert report.matched > 5 and report.unmatched > 0
    assert Receipt.objects.count() == 0  # the import leaves them to the worker
    assert receipts_issue_missing() == report.matched
    assert set(Receipt.objects.values_list("credit_id", flat=True)) == set(
        Credit.objects.filter(status=CreditStatus.MATCHED).values_list("id", flat=True))
    assert receipts_issue_missing() == 0


@pytest.mark.django_db
def test_pg_array_literals_quote_what_they_carry():
    assert booking.pg_array([3, 1, 2], ints=True) == "{3,1,2}"
    assert booking.pg_array(['a"b', "c\\d", "e,f", ""], ints=False) == '{"a\\"b","c\\\\d","e,f",""}'
    assert booking.pg_array([], ints=False) == "{}"


@pytest.mark.django_db
def test_bills_of_the_import_end_where_the_money_says(hospital):
    """A plain outcome check, independent of the slow path: every bill's paid amount is what its
    allocations say, and a cancelled bill took nothing."""
    do_import(hospital, statement(hospital, n=80, seed=5))
    cancelled = hospital.bills[-1]
    cancelled.refresh_from_db()
    assert (cancelled.status, cancelled.amount_paid) == (BillStatus.CANCELLED, 0)
    assert ledger.ledger_check().ok


@pytest.mark.django_db
def test_the_worker_sweep_gives_imported_payments_their_receipts_and_confirmations(hospital, monkeypatch):
    from thuphi.core.models import OutboxMessage
    from thuphi.payments import tasks
    from thuphi.receipts.models import Receipt

    # given patients with a phone, and a statement imported in bulk (no receipts, no messages yet)
    for i, payer in enumerate(hospital.payers):
        payer.phone = f"09120000{i:02d}"
        payer.save(update_fields=["phone"])
    report = do_import(hospital, statement(hospital, n=40, seed=4))
    matched = set(Credit.objects.filter(status=CreditStatus.MATCHED).values_list("id", flat=True))
    assert len(matched) == report.matched > 5
    assert Receipt.objects.count() == 0 and OutboxMessage.objects.count() == 0
    # when the worker runs with a sweep page smaller than the backlog
    monkeypatch.setattr(tasks, "SWEEP_SIZE", 4)
    calls = []
    original = tasks.sweep_unfinished
    monkeypatch.setattr(tasks, "sweep_unfinished", lambda **kw: calls.append(1) or original(limit=4))
    monkeypatch.setattr("thuphi.core.outbox.outbox_dispatch", lambda: {})  # keep the messages to look at
    tasks.run_worker(once=True)
    # then every matched credit has one receipt and its SMS queued, worked through page after page at once
    assert set(Receipt.objects.values_list("credit_id", flat=True)) == matched
    assert len(calls) >= len(matched) // 4
    paid = {k.split(":")[1] for k in OutboxMessage.objects.filter(channel="sms").values_list("dedupe_key", flat=True)}
    assert paid == {str(c) for c in matched}
    # and sweeping again issues and queues nothing more; unmatched credits got nothing
    n_messages = OutboxMessage.objects.count()
    assert tasks.sweep_unfinished() == (0, 0)
    assert OutboxMessage.objects.count() == n_messages and Receipt.objects.count() == len(matched)


@pytest.mark.django_db
def test_a_credit_the_sweep_cannot_finish_does_not_make_the_worker_spin(hospital, monkeypatch):
    from thuphi.payments import notify, tasks

    do_import(hospital, statement(hospital, n=20, seed=5))
    monkeypatch.setattr(tasks, "SWEEP_SIZE", 2)
    monkeypatch.setattr(notify, "after_commit_many", lambda ids: None)  # e.g. an exhausted receipt serial
    monkeypatch.setattr("thuphi.core.outbox.outbox_dispatch", lambda: {})
    calls = []
    original = tasks.sweep_unfinished
    monkeypatch.setattr(tasks, "sweep_unfinished", lambda **kw: calls.append(1) or original(limit=2))

    class Stop(Exception):
        pass

    sleeps = []

    def sleep(seconds):  # the worker idles between loops: stop it after a few
        sleeps.append(seconds)
        if len(sleeps) >= 3:
            raise Stop

    monkeypatch.setattr(tasks.time, "sleep", sleep)
    with pytest.raises(Stop):
        tasks.run_worker()
    # a full page without progress is not swept again at once: the next pass waits its minute
    assert len(calls) == 1 and len(sleeps) == 3
