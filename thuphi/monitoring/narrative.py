"""The summary in the form provincial departments already write (seed 004, Bắc Giang, April 2024):

"Từ ngày 16/3/2024 đến ngày 15/4/2024, tổng số 24/24 đơn vị đã thực hiện triển khai. Số lượng giao dịch
thanh toán viện phí, dịch vụ y tế và các giao dịch khác là 65.902 lượt. Trong đó, số lượng giao dịch thanh
toán không dùng tiền mặt là 65.161 lượt, tương ứng 98,88%. Giá trị giao dịch thanh toán viện phí, dịch vụ y tế
và các giao dịch khác là 37.876.956.607 đồng. Trong đó, số tiền thu được của bệnh nhân qua hình thức không
dùng tiền mặt là 34.311.921.957 đồng, tương ứng 90,59%."

Always Vietnamese: it goes into official reports. "Đơn vị đã thực hiện triển khai" counts institutions that
accept cashless payment, over all institutions in scope.
"""
from __future__ import annotations

import datetime as dt

from thuphi.core.formatting import format_number, format_percent
from thuphi.monitoring.selectors import Kpi

WORDING = {
    "health": ("viện phí, dịch vụ y tế và các giao dịch khác", "của bệnh nhân"),
    "education": ("học phí, các khoản thu và các giao dịch khác", "của người học"),
    None: ("học phí, viện phí, dịch vụ và các giao dịch khác", "của người nộp"),
}


def short_date(d: dt.date) -> str:
    """16/3/2024: the day and month without leading zeros, as the reports write them."""
    return f"{d.day}/{d.month}/{d.year}"


def narrative(kpi: Kpi) -> str:
    scope = kpi.scope
    noun, payer = WORDING.get(scope.sector, WORDING[None])
    t = kpi.totals
    parts = [f"Từ ngày {short_date(scope.start)} đến ngày {short_date(max(scope.end, scope.start))}, tổng số "
             f"{kpi.institutions_cashless}/{kpi.institutions} đơn vị đã thực hiện triển khai."]
    if t.payments == 0:
        parts.append("Chưa có giao dịch thanh toán nào được ghi nhận trong kỳ.")
    else:
        parts.append(f"Số lượng giao dịch thanh toán {noun} là {format_number(t.payments)} lượt.")
        parts.append(f"Trong đó, số lượng giao dịch thanh toán không dùng tiền mặt là "
                     f"{format_number(t.payments_cashless)} lượt, tương ứng {format_percent(t.share_count)}.")
        parts.append(f"Giá trị giao dịch thanh toán {noun} là {format_number(t.value)} đồng.")
        parts.append(f"Trong đó, số tiền thu được {payer} qua hình thức không dùng tiền mặt là "
                     f"{format_number(t.value_cashless)} đồng, tương ứng {format_percent(t.share_value)}.")
    return " ".join(parts)


def narrative_details(kpi: Kpi, targets) -> list[str]:
    """Further sentences: where the figures come from, completeness, and each target."""
    out = []
    c = kpi.completeness
    if kpi.ledger.payments:
        out.append(f"Số liệu của {kpi.institutions_through_thuphi} đơn vị lấy trực tiếp từ "
                   f"sổ cái thuphi ({format_number(kpi.ledger.payments)} giao dịch).")
    if c.expected:
        out.append(f"Báo cáo tổng hợp: đã nhận {c.received}/{c.expected} đơn vị "
                   f"({format_percent(c.percent)}), đã duyệt {c.approved}.")
    for r in targets:
        if r.status == "not_measured":
            continue
        actual = format_percent(r.actual) if r.actual is not None else "chưa có số liệu"
        out.append(f"{r.target.label or r.target.get_indicator_display()} ({r.plan.issuing_body}): "
                   f"đạt {actual}, chỉ tiêu {r.target.get_comparison_display()} {format_percent(r.target.value)} "
                   f"— {r.status_label.lower()}.")
    if kpi.scope.area.kind == "legacy" and kpi.scope.requested_end > kpi.scope.end:
        out.append(f"{kpi.scope.area.name} chỉ có số liệu đến ngày {short_date(kpi.scope.end)} "
                   f"(sắp xếp đơn vị hành chính từ 01/7/2025).")
    return out
