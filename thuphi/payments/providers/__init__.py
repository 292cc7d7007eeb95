"""Verify and normalise inbound bank-credit webhooks: SePay, Casso (v2), payOS and our ``generic`` format.

Pure Python (no models, no database). The pipeline (``payments.api.receive_webhook``) does, per request::

    prov = get_provider(name)
    body = prov.parse_json(raw)                       # WebhookRejected("malformed_body")
    keys = prov.account_keys(body)                    # virtual account first, then the real one
    ... look up the connection and its secrets by those keys ...
    prov.verify(headers=..., raw_body=raw, body=body, secrets=[current, previous], now=timezone.now())
    credits = prov.normalize(body)                    # list[NormalizedCredit]
    status, payload = prov.success_response()

Every provider is documented in its module and in docs/webhooks.md.
"""
from __future__ import annotations

from .base import MAX_AMOUNT, VIETNAM_TZ, NormalizedCredit, Provider, WebhookRejected
from .casso import CassoProvider, sign_casso
from .generic import GenericProvider, sign_generic
from .payos import PayOSProvider, payos_query_string, sign_payos
from .sepay import SePayProvider

PROVIDERS: dict[str, Provider] = {
    "sepay": SePayProvider(),
    "casso": CassoProvider(),
    "payos": PayOSProvider(),
    "generic": GenericProvider(),
}


def get_provider(name: str) -> Provider:
    """The provider registered under ``name``; ``KeyError`` for an unknown one."""
    return PROVIDERS[name]


__all__ = [
    "MAX_AMOUNT",
    "PROVIDERS",
    "VIETNAM_TZ",
    "CassoProvider",
    "GenericProvider",
    "NormalizedCredit",
    "PayOSProvider",
    "Provider",
    "SePayProvider",
    "WebhookRejected",
    "get_provider",
    "payos_query_string",
    "sign_casso",
    "sign_generic",
    "sign_payos",
]
