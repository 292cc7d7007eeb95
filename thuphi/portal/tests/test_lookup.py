"""Payer look-up: institution + payer code, unlocked by the last 4 digits of the registered phone.

It must not reveal which payer codes exist, must not be brute-forceable, and must never print
a phone number in full.
"""
from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache
from django.test import override_settings
from django.utils import timezone

from thuphi.billing import services as bill_services
from thuphi.billing.models import Bill
from thuphi.core.models import Role
from thuphi.registry.services import payer_upsert

pytestmark = pytest.mark.django_db

PHONE = "0912345678"
GUARDIAN_PHONE = "0987654321"
NOT_FOUND = "Không tìm thấy thông tin khớp"
TOO_MANY = "Bạn đã tra cứu quá nhiều lần"


@pytest.fixture(autouse=True)
def fresh_cache():
    # The rate limit lives in the cache: every test starts and ends with no attempts counted.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def payer(institution):
    return payer_upsert(institution=institution, code="HS001", name="Nguyễn Thị Lan", phone=PHONE)


def issue(cashier, payer, name: str, amount: int, days: int = 15) -> Bill:
    return bill_services.bill_create(
        actor=cashier, institution=payer.institution, payer=payer,
        due_date=timezone.localdate() + dt.timedelta(days=days),
        items=[bill_services.LineInput(name=name, amount=amount)],
    )


@pytest.fixture
def bills(cashier, payer):
    meals = issue(cashier, payer, "Tiền ăn bán trú tháng 11", 450_000, days=10)
    insurance = issue(cashier, payer, "Bảo hiểm y tế học sinh", 884_520, days=20)
    cancelled = issue(cashier, payer, "Đồng phục (lập nhầm)", 300_000)
    bill_services.bill_cancel(actor=cashier, bill=cancelled, reason="Lập nhầm")
    return {"meals": meals, "insurance": insurance, "cancelled": cancelled}


def look_up(client, institution="BN-TH-01", payer_code="HS001", last4="5678", **extra):
    return client.post("/lookup", {"institution": institution, "payer_code": payer_code, "phone_last4": last4},
                       **extra)


def test_lookup_page_shows_the_form_without_script(client, db):
    r = client.get("/lookup")
    assert r.status_code == 200
    html = r.content.decode()
    assert 'name="institution"' in html and 'name="payer_code"' in html and 'name="phone_last4"' in html
    assert "<script" not in html.lower()
    # the home page carries the same form
    home = client.get("/").content.decode()
    assert 'action="/lookup"' in home and "<script" not in home.lower()


def test_right_code_and_last4_shows_the_open_bills(client, bills):
    # given a payer with two open bills and a cancelled one
    # when the parent enters the institution, the student code and the phone's last 4 digits
    r = look_up(client)
    # then the open bills are listed, each linked to its payment page, with the amount left to pay
    assert r.status_code == 200
    html = r.content.decode()
    assert NOT_FOUND not in html
    assert "Trường Tiểu học Kinh Bắc" in html
    for key, amount in (("meals", "450.000 đ"), ("insurance", "884.520 đ")):
        ref = bills[key].reference
        assert f'href="/pay/{ref}"' in html
        assert amount in html
    assert "Tiền ăn bán trú tháng 11" in html
    # the earlier due date comes first
    assert html.index(bills["meals"].reference) < html.index(bills["insurance"].reference)
    # and the cancelled bill is not offered for payment
    assert bills["cancelled"].reference not in html
    assert "<script" not in html.lower()


def test_codes_are_case_insensitive(client, bills):
    r = look_up(client, institution="bn-th-01", payer_code="hs001")
    assert r.status_code == 200
    assert bills["meals"].reference in r.content.decode()


def test_guardian_phone_unlocks_too(client, bills, payer):
    payer.guardian_phone = GUARDIAN_PHONE
    payer.save()
    html = look_up(client, last4="4321").content.decode()
    assert bills["meals"].reference in html


def test_payer_with_nothing_left_to_pay_is_told_so(client, payer):
    r = look_up(client)
    assert r.status_code == 200
    html = r.content.decode()
    assert "Không còn khoản nào phải nộp" in html
    assert NOT_FOUND not in html


def test_wrong_last4_shows_the_generic_message_and_no_bills(client, bills):
    # when the last 4 digits are wrong
    r = look_up(client, last4="1234")
    # then the generic message, and nothing about the payer or their bills
    assert r.status_code == 200
    html = r.content.decode()
    assert NOT_FOUND in html
    for bill in bills.values():
        assert bill.reference not in html
    assert "/pay/" not in html
    assert "Trường Tiểu học Kinh Bắc" not in html
    assert "Nguyễn" not in html


def test_unknown_payer_and_wrong_phone_look_the_same(client, bills, make_institution):
    # given a second institution, so an existing institution with an unknown code is tried too
    make_institution(code="BN-TH-02")

    def answer(**kw) -> str:
        r = look_up(client, **kw)
        assert r.status_code == 200
        # only the result part differs between attempts; the form echoes what was typed
        html = r.content.decode()
        return html[html.index("<h1>"):html.index('<section class="card">')]

    wrong_phone = answer(last4="0000")
    unknown_payer = answer(payer_code="HS999")
    unknown_institution = answer(institution="NO-SUCH")
    other_institution = answer(institution="BN-TH-02")
    assert wrong_phone == unknown_payer == unknown_institution == other_institution
    assert NOT_FOUND in wrong_phone


def test_malformed_last4_is_a_form_error_and_counts_no_attempt(client, bills):
    for bad in ("12a4", "123", "12345", ""):
        r = look_up(client, last4=bad)
        assert r.status_code == 200
        html = r.content.decode()
        assert bills["meals"].reference not in html
        assert NOT_FOUND not in html
    assert "Nhập đúng 4 chữ số." in look_up(client, last4="12a4").content.decode()


@override_settings(PORTAL_LOOKUP_RATE=3, PORTAL_LOOKUP_WINDOW_SECONDS=600)
def test_rate_limit_returns_429_after_the_allowed_attempts(client, bills):
    # given 3 allowed attempts, all used on wrong endings
    for last4 in ("0001", "0002", "0003"):
        assert look_up(client, last4=last4).status_code == 200
    # when a 4th attempt comes, even with the right ending
    r = look_up(client, last4="5678")
    # then it is refused with 429 and shows no bills
    assert r.status_code == 429
    html = r.content.decode()
    assert TOO_MANY in html
    assert bills["meals"].reference not in html
    assert NOT_FOUND not in html


@override_settings(PORTAL_LOOKUP_RATE=3)
def test_rate_limit_is_per_payer_across_client_addresses(client, bills):
    # given an attacker rotating addresses against one payer code
    for n in range(3):
        look_up(client, last4=f"000{n}", REMOTE_ADDR=f"10.0.0.{n}")
    # then the payer's bucket is exhausted whatever the address
    r = look_up(client, REMOTE_ADDR="10.0.0.99")
    assert r.status_code == 429
    assert bills["meals"].reference not in r.content.decode()


@override_settings(PORTAL_LOOKUP_RATE=3)
def test_rate_limit_is_per_client_address_across_payer_codes(client, bills):
    # given one address walking through payer codes
    for n in range(3):
        look_up(client, payer_code=f"HS10{n}", REMOTE_ADDR="10.0.0.7")
    # then the address is blocked even for a real payer, while another address is not
    assert look_up(client, REMOTE_ADDR="10.0.0.7").status_code == 429
    r = look_up(client, REMOTE_ADDR="10.0.0.8")
    assert r.status_code == 200
    assert bills["meals"].reference in r.content.decode()


@override_settings(PORTAL_LOOKUP_RATE=3)
def test_rate_limit_starts_afresh_with_a_cleared_cache(client, bills):
    for n in range(4):
        look_up(client, last4=f"000{n}")
    assert look_up(client).status_code == 429
    cache.clear()
    assert look_up(client).status_code == 200


def test_payer_phone_never_appears_in_full_on_any_page(client, bills, payer, cashier, make_user):
    # given a payer with their own and a guardian's phone
    payer.guardian_phone = GUARDIAN_PHONE
    payer.save()
    ref = bills["meals"].reference
    pages = {
        "lookup": look_up(client, last4="4321"),
        "lookup-wrong": look_up(client, last4="1111"),
        "pay": client.get(f"/pay/{ref}"),
        "cancelled": client.get(f"/pay/{bills['cancelled'].reference}"),
    }
    # and the staff pages too
    client.force_login(cashier)
    pages["dashboard"] = client.get("/staff/")
    pages["dashboard-search"] = client.get("/staff/", {"q": "HS001"})
    pages["detail"] = client.get(f"/staff/bills/{ref}")
    admin = make_user("quantri", Role.SYSTEM_ADMIN)
    client.force_login(admin)
    pages["detail-admin"] = client.get(f"/staff/bills/{ref}")
    for name, r in pages.items():
        assert r.status_code == 200, name
        html = r.content.decode()
        for phone in (PHONE, GUARDIAN_PHONE):
            assert phone not in html, name
            assert phone[1:] not in html, name
            assert phone[-7:] not in html, name
    # the staff page shows the masked form, so staff can still check the ending with the caller
    assert "•••••••321" in pages["detail"].content.decode()
