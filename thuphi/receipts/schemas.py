from __future__ import annotations

import datetime as dt

from ninja import Schema
from pydantic import Field


class ReceiptOut(Schema):
    id: int
    receipt_name: str
    form_symbol: str = Field(..., description="ký hiệu mẫu biên lai, e.g. 01BLP0-001")
    serial: str = Field(..., description="ký hiệu biên lai, e.g. AA-26E (2-digit year, E = electronic)")
    year: int
    number: str = Field(..., description="7 digits, zero-padded; restarts at 0000001 every year")
    issued_at: dt.datetime
    issue_date: dt.date
    institution: str = Field(..., description="institution code")
    institution_name: str
    institution_tax_code: str
    institution_address: str
    payer_code: str
    payer_name: str
    bill_reference: str
    fee_names: list[str]
    amount: int = Field(..., description="integer VND")
    amount_in_words: str
    method: str
    method_label: str
    bank_reference: str
    credit_id: int
    status: str = Field(..., description="issued | cancelled")
    cancel_reason: str
    cancelled_at: dt.datetime | None
    cancelled_by: str
    signed_by: str
    signature_algorithm: str
    signature: str
    signature_valid: bool = Field(..., description="the stored facts still match the signature")
    verification_code: str
    verify_url: str
    pdf_url: str
    xml_url: str


class ReceiptCancelIn(Schema):
    reason: str = Field(..., min_length=1, max_length=255)
