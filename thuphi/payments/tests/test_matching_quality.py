"""Matching quality on bank-mangled memos, and focused tests of match_credit.

The first test is a small, seeded run of the matching benchmark (bench/bench_matching.py, same
generator in bench/manglers.py): 300 bills over two institutions, 1,000 genuine payments and 300
decoys. The full-size figures are in docs/benchmarks.md ("Matching").
"""
from __future__ import annotations

import datetime as dt
import random
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import bench_matching as bm  # noqa: E402
from bench.manglers import DECOY_KINDS, P  # noqa: E402
from thuphi.billing import reference as refcode  # noqa: E402
from thuphi.billing.models import Bill, BillStatus  # noqa: E402
from thuphi.billing.services import LineInput, bill_cancel, bill_create  # noqa: E402
from thuphi.payments.matching import match_credit  # noqa: E402
from thuphi.payments.models import VirtualAccount  # noqa: E402
from thuphi.registry.models import BankAccount  # noqa: E402
from thuphi.registry.services import payer_upsert  # noqa: E402

SEED = 20251120


# --- quality on generated memos ---------------------------------------------------------------


@pytest.mark.django_db
def test_mangled_memos_reach_the_right_bill_and_decoys_reach_none():
    world = bm.build_world(seed=SEED, n_bills=300, cancelled_share=0.05)
    payments = bm.make_workload(world, seed=SEED, n_genuine=1000, n_decoys=300)
    res = bm.evaluate(payments)
    failures = "\n".join(f"{f['kind']} {f['outcome']} {f['ref']} {f['text']!r} {f['why']!r}"
                         for f in res.failures[:20])

    assert res.genuine.n == 1000 and res.decoys.n == 300
    assert res.right_rate >= 0.995, failures
    assert res.genuine.wrong == 0, failures
    assert res.decoys_matched == 0, failures
    # The run exercised every mangling and every kind of decoy.
    assert set(P) <= set(res.genuine_by_tag), set(P) - set(res.genuine_by_tag)
    assert set(DECOY_KINDS) <= set(res.decoys_by_kind), set(DECOY_KINDS) - set(res.decoys_by_kind)
    # Decoys that carry a valid reference are refused for the right reason.
    assert set(res.unmatched_reasons["other_institution_ref"]) == {"reference not a bill of this institution"}
    assert set(res.unmatched_reasons["cancelled_bill_ref"]) == {"bill is cancelled"}


def test_the_generator_is_reproducible():
    from bench.manglers import MemoFactory, Person

    person = Person(name="Nguyễn Gia Bảo", guardian="Trần Thị Lan", class_name="3A")
    ref = refcode.generate(random.Random(1))
    a = [MemoFactory(7).genuine(ref, person) for _ in range(3)]
    b = [MemoFactory(7).genuine(ref, person) for _ in range(3)]
    assert a == b
    run = MemoFactory(8)
    assert len({run.genuine(ref, person).text for _ in range(50)}) > 40


# --- match_credit, case by case ---------------------------------------------------------------


@pytest.fixture
def school(make_institution):
    return make_institution(code="BN-TH-KB", name="Trường Tiểu học Kinh Bắc")


@pytest.fixture
def hospital(make_institution):
    return make_institution(code="BN-BV-01", name="Bệnh viện Đa khoa tỉnh", sector="health",
                            kind="provincial_hospital")


def _bill(institution, *, code="HS001", name="Nguyễn Gia Bảo", amount=450_000, due_in=15) -> Bill:
    payer = payer_upsert(institution=institution, code=code, name=name)
    return bill_create(actor=None, institution=institution, payer=payer,
                       items=[LineInput(name="Tiền ăn bán trú tháng 11", amount=amount)],
                       due_date=dt.date.today() + dt.timedelta(days=due_in))


def _account(institution) -> BankAccount:
    return BankAccount.objects.get(institution=institution, is_default=True)


def _match(institution, description="", virtual_account=""):
    return match_credit(institution_id=institution.pk, virtual_account=virtual_account, description=description)


@pytest.mark.django_db
def test_virtual_account_of_a_bill_matches_it_without_any_memo(school):
    bill = _bill(school)
    VirtualAccount.objects.create(bank_account=_account(school), number="963VA0001", bill=bill)
    match, why = _match(school, description="NGUYEN THI LAN chuyen tien", virtual_account="963VA0001")
    assert why == "" and match.bill_ids == [bill.pk]
    assert "virtual account 963VA0001" in match.reason and bill.reference in match.reason


@pytest.mark.django_db
def test_virtual_account_of_a_payer_takes_the_oldest_open_bill(school):
    later = _bill(school, due_in=30)
    sooner = _bill(school, due_in=5)
    VirtualAccount.objects.create(bank_account=_account(school), number="963VA0002", payer=later.payer)
    match, _ = _match(school, virtual_account="963VA0002")
    assert match.bill_ids == [sooner.pk] and "oldest open bill" in match.reason
    Bill.objects.filter(pk=sooner.pk).update(status=BillStatus.PAID, amount_paid=sooner.amount_due)
    match, _ = _match(school, virtual_account="963VA0002")
    assert match.bill_ids == [later.pk]


@pytest.mark.django_db
def test_virtual_account_of_a_payer_without_open_bills_is_unmatched(school):
    bill = _bill(school)
    bill_cancel(actor=None, bill=bill, reason="Nhập trùng")
    VirtualAccount.objects.create(bank_account=_account(school), number="963VA0003", payer=bill.payer)
    match, why = _match(school, virtual_account="963VA0003")
    assert match is None and "payer has no open bill" in why


@pytest.mark.django_db
def test_virtual_account_of_a_cancelled_bill_is_unmatched_with_the_reason(school):
    bill = _bill(school)
    VirtualAccount.objects.create(bank_account=_account(school), number="963VA0004", bill=bill)
    bill_cancel(actor=None, bill=bill, reason="Nhập trùng")
    # The memo names the bill too: the account decides, and the bill takes no money.
    match, why = _match(school, description=bill.reference, virtual_account="963VA0004")
    assert match is None and f"bill {bill.reference} is cancelled" in why


@pytest.mark.django_db
def test_virtual_account_of_another_institution_is_not_used(school, hospital):
    theirs = _bill(hospital, code="BN001", name="Lê Văn Nam")
    VirtualAccount.objects.create(bank_account=_account(hospital), number="970VA0005", bill=theirs)
    ours = _bill(school)
    match, _ = _match(school, virtual_account="970VA0005", description=f"HOC PHI {ours.reference}")
    assert match.bill_ids == [ours.pk]  # fell back to the memo
    match, why = _match(school, virtual_account="970VA0005")
    assert match is None and "no valid payment reference" in why


@pytest.mark.django_db
def test_inactive_virtual_account_falls_back_to_the_memo(school):
    bill = _bill(school)
    VirtualAccount.objects.create(bank_account=_account(school), number="963VA0006", bill=bill, is_active=False)
    match, why = _match(school, virtual_account="963VA0006")
    assert match is None and "no valid payment reference" in why


@pytest.mark.django_db
def test_cancelled_bill_reference_is_unmatched_with_the_reason(school):
    bill = _bill(school)
    bill_cancel(actor=None, bill=bill, reason="Nhập trùng")
    match, why = _match(school, f"MBVCB.2427229823.174242.{bill.reference}.NGUYEN VAN A chuyen tien")
    assert match is None and why == f"{bill.reference} is cancelled"


@pytest.mark.django_db
def test_refunded_bill_reference_is_unmatched(school):
    bill = _bill(school)
    Bill.objects.filter(pk=bill.pk).update(status=BillStatus.REFUNDED)
    match, why = _match(school, bill.reference)
    assert match is None and why == f"{bill.reference} is refunded"


@pytest.mark.django_db
def test_another_institutions_reference_is_unmatched(school, hospital):
    theirs = _bill(hospital, code="BN001", name="Lê Văn Nam")
    match, why = _match(school, f"IBFT {theirs.reference} vien phi")
    assert match is None and why == f"{theirs.reference} is not a bill of this institution"
    # ...and the same memo is matched by its own institution.
    match, _ = _match(hospital, f"IBFT {theirs.reference} vien phi")
    assert match.bill_ids == [theirs.pk]


@pytest.mark.django_db
def test_a_good_reference_next_to_a_refused_one_is_matched_and_the_problem_kept(school):
    good = _bill(school)
    gone = _bill(school, code="HS002", name="Trần Minh Khang")
    bill_cancel(actor=None, bill=gone, reason="Chuyển trường")
    match, _ = _match(school, f"{gone.reference} {good.reference}")
    assert match.bill_ids == [good.pk]
    assert f"{good.reference} found in description" in match.reason and f"{gone.reference} is cancelled" in match.reason


@pytest.mark.django_db
def test_mangled_reference_is_matched_and_the_reason_says_how(school):
    bill = _bill(school)
    r = bill.reference
    typed = (r[:2] + r[2:].replace("0", "O").replace("1", "I")).lower()
    match, _ = _match(school, f"CT DEN:512G0020T0QHP5BT NOPTIEN{typed[:6]} {typed[6:]}HOCPHI GD 174242-090822 15:45:46")
    assert match.bill_ids == [bill.pk] and "joined_split" in match.reason


@pytest.mark.django_db
def test_one_wrong_character_matches_no_bill(school):
    bill = _bill(school)
    r = bill.reference
    for i in range(refcode.LENGTH):
        ch = refcode.ALPHABET[(refcode.ALPHABET.index(r[i]) + 5) % 32] if r[i] in refcode.ALPHABET else "X"
        match, _ = _match(school, f"NOP TIEN {r[:i] + ch + r[i + 1:]} GD 174242")
        assert match is None, (i, ch)


@pytest.mark.django_db
def test_memo_without_reference_is_unmatched(school):
    _bill(school)
    match, why = _match(school, "NGUYEN THI LAN chuyen tien TP HCM 0909123456")
    assert match is None and why == "no valid payment reference in the description"
