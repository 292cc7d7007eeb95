"""Cashier end-of-day and reconciliation reports, as data and as XLSX (numbers kept as numbers)."""
from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field

from django.db.models import Count, Sum
from django.utils import timezone
from openpyxl import Workbook
from openpyxl.styles import Font

from thuphi.billing.models import Bill, BillStatus
from thuphi.payments.models import CashierShift, Credit, CreditStatus, Refund, RefundStatus
from thuphi.registry.models import Institution

MONEY_FORMAT = '#,##0 "đ"'


def _day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_current_timezone()
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    return start, start + dt.timedelta(days=1)


@dataclass
class CashierDay:
    institution: Institution
    day: dt.date
    by_cashier_method: list[dict] = field(default_factory=list)
    shifts: list[CashierShift] = field(default_factory=list)
    total_count: int = 0
    total_amount: int = 0


def cashier_day_report(*, institution: Institution, day: dt.date) -> CashierDay:
    start, end = _day_bounds(day)
    rows = list(
        Credit.objects.filter(institution=institution, source="counter", occurred_at__gte=start, occurred_at__lt=end)
        .exclude(status=CreditStatus.REVERSED)
        .values("created_by__username", "method").annotate(count=Count("id"), amount=Sum("amount"))
        .order_by("created_by__username", "method")
    )
    report = CashierDay(institution=institution, day=day, by_cashier_method=rows)
    report.shifts = list(CashierShift.objects.filter(institution=institution, opened_at__lt=end)
                         .filter(closed_at__gte=start).select_related("cashier").order_by("opened_at")) + list(
        CashierShift.objects.filter(institution=institution, opened_at__lt=end, closed_at__isnull=True)
        .select_related("cashier"))
    report.total_count = sum(r["count"] for r in rows)
    report.total_amount = sum(r["amount"] or 0 for r in rows)
    return report


@dataclass
class Reconciliation:
    institution: Institution
    date_from: dt.date
    date_to: dt.date
    credits_by_status: dict[str, dict] = field(default_factory=dict)
    credits_by_method: dict[str, dict] = field(default_factory=dict)
    bills_by_status: dict[str, dict] = field(default_factory=dict)
    refunds_by_status: dict[str, dict] = field(default_factory=dict)
    unmatched: list[Credit] = field(default_factory=list)


def reconciliation_report(*, institution: Institution, date_from: dt.date, date_to: dt.date) -> Reconciliation:
    """Credits received in the period by outcome (matched, unmatched, returned, reversed), bills
    touched in the period by status (partial, overpaid, refunded…), refunds by status."""
    start, _ = _day_bounds(date_from)
    _, end = _day_bounds(date_to)
    credits = Credit.objects.filter(institution=institution, occurred_at__gte=start, occurred_at__lt=end)
    rep = Reconciliation(institution=institution, date_from=date_from, date_to=date_to)
    for r in credits.values("status").annotate(count=Count("id"), amount=Sum("amount")):
        rep.credits_by_status[r["status"]] = {"count": r["count"], "amount": r["amount"] or 0}
    for r in credits.exclude(status=CreditStatus.REVERSED).values("method").annotate(count=Count("id"),
                                                                                   amount=Sum("amount")):
        rep.credits_by_method[r["method"]] = {"count": r["count"], "amount": r["amount"] or 0}
    bills = Bill.objects.filter(institution=institution, allocations__credit__in=credits).distinct()
    for r in Bill.objects.filter(pk__in=bills.values("pk")).values("status").annotate(
            count=Count("id"), due=Sum("amount_due"), paid=Sum("amount_paid")):
        rep.bills_by_status[r["status"]] = {"count": r["count"], "due": r["due"] or 0, "paid": r["paid"] or 0}
    for r in Refund.objects.filter(institution=institution, requested_at__gte=start, requested_at__lt=end).values(
            "status").annotate(count=Count("id"), amount=Sum("amount")):
        rep.refunds_by_status[r["status"]] = {"count": r["count"], "amount": r["amount"] or 0}
    rep.unmatched = list(credits.filter(status=CreditStatus.UNMATCHED).order_by("occurred_at")[:1000])
    return rep


def _sheet(wb: Workbook, title: str, header: list[str], rows: list[list], money_cols: set[int]):
    ws = wb.create_sheet(title)
    ws.append(header)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in rows:
        ws.append(row)
    for col in money_cols:
        for (cell,) in ws.iter_rows(min_row=2, min_col=col, max_col=col):
            cell.number_format = MONEY_FORMAT
    for column in ws.columns:
        ws.column_dimensions[column[0].column_letter].width = max(12, min(45, max(len(str(c.value or "")) for c in column) + 2))
    return ws


def reconciliation_xlsx(*, report: Reconciliation) -> bytes:
    wb = Workbook()
    wb.remove(wb.active)
    labels = dict(CreditStatus.choices)
    _sheet(wb, "Tong hop", ["Trạng thái khoản tiền", "Số lượt", "Số tiền"],
           [[str(labels.get(k, k)), v["count"], v["amount"]] for k, v in sorted(report.credits_by_status.items())],
           {3})
    from thuphi.payments.models import Method

    mlabels = dict(Method.choices)
    _sheet(wb, "Theo hinh thuc", ["Hình thức", "Số lượt", "Số tiền"],
           [[str(mlabels.get(k, k)), v["count"], v["amount"]] for k, v in sorted(report.credits_by_method.items())],
           {3})
    blabels = dict(BillStatus.choices)
    _sheet(wb, "Phieu thu", ["Trạng thái phiếu thu", "Số phiếu", "Phải nộp", "Đã nộp"],
           [[str(blabels.get(k, k)), v["count"], v["due"], v["paid"]] for k, v in sorted(report.bills_by_status.items())],
           {3, 4})
    rlabels = dict(RefundStatus.choices)
    _sheet(wb, "Hoan tien", ["Trạng thái hoàn tiền", "Số yêu cầu", "Số tiền"],
           [[str(rlabels.get(k, k)), v["count"], v["amount"]] for k, v in sorted(report.refunds_by_status.items())],
           {3})
    tz = timezone.get_current_timezone()
    _sheet(wb, "Chua xac dinh", ["Thời điểm", "Số tiền", "Nội dung chuyển khoản", "Người chuyển", "Mã GD ngân hàng",
                                  "Lý do chưa gạch nợ"],
           [[c.occurred_at.astimezone(tz).replace(tzinfo=None), c.amount, c.description, c.payer_name,
             c.bank_reference, c.match_reason] for c in report.unmatched], {2})
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def cashier_day_xlsx(*, report: CashierDay) -> bytes:
    from thuphi.payments.models import Method

    mlabels = dict(Method.choices)
    wb = Workbook()
    wb.remove(wb.active)
    _sheet(wb, "Thu theo thu ngan", ["Thu ngân", "Hình thức", "Số lượt", "Số tiền"],
           [[r["created_by__username"], str(mlabels.get(r["method"], r["method"])), r["count"], r["amount"]]
            for r in report.by_cashier_method] + [["Tổng", "", report.total_count, report.total_amount]], {4})
    tz = timezone.get_current_timezone()
    _sheet(wb, "Ca thu ngan", ["Thu ngân", "Mở ca", "Đóng ca", "Tiền đầu ca", "Dự kiến", "Đếm được", "Chênh lệch"],
           [[s.cashier.username, s.opened_at.astimezone(tz).replace(tzinfo=None),
             s.closed_at.astimezone(tz).replace(tzinfo=None) if s.closed_at else None, s.opening_float,
             s.expected_cash, s.counted_cash, s.difference] for s in report.shifts], {4, 5, 6, 7})
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
