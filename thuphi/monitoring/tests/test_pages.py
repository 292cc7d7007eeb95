"""The dashboard, its exports and the report pages, through Django's test client."""
from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from thuphi.core.models import Role
from thuphi.monitoring.models import AggregateReport
from thuphi.monitoring.tests.conftest import PERIOD, SENTENCE, TOTALS

pytestmark = pytest.mark.django_db

BG = f"area=24&sector=health&from={PERIOD[0]}&to={PERIOD[1]}"


@pytest.fixture
def as_monitor(client, monitor):
    client.force_login(monitor)
    return client


def test_dashboard_needs_login(client):
    r = client.get("/monitoring/")
    assert r.status_code == 302 and r.url.startswith("/staff/login/")


def test_dashboard_shows_the_replayed_period(as_monitor, bac_giang_reports):
    r = as_monitor.get(f"/monitoring/?{BG}")
    assert r.status_code == 200
    html = r.content.decode()
    assert SENTENCE in html
    assert "98,88%" in html and "90,59%" in html
    assert 'data-tile="share_value"' in html and "light-green" in html
    assert "<svg" in html and "<script" not in html
    # drill-down links go to communes; institutions are listed
    assert "area=" in html and "BG-YT-01" in html
    assert 'data-export="xlsx"' in html and 'data-export="pdf"' in html


def test_dashboard_for_another_province_is_refused(as_monitor):
    r = as_monitor.get("/monitoring/?area=01")
    assert r.status_code == 403


def test_bad_filters_fall_back_with_a_message(as_monitor):
    r = as_monitor.get("/monitoring/?area=24&from=2024-99-01", follow=True)
    assert r.status_code == 200 and "YYYY-MM-DD" in r.content.decode()


def test_drill_down_to_a_commune_and_an_institution(as_monitor, bac_giang_units, bac_giang_reports):
    inst = bac_giang_units[0]
    r = as_monitor.get(f"/monitoring/?area={inst.commune_id}&sector=health&from={PERIOD[0]}&to={PERIOD[1]}")
    assert r.status_code == 200 and inst.name in r.content.decode()
    r = as_monitor.get(f"/monitoring/?{BG}&institution={inst.code}")
    html = r.content.decode()
    assert r.status_code == 200 and "tổng số 1/1 đơn vị" in html


def test_xlsx_export_has_the_narrative_and_numbers_as_numbers(as_monitor, bac_giang_reports):
    r = as_monitor.get(f"/monitoring/export.xlsx?{BG}")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in r["Content-Disposition"]
    wb = load_workbook(io.BytesIO(r.content))
    assert {"Tom tat", "Theo thang", "Theo dia ban", "Theo don vi", "Theo loai hinh", "Theo khoan thu",
            "Theo hinh thuc", "Cham nhat", "Bao cao tong hop"} <= set(wb.sheetnames)
    summary = [c for row in wb["Tom tat"].iter_rows(values_only=True) for c in row if c is not None]
    assert SENTENCE in summary
    units = list(wb["Theo don vi"].iter_rows(values_only=True))
    assert len(units) == 25
    payments_col = units[0].index("Số giao dịch")
    assert sum(row[payments_col] for row in units[1:]) == TOTALS["payments"]
    assert all(isinstance(row[payments_col], int) for row in units[1:])
    shares = [row[units[0].index("Tỷ lệ theo giá trị (%)")] for row in units[1:]]
    assert all(isinstance(s, float) for s in shares)


def test_pdf_export_has_the_narrative(as_monitor, bac_giang_reports):
    r = as_monitor.get(f"/monitoring/export.pdf?{BG}")
    assert r.status_code == 200 and r["Content-Type"] == "application/pdf"
    assert r.content.startswith(b"%PDF") and b"Roboto" in r.content
    text = "".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(r.content)).pages)
    flat = " ".join(text.split())
    assert SENTENCE in flat


def test_institution_user_submits_through_the_form_and_the_province_approves(client, monitor, make_user,
                                                                               bac_giang_units):
    inst = bac_giang_units[0]
    user = make_user("ketoan", Role.ACCOUNTANT, institution=inst)
    client.force_login(user)
    form = {"institution": inst.code, "period_start": "2025-01-01", "period_end": "2025-01-31", "payments": "100",
            "payments_cashless": "120", "value": "1000000", "value_cashless": "900000",
            "cashless_methods": ["transfer"]}
    r = client.post("/monitoring/reports/new", form)
    assert r.status_code == 200 and "lớn hơn tổng số giao dịch" in r.content.decode()
    form["payments_cashless"] = "90"
    r = client.post("/monitoring/reports/new", form, follow=True)
    assert "chờ tỉnh duyệt" in r.content.decode()
    report = AggregateReport.objects.get()
    assert report.source == "form" and report.status == "submitted"
    # an institution user sees no approve button and cannot approve
    assert "data-approve" not in client.get("/monitoring/reports/").content.decode()
    client.post(f"/monitoring/reports/{report.pk}/approve")
    assert AggregateReport.objects.get().status == "submitted"
    # the province approves from the list
    client.force_login(monitor)
    page = client.get("/monitoring/reports/").content.decode()
    assert f'data-report="{report.pk}"' in page and "data-approve" in page
    r = client.post(f"/monitoring/reports/{report.pk}/approve", follow=True)
    assert "Đã duyệt" in r.content.decode()
    assert AggregateReport.objects.get().status == "approved"


def test_province_returns_with_a_reason(client, monitor, system_admin, bac_giang_units):
    from thuphi.monitoring import services

    inst = bac_giang_units[0]
    report = services.report_submit(actor=system_admin, data=services.ReportInput(
        institution=inst.code, period_start=__import__("datetime").date(2025, 1, 1),
        period_end=__import__("datetime").date(2025, 1, 31), payments=10, payments_cashless=5, value=100,
        value_cashless=50, cashless_methods=["card"]))
    client.force_login(monitor)
    client.post(f"/monitoring/reports/{report.pk}/return", {"reason": ""})
    assert AggregateReport.objects.get().status == "submitted"
    client.post(f"/monitoring/reports/{report.pk}/return", {"reason": "Thiếu số liệu thẻ"})
    report.refresh_from_db()
    assert report.status == "returned" and report.return_reason == "Thiếu số liệu thẻ"


def _upload(client, name: str, content: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post("/monitoring/reports/upload", {"file": SimpleUploadedFile(name, content)})


def test_upload_the_template_back_filled_in(as_monitor, bac_giang_units):
    r = as_monitor.get("/monitoring/reports/template.xlsx")
    assert r.status_code == 200
    wb = load_workbook(io.BytesIO(r.content))
    ws = wb.active
    rows = list(ws.iter_rows(min_row=2))
    assert len(rows) == 24 and rows[0][0].value == "BG-YT-01"
    # fill in two institutions, leave the others empty
    import datetime as dt

    for row, (p, pc, v, vc) in zip(rows[:2], [(100, 90, 5_000_000, 4_000_000), (200, 150, 8_000_000, 6_000_000)]):
        row[2].value, row[3].value = dt.date(2025, 1, 1), dt.date(2025, 1, 31)
        row[4].value, row[5].value, row[6].value, row[7].value = p, pc, v, vc
        row[8].value, row[9].value = "Chuyển khoản, thẻ", "hospital_management"
    out = io.BytesIO()
    wb.save(out)
    r = _upload(as_monitor, "bao-cao.xlsx", out.getvalue())
    assert r.status_code == 302, r.content.decode()[-2000:]
    reports = AggregateReport.objects.order_by("institution__code")
    assert [(x.institution.code, x.payments, x.cashless_methods) for x in reports] == [
        ("BG-YT-01", 100, ["card", "transfer"]), ("BG-YT-02", 200, ["card", "transfer"])]
    assert all(x.source == "upload" for x in reports)


def test_upload_with_errors_writes_nothing_and_lists_them_by_row(as_monitor, bac_giang_units):
    csv = ("\ufeffma_don_vi,ten_don_vi,tu_ngay,den_ngay,so_giao_dich,so_giao_dich_khong_dung_tien_mat,gia_tri,"
           "gia_tri_khong_dung_tien_mat,hinh_thuc_khong_dung_tien_mat,nen_tang_so,ghi_chu\n"
           "BG-YT-01,,01/01/2025,31/01/2025,65.902,65.161,37.876.956.607,34.311.921.957,transfer,,\n"
           "BG-YT-02,,01/01/2025,31/01/2025,10,20,100,50,transfer,,\n"
           "KHONG-CO,,01/01/2025,31/01/2025,10,5,100,50,transfer,,\n"
           "BG-YT-03,,01/01/2025,31/13/2025,10,5,100,50,transfer,,\n"
           "BG-YT-01,,15/01/2025,20/01/2025,10,5,100,50,transfer,,\n")
    r = _upload(as_monitor, "bao-cao.csv", csv.encode("utf-8"))
    assert r.status_code == 422
    html = r.content.decode()
    assert AggregateReport.objects.count() == 0
    assert "Ngày “31/13/2025” không đọc được" in html
    r = _upload(as_monitor, "bao-cao.csv", csv.replace("31/13/2025", "31/01/2025").encode("utf-8"))
    html = r.content.decode()
    assert r.status_code == 422 and AggregateReport.objects.count() == 0
    assert "lớn hơn tổng số giao dịch" in html and "Không có đơn vị mã" in html and "Trùng kỳ với dòng 2" in html


def test_csv_template_and_thousands_separators(as_monitor, bac_giang_units):
    r = as_monitor.get("/monitoring/reports/template.csv")
    assert r.status_code == 200 and r.content.startswith("\ufeff".encode())
    csv = ("ma_don_vi;tu_ngay;den_ngay;so_giao_dich;so_giao_dich_khong_dung_tien_mat;gia_tri;"
           "gia_tri_khong_dung_tien_mat;hinh_thuc_khong_dung_tien_mat\n"
           "BG-YT-05;16/03/2024;15/04/2024;65.902;65.161;37.876.956.607;34.311.921.957;transfer\n")
    r = _upload(as_monitor, "x.csv", csv.encode())
    assert r.status_code == 302
    rep = AggregateReport.objects.get()
    assert (rep.payments, rep.value_cashless) == (65_902, 34_311_921_957)


def test_monitor_pages_fit_the_menu(as_monitor):
    html = as_monitor.get("/monitoring/reports/").content.decode()
    assert "Báo cáo tổng hợp" in html and "/monitoring/reports/new" in html
