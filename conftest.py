"""Shared fixtures: a small world in new Bắc Ninh (province 24) with staff of every role."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client

from thuphi.core.models import Role, User
from thuphi.core.services import token_create


def pytest_configure(config):
    # PBKDF2's deliberate slowness is for production; in tests it only makes the suite slow. Set for
    # the whole session (not per test) so module-scoped fixtures hash the same way tests check.
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Tests roll back the rows a cached bank connection points to; the cache has tests of its own.
    settings.WEBHOOK_CREDENTIALS_TTL = 0


@pytest.fixture
def make_institution(db):
    from thuphi.registry.models import Commune
    from thuphi.registry.services import BankAccountInput, institution_create

    from thuphi.registry.services import admin_units_sync

    # A transactional test flushes every table, the units loaded by migration included.
    if not Commune.objects.exists():
        admin_units_sync()
    counter = {"n": 0}

    def make(**overrides):
        counter["n"] += 1
        n = counter["n"]
        commune = Commune.objects.filter(province_id=overrides.pop("province_code", "24")).order_by("code").first()
        data = dict(
            actor=None, code=f"INST{n:03d}", name=f"Trường Tiểu học Số {n}", sector="education", kind="primary",
            ownership="public", commune_code=commune.code, tax_code="2300123456",
            bank_accounts=[BankAccountInput(bank_bin="970436", account_number=f"10234567{n:02d}",
                                            account_name="TRUONG TIEU HOC SO 1")],
        )
        data.update(overrides)
        return institution_create(**data)

    return make


@pytest.fixture
def institution(make_institution):
    return make_institution(code="BN-TH-01", name="Trường Tiểu học Kinh Bắc")


@pytest.fixture
def make_user(db):
    def make(username: str, role: str, **kw) -> User:
        return User.objects.create_user(username=username, password="Mật-khẩu-dài-2026", role=role, **kw)

    return make


@pytest.fixture
def system_admin(make_user):
    return make_user("sysadmin", Role.SYSTEM_ADMIN)


@pytest.fixture
def cashier(make_user, institution):
    return make_user("thungan", Role.CASHIER, institution=institution)


class ApiClient:
    """A test client that speaks JSON and carries a bearer token."""

    def __init__(self, user: User | None):
        self.client = Client()
        self.headers = {}
        if user is not None:
            _t, raw = token_create(username=user.username)
            self.headers["Authorization"] = f"Bearer {raw}"

    def _call(self, method, path, body=None, headers=None):
        h = {**self.headers, **(headers or {})}
        kwargs = {"headers": h}
        if body is not None:
            kwargs["data"] = json.dumps(body, default=str)
            kwargs["content_type"] = "application/json"
        return getattr(self.client, method)(path, **kwargs)

    def get(self, path, **kw):
        return self._call("get", path, **kw)

    def post(self, path, body=None, **kw):
        return self._call("post", path, body, **kw)


@pytest.fixture
def api_as():
    return ApiClient


@pytest.fixture
def bill_body(institution):
    return {
        "institution": institution.code,
        "payer": {"code": "HS001", "name": "Nguyễn Thị Lan", "phone": "0912345678"},
        "items": [{"name": "Tiền ăn bán trú tháng 11", "amount": 450000},
                  {"name": "Bảo hiểm y tế học sinh", "amount": 884520, "kind": "student_insurance"}],
        "due_date": (dt.date.today() + dt.timedelta(days=15)).isoformat(),
    }


@pytest.fixture(autouse=True)
def _reload_admin_units_after_flush(request, django_db_blocker):
    """Put the administrative units back after a transactional test flushed them.

    They are reference data loaded by a migration; every test expects them. Autouse fixtures are
    set up first, so this teardown runs after the flush of `transactional_db` / `live_server`.
    """
    yield
    if not _is_transactional(request):
        return
    from thuphi.registry.models import Commune
    from thuphi.registry.services import admin_units_sync

    with django_db_blocker.unblock():
        if not Commune.objects.exists():
            admin_units_sync()


def _is_transactional(request) -> bool:
    if {"transactional_db", "live_server"} & set(request.fixturenames):
        return True
    marker = request.node.get_closest_marker("django_db")
    return bool(marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])))
