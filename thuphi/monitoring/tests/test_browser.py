"""Monitoring end to end in Debian's chromium (Playwright) against a live server.

1. A provincial monitor filters the dashboard to Bắc Giang's reported period and downloads both exports.
2. An institution user submits a report through the form; the province approves it; the figures move.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from thuphi.core.models import Role
from thuphi.monitoring.models import AggregateReport

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [
    pytest.mark.browser,
    # transactional, so the live server's thread sees the test's rows; serialized_rollback restores the
    # administrative units and the shipped plans after the flush.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(django_settings.BASE_DIR).parent / "test-artifacts"
PASSWORD = "Mật-khẩu-dài-2026"


@pytest.fixture(scope="module")
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
    contexts = []

    def make(**options):
        context = chromium.new_context(locale="vi-VN", accept_downloads=True, **options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def artifact(name: str) -> str:
    ARTIFACTS.mkdir(exist_ok=True)
    return str(ARTIFACTS / name)


def login(page, base: str, username: str, path: str) -> None:
    page.goto(f"{base}{path}")
    assert "/staff/login/" in page.url
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.locator("main button.primary").click()
    page.wait_for_url(re.compile(re.escape(base) + re.escape(path.split("?")[0])))


def tile(page, indicator: str) -> str:
    return page.locator(f'[data-tile="{indicator}"] [data-value]').inner_text().strip()


def test_monitor_filters_the_dashboard_and_downloads_both_exports(new_page, live_server, monitor,
                                                                   bac_giang_reports, tmp_path):
    from openpyxl import load_workbook

    from thuphi.monitoring.tests.conftest import SENTENCE

    page = new_page(viewport={"width": 1280, "height": 900})
    login(page, live_server.url, "giamsat", "/monitoring/")
    # the default view (this year) has none of 2024's reports
    assert "tổng số 24/24 đơn vị" in page.locator("[data-narrative]").inner_text()
    # when the monitor filters: health, 16/3/2024 – 15/4/2024
    page.select_option("#id_sector", "health")
    page.fill("#id_from", "2024-03-16")
    page.fill("#id_to", "2024-04-15")
    page.locator("#filters button[type=submit]").click()
    page.wait_for_url(re.compile(r"from=2024-03-16"))
    # then the tiles and the summary give back the reported figures
    assert tile(page, "share_count") == "98,88%"
    assert tile(page, "share_value") == "90,59%"
    assert page.locator("[data-narrative]").inner_text().strip() == SENTENCE
    assert "light-green" in page.locator('[data-tile="share_value"]').get_attribute("class")
    assert page.locator("svg.chart.trend").is_visible()
    assert page.locator("script").count() == 0
    page.screenshot(path=artifact("monitoring-dashboard.png"), full_page=True)

    # drill down: a commune, then back to the province through the breadcrumbs
    first = page.locator('[data-breakdown="areas"] tbody tr a').first
    commune = first.inner_text().strip()
    first.click()
    page.wait_for_url(re.compile(r"area=\d{5}"))
    assert commune in page.locator(".crumbs").inner_text()
    page.locator(".crumbs a").last.click()
    page.wait_for_url(re.compile(r"area=24"))

    # and both exports download with the summary in them
    with page.expect_download() as dl:
        page.locator('[data-export="xlsx"]').click()
    xlsx = tmp_path / dl.value.suggested_filename
    dl.value.save_as(xlsx)
    assert xlsx.name.endswith(".xlsx")
    wb = load_workbook(xlsx)
    cells = [c for row in wb["Tom tat"].iter_rows(values_only=True) for c in row if c is not None]
    assert SENTENCE in cells
    with page.expect_download() as dl:
        page.locator('[data-export="pdf"]').click()
    pdf = tmp_path / dl.value.suggested_filename
    dl.value.save_as(pdf)
    assert pdf.name.endswith(".pdf") and pdf.read_bytes().startswith(b"%PDF")


def test_dashboard_fits_a_phone(new_page, live_server, monitor, bac_giang_reports):
    page = new_page(viewport={"width": 375, "height": 740}, is_mobile=True)
    login(page, live_server.url, "giamsat", "/monitoring/?area=24&sector=health&from=2024-03-16&to=2024-04-15")
    page.screenshot(path=artifact("monitoring-phone.png"), full_page=True)
    scroll, client = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert scroll <= client, (scroll, client)
    assert page.locator('[data-tile="share_value"]').is_visible()
    # printable: the filters and buttons are left off paper
    page.emulate_media(media="print")
    assert not page.locator("#filters").is_visible()
    assert page.locator("[data-narrative]").is_visible()


def test_institution_submits_the_province_approves_and_the_figures_move(new_page, live_server, monitor, make_user,
                                                                        bac_giang_units):
    inst = bac_giang_units[0]
    make_user("ketoan", Role.ACCOUNTANT, institution=inst)
    kpi_url = "/monitoring/?area=24&sector=health&from=2025-01-01&to=2025-01-31"

    # the province sees nothing for January 2025 yet
    prov = new_page(viewport={"width": 1280, "height": 900})
    login(prov, live_server.url, "giamsat", kpi_url)
    assert tile(prov, "share_count") == "—"

    # the institution's accountant submits January's figures through the form
    unit = new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    login(unit, live_server.url, "ketoan", "/monitoring/reports/new")
    unit.fill("#id_period_start", "2025-01-01")
    unit.fill("#id_period_end", "2025-01-31")
    unit.fill("#id_payments", "1200")
    unit.fill("#id_payments_cashless", "1300")
    unit.fill("#id_value", "840000000")
    unit.fill("#id_value_cashless", "700000000")
    unit.check("input[name=cashless_methods][value=transfer]")
    unit.check("input[name=digital_platforms][value=hospital_management]")
    unit.locator("main button.primary").click()
    # a clear error first: more cashless payments than payments
    assert "lớn hơn tổng số giao dịch" in unit.locator("main").inner_text()
    unit.fill("#id_payments_cashless", "1000")
    unit.locator("main button.primary").click()
    unit.wait_for_url(re.compile(r"/monitoring/reports/$"))
    assert "chờ tỉnh duyệt" in unit.locator(".messages").inner_text()
    unit.screenshot(path=artifact("monitoring-report-submitted-phone.png"), full_page=True)
    report = AggregateReport.objects.get()
    assert report.status == "submitted" and report.submitted_by.username == "ketoan"

    # the province approves it from the list
    prov.goto(f"{live_server.url}/monitoring/reports/")
    row = prov.locator(f'[data-report="{report.pk}"]')
    assert inst.name in row.inner_text()
    row.locator("[data-approve]").click()
    prov.wait_for_url(re.compile(r"/monitoring/reports/"))
    assert "Đã duyệt" in prov.locator(".messages").inner_text()
    assert AggregateReport.objects.get().status == "approved"

    # and the figures move
    prov.goto(f"{live_server.url}{kpi_url}")
    assert tile(prov, "share_count") == "83,33%"
    assert tile(prov, "share_value") == "83,33%"
    assert "1.200 lượt" in prov.locator("[data-narrative]").inner_text()
    prov.screenshot(path=artifact("monitoring-after-approval.png"), full_page=True)
