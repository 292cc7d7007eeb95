"""Monitoring of the plan: statistics kept from the ledger, aggregate reports, plans and targets.

Two sources feed the indicators (docs/monitoring.md):
- institutions collecting through thuphi: `DailyStat` / `MonthlyStat`, one row per institution, day (month),
  fee kind and payment method, with rollups by institution (month, half month, year) and nationwide (by kind of
  institution, day and month), all moved in the same transaction as the credit that causes them and
  recomputable from the ledger (`thuphi monitoring rebuild`);
- institutions that do not: `AggregateReport`, submitted then approved or returned by the province.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from thuphi.registry.models import CASHLESS_METHODS

#: The fee kind of a credit not (yet) matched to any bill.
UNMATCHED = "unmatched"
#: Cashless payment methods as plain strings (for SQL and JSON).
CASHLESS = sorted(str(m) for m in CASHLESS_METHODS)


class DailyStat(models.Model):
    """Booked payments of one institution on one local day (Asia/Ho_Chi_Minh), per fee kind and method.

    The key is the primary key: no surrogate id to generate or index for millions of rows. Derived data,
    rebuilt from the ledger, hence no database-level foreign key (a rebuild does not pay a referential
    check per row; institutions are never deleted).
    """

    pk = models.CompositePrimaryKey("institution", "day", "fee_kind", "method")
    institution = models.ForeignKey("registry.Institution", on_delete=models.DO_NOTHING, related_name="+",
                                    db_constraint=False, db_index=False)
    day = models.DateField()
    fee_kind = models.CharField(max_length=32)
    method = models.CharField(max_length=16)
    payments = models.BigIntegerField(default=0)
    value = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("thống kê ngày")
        verbose_name_plural = _("thống kê ngày")
        indexes = [models.Index(fields=["day"], name="daily_stat_day")]


class MonthlyStat(models.Model):
    """The same figures by calendar month (`month` is its first day): long ranges read 30 times fewer rows."""

    pk = models.CompositePrimaryKey("institution", "month", "fee_kind", "method")
    institution = models.ForeignKey("registry.Institution", on_delete=models.DO_NOTHING, related_name="+",
                                    db_constraint=False, db_index=False)
    month = models.DateField()
    fee_kind = models.CharField(max_length=32)
    method = models.CharField(max_length=16)
    payments = models.BigIntegerField(default=0)
    value = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("thống kê tháng")
        verbose_name_plural = _("thống kê tháng")
        indexes = [models.Index(fields=["month"], name="monthly_stat_month")]


class InstitutionMonthStat(models.Model):
    """One row per institution and month with the cashless split: what national queries read (3,000 rows a
    month for 3,000 institutions, against some 20 times more in MonthlyStat)."""

    pk = models.CompositePrimaryKey("institution", "month")
    institution = models.ForeignKey("registry.Institution", on_delete=models.DO_NOTHING, related_name="+",
                                    db_constraint=False, db_index=False)
    month = models.DateField()
    payments = models.BigIntegerField(default=0)
    payments_cashless = models.BigIntegerField(default=0)
    value = models.BigIntegerField(default=0)
    value_cashless = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("thống kê tháng theo đơn vị")
        verbose_name_plural = _("thống kê tháng theo đơn vị")
        indexes = [models.Index(fields=["month"], name="inst_month_stat_month")]


class InstitutionHalfMonthStat(models.Model):
    """One row per institution and half month (half 1: days 1–15, half 2: day 16 to the end) with the cashless
    split. Periods that run from the 16th to the 15th (Bắc Giang's reports, seed 004) are whole halves, so a
    national answer for them reads 3,000 rows a half instead of every day row."""

    pk = models.CompositePrimaryKey("institution", "month", "half")
    institution = models.ForeignKey("registry.Institution", on_delete=models.DO_NOTHING, related_name="+",
                                    db_constraint=False, db_index=False)
    month = models.DateField()
    half = models.SmallIntegerField()
    payments = models.BigIntegerField(default=0)
    payments_cashless = models.BigIntegerField(default=0)
    value = models.BigIntegerField(default=0)
    value_cashless = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("thống kê nửa tháng theo đơn vị")
        verbose_name_plural = _("thống kê nửa tháng theo đơn vị")
        indexes = [models.Index(fields=["month", "half"], name="inst_half_stat_month")]


class InstitutionYearStat(models.Model):
    """One row per institution and calendar year (`year` is 1 January) with the cashless split: a national
    answer for a year, or for most of one, reads 3,000 rows instead of 36,000."""

    pk = models.CompositePrimaryKey("institution", "year")
    institution = models.ForeignKey("registry.Institution", on_delete=models.DO_NOTHING, related_name="+",
                                    db_constraint=False, db_index=False)
    year = models.DateField()
    payments = models.BigIntegerField(default=0)
    payments_cashless = models.BigIntegerField(default=0)
    value = models.BigIntegerField(default=0)
    value_cashless = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("thống kê năm theo đơn vị")
        verbose_name_plural = _("thống kê năm theo đơn vị")
        indexes = [models.Index(fields=["year"], name="inst_year_stat_year")]


class NationDayStat(models.Model):
    """Nationwide figures without the institution: one row per day, sector, kind and ownership of institution,
    fee kind and method (a few hundred rows a day). What national breakdowns, trends and fee-restricted targets
    read. An institution's payments are filed under the sector, kind and ownership recorded for it in
    `NationStatFiling`; readers correct for institutions changed since (see selectors.nation_sums)."""

    pk = models.CompositePrimaryKey("day", "sector", "kind", "ownership", "fee_kind", "method")
    day = models.DateField()
    sector = models.CharField(max_length=16)
    kind = models.CharField(max_length=32)
    ownership = models.CharField(max_length=16)
    fee_kind = models.CharField(max_length=32)
    method = models.CharField(max_length=16)
    payments = models.BigIntegerField(default=0)
    value = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("thống kê ngày toàn quốc")
        verbose_name_plural = _("thống kê ngày toàn quốc")


class NationMonthStat(models.Model):
    """`NationDayStat` by calendar month."""

    pk = models.CompositePrimaryKey("month", "sector", "kind", "ownership", "fee_kind", "method")
    month = models.DateField()
    sector = models.CharField(max_length=16)
    kind = models.CharField(max_length=32)
    ownership = models.CharField(max_length=16)
    fee_kind = models.CharField(max_length=32)
    method = models.CharField(max_length=16)
    payments = models.BigIntegerField(default=0)
    value = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("thống kê tháng toàn quốc")
        verbose_name_plural = _("thống kê tháng toàn quốc")


class NationStatFiling(models.Model):
    """The sector, kind and ownership under which an institution's payments are filed in the nation tables:
    its own at its first payment (or at the last rebuild). If staff later change the institution, its figures
    stay filed under these until the next rebuild, and national answers move them to the new ones."""

    institution = models.OneToOneField("registry.Institution", on_delete=models.DO_NOTHING, primary_key=True,
                                       related_name="+", db_constraint=False)
    sector = models.CharField(max_length=16)
    kind = models.CharField(max_length=32)
    ownership = models.CharField(max_length=16)

    class Meta:
        verbose_name = _("phân nhóm thống kê toàn quốc")
        verbose_name_plural = _("phân nhóm thống kê toàn quốc")


class Indicator(models.TextChoices):
    INSTITUTIONS_DIGITAL = "institutions_digital", _("Đơn vị sử dụng nền tảng số")
    INSTITUTIONS_CASHLESS = "institutions_cashless", _("Đơn vị chấp nhận thanh toán không dùng tiền mặt")
    SHARE_COUNT = "share_count", _("Tỷ lệ giao dịch không dùng tiền mặt theo số lượng")
    SHARE_VALUE = "share_value", _("Tỷ lệ giao dịch không dùng tiền mặt theo giá trị")
    CITIZENS_EHR = "citizens_ehr", _("Người dân có hồ sơ sức khỏe điện tử")
    CITIZENS_EID = "citizens_eid", _("Người dân sử dụng định danh điện tử")


#: Indicators thuphi measures; the others are shown with their target and "not measured".
MEASURED_INDICATORS = (Indicator.INSTITUTIONS_DIGITAL, Indicator.INSTITUTIONS_CASHLESS,
                       Indicator.SHARE_COUNT, Indicator.SHARE_VALUE)


class Comparison(models.TextChoices):
    GTE = "gte", "≥"
    GT = "gt", ">"


class Plan(models.Model):
    """A plan with targets: nationwide (no province), of a province, or of a province before 1 July 2025."""

    code = models.SlugField(_("mã"), max_length=64, unique=True)
    name = models.CharField(_("tên kế hoạch"), max_length=255)
    issuing_body = models.CharField(_("cơ quan ban hành"), max_length=255)
    document = models.CharField(_("số hiệu văn bản"), max_length=100, blank=True)
    issued_on = models.DateField(_("ngày ban hành"), null=True, blank=True)
    province = models.ForeignKey("registry.Province", on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="+", verbose_name=_("tỉnh/thành phố"))
    legacy_province = models.ForeignKey("registry.LegacyProvince", on_delete=models.PROTECT, null=True,
                                        blank=True, related_name="+", verbose_name=_("tỉnh cũ"))
    deadline = models.DateField(_("thời hạn"))
    note = models.TextField(_("ghi chú"), blank=True)
    is_active = models.BooleanField(_("đang theo dõi"), default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["deadline", "code"]
        verbose_name = _("kế hoạch, chỉ tiêu")
        verbose_name_plural = _("kế hoạch, chỉ tiêu")
        constraints = [models.CheckConstraint(
            name="plan_one_area",
            condition=models.Q(province__isnull=True) | models.Q(legacy_province__isnull=True))]

    def __str__(self) -> str:
        return self.name


class PlanTarget(models.Model):
    """One target of a plan: an indicator, for a part of the institutions, compared with a percentage."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="targets")
    indicator = models.CharField(_("chỉ số"), max_length=32, choices=Indicator.choices)
    sector = models.CharField(_("lĩnh vực"), max_length=16, blank=True, help_text=_("Trống: mọi lĩnh vực"))
    institution_kinds = models.JSONField(_("loại hình đơn vị"), default=list, blank=True,
                                         help_text=_("Trống: mọi loại hình"))
    ownership = models.CharField(_("loại hình sở hữu"), max_length=16, blank=True)
    fee_kinds = models.JSONField(_("loại khoản thu"), default=list, blank=True, help_text=_("Trống: mọi khoản"))
    comparison = models.CharField(max_length=3, choices=Comparison.choices, default=Comparison.GTE)
    value = models.DecimalField(_("chỉ tiêu (%)"), max_digits=5, decimal_places=2)
    label = models.CharField(_("diễn giải"), max_length=255, blank=True)

    class Meta:
        ordering = ["plan", "id"]
        verbose_name = _("chỉ tiêu")
        verbose_name_plural = _("chỉ tiêu")
        constraints = [models.CheckConstraint(name="plan_target_percent",
                                              condition=models.Q(value__gte=0, value__lte=100))]

    def __str__(self) -> str:
        return f"{self.get_indicator_display()} {self.get_comparison_display()} {self.value}%"


class ReportStatus(models.TextChoices):
    SUBMITTED = "submitted", _("Chờ duyệt")
    APPROVED = "approved", _("Đã duyệt")
    RETURNED = "returned", _("Trả lại")


#: DHIS2-style approval: a report is submitted, then approved or returned (with a reason). A returned
#: report is corrected by submitting a new one; an approved one is final.
REPORT_TRANSITIONS = {
    ReportStatus.SUBMITTED: frozenset({ReportStatus.APPROVED, ReportStatus.RETURNED}),
    ReportStatus.APPROVED: frozenset(),
    ReportStatus.RETURNED: frozenset(),
}


class ReportSource(models.TextChoices):
    FORM = "form", _("Biểu mẫu")
    UPLOAD = "upload", _("Tải tệp XLSX/CSV")
    API = "api", _("API")


class AggregateReport(models.Model):
    """The figures of one institution that does not collect through thuphi, for one period."""

    institution = models.ForeignKey("registry.Institution", on_delete=models.PROTECT,
                                    related_name="aggregate_reports", verbose_name=_("đơn vị"))
    period_start = models.DateField(_("từ ngày"))
    period_end = models.DateField(_("đến ngày"))
    payments = models.BigIntegerField(_("số giao dịch"))
    payments_cashless = models.BigIntegerField(_("số giao dịch không dùng tiền mặt"))
    value = models.BigIntegerField(_("giá trị giao dịch (đồng)"))
    value_cashless = models.BigIntegerField(_("giá trị không dùng tiền mặt (đồng)"))
    cashless_methods = models.JSONField(_("hình thức không dùng tiền mặt"), default=list, blank=True)
    digital_platforms = models.JSONField(_("nền tảng số đang sử dụng"), default=list, blank=True)
    status = models.CharField(_("trạng thái"), max_length=16, choices=ReportStatus.choices,
                              default=ReportStatus.SUBMITTED)
    source = models.CharField(max_length=16, choices=ReportSource.choices, default=ReportSource.FORM)
    note = models.CharField(_("ghi chú"), max_length=500, blank=True)
    return_reason = models.CharField(_("lý do trả lại"), max_length=500, blank=True)
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="+")
    submitted_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-submitted_at", "-id"]
        verbose_name = _("báo cáo tổng hợp")
        verbose_name_plural = _("báo cáo tổng hợp")
        constraints = [
            models.CheckConstraint(
                name="aggregate_report_figures",
                condition=models.Q(payments_cashless__gte=0, payments__gte=models.F("payments_cashless"),
                                   value_cashless__gte=0, value__gte=models.F("value_cashless"),
                                   period_end__gte=models.F("period_start"))),
        ]
        indexes = [models.Index(fields=["institution", "status", "period_start"]),
                   models.Index(fields=["status", "period_end"])]

    def __str__(self) -> str:
        return f"{self.institution_id} {self.period_start}–{self.period_end}"
