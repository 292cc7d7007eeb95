"""Receipt numbers: gapless per institution, form and year, restarting every year, safe under concurrency."""
from __future__ import annotations

import datetime as dt
import logging
import threading

import pytest
from django.db import connections

from thuphi.billing.models import Bill
from thuphi.payments.models import Credit
from thuphi.receipts import services
from thuphi.receipts.errors import ReceiptNotIssuable, ValidationFailed
from thuphi.receipts.models import Receipt, ReceiptCounter, ReceiptStatus
from thuphi.receipts.tests.helpers import matched_credit
from thuphi.receipts.xml import VN_TZ

pytestmark = pytest.mark.django_db

MARCH = dt.datetime(2026, 3, 1, 9, 0, tzinfo=VN_TZ)


@pytest.fixture
def bill(api_as, cashier, bill_body):
    ref = api_as(cashier).post("/api/v1/bills", bill_body).json()["reference"]  # 1,334,520 đ due
    return Bill.objects.get(reference=ref)


@pytest.fixture
def other_bill(api_as, system_admin, make_institution, bill_body):
    other = make_institution(code="BN-TH-02", name="Trường Tiểu học Đình Bảng")
    ref = api_as(system_admin).post("/api/v1/bills", {**bill_body, "institution": other.code}).json()["reference"]
    return Bill.objects.get(reference=ref)


def issue(bill, amount=100_000, now=MARCH):
    return services.receipt_issue_for_credit(credit=matched_credit(bill, amount), now=now)


def test_numbers_run_from_0000001_without_gaps_per_institution(bill, other_bill):
    # given two institutions taking payments in the same year
    a = [issue(bill) for _ in range(3)]
    b = [issue(other_bill) for _ in range(2)]
    a.append(issue(bill))
    # then each counts on its own, from 1, without gaps
    assert [r.number for r in a] == [1, 2, 3, 4]
    assert [r.number for r in b] == [1, 2]
    assert [r.number_display for r in a] == ["0000001", "0000002", "0000003", "0000004"]
    assert {r.form_symbol for r in a + b} == {"01BLP0-001"}
    assert {r.serial for r in a + b} == {"AA-26E"}


def test_numbering_restarts_with_the_vietnamese_new_year(bill):
    # given receipts up to the last second of 2026 in Vietnam
    last_2026 = dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=VN_TZ)
    assert [issue(bill, now=last_2026).number for _ in range(2)] == [1, 2]
    # when one is issued at 17:00:01 UTC on 31 Dec 2026, already 1 January 2027 in Vietnam
    first_2027 = issue(bill, now=dt.datetime(2026, 12, 31, 17, 0, 1, tzinfo=dt.timezone.utc))
    # then it opens the 2027 serial at 0000001
    assert (first_2027.year, first_2027.serial, first_2027.number) == (2027, "AA-27E", 1)
    assert first_2027.issue_date == dt.date(2027, 1, 1)
    assert issue(bill, now=dt.datetime(2027, 1, 2, 8, 0, tzinfo=VN_TZ)).number == 2
    # and one more in 2026 (a late issuance dated in 2026) continues 2026, not 2027
    assert issue(bill, now=last_2026).number == 3
    assert sorted(ReceiptCounter.objects.values_list("serial", "year", "last_number")) == [
        ("AA-26E", 2026, 3), ("AA-27E", 2027, 2)]


def test_issuing_twice_for_one_credit_returns_the_same_receipt(bill):
    credit = matched_credit(bill, 500_000)
    first = services.receipt_issue_for_credit(credit=credit, now=MARCH)
    again = services.receipt_issue_for_credit(credit=credit, now=MARCH + dt.timedelta(days=1))
    services.receipt_issue_after_commit(credit_id=credit.pk)
    assert again.pk == first.pk and Receipt.objects.count() == 1
    assert ReceiptCounter.objects.get().last_number == 1


def test_cancelled_receipt_keeps_its_number_and_the_next_takes_the_next(bill, make_user, institution):
    accountant = make_user("ketoan", "accountant", institution=institution)
    first, second = issue(bill), issue(bill)
    cancelled = services.receipt_cancel(actor=accountant, receipt=second, reason="Ghi nhầm người nộp")
    third = issue(bill)
    cancelled.refresh_from_db()
    assert (cancelled.number, cancelled.status) == (2, ReceiptStatus.CANCELLED)
    assert cancelled.cancel_reason == "Ghi nhầm người nộp" and cancelled.cancelled_by == accountant
    assert cancelled.cancelled_at is not None
    assert [first.number, third.number] == [1, 3]


def test_unmatched_credit_gets_no_receipt(bill, caplog):
    credit = matched_credit(bill, 1000)
    Credit.objects.filter(pk=credit.pk).update(status="unmatched")
    with pytest.raises(ReceiptNotIssuable):
        services.receipt_issue_for_credit(credit=credit)
    services.receipt_issue_after_commit(credit_id=credit.pk)  # quiet: no receipt by design
    services.receipt_issue_after_commit(credit_id=999_999)  # unknown credit: logged, not raised
    assert Receipt.objects.count() == 0 and ReceiptCounter.objects.count() == 0


def test_after_commit_failure_is_logged_not_raised_and_caught_up_later(bill, monkeypatch, caplog):
    credit = matched_credit(bill, 1000)
    real = services.receipt_issue_for_credit

    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "receipt_issue_for_credit", broken)
    with caplog.at_level(logging.ERROR, logger="thuphi.receipts.services"):
        services.receipt_issue_after_commit(credit_id=credit.pk)
    assert "failed" in caplog.text and Receipt.objects.count() == 0
    monkeypatch.setattr(services, "receipt_issue_for_credit", real)
    assert services.receipts_issue_missing() == 1
    assert Receipt.objects.get().credit_id == credit.pk


def test_new_receipt_form_starts_its_own_numbering(bill, make_user, institution):
    admin = make_user("qtdv", "institution_admin", institution=institution)
    assert issue(bill).serial == "AA-26E"
    services.receipt_form_set(actor=admin, institution=institution, form_symbol="01BLP0-002", serial_prefix="BL")
    r = issue(bill)
    assert (r.form_symbol, r.serial, r.number) == ("01BLP0-002", "BL-26E", 1)
    with pytest.raises(ValidationFailed) as exc:
        services.receipt_form_set(actor=admin, institution=institution, form_symbol="01BLP0-002",
                                  serial_prefix="FI")  # F and I are not Vietnamese letters
    assert getattr(exc.value, "code", "") == "invalid_serial"


@pytest.fixture
def admin_units(db):
    # A transactional test before this one may have flushed the communes the data migration loaded.
    from thuphi.registry.models import Commune
    from thuphi.registry.services import admin_units_sync

    if not Commune.objects.exists():
        admin_units_sync()


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_issuances_get_twenty_consecutive_numbers(admin_units, api_as, cashier, bill_body):
    # given 20 paid credits on one institution, and 5 extra requests repeating the first credit
    ref = api_as(cashier).post("/api/v1/bills", bill_body).json()["reference"]
    bill = Bill.objects.get(reference=ref)
    credit_ids = [matched_credit(bill, 10_000 + n).pk for n in range(20)]
    jobs = credit_ids + [credit_ids[0]] * 5
    barrier = threading.Barrier(len(jobs))
    errors: list = []
    numbers: dict[int, set[int]] = {}

    def worker(credit_id: int) -> None:
        try:
            barrier.wait(timeout=20)
            r = services.receipt_issue_for_credit(credit=Credit(pk=credit_id))
            numbers.setdefault(credit_id, set()).add(r.number)
        except Exception as exc:  # noqa: BLE001
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(cid,)) for cid in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then 20 receipts numbered 1..20, one per credit, the repeats getting the same one
    assert errors == []
    assert all(len(v) == 1 for v in numbers.values())
    assert sorted(n for v in numbers.values() for n in v) == list(range(1, 21))
    assert sorted(Receipt.objects.values_list("number", flat=True)) == list(range(1, 21))
    assert ReceiptCounter.objects.get().last_number == 20
