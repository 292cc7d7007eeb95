"""The bulk issuer's rows: awkward text written exactly (COPY on PostgreSQL, INSERT elsewhere) and
signed as the one-by-one issuer signs it; verification codes well formed."""
from __future__ import annotations

import pytest
from django.db import transaction

from thuphi.billing.models import BillLine
from thuphi.payments.models import Credit
from thuphi.receipts import services
from thuphi.receipts.models import Receipt
from thuphi.receipts.tests.helpers import matched_credit
from thuphi.receipts.tests.test_bulk_receipts import MARCH, facts, make_bills
from thuphi.receipts.xml import canonical_bytes, get_signer, signature_verifies
from thuphi.registry.models import Institution, Payer

pytestmark = pytest.mark.django_db

AWKWARD = "Nguyễn\tVăn \\N \\ \"A\"\r\nB & <C> 'D' %s {x,y}"


def test_awkward_text_gives_the_one_by_one_receipts_byte_for_byte(institution):
    # given an institution, payers and fee lines whose text COPY and XML must both escape
    Institution.objects.filter(pk=institution.pk).update(address=AWKWARD + " địa chỉ", name=AWKWARD)
    bills = make_bills(institution, 2)
    Payer.objects.filter(institution=institution).update(name=AWKWARD)
    BillLine.objects.filter(bill=bills[0]).update(name=AWKWARD)
    ids = [matched_credit(bills[0], 50_000, bank_reference="FT\t1\\").pk, matched_credit(bills[1], 60_000).pk]
    # when they are issued one by one, and, from the same state, in bulk
    with transaction.atomic():
        single = {i: services.receipt_issue_for_credit(credit=Credit(pk=i), now=MARCH) for i in ids}
        single_facts = facts(Receipt.objects.all())
        transaction.set_rollback(True)
    assert services.receipts_issue_for_credits(credit_ids=ids, now=MARCH) == 2
    # then the stored facts are equal, the awkward text intact, and the signed bytes the same
    assert facts(Receipt.objects.all()) == single_facts
    bulk = {r.credit_id: r for r in Receipt.objects.all()}
    assert bulk[ids[0]].payer_name == AWKWARD and bulk[ids[0]].fee_names == [AWKWARD]
    assert bulk[ids[0]].bank_reference == "FT\t1\\" and bulk[ids[0]].institution_name == AWKWARD
    for credit_id, receipt in bulk.items():
        assert signature_verifies(receipt)
        receipt.verification_code = single[credit_id].verification_code
        assert get_signer().sign(canonical_bytes(receipt)) == single[credit_id].signature
    assert {r.status for r in bulk.values()} == {"issued"}
    assert all(r.created_at is not None and r.cancelled_at is None and r.cancel_reason == "" for r in bulk.values())


def test_verification_codes_are_distinct_well_formed_and_new(institution):
    bill = make_bills(institution, 1)[0]
    taken = services.receipt_issue_for_credit(credit=matched_credit(bill, 1_000), now=MARCH).verification_code
    codes = services._new_verification_codes(2_000)
    assert len(codes) == len(set(codes)) == 2_000 and taken not in codes
    assert all(len(c) == services.CODE_LENGTH and set(c) <= set(services.CODE_ALPHABET) for c in codes)
    # every character of the alphabet turns up (a mapping that lost some would show here)
    assert set("".join(codes)) == set(services.CODE_ALPHABET)
