"""Bills through the API: issuance, idempotency, scoping, errors, the QR that comes back."""
from __future__ import annotations

import pytest

from thuphi.billing import reference as refcode
from thuphi.billing import vietqr
from thuphi.billing.models import Bill, BillLine
from thuphi.core.models import IdempotencyRecord, Role

pytestmark = pytest.mark.django_db


def test_cashier_issues_a_bill_and_gets_reference_qr_and_pay_url(api_as, cashier, bill_body):
    # given a cashier of the institution
    api = api_as(cashier)
    # when a bill is issued
    r = api.post("/api/v1/bills", bill_body)
    # then it is created with a valid reference, the right sums and a QR that decodes back
    assert r.status_code == 201, r.content
    body = r.json()
    assert refcode.is_valid(body["reference"])
    assert body["status"] == "unpaid"
    assert body["amount_due"] == 450000 + 884520
    assert body["amount_paid"] == 0
    assert body["pay_url"].endswith(f"/pay/{body['reference']}")
    qr = vietqr.parse_payload(body["vietqr"])
    assert (qr.bank_bin, qr.account_number, qr.amount, qr.purpose) == (
        "970436", "1023456701", 1334520, body["reference"])
    assert Bill.objects.count() == 1 and BillLine.objects.count() == 2


def test_get_bill_returns_the_same_fields(api_as, cashier, bill_body):
    api = api_as(cashier)
    created = api.post("/api/v1/bills", bill_body).json()
    r = api.get(f"/api/v1/bills/{created['reference']}")
    assert r.status_code == 200
    fetched = r.json()
    for field in ("reference", "status", "amount_due", "amount_paid", "vietqr", "pay_url"):
        assert fetched[field] == created[field]


def test_same_idempotency_key_and_body_returns_the_same_bill(api_as, cashier, bill_body):
    api = api_as(cashier)
    h = {"Idempotency-Key": "import-2026-11-HS001"}
    first = api.post("/api/v1/bills", bill_body, headers=h)
    second = api.post("/api/v1/bills", bill_body, headers=h)
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["reference"] == second.json()["reference"]
    assert Bill.objects.count() == 1


def test_same_idempotency_key_with_other_body_is_a_conflict_and_creates_nothing(api_as, cashier, bill_body):
    api = api_as(cashier)
    h = {"Idempotency-Key": "k-1"}
    api.post("/api/v1/bills", bill_body, headers=h)
    other = {**bill_body, "items": [{"name": "Đồng phục", "amount": 300000}]}
    r = api.post("/api/v1/bills", other, headers=h)
    assert r.status_code == 409
    assert r.json()["code"] == "idempotency_key_reused"
    assert Bill.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1


def test_without_key_two_posts_make_two_bills(api_as, cashier, bill_body):
    api = api_as(cashier)
    a = api.post("/api/v1/bills", bill_body).json()["reference"]
    b = api.post("/api/v1/bills", bill_body).json()["reference"]
    assert a != b and Bill.objects.count() == 2


def test_missing_token_is_401_json(api_as, bill_body):
    r = api_as(None).post("/api/v1/bills", bill_body)
    assert r.status_code == 401
    assert r.json()["code"] == "unauthorized"
    assert Bill.objects.count() == 0


def test_revoked_or_wrong_token_is_refused(api_as, cashier, bill_body):
    api = api_as(cashier)
    api.headers["Authorization"] = "Bearer thp_not-a-real-token"
    assert api.post("/api/v1/bills", bill_body).status_code == 401


@pytest.mark.parametrize(
    "mutate, code",
    [
        (lambda b: b["items"].__setitem__(0, {"name": "x", "amount": -1}), "validation_error"),
        (lambda b: b["items"].__setitem__(0, {"name": "x", "amount": 100_000_000_001}), "validation_error"),
        (lambda b: b["items"].__setitem__(0, {"name": "x", "amount": 1.5}), "validation_error"),
        (lambda b: b.__setitem__("items", []), "validation_error"),
        (lambda b: b.__setitem__("due_date", "2000-01-01"), "due_before_issue"),
        (lambda b: b["payer"].__setitem__("phone", "12345"), "invalid_phone"),
        (lambda b: b["items"].__setitem__(0, {"name": "  ", "amount": 10}), "item_name_required"),
        (lambda b: b["items"].__setitem__(0, {"name": "x", "amount": 10, "kind": "bogus"}), "invalid_fee_kind"),
    ],
)
def test_bad_input_is_refused_with_a_code_and_nothing_is_written(api_as, cashier, bill_body, mutate, code):
    mutate(bill_body)
    r = api_as(cashier).post("/api/v1/bills", bill_body)
    assert r.status_code in (400, 422), r.content
    body = r.json()
    assert body["code"] == code and body["message"]
    assert Bill.objects.count() == 0 and BillLine.objects.count() == 0


def test_cashier_cannot_issue_for_another_institution(api_as, cashier, make_institution, bill_body):
    other = make_institution(code="OTHER-01")
    bill_body["institution"] = other.code
    r = api_as(cashier).post("/api/v1/bills", bill_body)
    assert r.status_code == 404
    assert r.json()["code"] == "institution_not_found"
    assert Bill.objects.count() == 0


def test_cashier_cannot_read_another_institutions_bill(api_as, make_user, make_institution, cashier, bill_body):
    created = api_as(cashier).post("/api/v1/bills", bill_body).json()
    stranger = make_user("khac", Role.CASHIER, institution=make_institution(code="OTHER-02"))
    r = api_as(stranger).get(f"/api/v1/bills/{created['reference']}")
    assert r.status_code == 404


def test_provincial_monitor_reads_but_cannot_issue(api_as, make_user, cashier, institution, bill_body):
    created = api_as(cashier).post("/api/v1/bills", bill_body).json()
    monitor = make_user("giamsat", Role.PROVINCIAL_MONITOR, province_id="24")
    api = api_as(monitor)
    assert api.get(f"/api/v1/bills/{created['reference']}").status_code == 200
    r = api.post("/api/v1/bills", bill_body)
    assert r.status_code == 403 and r.json()["code"] == "read_only"
    assert Bill.objects.count() == 1


def test_monitor_of_another_province_sees_nothing(api_as, make_user, cashier, bill_body):
    created = api_as(cashier).post("/api/v1/bills", bill_body).json()
    monitor = make_user("giamsat38", Role.PROVINCIAL_MONITOR, province_id="38")
    assert api_as(monitor).get(f"/api/v1/bills/{created['reference']}").status_code == 404


def test_discounts_never_push_a_line_below_zero(api_as, cashier, bill_body):
    bill_body["items"] = [{"name": "Học phí", "amount": 1_000_000, "kind": "tuition", "discount_percent": 70,
                           "discount_amount": 500_000}]
    body = api_as(cashier).post("/api/v1/bills", bill_body).json()
    assert body["amount_gross"] == 1_000_000
    assert body["amount_discount"] == 1_000_000
    assert body["amount_due"] == 0


def test_cancel_needs_a_reason_and_keeps_it(api_as, cashier, bill_body):
    api = api_as(cashier)
    ref = api.post("/api/v1/bills", bill_body).json()["reference"]
    assert api.post(f"/api/v1/bills/{ref}/cancel", {"reason": ""}).status_code == 422
    r = api.post(f"/api/v1/bills/{ref}/cancel", {"reason": "Lập trùng"})
    assert r.status_code == 200
    assert r.json()["status"] == "cancelled" and r.json()["cancel_reason"] == "Lập trùng"


def test_openapi_schema_lists_the_contract(api_as):
    r = api_as(None).get("/api/v1/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert "/api/v1/bills" in paths and "/api/v1/bills/{reference}" in paths
    assert "/api/v1/institutions" in paths and "/api/v1/institutions/{code}" in paths
