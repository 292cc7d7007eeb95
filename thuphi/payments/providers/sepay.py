"""SePay bank-transaction webhooks (developer.sepay.vn, "SePay Webhooks").

Authentication: the "API Key" method: every request carries ``Authorization: Apikey <API_KEY>``; we
compare the key with the one stored for the receiving account (current or previous), in constant time.
SePay's API-key method has no timestamp and no body signature: replays are absorbed by the pipeline's
unique ``(provider, event_id)``, and the body is trusted as far as the key is.

SePay also offers HMAC-SHA256 (``X-SePay-Signature``/``X-SePay-Timestamp``) and OAuth 2.0; we do not accept
them yet (see docs/webhooks.md), so an institution must choose "API Key" when creating the webhook.

Payload (JSON)::

    {"id": 92704, "gateway": "Vietcombank", "transactionDate": "2023-03-25 14:02:37",
     "accountNumber": "0123499999", "code": null, "content": "chuyen tien mua iphone",
     "transferType": "in", "transferAmount": 2277000, "accumulated": 19077000,
     "subAccount": null, "referenceCode": "MBVCB.3278907687", "description": "<full bank SMS>"}

Success: HTTP 200 or 201 with body ``{"success": true}``; anything else is retried (Fibonacci schedule,
up to 7 retries over about 33 minutes, messages older than 5 hours dropped).
The dashboard's "Gửi thử" (send test) posts ``id: 0``, ``code: "SEPAYTEST"``, ``content: "SEPAY TEST WEBHOOK"``.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from .base import (
    NormalizedCredit,
    WebhookRejected,
    credit_amount,
    dedupe,
    header,
    identifier,
    local_datetime,
    parse_json_object,
    probe_event_id,
    require,
    secret_equals,
    text,
    usable_secrets,
    whole_vnd,
)

TEST_CODE = "SEPAYTEST"
TEST_CONTENT = "SEPAY TEST WEBHOOK"


def _is_zero_id(value: object) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool) and value == 0) or value == "0"


class SePayProvider:
    name = "sepay"

    def parse_json(self, raw_body: bytes) -> dict:
        return parse_json_object(raw_body)

    def account_keys(self, body: dict) -> list[str]:
        sub, acc = body.get("subAccount"), body.get("accountNumber")
        keys = dedupe([sub if isinstance(sub, str) else "", acc if isinstance(acc, str) else ""])
        if not keys:
            raise WebhookRejected("malformed_body", detail="Thiếu “accountNumber”.")
        return keys

    def verify(self, *, headers: Mapping[str, str], raw_body: bytes, body: dict, secrets: Sequence[str],
               now: dt.datetime) -> None:
        value = header(headers, "Authorization")
        scheme, _, key = value.partition(" ")
        key = key.strip()
        if not value or scheme.lower() != "apikey" or not key:
            raise WebhookRejected("missing_signature", detail="Cần header “Authorization: Apikey <khóa>”.")
        matched = False
        for secret in usable_secrets(secrets):
            matched |= secret_equals(key, secret)
        if not matched:
            raise WebhookRejected("bad_signature")

    def is_test_ping(self, body: dict) -> bool:
        if _is_zero_id(body.get("id")):
            return True
        content = body.get("content")
        return body.get("code") == TEST_CODE and isinstance(content, str) and TEST_CONTENT in content.upper()

    def normalize(self, body: dict) -> list[NormalizedCredit]:
        is_test = self.is_test_ping(body)
        event_id = identifier(require(body, "id"), "id")
        transfer_type = require(body, "transferType")
        if transfer_type not in ("in", "out"):
            raise WebhookRejected("malformed_body", detail="“transferType” phải là “in” hoặc “out”.")
        amount = whole_vnd(require(body, "transferAmount"), "transferAmount")
        credit_amount(amount, is_test=is_test)
        account = text(require(body, "accountNumber"), "accountNumber", required=True).strip()
        virtual = text(body.get("subAccount"), "subAccount").strip()
        # "content" is the transfer description; "description" is the whole bank SMS/notification.
        description = text(body.get("content"), "content") or text(body.get("description"), "description")
        reference = text(body.get("referenceCode"), "referenceCode").strip()
        occurred_at = local_datetime(require(body, "transactionDate"), "transactionDate")
        if is_test:
            event_id = probe_event_id("sepay", event_id, account, virtual, amount, transfer_type, description,
                                      reference, occurred_at.isoformat())
        return [NormalizedCredit(
            provider=self.name, event_id=event_id, account_number=account, virtual_account=virtual,
            amount=amount, direction=transfer_type, description=description, occurred_at=occurred_at,
            bank_reference=reference, is_test=is_test, payer_name="",
        )]

    def success_response(self) -> tuple[int, dict]:
        return 200, {"success": True}
