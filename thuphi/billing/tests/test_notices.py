"""Printable payment notices: one page per bill, Vietnamese text in an embedded font, batch order."""
from __future__ import annotations

import datetime as dt
import io
import re
import zlib

import pytest
from django.core.management import CommandError, call_command

from thuphi.billing.bulk import bills_bulk_issue
from thuphi.billing.models import Bill, BillStatus, FeeKind
from thuphi.billing.notices import notice_sort_key, notices_for_batch, notices_pdf
from thuphi.billing.services import LineInput, bill_cancel
from thuphi.core.errors import ValidationFailed

pytestmark = pytest.mark.django_db

DUE = dt.date.today() + dt.timedelta(days=15)
PAGE_RE = re.compile(rb"/Type\s*/Page\b")  # \b: not /Pages, the page tree


def page_count(pdf: bytes) -> int:
    return len(PAGE_RE.findall(pdf))


def streams_text(pdf: bytes) -> bytes:
    """Every Flate stream decompressed, read by its /Length: the fonts' ToUnicode maps live there."""
    out = []
    for m in re.finditer(rb"/Length (\d+)\b[^>]*>>\s*stream\r?\n", pdf):
        data = pdf[m.end():m.end() + int(m.group(1))]
        try:
            out.append(zlib.decompress(data))
        except zlib.error:
            continue
    return b"\n".join(out)


@pytest.fixture
def batch(institution, cashier):
    rows = [
        {"code": "HS05", "name": "Trần Văn Bình", "class_name": "10A"},
        {"code": "HS01", "name": "Nguyễn Thị Ánh", "class_name": "6B"},
        {"code": "HS02", "name": "Đặng Minh An", "class_name": "6A"},
        {"code": "HS03", "name": "Lê Văn Đức", "class_name": "6A"},
        {"code": "HS04", "name": "Bùi Thu Dung", "class_name": "6A"},
    ]
    schedule = [LineInput(name="Tiền ăn bán trú tháng 11", amount=450_000, kind=FeeKind.MEALS_BOARDING),
                LineInput(name="Bảo hiểm y tế học sinh", amount=884_520, kind=FeeKind.STUDENT_INSURANCE)]
    return bills_bulk_issue(actor=cashier, institution=institution, rows=rows, schedule=schedule, due_date=DUE,
                            batch_name="Thu tháng 11/2026")


def test_notices_pdf_has_one_page_per_bill_and_embeds_roboto_with_vietnamese_glyphs(batch):
    # given the bills of a batch
    bills = list(Bill.objects.filter(batch=batch))
    # when their notices are printed
    pdf = notices_pdf(bills=bills)
    # then it is a PDF with one page per bill
    assert pdf.startswith(b"%PDF-")
    assert page_count(pdf) == len(bills) == 5
    # and the Roboto font is embedded (not a core font, which has no Vietnamese letters)
    assert b"Roboto" in pdf and b"/FontFile2" in pdf
    # and its glyph maps cover Vietnamese letters: Ấ (GIẤY), ử (gửi), ế (tế), đ (đồng), Đ (Đức)
    unicode_maps = pdf + streams_text(pdf)
    for char in "ẤửếđĐ":
        assert f"<{ord(char):04X}>".encode() in unicode_maps, char


def test_batch_notices_are_sorted_by_class_then_given_name(batch):
    # given a batch spanning classes 6A, 6B, 10A
    bills = sorted(Bill.objects.filter(batch=batch).select_related("payer"), key=notice_sort_key)
    # then classes go in natural order and names by given name (An < Dung < Đức), đ after d
    assert [(b.payer.class_name, b.payer.name) for b in bills] == [
        ("6A", "Đặng Minh An"), ("6A", "Bùi Thu Dung"), ("6A", "Lê Văn Đức"),
        ("6B", "Nguyễn Thị Ánh"), ("10A", "Trần Văn Bình")]


def test_notices_for_one_class_print_only_that_class(batch):
    pdf = notices_for_batch(batch=batch, class_name="6a")
    assert page_count(pdf) == 3


def test_cancelled_bills_are_not_printed(batch, cashier):
    bill = Bill.objects.get(payer__code="HS05")
    bill_cancel(actor=cashier, bill=bill, reason="Chuyển trường")
    pdf = notices_for_batch(batch=batch)
    assert page_count(pdf) == 4
    with pytest.raises(ValidationFailed):
        notices_for_batch(batch=batch, class_name="10A")


def test_paid_bill_prints_without_a_qr_code(batch):
    # a fully paid (or fully exempt) bill has nothing to scan: the notice must not invite a payment
    bill = Bill.objects.get(payer__code="HS01")
    Bill.objects.filter(pk=bill.pk).update(amount_paid=bill.amount_due, status=BillStatus.PAID)
    paid = notices_pdf(bills=[Bill.objects.get(pk=bill.pk)])
    unpaid = notices_pdf(bills=[Bill.objects.get(payer__code="HS02")])
    assert page_count(paid) == 1
    assert b"/Subtype /Image" not in paid and b"/Subtype /Image" in unpaid


def test_notices_command_writes_the_pdf(batch, tmp_path):
    out = tmp_path / "giay-bao-6A.pdf"
    call_command("notices", "--batch", str(batch.pk), "--class", "6A", "-o", str(out), stdout=io.StringIO())
    assert page_count(out.read_bytes()) == 3
    with pytest.raises(CommandError):
        call_command("notices", "--batch", str(batch.pk + 1000), "-o", str(out))


def test_a_long_schedule_still_fits_one_page_per_bill(make_institution):
    # given a long institution name, a partly paid bill and 20 lines (table font shrinks to fit)
    inst = make_institution(name="Trường Trung học phổ thông chuyên Bắc Ninh – cơ sở 2 (phân hiệu Kinh Bắc, khu đô thị mới)")
    schedule = [LineInput(name=f"Tiền ăn bán trú, nước uống và vệ sinh tháng 11/2026 – đợt {i + 1}", amount=150_000 + i,
                          kind=FeeKind.MEALS_BOARDING) for i in range(20)]
    batch = bills_bulk_issue(actor=None, institution=inst, rows=[{"code": "A", "name": "Lê An"},
                                                                  {"code": "B", "name": "Lê Bình"}],
                             schedule=schedule, due_date=DUE, batch_name="Thu tháng 11/2026")
    Bill.objects.filter(payer__code="B").update(amount_paid=300_000, status=BillStatus.PARTIALLY_PAID)
    # then each bill is still exactly one page
    assert page_count(notices_for_batch(batch=batch)) == 2
