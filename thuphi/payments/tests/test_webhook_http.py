"""The production entry point for bank notifications (thuphi.config.wsgi -> webhook_http.WebhookHandler)
and the per-process credentials cache (services.connection_for)."""
from __future__ import annotations

import io
import json
import time

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from thuphi.billing.models import Bill
from thuphi.payments import services
from thuphi.payments.models import BankConnection, Credit, EventConflict, InboundEvent
from thuphi.payments.providers import sign_generic
from thuphi.payments.tests.test_webhooks import SECRET, bill, connected, generic_body  # noqa: F401 (fixtures)


def wsgi(method: str, path: str, raw: bytes = b"", *, headers: dict | None = None, host: str = "testserver"):
    """One request through thuphi.config.wsgi.application, as a WSGI server makes it."""
    from thuphi.config.wsgi import application

    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "testserver",
               "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
               "wsgi.input": io.BytesIO(raw), "wsgi.errors": io.StringIO(), "CONTENT_LENGTH": str(len(raw)),
               "CONTENT_TYPE": "application/json", "HTTP_HOST": host}
    for k, v in (headers or {}).items():
        environ["HTTP_" + k.upper().replace("-", "_")] = v
    seen = {}

    def start_response(status, response_headers, exc_info=None):
        seen["status"], seen["headers"] = int(status.split()[0]), dict(response_headers)

    # As django.test.Client does: the test's connection must survive the request cycle.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        body = b"".join(application(environ, start_response))
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return seen["status"], seen["headers"], body


def signed(raw: bytes, secret: str = SECRET) -> dict:
    return {"Thuphi-Signature": sign_generic(secret=secret, raw_body=raw, timestamp=int(time.time()))}


@pytest.fixture(autouse=True)
def _fresh_cache():
    services.connection_cache_clear()
    yield
    services.connection_cache_clear()


@pytest.mark.django_db(transaction=True)
def test_signed_delivery_through_the_lean_entry_books_the_bill(bill, connected):
    # given an unpaid bill; when the bank's signed notification reaches the production WSGI entry point
    raw = generic_body(account=connected.account_number, amount=bill.amount_due, description=f"IBFT {bill.reference}")
    status, headers, body = wsgi("POST", "/api/v1/webhooks/generic", raw, headers=signed(raw))
    # then it is acknowledged with a sized JSON answer, stored once and (applied inline here) pays the bill
    assert status == 200, body
    assert json.loads(body)["thuphi"] == ["stored"]
    assert headers["Content-Length"] == str(len(body)) and headers["Content-Type"] == "application/json"
    assert InboundEvent.objects.count() == 1 and Credit.objects.count() == 1
    assert Bill.objects.get(pk=bill.pk).status == "paid"
    # and the same delivery again changes nothing
    status, _h, body = wsgi("POST", "/api/v1/webhooks/generic", raw, headers=signed(raw))
    assert status == 200 and json.loads(body)["thuphi"] == ["duplicate"]
    assert InboundEvent.objects.count() == 1 and Credit.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_conflicting_redelivery_gets_the_api_error_shape_and_overwrites_nothing(bill, connected):
    first = generic_body(account=connected.account_number, amount=100_000, description=bill.reference)
    other = generic_body(account=connected.account_number, amount=900_000, description=bill.reference)
    assert wsgi("POST", "/api/v1/webhooks/generic", first, headers=signed(first))[0] == 200
    status, _h, body = wsgi("POST", "/api/v1/webhooks/generic", other, headers=signed(other))
    assert status == 409 and json.loads(body)["code"] == "event_conflict" and json.loads(body)["message"]
    assert EventConflict.objects.count() == 1 and InboundEvent.objects.get().amount == 100_000
    assert Bill.objects.get(pk=bill.pk).amount_paid == 100_000


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("case", ["wrong_secret", "get", "unknown_provider", "nested_path", "bad_host"])
def test_refused_at_the_lean_entry_stores_nothing(bill, connected, case):
    raw = generic_body(account=connected.account_number, amount=bill.amount_due, description=bill.reference)
    expected = {"wrong_secret": 401, "get": 405, "unknown_provider": 404, "nested_path": 404, "bad_host": 400}[case]
    if case == "wrong_secret":
        got = wsgi("POST", "/api/v1/webhooks/generic", raw, headers=signed(raw, "not-the-secret-000000"))
    elif case == "get":
        got = wsgi("GET", "/api/v1/webhooks/generic")
    elif case == "unknown_provider":
        got = wsgi("POST", "/api/v1/webhooks/momo", raw, headers=signed(raw))
    elif case == "nested_path":
        got = wsgi("POST", "/api/v1/webhooks/generic/extra", raw, headers=signed(raw))
    else:
        got = wsgi("POST", "/api/v1/webhooks/generic", raw, headers=signed(raw), host="evil.example")
    status, headers, body = got
    assert status == expected, body
    if case != "bad_host":
        assert json.loads(body)["code"] and json.loads(body)["message"]
    if case == "get":
        assert headers["Allow"] == "POST"
    assert InboundEvent.objects.count() == 0 and Credit.objects.count() == 0
    assert Bill.objects.get(pk=bill.pk).amount_paid == 0


@pytest.mark.django_db(transaction=True)
def test_other_paths_still_get_the_full_stack(connected):
    # the API root keeps its authentication (ninja's 401 JSON), pages keep sessions and CSRF cookies
    status, _h, body = wsgi("GET", "/api/v1/kpi")
    assert status == 401 and json.loads(body)["code"] == "unauthorized"
    status, headers, _b = wsgi("GET", "/staff/login/")
    assert status == 200 and "csrftoken" in headers.get("Set-Cookie", "")


@pytest.mark.django_db(transaction=True)
def test_credentials_are_looked_up_once_per_ttl(settings, bill, connected, django_assert_num_queries):
    settings.WEBHOOK_CREDENTIALS_TTL = 10
    settings.PAYMENTS_APPLY_INLINE = False
    raw1 = generic_body(account=connected.account_number, amount=1_000, description=bill.reference, event_id="A")
    raw2 = generic_body(account=connected.account_number, amount=1_000, description=bill.reference, event_id="B")
    # the first delivery reads the connection and stores the event; the second only stores
    with django_assert_num_queries(2):
        assert wsgi("POST", "/api/v1/webhooks/generic", raw1, headers=signed(raw1))[0] == 200
    with django_assert_num_queries(1):
        assert wsgi("POST", "/api/v1/webhooks/generic", raw2, headers=signed(raw2))[0] == 200
    assert InboundEvent.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_rotation_through_the_service_takes_effect_at_once_and_others_within_the_ttl(
        settings, monkeypatch, bill, connected):
    settings.WEBHOOK_CREDENTIALS_TTL = 10
    settings.PAYMENTS_APPLY_INLINE = False
    new_secret = "generic-secret-NEW-0123456789abcdef"

    def deliver(event_id: str, secret: str) -> int:
        raw = generic_body(account=connected.account_number, amount=1_000, description=bill.reference,
                           event_id=event_id)
        return wsgi("POST", "/api/v1/webhooks/generic", raw, headers=signed(raw, secret))[0]

    assert deliver("E1", SECRET) == 200  # cached now
    # given the secret rotated and the rotation finished through the services (this process clears its cache)
    services.connection_set(bank_account=connected, provider="generic", secret=new_secret)
    services.connection_rotation_finish(connection=BankConnection.objects.get(bank_account=connected,
                                                                              provider="generic"))
    # then the old secret is refused at once and the new one accepted
    assert deliver("E2", SECRET) == 401
    assert deliver("E3", new_secret) == 200
    # given a change made behind this process's back (another server, a direct update)
    BankConnection.objects.filter(bank_account=connected, provider="generic").update(
        secret="generic-secret-OTHER-0123456789ab")
    # then the cached secret still works until the TTL ends (the documented price), and not after
    assert deliver("E4", new_secret) == 200
    later = time.monotonic() + 11
    monkeypatch.setattr(services.time, "monotonic", lambda: later)
    assert deliver("E5", new_secret) == 401
    assert set(InboundEvent.objects.values_list("event_id", flat=True)) == {"E1", "E3", "E4"}
