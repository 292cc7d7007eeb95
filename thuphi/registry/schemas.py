from __future__ import annotations

from ninja import Schema
from pydantic import Field


class ConnectionIn(Schema):
    provider: str = Field(..., description="sepay | casso | payos | generic")
    secret: str = Field(..., min_length=16, description="API key or checksum key issued by the provider (write-only)")


class BankAccountIn(Schema):
    bank_bin: str = Field(..., examples=["970436"], description="NAPAS BIN of the bank (6 digits)")
    account_number: str = Field(..., examples=["1023456789"])
    account_name: str = Field(..., examples=["TRUONG THCS KINH BAC"])
    is_default: bool = False
    connections: list[ConnectionIn] = Field(default_factory=list, description="write-only; never returned")


class BankAccountOut(Schema):
    bank_bin: str
    bank_name: str
    account_number: str
    account_name: str
    is_default: bool
    connected_providers: list[str] = Field(default_factory=list)


class InstitutionIn(Schema):
    code: str = Field(..., max_length=32, examples=["BN-THCS-KB"])
    name: str = Field(..., max_length=255, examples=["Trường THCS Kinh Bắc"])
    sector: str = Field(..., description="education | health")
    kind: str = Field(..., description="kindergarten, primary, lower_secondary, upper_secondary, multi_level, "
                                        "continuing_education, vocational, college, university, "
                                        "commune_health_station, regional_medical_centre, provincial_hospital, "
                                        "central_hospital, private_hospital")
    ownership: str = Field(..., description="public | private")
    commune_code: str = Field(..., description="5-digit commune code in force since 1 July 2025")
    tax_code: str = ""
    address: str = ""
    focal_point_name: str = ""
    focal_point_phone: str = ""
    accepted_methods: list[str] | None = Field(None, description="cash, transfer, card, ewallet")
    legacy_province_code: str | None = Field(None, description="province code before 1 July 2025, if ambiguous")
    bank_accounts: list[BankAccountIn]


class InstitutionOut(Schema):
    code: str
    name: str
    sector: str
    kind: str
    ownership: str
    commune_code: str
    commune_name: str
    province_code: str
    province_name: str
    legacy_province_code: str | None
    tax_code: str
    address: str
    focal_point_name: str
    accepted_methods: list[str]
    bank_accounts: list[BankAccountOut]
