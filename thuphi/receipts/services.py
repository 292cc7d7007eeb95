"""Issuing and cancelling receipts. Every write of the receipts app goes through here.

Numbering: one counter row per (institution, form symbol, serial, year), locked with SELECT … FOR UPDATE
in the transaction that inserts the receipt. Two issuers on one institution queue on that row; a
rollback returns the number with the receipt, so numbers are gapless and unique (the database's unique
constraint on the number is the backstop). A cancelled receipt keeps its number.

Lock order: the credit row first, then the counter row. Every path here takes them in that order, and
no path that moves money ever takes a counter lock, so issuing cannot deadlock with payments. The bulk
issuer (``receipts_issue_for_credits``) locks all its credits (in id order) before any counter, and its
counters in (institution, form, serial, year) order, one lock per counter for a whole chunk.
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
import re
import secrets
from collections.abc import Sequence
from types import SimpleNamespace
from typing import NamedTuple

from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from thuphi.billing.models import Bill, BillLine
from thuphi.core.formatting import amount_in_words_vi
from thuphi.core.models import Role, User
from thuphi.core.rows import rows_insert
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
from thuphi.receipts.xml import VN_TZ, Signer, canonical_bytes, get_signer
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


@functools.lru_cache(maxsize=64)
def _method_label(method: str) -> str:
    # Printed in Vietnamese whatever the language of the request that triggered the issuance.
    # Cached: a translation.override per receipt cost more than the rest of its text.
    with translation.override("vi"):
        return str(Method(method).label) if method in Method.values else method


#: Pure, and a batch repeats the same few amounts.
_amount_in_words = functools.lru_cache(maxsize=4096)(amount_in_words_vi)


def _address(institution: Institution) -> str:
    if institution.address:
        return institution.address
    commune = institution.commune
    return f"{commune.name}, {commune.province.name}"


class ReceiptBill(NamedTuple):
    """What a receipt reads of one bill the credit paid: plain values, so the bulk issuer reads them
    in two queries without building Bill, Payer and BillLine instances."""

    id: int
    reference: str
    title: str
    payer_name: str
    payer_code: str
    line_names: tuple[str, ...]  # in the bill's line order

    @classmethod
    def of(cls, bill: Bill) -> "ReceiptBill":
        """From a bill with ``payer`` and ``lines`` loaded."""
        return cls(bill.pk, bill.reference, bill.title, bill.payer.name, bill.payer.code,
                   tuple(line.name for line in bill.lines.all()))


class ReceiptCredit(NamedTuple):
    """What a receipt reads of its credit (a ``Credit`` instance has the same attributes)."""

    id: int
    institution_id: int
    amount: int
    method: str
    bank_reference: str
    external_ref: str


def _receipt_fields(*, credit: Credit | ReceiptCredit, institution: Institution, form: ReceiptForm,
                    bills: list[ReceiptBill], serial: str, year: int, number: int, issued_at: dt.datetime,
                    issue_date: dt.date, signer: Signer, verification_code: str) -> dict[str, object]:
    """The signed receipt of a credit, as its field values by attname (the signature included). The
    one place that decides what a receipt says, so the one-by-one and the bulk issuers sign
    identical bytes for the same facts.

    ``bills``: the credit's bills in allocation order, each once.
    """
    first = bills[0]
    fee_names = list(dict.fromkeys(name for bill in bills for name in bill.line_names))
    if not fee_names:
        fee_names = [first.title or first.reference]
    fields = {
        "institution_id": institution.pk, "credit_id": credit.id, "bill_id": first.id,
        "receipt_name": form.name, "form_symbol": form.form_symbol, "serial": serial, "year": year,
        "number": number, "issued_at": issued_at, "issue_date": issue_date,
        "institution_name": institution.name, "institution_tax_code": institution.tax_code,
        "institution_address": _address(institution)[:255],
        "payer_name": first.payer_name, "payer_code": first.payer_code, "bill_reference": first.reference,
        "fee_names": fee_names, "amount": credit.amount, "amount_in_words": _amount_in_words(credit.amount),
        "method": credit.method, "method_label": _method_label(credit.method),
        "bank_reference": (credit.bank_reference or credit.external_ref)[:128],
        "verification_code": verification_code, "signed_by": institution.name,
        "signature_algorithm": signer.algorithm, "signature_key_id": signer.key_id,
    }
    # canonical_bytes reads these attributes only: the same bytes a Receipt holding them gives.
    fields["signature"] = signer.sign(canonical_bytes(SimpleNamespace(**fields)))
    return fields


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
        institution = Institution.objects.select_related("commune__province").get(pk=locked.institution_id)
        form = receipt_form_active(institution=institution)
        serial = form.serial_for(local.year)
        number = _take_number(institution_id=institution.pk, form_symbol=form.form_symbol, serial=serial,
                              year=local.year)
        receipt = Receipt(**_receipt_fields(
            credit=locked, institution=institution, form=form,
            bills=[ReceiptBill.of(bills[bid]) for bid in bill_ids], serial=serial, year=local.year,
            number=number, issued_at=issued_at, issue_date=local.date(), signer=get_signer(),
            verification_code=_new_verification_code()))
        receipt.institution, receipt.credit, receipt.bill = institution, locked, bills[bill_ids[0]]
        receipt.save(force_insert=True)
        return receipt


def receipt_issue_after_commit(*, credit_id: int) -> None:
    """Issue the receipt for a credit from a ``transaction.on_commit`` callback.

    The money is already booked and committed when this runs; a receipt failure must never undo or
    hide that. So this opens its own transaction (inside ``receipt_issue_for_credit``), and logs and
    swallows every error: the worker's sweep (``payments.tasks.sweep_unfinished``) catches up later.
    Unmatched credits get no receipt, by design (no bill, no fee to name): they are skipped quietly.
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
        log.exception("issuing the receipt for credit %s failed; the worker's sweep will retry", credit_id)


#: Credits per transaction of the bulk issuer: enough that a commit and each query serve many
#: receipts, few enough that a chunk's rows (credits, bills, lines, receipts) stay a few megabytes
#: and its counter locks are held for well under a second.
BULK_CHUNK = 1_000


#: Random byte -> code character: 256 is a multiple of 32, so each character stays uniform.
_CODE_BYTES = bytes(ord(CODE_ALPHABET[b % len(CODE_ALPHABET)]) for b in range(256))


def _new_verification_codes(n: int) -> list[str]:
    """``n`` distinct codes none of which a receipt already carries, with one query per round. The
    same codes as ``_new_verification_code`` draws (uniform over the alphabet), from one read of
    the system's random source per round instead of one per character."""
    codes: set[str] = set()
    while len(codes) < n:
        need = n - len(codes)
        text = secrets.token_bytes(need * CODE_LENGTH).translate(_CODE_BYTES).decode("ascii")
        fresh = {text[i:i + CODE_LENGTH] for i in range(0, len(text), CODE_LENGTH)}
        fresh -= set(Receipt.objects.filter(verification_code__in=fresh).values_list("verification_code", flat=True))
        codes |= fresh
    return list(codes)


def _counters_locked(keys: list[tuple[int, str, str, int]]) -> dict[tuple[int, str, str, int], ReceiptCounter]:
    """The counter rows of ``keys`` (institution id, form symbol, serial, year), created if missing,
    locked in that sorted order: every bulk issuer takes them in the same order, and the one-by-one
    issuer holds one at a time, so issuers queue instead of deadlocking."""
    keys = sorted(keys)
    # Created before any is locked, in the same order: an insert racing another issuer's insert of
    # the same row waits for it, and we hold no counter while waiting.
    ReceiptCounter.objects.bulk_create(
        [ReceiptCounter(institution_id=i, form_symbol=f, serial=s, year=y) for i, f, s, y in keys],
        ignore_conflicts=True)
    which = Q()
    for i, f, s, y in keys:
        which |= Q(institution_id=i, form_symbol=f, serial=s, year=y)
    # PostgreSQL locks the rows as the sorted scan returns them: in key order.
    rows = (ReceiptCounter.objects.select_for_update().filter(which)
            .order_by("institution_id", "form_symbol", "serial", "year"))
    return {(c.institution_id, c.form_symbol, c.serial, c.year): c for c in rows}


#: Receipt columns the bulk issuer writes, in row order: those ``_receipt_fields`` decides. The
#: others (status, cancellation, created_at) take the model's defaults.
_RECEIPT_FIELDS = ("institution_id", "credit_id", "bill_id", "receipt_name", "form_symbol", "serial", "year",
                   "number", "issued_at", "issue_date", "institution_name", "institution_tax_code",
                   "institution_address", "payer_name", "payer_code", "bill_reference", "fee_names", "amount",
                   "amount_in_words", "method", "method_label", "bank_reference", "verification_code",
                   "signed_by", "signature_algorithm", "signature_key_id", "signature")


def _receipt_bills(bill_ids: set[int]) -> dict[int, ReceiptBill]:
    """``ReceiptBill`` of each bill, from one join of bills and payers and one read of the lines."""
    names: dict[int, list[str]] = {}
    for bill_id, name in BillLine.objects.filter(bill_id__in=bill_ids).order_by("position", "id").values_list(
            "bill_id", "name"):
        names.setdefault(bill_id, []).append(name)
    return {pk: ReceiptBill(pk, reference, title, payer_name, payer_code, tuple(names.get(pk, ())))
            for pk, reference, title, payer_name, payer_code in Bill.objects.filter(pk__in=bill_ids).values_list(
                "pk", "reference", "title", "payer__name", "payer__code")}


def _receipts_issue_chunk(*, credit_ids: list[int], issued_at: dt.datetime, signer: Signer) -> int:
    local = timezone.localtime(issued_at, VN_TZ)
    with transaction.atomic():
        # Lock order, as in receipt_issue_for_credit: the credits first (in id order, so two bulk
        # issuers of overlapping sets queue on the first shared credit), then the counters.
        credits = [ReceiptCredit._make(row) for row in (
            Credit.objects.select_for_update().filter(pk__in=credit_ids, status=CreditStatus.MATCHED)
            .order_by("id").values_list(*ReceiptCredit._fields))]
        done = set(Receipt.objects.filter(credit_id__in=[c.id for c in credits]).values_list("credit_id", flat=True))
        credits = [c for c in credits if c.id not in done]
        if not credits:
            return 0
        bill_ids_of: dict[int, list[int]] = {}
        for credit_id, bill_id in (Allocation.objects.filter(credit_id__in=[c.id for c in credits], amount__gt=0)
                                   .order_by("id").values_list("credit_id", "bill_id")):
            ids = bill_ids_of.setdefault(credit_id, [])
            if bill_id not in ids:
                ids.append(bill_id)
        credits = [c for c in credits if c.id in bill_ids_of]  # matched yet allocated nothing: no fee to name
        if not credits:
            return 0
        bills = _receipt_bills({b for ids in bill_ids_of.values() for b in ids})
        institutions = Institution.objects.select_related("commune__province").in_bulk(
            {c.institution_id for c in credits})
        forms = {f.institution_id: f for f in ReceiptForm.objects.filter(institution_id__in=institutions,
                                                                         is_active=True)}
        for inst_id in sorted(institutions.keys() - forms.keys()):  # first receipt of an institution
            forms[inst_id] = receipt_form_active(institution=institutions[inst_id])
        keys = {inst_id: (inst_id, form.form_symbol, form.serial_for(local.year), local.year)
                for inst_id, form in forms.items()}

        counters = _counters_locked(list({keys[c.institution_id] for c in credits}))
        taken = {key: counter.last_number for key, counter in counters.items()}
        codes = _new_verification_codes(len(credits))
        issue_date = local.date()
        rows: list[tuple] = []
        for credit in credits:  # in id order: numbers follow the order the money arrived
            key = keys[credit.institution_id]
            if taken[key] >= MAX_NUMBER:
                log.error("serial %s of institution %s is exhausted for %s: no receipt for credit %s",
                          key[2], key[0], key[3], credit.id)
                continue
            taken[key] += 1
            fields = _receipt_fields(
                credit=credit, institution=institutions[credit.institution_id], form=forms[credit.institution_id],
                bills=[bills[b] for b in bill_ids_of[credit.id]], serial=key[2], year=key[3], number=taken[key],
                issued_at=issued_at, issue_date=issue_date, signer=signer, verification_code=codes.pop())
            rows.append(tuple(fields[name] for name in _RECEIPT_FIELDS))
        for key, counter in counters.items():
            if taken[key] != counter.last_number:
                ReceiptCounter.objects.filter(pk=counter.pk).update(last_number=taken[key])
        rows_insert(Receipt, _RECEIPT_FIELDS, rows)
        return len(rows)


def receipts_issue_for_credits(*, credit_ids: Sequence[int], now: dt.datetime | None = None) -> int:
    """Issue the receipts of many credits; return how many were issued by this call.

    The same receipts as ``receipt_issue_for_credit`` called on each credit in id order at ``now``
    (same fields, same signed bytes, same consecutive numbers per institution and serial), with a
    handful of set-based statements per chunk of ``BULK_CHUNK`` credits instead of ~15 per credit.

    Concurrency: one transaction per chunk, in credit-id order. Each locks its credits FOR UPDATE in
    id order, then its counters in (institution, form, serial, year) order, one lock and one update
    per counter. A rollback returns the chunk's numbers with its receipts: numbers stay gapless.
    Idempotent: credits that already have a receipt are skipped, and so are credits that are not
    matched, allocate nothing, or no longer exist (not errors). If a chunk fails, its credits are
    issued one by one with ``receipt_issue_for_credit``, each failure logged, never raised, so one
    bad credit costs speed, not the receipts of the others; the worker's sweep
    (``payments.tasks.sweep_unfinished``) catches up on anything left.
    """
    now = now or timezone.now()
    if timezone.is_naive(now):
        raise ValueError("now must be timezone-aware")
    issued_at = now.replace(microsecond=0)  # whole seconds: the signed text must survive any database
    signer = get_signer()
    ids = sorted(set(credit_ids))
    issued = 0
    for start in range(0, len(ids), BULK_CHUNK):
        chunk = ids[start:start + BULK_CHUNK]
        try:
            issued += _receipts_issue_chunk(credit_ids=chunk, issued_at=issued_at, signer=signer)
        except Exception:  # noqa: BLE001 - rolled back whole; retry credit by credit
            log.exception("issuing %s receipts in bulk failed; issuing them one by one", len(chunk))
            issued += _receipts_issue_one_by_one(credit_ids=chunk, now=issued_at)
    return issued


def _receipts_issue_one_by_one(*, credit_ids: list[int], now: dt.datetime) -> int:
    issued = 0
    have = set(Receipt.objects.filter(credit_id__in=credit_ids).values_list("credit_id", flat=True))
    for credit_id in credit_ids:
        if credit_id in have:
            continue
        try:
            receipt_issue_for_credit(credit=Credit(pk=credit_id), now=now)
            issued += 1
        except ReceiptNotIssuable:
            pass  # unmatched or vanished: no receipt, by design
        except Exception:  # noqa: BLE001
            log.exception("issuing the receipt for credit %s failed", credit_id)
    return issued


def receipts_issue_missing(*, limit: int = 5_000) -> int:
    """Issue receipts for matched credits that have none (after-commit failures, credits booked before
    receipts existed, statement imports). Oldest first, so numbers follow the order money arrived,
    in bulk (``receipts_issue_for_credits``). Returns how many."""
    from thuphi.receipts.selectors import credits_without_receipt

    ids = credits_without_receipt(limit=limit)
    return receipts_issue_for_credits(credit_ids=ids) if ids else 0


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
