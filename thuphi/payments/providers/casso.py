"""Casso webhook v2 (developer.casso.vn, "Thiết lập Webhook thủ công" / "Xử lý sự kiện Webhook").

    X-Casso-Signature: t=<unix milliseconds>,v1=<hex>
    v1 = HMAC-SHA512(key=<webhook secret>, msg = t + "." + JSON.stringify(sortObjDataByKey(body)))

``sortObjDataByKey`` (Casso's official sample) sorts object keys recursively but leaves arrays as they
are; ``JSON.stringify`` writes no spaces and does not escape non-ASCII. The message is built from the
*parsed* body, so whitespace in transit does not matter but every value does. Casso's own
PHP/Python/Go samples use their languages' default encoders, which escape non-ASCII (and, in Go,
``<>&``) and would therefore disagree with Casso for Vietnamese text: we follow the JavaScript one,
and a test pins Casso's published example (``t=1727948258788`` ... ``ed0a4bd2…8b7ff3``).

Body::

    {"error": 0, "data": {"id": 0, "reference": "MA_GIAO_DICH_THU_NGHIEM", "description": "giao dich thu nghiem",
     "amount": 599000, "runningBalance": 25000000, "transactionDateTime": "2024-10-03 15:06:37",
     "accountNumber": "88888888", "bankName": "VPBank", "bankAbbreviation": "VPB",
     "virtualAccountNumber": "", "virtualAccountName": "", "counterAccountName": "NGUYEN VAN A",
     "counterAccountNumber": "8888888888", "counterAccountBankId": "970415",
     "counterAccountBankName": "VietinBank"}}

That body (``id: 0``, reference ``MA_GIAO_DICH_THU_NGHIEM``) is also what the "Gọi thử" (test call)
button sends. A negative ``amount`` is money going out. Casso v1 (``secure-token`` header, ``data`` as a
list with ``tid``/``when``) is not accepted: it has no signature and no timestamp.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from .base import (
    NormalizedCredit,
    WebhookRejected,
    any_digest_matches,
    check_window,
    credit_amount,
    dedupe,
    header,
    hmac_hex,
    identifier,
    js_stringify,
    local_datetime,
    parse_json_object,
    parse_signature_header,
    probe_event_id,
    require,
    text,
    usable_secrets,
    whole_vnd,
)

SIGNATURE_HEADER = "X-Casso-Signature"
TOLERANCE_SECONDS = 300
FUTURE_SKEW_SECONDS = 60
TEST_REFERENCE = "MA_GIAO_DICH_THU_NGHIEM"


def casso_message(*, body: dict, timestamp_ms: int | str) -> bytes:
    return (str(timestamp_ms) + "." + js_stringify(body, sort_nested_objects=True)).encode("utf-8",
                                                                                           "surrogatepass")


def casso_signature(*, secret: str, body: dict, timestamp_ms: int | str) -> str:
    return hmac_hex("sha512", secret, casso_message(body=body, timestamp_ms=timestamp_ms))


def sign_casso(*, secret: str, body: dict, timestamp_ms: int) -> str:
    """The full ``X-Casso-Signature`` header value: ``t=<ms>,v1=<hex HMAC-SHA512>``."""
    if not secret:
        raise ValueError("an empty secret cannot sign")
    ts = int(timestamp_ms)
    return f"t={ts},v1={casso_signature(secret=secret, body=body, timestamp_ms=ts)}"


def _records(body: dict) -> list[dict]:
    data = body.get("data")
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        return data
    raise WebhookRejected("malformed_body", detail="Thiếu “data” (giao dịch).")


class CassoProvider:
    name = "casso"
    tolerance_seconds = TOLERANCE_SECONDS
    future_skew_seconds = FUTURE_SKEW_SECONDS

    def parse_json(self, raw_body: bytes) -> dict:
        return parse_json_object(raw_body)

    def account_keys(self, body: dict) -> list[str]:
        keys: list[str] = []
        for rec in _records(body):
            va, acc = rec.get("virtualAccountNumber"), rec.get("accountNumber")
            keys += [va if isinstance(va, str) else "", acc if isinstance(acc, str) else ""]
        keys = dedupe(keys)
        if not keys:
            raise WebhookRejected("malformed_body", detail="Thiếu “data.accountNumber”.")
        return keys

    def verify(self, *, headers: Mapping[str, str], raw_body: bytes, body: dict, secrets: Sequence[str],
               now: dt.datetime) -> None:
        value = header(headers, SIGNATURE_HEADER)
        if not value:
            raise WebhookRejected("missing_signature", detail=f"Cần header {SIGNATURE_HEADER}.")
        t, presented = parse_signature_header(value)
        if t is None or not presented:
            raise WebhookRejected("bad_signature", detail=f"Header {SIGNATURE_HEADER} sai dạng t=…,v1=….")
        try:
            message = casso_message(body=body, timestamp_ms=t)
        except (TypeError, ValueError):
            raise WebhookRejected("malformed_body") from None
        expected = [hmac_hex("sha512", s, message) for s in usable_secrets(secrets)]
        if not any_digest_matches(expected, presented):
            raise WebhookRejected("bad_signature")
        check_window(signed_at=int(t) / 1000, now=now, tolerance=self.tolerance_seconds,
                     future_skew=self.future_skew_seconds)

    @staticmethod
    def _record_is_test(rec: dict) -> bool:
        rid = rec.get("id")
        zero = (isinstance(rid, int) and not isinstance(rid, bool) and rid == 0) or rid == "0"
        return zero or rec.get("reference") == TEST_REFERENCE

    def is_test_ping(self, body: dict) -> bool:
        try:
            return all(self._record_is_test(r) for r in _records(body))
        except WebhookRejected:
            return False

    def normalize(self, body: dict) -> list[NormalizedCredit]:
        error = body.get("error", 0)
        if error not in (0, "0"):
            raise WebhookRejected("unsupported_event", detail=f"Casso báo lỗi “{str(error)[:20]}”.")
        out: list[NormalizedCredit] = []
        for rec in _records(body):
            is_test = self._record_is_test(rec)
            event_id = identifier(require(rec, "id", "data."), "data.id")
            signed = whole_vnd(require(rec, "amount", "data."), "data.amount", allow_negative=True)
            credit_amount(signed, is_test=is_test)
            direction = "out" if signed < 0 else "in"
            amount = abs(signed)
            account = text(require(rec, "accountNumber", "data."), "data.accountNumber", required=True).strip()
            virtual = text(rec.get("virtualAccountNumber"), "data.virtualAccountNumber").strip()
            description = text(rec.get("description"), "data.description")
            reference = text(rec.get("reference"), "data.reference").strip()
            occurred_at = local_datetime(require(rec, "transactionDateTime", "data."), "data.transactionDateTime")
            if is_test:
                event_id = probe_event_id("casso", event_id, account, virtual, signed, description, reference,
                                          occurred_at.isoformat())
            out.append(NormalizedCredit(
                provider=self.name, event_id=event_id, account_number=account, virtual_account=virtual,
                amount=amount, direction=direction, description=description, occurred_at=occurred_at,
                bank_reference=reference, is_test=is_test,
                payer_name=text(rec.get("counterAccountName"), "data.counterAccountName").strip(),
            ))
        return out

    def success_response(self) -> tuple[int, dict]:
        # Casso counts any HTTP 2xx as delivered; the body is informative only.
        return 200, {"success": True}
