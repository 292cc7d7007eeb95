"""The demo data (`thuphi demo_data`): loaded once for the module, then inspected.

The load takes several seconds, so it runs once per module outside the per-test transactions and
is removed again at the end, leaving the database as the other tests expect it.
"""
from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from django.core.management import call_command
from django.test import Client, TestCase

from thuphi.billing import reference as refcode
from thuphi.billing.models import Bill, BillStatus, FeeKind
from thuphi.billing.selectors import open_bills_for_payer
from thuphi.billing.vietqr import parse_payload
from thuphi.core.demo import DEMO_CODES, DEMO_PASSWORD, DEMO_USERNAMES, demo_counts, demo_load, legacy_code_for
from thuphi.core.models import Role, User
from thuphi.registry.models import Institution, Ownership, Payer
from thuphi.registry.selectors import default_bank_account

# Every test asks for the database, so pytest-django keeps them in one group and the module
# fixture loads the demo once (a test without it would run in a later group and load it again).
pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 11, 20)
SEED = 2026
PHONE_RE = re.compile(r"(?<!\d)0\d{9,10}(?!\d)")


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    """Load once for the module inside a transaction that is rolled back at the end.

    Each test's own transaction nests as a savepoint inside it, and nothing the demo wrote (ledger
    rows included, which PostgreSQL refuses to delete) outlives the module.
    """
    from django.db import transaction

    from thuphi.registry.models import Commune
    from thuphi.registry.services import admin_units_sync

    with django_db_blocker.unblock(), transaction.atomic():
        if not Commune.objects.exists():  # an earlier transactional test flushed the reference data
            admin_units_sync()
        assert not Institution.objects.filter(code__in=DEMO_CODES).exists()
        out = io.StringIO()
        # The receipts and messages follow the load's commit; run them here, inside the module's
        # transaction, so that they are checked and rolled back with the rest.
        with TestCase.captureOnCommitCallbacks(execute=True):
            call_command("demo_data", seed=SEED, today=TODAY, stdout=out)
        counts = demo_counts(today=TODAY)
        yield {"output": out.getvalue(), "counts": counts}
        transaction.set_rollback(True)


def _lookup_from(output: str) -> tuple[str, str, str]:
    m = re.search(r"Mã đơn vị: (\S+)\s+Mã học sinh: (\S+)\s+4 số cuối điện thoại: (\d{4})", output)
    assert m, output
    return m.group(1), m.group(2), m.group(3)


def _pay_reference_from(output: str) -> str:
    m = re.search(r"/pay/(TP[0-9A-Z]{9})\b", output)
    assert m, output
    return m.group(1)


def test_load_has_the_promised_size(demo):
    c = demo["counts"]
    assert c["institutions"] == 12
    assert c["schools"] == 6 and c["health_facilities"] == 6
    assert 600 <= c["payers"] <= 1500
    assert c["bills"] > c["payers"]
    assert 0 < c["bills_overdue"] < c["bills_open"]  # some overdue, some not yet due
    assert 0 < c["bills_cancelled"] < 20
    assert c["users"] == len(DEMO_USERNAMES)


def test_second_load_changes_nothing_and_prints_the_logins_again(demo, db):
    summary = demo_load(seed=SEED, today=TODAY)
    assert summary.created is False
    assert summary.counts == demo["counts"]
    out = io.StringIO()
    call_command("demo_data", today=TODAY, stdout=out)
    text = out.getvalue()
    assert "đã có sẵn" in text
    assert demo_counts(today=TODAY) == demo["counts"]
    for username in DEMO_USERNAMES:
        assert username in text
    assert DEMO_PASSWORD in text
    assert _lookup_from(text) == _lookup_from(demo["output"])


def test_output_names_the_urls(demo):
    text = demo["output"]
    for path in ("/staff/login/", "/admin/", "/api/v1/docs"):
        assert f"http://127.0.0.1:8000{path}" in text
    assert "http://127.0.0.1:8000/\n" in text or "http://127.0.0.1:8000/ " in text


def test_institutions_are_in_province_24_with_a_default_account(demo, db):
    insts = list(Institution.objects.filter(code__in=DEMO_CODES).select_related("commune"))
    assert len(insts) == 12
    for inst in insts:
        assert inst.commune.province_id == "24", inst.code
        account = default_bank_account(institution=inst)
        assert account is not None, inst.code
        assert account.account_name == refcode.normalize(account.account_name), "holder: upper case, no diacritics"
        assert re.fullmatch(r"\d{10}", inst.tax_code), inst.tax_code
        assert inst.focal_point_name and inst.focal_point_phone
        # Former province consistent with the commune: 07xxx former Bắc Giang (24), 09xxx former Bắc Ninh (27).
        assert inst.legacy_province_id == legacy_code_for(inst.commune.code), inst.code
    by_code = {i.code: i for i in insts}
    assert by_code["BVDK-BACNINH"].name == "Bệnh viện Đa khoa tỉnh Bắc Ninh"
    assert by_code["BVDK-BACNINH"].legacy_province_id == "27"
    bac_giang = [i for i in insts if "Bắc Giang" in i.commune.name]
    assert bac_giang and all(i.legacy_province_id == "24" for i in bac_giang)


def test_tax_codes_carry_a_valid_check_digit(demo, db):
    weights = (31, 29, 23, 19, 17, 13, 7, 5, 3)
    for tax in Institution.objects.filter(code__in=DEMO_CODES).values_list("tax_code", flat=True):
        r = sum(int(c) * w for c, w in zip(tax, weights)) % 11
        assert r != 0 and int(tax[9]) == (10 - r) % 10, tax


def test_every_bill_has_a_valid_reference_and_a_matching_vietqr(demo, db):
    bills = Bill.objects.filter(institution__code__in=DEMO_CODES).select_related("bank_account") \
        .prefetch_related("lines")
    n = 0
    for bill in bills:
        n += 1
        assert refcode.is_valid(bill.reference), bill.reference
        qr = parse_payload(bill.qr_payload)
        assert qr.bank_bin == bill.bank_account.bank_bin
        assert qr.account_number == bill.bank_account.account_number
        assert qr.amount == (bill.amount_due or None)
        assert qr.purpose == bill.reference
        assert bill.amount_due == sum(line.amount_net for line in bill.lines.all())
        assert bill.due_date >= bill.issue_date and bill.issue_date <= TODAY
    assert n == demo["counts"]["bills"]


def test_printed_lookup_example_finds_open_bills(demo, db):
    institution_code, payer_code, last4 = _lookup_from(demo["output"])
    bills = open_bills_for_payer(institution_code=institution_code, payer_code=payer_code, phone_last4=last4)
    assert bills, "the example must show bills"
    assert _pay_reference_from(demo["output"]) in {b.reference for b in bills}
    wrong = f"{(int(last4) + 1) % 10000:04d}"
    assert open_bills_for_payer(institution_code=institution_code, payer_code=payer_code, phone_last4=wrong) is None


def test_example_pay_page_renders(demo, db):
    reference = _pay_reference_from(demo["output"])
    response = Client().get(f"/pay/{reference}")
    assert response.status_code == 200
    assert reference in response.content.decode()


def test_no_phone_number_is_printed_in_full(demo, db):
    texts = [demo["output"]]
    out = io.StringIO()
    call_command("demo_data", today=TODAY, stdout=out)
    texts.append(out.getvalue())
    phones = set()
    for phone, guardian in Payer.objects.filter(institution__code__in=DEMO_CODES).values_list("phone",
                                                                                             "guardian_phone"):
        phones.update(p for p in (phone, guardian) if p)
    phones.update(Institution.objects.filter(code__in=DEMO_CODES).values_list("focal_point_phone", flat=True))
    assert len(phones) > 1000
    for text in texts:
        assert PHONE_RE.findall(text) == []
        assert not any(p in text for p in phones)
        assert re.search(r"4 số cuối điện thoại: \d{4}\b", text)  # the one intended hint


def test_public_schools_charge_no_tuition_private_ones_do(demo, db):
    tuition = Bill.objects.filter(institution__code__in=DEMO_CODES, lines__kind=FeeKind.TUITION)
    public_general = Institution.objects.filter(
        code__in=DEMO_CODES, ownership=Ownership.PUBLIC,
        kind__in=["kindergarten", "primary", "lower_secondary", "upper_secondary"])
    assert not tuition.filter(institution__in=public_general).exists()
    assert tuition.filter(institution__code="CD-TUSON").exists()


def test_poor_household_pupils_get_half_the_meals(demo, db):
    bills = Bill.objects.filter(institution__code="THCS-KINHBAC", payer__category__name="Hộ nghèo") \
        .prefetch_related("lines")
    meals = [line for bill in bills for line in bill.lines.all() if line.kind == FeeKind.MEALS_BOARDING]
    assert meals
    for line in meals:
        assert line.discount == (line.amount + 1) // 2
        assert line.discount > 0


def test_cancelled_bills_carry_a_reason(demo, db):
    cancelled = Bill.objects.filter(institution__code__in=DEMO_CODES, status=BillStatus.CANCELLED)
    assert cancelled.exists()
    assert not cancelled.filter(cancel_reason="").exists()
    # a cancelled bill never took money (the payments come after the cancellations and skip them)
    assert not cancelled.filter(amount_paid__gt=0).exists()


def test_demo_users_have_their_roles_and_the_demo_password(demo, db):
    users = {u.username: u for u in User.objects.filter(username__in=DEMO_USERNAMES)}
    assert users["admin"].is_superuser and users["admin"].role == Role.SYSTEM_ADMIN
    assert users["giamsat"].role == Role.PROVINCIAL_MONITOR and users["giamsat"].province_id == "24"
    assert users["ketoan.thcs"].role == Role.ACCOUNTANT and users["ketoan.thcs"].institution.code == "THCS-KINHBAC"
    assert users["thungan.thcs"].role == Role.CASHIER and users["thungan.thcs"].institution.code == "THCS-KINHBAC"
    assert users["thungan.bv"].role == Role.CASHIER and users["thungan.bv"].institution.code == "BVDK-BACNINH"
    assert users["quantri.bv"].role == Role.INSTITUTION_ADMIN
    assert users["quantri.bv"].institution.code == "BVDK-BACNINH"
    assert users["thungan.bv"].check_password(DEMO_PASSWORD)


def test_demo_payments_keep_the_books_and_show_a_cashless_share(demo, db):
    from thuphi.payments import ledger
    from thuphi.payments.models import Allocation, Credit, CreditStatus, Method

    c = demo["counts"]
    assert c["credits"] > c["bills"] // 2 and c["bills_settled"] > 0
    # most money arrives cashless, but cash is still recorded (the plan measures the share)
    assert 0.8 < c["amount_cashless"] / c["amount_received"] < 0.99
    assert Credit.objects.filter(method=Method.CASH).exists()
    # a few transfers without a code wait for staff in the review queue
    assert 1 <= c["credits_unmatched"] <= 6
    assert not Allocation.objects.filter(credit__status=CreditStatus.UNMATCHED).exists()
    # every automatic match went to the bill whose code the bank left in the description
    for alloc in Allocation.objects.filter(credit__source="webhook").select_related("credit", "bill")[:400]:
        squeezed = "".join(ch for ch in alloc.credit.description.upper() if ch.isalnum())
        assert alloc.bill.reference in squeezed
    # nothing paid a cancelled bill, nothing dated before its bill or after today
    assert not Allocation.objects.filter(bill__status=BillStatus.CANCELLED).exists()
    for alloc in Allocation.objects.select_related("credit", "bill")[:400]:
        assert alloc.bill.issue_date <= alloc.credit.occurred_at.date()
    assert ledger.ledger_check().ok


def test_every_booked_payment_has_its_receipt_and_the_statistics_add_up(demo, db):
    from thuphi.monitoring.stats import stats_check
    from thuphi.payments.models import Credit, CreditStatus
    from thuphi.receipts.models import Receipt

    credits = Credit.objects.filter(institution__code__in=DEMO_CODES)
    matched = set(credits.filter(status=CreditStatus.MATCHED).values_list("pk", flat=True))
    receipts = Receipt.objects.filter(institution__code__in=DEMO_CODES)
    assert set(receipts.values_list("credit_id", flat=True)) == matched
    # numbered from 1 without a gap in each institution, in the order the credits were booked
    by_inst: dict[int, list[tuple[int, int]]] = {}
    for inst, credit_id, number in receipts.values_list("institution_id", "credit_id", "number"):
        by_inst.setdefault(inst, []).append((credit_id, number))
    for rows in by_inst.values():
        rows.sort()
        assert [number for _c, number in rows] == list(range(1, len(rows) + 1))
    # counter payments are booked at the counter, transfers arrive as bank notifications
    assert not credits.filter(method__in=("cash", "card")).exclude(source="counter", bank_account=None).exists()
    assert not credits.filter(method__in=("transfer", "ewallet")).exclude(source="webhook").exists()
    assert stats_check() == []
