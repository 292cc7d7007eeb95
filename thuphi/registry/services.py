from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from thuphi.core.errors import Conflict, Forbidden, ValidationFailed
from thuphi.core.models import User
from thuphi.registry import admin_units, banks
from thuphi.registry.models import (
    KINDS_BY_SECTOR,
    BankAccount,
    Commune,
    Institution,
    InstitutionKind,
    LegacyProvince,
    Ownership,
    Payer,
    PayerKind,
    PaymentMethod,
    Province,
    Sector,
)

_ACCOUNT_RE = re.compile(r"^[0-9A-Za-z]{1,19}$")
_TAX_CODE_RE = re.compile(r"^\d{10}(-\d{3})?$|^\d{12}$")
PHONE_RE = re.compile(r"^0\d{9,10}$")  # public: bulk import validates with the same rules
CODE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


@transaction.atomic
def admin_units_sync() -> dict[str, int]:
    """Load the 34 provinces, 3,321 communes and 63 legacy provinces. Safe to run again."""
    provinces = admin_units.current_provinces()
    for p in provinces:
        Province.objects.update_or_create(code=p["code"], defaults={"name": p["name"]})
    existing = set(Commune.objects.values_list("code", flat=True))
    communes = admin_units.current_communes()
    Commune.objects.bulk_create(
        [Commune(code=c["code"], name=c["name"], province_id=c["province_code"])
         for c in communes if c["code"] not in existing],
        batch_size=1000,
    )
    legacy = admin_units.legacy_provinces()
    for lp in legacy:
        LegacyProvince.objects.update_or_create(
            code=lp["code"],
            defaults={"name": lp["name"], "valid_to": lp["valid_to"], "successor_id": lp["successor_code"]},
        )
    return {"provinces": len(provinces), "communes": len(communes), "legacy_provinces": len(legacy)}


@dataclass
class BankAccountInput:
    bank_bin: str
    account_number: str
    account_name: str
    is_default: bool = False
    # Write-only provider credentials: [{"provider": "sepay", "secret": "..."}]
    connections: list[dict] | None = None


def _check_phone(value: str, label: str) -> str:
    value = re.sub(r"[\s.-]", "", value or "")
    if value and not PHONE_RE.match(value):
        raise ValidationFailed(_("%(label)s không hợp lệ: cần 10–11 chữ số, bắt đầu bằng 0.") % {"label": label},
                               code="invalid_phone")
    return value


def _validate_bank_accounts(accounts: list[BankAccountInput]) -> None:
    if not accounts:
        raise ValidationFailed(_("Cần ít nhất một tài khoản nhận tiền."), code="bank_account_required")
    seen = set()
    for i, acc in enumerate(accounts):
        if banks.bank_by_bin(acc.bank_bin) is None:
            raise ValidationFailed(
                _("Tài khoản thứ %(n)d: mã BIN “%(bin)s” không có trong danh sách ngân hàng NAPAS.")
                % {"n": i + 1, "bin": acc.bank_bin}, code="unknown_bank_bin")
        if not _ACCOUNT_RE.match(acc.account_number or ""):
            raise ValidationFailed(
                _("Tài khoản thứ %(n)d: số tài khoản chỉ gồm chữ và số, tối đa 19 ký tự.") % {"n": i + 1},
                code="invalid_account_number")
        if not (acc.account_name or "").strip():
            raise ValidationFailed(_("Tài khoản thứ %(n)d: thiếu tên chủ tài khoản.") % {"n": i + 1},
                                   code="account_name_required")
        if (acc.bank_bin, acc.account_number) in seen:
            raise ValidationFailed(_("Tài khoản thứ %(n)d bị trùng.") % {"n": i + 1}, code="duplicate_bank_account")
        seen.add((acc.bank_bin, acc.account_number))
    if sum(1 for a in accounts if a.is_default) > 1:
        raise ValidationFailed(_("Chỉ một tài khoản được đặt làm mặc định."), code="multiple_default_accounts")


def institution_create(
    *,
    actor: User | None,
    code: str,
    name: str,
    sector: str,
    kind: str,
    ownership: str,
    commune_code: str,
    tax_code: str = "",
    address: str = "",
    focal_point_name: str = "",
    focal_point_phone: str = "",
    accepted_methods: Iterable[str] | None = None,
    legacy_province_code: str | None = None,
    bank_accounts: list[BankAccountInput],
) -> Institution:
    """Register an institution with its receiving accounts, all or nothing."""
    if actor is not None and not actor.is_system_admin:
        raise Forbidden(_("Chỉ quản trị hệ thống được đăng ký đơn vị mới."), code="forbidden")
    code = (code or "").strip()
    if not CODE_RE.match(code):
        raise ValidationFailed(_("Mã đơn vị chỉ gồm chữ, số, “_”, “.”, “-”, tối đa 32 ký tự."), code="invalid_code")
    if not (name or "").strip():
        raise ValidationFailed(_("Thiếu tên đơn vị."), code="name_required")
    if sector not in Sector.values:
        raise ValidationFailed(_("Lĩnh vực phải là education hoặc health."), code="invalid_sector")
    if kind not in InstitutionKind.values:
        raise ValidationFailed(_("Loại hình “%(k)s” không hợp lệ.") % {"k": kind}, code="invalid_kind")
    if kind not in KINDS_BY_SECTOR[Sector(sector)]:
        raise ValidationFailed(_("Loại hình “%(k)s” không thuộc lĩnh vực “%(s)s”.") % {"k": kind, "s": sector},
                               code="kind_sector_mismatch")
    if ownership not in Ownership.values:
        raise ValidationFailed(_("Loại hình sở hữu phải là public hoặc private."), code="invalid_ownership")
    commune = Commune.objects.filter(code=commune_code).first()
    if commune is None:
        raise ValidationFailed(_("Mã xã/phường “%(c)s” không tồn tại (danh mục từ 01/07/2025).")
                               % {"c": commune_code}, code="unknown_commune")
    tax_code = (tax_code or "").strip()
    if tax_code and not _TAX_CODE_RE.match(tax_code):
        raise ValidationFailed(_("Mã số thuế phải gồm 10 hoặc 12 chữ số (hoặc 10 số và -3 số)."),
                               code="invalid_tax_code")
    methods = list(dict.fromkeys(accepted_methods or [PaymentMethod.TRANSFER, PaymentMethod.CASH]))
    unknown = [m for m in methods if m not in PaymentMethod.values]
    if unknown:
        raise ValidationFailed(_("Hình thức thanh toán không hợp lệ: %(m)s") % {"m": ", ".join(unknown)},
                               code="invalid_payment_method")
    legacy = None
    if legacy_province_code:
        legacy = LegacyProvince.objects.filter(code=legacy_province_code).first()
        if legacy is None or legacy.successor_id != commune.province_id:
            raise ValidationFailed(_("Tỉnh cũ không khớp với tỉnh hiện nay của xã/phường."),
                                   code="legacy_province_mismatch")
    elif commune.province.predecessors.count() == 1:
        legacy = commune.province.predecessors.first()
    _validate_bank_accounts(bank_accounts)
    if not any(a.is_default for a in bank_accounts):
        bank_accounts[0].is_default = True
    try:
        with transaction.atomic():
            institution = Institution.objects.create(
                code=code, name=name.strip(), sector=sector, kind=kind, ownership=ownership, commune=commune,
                legacy_province=legacy, tax_code=tax_code, address=address.strip(),
                focal_point_name=focal_point_name.strip(),
                focal_point_phone=_check_phone(focal_point_phone, _("Điện thoại đầu mối")),
                accepted_methods=methods,
            )
            for acc in bank_accounts:
                bank_account_add(institution=institution, data=acc)
    except IntegrityError as exc:
        if Institution.objects.filter(code=code).exists():
            raise Conflict(_("Mã đơn vị “%(c)s” đã tồn tại.") % {"c": code}, code="institution_exists") from exc
        raise Conflict(_("Số tài khoản đã được đăng ký cho một đơn vị khác."),
                       code="bank_account_taken") from exc
    return institution


def bank_account_add(*, institution: Institution, data: BankAccountInput) -> BankAccount:
    # Banks print holder names in upper case without diacritics on their side; we keep the
    # name as registered and compare loosely where it matters.
    account = BankAccount.objects.create(
        institution=institution, bank_bin=data.bank_bin, account_number=data.account_number,
        account_name=data.account_name.strip(), is_default=data.is_default,
    )
    if data.connections:
        from thuphi.payments.services import connection_set  # payments builds on registry, not the reverse

        for conn in data.connections:
            connection_set(bank_account=account, provider=conn.get("provider", ""), secret=conn.get("secret", ""))
    return account


def payer_upsert(
    *,
    institution: Institution,
    code: str,
    name: str,
    kind: str | None = None,
    phone: str = "",
    **fields: object,
) -> Payer:
    """Find a payer by (institution, code) or create one; fill in only what was given."""
    code = (code or "").strip()
    name = (name or "").strip()
    if not CODE_RE.match(code):
        raise ValidationFailed(_("Mã người nộp “%(c)s” không hợp lệ.") % {"c": code}, code="invalid_payer_code")
    if not name:
        raise ValidationFailed(_("Thiếu họ tên người nộp."), code="payer_name_required")
    phone = _check_phone(phone, _("Số điện thoại"))
    if kind is None:
        kind = PayerKind.PATIENT if institution.sector == Sector.HEALTH else PayerKind.STUDENT
    allowed = {"class_name", "grade", "guardian_name", "guardian_phone", "date_of_birth", "insurance_number",
               "category"}
    extra = {k: v for k, v in fields.items() if k in allowed and v not in (None, "")}
    if "guardian_phone" in extra:
        extra["guardian_phone"] = _check_phone(str(extra["guardian_phone"]), _("Số điện thoại phụ huynh"))
    payer, created = Payer.objects.get_or_create(
        institution=institution, code=code, defaults={"name": name, "kind": kind, "phone": phone, **extra}
    )
    if not created:
        changed = {"name": name, **({"phone": phone} if phone else {}), **extra}
        changed = {k: v for k, v in changed.items() if getattr(payer, k) != v}
        if changed:
            for k, v in changed.items():
                setattr(payer, k, v)
            payer.save(update_fields=list(changed))
    return payer
