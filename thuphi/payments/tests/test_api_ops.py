"""Operations through the API: shifts, review queue, reversal, refunds, reports."""
from __future__ import annotations

import datetime as dt
import io

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from thuphi.billing.models import Bill
from thuphi.core.models import Role
from thuphi.payments import ledger
from thuphi.payments.models import Credit, CreditSource, CreditStatus, Method, Refund
from thuphi.payments.services import credit_book

pytestmark = pytest.mark.django_db


@pytest.fixture
def accountant(make_user, institution):
    return make_user("ketoan", Role.ACCOUNTANT, institution=institution)


def unmatched_credit(institution, amount, description="CHUYEN TIEN"):
    c = Credit.objects.create(institution=institution, bank_account=institution.bank_accounts.first(),
                              method=Method.TRANSFER, source=CreditSource.WEBHOOK, amount=amount,
                              description=description, payer_name="NGUYEN THI LAN", occurred_at=timezone.now(),
                              status=CreditStatus.UNMATCHED)
    return credit_book(credit=c)


def test_shift_cash_and_cashier_day_report(api_as, cashier, institution, bill_body):
    api = api_as(cashier)
    assert api.post("/api/v1/shifts/open", {"opening_float": 500_000}).status_code == 201
    assert api.post("/api/v1/shifts/open", {"opening_float": 0}).status_code == 409
    ref = api.post("/api/v1/bills", bill_body).json()["reference"]
    api.post(f"/api/v1/bills/{ref}/payments", {"method": "cash", "amount": 300_000})
    api.post(f"/api/v1/bills/{ref}/payments", {"method": "card", "amount": 200_000})
    closed = api.post("/api/v1/shifts/close", {"counted_cash": 800_000}).json()
    assert closed["expected_cash"] == 800_000 and closed["difference"] == 0
    today = timezone.localdate().isoformat()
    day = api.get(f"/api/v1/reports/cashier-day?institution={institution.code}&date={today}").json()
    assert day["count"] == 2 and day["amount"] == 500_000
    x = api.get(f"/api/v1/reports/cashier-day?institution={institution.code}&date={today}&format=xlsx")
    wb = load_workbook(io.BytesIO(x.content))
    assert wb["Thu theo thu ngan"].cell(row=2, column=4).value in (200_000, 300_000)


def test_review_queue_match_by_staff(api_as, accountant, cashier, institution, bill_body):
    ref = api_as(cashier).post("/api/v1/bills", bill_body).json()["reference"]
    bill = Bill.objects.get(reference=ref)
    c = unmatched_credit(institution, bill.amount_due)
    api = api_as(accountant)
    queue = api.get("/api/v1/credits").json()
    assert [q["id"] for q in queue] == [c.pk]
    r = api.post(f"/api/v1/credits/{c.pk}/match", {"splits": [{"reference": ref, "amount": bill.amount_due}]})
    assert r.status_code == 200 and r.json()["status"] == "matched"
    assert Bill.objects.get(reference=ref).status == "paid"
    assert api.get("/api/v1/credits").json() == []
    assert ledger.ledger_check().ok


def test_not_ours_is_returned_with_maker_checker(api_as, accountant, cashier, institution):
    c = unmatched_credit(institution, 123_000)
    r = api_as(cashier).post("/api/v1/refunds", {
        "kind": "return_unmatched", "amount": 123_000, "reason": "Không phải khoản của trường",
        "payee_name": "NGUYEN THI LAN", "payee_bank_bin": "970415", "payee_account": "101010101",
        "credit_id": c.pk})
    assert r.status_code == 201, r.content
    rid = r.json()["id"]
    assert api_as(cashier).post(f"/api/v1/refunds/{rid}/approve", {}).json()["code"] == "maker_checker"
    assert api_as(accountant).post(f"/api/v1/refunds/{rid}/approve", {}).json()["status"] == "approved"
    order = api_as(accountant).get(f"/api/v1/refunds/payment-order?institution={institution.code}")
    assert b"101010101" in order.content
    assert api_as(accountant).post(f"/api/v1/refunds/{rid}/paid").json()["status"] == "paid"
    assert Credit.objects.get(pk=c.pk).status == "returned"
    assert ledger.ledger_check().ok


def test_chargeback_through_api_reopens_bill(api_as, cashier, bill_body):
    api = api_as(cashier)
    ref = api.post("/api/v1/bills", bill_body).json()["reference"]
    pid = api.post(f"/api/v1/bills/{ref}/payments", {"method": "transfer", "amount": 1_334_520}).json()["id"]
    assert api.get(f"/api/v1/bills/{ref}").json()["status"] == "paid"
    r = api.post(f"/api/v1/credits/{pid}/reverse", {"reason": "Ngân hàng thu hồi"})
    assert r.status_code == 200 and r.json()["status"] == "reversed"
    assert api.get(f"/api/v1/bills/{ref}").json()["status"] == "unpaid"
    assert ledger.ledger_check().ok


def test_reconciliation_report_json_and_xlsx(api_as, accountant, cashier, institution, bill_body):
    api = api_as(cashier)
    ref = api.post("/api/v1/bills", bill_body).json()["reference"]
    api.post(f"/api/v1/bills/{ref}/payments", {"method": "transfer", "amount": 1_000_000})
    unmatched_credit(institution, 50_000)
    today = timezone.localdate()
    q = f"institution={institution.code}&from={today - dt.timedelta(days=1)}&to={today}"
    data = api_as(accountant).get(f"/api/v1/reports/reconciliation?{q}").json()
    assert data["credits"]["matched"] == {"count": 1, "amount": 1_000_000}
    assert data["credits"]["unmatched"] == {"count": 1, "amount": 50_000}
    assert data["bills"]["partially_paid"]["count"] == 1
    x = api_as(accountant).get(f"/api/v1/reports/reconciliation?{q}&format=xlsx")
    wb = load_workbook(io.BytesIO(x.content))
    assert set(wb.sheetnames) >= {"Tong hop", "Phieu thu", "Chua xac dinh"}
    assert wb["Chua xac dinh"].cell(row=2, column=2).value == 50_000
    bad = api_as(accountant).get(f"/api/v1/reports/reconciliation?institution={institution.code}&from={today}&to={today - dt.timedelta(days=3)}")
    assert bad.status_code == 422


def test_other_institution_cannot_touch_credits(api_as, make_user, make_institution, institution):
    c = unmatched_credit(institution, 10_000)
    stranger = make_user("la", Role.ACCOUNTANT, institution=make_institution(code="X-1"))
    assert api_as(stranger).post(f"/api/v1/credits/{c.pk}/reverse", {"reason": "x"}).status_code == 404
    assert Refund.objects.count() == 0
