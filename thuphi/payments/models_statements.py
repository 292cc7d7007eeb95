"""Statement imports: one record per imported file, one per booked statement line.

Kept out of payments/models.py (which re-exports these with `from ... import *`) so the statement
import can grow without touching the core payment models.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

__all__ = ["StatementImport", "StatementLineRecord"]


class StatementImport(models.Model):
    """One bank statement file read by `statement_import`, with what became of its lines."""

    bank_account = models.ForeignKey("registry.BankAccount", on_delete=models.PROTECT,
                                     related_name="statement_imports")
    filename = models.CharField(max_length=255, blank=True)
    fmt = models.CharField(_("định dạng"), max_length=16)
    preset = models.CharField(max_length=32, blank=True)
    file_sha256 = models.CharField(max_length=64)
    lines_read = models.PositiveIntegerField(default=0)
    new_credits = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    skipped_outgoing = models.PositiveIntegerField(default=0)
    skipped_zero = models.PositiveIntegerField(default=0)
    matched = models.PositiveIntegerField(default=0)
    unmatched = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    amount_new = models.BigIntegerField(default=0)
    #: [[line_no, Vietnamese message], ...]; the first 1,000 (error_count has the total).
    errors = models.JSONField(default=list, blank=True)
    finished = models.BooleanField(default=False)
    seconds = models.FloatField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("lần nhập sao kê")
        verbose_name_plural = _("lần nhập sao kê")
        indexes = [models.Index(fields=["bank_account", "created_at"])]

    def __str__(self) -> str:
        return f"{self.filename or self.fmt} ({self.created_at:%d/%m/%Y})"


class StatementLineRecord(models.Model):
    """A statement line that became a credit. `fingerprint` is the line's identity on its account:
    "ref:" and the bank reference when the bank gave one (a hash when it is long; older records hold a
    hash), else a hash of (account, booked date, amount, normalised description, occurrence within
    the file). Unique per account, so an overlapping or repeated file never books a line twice
    (docs/statements.md)."""

    statement_import = models.ForeignKey(StatementImport, on_delete=models.PROTECT, related_name="line_records")
    # No index of its own: the unique (bank_account, fingerprint) index serves every look-up by
    # account, and one index fewer is one insertion fewer per booked line.
    bank_account = models.ForeignKey("registry.BankAccount", on_delete=models.PROTECT, related_name="+",
                                     db_index=False)
    line_no = models.PositiveIntegerField()
    fingerprint = models.CharField(max_length=64)
    credit = models.OneToOneField("payments.Credit", on_delete=models.PROTECT, related_name="statement_line")

    class Meta:
        verbose_name = _("dòng sao kê đã ghi sổ")
        verbose_name_plural = _("dòng sao kê đã ghi sổ")
        constraints = [models.UniqueConstraint(fields=["bank_account", "fingerprint"],
                                               name="statement_line_unique_fingerprint")]
