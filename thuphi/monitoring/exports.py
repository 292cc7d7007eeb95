"""Exports of the dashboard: XLSX (a sheet per breakdown, numbers as numbers) and PDF (fpdf2 + Roboto).

Both open with the narrative summary in the form the provinces write (narrative.py). Percentages are
numbers with two decimals (98.88) in columns marked "(%)".
"""
from __future__ import annotations

import io
import logging
import os

from django.utils import timezone
from django.utils.translation import override

from thuphi.core.formatting import format_number, format_percent, format_vnd
from thuphi.monitoring.dashboard import Dashboard
from thuphi.monitoring.narrative import short_date
from thuphi.registry.models import InstitutionKind, Sector

logging.getLogger("fontTools").setLevel(logging.WARNING)

FIG_HEADERS = ["Số giao dịch", "Số GD không dùng tiền mặt", "Tỷ lệ theo số lượng (%)", "Giá trị (đồng)",
               "Giá trị không dùng tiền mặt (đồng)", "Tỷ lệ theo giá trị (%)"]


def _pct(value):
    return None if value is None else float(value)


def _figs(f) -> list:
    return [f.payments, f.payments_cashless, _pct(f.share_count), f.value, f.value_cashless, _pct(f.share_value)]


def filename(d: Dashboard, ext: str) -> str:
    s = d.scope
    area = s.area.code.replace(":", "-")
    return f"giam-sat_{area}_{s.sector or 'all'}_{s.start:%Y%m%d}-{s.end:%Y%m%d}.{ext}"


def scope_lines(d: Dashboard) -> list[tuple[str, str]]:
    s = d.scope
    sectors = dict(Sector.choices)
    kinds = dict(InstitutionKind.choices)
    lines = [("Địa bàn", s.area.label),
             ("Lĩnh vực", str(sectors.get(s.sector, "Giáo dục và y tế"))),
             ("Kỳ", f"{short_date(s.start)} – {short_date(max(s.end, s.start))}")]
    if s.kind:
        lines.append(("Loại hình", str(kinds.get(s.kind, s.kind))))
    if s.institution:
        lines.append(("Đơn vị", f"{s.institution.code} – {s.institution.name}"))
    lines.append(("Lập lúc", timezone.localtime().strftime("%d/%m/%Y %H:%M")))
    return lines


# --- XLSX ------------------------------------------------------------------------------------------


def xlsx(d: Dashboard) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    with override("vi"):
        wb = Workbook()
        bold = Font(bold=True)
        ws = wb.active
        ws.title = "Tom tat"
        ws.append(["BÁO CÁO KẾT QUẢ CHUYỂN ĐỔI SỐ, THANH TOÁN KHÔNG DÙNG TIỀN MẶT"])
        ws["A1"].font = Font(bold=True, size=13)
        for label, value in scope_lines(d):
            ws.append([label, value])
        ws.append([])
        ws.append(["Tóm tắt"])
        ws.cell(ws.max_row, 1).font = bold
        ws.append([d.narrative])
        row = ws.max_row
        ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=6)
        ws.cell(row, 1).alignment = Alignment(wrap_text=True, vertical="top")
        ws.row_dimensions[row].height = 120
        for sentence in d.details:
            ws.append([sentence])
        ws.append([])
        ws.append(["Chỉ số", "Tử số", "Mẫu số", "Giá trị (%)", "Tử số là", "Mẫu số là"])
        for c in ws[ws.max_row]:
            c.font = bold
        for t in d.tiles:
            ws.append([t.label, t.numerator, t.denominator, _pct(t.value), t.numerator_text, t.denominator_text])
        ws.append([])
        ws.append(["Kế hoạch", "Cơ quan ban hành", "Chỉ tiêu", "So sánh", "Mục tiêu (%)", "Thực hiện (%)",
                   "Tử số", "Mẫu số", "Đánh giá", "Thời hạn"])
        for c in ws[ws.max_row]:
            c.font = bold
        for r in d.targets:
            ws.append([r.plan.name, r.plan.issuing_body, r.target.label or r.target.get_indicator_display(),
                       r.target.get_comparison_display(), float(r.target.value), _pct(r.actual), r.numerator,
                       r.denominator, r.status_label, r.plan.deadline])
            ws.cell(ws.max_row, 10).number_format = "DD/MM/YYYY"
        ws.column_dimensions["A"].width = 48
        for col in "BCDEFGHIJ":
            ws.column_dimensions[col].width = 18

        def sheet(title: str, headers: list[str], rows: list[list]):
            s = wb.create_sheet(title)
            s.append(headers)
            for c in s[1]:
                c.font = bold
            for r in rows:
                s.append(r)
            for i, h in enumerate(headers, start=1):
                letter = s.cell(1, i).column_letter
                s.column_dimensions[letter].width = max(12, min(len(h) + 4, 40))
                if h.endswith("(%)"):
                    for cell in s[letter][1:]:
                        cell.number_format = "0.00"
                elif "đồng" in h or "Số" in h or h.startswith("Đơn vị"):
                    for cell in s[letter][1:]:
                        cell.number_format = "#,##0"
            s.freeze_panes = "A2"
            return s

        sheet("Theo thang", ["Tháng", *FIG_HEADERS],
              [[f"{p.month.month:02d}/{p.month.year}", *_figs(p.figures)] for p in d.trend])
        group_headers = ["Mã", "Tên", "Đơn vị", "Đơn vị có số liệu", "Đơn vị chấp nhận KDTM",
                         "Đơn vị dùng nền tảng số", *FIG_HEADERS]
        sheet("Theo dia ban", group_headers,
              [[r.key, r.label, r.institutions, r.reporting, r.cashless, r.digital, *_figs(r.figures)]
               for r in d.areas])
        sheet("Theo loai hinh", group_headers,
              [[r.key, r.label, r.institutions, r.reporting, r.cashless, r.digital, *_figs(r.figures)]
               for r in d.kinds])
        sheet("Theo khoan thu", ["Mã", "Khoản thu", *FIG_HEADERS],
              [[r.key, r.label, *_figs(r.figures)] for r in d.fee_kinds])
        sheet("Theo hinh thuc", ["Mã", "Hình thức", "Nhóm", "Số giao dịch", "Giá trị (đồng)"],
              [[r.key, r.label, r.note, r.figures.payments, r.figures.value] for r in d.methods])
        kinds = dict(InstitutionKind.choices)
        inst_rows = [[f.code, f.name, f.commune_name, f.province_name, str(kinds.get(f.kind, f.kind)),
                      "thuphi" if f.collects_through_thuphi else ("báo cáo" if f.reports_approved else "chưa có"),
                      "có" if f.accepts_cashless else "không", "có" if f.digital else "không", *_figs(f.total)]
                     for f in sorted(d.kpi.counted, key=lambda f: (f.commune_name, f.name))]
        sheet("Theo don vi", ["Mã", "Tên đơn vị", "Xã/phường", "Tỉnh/thành phố", "Loại hình", "Nguồn số liệu",
                              "Chấp nhận KDTM", "Nền tảng số", *FIG_HEADERS], inst_rows)
        sheet("Cham nhat", ["Mã", "Tên đơn vị", "Xã/phường", "Chấp nhận KDTM", *FIG_HEADERS],
              [[f.code, f.name, f.commune_name, "có" if f.accepts_cashless else "không", *_figs(f.total)]
               for f in d.behind])
        sheet("Bao cao tong hop", ["Mã", "Tên đơn vị", "Từ ngày", "Đến ngày", "Trạng thái", *FIG_HEADERS,
                                   "Lý do trả lại"],
              [[r.institution.code, r.institution.name, r.period_start, r.period_end, r.get_status_display(),
                r.payments, r.payments_cashless, _pct(_share(r.payments_cashless, r.payments)), r.value,
                r.value_cashless, _pct(_share(r.value_cashless, r.value)), r.return_reason] for r in d.reports])
        rs = wb["Bao cao tong hop"]
        for row in rs.iter_rows(min_row=2, min_col=3, max_col=4):
            for cell in row:
                cell.number_format = "DD/MM/YYYY"
        out = io.BytesIO()
        wb.save(out)
        return out.getvalue()


def _share(a, b):
    from thuphi.core.formatting import share_percent

    return share_percent(a, b)


# --- PDF -------------------------------------------------------------------------------------------


def pdf(d: Dashboard) -> bytes:
    import font_roboto
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos
    from fpdf.fonts import FontFace

    with override("vi"):
        doc = FPDF(orientation="P", unit="mm", format="A4")
        doc.set_title("Báo cáo giám sát thanh toán không dùng tiền mặt")
        doc.set_creator("thuphi")
        fonts = font_roboto.font_directory
        doc.add_font("Roboto", "", os.path.join(fonts, "Roboto-Regular.ttf"))
        doc.add_font("Roboto", "B", os.path.join(fonts, "Roboto-Bold.ttf"))
        doc.set_auto_page_break(True, margin=14)
        doc.set_margins(14, 14, 14)
        doc.add_page()
        width = doc.w - 28

        def heading(text: str, size: float = 11):
            doc.ln(2)
            doc.set_font("Roboto", "B", size)
            doc.multi_cell(width, 6, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            doc.set_font("Roboto", "", 9)

        doc.set_font("Roboto", "B", 14)
        doc.multi_cell(width, 7, "BÁO CÁO KẾT QUẢ CHUYỂN ĐỔI SỐ, THANH TOÁN KHÔNG DÙNG TIỀN MẶT", align="C",
                       new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        doc.set_font("Roboto", "", 9)
        doc.multi_cell(width, 5, " · ".join(f"{k}: {v}" for k, v in scope_lines(d)), align="C",
                       new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        heading("Tóm tắt")
        doc.set_font("Roboto", "", 10.5)
        doc.multi_cell(width, 5.6, d.narrative, align="J", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        doc.set_font("Roboto", "", 9)
        for sentence in d.details:
            doc.multi_cell(width, 4.8, "– " + sentence, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

        head = FontFace(emphasis="BOLD", fill_color=(238, 241, 244))

        def table(headers, rows, widths, aligns=None):
            doc.set_font("Roboto", "", 8.5)
            with doc.table(col_widths=widths, headings_style=head, line_height=4.6, text_align=aligns or "LEFT",
                           first_row_as_headings=True, width=width) as t:
                r = t.row()
                for h in headers:
                    r.cell(h)
                for values in rows:
                    r = t.row()
                    for v in values:
                        r.cell("" if v is None else str(v))

        heading("Chỉ số")
        table(["Chỉ số", "Tử số", "Mẫu số", "Giá trị"],
              [[t.label, format_number(t.numerator), format_number(t.denominator), format_percent(t.value)]
               for t in d.tiles], (50, 18, 18, 14), ("LEFT", "RIGHT", "RIGHT", "RIGHT"))
        if d.targets:
            heading("Chỉ tiêu của các kế hoạch")
            table(["Kế hoạch / chỉ tiêu", "Mục tiêu", "Thực hiện", "Đánh giá", "Thời hạn"],
                  [[f"{r.plan.issuing_body}: {r.target.label or r.target.get_indicator_display()}",
                    f"{r.target.get_comparison_display()} {format_percent(r.target.value)}",
                    format_percent(r.actual), r.status_label, short_date(r.plan.deadline)] for r in d.targets],
                  (62, 13, 13, 17, 13), ("LEFT", "RIGHT", "RIGHT", "LEFT", "RIGHT"))
        fig_heads = ["Số GD", "KDTM", "Tỷ lệ SL", "Giá trị (đồng)", "KDTM (đồng)", "Tỷ lệ GT"]

        def fig_cells(f):
            return [format_number(f.payments), format_number(f.payments_cashless), format_percent(f.share_count),
                    format_vnd(f.value, symbol=False), format_vnd(f.value_cashless, symbol=False),
                    format_percent(f.share_value)]

        right6 = ("RIGHT",) * 6
        if d.trend:
            heading("Theo tháng")
            table(["Tháng", *fig_heads], [[f"{p.month.month}/{p.month.year}", *fig_cells(p.figures)]
                                          for p in d.trend], (14, 12, 12, 12, 22, 22, 12), ("LEFT", *right6))
        if d.areas:
            heading(d.areas_title)
            table(["Địa bàn", "Đơn vị", *fig_heads],
                  [[r.label, f"{r.cashless}/{r.institutions}", *fig_cells(r.figures)] for r in d.areas],
                  (26, 10, 11, 11, 11, 19, 19, 11), ("LEFT", "RIGHT", *right6))
        if d.behind:
            heading("Đơn vị cần hỗ trợ (chậm nhất)")
            table(["Đơn vị", "Nhận KDTM", *fig_heads],
                  [[f"{f.name} ({f.code})", "có" if f.accepts_cashless else "không", *fig_cells(f.total)]
                   for f in d.behind], (30, 10, 10, 10, 10, 19, 19, 10), ("LEFT", "LEFT", *right6))
        return bytes(doc.output())
