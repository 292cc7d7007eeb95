"""The double-entry ledger: post balanced transactions, reverse them, check the invariants.

The ledger records money, not claims: a bill is not posted when issued (it is a claim); money
is posted when it arrives. A bill's outstanding balance is its amount due minus its allocations.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import F, Q, Sum

from thuphi.payments.errors import LedgerUnbalanced
from thuphi.payments.models import Account, Allocation, Credit, LedgerEntry, LedgerTransaction


#: Transactions that move money onto or off a bill; their bill-tagged revenue and payer-credit
#: entries must add up to the bill's amount_paid.
PAYMENT_KINDS = ("payment", "payment_reversal", "suspense_match", "suspense_match_reversal", "credit_applied")
#: Transactions that bring a credit's money in (or take it back out on a reversal).
RECEIPT_KINDS = ("payment", "payment_reversal", "unmatched_credit", "unmatched_credit_reversal")


@dataclass(frozen=True)
class Line:
    account: str
    debit: int = 0
    credit: int = 0
    bank_account_id: int | None = None
    payer_id: int | None = None
    bill_id: int | None = None


def ledger_post(
    *,
    kind: str,
    institution_id: int,
    occurred_at: dt.datetime,
    lines: list[Line],
    credit: Credit | None = None,
    reverses: LedgerTransaction | None = None,
    memo: str = "",
) -> LedgerTransaction:
    """Insert one balanced transaction. Must run inside the caller's atomic block, so the money
    and whatever it moves (bills, credits) commit together or not at all."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("ledger_post must run inside a transaction")
    lines = [ln for ln in lines if ln.debit or ln.credit]
    debits = sum(ln.debit for ln in lines)
    credits = sum(ln.credit for ln in lines)
    if not lines or debits != credits:
        raise LedgerUnbalanced(f"{kind}: debits {debits} != credits {credits}")
    for ln in lines:
        if ln.debit < 0 or ln.credit < 0 or (ln.debit and ln.credit):
            raise LedgerUnbalanced(f"{kind}: an entry must be one positive side")
    txn = LedgerTransaction.objects.create(kind=kind, institution_id=institution_id, credit=credit,
                                           reverses=reverses, memo=memo[:255], occurred_at=occurred_at)
    LedgerEntry.objects.bulk_create([
        LedgerEntry(transaction=txn, account=ln.account, institution_id=institution_id,
                    bank_account_id=ln.bank_account_id, payer_id=ln.payer_id, bill_id=ln.bill_id,
                    debit=ln.debit, credit=ln.credit)
        for ln in lines
    ])
    return txn


def ledger_reverse(*, txn: LedgerTransaction, kind: str, occurred_at: dt.datetime, memo: str = "") -> LedgerTransaction:
    """The mirror image of `txn`: every debit becomes a credit. A transaction is reversed once."""
    lines = [Line(account=e.account, debit=e.credit, credit=e.debit, bank_account_id=e.bank_account_id,
                  payer_id=e.payer_id, bill_id=e.bill_id) for e in txn.entries.all()]
    return ledger_post(kind=kind, institution_id=txn.institution_id, occurred_at=occurred_at, lines=lines,
                       credit=txn.credit, reverses=txn, memo=memo)


@dataclass
class CheckReport:
    transactions: int = 0
    entries: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def ledger_check(*, limit: int = 50) -> CheckReport:
    """Verify every invariant; report up to `limit` problems of each kind."""
    from thuphi.billing.models import Bill

    report = CheckReport(transactions=LedgerTransaction.objects.count(), entries=LedgerEntry.objects.count())
    totals = LedgerEntry.objects.aggregate(d=Sum("debit"), c=Sum("credit"))
    if (totals["d"] or 0) != (totals["c"] or 0):
        report.problems.append(f"total debits {totals['d']} != total credits {totals['c']}")
    unbalanced = (
        LedgerEntry.objects.values("transaction_id").annotate(d=Sum("debit"), c=Sum("credit"))
        .exclude(d=F("c"))[:limit]
    )
    for row in unbalanced:
        report.problems.append(f"transaction {row['transaction_id']}: debits {row['d']} != credits {row['c']}")
    empty = LedgerTransaction.objects.filter(entries__isnull=True).values_list("id", flat=True)[:limit]
    for txn_id in empty:
        report.problems.append(f"transaction {txn_id} has no entries")
    # Each bill's paid amount equals its allocations, and the money the ledger put on the bill.
    alloc = {r["bill_id"]: r["s"] for r in Allocation.objects.values("bill_id").annotate(s=Sum("amount"))}
    booked = {
        r["bill_id"]: (r["c"] or 0) - (r["d"] or 0)
        for r in LedgerEntry.objects.filter(bill__isnull=False,
                                            account__in=[Account.FEE_REVENUE, Account.PAYER_CREDIT])
        .filter(transaction__kind__in=PAYMENT_KINDS)
        .values("bill_id").annotate(c=Sum("credit"), d=Sum("debit"))
    }
    paid = Bill.objects.filter(Q(amount_paid__gt=0) | Q(pk__in=list(alloc)) | Q(pk__in=list(booked)))
    for bill_id, reference, amount_paid in paid.values_list("id", "reference", "amount_paid").iterator():
        a = alloc.get(bill_id, 0)
        b = booked.get(bill_id, 0)
        if not (amount_paid == a == b):
            report.problems.append(
                f"bill {reference}: amount_paid {amount_paid}, allocations {a}, ledger {b}")
            if len(report.problems) > limit * 3:
                break
    # Every credit is booked once: the net money its receipt transactions put on bank, cash or
    # card clearing equals its amount, or zero once reversed.
    money = [Account.BANK, Account.CASH_DRAWER, Account.CARD_CLEARING]
    net = {
        r["transaction__credit_id"]: (r["d"] or 0) - (r["c"] or 0)
        for r in LedgerEntry.objects.filter(account__in=money, transaction__kind__in=RECEIPT_KINDS,
                                            transaction__credit__isnull=False)
        .values("transaction__credit_id").annotate(d=Sum("debit"), c=Sum("credit"))
    }
    for cid, amount, status in Credit.objects.values_list("id", "amount", "status").iterator():
        expected = 0 if status == "reversed" else amount
        if net.get(cid, 0) != expected:
            report.problems.append(f"credit {cid}: amount {amount} ({status}), booked {net.get(cid, 0)}")
            if len(report.problems) > limit * 4:
                break
    return report


def immutability_sql() -> list[str]:
    """Triggers that make PostgreSQL refuse UPDATE and DELETE on ledger rows."""
    stmts = [
        """CREATE OR REPLACE FUNCTION thuphi_ledger_immutable() RETURNS trigger AS $$
           BEGIN RAISE EXCEPTION 'ledger rows are immutable: post a reversal instead'; END;
           $$ LANGUAGE plpgsql;""",
    ]
    for table in ("payments_ledgertransaction", "payments_ledgerentry", "payments_allocation"):
        stmts.append(f"DROP TRIGGER IF EXISTS {table}_immutable ON {table};")
        stmts.append(f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
                     f"FOR EACH ROW EXECUTE FUNCTION thuphi_ledger_immutable();")
    return stmts


def is_postgres() -> bool:
    return connection.vendor == "postgresql"
