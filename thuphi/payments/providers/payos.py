"""payOS payment webhooks (payos.vn/docs "Kiểm tra dữ liệu với signature"; official SDK ``payos`` on PyPI).

The signature travels in the body, not in a header::

    {"code": "00", "desc": "success", "success": true,
     "data": {"orderCode": 123, "amount": 3000, "description": "VQRIO123", "accountNumber": "12345678",
              "reference": "TF230204212323", "transactionDateTime": "2023-02-04 18:25:00", "currency": "VND",
              "paymentLinkId": "124c33293c43417ab7879e14c8d9eb18", "code": "00", "desc": "Thành công",
              "counterAccountBankId": "", "counterAccountBankName": "", "counterAccountName": "",
              "counterAccountNumber": "", "virtualAccountName": "", "virtualAccountNumber": ""},
     "signature": "412e915d2871504ed31be63c8f62a149a4410d34c4c42affc9006ef9917eaa03"}

``signature = hex HMAC-SHA256(checksum_key, "k1=v1&k2=v2&...")`` over the keys of ``data`` in sorted
order, with the values written as the official SDKs write them:

* ``null`` (and the strings ``"null"``/``"undefined"``) -> empty string;
* ``true``/``false`` -> ``true``/``false``; numbers as JavaScript prints them (``3000``);
* strings as they are: no URL-encoding, no escaping;
* arrays -> ``JSON.stringify`` of the array with each object element's keys sorted (one level).

A nested object has no agreed form (the JS SDK writes ``[object Object]``, the Python SDK a Python
repr), so such a body is refused as malformed rather than guessed at. No timestamp is signed: a replay
is absorbed by the pipeline's unique ``(provider, event_id)``.

The webhook sent when a URL is confirmed (``confirm-webhook``) is the body above: ``orderCode 123``,
``description "VQRIO123"`` (payOS's published example, signed with checksum key
``1a54716c…d7675``). Never create a real payment link with ``orderCode 123``.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from .base import (
    NormalizedCredit,
    WebhookRejected,
    any_digest_matches,
    credit_amount,
    dedupe,
    hmac_hex,
    identifier,
    js_number,
    js_stringify,
    local_datetime,
    parse_json_object,
    probe_event_id,
    require,
    text,
    usable_secrets,
    whole_vnd,
)

TEST_ORDER_CODE = 123
TEST_DESCRIPTION = "VQRIO123"
TEST_REFERENCE = "MA_GIAO_DICH_THU_NGHIEM"
SUCCESS_CODE = "00"


def _value(value: Any) -> str:
    if value is None or value in ("null", "undefined"):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return js_number(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        items = [{k: item[k] for k in sorted(item)} if isinstance(item, dict) else item for item in value]
        return js_stringify(items)
    raise ValueError("payOS data holds a nested object, which has no agreed signature form")


def payos_query_string(data: dict) -> str:
    """The ``k=v&k=v`` string payOS signs (keys sorted)."""
    return "&".join(f"{key}={_value(data[key])}" for key in sorted(data))


def sign_payos(*, checksum_key: str, data: dict) -> str:
    """Hex HMAC-SHA256 of the sorted ``k=v&…`` string of ``data`` (the body's ``signature``)."""
    if not checksum_key:
        raise ValueError("an empty checksum key cannot sign")
    return hmac_hex("sha256", checksum_key, payos_query_string(data).encode("utf-8", "surrogatepass"))


def _data(body: dict) -> dict:
    data = body.get("data")
    if not isinstance(data, dict) or not data:
        raise WebhookRejected("malformed_body", detail="Thiếu “data”.")
    return data


class PayOSProvider:
    name = "payos"

    def parse_json(self, raw_body: bytes) -> dict:
        return parse_json_object(raw_body)

    def account_keys(self, body: dict) -> list[str]:
        data = _data(body)
        va, acc = data.get("virtualAccountNumber"), data.get("accountNumber")
        keys = dedupe([va if isinstance(va, str) else "", acc if isinstance(acc, str) else ""])
        if not keys:
            raise WebhookRejected("malformed_body", detail="Thiếu “data.accountNumber”.")
        return keys

    def verify(self, *, headers: Mapping[str, str], raw_body: bytes, body: dict, secrets: Sequence[str],
               now: dt.datetime) -> None:
        signature = body.get("signature")
        if not isinstance(signature, str) or not signature.strip():
            raise WebhookRejected("missing_signature", detail="Thiếu trường “signature”.")
        data = _data(body)
        try:
            message = payos_query_string(data).encode("utf-8", "surrogatepass")
        except (TypeError, ValueError):
            raise WebhookRejected("malformed_body", detail="“data” chứa đối tượng lồng nhau.") from None
        expected = [hmac_hex("sha256", key, message) for key in usable_secrets(secrets)]
        if not any_digest_matches(expected, [signature.strip().lower()]):
            raise WebhookRejected("bad_signature")

    def is_test_ping(self, body: dict) -> bool:
        data = body.get("data")
        if not isinstance(data, dict):
            return False
        order = data.get("orderCode")
        return ((order == TEST_ORDER_CODE or order == str(TEST_ORDER_CODE)) and not isinstance(order, bool)
                and data.get("description") == TEST_DESCRIPTION) or data.get("reference") == TEST_REFERENCE

    def normalize(self, body: dict) -> list[NormalizedCredit]:
        data = _data(body)
        if body.get("code", SUCCESS_CODE) != SUCCESS_CODE or data.get("code", SUCCESS_CODE) != SUCCESS_CODE \
                or body.get("success") is False:
            raise WebhookRejected("unsupported_event", detail="payOS chỉ báo giao dịch thành công (mã “00”).")
        is_test = self.is_test_ping(body)
        order_code = identifier(require(data, "orderCode", "data."), "data.orderCode")
        reference = text(require(data, "reference", "data."), "data.reference", required=True).strip()
        amount = whole_vnd(require(data, "amount", "data."), "data.amount")
        credit_amount(amount, is_test=is_test)
        currency = data.get("currency", "VND")
        if currency not in ("VND", None, ""):
            raise WebhookRejected("unsupported_event", detail=f"Đơn vị tiền “{str(currency)[:8]}” không phải VND.")
        account = text(require(data, "accountNumber", "data."), "data.accountNumber", required=True).strip()
        virtual = text(data.get("virtualAccountNumber"), "data.virtualAccountNumber").strip()
        description = text(data.get("description"), "data.description")
        occurred_at = local_datetime(require(data, "transactionDateTime", "data."), "data.transactionDateTime")
        # payOS has no transaction id of its own: a payment link (orderCode) can be paid by several
        # transfers, each with the bank's reference. orderCode alone would merge them; the bank
        # reference alone is only unique per bank. Together they identify one transfer.
        event_id = f"{order_code}:{reference}"
        if is_test:
            event_id = probe_event_id("payos", event_id, account, virtual, amount, description,
                                      occurred_at.isoformat())
        return [NormalizedCredit(
            provider=self.name, event_id=event_id, account_number=account, virtual_account=virtual,
            amount=amount, direction="in", description=description, occurred_at=occurred_at,
            bank_reference=reference, is_test=is_test,
            payer_name=text(data.get("counterAccountName"), "data.counterAccountName").strip(),
        )]

    def success_response(self) -> tuple[int, dict]:
        # payOS (and its confirm-webhook check) needs an HTTP 2xx; the body is not read.
        return 200, {"success": True}
