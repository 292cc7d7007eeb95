"""Cashier shifts: open with a float, take cash, close with the cash counted against what is expected."""
from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from thuphi.core.errors import Conflict, Forbidden, ValidationFailed
from thuphi.core.models import User
from thuphi.payments.models import CashierShift, Credit, CreditStatus, Method, ShiftStatus


def shift_open(*, actor: User, opening_float: int = 0) -> CashierShift:
    if not actor.can_write or not actor.institution_id:
        raise Forbidden(_("Chỉ cán bộ thu của một đơn vị mới mở được ca."), code="forbidden")
    if isinstance(opening_float, bool) or not isinstance(opening_float, int) or opening_float < 0:
        raise ValidationFailed(_("Tiền đầu ca phải là số nguyên không âm."), code="invalid_amount")
    try:
        with transaction.atomic():
            return CashierShift.objects.create(institution_id=actor.institution_id, cashier=actor,
                                               opened_at=timezone.now(), opening_float=opening_float)
    except IntegrityError:
        raise Conflict(_("Bạn đang có một ca chưa đóng."), code="shift_already_open") from None


def shift_current(*, actor: User) -> CashierShift | None:
    return CashierShift.objects.filter(cashier=actor, status=ShiftStatus.OPEN).first()


def shift_expected_cash(*, shift: CashierShift) -> int:
    taken = (Credit.objects.filter(shift=shift, method=Method.CASH).exclude(status=CreditStatus.REVERSED)
             .aggregate(s=Sum("amount"))["s"] or 0)
    return shift.opening_float + taken


@transaction.atomic
def shift_close(*, actor: User, counted_cash: int, note: str = "") -> CashierShift:
    """Close the actor's open shift, recording counted − expected (negative = short)."""
    if isinstance(counted_cash, bool) or not isinstance(counted_cash, int) or counted_cash < 0:
        raise ValidationFailed(_("Số tiền đếm được phải là số nguyên không âm."), code="invalid_amount")
    shift = CashierShift.objects.select_for_update().filter(cashier=actor, status=ShiftStatus.OPEN).first()
    if shift is None:
        raise Conflict(_("Không có ca nào đang mở."), code="no_open_shift")
    expected = shift_expected_cash(shift=shift)
    shift.status = ShiftStatus.CLOSED
    shift.closed_at = timezone.now()
    shift.expected_cash = expected
    shift.counted_cash = counted_cash
    shift.difference = counted_cash - expected
    shift.note = note[:255]
    shift.save()
    return shift
