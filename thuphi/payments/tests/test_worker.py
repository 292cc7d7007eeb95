"""The worker's batch path books stored notifications with the same outcome as `event_apply`, each once."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.apps import apps
from django.db import connections, transaction

from thuphi.billing.models import Bill
from thuphi.billing.services import LineInput, bill_cancel, bill_create
from thuphi.payments import ledger
from thuphi.payments.models import (
    Allocation,
    Credit,
    EventStatus,
    InboundEvent,
    LedgerEntry,
)
from thuphi.payments.providers import NormalizedCredit
from thuphi.payments.services import event_apply, event_receive, events_apply_batch
from thuphi.payments.tasks import apply_pending, run_worker
from thuphi.receipts.models import Receipt
from thuphi.registry.models import BankAccount
from thuphi.registry.services import payer_upsert

WHEN = dt.datetime(2026, 11, 20, 9, 15, tzinfo=dt.timezone(dt.timedelta(hours=7)))


@pytest.fixture
def world(institution, settings):
    settings.PAYMENTS_APPLY_INLINE = False  # as with `thuphi worker`: events wait for the worker
    account = BankAccount.objects.get(institution=institution, is_default=True)
    due = dt.date.today() + dt.timedelta(days=15)
    bills = []
    for i in range(6):
        payer = payer_upsert(institution=institution, code=f"HS{i:03d}", name=f"Học sinh {i}")
        bills.append(bill_create(actor=None, institution=institution, payer=payer, due_date=due,
                                 items=[LineInput(name="Tiền ăn", amount=300_000 + i, kind="meals_boarding"),
                                        LineInput(name="BHYT", amount=100_000, kind="student_insurance")]))
    return account, bills


def receive(account, event_id: str, amount: int, description: str, *, bank_reference: str = "",
            provider: str = "generic", when: dt.datetime = WHEN, is_test: bool = False) -> InboundEvent:
    credit = NormalizedCredit(provider=provider, event_id=event_id, account_number=account.account_number,
                              virtual_account="", amount=amount, direction="in", description=description,
                              occurred_at=when, bank_reference=bank_reference, is_test=is_test, payer_name="")
    assert event_receive(provider=provider, bank_account=account, credit=credit, raw_body=b"{}") == "stored"
    return InboundEvent.objects.get(provider=provider, event_id=event_id)


def mixed_events(account, bills) -> list[InboundEvent]:
    a, b, c, d, e, cancelled = bills
    bill_cancel(actor=None, bill=cancelled, reason="học sinh chuyển trường")
    first = receive(account, "E-already", 50_000, f"HP {e.reference}", bank_reference="FT-SEEN")
    assert event_apply(event_id=first.pk) == EventStatus.APPLIED  # booked before the batch
    return [
        receive(account, "E1", a.amount_due, f"MBVCB.2427229823.{a.reference} NOP TIEN AN", bank_reference="FT1"),
        receive(account, "E2", 100_000, f"IBFT {b.reference[:5]} {b.reference[5:]} dot 1", bank_reference="FT2"),
        receive(account, "E3", b.amount_due, f"{b.reference} dot 2", bank_reference="FT3"),  # overpays b
        receive(account, "E4", c.amount_due + d.amount_due, f"{c.reference} {d.reference} hai con",
                bank_reference="FT4", when=WHEN + dt.timedelta(days=1)),
        receive(account, "E5", 77_000, "chuyen tien hoc phi", bank_reference="FT5"),  # no reference: suspense
        receive(account, "E6", 99_000, f"HP {cancelled.reference}", bank_reference="FT6"),  # cancelled bill
        receive(account, "E7", 50_000, f"HP {e.reference}", bank_reference="FT-SEEN"),  # same transfer again
        receive(account, "E8", 40_000, f"HP {e.reference}", bank_reference="FT8", provider="sepay"),
        receive(account, "E9", 40_000, f"HP {e.reference}", bank_reference="FT8"),  # FT8 via another provider
        receive(account, "E10", 60_000, f"HP {e.reference}"),  # no bank reference at all
        receive(account, "PING", 0, "test", is_test=True),
    ]


def snapshot() -> dict:
    """Everything booking writes, keyed by event ids and references rather than row ids."""
    by_credit = {c.pk: (c.event.event_id if c.event_id else f"credit {c.pk}")
                 for c in Credit.objects.select_related("event")}
    return {
        "events": sorted(InboundEvent.objects.values_list("event_id", "status", "error", "attempts")),
        "credits": sorted((by_credit[c.pk], c.status, c.match_reason, c.amount, c.source, c.method,
                           c.bank_reference, c.institution_id, c.bank_account_id)
                          for c in Credit.objects.all()),
        "allocations": sorted((by_credit[a.credit_id], a.bill.reference, a.amount)
                              for a in Allocation.objects.select_related("bill")),
        "ledger": sorted((by_credit[e.transaction.credit_id], e.transaction.kind, e.transaction.memo, e.account,
                          e.debit, e.credit, e.bill_id, e.payer_id, e.bank_account_id)
                         for e in LedgerEntry.objects.select_related("transaction")),
        "bills": sorted(Bill.objects.values_list("reference", "amount_paid", "status")),
        # every statistics table of monitoring, whatever it keeps
        **{model.__name__: sorted(model.objects.values_list(*[f.attname for f in model._meta.concrete_fields]))
           for model in apps.get_app_config("monitoring").get_models() if model.__name__.endswith("Stat")},
    }


@pytest.mark.django_db(transaction=True)
def test_a_batch_books_exactly_what_event_apply_books_one_by_one(world):
    # given stored events of every kind: exact, partial, overpaid, two bills, no reference, a
    # cancelled bill, a transfer already booked, one transfer reported by two providers, a ping
    account, bills = world
    events = mixed_events(account, bills)
    pending = [e.pk for e in events if e.status == EventStatus.PENDING]
    # when the batch path books them, and, from the same state, event_apply one by one
    with transaction.atomic():
        assert events_apply_batch(size=500) == len(pending)
        batch = snapshot()
        transaction.set_rollback(True)
    with transaction.atomic():
        for pk in pending:
            event_apply(event_id=pk)
        single = snapshot()
        transaction.set_rollback(True)
    # then both write the same credits, allocations, ledger entries, bills, statistics and statuses
    assert batch == single
    statuses = dict((e, s) for e, s, _err, _n in batch["events"])
    assert statuses == {"E-already": "applied", "E1": "applied", "E2": "applied", "E3": "applied",
                        "E4": "applied", "E5": "applied", "E6": "applied", "E7": "ignored", "E8": "applied",
                        "E9": "ignored", "E10": "applied", "PING": "ignored"}
    credit_status = {c[0]: c[1] for c in batch["credits"]}
    assert credit_status["E5"] == credit_status["E6"] == "unmatched"
    assert {b[2] for b in batch["bills"]} >= {"paid", "overpaid", "cancelled"}


@pytest.mark.django_db(transaction=True)
def test_the_worker_drains_every_batch_links_credits_and_issues_receipts(world):
    account, bills = world
    # 450 events (more than two batches) over six bills
    for i in range(450):
        bill = bills[i % 5]
        receive(account, f"W{i}", 1_000 + i, f"HP {bill.reference}", bank_reference=f"FTW{i}")
    # when `thuphi worker --once` runs
    run_worker(once=True)
    # then every event is applied by exactly one credit that points back at it, and every matched
    # credit has its receipt, numbered in the order the money arrived
    assert InboundEvent.objects.filter(status=EventStatus.PENDING).count() == 0
    assert Credit.objects.count() == 450 == Credit.objects.filter(event__isnull=False).count()
    assert set(Credit.objects.values_list("event__event_id", flat=True)) == {f"W{i}" for i in range(450)}
    for bill in Bill.objects.exclude(pk=bills[5].pk):
        assert bill.amount_paid == sum(a.amount for a in bill.allocations.all()) > 0
    receipts = list(Receipt.objects.order_by("credit_id").values_list("number", flat=True))
    assert len(receipts) == 450 and receipts == sorted(receipts)
    assert ledger.ledger_check().ok


@pytest.mark.django_db(transaction=True)
def test_a_failing_batch_is_applied_one_by_one(world, monkeypatch):
    account, bills = world
    events = [receive(account, f"F{i}", 10_000, f"HP {bills[0].reference}", bank_reference=f"FTF{i}")
              for i in range(3)]
    from thuphi.payments.statements import booking

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(booking, "credit_book_many", broken)
    assert apply_pending() == 3
    assert all(e.status == EventStatus.APPLIED for e in InboundEvent.objects.filter(pk__in=[x.pk for x in events]))
    assert Bill.objects.get(pk=bills[0].pk).amount_paid == 30_000
    assert ledger.ledger_check().ok


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_book_each_event_once(world, make_institution):
    # given events of two institutions, interleaved, and three workers at once
    account, bills = world
    other = make_institution(code="BN-TH-02", name="Trường Tiểu học Đông Ngàn")
    other_account = BankAccount.objects.get(institution=other)
    payer = payer_upsert(institution=other, code="HS900", name="Học sinh 900")
    other_bill = bill_create(actor=None, institution=other, payer=payer, due_date=dt.date.today(),
                             items=[LineInput(name="Tiền ăn", amount=500_000, kind="meals_boarding")])
    for i in range(300):
        if i % 3 == 2:
            receive(other_account, f"C{i}", 5_000, f"HP {other_bill.reference}", bank_reference=f"FTC{i}")
        else:
            receive(account, f"C{i}", 5_000, f"HP {bills[i % 5].reference}", bank_reference=f"FTC{i}")
    errors: list[BaseException] = []

    def worker():
        try:
            while apply_pending(size=25):
                pass
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then each is booked once, and each institution has one receipt per credit, numbered without gaps
    # (concurrent workers issue in the order they reach the counter, not in credit order)
    assert not errors
    assert Credit.objects.count() == 300 and InboundEvent.objects.filter(status=EventStatus.APPLIED).count() == 300
    assert sum(Bill.objects.values_list("amount_paid", flat=True)) == 300 * 5_000
    assert Bill.objects.get(pk=other_bill.pk).amount_paid == 100 * 5_000
    for inst in (bills[0].institution_id, other.pk):
        numbers = sorted(Receipt.objects.filter(institution_id=inst).values_list("number", flat=True))
        assert numbers == list(range(1, Credit.objects.filter(institution_id=inst).count() + 1))
    assert ledger.ledger_check().ok
