from __future__ import annotations

from ninja import Schema
from pydantic import Field


class PaymentIn(Schema):
    method: str = Field(..., description="cash | card | transfer | ewallet")
    amount: int = Field(..., gt=0, le=100_000_000_000, description="integer VND")
    external_ref: str = Field("", max_length=128, description="POS slip, bank or wallet transaction id")


class AllocationOut(Schema):
    reference: str
    amount: int


class PaymentOut(Schema):
    id: int
    method: str
    source: str
    amount: int
    status: str
    external_ref: str
    match_reason: str
    allocations: list[AllocationOut]
    bill_reference: str
    bill_status: str
    bill_amount_paid: int
