from __future__ import annotations

import datetime as dt

from django.db import models
from django.utils.translation import gettext_lazy as _

from thuphi.core.masking import mask_number

#: The day the two-level administration (34 provinces, 3,321 communes) took effect.
REFORM_DATE = dt.date(2025, 7, 1)


class Province(models.Model):
    """A province in force since 1 July 2025 (34), keyed by its official 2-digit code."""

    code = models.CharField(max_length=2, primary_key=True)
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["code"]
        verbose_name = _("tỉnh/thành phố")
        verbose_name_plural = _("tỉnh/thành phố")

    def __str__(self) -> str:
        return self.name


class LegacyProvince(models.Model):
    """One of the 63 provinces before 1 July 2025. Codes were reused (old 24 Bắc Giang, new 24
    Bắc Ninh), so these live apart from Province and map onto it through `successor`."""

    code = models.CharField(max_length=2, primary_key=True)
    name = models.CharField(max_length=100)
    valid_to = models.DateField(default=dt.date(2025, 6, 30))
    successor = models.ForeignKey(Province, on_delete=models.PROTECT, related_name="predecessors")

    class Meta:
        ordering = ["code"]
        verbose_name = _("tỉnh cũ (trước 01/07/2025)")
        verbose_name_plural = _("tỉnh cũ (trước 01/07/2025)")

    def __str__(self) -> str:
        return self.name


class Commune(models.Model):
    """A commune, ward or special zone in force since 1 July 2025 (3,321)."""

    code = models.CharField(max_length=5, primary_key=True)
    name = models.CharField(max_length=100)
    province = models.ForeignKey(Province, on_delete=models.PROTECT, related_name="communes")

    class Meta:
        ordering = ["code"]
        verbose_name = _("xã/phường")
        verbose_name_plural = _("xã/phường")

    def __str__(self) -> str:
        return self.name


class Sector(models.TextChoices):
    EDUCATION = "education", _("Giáo dục")
    HEALTH = "health", _("Y tế")


class InstitutionKind(models.TextChoices):
    KINDERGARTEN = "kindergarten", _("Mầm non")
    PRIMARY = "primary", _("Tiểu học")
    LOWER_SECONDARY = "lower_secondary", _("Trung học cơ sở")
    UPPER_SECONDARY = "upper_secondary", _("Trung học phổ thông")
    MULTI_LEVEL = "multi_level", _("Nhiều cấp học")
    CONTINUING_EDUCATION = "continuing_education", _("Giáo dục thường xuyên")
    VOCATIONAL = "vocational", _("Giáo dục nghề nghiệp")
    COLLEGE = "college", _("Cao đẳng")
    UNIVERSITY = "university", _("Đại học")
    COMMUNE_HEALTH_STATION = "commune_health_station", _("Trạm y tế xã")
    REGIONAL_MEDICAL_CENTRE = "regional_medical_centre", _("Trung tâm y tế khu vực")
    PROVINCIAL_HOSPITAL = "provincial_hospital", _("Bệnh viện tuyến tỉnh")
    CENTRAL_HOSPITAL = "central_hospital", _("Bệnh viện trung ương")
    PRIVATE_HOSPITAL = "private_hospital", _("Bệnh viện, phòng khám tư nhân")


KINDS_BY_SECTOR = {
    Sector.EDUCATION: {
        InstitutionKind.KINDERGARTEN, InstitutionKind.PRIMARY, InstitutionKind.LOWER_SECONDARY,
        InstitutionKind.UPPER_SECONDARY, InstitutionKind.MULTI_LEVEL, InstitutionKind.CONTINUING_EDUCATION,
        InstitutionKind.VOCATIONAL, InstitutionKind.COLLEGE, InstitutionKind.UNIVERSITY,
    },
    Sector.HEALTH: {
        InstitutionKind.COMMUNE_HEALTH_STATION, InstitutionKind.REGIONAL_MEDICAL_CENTRE,
        InstitutionKind.PROVINCIAL_HOSPITAL, InstitutionKind.CENTRAL_HOSPITAL, InstitutionKind.PRIVATE_HOSPITAL,
    },
}


class Ownership(models.TextChoices):
    PUBLIC = "public", _("Công lập")
    PRIVATE = "private", _("Ngoài công lập")


class PaymentMethod(models.TextChoices):
    CASH = "cash", _("Tiền mặt")
    TRANSFER = "transfer", _("Chuyển khoản / VietQR")
    CARD = "card", _("Thẻ (POS)")
    EWALLET = "ewallet", _("Ví điện tử")


CASHLESS_METHODS = {PaymentMethod.TRANSFER, PaymentMethod.CARD, PaymentMethod.EWALLET}


class PlatformKind(models.TextChoices):
    HOSPITAL_MANAGEMENT = "hospital_management", _("Quản lý bệnh viện")
    TELEMEDICINE = "telemedicine", _("Khám chữa bệnh từ xa")
    E_PRESCRIPTION = "e_prescription", _("Đơn thuốc điện tử")
    PERSONAL_HEALTH_RECORD = "personal_health_record", _("Hồ sơ sức khỏe điện tử")
    VACCINATION = "vaccination", _("Quản lý tiêm chủng")
    HEALTH_ADVICE = "health_advice", _("Tư vấn sức khỏe trực tuyến")
    SCHOOL_MANAGEMENT = "school_management", _("Quản trị nhà trường")
    ONLINE_LEARNING = "online_learning", _("Dạy, học, thi trực tuyến")
    LEARNING_RESOURCES = "learning_resources", _("Học liệu số")
    SCHOOL_PARENT = "school_parent", _("Kết nối nhà trường – phụ huynh")


class Institution(models.Model):
    code = models.CharField(_("mã đơn vị"), max_length=32, unique=True)
    name = models.CharField(_("tên đơn vị"), max_length=255)
    sector = models.CharField(_("lĩnh vực"), max_length=16, choices=Sector.choices)
    kind = models.CharField(_("loại hình"), max_length=32, choices=InstitutionKind.choices)
    ownership = models.CharField(_("loại hình sở hữu"), max_length=16, choices=Ownership.choices)
    commune = models.ForeignKey(Commune, on_delete=models.PROTECT, related_name="institutions",
                                verbose_name=_("xã/phường"))
    # Where the institution stood before 1 July 2025: old data is shown under this province.
    legacy_province = models.ForeignKey(LegacyProvince, on_delete=models.PROTECT, null=True, blank=True,
                                        related_name="institutions", verbose_name=_("tỉnh cũ"))
    tax_code = models.CharField(_("mã số thuế"), max_length=14, blank=True)
    address = models.CharField(_("địa chỉ"), max_length=255, blank=True)
    focal_point_name = models.CharField(_("đầu mối: họ tên"), max_length=100, blank=True)
    focal_point_phone = models.CharField(_("đầu mối: điện thoại"), max_length=15, blank=True)
    accepted_methods = models.JSONField(_("hình thức thanh toán chấp nhận"), default=list, blank=True)
    is_active = models.BooleanField(_("đang hoạt động"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("đơn vị")
        verbose_name_plural = _("đơn vị")
        indexes = [models.Index(fields=["commune", "sector"])]

    def __str__(self) -> str:
        return f"{self.code} – {self.name}"

    @property
    def province_id(self) -> str:
        return self.commune.province_id


class BankAccount(models.Model):
    """An account an institution receives money on. Exactly one per institution is the default."""

    institution = models.ForeignKey(Institution, on_delete=models.CASCADE, related_name="bank_accounts")
    bank_bin = models.CharField(_("mã BIN ngân hàng"), max_length=6)
    account_number = models.CharField(_("số tài khoản"), max_length=19)
    account_name = models.CharField(_("tên chủ tài khoản"), max_length=100)
    is_default = models.BooleanField(_("mặc định"), default=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("tài khoản nhận tiền")
        verbose_name_plural = _("tài khoản nhận tiền")
        constraints = [
            # An account number belongs to one institution only: this is what the public
            # "is this account really the school's?" check relies on.
            models.UniqueConstraint(fields=["bank_bin", "account_number"], name="bank_account_unique"),
            models.UniqueConstraint(fields=["institution"], condition=models.Q(is_default=True),
                                    name="bank_account_one_default"),
        ]

    def __str__(self) -> str:
        return f"{self.bank_bin} {self.account_number}"


class DigitalPlatform(models.Model):
    institution = models.ForeignKey(Institution, on_delete=models.CASCADE, related_name="platforms")
    kind = models.CharField(_("loại nền tảng"), max_length=32, choices=PlatformKind.choices)
    provider = models.CharField(_("nhà cung cấp"), max_length=100, blank=True)
    in_use_since = models.DateField(null=True, blank=True)

    class Meta:
        verbose_name = _("nền tảng số")
        verbose_name_plural = _("nền tảng số")
        constraints = [models.UniqueConstraint(fields=["institution", "kind"], name="platform_unique_kind")]


class PayerKind(models.TextChoices):
    STUDENT = "student", _("Học sinh, sinh viên")
    PATIENT = "patient", _("Người bệnh")


class PayerCategory(models.Model):
    """A group with a discount or exemption (hộ nghèo, con thương binh, ...), per institution."""

    institution = models.ForeignKey(Institution, on_delete=models.CASCADE, related_name="payer_categories")
    code = models.CharField(max_length=32)
    name = models.CharField(max_length=100)

    class Meta:
        verbose_name = _("đối tượng miễn giảm")
        verbose_name_plural = _("đối tượng miễn giảm")
        constraints = [models.UniqueConstraint(fields=["institution", "code"], name="payer_category_unique")]

    def __str__(self) -> str:
        return self.name


class Payer(models.Model):
    """A student or patient of one institution. Phone and card numbers are masked wherever listed."""

    institution = models.ForeignKey(Institution, on_delete=models.CASCADE, related_name="payers")
    kind = models.CharField(max_length=16, choices=PayerKind.choices)
    code = models.CharField(_("mã"), max_length=32)
    name = models.CharField(_("họ tên"), max_length=100)
    phone = models.CharField(_("điện thoại"), max_length=15, blank=True)
    email = models.EmailField(_("thư điện tử"), blank=True, help_text=_("Nhận xác nhận thanh toán và nhắc hạn"))
    category = models.ForeignKey(PayerCategory, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="payers")
    # Students
    class_name = models.CharField(_("lớp"), max_length=32, blank=True)
    grade = models.CharField(_("khối"), max_length=16, blank=True)
    guardian_name = models.CharField(_("phụ huynh"), max_length=100, blank=True)
    guardian_phone = models.CharField(_("điện thoại phụ huynh"), max_length=15, blank=True)
    # Patients
    date_of_birth = models.DateField(_("ngày sinh"), null=True, blank=True)
    insurance_number = models.CharField(_("số thẻ BHYT"), max_length=15, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("người nộp")
        verbose_name_plural = _("người nộp")
        constraints = [models.UniqueConstraint(fields=["institution", "code"], name="payer_unique_code")]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def contact_phone(self) -> str:
        return self.guardian_phone or self.phone

    @property
    def masked_phone(self) -> str:
        return mask_number(self.contact_phone)

    @property
    def masked_insurance(self) -> str:
        return mask_number(self.insurance_number, keep=4)
