"""After a batch commits: receipts and confirmations for all its credits at once, each once."""
from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.db import transaction

from thuphi.billing.services import LineInput, bill_create
from thuphi.core.models import OutboxMessage
from thuphi.payments import notify
from thuphi.payments.models import Credit, CreditStatus
from thuphi.payments.services import events_apply_batch
from thuphi.payments.tests.test_worker import receive, world  # noqa: F401 - fixture
from thuphi.receipts.models import Receipt
from thuphi.receipts.tests.helpers import matched_credit
from thuphi.registry.models import Payer
from thuphi.registry.services import payer_upsert

MESSAGE = ("channel", "recipient", "subject", "body", "dedupe_key", "status")


@pytest.fixture
def paid(institution):
    """Four matched credits over three bills; payers reachable by e-mail and SMS, SMS only, or not at all."""
    due = dt.date.today() + dt.timedelta(days=15)
    bills = []
    for i, phone in enumerate(("0912345678", "0987654321", "")):
        payer = payer_upsert(institution=institution, code=f"HS{i:03d}", name=f"Học sinh {i}", phone=phone)
        bills.append(bill_create(actor=None, institution=institution, payer=payer, due_date=due,
                                 items=[LineInput(name="Tiền ăn", amount=300_000, kind="meals_boarding")]))
    Payer.objects.filter(code="HS000").update(email="phuhuynh@example.vn")
    return [matched_credit(bills[0], 100_000), matched_credit(bills[1], 300_000),
            matched_credit(bills[2], 50_000), matched_credit(bills[0], 200_000)]


def messages() -> list[tuple]:
    return sorted(OutboxMessage.objects.values_list(*MESSAGE))


@pytest.mark.django_db
def test_bulk_confirmations_are_the_one_by_one_confirmations_each_once(paid):
    ids = [c.pk for c in paid]
    # given the messages the one-credit path enqueues, from the same state
    with transaction.atomic():
        single_n = sum(notify.payment_confirmations_enqueue(credit_id=i) for i in ids)
        single = messages()
        transaction.set_rollback(True)
    # when the bulk path enqueues them, twice, then the one-credit path once more
    assert notify.payment_confirmations_enqueue_many(credit_ids=ids + ids[:1]) == single_n == 5
    assert notify.payment_confirmations_enqueue_many(credit_ids=ids) == 0
    assert sum(notify.payment_confirmations_enqueue(credit_id=i) for i in ids) == 0
    # then the same messages exist, once each, and none for a payer with no channel
    assert messages() == single
    assert OutboxMessage.objects.count() == 5
    assert not OutboxMessage.objects.filter(dedupe_key__startswith=f"paid:{paid[2].pk}:").exists()


@pytest.mark.django_db
def test_after_commit_many_issues_receipts_and_messages(paid):
    notify.after_commit_many([c.pk for c in reversed(paid)])
    assert list(Receipt.objects.order_by("credit_id").values_list("number", flat=True)) == [1, 2, 3, 4]
    assert OutboxMessage.objects.count() == 5
    notify.after_commit_many([c.pk for c in paid])  # again: nothing twice
    assert Receipt.objects.count() == 4 and OutboxMessage.objects.count() == 5


@pytest.mark.django_db
def test_a_failing_receipt_step_is_logged_and_the_messages_still_go(paid, monkeypatch, caplog):
    from thuphi.receipts import services as receipts

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(receipts, "receipts_issue_for_credits", broken)
    with caplog.at_level(logging.ERROR, logger="thuphi.payments.notify"):
        notify.after_commit_many([c.pk for c in paid])  # does not raise
    assert "_receipts_many failed" in caplog.text
    assert Receipt.objects.count() == 0 and OutboxMessage.objects.count() == 5
    # and the sweep issues what the step left
    monkeypatch.undo()
    assert receipts.receipts_issue_missing() == 4


@pytest.mark.django_db(transaction=True)
def test_a_batch_schedules_one_bulk_step_not_one_per_credit(world, monkeypatch):  # noqa: F811
    account, bills = world
    for i in range(12):
        receive(account, f"N{i}", 10_000, f"HP {bills[i % 3].reference}", bank_reference=f"FTN{i}")
    receive(account, "N-none", 10_000, "khong co ma", bank_reference="FTN-none")  # unmatched
    calls: list[list[int]] = []
    real = notify.after_commit_many

    def spy(credit_ids):
        calls.append(list(credit_ids))
        real(credit_ids)

    def per_credit(credit_id):
        raise AssertionError("per-credit after_commit called from the batch path")

    monkeypatch.setattr(notify, "after_commit_many", spy)
    monkeypatch.setattr(notify, "after_commit", per_credit)
    assert events_apply_batch(size=200) == 13
    matched = sorted(Credit.objects.filter(status=CreditStatus.MATCHED).values_list("pk", flat=True))
    assert calls == [matched] and len(matched) == 12
    assert list(Receipt.objects.order_by("credit_id").values_list("credit_id", "number")) == [
        (pk, n) for n, pk in enumerate(matched, start=1)]
