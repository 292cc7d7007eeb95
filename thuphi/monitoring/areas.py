"""Areas a report is asked for: the nation, a province or commune in force since 1 July 2025, or a province
as it was before (`legacy:24` is old Bắc Giang, now part of Bắc Ninh, code 24).

Institutions belong to a current commune, hence to a current province, whatever the date of their data;
an institution that stood in an old province also carries `legacy_province`. An old province therefore
shows the data of its institutions dated up to its last day (30 June 2025).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Q
from django.utils.translation import gettext as _

from thuphi.core.errors import Forbidden, NotFound, ValidationFailed
from thuphi.core.models import INSTITUTION_ROLES, Role
from thuphi.registry.models import Commune, LegacyProvince, Province

NATION = "VN"
LEGACY_PREFIX = "legacy:"


@dataclass(frozen=True)
class Area:
    kind: str  # nation | province | commune | legacy
    code: str  # as written in the query: VN, 24, 07210, legacy:24
    name: str
    province_code: str | None = None  # the current province it lies in (None for the nation)
    legacy_code: str | None = None
    valid_to: dt.date | None = None  # last day of an old province
    parent_code: str | None = None

    def institution_q(self, prefix: str = "") -> Q:
        """Institutions in the area, as a filter on Institution (or on a relation to it with `prefix`)."""
        if self.kind == "nation":
            return Q()
        if self.kind == "province":
            return Q(**{f"{prefix}commune__province_id": self.province_code})
        if self.kind == "commune":
            return Q(**{f"{prefix}commune_id": self.code})
        return Q(**{f"{prefix}legacy_province_id": self.legacy_code})

    @property
    def label(self) -> str:
        if self.kind == "legacy":
            return _("%(name)s (trước 01/07/2025)") % {"name": self.name}
        return self.name


def area_parse(code: str | None) -> Area:
    """`VN`, a 2-digit province code, a 5-digit commune code or `legacy:NN`."""
    code = (code or NATION).strip()
    if code.upper() == NATION:
        return Area(kind="nation", code=NATION, name=_("Toàn quốc"))
    if code.lower().startswith(LEGACY_PREFIX):
        old = code[len(LEGACY_PREFIX):].strip()
        if not (old.isdigit() and len(old) == 2):
            raise ValidationFailed(_("Mã tỉnh cũ phải gồm 2 chữ số, ví dụ legacy:24."), code="invalid_area")
        lp = LegacyProvince.objects.filter(code=old).first()
        if lp is None:
            raise NotFound(_("Không có tỉnh cũ mã %(c)s.") % {"c": old}, code="area_not_found")
        return Area(kind="legacy", code=f"{LEGACY_PREFIX}{old}", name=lp.name, province_code=lp.successor_id,
                    legacy_code=old, valid_to=lp.valid_to, parent_code=lp.successor_id)
    if code.isdigit() and len(code) == 2:
        p = Province.objects.filter(code=code).first()
        if p is None:
            raise NotFound(_("Không có tỉnh/thành phố mã %(c)s.") % {"c": code}, code="area_not_found")
        return Area(kind="province", code=code, name=p.name, province_code=code, parent_code=NATION)
    if code.isdigit() and len(code) == 5:
        c = Commune.objects.filter(code=code).first()
        if c is None:
            raise NotFound(_("Không có xã/phường mã %(c)s.") % {"c": code}, code="area_not_found")
        return Area(kind="commune", code=code, name=c.name, province_code=c.province_id, parent_code=c.province_id)
    raise ValidationFailed(
        _("Địa bàn phải là VN, mã tỉnh 2 chữ số, mã xã 5 chữ số hoặc legacy:<mã tỉnh cũ>."), code="invalid_area")


def area_authorize(*, user, area: Area) -> None:
    """Provincial monitors read their province only; institution users an area holding their institution."""
    if not user.is_active:
        raise Forbidden(_("Tài khoản đã bị khóa."), code="forbidden")
    if user.is_system_admin:
        return
    if user.role == Role.PROVINCIAL_MONITOR and user.province_id:
        if area.province_code == user.province_id:
            return
        raise Forbidden(_("Chỉ xem được số liệu của tỉnh/thành phố mình."), code="area_forbidden")
    if user.role in INSTITUTION_ROLES and user.institution_id:
        inst = user.institution
        inside = (area.kind == "nation"
                  or (area.kind == "province" and inst.commune.province_id == area.province_code)
                  or (area.kind == "commune" and inst.commune_id == area.code)
                  or (area.kind == "legacy" and inst.legacy_province_id == area.legacy_code))
        if inside:
            return
        raise Forbidden(_("Chỉ xem được số liệu của đơn vị mình."), code="area_forbidden")
    raise Forbidden(_("Tài khoản không có quyền xem số liệu giám sát."), code="forbidden")


def default_area_code(user) -> str:
    if user.is_system_admin:
        return NATION
    if user.role == Role.PROVINCIAL_MONITOR and user.province_id:
        return user.province_id
    if user.institution_id:
        return user.institution.commune_id
    return NATION
