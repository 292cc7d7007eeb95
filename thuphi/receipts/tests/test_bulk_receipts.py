"""The bulk issuer: the receipts one-by-one issuance would give, at a set-based cost, each once."""
from __future__ import annotations

import datetime as dt
import logging
import threading

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from thuphi.billing.models import Bill
from thuphi.billing.services import LineInput, bill_create
from thuphi.payments.models import Allocation, Credit, CreditSource, CreditStatus
from thuphi.receipts import services
from thuphi.receipts.models import Receipt, ReceiptCounter
from thuphi.receipts.tests.helpers import matched_credit
from thuphi.receipts.xml import VN_TZ, canonical_bytes, get_signer, signature_verifies
from thuphi.registry.services import payer_upsert

pytestmark = pytest.mark.django_db

MARCH = dt.datetime(2026, 3, 1, 9, 0, 30, 123456, tzinfo=VN_TZ)
#: Everything a receipt says except its row identity and its random verification code.
FACTS = ("institution_id", "credit_id", "bill_id", "receipt_name", "form_symbol", "serial", "year", "number",
         "issued_at", "issue_date", "institution_name", "institution_tax_code", "institution_address",
         "payer_name", "payer_code", "bill_reference", "fee_names", "amount", "amount_in_words", "method",
         "method_label", "bank_reference", "signed_by", "signature_algorithm", "signature_key_id", "status")


def make_bills(institution, n: int, prefix: str = "HS") -> list[Bill]:
    due = dt.date.today() + dt.timedelta(days=15)
    return [bill_create(actor=None, institution=institution,
                        payer=payer_upsert(institution=institution, code=f"{prefix}{i:03d}", name=f"Học sinh {i}"),
                        due_date=due,
                        items=[LineInput(name=f"Tiền ăn tháng {i + 1}", amount=300_000 + i, kind="meals_boarding"),
                               LineInput(name="BHYT", amount=100_000, kind="student_insurance")])
            for i in range(n)]


def two_bill_credit(first: Bill, second: Bill, amount: int) -> Credit:
    credit = Credit.objects.create(
        institution_id=first.institution_id, bank_account_id=first.bank_account_id, method="transfer",
        source=CreditSource.WEBHOOK, amount=amount, occurred_at=timezone.now(), status=CreditStatus.MATCHED,
        bank_reference="FT-TWO")
    Allocation.objects.create(credit=credit, bill=second, amount=amount - 1_000)
    Allocation.objects.create(credit=credit, bill=first, amount=1_000)
    return credit


def facts(qs) -> list[tuple]:
    return list(qs.order_by("credit_id").values_list(*FACTS))


def test_bulk_gives_the_receipts_one_by_one_issuance_gives(institution):
    # given credits of every shape: transfer with a bank reference, cash, card with only an external
    # ref, and one credit paying two bills (fee names of both, first allocated bill printed)
    bills = make_bills(institution, 4)
    credits = [matched_credit(bills[0], 50_000, bank_reference="FT001"),
               matched_credit(bills[1], 60_000, method="cash"),
               two_bill_credit(bills[2], bills[3], 250_000),
               matched_credit(bills[1], 70_000, method="card")]
    Credit.objects.filter(pk=credits[3].pk).update(external_ref="POS-77")
    ids = [c.pk for c in credits]
    # when they are issued one by one in id order, and, from the same state, in bulk
    with transaction.atomic():
        single = {r.credit_id: r for r in (services.receipt_issue_for_credit(credit=Credit(pk=i), now=MARCH)
                                           for i in ids)}
        single_facts = facts(Receipt.objects.all())
        single_counter = list(ReceiptCounter.objects.values_list("serial", "year", "last_number"))
        transaction.set_rollback(True)
    assert services.receipts_issue_for_credits(credit_ids=list(reversed(ids)), now=MARCH) == 4
    # then every frozen fact is the same, numbers 1..4 in credit-id order
    assert facts(Receipt.objects.all()) == single_facts
    assert [r.number for r in Receipt.objects.order_by("credit_id")] == [1, 2, 3, 4]
    assert list(ReceiptCounter.objects.values_list("serial", "year", "last_number")) == single_counter
    by_credit = {r.credit_id: r for r in Receipt.objects.all()}
    assert by_credit[credits[2].pk].bill_id == bills[3].pk  # allocated first
    assert by_credit[credits[2].pk].fee_names == ["Tiền ăn tháng 4", "BHYT", "Tiền ăn tháng 3"]
    assert by_credit[credits[3].pk].bank_reference == "POS-77"
    # and each is signed over the same canonical bytes as its one-by-one twin (codes are random)
    signer = get_signer()
    for credit_id, bulk in by_credit.items():
        assert signature_verifies(bulk)
        twin = single[credit_id]
        bulk.verification_code = twin.verification_code
        assert canonical_bytes(bulk) == canonical_bytes(twin)
        assert signer.sign(canonical_bytes(bulk)) == twin.signature
    assert len({r.verification_code for r in Receipt.objects.all()}) == 4


def test_issuing_twice_issues_nothing_twice(institution):
    # given two credits, one of which already has its receipt from the one-by-one path
    bill = make_bills(institution, 1)[0]
    a, b, c = (matched_credit(bill, 10_000 + n) for n in range(3))
    first = services.receipt_issue_for_credit(credit=a, now=MARCH)
    # when the bulk path runs twice over all of them
    assert services.receipts_issue_for_credits(credit_ids=[a.pk, b.pk, c.pk], now=MARCH) == 2
    assert services.receipts_issue_for_credits(credit_ids=[c.pk, b.pk, a.pk, a.pk], now=MARCH) == 0
    # then one receipt per credit, the first untouched, the counter not moved by the second call
    assert Receipt.objects.count() == 3
    assert Receipt.objects.get(credit=a).verification_code == first.verification_code
    assert sorted(Receipt.objects.values_list("number", flat=True)) == [1, 2, 3]
    assert ReceiptCounter.objects.get().last_number == 3


def test_two_institutions_get_independent_consecutive_numbers(institution, make_institution):
    # given credits of two institutions, interleaved by id
    other = make_institution(code="BN-TH-02", name="Trường Tiểu học Đình Bảng")
    mine, theirs = make_bills(institution, 1)[0], make_bills(other, 1)[0]
    credits = [matched_credit(mine if n % 3 else theirs, 20_000 + n) for n in range(9)]
    # when issued in one call
    assert services.receipts_issue_for_credits(credit_ids=[c.pk for c in credits], now=MARCH) == 9
    # then each institution counts from 1 without gaps, in credit order, on its own counter
    for inst in (institution, other):
        numbers = list(Receipt.objects.filter(institution=inst).order_by("credit_id").values_list("number", flat=True))
        assert numbers == list(range(1, len(numbers) + 1))
        assert ReceiptCounter.objects.get(institution=inst).last_number == len(numbers)
    assert Receipt.objects.filter(institution=other).count() == 3


def test_unmatched_unallocated_and_vanished_credits_get_none(institution, caplog):
    # given an unmatched credit, a matched credit with no allocation, an id that is no credit, and one good
    bill = make_bills(institution, 1)[0]
    unmatched = matched_credit(bill, 1_000)
    Credit.objects.filter(pk=unmatched.pk).update(status=CreditStatus.UNMATCHED)
    bare = Credit.objects.create(  # matched, yet allocated to no bill: no fee to name
        institution_id=bill.institution_id, bank_account_id=bill.bank_account_id, method="transfer",
        source=CreditSource.COUNTER, amount=2_000, occurred_at=timezone.now(), status=CreditStatus.MATCHED)
    good = matched_credit(bill, 3_000)
    # when they are issued in bulk
    with caplog.at_level(logging.ERROR, logger="thuphi.receipts.services"):
        issued = services.receipts_issue_for_credits(credit_ids=[unmatched.pk, bare.pk, 999_999, good.pk], now=MARCH)
    # then only the good one gets a receipt, numbered 1, and nothing was an error
    assert issued == 1
    assert list(Receipt.objects.values_list("credit_id", "number")) == [(good.pk, 1)]
    assert ReceiptCounter.objects.get().last_number == 1
    assert caplog.text == ""
    # and an empty call issues nothing and creates no counter elsewhere
    assert services.receipts_issue_for_credits(credit_ids=[], now=MARCH) == 0


def test_chunks_continue_the_numbering_in_credit_order(institution, monkeypatch):
    monkeypatch.setattr(services, "BULK_CHUNK", 3)
    bill = make_bills(institution, 1)[0]
    ids = [matched_credit(bill, 5_000 + n).pk for n in range(8)]
    assert services.receipts_issue_for_credits(credit_ids=ids, now=MARCH) == 8
    assert list(Receipt.objects.order_by("credit_id").values_list("number", flat=True)) == list(range(1, 9))
    assert ReceiptCounter.objects.get().last_number == 8


def test_a_failing_chunk_is_issued_one_by_one(institution, monkeypatch, caplog):
    bill = make_bills(institution, 1)[0]
    ids = [matched_credit(bill, 5_000 + n).pk for n in range(3)]

    def broken(**kwargs):
        raise RuntimeError("deadlock detected")

    monkeypatch.setattr(services, "_receipts_issue_chunk", broken)
    with caplog.at_level(logging.ERROR, logger="thuphi.receipts.services"):
        assert services.receipts_issue_for_credits(credit_ids=ids, now=MARCH) == 3
    assert "one by one" in caplog.text
    assert list(Receipt.objects.order_by("credit_id").values_list("number", flat=True)) == [1, 2, 3]


def test_an_exhausted_serial_skips_its_credits_not_the_others(institution, make_institution, caplog):
    other = make_institution(code="BN-TH-02", name="Trường Tiểu học Đình Bảng")
    full, fine = make_bills(institution, 1)[0], make_bills(other, 1)[0]
    services.receipt_issue_for_credit(credit=matched_credit(full, 1_000), now=MARCH)
    ReceiptCounter.objects.filter(institution=institution).update(last_number=9_999_999)
    ids = [matched_credit(full, 2_000).pk, matched_credit(fine, 3_000).pk]
    with caplog.at_level(logging.ERROR, logger="thuphi.receipts.services"):
        assert services.receipts_issue_for_credits(credit_ids=ids, now=MARCH) == 1
    assert "exhausted" in caplog.text
    assert not Receipt.objects.filter(credit_id=ids[0]).exists()
    assert Receipt.objects.get(credit_id=ids[1]).number == 1
    assert ReceiptCounter.objects.get(institution=institution).last_number == 9_999_999


def test_queries_do_not_grow_with_the_number_of_credits(institution, make_institution):
    # given 5 credits, then 60 more over two institutions (counters and forms already exist)
    other = make_institution(code="BN-TH-02", name="Trường Tiểu học Đình Bảng")
    bills = make_bills(institution, 3) + make_bills(other, 3, prefix="HT")
    services.receipts_issue_for_credits(credit_ids=[matched_credit(b, 1_000).pk for b in bills], now=MARCH)
    few = [matched_credit(bills[n % 6], 2_000).pk for n in range(6)]
    many = [matched_credit(bills[n % 6], 3_000).pk for n in range(60)]
    # when each set is issued
    with CaptureQueriesContext(connection) as small:
        assert services.receipts_issue_for_credits(credit_ids=few, now=MARCH) == 6
    with CaptureQueriesContext(connection) as large:
        assert services.receipts_issue_for_credits(credit_ids=many, now=MARCH) == 60
    # then ten times the credits cost the same statements (no per-credit query), but for the
    # receipts' INSERT, which SQLite splits at its bound-parameter limit
    def statements(ctx) -> tuple[int, int]:
        inserts = sum(q["sql"].startswith('INSERT INTO "receipts_receipt"') for q in ctx.captured_queries)
        return len(ctx.captured_queries) - inserts, inserts

    assert statements(large)[0] == statements(small)[0] <= 16
    assert statements(large)[1] <= 2


def test_the_sweep_issues_the_oldest_first_up_to_its_limit(institution):
    bill = make_bills(institution, 1)[0]
    ids = [matched_credit(bill, 1_000 + n).pk for n in range(5)]
    assert services.receipts_issue_missing(limit=3) == 3
    assert sorted(Receipt.objects.values_list("credit_id", flat=True)) == ids[:3]
    assert services.receipts_issue_missing() == 2
    assert services.receipts_issue_missing() == 0
    assert list(Receipt.objects.order_by("credit_id").values_list("number", flat=True)) == [1, 2, 3, 4, 5]


@pytest.fixture
def admin_units(db):
    # A transactional test before this one may have flushed the communes the data migration loaded.
    from thuphi.registry.models import Commune
    from thuphi.registry.services import admin_units_sync

    if not Commune.objects.exists():
        admin_units_sync()


@pytest.mark.django_db(transaction=True)
def test_concurrent_bulk_issuers_of_overlapping_sets_issue_each_receipt_once(admin_units, make_institution, caplog):
    # given 60 credits of two institutions and four issuers over overlapping, shuffled slices
    a = make_institution(code="BN-TH-01", name="Trường Tiểu học Kinh Bắc")
    b = make_institution(code="BN-TH-02", name="Trường Tiểu học Đình Bảng")
    bills = make_bills(a, 2) + make_bills(b, 2, prefix="HT")
    ids = [matched_credit(bills[n % 4], 1_000 + n).pk for n in range(60)]
    slices = [ids[0:40], ids[20:60][::-1], ids[::2], ids[10:50]]
    barrier = threading.Barrier(len(slices))
    errors: list[str] = []
    counts: list[int] = []

    def issuer(part: list[int]) -> None:
        try:
            barrier.wait(timeout=20)
            counts.append(services.receipts_issue_for_credits(credit_ids=part))
        except Exception as exc:  # noqa: BLE001
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=issuer, args=(part,)) for part in slices]
    with caplog.at_level(logging.ERROR, logger="thuphi.receipts.services"):
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    # then one receipt per credit, each institution numbered 1..n without gaps, and no deadlock
    # sent any chunk down the one-by-one path (that would be logged, and still correct)
    assert errors == [] and sum(counts) == 60
    assert "one by one" not in caplog.text
    assert sorted(Receipt.objects.values_list("credit_id", flat=True)) == ids
    for inst in (a, b):
        numbers = sorted(Receipt.objects.filter(institution=inst).values_list("number", flat=True))
        assert numbers == list(range(1, 31))
        assert ReceiptCounter.objects.get(institution=inst).last_number == 30
