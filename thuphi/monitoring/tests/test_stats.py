"""Statistics from the ledger: the incremental path and the rebuild give exactly the same numbers.

Payments go through the real services (counter payments, signed webhooks, manual matching, reversals);
the payments app moves the statistics itself. The tests never call the hooks after a payment: they
compare what the hooks left with what `stats_rebuild` recomputes from the credits.
"""
from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.test import Client

from thuphi.billing.services import LineInput, bill_create
from thuphi.core.models import Role
from thuphi.monitoring import services
from thuphi.monitoring.models import DailyStat, MonthlyStat
from thuphi.monitoring.stats import Contribution, _apply, credit_contribution, stats_check, stats_snapshot
from thuphi.payments import refunds, shifts
from thuphi.payments.models import Credit, CreditStatus, Method
from thuphi.payments.providers import sign_generic
from thuphi.payments.services import credit_match_manual, payment_record
from thuphi.registry.models import BankAccount
from thuphi.registry.services import payer_upsert

SECRET = "generic-secret-0123456789abcdef"


@pytest.fixture
def school(make_institution):
    return make_institution(code="BN-TH-01", name="Trường Tiểu học Kinh Bắc")


@pytest.fixture
def staff(make_user, school):
    cashier = make_user("thungan", Role.CASHIER, institution=school)
    accountant = make_user("ketoan", Role.ACCOUNTANT, institution=school)
    shifts.shift_open(actor=cashier, opening_float=0)
    return cashier, accountant


@pytest.fixture
def account(school):
    from thuphi.payments.services import connection_set

    acc = BankAccount.objects.get(institution=school, is_default=True)
    connection_set(bank_account=acc, provider="generic", secret=SECRET)
    return acc


def issue(actor, school, code, *lines):
    payer = payer_upsert(institution=school, code=code, name=f"Học sinh {code}", phone="0912345678")
    return bill_create(actor=actor, institution=school, payer=payer, due_date=dt.date.today() + dt.timedelta(days=9),
                       items=[LineInput(name=k, amount=a, kind=k, discount_amount=d) for k, a, d in lines])


def webhook(account, *, event_id: str, amount: int, memo: str, when: str):
    raw = json.dumps({"id": event_id, "account_number": account.account_number, "virtual_account": None,
                      "amount": amount, "description": memo, "transaction_date": when,
                      "reference_code": f"FT{event_id}", "type": "credit"}).encode()
    header = sign_generic(secret=SECRET, raw_body=raw, timestamp=int(time.time()))
    r = Client().post("/api/v1/webhooks/generic", data=raw, content_type="application/json",
                      headers={"Thuphi-Signature": header})
    assert r.status_code == 200, r.content


def assert_rebuild_equal():
    kept = stats_snapshot()
    assert kept["daily"], "the payments app moved no statistics: is the hook wired?"
    sql = services.stats_rebuild()
    assert stats_snapshot() == kept
    python = services.stats_rebuild(method="python")
    assert stats_snapshot() == kept
    assert (sql.payments, sql.value, sql.daily_rows) == (python.payments, python.value, python.daily_rows)
    return kept


@pytest.mark.django_db
def test_a_mix_of_payments_reversals_and_matching_rebuilds_to_the_same_numbers(
        school, staff, account, make_user, django_capture_on_commit_callbacks):
    cashier, accountant = staff
    # bills whose largest line (net of discount) decides the fee kind
    a = issue(cashier, school, "HS1", ("meals_boarding", 450_000, 0), ("student_insurance", 884_520, 0))
    b = issue(cashier, school, "HS2", ("tuition", 2_000_000, 0))
    c = issue(cashier, school, "HS3", ("tuition", 1_000_000, 800_000), ("services", 300_000, 0))
    # counter payments of every method
    payment_record(actor=cashier, bill=a, method=Method.CASH, amount=500_000)
    card = payment_record(actor=cashier, bill=b, method=Method.CARD, amount=2_000_000)
    payment_record(actor=cashier, bill=c, method=Method.TRANSFER, amount=500_000)
    payment_record(actor=cashier, bill=a, method=Method.EWALLET, amount=834_520)
    # bank notifications: matched by the code in a mangled memo, one unmatched, one just after midnight
    with django_capture_on_commit_callbacks(execute=True):
        webhook(account, event_id="E1", amount=100_000, memo=f"MBVCB.1.2.{c.reference} NOP TIEN",
                when="2026-11-20T09:15:00+07:00")
        webhook(account, event_id="E2", amount=777_000, memo="CHUYEN TIEN KHONG RO", when="2026-11-20T10:00:00+07:00")
        webhook(account, event_id="E3", amount=250_000, memo=f"{b.reference}", when="2026-11-21T00:30:00+07:00")
    assert Credit.objects.count() == 7
    unmatched = Credit.objects.get(status=CreditStatus.UNMATCHED)
    assert DailyStat.objects.get(day=dt.date(2026, 11, 20), fee_kind="unmatched").value == 777_000
    assert_rebuild_equal()

    # a chargeback on the card payment, and staff matching the unknown transfer
    refunds.credit_reverse(actor=accountant, credit=card, reason="Ngân hàng hoàn giao dịch thẻ")
    credit_match_manual(actor=accountant, credit=unmatched, splits=[(b, 777_000)], note="phụ huynh gọi điện")
    kept = assert_rebuild_equal()

    daily = {(k[1], k[2], k[3]): v for k, v in kept["daily"].items()}
    today = credit_contribution(card).day
    assert daily[(today, "student_insurance", "cash")] == (1, 500_000)
    assert daily[(today, "student_insurance", "ewallet")] == (1, 834_520)
    assert daily[(today, "services", "transfer")] == (1, 500_000)  # tuition 200,000 net < services 300,000
    assert (today, "tuition", "card") not in daily  # reversed: withdrawn
    assert daily[(dt.date(2026, 11, 20), "tuition", "transfer")] == (1, 777_000)  # matched later, kind moves
    assert daily[(dt.date(2026, 11, 20), "services", "transfer")] == (1, 100_000)
    # 00:30 in Hà Nội is 17:30 UTC the day before: counted on the local day
    assert daily[(dt.date(2026, 11, 21), "tuition", "transfer")] == (1, 250_000)
    monthly = {(k[1], k[2], k[3]): v for k, v in kept["monthly"].items()}
    assert monthly[(dt.date(2026, 11, 1), "tuition", "transfer")] == (2, 1_027_000)
    assert stats_check() == []

    # the indicators read these tables: a whole month (month rows) and single days (day rows) agree
    from thuphi.monitoring.selectors import kpi_compute, scope_build

    admin = make_user("qt", Role.SYSTEM_ADMIN)
    counted = [c for c in Credit.objects.all() if c.status in ("matched", "unmatched")]
    month = credit_contribution(counted[0]).month
    in_month = [c for c in counted if credit_contribution(c).month == month]
    kpi = kpi_compute(scope_build(user=admin, area="24", start=month,
                                  end=(month + dt.timedelta(days=31)).replace(day=1) - dt.timedelta(days=1)))
    assert kpi.ledger.payments == len(in_month) and kpi.ledger.value == sum(c.amount for c in in_month)
    assert kpi.ledger.payments_cashless == sum(1 for c in in_month if c.method != "cash")
    kpi = kpi_compute(scope_build(user=admin, area="VN", start="2026-11-20", end="2026-11-21"))
    days = [c for c in counted if dt.date(2026, 11, 20) <= credit_contribution(c).day <= dt.date(2026, 11, 21)]
    assert (kpi.ledger.payments, kpi.ledger.value) == (len(days), sum(c.amount for c in days))
    assert kpi.institutions_reporting == 1


@pytest.mark.django_db
def test_rebuild_repairs_lost_or_damaged_statistics(school, staff):
    cashier, _ = staff
    bill = issue(cashier, school, "HS1", ("tuition", 1_000_000, 0))
    payment_record(actor=cashier, bill=bill, method=Method.CASH, amount=1_000_000)
    kept = stats_snapshot()
    DailyStat.objects.update(payments=99)
    MonthlyStat.objects.all().delete()
    assert len(stats_check()) == 2
    report = services.stats_rebuild()
    assert stats_snapshot() == kept and report.payments == 1 and report.value == 1_000_000
    assert report.daily_rows == 1 and report.monthly_rows == 1


@pytest.mark.django_db
def test_an_unmatched_credit_returned_to_its_sender_stops_counting(school, staff, account, make_user,
                                                                    django_capture_on_commit_callbacks):
    cashier, accountant = staff
    admin = make_user("qtdv", Role.INSTITUTION_ADMIN, institution=school)
    with django_capture_on_commit_callbacks(execute=True):
        webhook(account, event_id="E9", amount=300_000, memo="NHAM TAI KHOAN", when="2026-11-20T09:00:00+07:00")
    credit = Credit.objects.get()
    refund = refunds.refund_request(actor=accountant, kind="return_unmatched", amount=300_000, reason="Chuyển nhầm",
                                    payee_name="NGUYEN VAN A", payee_bank_bin="970436", payee_account="0011223344",
                                    credit=credit)
    refunds.refund_decide(actor=admin, refund=refund, approve=True)
    assert Credit.objects.get().status == CreditStatus.RETURNED
    assert stats_snapshot()["daily"] == {}
    services.stats_rebuild()
    assert stats_snapshot()["daily"] == {}


@pytest.mark.django_db
def test_withdrawing_the_last_payment_of_a_row_removes_the_row(school, staff):
    cashier, accountant = staff
    bill = issue(cashier, school, "HS1", ("tuition", 1_000_000, 0))
    credit = payment_record(actor=cashier, bill=bill, method=Method.TRANSFER, amount=1_000_000)
    assert DailyStat.objects.count() == 1 and MonthlyStat.objects.count() == 1
    refunds.credit_reverse(actor=accountant, credit=credit, reason="Hoàn")
    assert DailyStat.objects.count() == 0 and MonthlyStat.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_bookings_on_one_new_row_lose_nothing(make_institution):
    """Eight transactions add to the same (not yet existing) row at once: the unique constraint makes one
    create it, the others increment it. PostgreSQL runs them truly in parallel; SQLite serialises writers."""
    inst = make_institution(code="CONC-1")
    day = dt.date(2026, 11, 20)
    n = 8
    barrier = threading.Barrier(n)
    errors = []

    def book(i):
        try:
            barrier.wait(timeout=10)
            for attempt in range(20):
                try:
                    with transaction.atomic():
                        _apply(Contribution(inst.pk, day, "tuition", "transfer", 1, 1000 + i), +1)
                    break
                except Exception as exc:  # SQLite "database is locked" under contention: retry like a worker
                    if connection.vendor != "sqlite" or "locked" not in str(exc):
                        raise
                    time.sleep(0.05 * (attempt + 1))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=book, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    row = DailyStat.objects.get(institution=inst, day=day)
    assert row.payments == n and row.value == sum(1000 + i for i in range(n))
    assert MonthlyStat.objects.get(institution=inst).payments == n
