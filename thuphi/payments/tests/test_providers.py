"""Webhook providers: each one verifies and normalises exactly as its provider documents.

Known-answer vectors come from the providers' own published examples (Casso's sample header, payOS's
sample signature); payOS is also cross-checked against the official SDK (``payos`` on PyPI) both ways,
and Casso/payOS against their official JavaScript samples when ``node`` is on the machine.
No database: these tests are pure.
"""
from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hmac
import json
import shutil
import subprocess
import warnings

import pytest

from thuphi.payments.providers import (
    PROVIDERS,
    VIETNAM_TZ,
    NormalizedCredit,
    Provider,
    WebhookRejected,
    get_provider,
    payos_query_string,
    sign_casso,
    sign_generic,
    sign_payos,
)

NOW = dt.datetime(2026, 11, 20, 2, 16, tzinfo=dt.timezone.utc)  # 09:16 in Hà Nội
NOW_S = int(NOW.timestamp())
ICT = dt.timezone(dt.timedelta(hours=7))

GENERIC_SECRET = "generic-secret-0123456789abcdef"
SEPAY_KEY = "SEPAYKEY0123456789ABCDEF"
CASSO_SECRET = "casso-secret-0123456789abcdef"
PAYOS_KEY = "payos-checksum-0123456789abcdef"


def rejected(code: str):
    class _Ctx:
        def __enter__(self):
            self.cm = pytest.raises(WebhookRejected)
            self.info = self.cm.__enter__()
            return self.info

        def __exit__(self, *exc):
            handled = self.cm.__exit__(*exc)
            assert self.info.value.code == code, (self.info.value.code, self.info.value.message)
            assert self.info.value.message  # a Vietnamese sentence for people
            return handled

    return _Ctx()


def run(provider: str, *, raw: bytes, headers: dict | None = None, secrets=None, now: dt.datetime = NOW):
    """What the pipeline does, in order: parse, account keys, verify, normalise."""
    prov = get_provider(provider)
    body = prov.parse_json(raw)
    prov.account_keys(body)
    prov.verify(headers=headers or {}, raw_body=raw, body=body, secrets=secrets, now=now)
    return prov.normalize(body)


# ------------------------------------------------------------------------------------------ registry

def test_registry_names_the_four_providers_and_they_follow_the_protocol():
    assert set(PROVIDERS) == {"sepay", "casso", "payos", "generic"}
    for name, prov in PROVIDERS.items():
        assert prov.name == name and get_provider(name) is prov
        assert isinstance(prov, Provider)
        status, body = prov.success_response()
        assert status in (200, 201) and isinstance(body, dict)
    assert get_provider("sepay").success_response() == (200, {"success": True})
    with pytest.raises(KeyError):
        get_provider("momo")


def test_rejection_codes_are_closed_and_messages_vietnamese():
    assert WebhookRejected("bad_signature").message == "Chữ ký hoặc khóa xác thực không hợp lệ."
    with pytest.raises(ValueError):
        WebhookRejected("nope")


def test_normalized_credit_is_frozen():
    credit = NormalizedCredit(provider="generic", event_id="1", account_number="1", virtual_account="", amount=1,
                              direction="in", description="", occurred_at=NOW, bank_reference="", is_test=False,
                              payer_name="")
    with pytest.raises(dataclasses.FrozenInstanceError):
        credit.amount = 2  # type: ignore[misc]


@pytest.mark.parametrize("name", sorted(PROVIDERS))
@pytest.mark.parametrize("raw", [b"not json", b"[1,2]", b'{"a":1,"a":2}', b'{"amount":NaN}', b"\xff\xfe{}", b""])
def test_unparseable_bodies_are_malformed(name, raw):
    with rejected("malformed_body"):
        get_provider(name).parse_json(raw)


# ------------------------------------------------------------------------------------------- generic

def generic_raw(**overrides) -> bytes:
    body = {"id": "VCB-20261120-000123", "account_number": "1023456701", "virtual_account": None,
            "amount": 1_250_000, "description": "MBVCB.2427229823.174242.TP7K3M9Q2XH NỘP TIỀN ĂN",
            "transaction_date": "2026-11-20T09:15:00+07:00", "reference_code": "FT26324918273", "type": "credit"}
    body.update(overrides)
    return json.dumps(body, ensure_ascii=False).encode()


def generic_headers(raw: bytes, *, secret: str = GENERIC_SECRET, ts: int = NOW_S) -> dict:
    return {"Thuphi-Signature": sign_generic(secret=secret, raw_body=raw, timestamp=ts)}


def test_generic_signed_credit_verifies_and_normalises():
    raw = generic_raw(virtual_account="9704366800001234")
    assert get_provider("generic").account_keys(json.loads(raw)) == ["9704366800001234", "1023456701"]
    [credit] = run("generic", raw=raw, headers=generic_headers(raw), secrets=[GENERIC_SECRET])
    assert credit == NormalizedCredit(
        provider="generic", event_id="VCB-20261120-000123", account_number="1023456701",
        virtual_account="9704366800001234", amount=1_250_000, direction="in",
        description="MBVCB.2427229823.174242.TP7K3M9Q2XH NỘP TIỀN ĂN",
        occurred_at=dt.datetime(2026, 11, 20, 9, 15, tzinfo=ICT), bank_reference="FT26324918273",
        is_test=False, payer_name="")
    assert credit.occurred_at == dt.datetime(2026, 11, 20, 2, 15, tzinfo=dt.timezone.utc)


def test_generic_worked_example_of_docs_webhooks_md():
    # The exact bytes, secret and timestamp printed in docs/webhooks.md: a bank's developer checks against these.
    raw = (b'{"id":"VCB-20261120-000123","account_number":"1023456701","virtual_account":null,"amount":1250000,'
           b'"description":"MBVCB.2427229823.174242.TP7K3M9Q2XH NOP TIEN AN",'
           b'"transaction_date":"2026-11-20T09:15:00+07:00","reference_code":"FT26324918273","type":"credit"}')
    header = sign_generic(secret="demo-secret-do-not-use-0123456789", raw_body=raw, timestamp=1795140930)
    assert header == "t=1795140930,v1=b2c746a5a2617b14ee685e551130177a4f490e3b8bfa5d101e91546114bcd002"
    now = dt.datetime(2026, 11, 20, 9, 15, 45, tzinfo=ICT)
    [credit] = run("generic", raw=raw, headers={"Thuphi-Signature": header},
                   secrets=["demo-secret-do-not-use-0123456789"], now=now)
    assert credit.amount == 1_250_000 and credit.virtual_account == "" and not credit.is_test


def test_generic_tampered_amount_is_refused():
    raw = generic_raw()
    headers = generic_headers(raw)
    tampered = raw.replace(b"1250000", b"9250000")
    assert tampered != raw
    with rejected("bad_signature"):
        run("generic", raw=tampered, headers=headers, secrets=[GENERIC_SECRET])


def test_generic_signature_covers_the_raw_bytes_not_the_parsed_json():
    raw = generic_raw()
    headers = generic_headers(raw)
    reformatted = json.dumps(json.loads(raw), indent=2).encode()  # same JSON, other bytes
    with rejected("bad_signature"):
        run("generic", raw=reformatted, headers=headers, secrets=[GENERIC_SECRET])


def test_generic_wrong_secret_missing_and_malformed_headers():
    raw = generic_raw()
    with rejected("bad_signature"):
        run("generic", raw=raw, headers=generic_headers(raw, secret="not-the-secret-0123456789"),
            secrets=[GENERIC_SECRET])
    with rejected("missing_signature"):
        run("generic", raw=raw, headers={}, secrets=[GENERIC_SECRET])
    with rejected("missing_signature"):
        run("generic", raw=raw, headers={"Thuphi-Signature": "  "}, secrets=[GENERIC_SECRET])
    good = generic_headers(raw)["Thuphi-Signature"]
    v1 = good.split("v1=")[1]
    for broken in (f"v1={v1}", f"t={NOW_S}", f"t=abc,v1={v1}", f"t={NOW_S},t={NOW_S},v1={v1}", "garbage"):
        with rejected("bad_signature"):
            run("generic", raw=raw, headers={"Thuphi-Signature": broken}, secrets=[GENERIC_SECRET])


@pytest.mark.parametrize("name", ["thuphi-signature", "THUPHI-SIGNATURE", "Thuphi-Signature"])
def test_generic_header_name_is_case_insensitive(name):
    raw = generic_raw()
    run("generic", raw=raw, headers={name: generic_headers(raw)["Thuphi-Signature"]}, secrets=[GENERIC_SECRET])


def test_generic_timestamp_window_300s_old_60s_future():
    raw = generic_raw()
    run("generic", raw=raw, headers=generic_headers(raw, ts=NOW_S - 300), secrets=[GENERIC_SECRET])
    run("generic", raw=raw, headers=generic_headers(raw, ts=NOW_S + 60), secrets=[GENERIC_SECRET])
    with rejected("stale_timestamp"):
        run("generic", raw=raw, headers=generic_headers(raw, ts=NOW_S - 301), secrets=[GENERIC_SECRET])
    with rejected("future_timestamp"):
        run("generic", raw=raw, headers=generic_headers(raw, ts=NOW_S + 61), secrets=[GENERIC_SECRET])
    # An old timestamp under a wrong signature learns nothing about the window.
    with rejected("bad_signature"):
        run("generic", raw=raw, headers=generic_headers(raw, secret="x" * 20, ts=NOW_S - 3600),
            secrets=[GENERIC_SECRET])


def test_generic_rotation_accepts_current_and_previous_secret_rejects_a_third():
    new, old, third = "new-secret-aaaaaaaaaaaaaaaa", "old-secret-bbbbbbbbbbbbbbbb", "third-secret-cccccccccccc"
    raw = generic_raw()
    for secret in (new, old):
        run("generic", raw=raw, headers=generic_headers(raw, secret=secret), secrets=[new, old])
    with rejected("bad_signature"):
        run("generic", raw=raw, headers=generic_headers(raw, secret=third), secrets=[new, old])
    # The sender may rotate too: several v1 entries, any one matching is enough.
    sig_third = sign_generic(secret=third, raw_body=raw, timestamp=NOW_S).split("v1=")[1]
    sig_old = sign_generic(secret=old, raw_body=raw, timestamp=NOW_S).split("v1=")[1]
    multi = f"t={NOW_S},v1={sig_third},v1={sig_old.upper()}"
    run("generic", raw=raw, headers={"Thuphi-Signature": multi}, secrets=[new, old])


def test_generic_empty_secrets_never_verify():
    raw = generic_raw()
    forged = {"Thuphi-Signature": f"t={NOW_S},v1=" + hmac.new(b"", f"{NOW_S}.".encode() + raw, "sha256").hexdigest()}
    for secrets in ([], [""], None):
        with rejected("bad_signature"):
            run("generic", raw=raw, headers=forged, secrets=secrets)
    with pytest.raises(ValueError):
        sign_generic(secret="", raw_body=raw, timestamp=NOW_S)


def test_generic_test_ping_is_recognised():
    raw = generic_raw(type="test", amount=0, description="test")
    [credit] = run("generic", raw=raw, headers=generic_headers(raw), secrets=[GENERIC_SECRET])
    assert credit.is_test and credit.amount == 0


@pytest.mark.parametrize("overrides, code", [
    ({"amount": 1250000.5}, "malformed_body"),
    ({"amount": 1250000.0}, "malformed_body"),
    ({"amount": "1250000"}, "malformed_body"),
    ({"amount": True}, "malformed_body"),
    ({"amount": -5000}, "malformed_body"),
    ({"amount": 100_000_000_001}, "malformed_body"),
    ({"amount": 0}, "unsupported_event"),
    ({"type": "debit"}, "unsupported_event"),
    ({"transaction_date": "2026-11-20T09:15:00"}, "malformed_body"),
    ({"transaction_date": "20/11/2026"}, "malformed_body"),
    ({"id": 12345}, "malformed_body"),
    ({"id": ""}, "malformed_body"),
    ({"account_number": ""}, "malformed_body"),
    ({"description": None}, "malformed_body"),
])
def test_generic_body_rules(overrides, code):
    raw = generic_raw(**overrides)
    with rejected(code):
        run("generic", raw=raw, headers=generic_headers(raw), secrets=[GENERIC_SECRET])


def test_generic_missing_field_is_malformed():
    body = json.loads(generic_raw())
    del body["transaction_date"]
    raw = json.dumps(body).encode()
    with rejected("malformed_body"):
        run("generic", raw=raw, headers=generic_headers(raw), secrets=[GENERIC_SECRET])


# --------------------------------------------------------------------------------------------- SePay

SEPAY_BODY = {"id": 92704, "gateway": "Vietcombank", "transactionDate": "2026-11-20 14:02:37",
              "accountNumber": "0123499999", "code": None, "content": "TP7K3M9Q2XH NOP TIEN AN THANG 11",
              "transferType": "in", "transferAmount": 2277000, "accumulated": 19077000, "subAccount": None,
              "referenceCode": "MBVCB.3278907687", "description": "BankAPINotify TP7K3M9Q2XH NOP TIEN AN THANG 11"}


def sepay_raw(**overrides) -> bytes:
    return json.dumps({**SEPAY_BODY, **overrides}).encode()


def test_sepay_api_key_credit_verifies_and_normalises():
    raw = sepay_raw()
    [credit] = run("sepay", raw=raw, headers={"Authorization": f"Apikey {SEPAY_KEY}"}, secrets=[SEPAY_KEY])
    assert credit == NormalizedCredit(
        provider="sepay", event_id="92704", account_number="0123499999", virtual_account="", amount=2277000,
        direction="in", description="TP7K3M9Q2XH NOP TIEN AN THANG 11",
        occurred_at=dt.datetime(2026, 11, 20, 14, 2, 37, tzinfo=VIETNAM_TZ), bank_reference="MBVCB.3278907687",
        is_test=False, payer_name="")
    assert credit.occurred_at.utcoffset() == dt.timedelta(hours=7)


def test_sepay_virtual_account_is_looked_up_first():
    raw = sepay_raw(subAccount="VQR0123499999A")
    body = json.loads(raw)
    assert get_provider("sepay").account_keys(body) == ["VQR0123499999A", "0123499999"]
    [credit] = run("sepay", raw=raw, headers={"authorization": f"Apikey {SEPAY_KEY}"}, secrets=[SEPAY_KEY])
    assert credit.virtual_account == "VQR0123499999A"


def test_sepay_outgoing_transfer_normalises_as_out():
    raw = sepay_raw(transferType="out", transferAmount=500000)
    [credit] = run("sepay", raw=raw, headers={"Authorization": f"Apikey {SEPAY_KEY}"}, secrets=[SEPAY_KEY])
    assert credit.direction == "out" and credit.amount == 500000


@pytest.mark.parametrize("headers, code", [
    ({"Authorization": "Apikey WRONGKEY0123456789ABCDEF"}, "bad_signature"),
    ({"Authorization": f"Apikey {SEPAY_KEY}x"}, "bad_signature"),
    ({}, "missing_signature"),
    ({"Authorization": ""}, "missing_signature"),
    ({"Authorization": "Apikey "}, "missing_signature"),
    ({"Authorization": f"Bearer {SEPAY_KEY}"}, "missing_signature"),
    ({"X-Api-Key": SEPAY_KEY}, "missing_signature"),
])
def test_sepay_wrong_or_missing_api_key_is_refused(headers, code):
    with rejected(code):
        run("sepay", raw=sepay_raw(), headers=headers, secrets=[SEPAY_KEY])


def test_sepay_scheme_is_case_insensitive_and_rotation_accepts_both_keys():
    run("sepay", raw=sepay_raw(), headers={"AUTHORIZATION": f"apikey {SEPAY_KEY}"}, secrets=[SEPAY_KEY])
    old = "OLDKEY0123456789ABCDEFGH"
    run("sepay", raw=sepay_raw(), headers={"Authorization": f"Apikey {old}"}, secrets=[SEPAY_KEY, old])
    with rejected("bad_signature"):
        run("sepay", raw=sepay_raw(), headers={"Authorization": "Apikey THIRD"}, secrets=[SEPAY_KEY, old])
    with rejected("bad_signature"):
        run("sepay", raw=sepay_raw(), headers={"Authorization": "Apikey x"}, secrets=["", None])


def test_sepay_api_key_does_not_cover_the_body():
    # Documented limit of SePay's "API Key" method: it authenticates the sender, it signs nothing.
    # An amount changed in transit (TLS makes that hard) cannot be detected here; the key must stay secret
    # and the pipeline reconciles amounts against SePay's transaction API.
    tampered = sepay_raw(transferAmount=9_277_000)
    [credit] = run("sepay", raw=tampered, headers={"Authorization": f"Apikey {SEPAY_KEY}"}, secrets=[SEPAY_KEY])
    assert credit.amount == 9_277_000
    with rejected("bad_signature"):
        run("sepay", raw=tampered, headers={"Authorization": "Apikey forged"}, secrets=[SEPAY_KEY])


def test_sepay_test_send_is_recognised_and_gets_a_collision_free_id():
    raw = sepay_raw(id=0, code="SEPAYTEST", content="SEPAY TEST WEBHOOK", transferAmount=0)
    [credit] = run("sepay", raw=raw, headers={"Authorization": f"Apikey {SEPAY_KEY}"}, secrets=[SEPAY_KEY])
    assert credit.is_test and credit.event_id.startswith("test:")
    [other] = get_provider("sepay").normalize(json.loads(sepay_raw(id=0, transferAmount=5000)))
    assert other.is_test and other.event_id != credit.event_id
    [real] = get_provider("sepay").normalize(json.loads(sepay_raw(content="SEPAY TEST WEBHOOK")))
    assert not real.is_test  # a payer's memo alone never turns money into a test


@pytest.mark.parametrize("overrides, code", [
    ({"transferAmount": -1000}, "malformed_body"),
    ({"transferAmount": 1000.5}, "malformed_body"),
    ({"transferAmount": "2277000"}, "malformed_body"),
    ({"transferAmount": 0}, "unsupported_event"),
    ({"transferType": "credit"}, "malformed_body"),
    ({"transactionDate": "25/03/2023 14:02"}, "malformed_body"),
    ({"id": None}, "malformed_body"),
    ({"accountNumber": None}, "malformed_body"),
])
def test_sepay_body_rules(overrides, code):
    with rejected(code):
        run("sepay", raw=sepay_raw(**overrides), headers={"Authorization": f"Apikey {SEPAY_KEY}"},
            secrets=[SEPAY_KEY])


# --------------------------------------------------------------------------------------------- Casso

# Casso's published example (developer docs, repeated in its PHP/Python/Go/Java/C# samples).
CASSO_DOC_BODY = {"error": 0, "data": {
    "id": 0, "reference": "MA_GIAO_DICH_THU_NGHIEM", "description": "giao dich thu nghiem", "amount": 599000,
    "runningBalance": 25000000, "transactionDateTime": "2024-10-03 15:06:37", "accountNumber": "88888888",
    "bankName": "VPBank", "bankAbbreviation": "VPB", "virtualAccountNumber": "", "virtualAccountName": "",
    "counterAccountName": "NGUYEN VAN A", "counterAccountNumber": "8888888888", "counterAccountBankId": "970415",
    "counterAccountBankName": "VietinBank"}}
CASSO_DOC_KEY = "mgExMrjj4i7a1p8Cs6LmFbpCd8lbw4sSX4LZXPag7TKazeIogtR90tvWYTkwQbvs"
CASSO_DOC_HEADER = ("t=1727948258788,v1=ed0a4bd2e826d5cb69988cdb141e6c1a080e21f3b57eb72cd78192220042b9e7dde0868fc"
                    "667faea8e224900fa7904e7c88dfa098032fb2d6b6996856e8b7ff3")


def casso_body(**data_overrides) -> dict:
    return {"error": 0, "data": {
        "id": 7788123, "reference": "FT26324918273", "description": "CT DEN:0329 TP7K3M9Q2XH Nguyễn Văn An nộp học phí",
        "amount": 3_500_000, "runningBalance": 125_000_000, "transactionDateTime": "2026-11-20 15:53:06",
        "accountNumber": "1023456701", "bankName": "Vietcombank", "bankAbbreviation": "VCB",
        "virtualAccountNumber": "", "virtualAccountName": "", "counterAccountName": "NGUYỄN VĂN AN",
        "counterAccountNumber": "0451000123456", "counterAccountBankId": "970436",
        "counterAccountBankName": "Vietcombank", **data_overrides}}


def casso_send(body: dict, *, secret: str = CASSO_SECRET, ts_ms: int = NOW_S * 1000, raw: bytes | None = None):
    raw = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode()
    return raw, {"X-Casso-Signature": sign_casso(secret=secret, body=body, timestamp_ms=ts_ms)}


def test_casso_published_example_verifies():
    assert sign_casso(secret=CASSO_DOC_KEY, body=CASSO_DOC_BODY, timestamp_ms=1727948258788) == CASSO_DOC_HEADER
    raw = json.dumps(CASSO_DOC_BODY, indent=4).encode()  # the signature is over the parsed body
    [credit] = run("casso", raw=raw, headers={"x-casso-signature": CASSO_DOC_HEADER}, secrets=[CASSO_DOC_KEY],
                   now=dt.datetime.fromtimestamp(1727948258.788 + 5, dt.timezone.utc))
    # ... and it is the "Gọi thử" test body: acknowledged, never booked.
    assert credit.is_test and credit.event_id.startswith("test:") and credit.amount == 599000


def test_casso_signed_credit_verifies_and_normalises():
    body = casso_body()
    raw, headers = casso_send(body)
    assert get_provider("casso").account_keys(json.loads(raw)) == ["1023456701"]
    [credit] = run("casso", raw=raw, headers=headers, secrets=[CASSO_SECRET])
    assert credit == NormalizedCredit(
        provider="casso", event_id="7788123", account_number="1023456701", virtual_account="",
        amount=3_500_000, direction="in", description="CT DEN:0329 TP7K3M9Q2XH Nguyễn Văn An nộp học phí",
        occurred_at=dt.datetime(2026, 11, 20, 15, 53, 6, tzinfo=VIETNAM_TZ), bank_reference="FT26324918273",
        is_test=False, payer_name="NGUYỄN VĂN AN")


def test_casso_virtual_account_first_and_ascii_escaped_transport_still_verifies():
    body = casso_body(virtualAccountNumber="VCB8800012345", virtualAccountName="TRUONG TH KINH BAC")
    raw, headers = casso_send(body, raw=json.dumps(body, ensure_ascii=True).encode())  # \\u1ec5 on the wire
    assert get_provider("casso").account_keys(json.loads(raw)) == ["VCB8800012345", "1023456701"]
    [credit] = run("casso", raw=raw, headers=headers, secrets=[CASSO_SECRET])
    assert credit.virtual_account == "VCB8800012345"


def test_casso_message_is_js_stringify_of_sorted_keys_without_escaping():
    from thuphi.payments.providers.casso import casso_message

    msg = casso_message(body={"b": 1, "a": {"d": "Đ/ồ", "c": None}}, timestamp_ms=17)
    assert msg == '17.{"a":{"c":null,"d":"Đ/ồ"},"b":1}'.encode()


def test_casso_tampered_amount_wrong_secret_missing_header():
    body = casso_body()
    raw, headers = casso_send(body)
    tampered = raw.replace(b"3500000", b"35000000")
    with rejected("bad_signature"):
        run("casso", raw=tampered, headers=headers, secrets=[CASSO_SECRET])
    raw2, wrong = casso_send(body, secret="not-the-casso-secret-000")
    with rejected("bad_signature"):
        run("casso", raw=raw2, headers=wrong, secrets=[CASSO_SECRET])
    with rejected("missing_signature"):
        run("casso", raw=raw, headers={}, secrets=[CASSO_SECRET])
    with rejected("bad_signature"):
        run("casso", raw=raw, headers={"X-Casso-Signature": "v1=abc"}, secrets=[CASSO_SECRET])


def test_casso_stale_and_future_timestamps():
    body = casso_body()
    raw, edge = casso_send(body, ts_ms=(NOW_S - 300) * 1000)
    run("casso", raw=raw, headers=edge, secrets=[CASSO_SECRET])
    raw, edge = casso_send(body, ts_ms=(NOW_S + 60) * 1000)
    run("casso", raw=raw, headers=edge, secrets=[CASSO_SECRET])
    raw, stale = casso_send(body, ts_ms=(NOW_S - 301) * 1000)
    with rejected("stale_timestamp"):
        run("casso", raw=raw, headers=stale, secrets=[CASSO_SECRET])
    raw, future = casso_send(body, ts_ms=(NOW_S + 61) * 1000)
    with rejected("future_timestamp"):
        run("casso", raw=raw, headers=future, secrets=[CASSO_SECRET])


def test_casso_rotation_accepts_both_secrets():
    body = casso_body()
    for secret in (CASSO_SECRET, "previous-casso-secret-0000"):
        raw, headers = casso_send(body, secret=secret)
        run("casso", raw=raw, headers=headers, secrets=[CASSO_SECRET, "previous-casso-secret-0000"])


def test_casso_negative_amount_is_money_out():
    body = casso_body(amount=-200_000)
    raw, headers = casso_send(body)
    [credit] = run("casso", raw=raw, headers=headers, secrets=[CASSO_SECRET])
    assert credit.direction == "out" and credit.amount == 200_000


@pytest.mark.parametrize("overrides, code", [
    ({"amount": 1000.5}, "malformed_body"),
    ({"amount": "1000"}, "malformed_body"),
    ({"amount": 0}, "unsupported_event"),
    ({"transactionDateTime": None}, "malformed_body"),
])
def test_casso_body_rules(overrides, code):
    body = casso_body(**overrides)
    raw, headers = casso_send(body)
    with rejected(code):
        run("casso", raw=raw, headers=headers, secrets=[CASSO_SECRET])


def test_casso_error_notification_is_not_a_credit():
    body = {**casso_body(), "error": 1}
    raw, headers = casso_send(body)
    with rejected("unsupported_event"):
        run("casso", raw=raw, headers=headers, secrets=[CASSO_SECRET])


# --------------------------------------------------------------------------------------------- payOS

# payOS's published example (docs "Kiểm tra dữ liệu với signature"): also the confirm-webhook test ping.
PAYOS_DOC_KEY = "1a54716c8f0efb2744fb28b6e38b25da7f67a925d98bc1c18bd8faaecadd7675"
PAYOS_DOC_DATA = {
    "orderCode": 123, "amount": 3000, "description": "VQRIO123", "accountNumber": "12345678",
    "reference": "TF230204212323", "transactionDateTime": "2023-02-04 18:25:00", "currency": "VND",
    "paymentLinkId": "124c33293c43417ab7879e14c8d9eb18", "code": "00", "desc": "Thành công",
    "counterAccountBankId": "", "counterAccountBankName": "", "counterAccountName": "",
    "counterAccountNumber": "", "virtualAccountName": "", "virtualAccountNumber": ""}
PAYOS_DOC_SIGNATURE = "412e915d2871504ed31be63c8f62a149a4410d34c4c42affc9006ef9917eaa03"


def payos_data(**overrides) -> dict:
    return {"orderCode": 2611200001, "amount": 1_850_000, "description": "TP7K3M9Q2XH HOC PHI HK1",
            "accountNumber": "1023456701", "reference": "FT26324918999", "transactionDateTime": "2026-11-20 18:25:00",
            "currency": "VND", "paymentLinkId": "9f0c2b1e7d4a4c6f8e3b5a7d9c1e2f30", "code": "00",
            "desc": "Thành công", "counterAccountBankId": "970415", "counterAccountBankName": "VietinBank",
            "counterAccountName": "TRẦN THỊ BÌNH", "counterAccountNumber": "105001234567",
            "virtualAccountName": "", "virtualAccountNumber": "", **overrides}


def payos_raw(data: dict, *, key: str = PAYOS_KEY, signature: str | None = None, **top) -> bytes:
    body = {"code": "00", "desc": "success", "success": True, "data": data,
            "signature": sign_payos(checksum_key=key, data=data) if signature is None else signature, **top}
    return json.dumps(body, ensure_ascii=False).encode()


def test_payos_published_example_signature_and_test_ping():
    assert sign_payos(checksum_key=PAYOS_DOC_KEY, data=PAYOS_DOC_DATA) == PAYOS_DOC_SIGNATURE
    raw = payos_raw(PAYOS_DOC_DATA, signature=PAYOS_DOC_SIGNATURE)
    [credit] = run("payos", raw=raw, secrets=[PAYOS_DOC_KEY])
    assert credit.is_test and credit.event_id.startswith("test:")
    assert get_provider("payos").is_test_ping(json.loads(raw))


def test_payos_signed_credit_verifies_and_normalises():
    data = payos_data(virtualAccountNumber="V3CAS0123456789", virtualAccountName="TRUONG TH KINH BAC")
    raw = payos_raw(data)
    assert get_provider("payos").account_keys(json.loads(raw)) == ["V3CAS0123456789", "1023456701"]
    [credit] = run("payos", raw=raw, secrets=[PAYOS_KEY])
    assert credit == NormalizedCredit(
        provider="payos", event_id="2611200001:FT26324918999", account_number="1023456701",
        virtual_account="V3CAS0123456789", amount=1_850_000, direction="in", description="TP7K3M9Q2XH HOC PHI HK1",
        occurred_at=dt.datetime(2026, 11, 20, 18, 25, tzinfo=VIETNAM_TZ), bank_reference="FT26324918999",
        is_test=False, payer_name="TRẦN THỊ BÌNH")


def test_payos_tampered_wrong_key_missing_signature():
    data = payos_data()
    raw = payos_raw(data)
    with rejected("bad_signature"):
        run("payos", raw=raw.replace(b"1850000", b"8850000"), secrets=[PAYOS_KEY])
    with rejected("bad_signature"):
        run("payos", raw=payos_raw(data, key="not-the-checksum-key-000"), secrets=[PAYOS_KEY])
    body = json.loads(raw)
    del body["signature"]
    with rejected("missing_signature"):
        run("payos", raw=json.dumps(body).encode(), secrets=[PAYOS_KEY])
    with rejected("missing_signature"):
        run("payos", raw=payos_raw(data, signature=""), secrets=[PAYOS_KEY])


def test_payos_rotation_and_uppercase_hex():
    data = payos_data()
    run("payos", raw=payos_raw(data, key="old-checksum-key-111111"), secrets=[PAYOS_KEY, "old-checksum-key-111111"])
    upper = sign_payos(checksum_key=PAYOS_KEY, data=data).upper()
    run("payos", raw=payos_raw(data, signature=upper), secrets=[PAYOS_KEY])


@pytest.mark.parametrize("data_overrides, top, code", [
    ({"amount": -1000}, {}, "malformed_body"),
    ({"amount": 1000.5}, {}, "malformed_body"),
    ({"amount": 0}, {}, "unsupported_event"),
    ({"code": "01"}, {}, "unsupported_event"),
    ({}, {"code": "01"}, "unsupported_event"),
    ({"currency": "USD"}, {}, "unsupported_event"),
    ({"reference": ""}, {}, "malformed_body"),
    ({"nested": {"a": 1}}, {}, "malformed_body"),
])
def test_payos_body_rules(data_overrides, top, code):
    data = payos_data(**data_overrides)
    try:
        raw = payos_raw(data, **top)
    except ValueError:  # a nested object cannot even be signed
        raw = payos_raw(data, signature="00", **top)
    with rejected(code):
        run("payos", raw=raw, secrets=[PAYOS_KEY])


def test_payos_query_string_rules():
    data = {"b": None, "a": "null", "c": "undefined", "d": True, "e": False, "f": 3000, "g": "x y&z=1",
            "h": [{"z": 1, "a": "Đ"}, 2]}
    assert payos_query_string(data) == 'a=&b=&c=&d=true&e=false&f=3000&g=x y&z=1&h=[{"a":"Đ","z":1},2]'


# --- the official SDK as oracle (pip install payos==1.1.0)

@pytest.fixture
def payos_sdk():
    import payos  # the official SDK, a test dependency
    return payos.PayOS(client_id="test-client", api_key="test-api-key", checksum_key=PAYOS_KEY)


def _sdk_bodies():
    full = payos_data()
    with_nulls = payos_data(counterAccountBankId=None, counterAccountBankName=None, counterAccountName=None,
                            counterAccountNumber=None, virtualAccountName=None, virtualAccountNumber=None)
    vietnamese = payos_data(description="Nộp học phí TP7K3M9Q2XH & tiền ăn = 100%", desc="Thành công")
    return [full, with_nulls, vietnamese, dict(PAYOS_DOC_DATA)]


@pytest.mark.parametrize("data", _sdk_bodies())
def test_payos_our_signature_verifies_with_the_official_sdk(payos_sdk, data):
    body = {"code": "00", "desc": "success", "success": True, "data": data,
            "signature": sign_payos(checksum_key=PAYOS_KEY, data=data)}
    verified = payos_sdk.webhooks.verify(copy.deepcopy(body))
    assert verified.amount == data["amount"] and verified.reference == data["reference"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert payos_sdk.verifyPaymentWebhookData(copy.deepcopy(body)).amount == data["amount"]
    # and the SDK refuses what we would refuse
    forged = copy.deepcopy(body)
    forged["data"]["amount"] += 1
    with pytest.raises(Exception):
        payos_sdk.webhooks.verify(forged)


@pytest.mark.parametrize("data", _sdk_bodies())
def test_payos_sdk_signature_verifies_with_ours(payos_sdk, data):
    signature = payos_sdk.crypto.create_signature_from_object(copy.deepcopy(data), PAYOS_KEY)
    raw = payos_raw(data, signature=signature)
    body = json.loads(raw)
    get_provider("payos").verify(headers={}, raw_body=raw, body=body, secrets=[PAYOS_KEY], now=NOW)
    assert signature == sign_payos(checksum_key=PAYOS_KEY, data=data)


def test_payos_serialisation_rules_match_the_sdk(payos_sdk):
    data = {"amount": 3000, "flag": True, "off": False, "none": None, "nul": "null", "undef": "undefined",
            "text": "Thành công & 100%", "items": [{"name": "Bữa trưa", "quantity": 2, "price": 30000}]}
    assert payos_sdk.crypto.create_signature_from_object(copy.deepcopy(data), PAYOS_KEY) == \
        sign_payos(checksum_key=PAYOS_KEY, data=data)


# --- the official JavaScript samples as oracle, when node is installed

NODE = shutil.which("node")

CASSO_JS = r"""
const crypto = require("crypto");
function sortObjDataByKey(data) {
  const sortedObj = {};
  Object.keys(data).sort().forEach((key) => {
    if (data[key] && typeof data[key] === "object" && !Array.isArray(data[key])) {
      sortedObj[key] = sortObjDataByKey(data[key]);
    } else { sortedObj[key] = data[key]; }
  });
  return sortedObj;
}
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const msg = `${input.t}.${JSON.stringify(sortObjDataByKey(input.body))}`;
process.stdout.write(crypto.createHmac("sha512", input.key).update(msg).digest("hex"));
"""

PAYOS_JS = r"""
const crypto = require("crypto");
function sortObjDataByKey(object) {
  return Object.keys(object).sort().reduce((obj, key) => { obj[key] = object[key]; return obj; }, {});
}
function convertObjToQueryStr(object) {
  return Object.keys(object).filter((key) => object[key] !== undefined).map((key) => {
    let value = object[key];
    if (value && Array.isArray(value)) { value = JSON.stringify(value.map((val) => sortObjDataByKey(val))); }
    if ([null, undefined, "undefined", "null"].includes(value)) { value = ""; }
    return `${key}=${value}`;
  }).join("&");
}
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const q = convertObjToQueryStr(sortObjDataByKey(input.data));
process.stdout.write(crypto.createHmac("sha256", input.key).update(q).digest("hex"));
"""


def _node(script: str, payload: dict) -> str:
    # `make test` installs Debian's nodejs when it is missing, like chromium.
    assert NODE is not None, "node is not installed: install Debian's nodejs to run the provider samples"
    done = subprocess.run([NODE, "-e", script], input=json.dumps(payload, ensure_ascii=False).encode(),
                          capture_output=True, timeout=60, check=True)
    return done.stdout.decode()


def test_casso_matches_the_official_javascript_sample():
    bodies = [CASSO_DOC_BODY, casso_body(), casso_body(amount=-5, description='Ký tự "đặc biệt" \\ / \t 😀 <&>'),
              casso_body(extra={"z": [{"b": 1, "a": 2.5}], "y": None, "10": True, "9": 1e21})]
    for body in bodies:
        t = 1795140930123
        expected = _node(CASSO_JS, {"t": t, "body": body, "key": CASSO_SECRET})
        assert sign_casso(secret=CASSO_SECRET, body=body, timestamp_ms=t) == f"t={t},v1={expected}"


def test_payos_matches_the_official_javascript_sample():
    for data in [*_sdk_bodies(), {"a": 1.5, "b": True, "c": [{"y": 1, "x": "Đ"}], "d": "null"}]:
        assert _node(PAYOS_JS, {"data": data, "key": PAYOS_KEY}) == sign_payos(checksum_key=PAYOS_KEY, data=data)
