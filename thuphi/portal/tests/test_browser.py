"""End to end in a real browser: Debian's chromium driven by Playwright against a live server.

The main scenario is the one a school runs every month: a cashier logs in, issues a bill
through the form, opens its payment page, and the QR *as the browser draws it* decodes back
to the right bank, account, amount and reference. The QR is read from a screenshot with
zxing-cpp, so the test proves what a payer's banking app would see.

Screenshots go to test-artifacts/ (gitignored) for a human to look at.
"""
from __future__ import annotations

import datetime as dt
import io
import os
import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from thuphi.billing import services as bill_services
from thuphi.billing import vietqr
from thuphi.billing.models import Bill, BillStatus
from thuphi.registry.services import payer_upsert

# Playwright's sync API runs an event loop in this thread; Django would otherwise refuse ORM calls.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [
    pytest.mark.browser,
    # transactional: the live server's thread must see what the test writes. serialized_rollback
    # puts back the communes loaded by migrations, which the flush after each test removes.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(django_settings.BASE_DIR).parent / "test-artifacts"
PASSWORD = "Mật-khẩu-dài-2026"  # what conftest's make_user sets


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def new_page(chromium):
    """Open a page in a fresh context (own cookies); every context is closed after the test."""
    contexts = []

    def make(**context_options):
        context = chromium.new_context(locale="vi-VN", **context_options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page(viewport={"width": 1280, "height": 900})


@pytest.fixture
def public_base_url(settings, live_server):
    # The staff page links payers to PUBLIC_BASE_URL; point it at the live server.
    settings.PUBLIC_BASE_URL = live_server.url
    return live_server.url


@pytest.fixture
def bill(institution, cashier) -> Bill:
    payer = payer_upsert(institution=institution, code="HS001", name="Nguyễn Thị Lan", phone="0912345678")
    return bill_services.bill_create(
        actor=cashier, institution=institution, payer=payer, due_date=timezone.localdate() + dt.timedelta(days=15),
        items=[bill_services.LineInput(name="Tiền ăn bán trú tháng 11", amount=450_000, kind="meals_boarding"),
               bill_services.LineInput(name="Bảo hiểm y tế học sinh", amount=884_520, kind="student_insurance")],
    )


def artifact(name: str) -> str:
    ARTIFACTS.mkdir(exist_ok=True)
    return str(ARTIFACTS / name)


def decode_qr(png: bytes) -> list[str]:
    """Every QR code zxing-cpp reads in a PNG image."""
    import zxingcpp
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("L")
    return [r.text for r in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]


def assert_no_script(page) -> None:
    assert page.evaluate("document.scripts.length") == 0
    assert page.locator("script").count() == 0


# --- the issue's scenario ---------------------------------------------------------------------


def test_cashier_issues_a_bill_and_its_qr_decodes_to_the_right_transfer(page, live_server, public_base_url,
                                                                         cashier, institution):
    # given a cashier who is not logged in
    page.goto(f"{live_server.url}/staff/")
    # then they land on the login page
    assert page.url.startswith(f"{live_server.url}/staff/login/")
    # when they log in
    page.fill("#id_username", "thungan")
    page.fill("#id_password", PASSWORD)
    page.locator("main button.primary").click()
    page.wait_for_url(f"{live_server.url}/staff/")
    # and open the form from the navigation
    page.locator("header nav").get_by_role("link", name="Lập phiếu thu").click()
    page.wait_for_url(f"{live_server.url}/staff/bills/new")
    # and issue a bill of two items
    due = timezone.localdate() + dt.timedelta(days=10)
    page.select_option("#id_institution", "BN-TH-01")
    page.fill("#id_payer_code", "HS042")
    page.fill("#id_payer_name", "Trần Văn Minh")
    page.fill("#id_payer_phone", "0901234567")
    page.fill("#id_class_name", "4B")
    page.fill("#id_due_date", due.isoformat())
    page.fill("#id_item_0_name", "Tiền ăn bán trú tháng 12")
    page.select_option("#id_item_0_kind", "meals_boarding")
    page.fill("#id_item_0_amount", "450000")
    page.fill("#id_item_1_name", "Bảo hiểm y tế học sinh")
    page.select_option("#id_item_1_kind", "student_insurance")
    page.fill("#id_item_1_amount", "884520")
    page.screenshot(path=artifact("staff-bill-new.png"), full_page=True)
    page.locator("main button.primary").click()
    # then the browser is on the new bill's detail page, which confirms it
    page.wait_for_url(re.compile(r"/staff/bills/TP[0-9A-Z]+$"))
    reference = page.locator("h1 [data-reference]").inner_text().strip()
    assert page.url == f"{live_server.url}/staff/bills/{reference}"
    assert f"Đã lập phiếu thu {reference}." in page.locator(".messages").inner_text()
    assert "1.334.520 đ" in page.locator("dl.facts").inner_text()
    bill = Bill.objects.get(reference=reference)
    assert bill.institution == institution and bill.amount_due == 1_334_520 and bill.created_by == cashier
    page.screenshot(path=artifact("staff-bill-detail.png"), full_page=True)

    # when the cashier opens the payment page from the link they would send to the payer
    page.locator("[data-pay-link]").click()
    page.wait_for_url(f"{live_server.url}/pay/{reference}")
    # then the page states the transfer in Vietnamese format, with no script at all
    assert_no_script(page)
    facts = page.locator("dl.facts")
    assert facts.locator("dd.amount").first.inner_text().strip() == "1.334.520 đ"
    assert due.strftime("%d/%m/%Y") in facts.inner_text()
    assert page.locator("[data-account]").inner_text().strip() == "1023456701"
    assert page.locator("dd[data-reference]").inner_text().strip() == reference
    assert "Vietcombank" in facts.inner_text()
    assert "Trần V. M." in facts.inner_text()
    assert "Trần Văn Minh" not in page.content()
    page.screenshot(path=artifact("pay-desktop.png"), full_page=True)

    # and the QR the browser draws decodes back to the right bank, account, amount and reference
    qr_element = page.locator("figure.qr svg")
    assert qr_element.is_visible()
    shot = qr_element.screenshot(path=artifact("pay-qr-element.png"))
    texts = decode_qr(shot)
    assert len(texts) == 1, texts
    qr = vietqr.parse_payload(texts[0])
    assert qr.bank_bin == "970436"
    assert qr.account_number == "1023456701"
    assert qr.amount == 1_334_520
    assert qr.purpose == reference
    assert qr.is_dynamic and qr.currency == "704" and qr.country == "VN"
    assert texts[0] == bill.qr_payload

    # and the downloadable PNG says the same
    href = page.locator("figure.qr a[download]").get_attribute("href")
    response = page.request.get(f"{live_server.url}{href}")
    assert response.status == 200 and response.headers["content-type"] == "image/png"
    assert decode_qr(response.body()) == [bill.qr_payload]


# --- phone-sized screen -----------------------------------------------------------------------


def test_pay_page_fits_a_phone_without_horizontal_scroll(new_page, live_server, bill):
    # given a payer on a small phone
    page = new_page(viewport={"width": 375, "height": 740}, device_scale_factor=2, is_mobile=True, has_touch=True)
    # when they open the payment page
    page.goto(f"{live_server.url}/pay/{bill.reference}")
    page.screenshot(path=artifact("pay-phone.png"), full_page=True)
    page.screenshot(path=artifact("pay-phone-first-screen.png"))
    # then nothing is wider than the screen
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth,"
                           " document.body.scrollWidth]")
    assert widths[0] <= widths[1] and widths[2] <= widths[1], widths
    # and the QR and the amount are on screen horizontally, the QR whole on the first screen
    qr_box = page.locator("figure.qr svg").bounding_box()
    amount = page.locator("dd.amount").first
    amount_box = amount.bounding_box()
    assert qr_box and amount_box
    assert qr_box["x"] >= 0 and qr_box["x"] + qr_box["width"] <= 375, qr_box
    assert qr_box["y"] + qr_box["height"] <= 740, qr_box
    assert qr_box["width"] >= 200, qr_box  # big enough to scan from another phone's camera
    assert amount_box["x"] >= 0 and amount_box["x"] + amount_box["width"] <= 375, amount_box
    assert amount.is_visible() and amount.inner_text().strip() == "1.334.520 đ"
    # and the QR still decodes at that size
    assert decode_qr(page.locator("figure.qr svg").screenshot()) == [bill.qr_payload]


def test_staff_pages_fit_a_phone(new_page, live_server, cashier, bill):
    page = new_page(viewport={"width": 375, "height": 740}, is_mobile=True)
    page.goto(f"{live_server.url}/staff/login/")
    page.fill("#id_username", "thungan")
    page.fill("#id_password", PASSWORD)
    page.locator("main button.primary").click()
    page.wait_for_url(f"{live_server.url}/staff/")
    for name, path in (("staff", "/staff/"), ("staff-bill-new", "/staff/bills/new"),
                       ("staff-bill-detail", f"/staff/bills/{bill.reference}")):
        page.goto(f"{live_server.url}{path}")
        page.screenshot(path=artifact(f"phone-{name}.png"), full_page=True)
        scroll, client = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert scroll <= client, (path, scroll, client)


# --- without JavaScript, in English -----------------------------------------------------------


def test_payer_finds_and_opens_a_bill_with_javascript_off(new_page, live_server, bill):
    # given a browser with JavaScript disabled
    page = new_page(viewport={"width": 375, "height": 740}, java_script_enabled=False)
    # when the payer looks up their bills from the home page
    page.goto(live_server.url + "/")
    page.fill("#id_institution", "BN-TH-01")
    page.fill("#id_payer_code", "HS001")
    page.fill("#id_phone_last4", "5678")
    page.locator("main button.primary").click()
    page.wait_for_url(f"{live_server.url}/lookup")
    # then the open bill is listed, and its link leads to a page with a readable QR
    page.get_by_role("link", name=bill.reference).click()
    page.wait_for_url(f"{live_server.url}/pay/{bill.reference}")
    assert decode_qr(page.locator("figure.qr svg").screenshot()) == [bill.qr_payload]
    assert "0912345678" not in page.content()


def test_cancelled_bill_page_in_the_browser_shows_no_qr(page, live_server, bill, cashier):
    bill_services.bill_cancel(actor=cashier, bill=bill, reason="Lập trùng phiếu")
    page.goto(f"{live_server.url}/pay/{bill.reference}")
    page.screenshot(path=artifact("pay-cancelled.png"), full_page=True)
    assert "Phiếu thu này đã bị hủy" in page.locator("main").inner_text()
    assert page.locator("svg").count() == 0
    assert decode_qr(page.screenshot(full_page=True)) == []
    assert Bill.objects.get(pk=bill.pk).status == BillStatus.CANCELLED


def test_english_button_switches_the_page(page, live_server, bill):
    page.goto(f"{live_server.url}/pay/{bill.reference}")
    assert page.locator("html").get_attribute("lang") == "vi"
    page.get_by_role("button", name="English").click()
    page.wait_for_url(f"{live_server.url}/pay/{bill.reference}")
    assert page.locator("html").get_attribute("lang") == "en"
    text = page.locator("main").inner_text()
    assert "Amount due" in text and "1,334,520 VND" in text
    page.screenshot(path=artifact("pay-english.png"), full_page=True)
    # and back
    page.get_by_role("button", name="Tiếng Việt").click()
    page.wait_for_url(f"{live_server.url}/pay/{bill.reference}")
    assert "Số tiền phải nộp" in page.locator("main").inner_text()
