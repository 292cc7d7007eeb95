"""The printable form of a receipt (bản thể hiện của biên lai điện tử): A5 portrait PDF.

fpdf2 with Roboto embedded (subset) so that Vietnamese diacritics print on any machine; the core PDF
fonts only know Latin-1 and would drop "ă", "ơ", "đ" and every tone mark.
"""
from __future__ import annotations

import io
import logging
import os

import font_roboto
import segno
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from thuphi.core.formatting import format_date, format_vnd
from thuphi.receipts.models import Receipt
from thuphi.receipts.selectors import verify_url
from thuphi.receipts.xml import VN_TZ, signature_fingerprint

# fontTools logs each font subset at INFO, some forty lines per receipt; our log is for our events.
logging.getLogger("fontTools").setLevel(logging.WARNING)

FONT = "Roboto"
_FONT_DIR = font_roboto.font_directory
_PAGE_W, _PAGE_H, _MARGIN = 148, 210, 10
_INK, _MUTED, _RED = (29, 39, 51), (91, 103, 117), (180, 35, 24)


def _qr_png(url: str) -> io.BytesIO:
    # A plain URL QR (not VietQR): any phone camera opens the verification page.
    buffer = io.BytesIO()
    segno.make(url, error="m").save(buffer, kind="png", scale=8, border=2)
    buffer.seek(0)
    return buffer


# multi_cell justifies by default, which spreads a wrapped Vietnamese line into gaps: left-align all.


def _label_value(pdf: FPDF, label: str, value: str, *, bold: bool = False, size: float = 10) -> None:
    """One "label: value" row; long values wrap under themselves, not under the label."""
    label_w = 38
    y = pdf.get_y()
    pdf.set_font(FONT, "", 9)
    pdf.set_text_color(*_MUTED)
    pdf.cell(label_w, 5.5, label, new_x=XPos.RIGHT, new_y=YPos.TOP)
    pdf.set_font(FONT, "B" if bold else "", size)
    pdf.set_text_color(*_INK)
    pdf.multi_cell(_PAGE_W - 2 * _MARGIN - label_w, 5.5, value or "—", align="L",
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if pdf.get_y() < y + 5.5:
        pdf.set_y(y + 5.5)


def _rule(pdf: FPDF) -> None:
    pdf.ln(1.5)
    pdf.set_draw_color(217, 222, 229)
    pdf.line(_MARGIN, pdf.get_y(), _PAGE_W - _MARGIN, pdf.get_y())
    pdf.ln(2)


def receipt_pdf(*, receipt: Receipt) -> bytes:
    """All the fields Decree 123/2020 asks of a receipt, the signature, and a QR of the public
    verification page with its code printed beside it."""
    # A5 as a size in mm: fpdf2 2.8 warns on every use of the "A5" name (its dimensions changed in 2.8.5).
    pdf = FPDF(orientation="P", unit="mm", format=(_PAGE_W, _PAGE_H))
    pdf.set_margins(_MARGIN, _MARGIN, _MARGIN)
    pdf.set_auto_page_break(True, margin=_MARGIN)
    pdf.add_font(FONT, "", os.path.join(_FONT_DIR, "Roboto-Regular.ttf"))
    pdf.add_font(FONT, "B", os.path.join(_FONT_DIR, "Roboto-Bold.ttf"))
    title = f"{receipt.receipt_name} {receipt.serial} {receipt.number_display}"
    pdf.set_title(title)
    pdf.set_author(receipt.institution_name)
    pdf.set_creator("thuphi")
    pdf.add_page()
    width = _PAGE_W - 2 * _MARGIN

    # Header: collector on the left, symbols and number on the right (where e-invoices put them).
    right_w = 44
    top = pdf.get_y()
    pdf.set_text_color(*_INK)
    pdf.set_font(FONT, "B", 10.5)
    pdf.multi_cell(width - right_w - 2, 5, receipt.institution_name, align="L",
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, "", 8.5)
    pdf.multi_cell(width - right_w - 2, 4.3, f"Mã số thuế: {receipt.institution_tax_code or '—'}",
                   align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.multi_cell(width - right_w - 2, 4.3, f"Địa chỉ: {receipt.institution_address or '—'}",
                   align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    left_bottom = pdf.get_y()
    pdf.set_xy(_PAGE_W - _MARGIN - right_w, top)
    for label, value, bold in (("Mẫu số:", receipt.form_symbol, False), ("Ký hiệu:", receipt.serial, False),
                               ("Số:", receipt.number_display, True)):
        pdf.set_x(_PAGE_W - _MARGIN - right_w)
        pdf.set_font(FONT, "", 8.5)
        pdf.set_text_color(*_MUTED)
        pdf.cell(16, 5, label, new_x=XPos.RIGHT, new_y=YPos.TOP)
        pdf.set_text_color(*(_RED if bold else _INK))
        pdf.set_font(FONT, "B", 11 if bold else 9)
        pdf.cell(right_w - 16, 5, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(max(left_bottom, pdf.get_y()))
    _rule(pdf)

    pdf.set_text_color(*_INK)
    pdf.set_font(FONT, "B", 14)
    pdf.cell(width, 7, receipt.receipt_name.upper(), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, "", 8.5)
    pdf.set_text_color(*_MUTED)
    pdf.cell(width, 4.5, "(Bản thể hiện của biên lai điện tử)", align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    d = receipt.issue_date
    pdf.cell(width, 4.5, f"Ngày {d.day:02d} tháng {d.month:02d} năm {d.year}", align="C",
             new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if receipt.is_cancelled:
        pdf.ln(1)
        pdf.set_text_color(*_RED)
        pdf.set_font(FONT, "B", 12)
        pdf.cell(width, 6, "ĐÃ HỦY", align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font(FONT, "", 8.5)
        when = format_date(receipt.cancelled_at.astimezone(VN_TZ)) if receipt.cancelled_at else ""
        pdf.multi_cell(width, 4.5, f"Hủy ngày {when}. Lý do: {receipt.cancel_reason}", align="C",
                       new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)

    _label_value(pdf, "Người nộp:", receipt.payer_name, bold=True)
    _label_value(pdf, "Mã người nộp:", receipt.payer_code)
    if receipt.bill_reference:
        _label_value(pdf, "Mã thanh toán:", receipt.bill_reference)
    fees = receipt.fee_names
    _label_value(pdf, "Khoản thu:", fees[0] if len(fees) == 1 else "\n".join(f"{i}. {n}" for i, n in
                                                                          enumerate(fees, start=1)))
    _label_value(pdf, "Số tiền:", format_vnd(receipt.amount), bold=True, size=12)
    _label_value(pdf, "Bằng chữ:", receipt.amount_in_words)
    _label_value(pdf, "Hình thức thanh toán:", receipt.method_label)
    _label_value(pdf, "Mã giao dịch:", receipt.bank_reference)
    _label_value(pdf, "Ngày lập:", format_date(receipt.issue_date))
    _rule(pdf)

    # Signature and verification block, kept together on one page.
    qr_size = 32
    if pdf.get_y() + qr_size + 14 > _PAGE_H - _MARGIN:
        pdf.add_page()
    url = verify_url(code=receipt.verification_code)
    block_top = pdf.get_y()
    pdf.image(_qr_png(url), x=_MARGIN, y=block_top, w=qr_size, h=qr_size)
    text_x = _MARGIN + qr_size + 4
    text_w = width - qr_size - 4
    pdf.set_xy(text_x, block_top)
    pdf.set_text_color(*_INK)
    pdf.set_font(FONT, "B", 9.5)
    pdf.cell(text_w, 5, "NGƯỜI THU TIỀN", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font(FONT, "", 8.5)
    pdf.multi_cell(text_w, 4.3, f"Ký bởi: {receipt.signed_by}", align="L", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_x(text_x)
    pdf.cell(text_w, 4.3, f"Ngày ký: {format_date(receipt.issue_date)}", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_x(text_x)
    pdf.multi_cell(text_w, 4.3, f"Chữ ký số ({receipt.signature_algorithm}): "
                                f"{signature_fingerprint(receipt.signature)}",
                   align="L", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_x(text_x)
    pdf.set_font(FONT, "", 8.5)
    pdf.set_text_color(*_MUTED)
    pdf.multi_cell(text_w, 4.3, "Quét mã QR hoặc mở địa chỉ dưới đây để kiểm tra biên lai:",
                   align="L", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_x(text_x)
    pdf.set_text_color(*_INK)
    pdf.multi_cell(text_w, 4.3, url, align="L", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_x(text_x)
    pdf.set_font(FONT, "B", 10)
    pdf.cell(text_w, 5.5, f"Mã tra cứu: {receipt.verification_code}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(max(pdf.get_y(), block_top + qr_size) + 1)
    return bytes(pdf.output())

