from __future__ import annotations

import datetime as dt

from ninja import Schema
from pydantic import Field


class PayerIn(Schema):
    code: str = Field(..., max_length=32, examples=["HS2025001"], description="student or patient code")
    name: str = Field(..., max_length=100, examples=["Nguyễn Thị Lan"])
    phone: str = Field("", description="payer's or guardian's mobile phone; its last 4 digits unlock the look-up")
    class_name: str = ""
    date_of_birth: dt.date | None = None
    insurance_number: str = ""


class ItemIn(Schema):
    name: str = Field(..., max_length=200, examples=["Tiền ăn bán trú tháng 11"])
    amount: int = Field(..., ge=0, le=100_000_000_000, description="integer VND")
    kind: str | None = Field(None, description="tuition, meals_boarding, services, student_insurance, "
                                                "hospital_fee, deposit, other")
    discount_percent: int | None = Field(None, ge=0, le=100)
    discount_amount: int | None = Field(None, ge=0)


class BillIn(Schema):
    institution: str = Field(..., description="institution code")
    payer: PayerIn
    items: list[ItemIn] = Field(..., min_length=1, max_length=50)
    due_date: dt.date
    title: str = ""


class BillLineOut(Schema):
    name: str
    kind: str
    amount: int
    discount: int


class BillOut(Schema):
    reference: str
    status: str
    institution: str
    payer_code: str
    payer_name: str
    title: str
    issue_date: dt.date
    due_date: dt.date
    amount_gross: int
    amount_discount: int
    amount_due: int
    amount_paid: int
    amount_outstanding: int
    vietqr: str = Field(..., description="EMVCo VietQR payload for the outstanding amount")
    vietqr_svg_url: str
    vietqr_png_url: str
    pay_url: str
    lines: list[BillLineOut]
    cancel_reason: str


class CancelIn(Schema):
    reason: str = Field(..., min_length=1, max_length=255)
