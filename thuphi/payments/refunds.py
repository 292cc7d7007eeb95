"""Money going back or moving between bills: held payer credit, reversals, refunds (maker-checker)."""
from __future__ import annotations

import csv
import io

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from thuphi.billing.models import Bill
from thuphi.billing.services import bill_record_payment
from thuphi.core.errors import Conflict, Forbidden, ValidationFailed
from thuphi.core.models import User
from thuphi.payments import ledger
from thuphi.payments.matching import PAYABLE
from thuphi.payments.services import stats_hook
from thuphi.payments.models import (
    REFUND_TRANSITIONS,
    Account,
    Allocation,
    Credit,
    CreditStatus,
    LedgerEntry,
    LedgerTransaction,
    Refund,
    RefundKind,
    RefundStatus,
)
from thuphi.registry import banks
from thuphi.registry.models import Payer


def _require_writer(actor: User) -> None:
    if not actor.can_write:
        raise Forbidden(_("Tài khoản chỉ có quyền xem."), code="read_only")


def payer_credit_balance(*, payer: Payer) -> int:
    """What the institution holds for a payer: deposits and overpayments not yet used or refunded."""
    row = LedgerEntry.objects.filter(account=Account.PAYER_CREDIT, payer=payer).aggregate(
        c=Sum("credit"), d=Sum("debit"))
    return (row["c"] or 0) - (row["d"] or 0)


def payer_credit_apply(*, actor: User, bill: Bill, amount: int | None = None) -> int:
    """Use the payer's held credit (deposits, overpayments) on a bill; return the amount applied.

    This is how a hospital's final bill at discharge consumes the deposits; what remains is
    refunded with `refund_request(kind=payer_credit)`.
    """
    _require_writer(actor)
    with transaction.atomic():
        locked = Bill.objects.select_for_update().select_related("payer").get(pk=bill.pk)
        # Payer-level lock too: two bills of one payer must not spend the same credit twice.
        Payer.objects.select_for_update().get(pk=locked.payer_id)
        if locked.status not in PAYABLE:
            raise Conflict(_("Phiếu thu đã hủy hoặc đã hoàn tiền."), code="bill_not_payable")
        available = payer_credit_balance(payer=locked.payer)
        outstanding = max(locked.amount_due - locked.amount_paid, 0)
        use = min(available, outstanding) if amount is None else amount
        if isinstance(use, bool) or not isinstance(use, int) or use < 0 or use > min(available, outstanding):
            raise ValidationFailed(_("Số tiền dùng vượt quá số dư tạm ứng/tiền thừa hoặc số còn phải nộp."),
                                   code="invalid_amount")
        if use == 0:
            return 0
        txn = ledger.ledger_post(
            kind="credit_applied", institution_id=locked.institution_id, occurred_at=timezone.now(),
            memo=f"held credit applied to {locked.reference} by {actor.username}",
            lines=[ledger.Line(Account.PAYER_CREDIT, debit=use, payer_id=locked.payer_id),
                   ledger.Line(Account.FEE_REVENUE, credit=use, bill_id=locked.pk, payer_id=locked.payer_id)],
        )
        Allocation.objects.create(credit=None, bill=locked, amount=use, ledger_transaction=txn)
        bill_record_payment(bill=locked, amount=use)
        return use


def credit_reverse(*, actor: User, credit: Credit, reason: str) -> Credit:
    """A bank reversed a credit (chargeback, erroneous transfer): undo it and reopen its bills.

    Every ledger transaction of the credit gets its mirror, every allocation a negative twin,
    and each bill's paid amount and status move back. Nothing is deleted or updated in place.
    """
    _require_writer(actor)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(_("Cần ghi lý do đảo giao dịch."), code="reason_required")
    with transaction.atomic():
        locked_credit = Credit.objects.select_for_update().get(pk=credit.pk)
        if locked_credit.status == CreditStatus.REVERSED:
            return locked_credit
        bill_ids = sorted(set(locked_credit.allocations.values_list("bill_id", flat=True)))
        bills = {b.pk: b for b in Bill.objects.select_for_update().filter(pk__in=bill_ids).order_by("pk")}
        from thuphi.payments.services import stats_hook

        stats_hook("stats_on_credit_reversed", locked_credit)
        now = timezone.now()
        for txn in LedgerTransaction.objects.filter(credit=locked_credit, reversed_by__isnull=True,
                                                    reverses__isnull=True).order_by("pk"):
            kind = "payment_reversal" if txn.kind == "payment" else f"{txn.kind}_reversal"
            rev = ledger.ledger_reverse(txn=txn, kind=kind, occurred_at=now, memo=reason)
            for alloc in txn.allocations.all():
                Allocation.objects.create(credit=locked_credit, bill_id=alloc.bill_id, amount=-alloc.amount,
                                          reverses=alloc, ledger_transaction=rev)
                bill = bills[alloc.bill_id]
                # A reversal may reopen a bill whatever its status, cancelled ones excepted.
                bill_record_payment(bill=bill, amount=-alloc.amount)
        locked_credit.status = CreditStatus.REVERSED
        locked_credit.match_reason = (locked_credit.match_reason + f"; reversed: {reason}")[:2000]
        locked_credit.save(update_fields=["status", "match_reason"])
        return locked_credit


def refund_request(
    *,
    actor: User,
    kind: str,
    amount: int,
    reason: str,
    payee_name: str,
    payee_bank_bin: str,
    payee_account: str,
    payer: Payer | None = None,
    credit: Credit | None = None,
) -> Refund:
    """Ask for money to go back. Nothing moves until a different person approves."""
    _require_writer(actor)
    if kind not in RefundKind.values:
        raise ValidationFailed(_("Loại hoàn tiền không hợp lệ."), code="invalid_kind")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValidationFailed(_("Số tiền hoàn phải là số nguyên dương."), code="invalid_amount")
    if not (reason or "").strip() or not (payee_name or "").strip():
        raise ValidationFailed(_("Cần ghi lý do và tên người nhận."), code="reason_required")
    if banks.bank_by_bin(payee_bank_bin) is None or not (payee_account or "").isalnum():
        raise ValidationFailed(_("Tài khoản nhận hoàn tiền không hợp lệ."), code="invalid_payee_account")
    if kind == RefundKind.PAYER_CREDIT:
        if payer is None:
            raise ValidationFailed(_("Cần chỉ rõ người nộp được hoàn."), code="payer_required")
        institution_id = payer.institution_id
        if amount > payer_credit_balance(payer=payer):
            raise ValidationFailed(_("Số tiền hoàn vượt quá số dư tạm ứng/tiền thừa."), code="amount_exceeds_credit")
    else:
        if credit is None or credit.status != CreditStatus.UNMATCHED:
            raise ValidationFailed(_("Chỉ trả lại được khoản tiền chưa xác định."), code="credit_not_unmatched")
        if amount != credit.amount:
            raise ValidationFailed(_("Trả lại phải đúng toàn bộ số tiền đã nhận."), code="amount_mismatch")
        institution_id = credit.institution_id
    if actor.institution_id and actor.institution_id != institution_id and not actor.is_system_admin:
        raise Forbidden(_("Không thuộc đơn vị của bạn."), code="forbidden")
    return Refund.objects.create(
        institution_id=institution_id, kind=kind, payer=payer, credit=credit, amount=amount, reason=reason.strip(),
        payee_name=payee_name.strip(), payee_bank_bin=payee_bank_bin, payee_account=payee_account,
        requested_by=actor,
    )


def _transition(refund: Refund, target: str) -> None:
    if target not in REFUND_TRANSITIONS[refund.status]:
        raise Conflict(_("Không thể chuyển yêu cầu hoàn tiền từ “%(a)s” sang “%(b)s”.")
                       % {"a": refund.get_status_display(), "b": RefundStatus(target).label},
                       code="invalid_transition")


def refund_decide(*, actor: User, refund: Refund, approve: bool, note: str = "") -> Refund:
    """The checker's step. On approval the money is set aside as refunds payable in the ledger."""
    _require_writer(actor)
    with transaction.atomic():
        r = Refund.objects.select_for_update().get(pk=refund.pk)
        if r.requested_by_id == actor.pk:
            raise Forbidden(_("Người lập yêu cầu không được tự duyệt (nguyên tắc hai người)."),
                            code="maker_checker")
        if actor.institution_id and actor.institution_id != r.institution_id and not actor.is_system_admin:
            raise Forbidden(_("Không thuộc đơn vị của bạn."), code="forbidden")
        target = RefundStatus.APPROVED if approve else RefundStatus.REJECTED
        _transition(r, target)
        if approve:
            if r.kind == RefundKind.PAYER_CREDIT:
                Payer.objects.select_for_update().get(pk=r.payer_id)
                if r.amount > payer_credit_balance(payer=r.payer):
                    raise ValidationFailed(_("Số dư không còn đủ để hoàn."), code="amount_exceeds_credit")
                source = ledger.Line(Account.PAYER_CREDIT, debit=r.amount, payer_id=r.payer_id)
            else:
                credit = Credit.objects.select_for_update().get(pk=r.credit_id)
                if credit.status != CreditStatus.UNMATCHED:
                    raise Conflict(_("Khoản tiền đã được xử lý."), code="credit_not_unmatched")
                # Statistics first, while the credit still reads as the unmatched money they counted.
                stats_hook("stats_on_credit_reversed", credit)
                credit.status = CreditStatus.RETURNED
                credit.save(update_fields=["status"])
                source = ledger.Line(Account.SUSPENSE, debit=r.amount)
            ledger.ledger_post(kind="refund_approved", institution_id=r.institution_id, occurred_at=timezone.now(),
                               credit=r.credit, memo=f"refund {r.pk}: {r.reason}",
                               lines=[source, ledger.Line(Account.REFUNDS_PAYABLE, credit=r.amount)])
        r.status = target
        r.decided_by = actor
        r.decided_at = timezone.now()
        r.decision_note = note[:255]
        r.save()
        return r


def refund_mark_paid(*, actor: User, refund: Refund) -> Refund:
    """The bank executed the payment order: the money leaves the bank account."""
    _require_writer(actor)
    with transaction.atomic():
        r = Refund.objects.select_for_update().get(pk=refund.pk)
        _transition(r, RefundStatus.PAID)
        account = r.institution.bank_accounts.filter(is_default=True).first()
        ledger.ledger_post(kind="refund_paid", institution_id=r.institution_id, occurred_at=timezone.now(),
                           credit=r.credit, memo=f"refund {r.pk} paid",
                           lines=[ledger.Line(Account.REFUNDS_PAYABLE, debit=r.amount),
                                  ledger.Line(Account.BANK, credit=r.amount,
                                              bank_account_id=account.pk if account else None)])
        r.status = RefundStatus.PAID
        r.paid_at = timezone.now()
        r.save(update_fields=["status", "paid_at"])
        return r


def refunds_payment_order(*, actor: User, institution_id: int) -> bytes:
    """Approved refunds as a payment-order file (CSV, UTF-8 with BOM for Excel) for the bank's
    bulk-transfer upload; marks them exported so the same refund is not sent twice."""
    _require_writer(actor)
    with transaction.atomic():
        rows = list(Refund.objects.select_for_update().filter(institution_id=institution_id,
                                                              status=RefundStatus.APPROVED,
                                                              exported_at__isnull=True).order_by("pk"))
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["STT", "Ma ngan hang (BIN)", "Ngan hang", "So tai khoan", "Ten nguoi nhan", "So tien",
                    "Noi dung"])
        for n, r in enumerate(rows, 1):
            bank = banks.bank_by_bin(r.payee_bank_bin) or {}
            w.writerow([n, r.payee_bank_bin, bank.get("short_name", ""), r.payee_account, r.payee_name, r.amount,
                        f"HOAN TIEN {r.pk}"])
        now = timezone.now()
        Refund.objects.filter(pk__in=[r.pk for r in rows]).update(exported_at=now)
        return ("\ufeff" + out.getvalue()).encode("utf-8")
