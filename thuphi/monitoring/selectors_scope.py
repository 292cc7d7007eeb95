"""The scope of a monitoring query: who asks, area, sector, kind, period; validated and authorized."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from thuphi.core.errors import ValidationFailed
from thuphi.monitoring.areas import Area, area_authorize, area_parse
from thuphi.registry.models import Institution, InstitutionKind, Sector
from thuphi.registry.selectors import institution_get, institutions_visible_to

# --- scope -----------------------------------------------------------------------------------------


@dataclass
class Scope:
    user: object
    area: Area
    sector: str | None
    kind: str | None
    start: dt.date
    end: dt.date  # effective: an old province stops on its last day
    requested_end: dt.date
    institution: Institution | None = None

    @property
    def is_empty_period(self) -> bool:
        return self.end < self.start

    def query(self, **changes) -> dict:
        """The query-string parameters of this scope (for links and exports)."""
        params = {"area": self.area.code, "sector": self.sector or "all", "kind": self.kind or "",
                  "from": self.start.isoformat(), "to": self.requested_end.isoformat(),
                  "institution": self.institution.code if self.institution else ""}
        params.update(changes)
        return {k: v for k, v in params.items() if v}


def parse_date(value, label: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValidationFailed(_("%(label)s phải có dạng YYYY-MM-DD.") % {"label": label},
                               code="invalid_date") from None


def scope_build(*, user, area: str | None = None, sector: str | None = None, kind: str | None = None,
                start=None, end=None, institution: str | None = None, today: dt.date | None = None) -> Scope:
    """Validate and authorize a query. Defaults: this calendar year up to today."""
    from django.utils import timezone

    today = today or timezone.localdate()
    sector = (sector or "all").strip().lower()
    if sector not in ("all", *Sector.values):
        raise ValidationFailed(_("Lĩnh vực phải là education, health hoặc all."), code="invalid_sector")
    kind = (kind or "").strip() or None
    if kind and kind not in InstitutionKind.values:
        raise ValidationFailed(_("Loại hình “%(k)s” không hợp lệ.") % {"k": kind[:40]}, code="invalid_kind")
    start_d = parse_date(start, _("Từ ngày")) or today.replace(month=1, day=1)
    end_d = parse_date(end, _("Đến ngày")) or today
    if end_d < start_d:
        raise ValidationFailed(_("“Đến ngày” phải sau hoặc bằng “Từ ngày”."), code="invalid_period")
    parsed = area_parse(area)
    area_authorize(user=user, area=parsed)
    inst = None
    if institution:
        inst = institution_get(user=user, code=institution)
        if not Institution.objects.filter(parsed.institution_q(), pk=inst.pk).exists():
            raise ValidationFailed(_("Đơn vị không thuộc địa bàn đã chọn."), code="institution_outside_area")
    effective_end = min(end_d, parsed.valid_to) if parsed.valid_to else end_d
    return Scope(user=user, area=parsed, sector=None if sector == "all" else sector, kind=kind, start=start_d,
                 end=effective_end, requested_end=end_d, institution=inst)


def institutions_in(scope: Scope) -> QuerySet[Institution]:
    qs = institutions_visible_to(user=scope.user).filter(scope.area.institution_q())
    if scope.sector:
        qs = qs.filter(sector=scope.sector)
    if scope.kind:
        qs = qs.filter(kind=scope.kind)
    if scope.institution is not None:
        qs = qs.filter(pk=scope.institution.pk)
    return qs


def nation_mode(scope: "Scope") -> bool:
    """The whole country for someone who sees it all: national figures come from the nation tables."""
    return scope.area.kind == "nation" and scope.institution is None and scope.user.is_system_admin


def _attrs_q(scope: "Scope") -> Q:
    q = Q()
    if scope.sector:
        q &= Q(sector=scope.sector)
    if scope.kind:
        q &= Q(kind=scope.kind)
    return q
