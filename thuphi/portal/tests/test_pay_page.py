"""The payer's page /pay/<reference> and its QR images, through Django's test client.

The payer reaches this page from a paper notice or a text message, often on a cheap phone:
everything must be in the HTML (no JavaScript), and nothing personal beyond a masked name.
"""
from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from django.utils import timezone

from thuphi.billing import services as bill_services
from thuphi.billing import vietqr
from thuphi.billing.models import Bill, BillStatus
from thuphi.registry.services import payer_upsert

pytestmark = pytest.mark.django_db

PAYER_NAME = "Nguyễn Thị Lan"
PAYER_PHONE = "0912345678"


@pytest.fixture
def due_date():
    return timezone.localdate() + dt.timedelta(days=15)


@pytest.fixture
def bill(institution, cashier, due_date) -> Bill:
    payer = payer_upsert(institution=institution, code="HS001", name=PAYER_NAME, phone=PAYER_PHONE,
                         class_name="3A")
    return bill_services.bill_create(
        actor=cashier, institution=institution, payer=payer, due_date=due_date,
        items=[bill_services.LineInput(name="Tiền ăn bán trú tháng 11", amount=450_000, kind="meals_boarding"),
               bill_services.LineInput(name="Bảo hiểm y tế học sinh", amount=884_520, kind="student_insurance")],
    )


def html_of(response) -> str:
    return response.content.decode("utf-8")


def decode_png(png: bytes) -> list[str]:
    """Every QR text zxing-cpp finds in a PNG."""
    import zxingcpp
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("L")
    return [r.text for r in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]


# --- an open bill -----------------------------------------------------------------------------


def test_pay_page_shows_everything_needed_to_transfer(client, bill, due_date):
    # given an open bill of 1.334.520 đ at Vietcombank
    # when the payer opens its page
    r = client.get(f"/pay/{bill.reference}")
    # then it shows the amount in Vietnamese format, the due date dd/mm/yyyy, and the transfer details
    assert r.status_code == 200
    html = html_of(r)
    assert "1.334.520 đ" in html
    assert due_date.strftime("%d/%m/%Y") in html
    assert re.search(r"\d{2}/\d{2}/\d{4}", html)
    assert "Vietcombank" in html
    assert "1023456701" in html
    assert "TRUONG TIEU HOC SO 1" in html
    assert bill.reference in html
    assert "Trường Tiểu học Kinh Bắc" in html
    # and the line items with their amounts
    assert "Tiền ăn bán trú tháng 11" in html and "450.000 đ" in html
    assert "884.520 đ" in html
    # and not the English or raw forms
    assert "1334520 đ" not in html and "1,334,520" not in html
    assert due_date.isoformat() not in html


def test_pay_page_embeds_the_qr_as_inline_svg_of_the_bills_payload(client, bill):
    r = client.get(f"/pay/{bill.reference}")
    html = html_of(r)
    # then the QR is an inline <svg>, exactly segno's rendering of the bill's VietQR payload
    assert '<svg' in html and 'class="vietqr"' in html
    assert vietqr.render_svg(bill.qr_payload, scale=5) in html
    # and the payload itself says the right bank, account, amount and reference
    qr = vietqr.parse_payload(bill.qr_payload)
    assert (qr.bank_bin, qr.account_number, qr.amount, qr.purpose) == (
        "970436", "1023456701", 1_334_520, bill.reference)
    # and it is not an <img> pointing elsewhere (works offline once loaded, and with images off)
    assert "<img" not in html
    # and the PNG download link is there
    assert f'href="/pay/{bill.reference}/qr.png"' in html


def test_pay_page_needs_no_javascript(client, bill):
    r = client.get(f"/pay/{bill.reference}")
    html = html_of(r).lower()
    # then there is no script at all, inline or external, and no inline event handler
    assert "<script" not in html
    assert "javascript:" not in html
    assert not re.search(r"\son[a-z]+\s*=", html)


def test_pay_page_masks_the_payer_name_and_never_shows_the_phone(client, bill):
    r = client.get(f"/pay/{bill.reference}")
    html = html_of(r)
    # then the name is shortened enough to recognise, not to identify
    assert "Nguyễn T. L." in html
    assert PAYER_NAME not in html
    assert "Thị Lan" not in html
    # and the phone never appears, not even in part beyond what a mask would show
    assert PAYER_PHONE not in html
    assert "912345678" not in html and "12345678" not in html


def test_reference_is_matched_case_insensitively(client, bill):
    r = client.get(f"/pay/{bill.reference.lower()}")
    assert r.status_code == 200
    assert bill.reference in html_of(r)


def test_pay_page_cannot_be_posted_to(client, bill):
    r = client.post(f"/pay/{bill.reference}")
    assert r.status_code == 405


# --- unknown reference ------------------------------------------------------------------------


def test_unknown_reference_gives_a_friendly_404_page(client, db):
    # when a payer types a reference that does not exist
    r = client.get("/pay/TPZZZZZZZZ")
    # then the answer is a 404 with an explanation and a way forward, not a stack trace
    assert r.status_code == 404
    html = html_of(r)
    assert "Không tìm thấy mã thanh toán" in html
    assert "TPZZZZZZZZ" in html
    assert 'href="/lookup"' in html
    assert "Traceback" not in html and "Exception" not in html
    # and no QR, no bank account and no script
    assert "<svg" not in html
    assert "<script" not in html.lower()


def test_unknown_reference_is_escaped_and_cut(client, db):
    r = client.get("/pay/%3Cscript%3Ealert(1)")
    assert r.status_code == 404
    html = html_of(r)
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)" in html
    long_ref = "A" * 300
    r = client.get(f"/pay/{long_ref}")
    assert r.status_code == 404
    # the message quotes at most 32 characters of whatever was typed
    assert f"“{'A' * 32}”" in html_of(r)


def test_any_unknown_address_gets_the_friendly_404_not_djangos_bare_one(client, db):
    for path in ("/pay/", "/pay/TPZZZZZZZZ/extra", "/no-such-page"):
        r = client.get(path)
        assert r.status_code == 404, path
        html = html_of(r)
        assert "Không tìm thấy trang" in html, path
        assert "The requested resource was not found" not in html
        assert "Traceback" not in html and "<script" not in html.lower()


# --- cancelled, paid ---------------------------------------------------------------------------


def test_cancelled_bill_says_so_and_shows_no_qr_nor_account(client, bill, cashier):
    # given a bill the school cancelled
    bill_services.bill_cancel(actor=cashier, bill=bill, reason="Lập trùng phiếu")
    # when the payer opens its page
    r = client.get(f"/pay/{bill.reference}")
    # then it clearly says the bill is cancelled and why
    assert r.status_code == 200
    html = html_of(r)
    assert "Phiếu thu này đã bị hủy" in html
    assert "Không chuyển tiền theo phiếu này" in html
    assert "Lập trùng phiếu" in html
    assert 'data-status="cancelled"' in html
    # and nothing invites a transfer: no QR, no download link, no account number
    assert "<svg" not in html
    assert "qr.png" not in html
    assert "1023456701" not in html
    assert "Nội dung chuyển khoản" not in html


def test_paid_bill_thanks_the_payer_and_shows_no_qr(client, bill, api_as, cashier):
    # given a bill paid in full by a transfer recorded by the cashier
    r = api_as(cashier).post(f"/api/v1/bills/{bill.reference}/payments", {"method": "transfer", "amount": 1_334_520})
    assert r.status_code == 201, r.content
    # when its page is opened
    html = html_of(client.get(f"/pay/{bill.reference}"))
    # then it says paid, thanks, and offers no QR
    assert 'data-status="paid"' in html
    assert "Phiếu thu đã được thanh toán đủ" in html
    assert "<svg" not in html
    assert client.get(f"/pay/{bill.reference}/qr.png").status_code == 404


def test_partially_paid_bill_shows_the_outstanding_amount_and_qr_for_it(client, bill, api_as, cashier):
    # given 334.520 đ already paid
    r = api_as(cashier).post(f"/api/v1/bills/{bill.reference}/payments", {"method": "transfer", "amount": 334_520})
    assert r.status_code == 201, r.content
    html = html_of(client.get(f"/pay/{bill.reference}"))
    # then the page shows what is left, and the QR asks for exactly that
    assert "334.520 đ" in html and "1.000.000 đ" in html
    r = client.get(f"/pay/{bill.reference}/qr.svg")
    assert r.status_code == 200
    bill.refresh_from_db()
    assert bill.status == BillStatus.PARTIALLY_PAID
    expected = bill_services.qr_payload_for(bank_account=bill.bank_account, amount=1_000_000,
                                            reference=bill.reference)
    assert vietqr.render_svg(expected, scale=5) in html
    assert vietqr.render_svg(bill.qr_payload, scale=5) not in html


# --- QR image endpoints ------------------------------------------------------------------------


def test_qr_svg_endpoint_returns_an_svg_image(client, bill):
    r = client.get(f"/pay/{bill.reference}/qr.svg")
    assert r.status_code == 200
    assert r["Content-Type"] == "image/svg+xml"
    body = r.content.decode()
    assert body.startswith("<svg") and body.rstrip().endswith("</svg>")
    assert body == vietqr.render_svg(bill.qr_payload, scale=6)
    assert "private" in r["Cache-Control"]


def test_qr_png_endpoint_returns_a_png_that_decodes_to_the_bill(client, bill):
    r = client.get(f"/pay/{bill.reference}/qr.png")
    assert r.status_code == 200
    assert r["Content-Type"] == "image/png"
    assert r.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert bill.reference in r["Content-Disposition"]
    # and a real QR decoder reads back the bill's payload
    texts = decode_png(r.content)
    assert texts == [bill.qr_payload]
    qr = vietqr.parse_payload(texts[0])
    assert (qr.bank_bin, qr.account_number, qr.amount, qr.purpose) == (
        "970436", "1023456701", 1_334_520, bill.reference)


@pytest.mark.parametrize("suffix", ["qr.svg", "qr.png"])
def test_qr_endpoints_404_for_cancelled_and_unknown_bills(client, bill, cashier, suffix):
    bill_services.bill_cancel(actor=cashier, bill=bill, reason="Sai số tiền")
    r = client.get(f"/pay/{bill.reference}/{suffix}")
    assert r.status_code == 404
    assert not r["Content-Type"].startswith("image/")
    r = client.get(f"/pay/TPNOSUCHREF/{suffix}")
    assert r.status_code == 404
    assert not r["Content-Type"].startswith("image/")
