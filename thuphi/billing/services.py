from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils import translation
from django.utils.translation import gettext as _

from thuphi.billing import reference as refcode
from thuphi.billing import vietqr
from thuphi.billing.errors import BillNotCancellable, InvalidTransition, ValidationFailed
from thuphi.billing.models import (
    BILL_TRANSITIONS,
    MAX_AMOUNT,
    Bill,
    BillLine,
    BillStatus,
    DiscountRule,
    DiscountType,
    FeeItem,
    FeeKind,
)
from thuphi.core.errors import Forbidden
from thuphi.core.models import User
from thuphi.registry.models import BankAccount, Institution, Payer
from thuphi.registry.selectors import default_bank_account

MAX_LINES = 50


@dataclass
class LineInput:
    name: str
    amount: int
    kind: str = FeeKind.OTHER
    fee_item: FeeItem | None = None
    discount_percent: int | None = None
    discount_amount: int | None = None


def _check_amount(value: object, label: str) -> int:
    # bool is an int in Python; a JSON `true` must not become 1 đồng.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(_("%(label)s phải là số nguyên đồng.") % {"label": label}, code="invalid_amount")
    if value < 0 or value > MAX_AMOUNT:
        raise ValidationFailed(
            _("%(label)s phải từ 0 đến 100.000.000.000 đồng.") % {"label": label}, code="amount_out_of_range"
        )
    return value


def percent_of(amount: int, percent: int) -> int:
    """`percent`% of `amount` in whole đồng, half rounded up: 15% of 12.345 đ is 1.852 đ (1.851,75)."""
    return (amount * percent * 2 + 100) // 200


def line_discount(*, amount: int, kind: str, line: LineInput, rules: list[DiscountRule]) -> int:
    """Discount on one line: the explicit one plus the payer category's rules, never above the amount.

    Rules for the line's fee kind and rules for every kind both apply; the result is capped at the
    line amount, so a bill line can reach zero (full exemption) but never go below it.
    """
    discount = 0
    if line.discount_percent is not None:
        if isinstance(line.discount_percent, bool) or not 0 <= line.discount_percent <= 100:
            raise ValidationFailed(_("Phần trăm miễn giảm phải từ 0 đến 100."), code="invalid_discount")
        discount += percent_of(amount, line.discount_percent)
    if line.discount_amount is not None:
        discount += _check_amount(line.discount_amount, _("Số tiền miễn giảm"))
    for rule in rules:
        if rule.fee_kind and rule.fee_kind != kind:
            continue
        discount += percent_of(amount, rule.value) if rule.discount_type == DiscountType.PERCENT else rule.value
    return min(discount, amount)


def status_for(*, amount_due: int, amount_paid: int) -> str:
    if amount_paid <= 0:
        return BillStatus.UNPAID
    if amount_paid < amount_due:
        return BillStatus.PARTIALLY_PAID
    if amount_paid == amount_due:
        return BillStatus.PAID
    return BillStatus.OVERPAID


def assert_transition(*, current: str, target: str) -> None:
    if current == target:
        return
    if target not in BILL_TRANSITIONS[current]:
        raise InvalidTransition(
            _("Không thể chuyển phiếu thu từ “%(a)s” sang “%(b)s”.")
            % {"a": BillStatus(current).label, "b": BillStatus(target).label}
        )


def qr_payload_for(*, bank_account: BankAccount, amount: int, reference: str) -> str:
    # A zero amount (full exemption) still gets a static QR: the payer has nothing to pay, but
    # the notice keeps the same layout.
    return vietqr.build_payload(
        bank_bin=bank_account.bank_bin,
        account_number=bank_account.account_number,
        amount=amount or None,
        purpose=reference,
    )


def new_reference(*, taken: set[str] | None = None) -> str:
    """A fresh reference not yet in the database (nor in `taken`, for batches).

    The space is 32^8 ≈ 1.1e12, so a clash is rare; the unique index is what actually
    guarantees uniqueness, this check only avoids a predictable retry.
    """
    for _attempt in range(10):
        ref = refcode.generate()
        if (taken is None or ref not in taken) and not Bill.objects.filter(reference=ref).exists():
            return ref
    raise RuntimeError("could not allocate a unique payment reference")


def build_lines(*, institution: Institution, payer: Payer, items: list[LineInput]) -> tuple[list[BillLine], int, int]:
    if not items:
        raise ValidationFailed(_("Phiếu thu cần ít nhất một khoản."), code="items_required")
    if len(items) > MAX_LINES:
        raise ValidationFailed(_("Một phiếu thu có tối đa %(n)d khoản.") % {"n": MAX_LINES}, code="too_many_items")
    rules = list(DiscountRule.objects.filter(institution=institution, category_id=payer.category_id)) \
        if payer.category_id else []
    lines: list[BillLine] = []
    gross = discount = 0
    for pos, item in enumerate(items):
        name = (item.name or "").strip()
        if not name:
            raise ValidationFailed(_("Khoản thứ %(n)d thiếu tên.") % {"n": pos + 1}, code="item_name_required")
        amount = _check_amount(item.amount, _("Số tiền khoản thứ %(n)d") % {"n": pos + 1})
        kind = item.kind or (item.fee_item.kind if item.fee_item else FeeKind.OTHER)
        if kind not in FeeKind.values:
            raise ValidationFailed(_("Loại khoản thu “%(k)s” không hợp lệ.") % {"k": kind}, code="invalid_fee_kind")
        d = line_discount(amount=amount, kind=kind, line=item, rules=rules)
        lines.append(BillLine(fee_item=item.fee_item, name=name[:200], kind=kind, amount=amount, discount=d,
                              position=pos))
        gross += amount
        discount += d
    if gross > MAX_AMOUNT:
        raise ValidationFailed(_("Tổng phiếu thu vượt quá 100.000.000.000 đồng."), code="amount_out_of_range")
    return lines, gross, discount


def bill_create(
    *,
    actor: User | None,
    institution: Institution,
    payer: Payer,
    items: list[LineInput],
    due_date: dt.date,
    title: str = "",
    issue_date: dt.date | None = None,
    bank_account: BankAccount | None = None,
) -> Bill:
    """Issue one bill with its reference and dynamic VietQR, atomically."""
    if actor is not None and not actor.can_write:
        raise Forbidden(_("Tài khoản chỉ có quyền xem."), code="read_only")
    if payer.institution_id != institution.pk:
        raise ValidationFailed(_("Người nộp không thuộc đơn vị này."), code="payer_institution_mismatch")
    issue_date = issue_date or timezone.localdate()
    if due_date < issue_date:
        raise ValidationFailed(_("Hạn nộp không được trước ngày lập phiếu."), code="due_before_issue")
    bank_account = bank_account or default_bank_account(institution=institution)
    if bank_account is None or bank_account.institution_id != institution.pk:
        raise ValidationFailed(_("Đơn vị chưa có tài khoản nhận tiền mặc định."), code="no_bank_account")
    lines, gross, discount = build_lines(institution=institution, payer=payer, items=items)
    if not title:
        # Stored data, printed on notices and receipts: Vietnamese whatever language the caller reads.
        with translation.override("vi"):
            title = lines[0].name if len(lines) == 1 else _("%(first)s và %(n)d khoản khác") % {
                "first": lines[0].name, "n": len(lines) - 1}
    for _attempt in range(3):
        reference = new_reference()
        try:
            with transaction.atomic():
                bill = Bill.objects.create(
                    institution=institution, payer=payer, bank_account=bank_account, reference=reference,
                    title=title[:200], issue_date=issue_date, due_date=due_date, amount_gross=gross,
                    amount_discount=discount, amount_due=gross - discount,
                    status=BillStatus.PAID if gross - discount == 0 else BillStatus.UNPAID,
                    qr_payload=qr_payload_for(bank_account=bank_account, amount=gross - discount,
                                              reference=reference),
                    created_by=actor,
                )
                for line in lines:
                    line.bill = bill
                BillLine.objects.bulk_create(lines)
                return bill
        except IntegrityError:
            if not Bill.objects.filter(reference=reference).exists():
                raise
    raise RuntimeError("could not allocate a unique payment reference")


@transaction.atomic
def bill_cancel(*, actor: User | None, bill: Bill, reason: str) -> Bill:
    """Cancel a bill nobody has paid on. The row is locked so a payment cannot slip in between."""
    if actor is not None and not actor.can_write:
        raise Forbidden(_("Tài khoản chỉ có quyền xem."), code="read_only")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(_("Cần ghi lý do hủy phiếu thu."), code="reason_required")
    locked = Bill.objects.select_for_update().get(pk=bill.pk)
    if locked.amount_paid != 0:
        raise BillNotCancellable(_("Phiếu thu đã có tiền nộp, không thể hủy; hãy làm thủ tục hoàn tiền."))
    if locked.status == BillStatus.CANCELLED:
        return locked
    assert_transition(current=locked.status, target=BillStatus.CANCELLED)
    locked.status = BillStatus.CANCELLED
    locked.cancel_reason = reason[:255]
    locked.cancelled_at = timezone.now()
    locked.save(update_fields=["status", "cancel_reason", "cancelled_at", "updated_at"])
    return locked


def bill_record_payment(*, bill: Bill, amount: int) -> Bill:
    """Move a bill's paid amount by `amount` (negative for a reversal) and its status with it.

    The caller holds the bill's row lock (select_for_update) and writes the matching ledger
    rows and allocation in the same transaction; this function only keeps the bill in step.
    """
    new_paid = bill.amount_paid + amount
    if new_paid < 0:
        raise InvalidTransition(_("Số tiền đã nộp không thể âm."))
    target = status_for(amount_due=bill.amount_due, amount_paid=new_paid)
    if bill.status in (BillStatus.CANCELLED, BillStatus.REFUNDED):
        raise InvalidTransition(_("Phiếu thu đã hủy hoặc đã hoàn tiền, không nhận thêm tiền."))
    assert_transition(current=bill.status, target=target)
    bill.amount_paid = new_paid
    bill.status = target
    bill.save(update_fields=["amount_paid", "status", "updated_at"])
    return bill
