"""Counter payments, allocation rules and ledger invariants (given / when / then)."""
from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from thuphi.billing.models import Bill
from thuphi.payments import ledger
from thuphi.payments.models import Account, Allocation, Credit, LedgerEntry, LedgerTransaction

pytestmark = pytest.mark.django_db


@pytest.fixture
def bill_ref(api_as, cashier, bill_body):
    from thuphi.payments.shifts import shift_open

    shift_open(actor=cashier, opening_float=0)
    return api_as(cashier).post("/api/v1/bills", bill_body).json()["reference"]  # 1,334,520 đ due


def pay(api, ref, amount, method="cash", key=None, external_ref=""):
    headers = {"Idempotency-Key": key} if key else None
    return api.post(f"/api/v1/bills/{ref}/payments", {"method": method, "amount": amount,
                                                      "external_ref": external_ref}, headers=headers)


def balance(account, **filters):
    rows = LedgerEntry.objects.filter(account=account, **filters)
    return sum(r.credit - r.debit for r in rows)


def test_exact_cash_payment_marks_paid_and_books_balanced_entries(api_as, cashier, bill_ref):
    api = api_as(cashier)
    r = pay(api, bill_ref, 1_334_520)
    assert r.status_code == 201, r.content
    assert r.json()["bill_status"] == "paid" and r.json()["bill_amount_paid"] == 1_334_520
    bill = Bill.objects.get(reference=bill_ref)
    assert balance(Account.FEE_REVENUE, bill=bill) == 1_334_520
    assert balance(Account.CASH_DRAWER) == -1_334_520
    assert balance(Account.PAYER_CREDIT) == 0
    assert ledger.ledger_check().ok


def test_partial_then_rest(api_as, cashier, bill_ref):
    api = api_as(cashier)
    assert pay(api, bill_ref, 1_000_000).json()["bill_status"] == "partially_paid"
    fetched = api.get(f"/api/v1/bills/{bill_ref}").json()
    assert fetched["amount_outstanding"] == 334_520
    # the QR now asks for what is left, not the original amount
    from thuphi.billing import vietqr
    assert vietqr.parse_payload(fetched["vietqr"]).amount == 334_520
    assert pay(api, bill_ref, 334_520, method="card").json()["bill_status"] == "paid"
    assert ledger.ledger_check().ok


def test_overpayment_keeps_the_excess_as_payer_credit(api_as, cashier, bill_ref):
    r = pay(api_as(cashier), bill_ref, 1_400_000, method="transfer")
    assert r.json()["bill_status"] == "overpaid"
    bill = Bill.objects.get(reference=bill_ref)
    assert balance(Account.FEE_REVENUE, bill=bill) == 1_334_520
    assert balance(Account.PAYER_CREDIT, payer=bill.payer) == 65_480
    assert ledger.ledger_check().ok


def test_payment_idempotency(api_as, cashier, bill_ref):
    api = api_as(cashier)
    a = pay(api, bill_ref, 500_000, key="pos-slip-001")
    b = pay(api, bill_ref, 500_000, key="pos-slip-001")
    assert a.status_code == 201 and b.status_code == 200 and a.json()["id"] == b.json()["id"]
    c = pay(api, bill_ref, 600_000, key="pos-slip-001")
    assert c.status_code == 409
    assert Credit.objects.count() == 1
    assert Bill.objects.get(reference=bill_ref).amount_paid == 500_000


def test_cancelled_bill_takes_no_money_and_nothing_is_written(api_as, cashier, bill_ref):
    api = api_as(cashier)
    api.post(f"/api/v1/bills/{bill_ref}/cancel", {"reason": "Lập nhầm"})
    r = pay(api, bill_ref, 100_000)
    assert r.status_code in (409, 422) and r.json()["code"] == "payment_refused"
    assert Credit.objects.count() == 0 and LedgerEntry.objects.count() == 0 and Allocation.objects.count() == 0


@pytest.mark.parametrize("body", [{"method": "cheque", "amount": 1000}, {"method": "cash", "amount": 0},
                                  {"method": "cash", "amount": -5}, {"method": "cash", "amount": 10.5}])
def test_bad_payment_input_is_refused(api_as, cashier, bill_ref, body):
    r = api_as(cashier).post(f"/api/v1/bills/{bill_ref}/payments", body)
    assert r.status_code == 422
    assert Credit.objects.count() == 0 and LedgerEntry.objects.count() == 0


def test_cash_needs_an_open_shift(api_as, cashier, bill_ref):
    from thuphi.payments.shifts import shift_close

    shift_close(actor=cashier, counted_cash=0)
    r = pay(api_as(cashier), bill_ref, 1000, method="cash")
    assert r.status_code == 422 and r.json()["code"] == "no_open_shift"
    assert Credit.objects.count() == 0


def test_monitor_cannot_record_payments(api_as, make_user, bill_ref):
    monitor = make_user("gs", "provincial_monitor", province_id="24")
    r = pay(api_as(monitor), bill_ref, 1000)
    assert r.status_code == 403
    assert Credit.objects.count() == 0


def test_ledger_rows_cannot_be_changed(api_as, cashier, bill_ref):
    pay(api_as(cashier), bill_ref, 1000)
    entry = LedgerEntry.objects.first()
    entry.debit = entry.debit + 1 if entry.debit else 0
    with pytest.raises(RuntimeError):
        entry.save()
    with pytest.raises(RuntimeError):
        LedgerTransaction.objects.first().delete()
    if connection.vendor == "postgresql":
        # The database itself refuses, whatever code path tries.
        # psycopg maps the trigger's RAISE to ProgrammingError or InternalError by SQLSTATE.
        from django.db.utils import DatabaseError

        with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
            with connection.cursor() as cur:
                cur.execute("UPDATE payments_ledgerentry SET debit = debit + 1")
        with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
            with connection.cursor() as cur:
                cur.execute("DELETE FROM payments_ledgerentry")
    assert ledger.ledger_check().ok


def test_ledger_check_detects_a_tampered_bill(api_as, cashier, bill_ref):
    pay(api_as(cashier), bill_ref, 1000)
    Bill.objects.filter(reference=bill_ref).update(amount_paid=2000)
    report = ledger.ledger_check()
    assert not report.ok and any(bill_ref in p for p in report.problems)


def test_ledger_check_command_exit_code(api_as, cashier, bill_ref):
    from django.core.management import CommandError, call_command

    pay(api_as(cashier), bill_ref, 1000)
    call_command("ledger", "check")
    Bill.objects.filter(reference=bill_ref).update(amount_paid=0)
    with pytest.raises(CommandError):
        call_command("ledger", "check")


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_payments_on_one_bill_lose_nothing(api_as, cashier, bill_body):
    # given one bill and 50 cashiers' requests arriving at once
    from thuphi.payments.shifts import shift_open

    shift_open(actor=cashier)
    api = api_as(cashier)
    ref = api.post("/api/v1/bills", bill_body).json()["reference"]
    headers = api.headers
    errors: list = []
    barrier = threading.Barrier(10)

    def worker(n: int) -> None:
        from django.test import Client

        try:
            c = Client()
            if n < 10:
                barrier.wait(timeout=10)
            r = c.post(f"/api/v1/bills/{ref}/payments", data={"method": "cash", "amount": 10_000 + n},
                       content_type="application/json", headers=headers)
            if r.status_code != 201:
                errors.append((r.status_code, r.content[:200]))
        except Exception as exc:  # noqa: BLE001
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then every payment is on the bill, once
    assert errors == []
    expected = sum(10_000 + n for n in range(50))
    bill = Bill.objects.get(reference=ref)
    assert bill.amount_paid == expected
    assert Credit.objects.count() == 50 and Allocation.objects.count() == 50
    assert ledger.ledger_check().ok
