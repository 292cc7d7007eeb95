from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Provider(models.TextChoices):
    SEPAY = "sepay", "SePay"
    CASSO = "casso", "Casso"
    PAYOS = "payos", "payOS"
    GENERIC = "generic", _("Chuẩn thuphi")


class BankConnection(models.Model):
    """Credentials a provider uses to push credits for one receiving account.

    `previous_secret` is accepted alongside `secret` during a rotation, then cleared.
    """

    bank_account = models.ForeignKey("registry.BankAccount", on_delete=models.CASCADE, related_name="connections")
    provider = models.CharField(max_length=16, choices=Provider.choices)
    secret = models.CharField(max_length=255)
    previous_secret = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("kết nối nhận báo có")
        verbose_name_plural = _("kết nối nhận báo có")
        constraints = [models.UniqueConstraint(fields=["bank_account", "provider"], name="connection_unique")]

    def __str__(self) -> str:
        return f"{self.provider} → {self.bank_account}"

    @property
    def secrets(self) -> list[str]:
        return [s for s in (self.secret, self.previous_secret) if s]


class VirtualAccount(models.Model):
    """A sub-account number that identifies a payer or a bill without any memo."""

    bank_account = models.ForeignKey("registry.BankAccount", on_delete=models.CASCADE,
                                     related_name="virtual_accounts")
    number = models.CharField(max_length=32)
    payer = models.ForeignKey("registry.Payer", on_delete=models.CASCADE, null=True, blank=True,
                              related_name="virtual_accounts")
    bill = models.ForeignKey("billing.Bill", on_delete=models.CASCADE, null=True, blank=True,
                             related_name="virtual_accounts")
    is_active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["number"], name="virtual_account_unique_number"),
            models.CheckConstraint(name="virtual_account_target",
                                   condition=models.Q(payer__isnull=False) | models.Q(bill__isnull=False)),
        ]


class EventStatus(models.TextChoices):
    PENDING = "pending", _("Chờ xử lý")
    APPLIED = "applied", _("Đã ghi sổ")
    IGNORED = "ignored", _("Bỏ qua (thử nghiệm, tiền ra)")
    FAILED = "failed", _("Lỗi, cần xem xét")


class InboundEvent(models.Model):
    """A verified notification, stored before it is acknowledged.

    Unique per (provider, event_id): a redelivery meets the constraint and changes nothing.
    `fingerprint` covers the money fields; the same id with another fingerprint is a conflict.
    """

    provider = models.CharField(max_length=16, choices=Provider.choices)
    event_id = models.CharField(max_length=128)
    bank_account = models.ForeignKey("registry.BankAccount", on_delete=models.PROTECT, null=True,
                                     related_name="inbound_events")
    raw_body = models.TextField()
    fingerprint = models.CharField(max_length=64)
    account_number = models.CharField(max_length=32)
    virtual_account = models.CharField(max_length=32, blank=True)
    amount = models.BigIntegerField()
    direction = models.CharField(max_length=3, default="in")
    description = models.TextField(blank=True)
    payer_name = models.CharField(max_length=255, blank=True)
    bank_reference = models.CharField(max_length=128, blank=True)
    occurred_at = models.DateTimeField()
    is_test = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=EventStatus.choices, default=EventStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("báo có nhận được")
        verbose_name_plural = _("báo có nhận được")
        constraints = [models.UniqueConstraint(fields=["provider", "event_id"], name="inbound_event_unique")]
        indexes = [models.Index(fields=["status", "id"])]


class EventConflict(models.Model):
    """The same provider id delivered again with other money fields: never applied, shown to staff."""

    event = models.ForeignKey(InboundEvent, on_delete=models.PROTECT, related_name="conflicts")
    raw_body = models.TextField()
    fingerprint = models.CharField(max_length=64)
    received_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=255, blank=True)

    class Meta:
        verbose_name = _("báo có xung đột")
        verbose_name_plural = _("báo có xung đột")


class Method(models.TextChoices):
    CASH = "cash", _("Tiền mặt")
    CARD = "card", _("Thẻ (POS)")
    TRANSFER = "transfer", _("Chuyển khoản")
    EWALLET = "ewallet", _("Ví điện tử")


class CreditSource(models.TextChoices):
    WEBHOOK = "webhook", _("Báo có tự động")
    STATEMENT = "statement", _("Sao kê")
    COUNTER = "counter", _("Tại quầy")


class CreditStatus(models.TextChoices):
    MATCHED = "matched", _("Đã gạch nợ")
    UNMATCHED = "unmatched", _("Chưa xác định")
    RETURNED = "returned", _("Trả lại người chuyển")
    REVERSED = "reversed", _("Đã đảo")


class Credit(models.Model):
    """Money received by an institution, whatever the channel.

    A bank transaction is booked once even when both a webhook and a statement report it:
    (bank_account, bank_reference) is unique where the bank gave a reference.
    """

    # Meta's (institution, status, occurred_at) index serves every look-up by institution.
    institution = models.ForeignKey("registry.Institution", on_delete=models.PROTECT, related_name="credits",
                                    db_index=False)
    bank_account = models.ForeignKey("registry.BankAccount", on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="credits")
    method = models.CharField(max_length=16, choices=Method.choices)
    source = models.CharField(max_length=16, choices=CreditSource.choices)
    amount = models.BigIntegerField()
    description = models.TextField(blank=True)
    payer_name = models.CharField(max_length=255, blank=True)
    bank_reference = models.CharField(max_length=128, blank=True)
    external_ref = models.CharField(max_length=128, blank=True)
    occurred_at = models.DateTimeField()
    event = models.OneToOneField(InboundEvent, on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="credit")
    status = models.CharField(max_length=16, choices=CreditStatus.choices)
    match_reason = models.TextField(blank=True, help_text=_("Vì sao khoản tiền được gạch cho phiếu thu này"))
    shift = models.ForeignKey("payments.CashierShift", on_delete=models.PROTECT, null=True, blank=True,
                              related_name="credits")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("khoản tiền nhận")
        verbose_name_plural = _("khoản tiền nhận")
        constraints = [
            models.CheckConstraint(name="credit_amount_positive", condition=models.Q(amount__gt=0)),
            models.UniqueConstraint(fields=["bank_account", "bank_reference"], name="credit_unique_bank_ref",
                                    condition=~models.Q(bank_reference="")),
        ]
        indexes = [models.Index(fields=["institution", "status", "occurred_at"])]


class Allocation(models.Model):
    """The part of a credit applied to one bill. Immutable; an undo is a negative allocation
    that names the one it reverses. A bill's amount_paid is the sum of its allocations."""

    # Null when the money comes from the payer's held credit (a deposit or an earlier
    # overpayment) rather than from a new credit.
    credit = models.ForeignKey(Credit, on_delete=models.PROTECT, null=True, blank=True, related_name="allocations")
    bill = models.ForeignKey("billing.Bill", on_delete=models.PROTECT, related_name="allocations")
    amount = models.BigIntegerField()
    ledger_transaction = models.ForeignKey("payments.LedgerTransaction", on_delete=models.PROTECT, null=True,
                                           blank=True, related_name="allocations")
    reverses = models.OneToOneField("self", on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="reversed_by")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(name="allocation_nonzero", condition=~models.Q(amount=0))]


class Account(models.TextChoices):
    BANK = "bank", _("Tiền gửi ngân hàng")
    CASH_DRAWER = "cash_drawer", _("Quỹ tiền mặt")
    CARD_CLEARING = "card_clearing", _("Tiền thẻ chờ về tài khoản")
    FEE_REVENUE = "fee_revenue", _("Thu phí")
    PAYER_CREDIT = "payer_credit", _("Tiền thừa của người nộp")
    REFUNDS_PAYABLE = "refunds_payable", _("Phải hoàn trả")
    SUSPENSE = "suspense", _("Tiền chưa xác định")


class LedgerTransaction(models.Model):
    """A balanced group of entries. Never updated, never deleted: a correction is a new
    transaction that `reverses` this one (PostgreSQL enforces it with triggers)."""

    kind = models.CharField(max_length=32)
    institution = models.ForeignKey("registry.Institution", on_delete=models.PROTECT, related_name="+")
    credit = models.ForeignKey(Credit, on_delete=models.PROTECT, null=True, blank=True,
                               related_name="ledger_transactions")
    reverses = models.OneToOneField("self", on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="reversed_by")
    memo = models.CharField(max_length=255, blank=True)
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise RuntimeError("ledger transactions are immutable")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise RuntimeError("ledger transactions are immutable")


class LedgerEntry(models.Model):
    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="entries")
    account = models.CharField(max_length=32, choices=Account.choices)
    institution = models.ForeignKey("registry.Institution", on_delete=models.PROTECT, related_name="+")
    bank_account = models.ForeignKey("registry.BankAccount", on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="+")
    payer = models.ForeignKey("registry.Payer", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    # Indexed once, by Meta.indexes (the FK's own index was a second copy written on every entry).
    bill = models.ForeignKey("billing.Bill", on_delete=models.PROTECT, null=True, blank=True,
                             related_name="ledger_entries", db_index=False)
    debit = models.BigIntegerField(default=0)
    credit = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="ledger_entry_one_side",
                condition=(models.Q(debit__gt=0, credit=0) | models.Q(debit=0, credit__gt=0)),
            )
        ]
        indexes = [models.Index(fields=["account", "institution"]), models.Index(fields=["bill"])]

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise RuntimeError("ledger entries are immutable")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise RuntimeError("ledger entries are immutable")


class ShiftStatus(models.TextChoices):
    OPEN = "open", _("Đang mở")
    CLOSED = "closed", _("Đã đóng")


class CashierShift(models.Model):
    """A cashier's session at the counter: cash counted at close against what the system expects."""

    institution = models.ForeignKey("registry.Institution", on_delete=models.PROTECT, related_name="shifts")
    cashier = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="shifts")
    status = models.CharField(max_length=8, choices=ShiftStatus.choices, default=ShiftStatus.OPEN)
    opened_at = models.DateTimeField()
    opening_float = models.BigIntegerField(default=0)
    closed_at = models.DateTimeField(null=True, blank=True)
    expected_cash = models.BigIntegerField(null=True, blank=True)
    counted_cash = models.BigIntegerField(null=True, blank=True)
    difference = models.BigIntegerField(null=True, blank=True, help_text=_("Đếm được trừ dự kiến"))
    note = models.CharField(max_length=255, blank=True)

    class Meta:
        verbose_name = _("ca thu ngân")
        verbose_name_plural = _("ca thu ngân")
        constraints = [
            models.UniqueConstraint(fields=["cashier"], condition=models.Q(status="open"),
                                    name="shift_one_open_per_cashier"),
            models.CheckConstraint(name="shift_float_nonnegative", condition=models.Q(opening_float__gte=0)),
        ]


class RefundKind(models.TextChoices):
    PAYER_CREDIT = "payer_credit", _("Hoàn tiền thừa / tạm ứng còn lại")
    RETURN_UNMATCHED = "return_unmatched", _("Trả lại khoản không phải của đơn vị")


class RefundStatus(models.TextChoices):
    REQUESTED = "requested", _("Chờ duyệt")
    APPROVED = "approved", _("Đã duyệt, chờ chi")
    REJECTED = "rejected", _("Từ chối")
    PAID = "paid", _("Đã chi")


REFUND_TRANSITIONS = {
    RefundStatus.REQUESTED: frozenset({RefundStatus.APPROVED, RefundStatus.REJECTED}),
    RefundStatus.APPROVED: frozenset({RefundStatus.PAID}),
    RefundStatus.REJECTED: frozenset(),
    RefundStatus.PAID: frozenset(),
}


class Refund(models.Model):
    """Money going back to a payer. Maker-checker: the approver must not be the requester."""

    institution = models.ForeignKey("registry.Institution", on_delete=models.PROTECT, related_name="refunds")
    kind = models.CharField(max_length=32, choices=RefundKind.choices)
    payer = models.ForeignKey("registry.Payer", on_delete=models.PROTECT, null=True, blank=True,
                              related_name="refunds")
    credit = models.ForeignKey(Credit, on_delete=models.PROTECT, null=True, blank=True, related_name="refunds")
    amount = models.BigIntegerField()
    reason = models.CharField(max_length=255)
    payee_name = models.CharField(max_length=100)
    payee_bank_bin = models.CharField(max_length=6)
    payee_account = models.CharField(max_length=19)
    status = models.CharField(max_length=16, choices=RefundStatus.choices, default=RefundStatus.REQUESTED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=255, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    exported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("hoàn tiền")
        verbose_name_plural = _("hoàn tiền")
        constraints = [
            models.CheckConstraint(name="refund_amount_positive", condition=models.Q(amount__gt=0)),
            models.CheckConstraint(name="refund_maker_checker",
                                   condition=models.Q(decided_by__isnull=True)
                                   | ~models.Q(decided_by=models.F("requested_by"))),
        ]
from thuphi.payments.models_statements import *  # noqa
