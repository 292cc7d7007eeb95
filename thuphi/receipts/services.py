"""Issuing and cancelling receipts. Every write of the receipts app goes through here.

Numbering: one counter row per (institution, form symbol, serial, year), locked with SELECT … FOR UPDATE
in the transaction that inserts the receipt. Two issuers on one institution queue on that row; a
rollback returns the number with the receipt, so numbers are gapless and unique (the database's unique
constraint on the number is the backstop). A cancelled receipt keeps its number.

Lock order: the credit row first, then the counter row. Every path here takes them in that order, and
no path that moves money ever takes a counter lock, so issuing cannot deadlock with payments.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import secrets

from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from thuphi.billing.models import Bill
from thuphi.core.formatting import amount_in_words_vi
from thuphi.core.models import Role, User
from thuphi.payments.models import Allocation, Credit, CreditStatus, Method
from thuphi.receipts.errors import (
    Forbidden,
    ReceiptAlreadyCancelled,
    ReceiptNotFound,
    ReceiptNotIssuable,
    ReceiptNumbersExhausted,
    ValidationFailed,
)
from thuphi.receipts.models import (
    FORM_SYMBOL_REGEX,
    MAX_NUMBER,
    SERIAL_PREFIX_REGEX,
    Receipt,
    ReceiptCounter,
    ReceiptForm,
    ReceiptStatus,
)
from thuphi.receipts.xml import VN_TZ, canonical_bytes, get_signer
from thuphi.registry.models import Institution
from thuphi.registry.selectors import institutions_visible_to

log = logging.getLogger(__name__)

#: Who may cancel a receipt. Not the cashier who took the money: voiding the payer's proof of
#: payment is an accounting decision, taken by someone else.
CANCEL_ROLES = frozenset({Role.ACCOUNTANT, Role.INSTITUTION_ADMIN, Role.SYSTEM_ADMIN})
#: Who may change an institution's registered receipt template.
FORM_ROLES = frozenset({Role.INSTITUTION_ADMIN, Role.SYSTEM_ADMIN})

#: Crockford base 32 (no I, L, O, U): the code is read off paper and typed, so no look-alike
#: characters and no case; 12 characters carry 60 random bits, far beyond guessing.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 12


def _new_verification_code() -> str:
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        # A collision is astronomically unlikely; checking keeps the unique constraint from ever
        # aborting an issuance.
        if not Receipt.objects.filter(verification_code=code).exists():
            return code


def receipt_form_active(*, institution: Institution) -> ReceiptForm:
    """The institution's active receipt template, created with the default symbols on first use so
    that the first payment is never left without a receipt for want of configuration."""
    form = ReceiptForm.objects.filter(institution=institution, is_active=True).first()
    if form is not None:
        return form
    # get_or_create absorbs the race of two first issuances: the partial unique index lets only one in.
    form, _created = ReceiptForm.objects.get_or_create(institution=institution, is_active=True)
    return form


def receipt_form_set(*, actor: User, institution: Institution, form_symbol: str, serial_prefix: str,
                     name: str = "") -> ReceiptForm:
    """Register a new template (new symbols) for an institution; the old one stays for the receipts
    already issued under it. Numbering of the new (form, serial) starts at 0000001."""
    if not actor.can_write or not (actor.is_system_admin or actor.role in FORM_ROLES):
        raise Forbidden(_("Chỉ quản trị đơn vị được đổi mẫu biên lai."), code="forbidden")
    if not institutions_visible_to(user=actor).filter(pk=institution.pk).exists():
        raise Forbidden(_("Đơn vị ngoài phạm vi quản lý."), code="forbidden")
    form_symbol = (form_symbol or "").strip().upper()
    serial_prefix = (serial_prefix or "").strip().upper()
    if not re.fullmatch(FORM_SYMBOL_REGEX, form_symbol):
        raise ValidationFailed(_("Ký hiệu mẫu biên lai có dạng 01BLP0-001."), code="invalid_form_symbol")
    if not re.fullmatch(SERIAL_PREFIX_REGEX, serial_prefix):
        raise ValidationFailed(_("Ký hiệu biên lai là 2 chữ cái in hoa tiếng Việt (không dùng F, I, J, O, W, Z)."),
                               code="invalid_serial")
    with transaction.atomic():
        current = ReceiptForm.objects.select_for_update().filter(institution=institution, is_active=True).first()
        if current is not None:
            if current.form_symbol == form_symbol and current.serial_prefix == serial_prefix:
                return current
            current.is_active = False
            current.save(update_fields=["is_active"])
        extra = {"name": name.strip()[:100]} if (name or "").strip() else {}
        return ReceiptForm.objects.create(institution=institution, form_symbol=form_symbol,
                                          serial_prefix=serial_prefix, **extra)


def _take_number(*, institution_id: int, form_symbol: str, serial: str, year: int) -> int:
    counter, _created = ReceiptCounter.objects.get_or_create(
        institution_id=institution_id, form_symbol=form_symbol, serial=serial, year=year)
    # Locked after get_or_create: the row exists now (ours or the racing issuer's), and every issuer
    # in this serial and year waits here for the one before to commit or roll back.
    counter = ReceiptCounter.objects.select_for_update().get(pk=counter.pk)
    if counter.last_number >= MAX_NUMBER:
        raise ReceiptNumbersExhausted(
            _("Ký hiệu %(s)s đã dùng hết 9.999.999 số trong năm %(y)s; hãy đăng ký ký hiệu mới.")
            % {"s": serial, "y": year})
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    return counter.last_number


def _method_label(method: str) -> str:
    # Printed in Vietnamese whatever the language of the request that triggered the issuance.
    with translation.override("vi"):
        return str(Method(method).label) if method in Method.values else method


def _address(institution: Institution) -> str:
    if institution.address:
        return institution.address
    commune = institution.commune
    return f"{commune.name}, {commune.province.name}"


def receipt_issue_for_credit(*, credit: Credit, now: dt.datetime | None = None) -> Receipt:
    """Issue the receipt for a matched payment, or return the one already issued for it.

    ``now`` (aware) fixes the issue instant; its date in Vietnam decides the year and so the serial
    and the numbering. Atomic and idempotent: the credit row is locked first, so two issuers of the
    same credit serialise and the second returns the first's receipt.
    """
    now = now or timezone.now()
    if timezone.is_naive(now):
        raise ValueError("now must be timezone-aware")
    issued_at = now.replace(microsecond=0)  # whole seconds: the signed text must survive any database
    local = timezone.localtime(issued_at, VN_TZ)
    with transaction.atomic():
        locked = Credit.objects.select_for_update().filter(pk=credit.pk).first()
        if locked is None:
            raise ReceiptNotIssuable(_("Không tìm thấy khoản tiền để lập biên lai."))
        existing = Receipt.objects.filter(credit_id=locked.pk).first()
        if existing is not None:
            return existing
        if locked.status != CreditStatus.MATCHED:
            raise ReceiptNotIssuable(_("Khoản tiền chưa được gạch cho phiếu thu nào, chưa lập được biên lai."))
        allocations = list(Allocation.objects.filter(credit_id=locked.pk, amount__gt=0).order_by("id")
                           .values_list("bill_id", flat=True))
        if not allocations:
            raise ReceiptNotIssuable(_("Khoản tiền chưa được gạch cho phiếu thu nào, chưa lập được biên lai."))
        bill_ids = list(dict.fromkeys(allocations))
        bills = {b.pk: b for b in Bill.objects.select_related("payer").prefetch_related("lines")
                 .filter(pk__in=bill_ids)}
        first = bills[bill_ids[0]]
        fee_names = list(dict.fromkeys(line.name for bid in bill_ids for line in bills[bid].lines.all()))
        if not fee_names:
            fee_names = [first.title or first.reference]
        institution = Institution.objects.select_related("commune__province").get(pk=locked.institution_id)
        form = receipt_form_active(institution=institution)
        serial = form.serial_for(local.year)
        number = _take_number(institution_id=institution.pk, form_symbol=form.form_symbol, serial=serial,
                              year=local.year)
        signer = get_signer()
        receipt = Receipt(
            institution=institution, credit=locked, bill=first, receipt_name=form.name,
            form_symbol=form.form_symbol, serial=serial, year=local.year, number=number,
            issued_at=issued_at, issue_date=local.date(),
            institution_name=institution.name, institution_tax_code=institution.tax_code,
            institution_address=_address(institution)[:255],
            payer_name=first.payer.name, payer_code=first.payer.code, bill_reference=first.reference,
            fee_names=fee_names, amount=locked.amount, amount_in_words=amount_in_words_vi(locked.amount),
            method=locked.method, method_label=_method_label(locked.method),
            bank_reference=(locked.bank_reference or locked.external_ref)[:128],
            verification_code=_new_verification_code(), signed_by=institution.name,
            signature_algorithm=signer.algorithm, signature_key_id=signer.key_id,
        )
        receipt.signature = signer.sign(canonical_bytes(receipt))
        receipt.save(force_insert=True)
        return receipt


def receipt_issue_after_commit(*, credit_id: int) -> None:
    """Issue the receipt for a credit from a ``transaction.on_commit`` callback.

    The money is already booked and committed when this runs; a receipt failure must never undo or
    hide that. So this opens its own transaction (inside ``receipt_issue_for_credit``), and logs and
    swallows every error: ``receipts_issue_missing`` catches up later. Unmatched credits get no
    receipt, by design (no bill, no fee to name): they are skipped quietly.
    """
    try:
        credit = Credit.objects.filter(pk=credit_id).first()
        if credit is None:
            log.warning("no credit %s to issue a receipt for", credit_id)
            return
        if credit.status != CreditStatus.MATCHED:
            return
        receipt_issue_for_credit(credit=credit)
    except Exception:  # noqa: BLE001
        log.exception("issuing the receipt for credit %s failed; receipts_issue_missing will retry", credit_id)


def receipts_issue_missing(*, limit: int = 500) -> int:
    """Issue receipts for matched credits that have none (after-commit failures, credits booked before
    receipts existed). Oldest first, so numbers follow the order money arrived. Returns how many."""
    issued = 0
    ids = list(Credit.objects.filter(status=CreditStatus.MATCHED, receipt__isnull=True)
               .order_by("id").values_list("pk", flat=True)[:limit])
    for credit_id in ids:
        try:
            receipt_issue_for_credit(credit=Credit(pk=credit_id))
            issued += 1
        except Exception:  # noqa: BLE001
            log.exception("issuing the receipt for credit %s failed", credit_id)
    return issued


def receipt_cancel(*, actor: User, receipt: Receipt, reason: str, now: dt.datetime | None = None) -> Receipt:
    """Cancel a receipt: it stays, with its number, marked cancelled with who, why and when.

    The money it acknowledged is not touched (that is a refund or a reversal, in payments); the
    next receipt takes the next number, never this one's.
    """
    if not actor.can_write or not (actor.is_system_admin or actor.role in CANCEL_ROLES):
        raise Forbidden(_("Chỉ kế toán hoặc quản trị đơn vị được hủy biên lai."), code="forbidden")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(_("Phải ghi lý do hủy biên lai."), code="reason_required")
    if len(reason) > 255:
        raise ValidationFailed(_("Lý do hủy tối đa 255 ký tự."), code="reason_too_long")
    with transaction.atomic():
        current = Receipt.objects.select_for_update().filter(pk=receipt.pk).first()
        if current is None or not institutions_visible_to(user=actor).filter(pk=current.institution_id).exists():
            raise ReceiptNotFound(_("Không tìm thấy biên lai."))
        if current.status == ReceiptStatus.CANCELLED:
            raise ReceiptAlreadyCancelled(_("Biên lai số %(n)s đã bị hủy trước đó.") % {"n": current.number_display})
        current.status = ReceiptStatus.CANCELLED
        current.cancel_reason = reason
        current.cancelled_at = now or timezone.now()
        current.cancelled_by = actor
        current.save(update_fields=["status", "cancel_reason", "cancelled_at", "cancelled_by"])
        return current
