"""Our own format for banks and intermediaries that push credits directly (docs/webhooks.md).

    POST /api/v1/webhooks/generic
    Thuphi-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>[,v1=<hex>...]

The signature covers the raw body bytes exactly as sent (no re-serialisation). A signature older than
300 s is stale, one more than 60 s in the future is refused. Several ``v1`` entries may be sent (the
sender signs with each of its keys while rotating), and we accept any of the secrets we hold for the
account (current and previous), so either side can rotate without a gap.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from .base import (
    NormalizedCredit,
    WebhookRejected,
    any_digest_matches,
    aware_datetime,
    check_window,
    credit_amount,
    dedupe,
    header,
    hmac_hex,
    identifier,
    parse_json_object,
    parse_signature_header,
    require,
    text,
    usable_secrets,
    whole_vnd,
)

SIGNATURE_HEADER = "Thuphi-Signature"
TOLERANCE_SECONDS = 300
FUTURE_SKEW_SECONDS = 60
EVENT_TYPES = ("credit", "test")


def generic_signature(*, secret: str, raw_body: bytes, timestamp: int | str) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>.<raw body>"`` keyed with the UTF-8 secret."""
    return hmac_hex("sha256", secret, str(timestamp).encode("ascii") + b"." + bytes(raw_body))


def sign_generic(*, secret: str, raw_body: bytes, timestamp: int) -> str:
    """The full ``Thuphi-Signature`` header value: ``t=<timestamp>,v1=<hex>``."""
    if not secret:
        raise ValueError("an empty secret cannot sign")
    if isinstance(raw_body, str):
        raw_body = raw_body.encode("utf-8")
    ts = int(timestamp)
    return f"t={ts},v1={generic_signature(secret=secret, raw_body=raw_body, timestamp=ts)}"


def _string(value: object, field: str) -> str:
    """A field the format types as ``str`` (possibly empty): null is refused, unlike the optional ones."""
    if not isinstance(value, str):
        raise WebhookRejected("malformed_body", detail=f"Trường “{field}” phải là chuỗi.")
    return value


class GenericProvider:
    name = "generic"
    tolerance_seconds = TOLERANCE_SECONDS
    future_skew_seconds = FUTURE_SKEW_SECONDS

    def parse_json(self, raw_body: bytes) -> dict:
        return parse_json_object(raw_body)

    def account_keys(self, body: dict) -> list[str]:
        keys = dedupe([body.get("virtual_account") if isinstance(body.get("virtual_account"), str) else "",
                       body.get("account_number") if isinstance(body.get("account_number"), str) else ""])
        if not keys:
            raise WebhookRejected("malformed_body", detail="Thiếu “account_number”.")
        return keys

    def verify(self, *, headers: Mapping[str, str], raw_body: bytes, body: dict, secrets: Sequence[str],
               now: dt.datetime) -> None:
        value = header(headers, SIGNATURE_HEADER)
        if not value:
            raise WebhookRejected("missing_signature", detail=f"Cần header {SIGNATURE_HEADER}.")
        t, presented = parse_signature_header(value)
        if t is None or not presented:
            raise WebhookRejected("bad_signature", detail=f"Header {SIGNATURE_HEADER} sai dạng t=…,v1=….")
        keys = usable_secrets(secrets)
        expected = [generic_signature(secret=s, raw_body=raw_body, timestamp=t) for s in keys]
        if not any_digest_matches(expected, presented):
            raise WebhookRejected("bad_signature")
        # Only an authentic message learns that its clock is off; a forger gets bad_signature above.
        check_window(signed_at=int(t), now=now, tolerance=self.tolerance_seconds,
                     future_skew=self.future_skew_seconds)

    def is_test_ping(self, body: dict) -> bool:
        return body.get("type") == "test"

    def normalize(self, body: dict) -> list[NormalizedCredit]:
        kind = require(body, "type")
        if kind not in EVENT_TYPES:
            raise WebhookRejected("unsupported_event",
                                  detail=f"“type” phải là “credit” hoặc “test”, không phải “{str(kind)[:20]}”.")
        is_test = kind == "test"
        event_id = identifier(require(body, "id"), "id")
        if not isinstance(body["id"], str):
            raise WebhookRejected("malformed_body", detail="Trường “id” phải là chuỗi.")
        amount = whole_vnd(require(body, "amount"), "amount")
        credit_amount(amount, is_test=is_test)
        return [NormalizedCredit(
            provider=self.name,
            event_id=event_id,
            account_number=text(require(body, "account_number"), "account_number", required=True).strip(),
            virtual_account=text(body.get("virtual_account"), "virtual_account").strip(),
            amount=amount,
            direction="in",
            description=_string(require(body, "description"), "description"),
            occurred_at=aware_datetime(require(body, "transaction_date"), "transaction_date"),
            bank_reference=text(body.get("reference_code"), "reference_code").strip(),
            is_test=is_test,
            payer_name=text(body.get("payer_name"), "payer_name").strip(),  # optional extension
        )]

    def success_response(self) -> tuple[int, dict]:
        return 200, {"success": True}
