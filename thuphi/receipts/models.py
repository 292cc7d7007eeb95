"""Electronic receipts (biên lai điện tử) for fees and charges.

What a receipt must carry (Decree 123/2020/NĐ-CP Art. 32, amended by Decree 70/2025/NĐ-CP): the receipt
type name, the form symbol (ký hiệu mẫu biên lai) and the serial (ký hiệu biên lai), a number of at most
7 digits that starts at 0000001 on 1 January (or the first day of use) and runs to 31 December, the
collector's name and tax code, the fee name, the amount in figures and in words, the date, and for an
electronic receipt the collector's digital signature.

The symbols we use
------------------
The Decree says *what* the symbols express, not their exact spelling: the form symbol names the receipt
type, the number of copies (liên) and the ordinal of the template within that type; the serial is
Vietnamese capital letters plus the last two digits of the year. Circular 32/2025/TT-BTC (which replaced
Circular 78/2021 on 1 June 2025) spells out the 1-digit + 6-character symbols of *invoices* only. For
receipts, e-receipt providers in use today (VNPT, Viettel and their integrators) keep the 11-character
layout inherited from Circular 303/2016/TT-BTC, and that is what tax offices receive:

* form symbol ``01BLP0-001``: ``01`` receipt type (receipt without printed face value), ``BLP`` biên lai
  phí/lệ phí, ``0`` copies (an electronic receipt has no paper copies), ``-``, ``001`` template ordinal;
* serial ``AA-26E``: two letters chosen by the collector from the 20 Vietnamese capitals
  (A B C D E G H K L M N P Q R S T U V X Y), ``-``, the 2-digit year of issue, ``E`` electronic
  (providers also print ``AA/26E``; we use ``-`` so that the serial is safe in URLs and file names).

Both are per institution (:class:`ReceiptForm`) because they are registered with the tax office by each
collector. The serial changes every year with its year digits, and numbering restarts with it.
"""
from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

#: 11 characters: type (2 digits), BLP, copies (1 digit), "-", template ordinal (3 digits).
FORM_SYMBOL_REGEX = r"^[0-9]{2}BLP[0-9]-[0-9]{3}$"
#: The 20 capital letters of the Vietnamese alphabet that tax symbols may use (no F, I, J, O, W, Z).
SERIAL_LETTERS = "ABCDEGHKLMNPQRSTUVXY"
SERIAL_PREFIX_REGEX = rf"^[{SERIAL_LETTERS}]{{2}}$"
DEFAULT_FORM_SYMBOL = "01BLP0-001"
DEFAULT_SERIAL_PREFIX = "AA"
DEFAULT_RECEIPT_NAME = "Biên lai thu phí, lệ phí"
#: The number is printed with 7 digits, so a serial holds at most this many receipts in a year.
MAX_NUMBER = 9_999_999

form_symbol_validator = RegexValidator(FORM_SYMBOL_REGEX, _("Ký hiệu mẫu biên lai có dạng 01BLP0-001."))
serial_prefix_validator = RegexValidator(
    SERIAL_PREFIX_REGEX, _("Ký hiệu biên lai là 2 chữ cái in hoa tiếng Việt (không dùng F, I, J, O, W, Z)."))


def serial_for(prefix: str, year: int) -> str:
    """("AA", 2026) -> "AA-26E"."""
    return f"{prefix}-{year % 100:02d}E"


class ReceiptForm(models.Model):
    """The receipt template an institution registered with the tax office. One is active at a time;
    a new template is a new row, so receipts already issued keep the symbols they were issued under."""

    institution = models.ForeignKey("registry.Institution", on_delete=models.CASCADE, related_name="receipt_forms")
    name = models.CharField(_("tên loại biên lai"), max_length=100, default=DEFAULT_RECEIPT_NAME)
    form_symbol = models.CharField(_("ký hiệu mẫu biên lai"), max_length=11, default=DEFAULT_FORM_SYMBOL,
                                   validators=[form_symbol_validator])
    serial_prefix = models.CharField(_("ký hiệu biên lai (2 chữ cái)"), max_length=2, default=DEFAULT_SERIAL_PREFIX,
                                     validators=[serial_prefix_validator])
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("mẫu biên lai")
        verbose_name_plural = _("mẫu biên lai")
        constraints = [
            models.UniqueConstraint(fields=["institution"], condition=models.Q(is_active=True),
                                    name="receipt_form_one_active"),
        ]

    def __str__(self) -> str:
        return f"{self.form_symbol} {self.serial_prefix}"

    def serial_for(self, year: int) -> str:
        return serial_for(self.serial_prefix, year)


class ReceiptCounter(models.Model):
    """The last number used in one serial in one year. Locked (SELECT … FOR UPDATE) while a number is
    taken, in the same transaction that inserts the receipt: a rollback gives the number back, so the
    sequence has no gaps and no duplicates."""

    institution = models.ForeignKey("registry.Institution", on_delete=models.PROTECT, related_name="+")
    form_symbol = models.CharField(max_length=11)
    serial = models.CharField(max_length=8)
    year = models.PositiveSmallIntegerField()
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("bộ đếm số biên lai")
        verbose_name_plural = _("bộ đếm số biên lai")
        constraints = [
            models.UniqueConstraint(fields=["institution", "form_symbol", "serial", "year"],
                                    name="receipt_counter_unique"),
            models.CheckConstraint(name="receipt_counter_bounds",
                                   condition=models.Q(last_number__gte=0, last_number__lte=MAX_NUMBER)),
        ]

    def __str__(self) -> str:
        return f"{self.form_symbol} {self.serial} {self.year}: {self.last_number:07d}"


class ReceiptStatus(models.TextChoices):
    ISSUED = "issued", _("Đã phát hành")
    CANCELLED = "cancelled", _("Đã hủy")


#: The only fields a save may change once a receipt exists: everything else is signed.
MUTABLE_FIELDS = frozenset({"status", "cancel_reason", "cancelled_at", "cancelled_by"})


class Receipt(models.Model):
    """One receipt for one payment (credit). The facts are copied at issue time (institution, payer,
    fee names) so that later edits of the registry never rewrite a receipt already handed to a payer,
    and they are what the signature covers. A cancelled receipt keeps its number: numbers never
    return to the pool."""

    # The unique numbering key and the (institution, issued_at) index both start with it.
    institution = models.ForeignKey("registry.Institution", on_delete=models.PROTECT, related_name="receipts",
                                    db_index=False)
    credit = models.OneToOneField("payments.Credit", on_delete=models.PROTECT, related_name="receipt")
    bill = models.ForeignKey("billing.Bill", on_delete=models.PROTECT, null=True, blank=True,
                             related_name="receipts")
    receipt_name = models.CharField(_("tên loại biên lai"), max_length=100, default=DEFAULT_RECEIPT_NAME)
    form_symbol = models.CharField(_("ký hiệu mẫu biên lai"), max_length=11)
    serial = models.CharField(_("ký hiệu biên lai"), max_length=8)
    year = models.PositiveSmallIntegerField(_("năm"))
    number = models.PositiveIntegerField(_("số biên lai"))
    issued_at = models.DateTimeField(_("thời điểm lập"))
    issue_date = models.DateField(_("ngày lập"), help_text=_("Theo giờ Việt Nam"))
    institution_name = models.CharField(_("đơn vị thu"), max_length=255)
    institution_tax_code = models.CharField(_("mã số thuế đơn vị thu"), max_length=14, blank=True)
    institution_address = models.CharField(_("địa chỉ đơn vị thu"), max_length=255, blank=True)
    payer_name = models.CharField(_("người nộp"), max_length=100)
    payer_code = models.CharField(_("mã người nộp"), max_length=32)
    bill_reference = models.CharField(_("mã thanh toán"), max_length=16, blank=True)
    fee_names = models.JSONField(_("khoản thu"), default=list)
    amount = models.BigIntegerField(_("số tiền"))
    amount_in_words = models.CharField(_("số tiền bằng chữ"), max_length=400)
    method = models.CharField(_("mã hình thức thanh toán"), max_length=16)
    # The label as printed, frozen: a later rewording of the payments choices must not change (and so
    # invalidate the signature of) receipts already issued.
    method_label = models.CharField(_("hình thức thanh toán"), max_length=64)
    bank_reference = models.CharField(_("mã giao dịch"), max_length=128, blank=True)
    verification_code = models.CharField(_("mã tra cứu"), max_length=16, unique=True)
    signed_by = models.CharField(_("ký bởi"), max_length=255)
    signature_algorithm = models.CharField(max_length=32)
    signature_key_id = models.CharField(max_length=64, blank=True)
    signature = models.TextField(_("chữ ký số"))
    status = models.CharField(_("trạng thái"), max_length=16, choices=ReceiptStatus.choices,
                              default=ReceiptStatus.ISSUED)
    cancel_reason = models.CharField(_("lý do hủy"), max_length=255, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("biên lai")
        verbose_name_plural = _("biên lai")
        constraints = [
            # The database itself refuses a second receipt with the same number in a serial and year.
            models.UniqueConstraint(fields=["institution", "form_symbol", "serial", "year", "number"],
                                    name="receipt_unique_number"),
            models.CheckConstraint(name="receipt_number_bounds",
                                   condition=models.Q(number__gte=1, number__lte=MAX_NUMBER)),
            models.CheckConstraint(name="receipt_amount_positive", condition=models.Q(amount__gt=0)),
            models.CheckConstraint(
                name="receipt_cancel_recorded",
                condition=models.Q(status="issued")
                | (models.Q(status="cancelled", cancelled_at__isnull=False) & ~models.Q(cancel_reason="")),
            ),
        ]
        indexes = [models.Index(fields=["institution", "issued_at"])]

    def __str__(self) -> str:
        return f"{self.form_symbol} {self.serial} {self.number_display}"

    @property
    def number_display(self) -> str:
        """7 digits, zero-padded, as printed: 1 -> "0000001"."""
        return f"{self.number:07d}"

    @property
    def is_cancelled(self) -> bool:
        return self.status == ReceiptStatus.CANCELLED

    def save(self, *args, **kwargs):
        # A receipt is a signed document: after issue only its cancellation may be recorded.
        if self.pk is not None and not kwargs.get("force_insert"):
            fields = kwargs.get("update_fields")
            if fields is None or not set(fields) <= MUTABLE_FIELDS:
                raise RuntimeError("receipts are immutable once issued; only cancellation may be recorded")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise RuntimeError("receipts are never deleted; cancel them")
