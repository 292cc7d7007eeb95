"""A payment through the API, its receipt, the PDF and XML, the public page and the staff API."""
from __future__ import annotations

import re
from xml.etree import ElementTree as ET

import pytest
from django.test import Client, override_settings

from thuphi.core.formatting import amount_in_words_vi
from thuphi.receipts import selectors, services
from thuphi.receipts.models import Receipt
from thuphi.receipts.pdf import receipt_pdf
from thuphi.receipts.xml import HmacSha256Signer, get_signer, receipt_xml, signature_verifies

pytestmark = pytest.mark.django_db

DUE = 1_334_520


@pytest.fixture
def paid(api_as, cashier, bill_body):
    """A bill paid in full by transfer at the counter, and the receipt issued after commit."""
    api = api_as(cashier)
    ref = api.post("/api/v1/bills", bill_body).json()["reference"]
    r = api.post(f"/api/v1/bills/{ref}/payments", {"method": "transfer", "amount": DUE, "external_ref": "FT26001"})
    assert r.status_code == 201, r.content
    services.receipt_issue_after_commit(credit_id=r.json()["id"])
    return Receipt.objects.get(credit_id=r.json()["id"])


def test_payment_gets_a_receipt_with_the_decree_fields(paid, institution):
    assert paid.number_display == "0000001" and paid.form_symbol == "01BLP0-001"
    assert re.fullmatch(r"AA-\d\dE", paid.serial)
    assert paid.institution_name == "Trường Tiểu học Kinh Bắc" and paid.institution_tax_code == "2300123456"
    assert paid.institution_address  # falls back to commune and province when none is registered
    assert (paid.payer_name, paid.payer_code) == ("Nguyễn Thị Lan", "HS001")
    assert paid.fee_names == ["Tiền ăn bán trú tháng 11", "Bảo hiểm y tế học sinh"]
    assert paid.amount == DUE
    assert paid.amount_in_words == "Một triệu ba trăm ba mươi bốn nghìn năm trăm hai mươi đồng"
    assert (paid.method, paid.method_label, paid.bank_reference) == ("transfer", "Chuyển khoản", "FT26001")
    assert paid.bill.reference == paid.bill_reference
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{12}", paid.verification_code)
    assert paid.signed_by == institution.name and signature_verifies(paid)


def test_pdf_is_a5_with_roboto_embedded(paid):
    data = receipt_pdf(receipt=paid)
    assert data.startswith(b"%PDF")
    assert len(re.findall(rb"/BaseFont /[A-Z]{6}\+Roboto", data)) >= 2  # regular and bold, subset
    assert data.count(b"/FontFile2") == 2  # TrueType embedded, not referenced
    assert re.search(rb"/MediaBox ?\[0 0 419\.53 595\.28\]", data)  # A5 in points
    assert b"/Image" in data  # the QR


def test_pdf_of_a_cancelled_receipt_still_renders(paid, make_user, institution):
    accountant = make_user("ketoan", "accountant", institution=institution)
    r = services.receipt_cancel(actor=accountant, receipt=paid, reason="Lập nhầm")
    assert receipt_pdf(receipt=r).startswith(b"%PDF")


def test_xml_carries_the_fields_and_a_verifiable_signature(paid):
    data = receipt_xml(receipt=paid)
    assert data.startswith(b"<?xml") and "Nguyễn Thị Lan".encode() in data  # UTF-8, not escaped
    root = ET.fromstring(data)
    general = root.find("DLHDon/TTChung")
    assert general.findtext("SHDon") == "0000001"
    assert general.findtext("KHMSHDon") == "01BLP0-001" and general.findtext("KHHDon") == paid.serial
    assert general.findtext("MTCuu") == paid.verification_code
    total = root.find("DLHDon/NDHDon/TToan")
    assert total.findtext("TgTTTBSo") == str(DUE)
    assert total.findtext("TgTTTBChu") == amount_in_words_vi(DUE)
    assert [e.text for e in root.findall("DLHDon/NDHDon/DSHHDVu/HHDVu/THHDVu")] == paid.fee_names
    sig = root.find("DSCKS/NBan/Signature")
    assert sig.get("Algorithm") == "HMAC-SHA256" and sig.text == paid.signature
    assert root.findtext("TTHThai/TThai") == "issued"
    # a verifier needs only the file: canonicalise DLHDon and check it
    signed = ET.canonicalize(ET.tostring(root.find("DLHDon"), encoding="unicode")).encode()
    assert get_signer().verify(signed, sig.text)


def test_signature_detects_a_tampered_amount(paid, api_as, cashier):
    assert selectors.receipt_signature_valid(receipt=paid)
    Receipt.objects.filter(pk=paid.pk).update(amount=DUE + 1_000_000)  # someone edits the database
    tampered = Receipt.objects.get(pk=paid.pk)
    assert not selectors.receipt_signature_valid(receipt=tampered)
    page = Client().get(f"/receipts/verify/{paid.verification_code}").content.decode()
    assert 'data-signature="invalid"' in page and 'data-status="unverified"' in page
    assert api_as(cashier).get(f"/api/v1/receipts/{paid.pk}").json()["signature_valid"] is False


def test_receipts_cannot_be_edited_or_deleted_through_the_model(paid):
    paid.amount = 1
    with pytest.raises(RuntimeError):
        paid.save()
    with pytest.raises(RuntimeError):
        paid.delete()


def test_another_signing_key_does_not_verify(paid):
    with override_settings(RECEIPT_SIGNING_KEY="k" * 48):
        assert not signature_verifies(paid)


class FakeTokenSigner:
    """Stands in for a USB-token / HSM signer plugged in through RECEIPT_SIGNER."""

    algorithm = "TEST-PKCS7"
    key_id = "token-01"

    def sign(self, data: bytes) -> str:
        return HmacSha256Signer(b"t" * 32).sign(data)

    def verify(self, data: bytes, signature: str) -> bool:
        return HmacSha256Signer(b"t" * 32).verify(data, signature)


def test_a_signer_can_be_plugged_in(api_as, cashier, bill_body):
    with override_settings(RECEIPT_SIGNER="thuphi.receipts.tests.test_documents.FakeTokenSigner"):
        api = api_as(cashier)
        ref = api.post("/api/v1/bills", bill_body).json()["reference"]
        r = api.post(f"/api/v1/bills/{ref}/payments", {"method": "card", "amount": 1000})
        assert r.status_code == 201, r.content
        credit_id = r.json()["id"]
        services.receipt_issue_after_commit(credit_id=credit_id)
        receipt = Receipt.objects.get(credit_id=credit_id)
        assert (receipt.signature_algorithm, receipt.signature_key_id) == ("TEST-PKCS7", "token-01")
        assert signature_verifies(receipt)
    assert not signature_verifies(receipt)  # the default signer did not sign it


# --- the public page -------------------------------------------------------------------------------


def test_verification_page_shows_a_valid_receipt_with_the_payer_masked(paid):
    r = Client().get(f"/receipts/verify/{paid.verification_code}")
    page = r.content.decode()
    assert r.status_code == 200
    assert 'data-status="issued"' in page and 'data-signature="valid"' in page
    assert "Nguyễn T. L." in page and "Nguyễn Thị Lan" not in page
    assert "0000001" in page and "1.334.520 đ" in page and paid.serial in page
    assert r["X-Robots-Tag"] == "noindex"
    # typed from paper: lower case and look-alike letters still find it
    typed = paid.verification_code.lower().replace("1", "l").replace("0", "o")
    assert Client().get(f"/receipts/verify/{typed}").status_code == 200


def test_verification_page_shows_a_cancelled_receipt_as_cancelled(paid, make_user, institution):
    accountant = make_user("ketoan", "accountant", institution=institution)
    services.receipt_cancel(actor=accountant, receipt=paid, reason="Thu trùng, đã lập biên lai khác")
    page = Client().get(f"/receipts/verify/{paid.verification_code}").content.decode()
    assert 'data-status="cancelled"' in page and "Thu trùng, đã lập biên lai khác" in page
    assert 'data-status="issued"' not in page


@pytest.mark.parametrize("suffix", ["", "/pdf", "/xml"])
def test_unknown_code_is_a_friendly_404(suffix):
    r = Client().get(f"/receipts/verify/ZZZZZZZZZZZZ{suffix}")
    assert r.status_code == 404
    assert "Không tìm thấy biên lai" in r.content.decode()


def test_pdf_and_xml_download_by_code(paid):
    c = Client()
    pdf = c.get(f"/receipts/verify/{paid.verification_code}/pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and paid.number_display in pdf["Content-Disposition"]
    xml = c.get(f"/receipts/verify/{paid.verification_code}/xml")
    assert xml.status_code == 200 and xml["Content-Type"].startswith("application/xml")
    assert ET.fromstring(xml.content).findtext("DLHDon/TTChung/SHDon") == "0000001"


# --- the staff API ---------------------------------------------------------------------------------


def test_staff_list_by_bill_and_get_in_scope_only(paid, api_as, cashier, make_institution, make_user):
    api = api_as(cashier)
    listed = api.get(f"/api/v1/receipts?bill={paid.bill_reference.lower()}")
    assert listed.status_code == 200 and [x["id"] for x in listed.json()] == [paid.pk]
    one = api.get(f"/api/v1/receipts/{paid.pk}").json()
    assert one["number"] == "0000001" and one["signature_valid"] is True and one["status"] == "issued"
    assert one["verify_url"].endswith(f"/receipts/verify/{paid.verification_code}")
    assert one["pdf_url"].endswith("/pdf") and one["xml_url"].endswith("/xml")
    # another institution's staff sees nothing and gets the same 404 as for a missing id
    other = make_institution(code="BN-TH-09", name="Trường khác")
    stranger = api_as(make_user("khac", "accountant", institution=other))
    assert stranger.get(f"/api/v1/receipts?bill={paid.bill_reference}").json() == []
    r = stranger.get(f"/api/v1/receipts/{paid.pk}")
    assert r.status_code == 404 and r.json()["code"] == "receipt_not_found"


def test_cancel_through_the_api(paid, api_as, cashier, make_user, institution):
    accountant = api_as(make_user("ketoan", "accountant", institution=institution))
    # the cashier who took the money may not void its receipt
    r = api_as(cashier).post(f"/api/v1/receipts/{paid.pk}/cancel", {"reason": "Lập nhầm"})
    assert r.status_code == 403
    assert accountant.post(f"/api/v1/receipts/{paid.pk}/cancel", {"reason": "   "}).status_code == 422
    assert accountant.post(f"/api/v1/receipts/{paid.pk}/cancel", {}).status_code == 422
    r = accountant.post(f"/api/v1/receipts/{paid.pk}/cancel", {"reason": "Lập nhầm người nộp"})
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "cancelled" and body["cancel_reason"] == "Lập nhầm người nộp"
    assert body["cancelled_by"] == "ketoan" and body["number"] == "0000001"
    assert body["signature_valid"] is True  # cancelling changes the state, not the signed document
    again = accountant.post(f"/api/v1/receipts/{paid.pk}/cancel", {"reason": "Lần nữa"})
    assert again.status_code == 409 and again.json()["code"] == "receipt_already_cancelled"
    monitor = api_as(make_user("gs", "provincial_monitor", province_id="24"))
    assert monitor.post(f"/api/v1/receipts/{paid.pk}/cancel", {"reason": "x"}).status_code == 403
