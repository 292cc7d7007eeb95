from __future__ import annotations

import datetime as dt

from ninja import Field, Schema


class TargetOut(Schema):
    plan: str
    plan_name: str
    issuing_body: str
    document: str
    deadline: dt.date
    area: str
    indicator: str
    indicator_label: str
    label: str
    sector: str | None
    institution_kinds: list[str]
    ownership: str | None
    fee_kinds: list[str]
    comparison: str = Field(description="gte (≥) or gt (>)")
    target: float
    actual: float | None = Field(description="Percentage with two decimals (half-up); null without data")
    numerator: int | None
    denominator: int | None
    status: str = Field(description="met | near (within 10 points) | behind | no_data | not_measured")


class CompletenessOut(Schema):
    expected: int = Field(description="Institutions in scope not collecting through thuphi in the period")
    received: int = Field(description="…of which sent a report (submitted or approved) for a period in range")
    approved: int
    percent: float | None


class SourceOut(Schema):
    payments: int
    payments_cashless: int
    value: int
    value_cashless: int


class AreaOut(Schema):
    code: str
    kind: str
    name: str
    province_code: str | None


class KpiOut(Schema):
    area: AreaOut
    sector: str
    kind: str | None
    institution: str | None
    period_from: dt.date = Field(alias="from")
    period_to: dt.date = Field(alias="to", description="Effective end: an old province stops on 30/06/2025")
    institutions: int
    institutions_reporting: int
    institutions_cashless: int
    institutions_digital: int
    payments: int
    payments_cashless: int
    value: int
    value_cashless: int
    share_count: float | None
    share_value: float | None
    share_institutions_cashless: float | None
    share_institutions_digital: float | None
    sources: dict[str, SourceOut]
    completeness: CompletenessOut
    narrative: str
    targets: list[TargetOut]

    model_config = {"populate_by_name": True}


class ReportIn(Schema):
    institution: str = Field(description="Institution code")
    period_start: dt.date
    period_end: dt.date
    payments: int = Field(strict=True)
    payments_cashless: int = Field(strict=True)
    value: int = Field(strict=True, description="Whole đồng")
    value_cashless: int = Field(strict=True)
    cashless_methods: list[str] = Field(default_factory=list, description="transfer, card, ewallet")
    digital_platforms: list[str] = Field(default_factory=list, description="registry PlatformKind values")
    note: str = ""


class ReportOut(Schema):
    id: int
    institution: str
    institution_name: str
    province_code: str
    period_start: dt.date
    period_end: dt.date
    payments: int
    payments_cashless: int
    value: int
    value_cashless: int
    share_count: float | None
    share_value: float | None
    cashless_methods: list[str]
    digital_platforms: list[str]
    status: str
    source: str
    note: str
    return_reason: str
    submitted_by: str | None
    submitted_at: dt.datetime
    decided_by: str | None
    decided_at: dt.datetime | None


class ReturnIn(Schema):
    reason: str


class PlanTargetIn(Schema):
    indicator: str
    value: float
    comparison: str = "gte"
    sector: str = ""
    institution_kinds: list[str] = Field(default_factory=list)
    ownership: str = ""
    fee_kinds: list[str] = Field(default_factory=list)
    label: str = ""


class PlanIn(Schema):
    code: str
    name: str
    issuing_body: str
    document: str = ""
    issued_on: dt.date | None = None
    area: str = Field("VN", description="VN, a province code, or legacy:<old province code>")
    deadline: dt.date
    note: str = ""
    targets: list[PlanTargetIn]


class PlanOut(Schema):
    code: str
    name: str
    issuing_body: str
    document: str
    issued_on: dt.date | None
    area: str
    deadline: dt.date
    note: str
    targets: list[dict]
