"""Staff pages: login, issuing and cancelling bills, scoping by role; and the English switch."""
from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import trans_real

from thuphi.billing import services as bill_services
from thuphi.billing.models import Bill, BillLine, BillStatus
from thuphi.core.models import Role
from thuphi.registry.services import payer_upsert

pytestmark = pytest.mark.django_db

PASSWORD = "Mật-khẩu-dài-2026"  # what conftest's make_user sets


@pytest.fixture
def monitor(make_user, institution):
    return make_user("giamsat", Role.PROVINCIAL_MONITOR, province_id=institution.commune.province_id)


@pytest.fixture
def other_institution(make_institution):
    return make_institution(code="BN-TH-02", name="Trường Tiểu học Đông Ngàn")


@pytest.fixture
def other_cashier(make_user, other_institution):
    return make_user("thungan2", Role.CASHIER, institution=other_institution)


@pytest.fixture
def bill(institution, cashier) -> Bill:
    payer = payer_upsert(institution=institution, code="HS001", name="Nguyễn Thị Lan", phone="0912345678")
    return bill_services.bill_create(
        actor=cashier, institution=institution, payer=payer, due_date=timezone.localdate() + dt.timedelta(days=15),
        items=[bill_services.LineInput(name="Tiền ăn bán trú tháng 11", amount=450_000)],
    )


def form_data(institution_code="BN-TH-01", **overrides) -> dict:
    due = timezone.localdate() + dt.timedelta(days=10)
    data = {
        "institution": institution_code, "payer_code": "HS042", "payer_name": "Trần Văn Minh",
        "payer_phone": "0901234567", "class_name": "4B", "due_date": due.isoformat(),
        "item_0_name": "Tiền ăn bán trú tháng 12", "item_0_kind": "meals_boarding", "item_0_amount": "450000",
        "item_1_name": "Bảo hiểm y tế học sinh", "item_1_kind": "student_insurance", "item_1_amount": "884520",
        "item_2_name": "", "item_2_kind": "", "item_2_amount": "",
    }
    data.update(overrides)
    return data


# --- login ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/staff/", "/staff/bills/new", "/staff/bills/TPABCDEFGH"])
def test_staff_pages_require_login(client, db, path):
    # when an anonymous visitor opens a staff page
    r = client.get(path)
    # then they are sent to the login page, and shown nothing of the page
    assert r.status_code == 302
    assert r["Location"].startswith("/staff/login/?next=")
    assert path in r["Location"].replace("%2F", "/")


def test_anonymous_post_issues_nothing(client, institution):
    r = client.post("/staff/bills/new", form_data())
    assert r.status_code == 302 and r["Location"].startswith("/staff/login/")
    assert Bill.objects.count() == 0


def test_login_with_the_right_password_lands_on_the_dashboard(client, cashier):
    r = client.get("/staff/login/")
    assert r.status_code == 200
    assert "<script" not in r.content.decode().lower()
    r = client.post("/staff/login/", {"username": "thungan", "password": PASSWORD})
    assert r.status_code == 302 and r["Location"] == "/staff/"
    assert client.get("/staff/").status_code == 200


def test_login_with_a_wrong_password_fails_without_saying_which_part(client, cashier):
    r = client.post("/staff/login/", {"username": "thungan", "password": "sai-mat-khau"})
    assert r.status_code == 200
    assert "_auth_user_id" not in client.session
    assert client.get("/staff/").status_code == 302


def test_login_honours_next_but_not_an_outside_address(client, cashier):
    r = client.post("/staff/login/?next=/staff/bills/new",
                    {"username": "thungan", "password": PASSWORD, "next": "/staff/bills/new"})
    assert r["Location"] == "/staff/bills/new"
    client.logout()
    r = client.post("/staff/login/", {"username": "thungan", "password": PASSWORD, "next": "https://evil.example/"})
    assert r.status_code == 302 and "evil.example" not in r["Location"]


def test_logout_needs_post(client, cashier):
    client.force_login(cashier)
    assert client.get("/staff/logout/").status_code == 405
    assert "_auth_user_id" in client.session
    r = client.post("/staff/logout/")
    assert r.status_code == 302 and r["Location"] == "/staff/login/"
    assert client.get("/staff/").status_code == 302


# --- issuing ----------------------------------------------------------------------------------


def test_cashier_issues_a_bill_and_is_redirected_to_its_detail(client, cashier):
    # given a logged-in cashier
    client.force_login(cashier)
    r = client.get("/staff/bills/new")
    assert r.status_code == 200
    html = r.content.decode()
    # the form offers only the cashier's own institution
    assert 'value="BN-TH-01"' in html
    assert "<script" not in html.lower()
    # when the form is submitted
    r = client.post("/staff/bills/new", form_data())
    # then one bill exists with both lines, and the browser goes to its detail page
    assert Bill.objects.count() == 1
    bill = Bill.objects.get()
    assert r.status_code == 302
    assert r["Location"] == f"/staff/bills/{bill.reference}"
    assert bill.amount_due == 1_334_520 and bill.status == BillStatus.UNPAID
    assert bill.created_by == cashier
    assert bill.payer.code == "HS042" and bill.payer.name == "Trần Văn Minh" and bill.payer.class_name == "4B"
    assert list(BillLine.objects.filter(bill=bill).order_by("position").values_list("name", "amount", "kind")) == [
        ("Tiền ăn bán trú tháng 12", 450_000, "meals_boarding"),
        ("Bảo hiểm y tế học sinh", 884_520, "student_insurance")]
    # and the detail page confirms it and links to the payer's page
    detail = client.get(r["Location"]).content.decode()
    assert f"Đã lập phiếu thu {bill.reference}." in detail
    assert "1.334.520 đ" in detail
    assert f"/pay/{bill.reference}" in detail
    assert "0901234567" not in detail


def test_invalid_bill_form_is_shown_again_and_issues_nothing(client, cashier):
    client.force_login(cashier)
    # a second line with a name but no amount, and no first line amount
    r = client.post("/staff/bills/new", form_data(item_0_amount="", item_1_amount=""))
    assert r.status_code == 200
    html = r.content.decode()
    assert "Nhập cả tên khoản thu và số tiền, hoặc bỏ trống cả hai." in html
    assert Bill.objects.count() == 0
    # what was typed is kept
    assert "Trần Văn Minh" in html


def test_due_date_before_today_is_refused(client, cashier):
    client.force_login(cashier)
    r = client.post("/staff/bills/new", form_data(due_date=(timezone.localdate() - dt.timedelta(days=1)).isoformat()))
    assert r.status_code == 200
    assert "Hạn nộp không được trước ngày lập phiếu." in r.content.decode()
    assert Bill.objects.count() == 0


def test_cashier_cannot_issue_for_another_institution(client, cashier, other_institution):
    client.force_login(cashier)
    r = client.post("/staff/bills/new", form_data(institution_code="BN-TH-02"))
    assert r.status_code == 200
    assert Bill.objects.count() == 0


def test_provincial_monitor_cannot_issue(client, monitor, institution):
    # given a provincial monitor (read-only)
    client.force_login(monitor)
    # when they open the issue page
    r = client.get("/staff/bills/new")
    # then they are refused and see no form
    assert r.status_code == 403
    html = r.content.decode()
    assert "chỉ có quyền xem" in html
    assert 'name="payer_code"' not in html and 'name="item_0_amount"' not in html
    # and posting directly issues nothing
    r = client.post("/staff/bills/new", form_data())
    assert r.status_code == 403
    assert Bill.objects.count() == 0
    # and nothing on the dashboard offers to issue
    dashboard = client.get("/staff/").content.decode()
    assert 'href="/staff/bills/new"' not in dashboard


def test_provincial_monitor_sees_bills_of_the_province_but_cannot_cancel(client, monitor, bill):
    client.force_login(monitor)
    assert bill.reference in client.get("/staff/").content.decode()
    r = client.get(f"/staff/bills/{bill.reference}")
    assert r.status_code == 200
    html = r.content.decode()
    assert 'name="reason"' not in html
    r = client.post(f"/staff/bills/{bill.reference}", {"reason": "thử hủy"}, follow=True)
    assert "Tài khoản chỉ có quyền xem." in r.content.decode()
    bill.refresh_from_db()
    assert bill.status == BillStatus.UNPAID and bill.cancel_reason == ""


# --- cancelling -------------------------------------------------------------------------------


def test_cashier_cancels_with_a_reason(client, cashier, bill):
    client.force_login(cashier)
    assert 'name="reason"' in client.get(f"/staff/bills/{bill.reference}").content.decode()
    # when the cashier cancels with a reason
    r = client.post(f"/staff/bills/{bill.reference}", {"reason": "Lập trùng phiếu"})
    # then the bill is cancelled, the reason kept, and the page says so
    assert r.status_code == 302 and r["Location"] == f"/staff/bills/{bill.reference}"
    bill.refresh_from_db()
    assert bill.status == BillStatus.CANCELLED
    assert bill.cancel_reason == "Lập trùng phiếu"
    assert bill.cancelled_at is not None
    html = client.get(r["Location"]).content.decode()
    assert "Đã hủy phiếu thu." in html
    assert "Lập trùng phiếu" in html
    assert 'data-status="cancelled"' in html
    # and the cancel form is gone
    assert 'name="reason"' not in html
    # and the payer's page now says cancelled and offers no QR
    pay = client.get(f"/pay/{bill.reference}").content.decode()
    assert "Phiếu thu này đã bị hủy" in pay and "<svg" not in pay


def test_cancel_without_reason_is_refused(client, cashier, bill):
    client.force_login(cashier)
    r = client.post(f"/staff/bills/{bill.reference}", {"reason": ""})
    assert r.status_code == 200
    bill.refresh_from_db()
    assert bill.status == BillStatus.UNPAID


def test_bill_with_a_payment_cannot_be_cancelled(client, cashier, bill, api_as):
    r = api_as(cashier).post(f"/api/v1/bills/{bill.reference}/payments", {"method": "transfer", "amount": 100_000})
    assert r.status_code == 201, r.content
    client.force_login(cashier)
    assert 'name="reason"' not in client.get(f"/staff/bills/{bill.reference}").content.decode()
    r = client.post(f"/staff/bills/{bill.reference}", {"reason": "thử"}, follow=True)
    assert "không thể hủy" in r.content.decode()
    bill.refresh_from_db()
    assert bill.status == BillStatus.PARTIALLY_PAID


# --- scoping ----------------------------------------------------------------------------------


def test_cashier_cannot_open_another_institutions_bill(client, other_cashier, bill):
    # given a cashier of another school
    client.force_login(other_cashier)
    # when they open or try to cancel this school's bill
    r = client.get(f"/staff/bills/{bill.reference}")
    # then it does not exist for them
    assert r.status_code == 404
    html = r.content.decode()
    assert "Nguyễn Thị Lan" not in html and "450.000 đ" not in html
    r = client.post(f"/staff/bills/{bill.reference}", {"reason": "phá"})
    assert r.status_code == 404
    bill.refresh_from_db()
    assert bill.status == BillStatus.UNPAID
    # and their dashboard does not list it, even when searched for
    listing = client.get("/staff/", {"q": bill.reference}).content.decode()
    assert f'href="/staff/bills/{bill.reference}"' not in listing
    assert "Chưa có phiếu thu nào." in listing


def test_dashboard_filters_by_status_and_search(client, cashier, bill):
    client.force_login(cashier)
    assert bill.reference in client.get("/staff/", {"status": "unpaid"}).content.decode()
    assert bill.reference not in client.get("/staff/", {"status": "paid"}).content.decode()
    assert bill.reference in client.get("/staff/", {"q": "hs001"}).content.decode()
    assert bill.reference in client.get("/staff/", {"q": bill.reference[-4:].lower()}).content.decode()
    assert client.get("/staff/", {"status": "bogus", "page": "999"}).status_code == 200


# --- English ----------------------------------------------------------------------------------


@pytest.fixture
def english_catalog():
    """The compiled English catalog: built by `make messages`; built here if someone runs pytest alone."""
    po = Path(settings.LOCALE_PATHS[0]) / "en" / "LC_MESSAGES" / "django.po"
    mo = po.with_suffix(".mo")
    assert po.exists(), "thuphi/locale/en/LC_MESSAGES/django.po is missing"
    if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
        msgfmt = shutil.which("msgfmt")
        if msgfmt is None:
            pytest.fail("django.mo is missing or stale and msgfmt is not installed: run `make messages` "
                        "(needs Debian's gettext)")
        subprocess.run([msgfmt, "--check-format", "-o", str(mo), str(po)], check=True)
        trans_real._translations = {}  # forget catalogs loaded before the .mo existed
    yield
    translation.activate(settings.LANGUAGE_CODE)


def switch_to_english(client, next_url="/"):
    r = client.post("/i18n/setlang/", {"language": "en", "next": next_url})
    assert r.status_code == 302 and r["Location"] == next_url
    assert r.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"


def test_english_switch_translates_the_payer_pages(client, bill, english_catalog):
    # given a Vietnamese page by default
    vi = client.get(f"/pay/{bill.reference}").content.decode()
    assert 'lang="vi"' in vi and "Số tiền phải nộp" in vi and "450.000 đ" in vi
    # when the visitor presses "English"
    switch_to_english(client, f"/pay/{bill.reference}")
    # then the page is in English, amounts in the English style, dates still day-first
    en = client.get(f"/pay/{bill.reference}").content.decode()
    assert 'lang="en"' in en
    assert "Amount due" in en
    assert "Account number" in en
    assert "450,000 VND" in en and "450.000 đ" not in en
    # (the bank's own registered name stays Vietnamese: it is data, not interface)
    assert "Số tiền phải nộp" not in en and "<dt>Ngân hàng</dt>" not in en and "<dt>Bank</dt>" in en
    assert bill.due_date.strftime("%d/%m/%Y") in en
    assert "Unpaid" in en
    # and the way back is offered in Vietnamese
    assert "Tiếng Việt" in en
    # and the other payer pages follow
    assert "Look up" in client.get("/lookup").content.decode()
    assert "Payment code not found" in client.get("/pay/TPNOTHING1").content.decode()


def test_english_switch_translates_the_staff_pages(client, cashier, bill, english_catalog):
    switch_to_english(client, "/staff/login/")
    login = client.get("/staff/login/").content.decode()
    assert "Password" in login and "Mật khẩu" not in login
    client.force_login(cashier)
    # force_login keeps the language cookie
    dashboard = client.get("/staff/").content.decode()
    assert "Issue a bill" in dashboard and "Lập phiếu thu" not in dashboard
    new = client.get("/staff/bills/new").content.decode()
    assert "Due date" in new and "Hạn nộp" not in new
    r = client.post("/staff/bills/new", form_data(), follow=True)
    html = r.content.decode()
    bill = Bill.objects.exclude(pk=bill.pk).get()
    assert f"Bill {bill.reference} issued." in html
    assert "1,334,520 VND" in html


def test_english_catalog_is_complete_and_keeps_placeholders():
    """Every entry translated, none fuzzy, and each keeps exactly the placeholders of its source."""
    import re as _re

    po = Path(settings.LOCALE_PATHS[0]) / "en" / "LC_MESSAGES" / "django.po"
    text = po.read_text(encoding="utf-8")
    assert "#, fuzzy" not in text and "\n#| " not in text

    def unquote(chunk: str) -> str:
        joined = "".join(_re.findall(r'^"(.*)"$', chunk, _re.M))
        return _re.sub(r'\\(.)', lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), joined)

    pairs = _re.findall(r'^msgid ((?:".*"\n)+)msgstr ((?:".*"\n?)+)', text, _re.M)
    assert len(pairs) > 100
    placeholder = _re.compile(r"%\(\w+\)[sd]|%[sd]|\{\w*\}")
    for raw_id, raw_str in pairs[1:]:  # the first is the header
        msgid, msgstr = unquote(raw_id), unquote(raw_str)
        assert msgstr.strip(), f"untranslated: {msgid!r}"
        assert sorted(placeholder.findall(msgid)) == sorted(placeholder.findall(msgstr)), msgid
