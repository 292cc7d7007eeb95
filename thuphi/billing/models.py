from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

#: Upper bound for any single amount: 100 billion đồng, well above any real fee or deposit,
#: and far inside a 64-bit integer so sums over a province cannot overflow.
MAX_AMOUNT = 100_000_000_000


class FeeKind(models.TextChoices):
    TUITION = "tuition", _("Học phí")
    MEALS_BOARDING = "meals_boarding", _("Tiền ăn, bán trú")
    SERVICES = "services", _("Dịch vụ")
    STUDENT_INSURANCE = "student_insurance", _("Bảo hiểm y tế học sinh")
    HOSPITAL_FEE = "hospital_fee", _("Viện phí")
    DEPOSIT = "deposit", _("Tạm ứng")
    OTHER = "other", _("Khác")


class FeeItem(models.Model):
    """An entry of an institution's fee catalogue."""

    institution = models.ForeignKey("registry.Institution", on_delete=models.CASCADE, related_name="fee_items")
    code = models.CharField(_("mã khoản thu"), max_length=32)
    name = models.CharField(_("tên khoản thu"), max_length=200)
    kind = models.CharField(_("loại"), max_length=32, choices=FeeKind.choices)
    default_amount = models.BigIntegerField(_("mức thu mặc định (đồng)"), default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("khoản thu")
        verbose_name_plural = _("danh mục khoản thu")
        constraints = [
            models.UniqueConstraint(fields=["institution", "code"], name="fee_item_unique_code"),
            models.CheckConstraint(name="fee_item_amount_bounds",
                                   condition=models.Q(default_amount__gte=0, default_amount__lte=MAX_AMOUNT)),
        ]

    def __str__(self) -> str:
        return self.name


class DiscountType(models.TextChoices):
    PERCENT = "percent", _("Phần trăm")
    FIXED = "fixed", _("Số tiền cố định")


class DiscountRule(models.Model):
    """A discount or exemption for a payer category, on all fees or on one fee kind."""

    institution = models.ForeignKey("registry.Institution", on_delete=models.CASCADE, related_name="discount_rules")
    category = models.ForeignKey("registry.PayerCategory", on_delete=models.CASCADE, related_name="discount_rules")
    fee_kind = models.CharField(max_length=32, choices=FeeKind.choices, blank=True)
    discount_type = models.CharField(max_length=16, choices=DiscountType.choices)
    value = models.BigIntegerField(help_text=_("Phần trăm (0–100) hoặc số đồng"))

    class Meta:
        verbose_name = _("quy tắc miễn giảm")
        verbose_name_plural = _("quy tắc miễn giảm")
        constraints = [
            models.CheckConstraint(
                name="discount_rule_bounds",
                condition=(models.Q(discount_type="percent", value__gte=0, value__lte=100)
                           | models.Q(discount_type="fixed", value__gte=0, value__lte=MAX_AMOUNT)),
            )
        ]


class BillStatus(models.TextChoices):
    UNPAID = "unpaid", _("Chưa thanh toán")
    PARTIALLY_PAID = "partially_paid", _("Thanh toán một phần")
    PAID = "paid", _("Đã thanh toán")
    OVERPAID = "overpaid", _("Thanh toán thừa")
    CANCELLED = "cancelled", _("Đã hủy")
    REFUNDED = "refunded", _("Đã hoàn tiền")


#: Every allowed status change. Payments move a bill along the first four; a reversed credit
#: (chargeback) can move it back; cancellation is only for bills nobody has paid on.
BILL_TRANSITIONS: dict[str, frozenset[str]] = {
    BillStatus.UNPAID: frozenset({BillStatus.PARTIALLY_PAID, BillStatus.PAID, BillStatus.OVERPAID,
                                  BillStatus.CANCELLED}),
    BillStatus.PARTIALLY_PAID: frozenset({BillStatus.UNPAID, BillStatus.PAID, BillStatus.OVERPAID,
                                          BillStatus.REFUNDED}),
    BillStatus.PAID: frozenset({BillStatus.PARTIALLY_PAID, BillStatus.UNPAID, BillStatus.OVERPAID,
                                BillStatus.REFUNDED}),
    BillStatus.OVERPAID: frozenset({BillStatus.PAID, BillStatus.PARTIALLY_PAID, BillStatus.UNPAID,
                                    BillStatus.REFUNDED}),
    BillStatus.CANCELLED: frozenset(),
    BillStatus.REFUNDED: frozenset(),
}

OPEN_STATUSES = (BillStatus.UNPAID, BillStatus.PARTIALLY_PAID)


class Bill(models.Model):
    # No single-column index on institution or payer: the (institution, status, due_date) and
    # (payer, status) indexes below serve every lookup by either alone (decision 0006).
    institution = models.ForeignKey("registry.Institution", on_delete=models.PROTECT, related_name="bills",
                                    db_index=False)
    payer = models.ForeignKey("registry.Payer", on_delete=models.PROTECT, related_name="bills", db_index=False)
    bank_account = models.ForeignKey("registry.BankAccount", on_delete=models.PROTECT, related_name="bills")
    # Unique through Meta.constraints rather than unique=True, which on PostgreSQL adds a second,
    # LIKE-only index (varchar_pattern_ops) that no query uses (decision 0006).
    reference = models.CharField(_("mã thanh toán"), max_length=16)
    title = models.CharField(_("nội dung"), max_length=200, blank=True)
    status = models.CharField(_("trạng thái"), max_length=16, choices=BillStatus.choices,
                              default=BillStatus.UNPAID)
    issue_date = models.DateField(_("ngày lập"))
    due_date = models.DateField(_("hạn nộp"))
    amount_gross = models.BigIntegerField(_("tổng trước miễn giảm"))
    amount_discount = models.BigIntegerField(_("miễn giảm"), default=0)
    amount_due = models.BigIntegerField(_("phải nộp"))
    # Kept equal to the ledger's allocations to this bill by the payments service, in the same
    # transaction as the ledger rows; `thuphi ledger check` proves the equality.
    amount_paid = models.BigIntegerField(_("đã nộp"), default=0)
    qr_payload = models.CharField(max_length=512, help_text=_("Chuỗi VietQR động cho số tiền phải nộp"))
    batch = models.ForeignKey("billing.BillBatch", on_delete=models.PROTECT, null=True, blank=True,
                              related_name="bills")
    cancel_reason = models.CharField(_("lý do hủy"), max_length=255, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("phiếu thu")
        verbose_name_plural = _("phiếu thu")
        indexes = [
            models.Index(fields=["institution", "status", "due_date"]),
            models.Index(fields=["payer", "status"]),
        ]
        constraints = [
            # The name PostgreSQL gave the original column constraint, so existing databases keep it.
            models.UniqueConstraint(fields=["reference"], name="billing_bill_reference_key"),
            models.CheckConstraint(
                name="bill_amounts_consistent",
                condition=models.Q(amount_gross__gte=0, amount_gross__lte=MAX_AMOUNT, amount_discount__gte=0,
                                   amount_due__gte=0, amount_paid__gte=0,
                                   amount_due=models.F("amount_gross") - models.F("amount_discount")),
            ),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def amount_outstanding(self) -> int:
        if self.status in (BillStatus.CANCELLED, BillStatus.REFUNDED):
            return 0
        return max(self.amount_due - self.amount_paid, 0)

    @property
    def is_overdue(self) -> bool:
        return self.is_open and self.due_date < timezone.localdate()

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class BillLine(models.Model):
    bill = models.ForeignKey(Bill, on_delete=models.CASCADE, related_name="lines")
    fee_item = models.ForeignKey(FeeItem, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=32, choices=FeeKind.choices, default=FeeKind.OTHER)
    amount = models.BigIntegerField()
    discount = models.BigIntegerField(default=0)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(
                name="bill_line_amounts",
                condition=models.Q(amount__gte=0, amount__lte=MAX_AMOUNT, discount__gte=0,
                                   discount__lte=models.F("amount")),
            )
        ]

    @property
    def amount_net(self) -> int:
        return self.amount - self.discount


class BillBatch(models.Model):
    """One bulk issuance (a class roster or patient list with a fee schedule)."""

    institution = models.ForeignKey("registry.Institution", on_delete=models.PROTECT, related_name="bill_batches")
    name = models.CharField(max_length=200)
    source_filename = models.CharField(max_length=255, blank=True)
    bill_count = models.PositiveIntegerField(default=0)
    amount_total = models.BigIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("đợt thu")
        verbose_name_plural = _("đợt thu")

    def __str__(self) -> str:
        return self.name
