"""API tokens: `thuphi token create`, what is stored, and who is let in."""
from __future__ import annotations

import hashlib
import io

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from thuphi.core.models import ApiToken
from thuphi.core.services import token_authenticate, token_create, token_revoke

pytestmark = pytest.mark.django_db


def create_token(username: str, *extra: str) -> str:
    out = io.StringIO()
    call_command("token", "create", username, *extra, stdout=out)
    return out.getvalue().strip()


def get_institution(raw: str, code: str):
    return Client().get(f"/api/v1/institutions/{code}", headers={"Authorization": f"Bearer {raw}"})


def test_command_prints_a_token_that_authenticates(cashier, institution):
    # given a cashier
    # when an operator runs `thuphi token create thungan`
    raw = create_token("thungan")
    # then a single line with the token is printed, and it opens the API
    assert raw.startswith("thp_") and "\n" not in raw and len(raw) > 40
    r = get_institution(raw, institution.code)
    assert r.status_code == 200, r.content
    assert r.json()["code"] == institution.code
    assert ApiToken.objects.get().user == cashier


def test_each_run_prints_a_new_token(cashier):
    a, b = create_token("thungan"), create_token("thungan")
    assert a != b
    assert ApiToken.objects.filter(user=cashier).count() == 2


def test_name_option_is_kept(cashier):
    create_token("thungan", "--name", "Phần mềm quản lý trường học")
    assert ApiToken.objects.get().name == "Phần mềm quản lý trường học"


def test_only_the_sha256_digest_is_stored(cashier):
    raw = create_token("thungan")
    token = ApiToken.objects.get()
    assert token.digest == hashlib.sha256(raw.encode()).hexdigest()
    # the plain token is in no column of the row (the prefix is a short, non-secret part of it)
    for field in ApiToken._meta.concrete_fields:
        value = field.value_from_object(token)
        assert raw not in str(value), field.name
    assert len(token.prefix) < len(raw) // 3
    # and the row found by the plain text alone does not exist
    assert not ApiToken.objects.filter(digest=raw).exists()
    assert not ApiToken.objects.filter(prefix=raw).exists()


def test_unknown_user_is_a_command_error_in_vietnamese(db):
    with pytest.raises(CommandError) as exc:
        create_token("khong-ton-tai")
    message = str(exc.value)
    assert "Không có người dùng" in message and "khong-ton-tai" in message
    assert ApiToken.objects.count() == 0


def test_revoked_token_is_401(cashier, institution):
    raw = create_token("thungan")
    token_revoke(token=ApiToken.objects.get())
    r = get_institution(raw, institution.code)
    assert r.status_code == 401
    assert r.json()["code"] == "unauthorized" and r.json()["message"]
    assert institution.name.encode() not in r.content


def test_inactive_user_is_401(cashier, institution):
    raw = create_token("thungan")
    cashier.is_active = False
    cashier.save(update_fields=["is_active"])
    r = get_institution(raw, institution.code)
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"


def test_a_token_that_only_looks_right_is_401(cashier, institution):
    raw = create_token("thungan")
    digest = ApiToken.objects.get().digest  # the stored digest is not itself a credential
    for forged in (raw[:-1] + ("A" if raw[-1] != "A" else "B"), raw[:12], digest):
        r = get_institution(forged, institution.code)
        assert r.status_code == 401, forged


def test_other_schemes_and_missing_header_are_401(cashier, institution):
    raw = create_token("thungan")
    c = Client()
    assert c.get(f"/api/v1/institutions/{institution.code}").status_code == 401
    r = c.get(f"/api/v1/institutions/{institution.code}", headers={"Authorization": f"Token {raw}"})
    assert r.status_code == 401


def test_use_is_recorded_at_most_once_a_minute(cashier, institution):
    raw = create_token("thungan")
    token = ApiToken.objects.get()
    assert token.last_used_at is None
    assert token_authenticate(raw=raw) == cashier
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None and (timezone.now() - first).total_seconds() < 5
    token_authenticate(raw=raw)
    token.refresh_from_db()
    assert token.last_used_at == first


def test_revoking_twice_keeps_the_first_time(cashier):
    token, _raw = token_create(username="thungan")
    token_revoke(token=token)
    token.refresh_from_db()
    first = token.revoked_at
    token_revoke(token=token)
    token.refresh_from_db()
    assert first is not None and token.revoked_at == first
