"""Signed bank notifications end to end: verify, store once, acknowledge, apply exactly once."""
from __future__ import annotations

import json
import random
import threading
import time

import pytest
from django.db import connections
from django.test import Client

from thuphi.billing.models import Bill
from thuphi.payments import ledger
from thuphi.payments.models import Credit, EventConflict, EventStatus, InboundEvent, LedgerEntry
from thuphi.payments.providers import sign_casso, sign_generic, sign_payos
from thuphi.registry.models import BankAccount

SECRET = "generic-secret-0123456789abcdef"
SEPAY_KEY = "SEPAYKEY0123456789ABCDEF"
CASSO_SECRET = "casso-secret-0123456789abcdef"
PAYOS_KEY = "payos-checksum-0123456789abcdef"


@pytest.fixture
def connected(institution):
    from thuphi.payments.services import connection_set

    account = BankAccount.objects.get(institution=institution, is_default=True)
    connection_set(bank_account=account, provider="generic", secret=SECRET)
    connection_set(bank_account=account, provider="sepay", secret=SEPAY_KEY)
    connection_set(bank_account=account, provider="casso", secret=CASSO_SECRET)
    connection_set(bank_account=account, provider="payos", secret=PAYOS_KEY)
    return account


@pytest.fixture
def bill(api_as, cashier, bill_body, connected):
    ref = api_as(cashier).post("/api/v1/bills", bill_body).json()["reference"]
    return Bill.objects.get(reference=ref)


def generic_body(*, account: str, amount: int, description: str, event_id: str = "EVT-1", kind="credit") -> bytes:
    return json.dumps({
        "id": event_id, "account_number": account, "virtual_account": None, "amount": amount,
        "description": description, "transaction_date": "2026-11-20T09:15:00+07:00",
        "reference_code": f"FT{event_id}", "type": kind,
    }).encode()


def post_generic(client: Client, raw: bytes, *, secret: str = SECRET, ts: int | None = None):
    header = sign_generic(secret=secret, raw_body=raw, timestamp=int(time.time()) if ts is None else ts)
    return client.post("/api/v1/webhooks/generic", data=raw, content_type="application/json",
                       headers={"Thuphi-Signature": header})


@pytest.mark.django_db(transaction=True)
def test_signed_generic_credit_moves_the_bill_seen_through_the_api(api_as, cashier, bill, connected):
    # given an unpaid bill; when the bank pushes a credit whose memo the bank mangled
    memo = f"MBVCB.2427229823.174242.{bill.reference[:5]}.{bill.reference[5:]} NOP TIEN AN GD 174242-090822 15:45:46"
    r = post_generic(Client(), generic_body(account=connected.account_number, amount=bill.amount_due,
                                            description=memo))
    # then it is acknowledged, and GET /api/v1/bills/{reference} shows it paid
    assert r.status_code == 200, r.content
    got = api_as(cashier).get(f"/api/v1/bills/{bill.reference}").json()
    assert got["status"] == "paid" and got["amount_paid"] == bill.amount_due
    credit = Credit.objects.get()
    assert credit.status == "matched" and bill.reference in credit.match_reason
    assert ledger.ledger_check().ok


@pytest.mark.django_db(transaction=True)
def test_redelivery_is_acknowledged_and_changes_nothing(bill, connected):
    raw = generic_body(account=connected.account_number, amount=100_000, description=bill.reference)
    c = Client()
    assert post_generic(c, raw).status_code == 200
    assert post_generic(c, raw).status_code == 200
    assert InboundEvent.objects.count() == 1 and Credit.objects.count() == 1
    assert Bill.objects.get(pk=bill.pk).amount_paid == 100_000


@pytest.mark.django_db(transaction=True)
def test_same_id_other_amount_is_a_conflict_never_overwritten(bill, connected):
    c = Client()
    post_generic(c, generic_body(account=connected.account_number, amount=100_000, description=bill.reference))
    r = post_generic(c, generic_body(account=connected.account_number, amount=900_000, description=bill.reference))
    assert r.status_code == 409 and r.json()["code"] == "event_conflict"
    assert EventConflict.objects.count() == 1
    assert InboundEvent.objects.get().amount == 100_000
    assert Bill.objects.get(pk=bill.pk).amount_paid == 100_000


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("case", ["tampered", "wrong_secret", "stale", "future", "missing", "unknown_account"])
def test_refused_notifications_store_nothing_as_money(bill, connected, case):
    raw = generic_body(account=connected.account_number, amount=bill.amount_due, description=bill.reference)
    c = Client()
    now = int(time.time())
    if case == "tampered":
        header = sign_generic(secret=SECRET, raw_body=raw, timestamp=now)
        raw = raw.replace(str(bill.amount_due).encode(), str(bill.amount_due * 10).encode())
        r = c.post("/api/v1/webhooks/generic", data=raw, content_type="application/json",
                   headers={"Thuphi-Signature": header})
    elif case == "wrong_secret":
        r = post_generic(c, raw, secret="not-the-secret-0123456789")
    elif case == "stale":
        r = post_generic(c, raw, ts=now - 301)
    elif case == "future":
        r = post_generic(c, raw, ts=now + 61)
    elif case == "missing":
        r = c.post("/api/v1/webhooks/generic", data=raw, content_type="application/json")
    else:
        raw = generic_body(account="999999999", amount=bill.amount_due, description=bill.reference)
        r = post_generic(c, raw)
    assert r.status_code == 401, r.content
    assert r.json()["code"]
    assert InboundEvent.objects.count() == 0 and Credit.objects.count() == 0 and LedgerEntry.objects.count() == 0
    assert Bill.objects.get(pk=bill.pk).amount_paid == 0


@pytest.mark.django_db(transaction=True)
def test_test_ping_is_acknowledged_not_booked(bill, connected):
    raw = generic_body(account=connected.account_number, amount=1000, description="test", kind="test")
    assert post_generic(Client(), raw).status_code == 200
    assert InboundEvent.objects.get().status == EventStatus.IGNORED
    assert Credit.objects.count() == 0 and LedgerEntry.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_wrong_check_character_goes_to_review_not_to_another_bill(bill, connected):
    # one character changed: the check character fails, so no bill is paid
    wrong = bill.reference[:-1] + ("0" if bill.reference[-1] != "0" else "1")
    post_generic(Client(), generic_body(account=connected.account_number, amount=5000, description=wrong))
    credit = Credit.objects.get()
    assert credit.status == "unmatched"
    assert Bill.objects.filter(amount_paid__gt=0).count() == 0
    assert ledger.ledger_check().ok


@pytest.mark.django_db(transaction=True)
def test_two_references_in_one_transfer_pay_both(api_as, cashier, bill_body, connected):
    api = api_as(cashier)
    a = api.post("/api/v1/bills", bill_body).json()
    b = api.post("/api/v1/bills", bill_body).json()
    total = a["amount_due"] + b["amount_due"]
    post_generic(Client(), generic_body(account=connected.account_number, amount=total,
                                        description=f"{a['reference']} {b['reference']} hai con"))
    assert {x.status for x in Bill.objects.all()} == {"paid"}
    assert ledger.ledger_check().ok


@pytest.mark.django_db(transaction=True)
def test_sepay_casso_payos_each_pay_a_bill(api_as, cashier, bill_body, connected):
    api = api_as(cashier)
    refs = [api.post("/api/v1/bills", bill_body).json()["reference"] for _ in range(3)]
    amount = Bill.objects.get(reference=refs[0]).amount_due
    c = Client()
    sepay = {"id": 92704, "gateway": "Vietcombank", "transactionDate": "2026-11-20 14:02:37",
             "accountNumber": connected.account_number, "code": None, "content": f"{refs[0]} NOP TIEN",
             "transferType": "in", "transferAmount": amount, "accumulated": 19077000, "subAccount": None,
             "referenceCode": "MBVCB.3278907687", "description": ""}
    r = c.post("/api/v1/webhooks/sepay", data=json.dumps(sepay), content_type="application/json",
               headers={"Authorization": f"Apikey {SEPAY_KEY}"})
    assert r.status_code in (200, 201), r.content
    casso = {"error": 0, "data": {"id": 7788, "reference": "FT26324123", "description": f"CT {refs[1]}",
                                  "amount": amount, "runningBalance": 5000000,
                                  "transactionDateTime": "2026-11-20 15:53:06",
                                  "accountNumber": connected.account_number, "bankName": "Vietcombank",
                                  "bankAbbreviation": "VCB", "virtualAccountNumber": "", "virtualAccountName": "",
                                  "counterAccountName": "NGUYEN VAN A", "counterAccountNumber": "",
                                  "counterAccountBankId": "", "counterAccountBankName": ""}}
    ts = int(time.time() * 1000)
    r = c.post("/api/v1/webhooks/casso", data=json.dumps(casso, ensure_ascii=False),
               content_type="application/json", headers={"X-Casso-Signature": sign_casso(
                   secret=CASSO_SECRET, body=casso, timestamp_ms=ts)})
    assert r.status_code in (200, 201), r.content
    data = {"orderCode": 1234567, "amount": amount, "description": refs[2], "accountNumber": connected.account_number,
            "reference": "TF26112012345", "transactionDateTime": "2026-11-20 18:25:00", "currency": "VND",
            "paymentLinkId": "abc123", "code": "00", "desc": "success", "counterAccountBankId": "",
            "counterAccountBankName": "", "counterAccountName": "", "counterAccountNumber": "",
            "virtualAccountName": "", "virtualAccountNumber": ""}
    payos = {"code": "00", "desc": "success", "success": True, "data": data,
             "signature": sign_payos(checksum_key=PAYOS_KEY, data=data)}
    r = c.post("/api/v1/webhooks/payos", data=json.dumps(payos), content_type="application/json")
    assert r.status_code in (200, 201), r.content
    assert [Bill.objects.get(reference=x).status for x in refs] == ["paid", "paid", "paid"]
    assert ledger.ledger_check().ok


@pytest.mark.django_db(transaction=True)
def test_every_delivery_twice_in_random_order_concurrently_books_each_once(api_as, cashier, bill_body, connected):
    # given 20 bills and 20 signed credits, each delivered twice, shuffled, from 8 threads at once
    api = api_as(cashier)
    bills = [api.post("/api/v1/bills", bill_body).json() for _ in range(20)]
    deliveries = []
    for i, b in enumerate(bills):
        raw = generic_body(account=connected.account_number, amount=b["amount_due"],
                           description=f"HP {b['reference']}", event_id=f"E{i}")
        deliveries += [raw, raw]
    random.Random(7).shuffle(deliveries)
    statuses: list[int] = []
    lock = threading.Lock()

    def worker(chunk):
        c = Client()
        try:
            for raw in chunk:
                r = post_generic(c, raw)
                with lock:
                    statuses.append(r.status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(deliveries[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then every delivery is acknowledged, and every credit booked exactly once
    assert statuses.count(200) == 40
    from thuphi.payments.tasks import apply_pending

    apply_pending()  # anything an inline apply left behind
    assert InboundEvent.objects.count() == 20 and Credit.objects.count() == 20
    assert all(b.status == "paid" for b in Bill.objects.all())
    assert ledger.ledger_check().ok


@pytest.mark.django_db(transaction=True)
def test_payos_url_confirmation_ping_verifies_with_account_in_the_url(connected):
    # payOS confirms a webhook URL with a ping naming a made-up account
    data = {"orderCode": 123, "amount": 3000, "description": "VQRIO123", "accountNumber": "12345678",
            "reference": "TF230204212323", "transactionDateTime": "2023-02-04 18:25:00", "currency": "VND",
            "paymentLinkId": "124c33293c43417ab7879e14c8d9eb18", "code": "00", "desc": "Thành công",
            "counterAccountBankId": "", "counterAccountBankName": "", "counterAccountName": "",
            "counterAccountNumber": "", "virtualAccountName": "", "virtualAccountNumber": ""}
    body = json.dumps({"code": "00", "desc": "success", "success": True, "data": data,
                       "signature": sign_payos(checksum_key=PAYOS_KEY, data=data)})
    c = Client()
    bare = c.post("/api/v1/webhooks/payos", data=body, content_type="application/json")
    assert bare.status_code == 401
    r = c.post(f"/api/v1/webhooks/payos?account={connected.account_number}", data=body,
               content_type="application/json")
    assert r.status_code == 200, r.content
    assert InboundEvent.objects.get().status == EventStatus.IGNORED
    assert Credit.objects.count() == 0
