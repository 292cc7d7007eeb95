"""Printable payment notices (giấy báo thu): one A4 page per bill, with its VietQR.

The notice is what a parent or patient takes home, so it carries everything needed to pay
without the website: the receiving account spelled out, the reference to type as the transfer
description when the QR cannot be scanned, and a warning against fake accounts.

Layout: a long schedule is set in a smaller table font so that each bill stays on one sheet; past
about 25 lines it continues on a second sheet, with the amounts, QR and warning kept together.

Fonts: Roboto (from the `font_roboto` package) is embedded because the PDF core fonts are
Latin-1 only and would drop Vietnamese letters; the reference uses the core Courier, which is
monospaced and needs no embedding (references are ASCII).
"""
from __future__ import annotations

import io
import logging
import re
import unicodedata
from pathlib import Path

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from fpdf import FPDF, FontFace, XPos, YPos

from thuphi.billing import vietqr
from thuphi.billing.models import Bill, BillBatch, BillStatus
from thuphi.billing.selectors import bill_qr_payload, pay_url
from thuphi.core.errors import ValidationFailed
from thuphi.core.formatting import amount_in_words_vi, format_date, format_vnd
from thuphi.registry.banks import bank_by_bin
from thuphi.registry.models import PayerKind

__all__ = ["notices_for_batch", "notices_pdf", "notice_sort_key"]

FONT = "Roboto"
MONO = "Courier"
PAGE_MARGIN = 15  # mm
CONTENT_WIDTH = 210 - 2 * PAGE_MARGIN
QR_SIZE = 52  # mm: scans comfortably from a phone held at reading distance, even photocopied
BOX_TEXT_WIDTH = CONTENT_WIDTH - QR_SIZE - 8
#: Bills in these states must not reach payers: paying them would need a refund.
NOT_PRINTED = (BillStatus.CANCELLED, BillStatus.REFUNDED)
LINE_HEIGHT = 0.45  # mm of line per point of font size (about 1.3 lines)
CELL_PAD_Y = 0.07  # mm of vertical cell padding per point: shrinks with the font
CELL_PAD_X = 1.2  # mm
#: The smallest table font; at it about 25 lines fit under the header. A longer schedule continues
#: on a second sheet rather than being printed off the paper.
MIN_TABLE_FONT = 6

# fpdf2 subsets the embedded font with fontTools, which logs every glyph list at INFO: dozens of
# lines per PDF that drown the application's own log.
logging.getLogger("fontTools.subset").setLevel(logging.WARNING)


def _font_dir() -> Path:
    import font_roboto

    return Path(font_roboto.font_directory)


class _NoticePDF(FPDF):
    def __init__(self) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.set_margins(PAGE_MARGIN, PAGE_MARGIN, PAGE_MARGIN)
        # On: a bill with an unusually long list of lines continues on a second page instead of
        # printing lines off the paper.
        self.set_auto_page_break(auto=True, margin=PAGE_MARGIN)
        fonts = _font_dir()
        self.add_font(FONT, "", fonts / "Roboto-Regular.ttf")
        self.add_font(FONT, "B", fonts / "Roboto-Bold.ttf")
        self.add_font(FONT, "I", fonts / "Roboto-Italic.ttf")
        self.measured: dict[tuple, float] = {}  # see _measure
        self.set_creator("thuphi")
        self.set_title(_("Giấy báo thu"))


def _line(pdf: FPDF, text: str, *, size: float = 10.5, style: str = "", h: float = 5.5, align: str = "L") -> None:
    pdf.set_font(FONT, style, size)
    pdf.multi_cell(CONTENT_WIDTH, h, text, align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _label_value(pdf: FPDF, label: str, value: str, *, x: float, w: float, size: float = 10.5) -> None:
    pdf.set_x(x)
    pdf.set_font(FONT, "", size)
    label_w = pdf.get_string_width(label + " ") + 0.5
    pdf.cell(label_w, 6, label + " ")
    pdf.set_font(FONT, "B", size)
    pdf.multi_cell(w - label_w, 6, value, align="L", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_x(x)


def _header(pdf: FPDF, bill: Bill) -> None:
    inst = bill.institution
    top = pdf.get_y()
    pdf.set_font(FONT, "I", 9)
    pdf.cell(CONTENT_WIDTH, 5, _("Ngày lập: %(d)s") % {"d": format_date(bill.issue_date)}, align="R")
    pdf.set_xy(pdf.l_margin, top)
    pdf.set_font(FONT, "B", 12)
    pdf.multi_cell(CONTENT_WIDTH - 40, 5.5, inst.name.upper(), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    place = ", ".join(p for p in (inst.address, inst.commune.name, inst.commune.province.name) if p)
    _line(pdf, place, size=9)
    if inst.focal_point_name or inst.focal_point_phone:
        _line(pdf, _("Đầu mối hỗ trợ thanh toán: %(who)s") % {
            "who": " – ".join(p for p in (inst.focal_point_name, inst.focal_point_phone) if p)}, size=9)
    pdf.ln(4)
    _line(pdf, _("GIẤY BÁO THU"), size=18, style="B", h=9, align="C")
    if bill.title:
        _line(pdf, bill.title, size=11, style="I", align="C")
    pdf.ln(3)


def _payer(pdf: FPDF, bill: Bill) -> None:
    payer = bill.payer
    x, w = pdf.l_margin, CONTENT_WIDTH
    if payer.kind == PayerKind.STUDENT:
        _label_value(pdf, _("Kính gửi phụ huynh học sinh:"), payer.name, x=x, w=w, size=11)
        parts = [_("Mã học sinh: %(c)s") % {"c": payer.code}]
        if payer.class_name:
            parts.append(_("Lớp: %(c)s") % {"c": payer.class_name})
        if payer.guardian_name:
            parts.append(_("Phụ huynh: %(p)s") % {"p": payer.guardian_name})
    else:
        _label_value(pdf, _("Người bệnh:"), payer.name, x=x, w=w, size=11)
        parts = [_("Mã người bệnh: %(c)s") % {"c": payer.code}]
        if payer.date_of_birth:
            parts.append(_("Ngày sinh: %(d)s") % {"d": format_date(payer.date_of_birth)})
    _line(pdf, "    ".join(parts))
    pdf.ln(3)


def _measure(pdf: _NoticePDF, text: str, *, w: float, h: float, size: float, style: str = "",
             padding: float = 0, lines: bool = False) -> float:
    """multi_cell's own dry run (height, or number of lines), cached for the whole PDF.

    A batch prints the same line names, amounts and warning on every page, and fpdf's line
    breaking is slow on long text: without the cache, measuring cost more than printing.
    """
    key = (text, w, h, size, style, padding, lines)
    if key not in pdf.measured:
        pdf.set_font(FONT, style, size)
        result = pdf.multi_cell(w, h, text, dry_run=True, output="LINES" if lines else "HEIGHT", padding=padding)
        pdf.measured[key] = len(result) if lines else result
    return pdf.measured[key]


def _table_height(pdf: _NoticePDF, names: list[str], *, size: float, name_width: float) -> float:
    line_h = size * LINE_HEIGHT
    text_lines = sum(_measure(pdf, name, w=name_width - 2 * CELL_PAD_X, h=line_h, size=size, lines=True)
                     for name in names)
    return (text_lines + 2) * line_h + (len(names) + 2) * 2 * CELL_PAD_Y * size


def _lines_table(pdf: _NoticePDF, bill: Bill) -> None:
    lines = list(bill.lines.all())
    has_discount = any(ln.discount for ln in lines)
    if has_discount:
        widths, align = (10, 86, 28, 28, 28), ("CENTER", "LEFT", "RIGHT", "RIGHT", "RIGHT")
        heading = (_("STT"), _("Khoản thu"), _("Số tiền"), _("Miễn giảm"), _("Phải nộp"))
    else:
        widths, align = (10, 130, 40), ("CENTER", "LEFT", "RIGHT")
        heading = (_("STT"), _("Khoản thu"), _("Số tiền"))
    # One bill, one sheet: a long schedule is set smaller until it fits above the payment block.
    # 3 mm for the gap under the table; 2% because fpdf's own row heights round up a little.
    budget = (pdf.h - pdf.b_margin - pdf.get_y() - _below_table_height(pdf, bill) - 3) / 1.02
    names = [ln.name for ln in lines]
    size = 10.0
    while size > MIN_TABLE_FONT and _table_height(pdf, names, size=size, name_width=widths[1]) > budget:
        size -= 0.5
    if _table_height(pdf, names, size=size, name_width=widths[1]) > budget:
        size = 10.0  # two sheets either way: keep it legible
    pdf.set_font(FONT, "", size)
    bold = FontFace(emphasis="BOLD")
    with pdf.table(col_widths=widths, text_align=align, line_height=size * LINE_HEIGHT, width=CONTENT_WIDTH,
                   headings_style=FontFace(emphasis="BOLD", fill_color=(235, 235, 235)),
                   padding=(CELL_PAD_Y * size, CELL_PAD_X), cell_fill_mode="NONE") as table:
        row = table.row()
        for text in heading:
            row.cell(text)
        for n, ln in enumerate(lines, start=1):
            row = table.row()
            row.cell(str(n))
            row.cell(ln.name)
            row.cell(format_vnd(ln.amount))
            if has_discount:
                row.cell(format_vnd(ln.discount) if ln.discount else "–")
                row.cell(format_vnd(ln.amount_net))
        row = table.row()
        row.cell(_("Tổng cộng"), colspan=2, style=bold, align="RIGHT")
        if has_discount:
            row.cell(format_vnd(bill.amount_gross), style=bold)
            row.cell(format_vnd(bill.amount_discount), style=bold)
        row.cell(format_vnd(bill.amount_due), style=bold)
    pdf.ln(3)


def _amount_texts(bill: Bill) -> list[tuple[str, float, str, float]]:
    """(text, size, style, line height) of the amounts block, for printing and for measuring."""
    outstanding = bill.amount_outstanding
    out = []
    if bill.amount_paid:
        out.append((_("Đã nộp: %(p)s") % {"p": format_vnd(bill.amount_paid)}, 10.5, "", 5.5))
    if outstanding == 0:
        out.append((_("Không còn khoản phải nộp."), 13, "B", 7))
    else:
        label = _("Số tiền còn phải nộp:") if bill.amount_paid else _("Số tiền phải nộp:")
        out.append((f"{label} {format_vnd(outstanding)}", 13, "B", 7))
        out.append((_("Bằng chữ: %(w)s.") % {"w": amount_in_words_vi(outstanding)}, 10.5, "I", 5.5))
        out.append((_("Hạn nộp: %(d)s") % {"d": format_date(bill.due_date)}, 11, "B", 6))
    return out


def _amounts(pdf: FPDF, bill: Bill) -> int:
    for text, size, style, h in _amount_texts(bill):
        _line(pdf, text, size=size, style=style, h=h)
    pdf.ln(3)
    return bill.amount_outstanding


def _box_heading() -> str:
    return _("Quét mã VietQR bằng ứng dụng ngân hàng bất kỳ, hoặc chuyển khoản:")


def _bank_name(bill: Bill) -> str:
    bank = bank_by_bin(bill.bank_account.bank_bin)
    return f"{bank['short_name']} – {bank['name']}" if bank else bill.bank_account.bank_bin


def _payment_box(pdf: FPDF, bill: Bill, outstanding: int) -> None:
    account = bill.bank_account
    top = pdf.get_y()
    left = pdf.l_margin
    pdf.set_draw_color(120, 120, 120)
    text_x = left + QR_SIZE + 6
    pdf.image(io.BytesIO(vietqr.render_png(bill_qr_payload(bill=bill), scale=8)), x=left + 1, y=top + 1,
              w=QR_SIZE, h=QR_SIZE)
    pdf.set_xy(text_x, top + 2)
    pdf.set_font(FONT, "B", 11)
    pdf.multi_cell(BOX_TEXT_WIDTH, 6, _box_heading(), align="L", new_x=XPos.LEFT, new_y=YPos.NEXT)
    _label_value(pdf, _("Ngân hàng:"), _bank_name(bill), x=text_x, w=BOX_TEXT_WIDTH, size=10)
    _label_value(pdf, _("Số tài khoản:"), account.account_number, x=text_x, w=BOX_TEXT_WIDTH, size=10)
    _label_value(pdf, _("Chủ tài khoản:"), account.account_name, x=text_x, w=BOX_TEXT_WIDTH, size=10)
    _label_value(pdf, _("Số tiền:"), format_vnd(outstanding), x=text_x, w=BOX_TEXT_WIDTH, size=10)
    pdf.set_x(text_x)
    pdf.set_font(FONT, "", 10)
    pdf.cell(BOX_TEXT_WIDTH, 6, _("Nội dung chuyển khoản (ghi đúng, không thêm bớt):"), new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_x(text_x)
    pdf.set_font(MONO, "B", 24)
    pdf.set_char_spacing(1.5)
    pdf.cell(BOX_TEXT_WIDTH, 11, bill.reference, border=1, align="C", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_char_spacing(0)
    bottom = max(pdf.get_y(), top + QR_SIZE + 2)
    pdf.rect(left, top, CONTENT_WIDTH, bottom - top + 1)
    pdf.set_y(bottom + 4)


def _footer(pdf: FPDF, bill: Bill) -> None:
    url = pay_url(reference=bill.reference)
    pdf.set_font(FONT, "", 10)
    pdf.cell(pdf.get_string_width(_("Xem và thanh toán trực tuyến:") + " "), 6,
             _("Xem và thanh toán trực tuyến:") + " ")
    pdf.set_font(FONT, "B", 10)
    pdf.cell(0, 6, url, link=url, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)
    pdf.set_fill_color(255, 243, 205)
    pdf.set_font(FONT, "B", 10)
    pdf.multi_cell(CONTENT_WIDTH, 5.5, _warning(bill), border=1, fill=True, padding=2, align="L",
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_fill_color(255, 255, 255)


def _warning(bill: Bill) -> str:
    account = bill.bank_account
    return (_("CẢNH GIÁC LỪA ĐẢO: %(inst)s chỉ nhận tiền vào tài khoản %(acc)s mang tên %(holder)s ghi trên giấy "
              "này. Không chuyển tiền theo tin nhắn, cuộc gọi hay đường link lạ, không chuyển vào tài khoản cá "
              "nhân; khi nghi ngờ hãy hỏi trực tiếp nhà trường/cơ sở y tế.")
            % {"inst": bill.institution.name, "acc": account.account_number, "holder": account.account_name})


def _below_table_height(pdf: _NoticePDF, bill: Bill) -> float:
    """Height of what follows the table (amounts, payment box, link, warning), measured, not guessed."""
    def height(text: str, *, w: float = CONTENT_WIDTH, size: float, style: str, h: float, padding: float = 0) -> float:
        return _measure(pdf, text, w=w, h=h, size=size, style=style, padding=padding)

    total = sum(height(t, size=size, style=style, h=h) for t, size, style, h in _amount_texts(bill)) + 3
    if bill.amount_outstanding > 0:
        pdf.set_font(FONT, "", 10)
        bank_label_w = pdf.get_string_width(_("Ngân hàng:") + " ") + 0.5  # as _label_value lays it out
        text_column = (2 + height(_box_heading(), w=BOX_TEXT_WIDTH, size=11, style="B", h=6)
                       + height(_bank_name(bill), w=BOX_TEXT_WIDTH - bank_label_w, size=10, style="B", h=6)
                       + 3 * 6 + 6 + 11)
        total += max(text_column, QR_SIZE + 2) + 1 + 4
    total += 6 + 3 + height(_warning(bill), size=10, style="B", h=5.5, padding=2)
    return total




def _render_bill(pdf: _NoticePDF, bill: Bill) -> None:
    pdf.add_page()
    _header(pdf, bill)
    _payer(pdf, bill)
    _lines_table(pdf, bill)
    if pdf.get_y() + _below_table_height(pdf, bill) > pdf.h - pdf.b_margin:
        pdf.add_page()  # the amounts, QR and warning stay together on one sheet
    outstanding = _amounts(pdf, bill)
    if outstanding > 0:
        _payment_box(pdf, bill, outstanding)
    _footer(pdf, bill)


def notices_pdf(*, bills: list[Bill]) -> bytes:
    """One notice page per bill, in the order given, as PDF bytes.

    Bills should come with `institution__commune__province`, `payer`, `bank_account` selected and
    `lines` prefetched (`notices_for_batch` does this); otherwise each costs a few queries.
    """
    printable = [b for b in bills if b.status not in NOT_PRINTED]
    if not printable:
        raise ValidationFailed(_("Không có phiếu thu nào để in."), code="nothing_to_print")
    pdf = _NoticePDF()
    for bill in printable:
        _render_bill(pdf, bill)
    return bytes(pdf.output())


# ---------------------------------------------------------------------------
# Order: by class, then by name as Vietnamese class lists are ordered
# ---------------------------------------------------------------------------

_VI_ALPHABET = "aăâbcdđeêfghijklmnoôơpqrstuưvwxyz"
_VI_RANK = {ch: i for i, ch in enumerate(_VI_ALPHABET)}
_LETTER_MARKS = {"\u0306", "\u0302", "\u031b"}  # breve, circumflex, horn: part of the letter (ă, â, ơ)
# Tones in dictionary order: ngang, huyền, hỏi, ngã, sắc, nặng.
_TONE_RANK = {"": 0, "\u0300": 1, "\u0309": 2, "\u0303": 3, "\u0301": 4, "\u0323": 5}


def _vi_key(text: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Vietnamese collation: letters first (a < ă < â < … < d < đ), tones only to break ties."""
    letters: list[int] = []
    tones: list[int] = []
    for ch in text.lower():
        decomposed = unicodedata.normalize("NFD", ch)
        base, marks = decomposed[0], decomposed[1:]
        letter = unicodedata.normalize("NFC", base + "".join(m for m in marks if m in _LETTER_MARKS))
        letters.append(_VI_RANK.get(letter, 100 + ord(letter)))
        tones.append(_TONE_RANK.get("".join(m for m in marks if m not in _LETTER_MARKS), 9))
    return tuple(letters), tuple(tones)


def _natural_key(text: str) -> tuple:
    # "6A" < "10A": the digits compare as numbers.
    return tuple(int(p) if p.isdigit() else _vi_key(p) for p in re.split(r"(\d+)", text.strip()) if p)


def notice_sort_key(bill: Bill) -> tuple:
    """Class, then given name (the last word), then the full name: the order of a class register."""
    name = bill.payer.name.split()
    given = name[-1] if name else ""
    return (_natural_key(bill.payer.class_name), _vi_key(given), _vi_key(" ".join(name)), bill.payer.code)


def _batch_bills(*, batch: BillBatch, class_name: str | None) -> QuerySet[Bill]:
    qs = (Bill.objects.filter(batch=batch).exclude(status__in=NOT_PRINTED)
          .select_related("institution__commune__province", "payer", "bank_account")
          .prefetch_related("lines"))
    if class_name:
        qs = qs.filter(payer__class_name__iexact=class_name.strip())
    return qs


def notices_for_batch(*, batch: BillBatch, class_name: str | None = None) -> bytes:
    """The notices of a batch (optionally one class), sorted by class then name, as one PDF.

    Sorted in Python rather than SQL so the order is Vietnamese and the same on every database.
    """
    bills = sorted(_batch_bills(batch=batch, class_name=class_name), key=notice_sort_key)
    if not bills:
        raise ValidationFailed(
            _("Đợt thu không có phiếu thu nào để in cho lớp “%(c)s”.") % {"c": class_name} if class_name
            else _("Đợt thu không có phiếu thu nào để in."),
            code="nothing_to_print",
        )
    return notices_pdf(bills=bills)
