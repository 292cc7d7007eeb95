"""Staff login throttling (django-axes) and the client address behind a trusted proxy."""
from __future__ import annotations

import pytest
from django.test import Client, RequestFactory

from thuphi.core.models import Role
from thuphi.portal.ratelimit import axes_client_ip, client_ip

pytestmark = pytest.mark.django_db
PASSWORD = "Mật-khẩu-dài-2026"


def _attempt(client: Client, username: str, password: str, ip: str = "10.0.0.7"):
    return client.post("/staff/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_five_wrong_passwords_lock_that_user_on_that_address_only(make_user, institution):
    # given a cashier
    user = make_user("thungan", Role.CASHIER, institution=institution)
    c = Client()
    # when someone guesses five times from one address: four ordinary failures, the fifth locks
    for _ in range(4):
        r = _attempt(c, user.username, "sai-mat-khau")
        assert r.status_code == 200 and "_auth_user_id" not in c.session
    assert _attempt(c, user.username, "sai-mat-khau").status_code == 429
    # then even the right password is refused there, with a page saying why
    r = _attempt(c, user.username, PASSWORD)
    assert r.status_code == 429
    assert "Tạm khóa đăng nhập" in r.content.decode()
    assert "_auth_user_id" not in c.session
    # and the cashier at another address still gets in: the lock is per (username, address)
    other = Client()
    r = _attempt(other, user.username, PASSWORD, ip="10.0.0.8")
    assert r.status_code == 302 and other.session["_auth_user_id"] == str(user.pk)


def test_a_success_resets_the_failure_count(make_user, institution):
    user = make_user("thungan", Role.CASHIER, institution=institution)
    c = Client()
    for _ in range(4):
        _attempt(c, user.username, "sai")
    assert _attempt(c, user.username, PASSWORD).status_code == 302
    c.logout()
    for _ in range(4):
        _attempt(c, user.username, "sai")
    # four new failures after a success are not a lock-out
    assert _attempt(c, user.username, PASSWORD).status_code == 302


@pytest.mark.parametrize(
    ("hops", "xff", "expected"),
    [
        (0, "1.2.3.4", "10.0.0.1"),            # no proxy trusted: the header is the client's own words
        (1, "6.6.6.6, 1.2.3.4", "1.2.3.4"),    # one proxy: what it saw, not what the client claimed
        (2, "6.6.6.6, 1.2.3.4, 10.9.9.9", "1.2.3.4"),
        (1, "", "10.0.0.1"),                    # header missing: fall back to the socket address
        (1, "6.6.6.6, not-an-address", "10.0.0.1"),  # junk is never taken for an address
    ],
)
def test_client_address_behind_trusted_proxies(settings, hops, xff, expected):
    settings.TRUSTED_PROXY_COUNT = hops
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=xff)
    assert client_ip(request) == expected
    assert axes_client_ip(request) == expected


def test_axes_gets_no_address_rather_than_a_made_up_one():
    request = RequestFactory().get("/")
    request.META.pop("REMOTE_ADDR", None)
    assert client_ip(request) == "unknown" and axes_client_ip(request) is None


def test_a_login_without_any_client_address_still_works(make_user, institution, client):
    # force_login builds a request with no REMOTE_ADDR; axes must store "no address", not fail
    user = make_user("thungan", Role.CASHIER, institution=institution)
    client.force_login(user)
    assert client.get("/staff/").status_code == 200
