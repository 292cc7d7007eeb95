from __future__ import annotations

from ninja import Router, Status

from thuphi.registry import banks, selectors, services
from thuphi.registry.models import Institution
from thuphi.registry.schemas import InstitutionIn, InstitutionOut

router = Router(tags=["institutions"])


def institution_out(institution: Institution) -> dict:
    commune = institution.commune
    return {
        "code": institution.code,
        "name": institution.name,
        "sector": institution.sector,
        "kind": institution.kind,
        "ownership": institution.ownership,
        "commune_code": commune.code,
        "commune_name": commune.name,
        "province_code": commune.province_id,
        "province_name": commune.province.name,
        "legacy_province_code": institution.legacy_province_id,
        "tax_code": institution.tax_code,
        "address": institution.address,
        "focal_point_name": institution.focal_point_name,
        "accepted_methods": institution.accepted_methods,
        "bank_accounts": [
            {
                "bank_bin": a.bank_bin,
                "bank_name": (banks.bank_by_bin(a.bank_bin) or {}).get("short_name", ""),
                "account_number": a.account_number,
                "account_name": a.account_name,
                "is_default": a.is_default,
                "connected_providers": sorted(c.provider for c in a.connections.all()),
            }
            for a in institution.bank_accounts.filter(is_active=True).order_by("-is_default", "id")
        ],
    }


@router.post("", response={201: InstitutionOut}, summary="Register an institution with its bank accounts")
def create_institution(request, payload: InstitutionIn):
    data = payload.dict()
    accounts = [services.BankAccountInput(**a) for a in data.pop("bank_accounts")]
    institution = services.institution_create(actor=request.auth, bank_accounts=accounts, **data)
    return Status(201, institution_out(institution))


@router.get("/{code}", response=InstitutionOut, summary="An institution by code")
def get_institution(request, code: str):
    return institution_out(selectors.institution_get(user=request.auth, code=code))
