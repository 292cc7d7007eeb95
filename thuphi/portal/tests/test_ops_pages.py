"""Staff pages for money operations: review queue, shift, refunds, reports."""
from __future__ import annotations

import io

import pytest
from django.test import Client
from django.utils import timezone
from openpyxl import load_workbook

from thuphi.billing.models import Bill
from thuphi.core.models import Role
from thuphi.payments.models import CashierShift, Credit, CreditSource, CreditStatus, Method, Refund
from thuphi.payments.services import credit_book

pytestmark = pytest.mark.django_db
PASSWORD = "Mật-khẩu-dài-2026"


def login(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def accountant(make_user, institution):
    return make_user("ketoan", Role.ACCOUNTANT, institution=institution)


@pytest.fixture
def unmatched(institution):
    c = Credit.objects.create(institution=institution, bank_account=institution.bank_accounts.first(),
                              method=Method.TRANSFER, source=CreditSource.WEBHOOK, amount=1_334_520,
                              description="NGUYEN THI LAN CHUYEN TIEN AN", payer_name="NGUYEN THI LAN",
                              occurred_at=timezone.now(), status=CreditStatus.UNMATCHED)
    return credit_book(credit=c)


def test_review_queue_lists_and_matches_in_one_click(api_as, cashier, bill_body, unmatched):
    ref = api_as(cashier).post("/api/v1/bills", bill_body).json()["reference"]
    c = login(cashier)
    page = c.get("/staff/review/")
    assert page.status_code == 200 and "NGUYEN THI LAN CHUYEN TIEN AN" in page.content.decode()
    r = c.post(f"/staff/review/{unmatched.pk}/match", {"ref_0": ref, "amount_0": "1.334.520"})
    assert r.status_code == 302
    assert Bill.objects.get(reference=ref).status == "paid"
    assert "NGUYEN THI LAN CHUYEN TIEN AN" not in c.get("/staff/review/").content.decode()


def test_review_split_with_wrong_total_changes_nothing(api_as, cashier, bill_body, unmatched):
    ref = api_as(cashier).post("/api/v1/bills", bill_body).json()["reference"]
    c = login(cashier)
    c.post(f"/staff/review/{unmatched.pk}/match", {"ref_0": ref, "amount_0": "1000"})
    assert Credit.objects.get(pk=unmatched.pk).status == "unmatched"
    assert Bill.objects.get(reference=ref).amount_paid == 0


def test_return_needs_a_second_person(cashier, accountant, unmatched):
    login(cashier).post(f"/staff/review/{unmatched.pk}/return", {
        "reason": "Chuyển nhầm", "payee_name": "NGUYEN THI LAN", "payee_bank_bin": "970436",
        "payee_account": "0123456789"})
    refund = Refund.objects.get()
    page = login(cashier).get("/staff/refunds/").content.decode()
    assert 'value="approve"' not in page  # the maker sees no approve button
    login(accountant).post(f"/staff/refunds/{refund.pk}", {"action": "approve"})
    assert Refund.objects.get().status == "approved"
    csv = login(accountant).get(f"/staff/refunds/order/{refund.institution.code}")
    assert b"0123456789" in csv.content


def test_shift_open_and_close_records_difference(cashier):
    c = login(cashier)
    c.post("/staff/shift/", {"action": "open", "opening_float": "200000"})
    assert CashierShift.objects.get().status == "open"
    c.post("/staff/shift/", {"action": "close", "counted_cash": "190000", "note": ""})
    shift = CashierShift.objects.get()
    assert shift.status == "closed" and shift.difference == -10_000
    assert "-10.000 đ" in c.get("/staff/shift/").content.decode()


def test_reports_page_downloads_xlsx(accountant, institution, unmatched):
    today = timezone.localdate().isoformat()
    r = login(accountant).get("/staff/reports/", {"institution": institution.code, "date_from": today,
                                                  "date_to": today, "kind": "reconciliation"})
    assert r.status_code == 200
    wb = load_workbook(io.BytesIO(r.content))
    assert wb["Chua xac dinh"].cell(row=2, column=2).value == 1_334_520


def test_monitor_sees_queue_but_no_action_buttons(make_user, unmatched):
    monitor = make_user("gs", Role.PROVINCIAL_MONITOR, province_id="24")
    page = login(monitor).get("/staff/review/").content.decode()
    assert "NGUYEN THI LAN CHUYEN TIEN AN" in page and "Gạch nợ theo phần chia" not in page
