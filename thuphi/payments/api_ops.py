"""Staff operations over the API: shifts, the review queue, reversals, refunds, reports."""
from __future__ import annotations

import datetime as dt

from django.http import HttpResponse
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema, Status
from pydantic import Field

from thuphi.billing.selectors import bill_get
from thuphi.core.errors import NotFound, ValidationFailed
from thuphi.payments import refunds, reports, services, shifts
from thuphi.payments.models import Credit, CreditStatus, Refund
from thuphi.registry.selectors import institution_get, institutions_visible_to

router = Router(tags=["operations"])


class ShiftOpenIn(Schema):
    opening_float: int = Field(0, ge=0)


class ShiftCloseIn(Schema):
    counted_cash: int = Field(..., ge=0)
    note: str = ""


class ShiftOut(Schema):
    id: int
    status: str
    opened_at: dt.datetime
    opening_float: int
    closed_at: dt.datetime | None
    expected_cash: int | None
    counted_cash: int | None
    difference: int | None


def _shift_out(s) -> dict:
    return {k: getattr(s, k) for k in ("id", "status", "opened_at", "opening_float", "closed_at", "expected_cash",
                                       "counted_cash", "difference")}


@router.post("/shifts/open", response={201: ShiftOut}, summary="Open the caller's cashier shift")
def open_shift(request, payload: ShiftOpenIn):
    return Status(201, _shift_out(shifts.shift_open(actor=request.auth, opening_float=payload.opening_float)))


@router.post("/shifts/close", response=ShiftOut, summary="Close the caller's shift with the cash counted")
def close_shift(request, payload: ShiftCloseIn):
    return _shift_out(shifts.shift_close(actor=request.auth, counted_cash=payload.counted_cash, note=payload.note))


class SuggestionOut(Schema):
    reference: str
    payer_name: str
    amount_outstanding: int
    score: int
    reasons: list[str]


class CreditOut(Schema):
    id: int
    institution: str
    method: str
    source: str
    amount: int
    description: str
    payer_name: str
    bank_reference: str
    occurred_at: dt.datetime
    status: str
    match_reason: str
    suggestions: list[SuggestionOut] = []


def _credit_out(c: Credit, with_suggestions: bool = False) -> dict:
    out = {"id": c.pk, "institution": c.institution.code, "method": c.method, "source": c.source,
           "amount": c.amount, "description": c.description, "payer_name": c.payer_name,
           "bank_reference": c.bank_reference, "occurred_at": c.occurred_at, "status": c.status,
           "match_reason": c.match_reason, "suggestions": []}
    if with_suggestions:
        try:
            from thuphi.payments.review import suggestions_for
        except ImportError:
            return out
        out["suggestions"] = [
            {"reference": s.bill.reference, "payer_name": s.bill.payer.name,
             "amount_outstanding": s.bill.amount_outstanding, "score": s.score, "reasons": s.reasons}
            for s in suggestions_for(credit=c)]
    return out


def _credit_for(user, credit_id: int) -> Credit:
    credit = Credit.objects.select_related("institution").filter(
        pk=credit_id, institution__in=institutions_visible_to(user=user).values("pk")).first()
    if credit is None:
        raise NotFound(_("Không tìm thấy khoản tiền."), code="credit_not_found")
    return credit


class CreditFilter(Schema):
    institution: str | None = None
    status: str = CreditStatus.UNMATCHED
    limit: int = Field(50, ge=1, le=500)


@router.get("/credits", response=list[CreditOut], summary="Credits, by default the review queue of unmatched ones")
def list_credits(request, filters: Query[CreditFilter]):
    qs = Credit.objects.select_related("institution").filter(
        institution__in=institutions_visible_to(user=request.auth).values("pk"), status=filters.status)
    if filters.institution:
        qs = qs.filter(institution__code=filters.institution)
    rows = list(qs.order_by("-occurred_at")[: filters.limit])
    return [_credit_out(c, with_suggestions=filters.status == CreditStatus.UNMATCHED and len(rows) <= 50)
            for c in rows]


class SplitIn(Schema):
    reference: str
    amount: int = Field(..., gt=0)


class MatchIn(Schema):
    splits: list[SplitIn] = Field(..., min_length=1, max_length=20)
    note: str = ""


@router.post("/credits/{credit_id}/match", response=CreditOut, summary="Match an unmatched credit to bills (split)")
def match_credit(request, credit_id: int, payload: MatchIn):
    credit = _credit_for(request.auth, credit_id)
    splits = [(bill_get(user=request.auth, reference=s.reference), s.amount) for s in payload.splits]
    return _credit_out(services.credit_match_manual(actor=request.auth, credit=credit, splits=splits,
                                                    note=payload.note))


class ReasonIn(Schema):
    reason: str = Field(..., min_length=1, max_length=255)


@router.post("/credits/{credit_id}/reverse", response=CreditOut,
             summary="The bank reversed this credit (chargeback): undo it and reopen its bills")
def reverse_credit(request, credit_id: int, payload: ReasonIn):
    credit = _credit_for(request.auth, credit_id)
    return _credit_out(refunds.credit_reverse(actor=request.auth, credit=credit, reason=payload.reason))


class RefundIn(Schema):
    kind: str = Field(..., description="payer_credit | return_unmatched")
    amount: int = Field(..., gt=0)
    reason: str = Field(..., min_length=1, max_length=255)
    payee_name: str
    payee_bank_bin: str
    payee_account: str
    institution: str | None = Field(None, description="with payer_code, for payer_credit")
    payer_code: str | None = None
    credit_id: int | None = Field(None, description="for return_unmatched")


class RefundOut(Schema):
    id: int
    kind: str
    amount: int
    status: str
    reason: str
    payee_name: str
    payee_bank_bin: str
    payee_account: str
    requested_by: str
    decided_by: str | None


def _refund_out(r: Refund) -> dict:
    return {"id": r.pk, "kind": r.kind, "amount": r.amount, "status": r.status, "reason": r.reason,
            "payee_name": r.payee_name, "payee_bank_bin": r.payee_bank_bin, "payee_account": r.payee_account,
            "requested_by": r.requested_by.username, "decided_by": r.decided_by.username if r.decided_by else None}


@router.post("/refunds", response={201: RefundOut}, summary="Ask for a refund (maker)")
def request_refund(request, payload: RefundIn):
    payer = credit = None
    if payload.kind == "payer_credit":
        if not (payload.institution and payload.payer_code):
            raise ValidationFailed(_("Cần institution và payer_code."), code="payer_required")
        inst = institution_get(user=request.auth, code=payload.institution)
        payer = inst.payers.filter(code=payload.payer_code).first()
        if payer is None:
            raise NotFound(_("Không tìm thấy người nộp."), code="payer_not_found")
    elif payload.credit_id is not None:
        credit = _credit_for(request.auth, payload.credit_id)
    r = refunds.refund_request(actor=request.auth, kind=payload.kind, amount=payload.amount, reason=payload.reason,
                               payee_name=payload.payee_name, payee_bank_bin=payload.payee_bank_bin,
                               payee_account=payload.payee_account, payer=payer, credit=credit)
    return Status(201, _refund_out(r))


def _refund_for(user, refund_id: int) -> Refund:
    r = Refund.objects.select_related("requested_by", "decided_by").filter(
        pk=refund_id, institution__in=institutions_visible_to(user=user).values("pk")).first()
    if r is None:
        raise NotFound(_("Không tìm thấy yêu cầu hoàn tiền."), code="refund_not_found")
    return r


class DecisionIn(Schema):
    note: str = ""


@router.post("/refunds/{refund_id}/approve", response=RefundOut, summary="Approve a refund (checker ≠ maker)")
def approve_refund(request, refund_id: int, payload: DecisionIn):
    return _refund_out(refunds.refund_decide(actor=request.auth, refund=_refund_for(request.auth, refund_id),
                                             approve=True, note=payload.note))


@router.post("/refunds/{refund_id}/reject", response=RefundOut, summary="Reject a refund")
def reject_refund(request, refund_id: int, payload: DecisionIn):
    return _refund_out(refunds.refund_decide(actor=request.auth, refund=_refund_for(request.auth, refund_id),
                                             approve=False, note=payload.note))


@router.post("/refunds/{refund_id}/paid", response=RefundOut, summary="The bank executed the refund")
def refund_paid(request, refund_id: int):
    return _refund_out(refunds.refund_mark_paid(actor=request.auth, refund=_refund_for(request.auth, refund_id)))


@router.get("/refunds/payment-order", summary="Approved refunds not yet exported, as a CSV payment order",
            response={200: None})
def payment_order(request, institution: str):
    inst = institution_get(user=request.auth, code=institution)
    data = refunds.refunds_payment_order(actor=request.auth, institution_id=inst.pk)
    resp = HttpResponse(data, content_type="text/csv; charset=utf-8")
    resp["Content-Disposition"] = f'attachment; filename="lenh-chi-hoan-tien-{inst.code}.csv"'
    return resp


def _xlsx(data: bytes, name: str) -> HttpResponse:
    resp = HttpResponse(data, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    resp["Content-Disposition"] = f'attachment; filename="{name}"'
    return resp


@router.get("/reports/reconciliation", summary="Reconciliation per institution and period (JSON or XLSX)",
            response=dict)
def reconciliation(request, institution: str, date_from: dt.date = Query(..., alias="from"),
                   date_to: dt.date = Query(..., alias="to"), format: str = "json"):
    inst = institution_get(user=request.auth, code=institution)
    if date_to < date_from:
        raise ValidationFailed(_("Ngày kết thúc trước ngày bắt đầu."), code="invalid_period")
    rep = reports.reconciliation_report(institution=inst, date_from=date_from, date_to=date_to)
    if format == "xlsx":
        return _xlsx(reports.reconciliation_xlsx(report=rep), f"doi-soat-{inst.code}-{date_from}-{date_to}.xlsx")
    return {"institution": inst.code, "from": date_from, "to": date_to, "credits": rep.credits_by_status,
            "methods": rep.credits_by_method, "bills": rep.bills_by_status, "refunds": rep.refunds_by_status,
            "unmatched": len(rep.unmatched)}


@router.get("/reports/cashier-day", summary="Cashier end-of-day report (JSON or XLSX)", response=dict)
def cashier_day(request, institution: str, date: dt.date, format: str = "json"):
    inst = institution_get(user=request.auth, code=institution)
    rep = reports.cashier_day_report(institution=inst, day=date)
    if format == "xlsx":
        return _xlsx(reports.cashier_day_xlsx(report=rep), f"thu-ngan-{inst.code}-{date}.xlsx")
    return {"institution": inst.code, "date": date, "rows": rep.by_cashier_method, "count": rep.total_count,
            "amount": rep.total_amount, "shifts": [_shift_out(s) for s in rep.shifts]}
