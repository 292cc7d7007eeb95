from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from thuphi.core.errors import Forbidden, NotFound
from thuphi.core.models import INSTITUTION_ROLES, Role, User
from thuphi.registry.models import BankAccount, Institution, Payer


def institutions_visible_to(*, user: User) -> QuerySet[Institution]:
    """Every read of institution data starts here: the one place that turns a role into a scope."""
    qs = Institution.objects.select_related("commune__province")
    if not user.is_active:
        return qs.none()
    if user.is_system_admin:
        return qs
    if user.role == Role.PROVINCIAL_MONITOR and user.province_id:
        return qs.filter(commune__province_id=user.province_id)
    if user.role in INSTITUTION_ROLES and user.institution_id:
        return qs.filter(pk=user.institution_id)
    return qs.none()


def institution_get(*, user: User, code: str) -> Institution:
    institution = institutions_visible_to(user=user).filter(code=code).first()
    if institution is None:
        # The same answer whether it does not exist or is out of scope: codes are not secrets,
        # but the API should not confirm which ones exist elsewhere.
        raise NotFound(_("Không tìm thấy đơn vị “%(code)s”.") % {"code": code}, code="institution_not_found")
    return institution


def institution_for_write(*, user: User, code: str) -> Institution:
    institution = institution_get(user=user, code=code)
    if not user.can_write:
        raise Forbidden(_("Tài khoản chỉ có quyền xem."), code="read_only")
    return institution


def default_bank_account(*, institution: Institution) -> BankAccount | None:
    return institution.bank_accounts.filter(is_default=True, is_active=True).first()


def payer_find(*, institution: Institution, code: str) -> Payer | None:
    return Payer.objects.filter(institution=institution, code=code).first()
