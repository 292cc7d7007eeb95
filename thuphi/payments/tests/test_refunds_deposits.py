"""Hospital deposits, held credit, manual matching, reversals and maker-checker refunds."""
from __future__ import annotations

import datetime as dt

import pytest

from thuphi.billing.models import Bill
from thuphi.billing.services import LineInput, bill_create
from thuphi.core.errors import Conflict, Forbidden, ValidationFailed
from thuphi.core.models import Role
from thuphi.payments import ledger, refunds, shifts
from thuphi.payments.models import Account, Credit, CreditSource, CreditStatus, LedgerEntry, Method, Refund
from thuphi.payments.services import credit_book, credit_match_manual, payment_record
from thuphi.registry.services import payer_upsert

pytestmark = pytest.mark.django_db


@pytest.fixture
def hospital(make_institution):
    return make_institution(code="BV-TINH", name="Bệnh viện Đa khoa tỉnh", sector="health",
                            kind="provincial_hospital")


@pytest.fixture
def hcashier(make_user, hospital):
    return make_user("thungan.bv", Role.CASHIER, institution=hospital)


@pytest.fixture
def accountant(make_user, hospital):
    return make_user("ketoan.bv", Role.ACCOUNTANT, institution=hospital)


@pytest.fixture
def patient(hospital):
    return payer_upsert(institution=hospital, code="BN0001", name="Trần Văn Bình", phone="0987654321")


def issue(actor, inst, payer, amount, kind):
    return bill_create(actor=actor, institution=inst, payer=payer, items=[LineInput(name=kind, amount=amount, kind=kind)],
                       due_date=dt.date.today() + dt.timedelta(days=3))


def test_deposits_settle_the_final_bill_and_the_rest_is_refunded(hcashier, accountant, hospital, patient):
    # given two deposits at admission and during the stay
    d1 = issue(hcashier, hospital, patient, 5_000_000, "deposit")
    d2 = issue(hcashier, hospital, patient, 3_000_000, "deposit")
    payment_record(actor=hcashier, bill=d1, method=Method.TRANSFER, amount=5_000_000)
    payment_record(actor=hcashier, bill=d2, method=Method.CARD, amount=3_000_000)
    # deposits are held for the patient, not earned
    assert refunds.payer_credit_balance(payer=patient) == 8_000_000
    assert not LedgerEntry.objects.filter(account=Account.FEE_REVENUE).exists()
    # when the final bill at discharge uses the deposits
    final = issue(hcashier, hospital, patient, 6_750_000, "hospital_fee")
    used = refunds.payer_credit_apply(actor=hcashier, bill=final)
    final.refresh_from_db()
    assert used == 6_750_000 and final.status == "paid"
    assert refunds.payer_credit_balance(payer=patient) == 1_250_000
    # and the rest is refunded: one asks, another approves, then it is paid
    r = refunds.refund_request(actor=hcashier, kind="payer_credit", payer=patient, amount=1_250_000,
                               reason="Hoàn tạm ứng còn thừa khi ra viện", payee_name="TRAN VAN BINH",
                               payee_bank_bin="970436", payee_account="0011223344")
    with pytest.raises(Forbidden):
        refunds.refund_decide(actor=hcashier, refund=r, approve=True)
    refunds.refund_decide(actor=accountant, refund=r, approve=True)
    order = refunds.refunds_payment_order(actor=accountant, institution_id=hospital.pk).decode("utf-8-sig")
    assert "0011223344" in order and "1250000" in order
    assert refunds.refunds_payment_order(actor=accountant, institution_id=hospital.pk).decode("utf-8-sig").count("\n") == 1
    refunds.refund_mark_paid(actor=accountant, refund=r)
    assert refunds.payer_credit_balance(payer=patient) == 0
    assert Refund.objects.get().status == "paid"
    assert ledger.ledger_check().ok


def test_refund_cannot_exceed_what_is_held(hcashier, patient):
    with pytest.raises(ValidationFailed):
        refunds.refund_request(actor=hcashier, kind="payer_credit", payer=patient, amount=1, reason="x",
                               payee_name="A", payee_bank_bin="970436", payee_account="1")
    assert Refund.objects.count() == 0


def test_chargeback_reopens_the_bill(hcashier, hospital, patient):
    bill = issue(hcashier, hospital, patient, 400_000, "hospital_fee")
    credit = payment_record(actor=hcashier, bill=bill, method=Method.TRANSFER, amount=400_000)
    refunds.credit_reverse(actor=hcashier, credit=credit, reason="Ngân hàng báo giao dịch lỗi")
    bill.refresh_from_db()
    assert bill.status == "unpaid" and bill.amount_paid == 0
    assert Credit.objects.get().status == "reversed"
    # reversing twice changes nothing more
    refunds.credit_reverse(actor=hcashier, credit=credit, reason="lần nữa")
    assert LedgerEntry.objects.filter(transaction__kind="payment_reversal").count() == 2
    assert ledger.ledger_check().ok


def test_unmatched_credit_is_split_by_staff_or_returned(hcashier, accountant, hospital, patient):
    a = issue(hcashier, hospital, patient, 300_000, "hospital_fee")
    b = issue(hcashier, hospital, patient, 200_000, "hospital_fee")
    from django.utils import timezone

    def unmatched(amount):
        c = Credit.objects.create(institution=hospital, bank_account=hospital.bank_accounts.first(),
                                  method=Method.TRANSFER, source=CreditSource.WEBHOOK, amount=amount,
                                  description="CHUYEN TIEN VIEN PHI", occurred_at=timezone.now(),
                                  status=CreditStatus.UNMATCHED)
        return credit_book(credit=c)

    c1 = unmatched(500_000)
    assert c1.status == "unmatched"
    with pytest.raises(ValidationFailed):
        credit_match_manual(actor=hcashier, credit=c1, splits=[(a, 300_000), (b, 100_000)])
    credit_match_manual(actor=hcashier, credit=c1, splits=[(a, 300_000), (b, 200_000)])
    assert {x.status for x in Bill.objects.filter(pk__in=[a.pk, b.pk])} == {"paid"}
    c2 = unmatched(77_000)
    r = refunds.refund_request(actor=hcashier, kind="return_unmatched", credit=c2, amount=77_000,
                               reason="Không phải khoản của bệnh viện", payee_name="NGUYEN VAN C",
                               payee_bank_bin="970415", payee_account="1234567")
    refunds.refund_decide(actor=accountant, refund=r, approve=True)
    c2.refresh_from_db()
    assert c2.status == "returned"
    with pytest.raises(Conflict):
        refunds.refund_decide(actor=accountant, refund=r, approve=False)
    assert ledger.ledger_check().ok


def test_cashier_shift_counts_cash_against_expected(hcashier, hospital, patient):
    shift = shifts.shift_open(actor=hcashier, opening_float=1_000_000)
    with pytest.raises(Conflict):
        shifts.shift_open(actor=hcashier)
    bill = issue(hcashier, hospital, patient, 250_000, "hospital_fee")
    payment_record(actor=hcashier, bill=bill, method=Method.CASH, amount=250_000)
    assert Credit.objects.get().shift_id == shift.pk
    closed = shifts.shift_close(actor=hcashier, counted_cash=1_240_000, note="thiếu 10.000")
    assert closed.expected_cash == 1_250_000 and closed.difference == -10_000
    with pytest.raises(Conflict):
        shifts.shift_close(actor=hcashier, counted_cash=0)
