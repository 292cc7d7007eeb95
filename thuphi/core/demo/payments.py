"""Payments for the demo province, so the counters, the review queue and the cashless share are not empty.

Transfers and e-wallet payments are booked as the worker books a batch of bank notifications:
`statements.booking.credit_book_many` per bank account and method, which writes what `credit_book`
would write for each (matched from the description, with the bank's usual mangling of it), the
monitoring statistics moved for the batch by `stats_add_booked`. Cash and card, the few payments
taken at the counter, go through `credit_book` one by one with the bill named, as the counter
books them. The batch's receipts and payment confirmations follow the commit, set-based
(`notify.after_commit_many`): issued one credit and one transaction at a time, they took most of
the load's time. Dates are spread between each bill's issue and a few days after its due date, so
the monitoring figures have a history. Deterministic for a seed, like the rest of the demo.
"""
from __future__ import annotations

import datetime as dt
import random
import unicodedata
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from thuphi.billing.models import Bill, BillStatus
from thuphi.payments import notify
from thuphi.payments.models import Credit, CreditSource, CreditStatus, Method
from thuphi.payments.services import credit_book
from thuphi.payments.statements.booking import CreditInput, credit_book_many, stats_add_booked
from thuphi.registry.models import BankAccount, Sector

# Of the bills whose due date has passed: paid in full, partly, over, or still open (overdue).
_PAST_DUE = (("full", 84), ("partial", 5), ("over", 2), ("none", 9))
# Of the bills not yet due: many families pay early.
_CURRENT = (("full", 40), ("partial", 3), ("none", 57))
# How people pay, by sector: schools have mostly gone cashless, hospitals still see cash and cards.
_METHODS = {
    Sector.EDUCATION: ((Method.TRANSFER, 88), (Method.EWALLET, 5), (Method.CASH, 7)),
    Sector.HEALTH: ((Method.TRANSFER, 58), (Method.CARD, 17), (Method.EWALLET, 6), (Method.CASH, 19)),
}
# Transfers whose description lost the code: they wait in the review queue for staff.
_UNMATCHED_MEMOS = ("CHUYEN TIEN HOC PHI CHO CHAU", "NOP TIEN AN THANG {m}", "IBFT TRA TIEN VIEN PHI",
                    "MBVCB.{n}.CHUYEN KHOAN.CT tu 0{n} toi 1023")


@dataclass
class PaymentCounts:
    credits: int = 0
    unmatched: int = 0
    cash_and_card: int = 0


def _pick(rng: random.Random, table) -> str:
    return rng.choices([k for k, _w in table], weights=[w for _k, w in table])[0]


def _ascii_upper(text: str) -> str:
    s = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in s if not unicodedata.combining(c)).upper()


def _memo(rng: random.Random, bill: Bill, n: int) -> str:
    """A transfer description as banks deliver it (domain.md): the code somewhere inside, often mangled."""
    ref, who = bill.reference, _ascii_upper(bill.payer.name)
    forms = (
        ref,
        f"{ref} {who} NOP TIEN",
        f"MBVCB.{8_000_000 + n}.{ref}.{who} CHUYEN TIEN",
        f"IBFT {ref[:5]} {ref[5:]} {who}",
        f"{who} CK{ref}",
        f"{ref.lower()} nop hoc phi",
        f"TKThe :0{n:09d}, tai Vietcombank. {ref}-{who}",
        f"QR - {ref} - {who} Ma giao dich {n}",
    )
    return rng.choice(forms)


def _when(rng: random.Random, bill: Bill, today: dt.date, now: dt.datetime) -> dt.datetime | None:
    last = min(bill.due_date + dt.timedelta(days=5), today)
    if last < bill.issue_date:
        return None
    day = bill.issue_date + dt.timedelta(days=rng.randint(0, (last - bill.issue_date).days))
    moment = timezone.make_aware(dt.datetime.combine(day, dt.time(rng.randint(7, 21), rng.randint(0, 59))))
    return min(moment, now)


def demo_payments_record(*, institutions: dict, today: dt.date, seed: int) -> PaymentCounts:
    """Book payments on the demo bills. Runs inside demo_load's transaction."""
    rng = random.Random(seed * 7919 + 3)
    now = timezone.now()
    counts = PaymentCounts()
    bills = (Bill.objects.filter(institution__in=institutions.values(), status=BillStatus.UNPAID)
             .select_related("institution", "payer").order_by("id"))
    # Bank credits wait here, per (bank account, method), to be booked a batch at a time.
    batches: dict[tuple[int, str], list[CreditInput]] = {}
    matched: list[int] = []
    n = 0
    for bill in bills:
        plan = _pick(rng, _PAST_DUE if bill.due_date < today else _CURRENT)
        if plan == "none":
            continue
        when = _when(rng, bill, today, now)
        if when is None:
            continue
        amount = bill.amount_due
        if plan == "partial":
            amount = max(1_000, amount // 2 // 1_000 * 1_000)
        elif plan == "over":
            amount += rng.choice((10_000, 50_000, 100_000))
        method = _pick(rng, _METHODS.get(bill.institution.sector, _METHODS[Sector.EDUCATION]))
        n += 1
        if method in (Method.CASH, Method.CARD):
            credit = Credit.objects.create(
                institution_id=bill.institution_id, method=method, source=CreditSource.COUNTER, amount=amount,
                external_ref=f"POS{n:06d}" if method == Method.CARD else "", occurred_at=when,
                status=CreditStatus.UNMATCHED,
            )
            credit_book(credit=credit, bill_ids=[bill.pk], reason="recorded at the counter (demo)")
            counts.cash_and_card += 1
        else:
            # Matched from the description when booked, exactly as a bank notification.
            batches.setdefault((bill.bank_account_id, method), []).append(CreditInput(
                amount=amount, occurred_at=when, description=_memo(rng, bill, n),
                payer_name=_ascii_upper(bill.payer.guardian_name or bill.payer.name),
                bank_reference=f"DEMO{seed}-{n:06d}"))
    # A few transfers nobody can place without a person: the review queue has work to show.
    for i, inst in enumerate(institutions.values()):
        account = inst.bank_accounts.filter(is_default=True).first()
        if account is None or i % 3:
            continue
        n += 1
        when = now - dt.timedelta(days=rng.randint(1, 20), hours=rng.randint(0, 10))
        memo = rng.choice(_UNMATCHED_MEMOS).format(m=when.month, n=n)
        amount = rng.choice((150_000, 450_000, 884_520, 1_200_000))
        batches.setdefault((account.pk, Method.TRANSFER), []).append(CreditInput(
            amount=amount, occurred_at=when, description=memo,
            payer_name=_ascii_upper(rng.choice(("Nguyễn Văn Hùng", "Trần Thị Mai", "Lê Minh Tuấn"))),
            bank_reference=f"DEMO{seed}-{n:06d}"))
    accounts = BankAccount.objects.in_bulk({account_id for account_id, _method in batches})
    for (account_id, method), items in batches.items():
        account = accounts[account_id]
        booked = credit_book_many(bank_account=account, items=items, source=CreditSource.WEBHOOK, method=method,
                                  now=timezone.now())
        # The statistics move with the money, in this transaction (credit_book's hook, summed).
        stats_add_booked(bank_account=account, method=method, items=items, booked=booked)
        for b in booked:
            if b.status == CreditStatus.MATCHED:
                matched.append(b.credit_id)
            else:
                counts.unmatched += 1
        counts.credits += len(booked)
    counts.credits += counts.cash_and_card
    if matched:
        # Receipts and confirmations once for the whole batch, set-based (numbered in credit order per
        # institution), as the worker does after a batch; the counter's come with credit_book.
        ids = sorted(matched)
        transaction.on_commit(lambda: notify.after_commit_many(ids))
    return counts
