"""Idempotency-Key: one resource per (user, scope, key), also when retries arrive at the same instant.

The concurrent test runs on both databases. On PostgreSQL the losers of the race meet the unique
constraint on IdempotencyRecord and roll back; on SQLite the IMMEDIATE transaction mode queues the
writers, and the same constraint turns every writer after the first into a replay.
"""
from __future__ import annotations

import threading

import pytest
from django.db import connections
from django.test import Client

from thuphi.billing.models import Bill, BillLine
from thuphi.core.errors import Conflict
from thuphi.core.models import IdempotencyRecord, Role
from thuphi.core.services import idempotent_create, request_fingerprint
from thuphi.registry.models import Commune, Payer

THREADS = 8


@pytest.fixture
def admin_units_kept(django_db_setup, django_db_blocker):
    """Keep the administrative units that migration 0002 loaded across a transactional test.

    A transactional test ends with a flush of every table, the migration's data included; the next
    transactional test would find no communes. Request this fixture *before* `transactional_db` so
    that it is torn down after the flush and can load the units again.
    """
    from thuphi.registry.services import admin_units_sync

    with django_db_blocker.unblock():
        if Commune.objects.count() != 3321:
            admin_units_sync()
    yield
    with django_db_blocker.unblock():
        admin_units_sync()


def test_concurrent_posts_with_one_key_make_one_bill(admin_units_kept, transactional_db, api_as, cashier,
                                                      bill_body):
    # given one cashier's token and one body, and 8 requests with the same Idempotency-Key released at once
    headers = {**api_as(cashier).headers, "Idempotency-Key": "import-2026-11-HS001"}
    barrier = threading.Barrier(THREADS)
    results: list[tuple[int, dict]] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            client = Client()
            barrier.wait(timeout=30)
            r = client.post("/api/v1/bills", data=bill_body, content_type="application/json", headers=headers)
            with lock:
                results.append((r.status_code, r.json()))
        except Exception as exc:  # noqa: BLE001 - reported below, a thread must not die silently
            with lock:
                errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    # when they all run
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a request hung"
    # then every request got an answer, exactly one created the bill and the rest replayed it
    assert errors == []
    assert len(results) == THREADS
    statuses = sorted(status for status, _body in results)
    assert statuses == [200] * (THREADS - 1) + [201], results
    references = {body["reference"] for _status, body in results}
    assert len(references) == 1
    # and there is one bill, one payer, one record; the losers' bills and lines were rolled back
    assert Bill.objects.count() == 1
    assert Bill.objects.get().reference == references.pop()
    assert BillLine.objects.count() == 2
    assert Payer.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1
    # and every answer is the same bill, field for field
    first = results[0][1]
    assert all(body == first for _status, body in results)


# --- the same rules, one request at a time ----------------------------------------------------------


@pytest.mark.django_db
def test_a_key_is_private_to_its_user(api_as, make_user, cashier, institution, bill_body):
    # given two cashiers of one institution who happen to choose the same key
    other = make_user("thungan2", Role.CASHIER, institution=institution)
    h = {"Idempotency-Key": "2026-11-01"}
    a = api_as(cashier).post("/api/v1/bills", bill_body, headers=h)
    b = api_as(other).post("/api/v1/bills", bill_body, headers=h)
    # then each gets a bill of their own
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["reference"] != b.json()["reference"]
    assert Bill.objects.count() == 2 and IdempotencyRecord.objects.count() == 2


@pytest.mark.django_db
def test_same_body_with_keys_in_another_order_is_a_replay(api_as, cashier, bill_body):
    api = api_as(cashier)
    h = {"Idempotency-Key": "k-order"}
    first = api.post("/api/v1/bills", bill_body, headers=h)
    reordered = dict(reversed(list(bill_body.items())))
    second = api.post("/api/v1/bills", reordered, headers=h)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["reference"] == second.json()["reference"]
    assert Bill.objects.count() == 1


@pytest.mark.django_db
def test_other_body_with_a_used_key_is_409_and_creates_nothing(api_as, cashier, bill_body):
    api = api_as(cashier)
    h = {"Idempotency-Key": "k-1"}
    assert api.post("/api/v1/bills", bill_body, headers=h).status_code == 201
    changed = {**bill_body, "title": "Khoản thu khác"}
    r = api.post("/api/v1/bills", changed, headers=h)
    assert r.status_code == 409
    assert r.json()["code"] == "idempotency_key_reused" and r.json()["message"]
    assert Bill.objects.count() == 1 and IdempotencyRecord.objects.count() == 1


@pytest.mark.django_db
def test_a_refused_request_does_not_burn_the_key(api_as, cashier, bill_body):
    # given a request that fails validation inside the service
    api = api_as(cashier)
    h = {"Idempotency-Key": "k-fix"}
    bad = {**bill_body, "due_date": "2000-01-01"}
    assert api.post("/api/v1/bills", bad, headers=h).status_code == 422
    assert IdempotencyRecord.objects.count() == 0
    # when the client retries the corrected body with the same key... it is another body, so it is
    # a first request, not a conflict: nothing was recorded for the failed one
    r = api.post("/api/v1/bills", bill_body, headers=h)
    assert r.status_code == 201
    assert Bill.objects.count() == 1


@pytest.mark.django_db
def test_key_longer_than_255_is_refused_before_anything_is_written(api_as, cashier, bill_body):
    r = api_as(cashier).post("/api/v1/bills", bill_body, headers={"Idempotency-Key": "k" * 256})
    assert r.status_code == 422
    assert r.json()["code"] == "idempotency_key_invalid"
    assert Bill.objects.count() == 0 and IdempotencyRecord.objects.count() == 0


@pytest.mark.django_db
def test_service_runs_create_once_per_key(cashier):
    calls: list[int] = []

    def create() -> str:
        calls.append(1)
        return f"R{len(calls)}"

    fp = request_fingerprint({"b": 1, "a": [1, 2]})
    assert idempotent_create(user=cashier, scope="s", key="k", fingerprint=fp, create=create) == ("R1", True)
    assert idempotent_create(user=cashier, scope="s", key="k", fingerprint=fp, create=create) == ("R1", False)
    # another scope is another namespace
    assert idempotent_create(user=cashier, scope="t", key="k", fingerprint=fp, create=create) == ("R2", True)
    # no key: no memory
    assert idempotent_create(user=cashier, scope="s", key=None, fingerprint=fp, create=create) == ("R3", True)
    assert len(calls) == 3
    with pytest.raises(Conflict) as exc:
        idempotent_create(user=cashier, scope="s", key="k", fingerprint=request_fingerprint({}), create=create)
    assert exc.value.code == "idempotency_key_reused"
    assert len(calls) == 3


@pytest.mark.django_db
def test_failed_create_rolls_back_its_writes_and_leaves_no_record(cashier, institution):
    from thuphi.registry.services import payer_upsert

    def create() -> str:
        payer_upsert(institution=institution, code="HS001", name="Nguyễn Thị Lan")  # written, then...
        raise Conflict("boom", code="boom")  # ...the resource fails half-way

    with pytest.raises(Conflict):
        idempotent_create(user=cashier, scope="s", key="k", fingerprint="f", create=create)
    assert IdempotencyRecord.objects.count() == 0
    assert Payer.objects.count() == 0
