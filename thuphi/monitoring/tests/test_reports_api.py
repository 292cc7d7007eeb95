"""Aggregate reports: validation with clear errors, DHIS2-style approval, who may do what."""
from __future__ import annotations

import pytest

from thuphi.core.models import Role
from thuphi.monitoring.models import AggregateReport

pytestmark = pytest.mark.django_db


@pytest.fixture
def hospital(make_institution):
    return make_institution(code="BN-BV-01", name="Bệnh viện Đa khoa tỉnh", sector="health",
                            kind="provincial_hospital", legacy_province_code="27")


@pytest.fixture
def accountant(make_user, hospital):
    return make_user("ketoan", Role.ACCOUNTANT, institution=hospital)


def body(code="BN-BV-01", **kw):
    b = {"institution": code, "period_start": "2025-01-01", "period_end": "2025-01-31", "payments": 1000,
         "payments_cashless": 800, "value": 500_000_000, "value_cashless": 450_000_000,
         "cashless_methods": ["transfer"], "digital_platforms": ["hospital_management"]}
    b.update(kw)
    return b


def test_institution_user_submits_and_the_province_approves(api_as, accountant, monitor):
    r = api_as(accountant).post("/api/v1/aggregate-reports", body())
    assert r.status_code == 201, r.content
    report = r.json()
    assert report["status"] == "submitted" and report["share_count"] == 80.0 and report["share_value"] == 90.0
    assert report["submitted_by"] == "ketoan" and report["province_code"] == "24"
    # not counted until approved
    kpi = api_as(monitor).get("/api/v1/kpi?area=24&from=2025-01-01&to=2025-01-31").json()
    assert kpi["payments"] == 0 and kpi["completeness"]["received"] == 1 and kpi["completeness"]["approved"] == 0
    r = api_as(monitor).post(f"/api/v1/aggregate-reports/{report['id']}/approve")
    assert r.status_code == 200 and r.json()["status"] == "approved" and r.json()["decided_by"] == "giamsat"
    kpi = api_as(monitor).get("/api/v1/kpi?area=24&from=2025-01-01&to=2025-01-31").json()
    assert kpi["payments"] == 1000 and kpi["share_count"] == 80.0 and kpi["institutions_digital"] == 1
    # approved is final
    r = api_as(monitor).post(f"/api/v1/aggregate-reports/{report['id']}/return", {"reason": "Sai"})
    assert r.status_code == 409 and r.json()["code"] == "invalid_transition"


def test_return_needs_a_reason_and_frees_the_period(api_as, accountant, monitor):
    rid = api_as(accountant).post("/api/v1/aggregate-reports", body()).json()["id"]
    r = api_as(monitor).post(f"/api/v1/aggregate-reports/{rid}/return", {"reason": "  "})
    assert r.status_code == 422 and r.json()["code"] == "reason_required"
    r = api_as(monitor).post(f"/api/v1/aggregate-reports/{rid}/return", {"reason": "Thiếu số liệu thẻ"})
    assert r.status_code == 200 and r.json()["status"] == "returned"
    assert r.json()["return_reason"] == "Thiếu số liệu thẻ"
    # the institution corrects and submits again for the same period
    r = api_as(accountant).post("/api/v1/aggregate-reports", body(payments_cashless=900, value_cashless=460_000_000))
    assert r.status_code == 201


@pytest.mark.parametrize("change, code, field", [
    ({"payments_cashless": 1001}, "cashless_above_total", "payments_cashless"),
    ({"value_cashless": 500_000_001}, "cashless_above_total", "value_cashless"),
    ({"payments": -1}, "negative_value", "payments"),
    ({"value": -5}, "negative_value", "value"),
    ({"period_end": "2024-12-31"}, "invalid_period", "period_end"),
    ({"period_end": "2999-01-31"}, "period_in_future", "period_end"),
    ({"cashless_methods": ["cash"]}, "invalid_method", "cashless_methods"),
    ({"cashless_methods": []}, "cashless_methods_required", "cashless_methods"),
    ({"digital_platforms": ["fax"]}, "invalid_platform", "digital_platforms"),
    ({"payments": 0, "payments_cashless": 0}, "figures_inconsistent", "value"),
])
def test_invalid_figures_are_refused_with_a_clear_error(api_as, accountant, change, code, field):
    r = api_as(accountant).post("/api/v1/aggregate-reports", body(**change))
    assert r.status_code == 422, r.content
    err = r.json()
    assert err["code"] == code and err["message"]
    assert any(d["field"] == field and d["code"] == code for d in err["details"])
    assert AggregateReport.objects.count() == 0


def test_unknown_institution(api_as, system_admin):
    r = api_as(system_admin).post("/api/v1/aggregate-reports", body(code="KHONG-CO"))
    assert r.status_code == 422 and r.json()["code"] == "unknown_institution"


def test_period_overlapping_an_approved_report_is_refused(api_as, accountant, monitor):
    rid = api_as(accountant).post("/api/v1/aggregate-reports", body()).json()["id"]
    api_as(monitor).post(f"/api/v1/aggregate-reports/{rid}/approve")
    r = api_as(accountant).post("/api/v1/aggregate-reports", body(period_start="2025-01-31", period_end="2025-02-27"))
    assert r.status_code == 409 and r.json()["code"] == "period_overlaps_approved"
    assert "01/01/2025" in r.json()["message"]
    # the next period is fine
    r = api_as(accountant).post("/api/v1/aggregate-reports", body(period_start="2025-02-01", period_end="2025-02-28"))
    assert r.status_code == 201


def test_period_overlapping_a_pending_report_is_refused(api_as, accountant):
    assert api_as(accountant).post("/api/v1/aggregate-reports", body()).status_code == 201
    r = api_as(accountant).post("/api/v1/aggregate-reports", body())
    assert r.status_code == 409 and r.json()["code"] == "period_overlaps_submitted"


def test_approving_two_overlapping_reports_the_second_is_refused(api_as, accountant, monitor, system_admin):
    a = api_as(accountant).post("/api/v1/aggregate-reports", body()).json()["id"]
    api_as(monitor).post(f"/api/v1/aggregate-reports/{a}/return", {"reason": "xem lại"})
    b = api_as(accountant).post("/api/v1/aggregate-reports", body(period_end="2025-01-15")).json()["id"]
    assert api_as(monitor).post(f"/api/v1/aggregate-reports/{b}/approve").status_code == 200


def test_institution_users_report_for_their_own_institution_only(api_as, accountant, make_institution):
    make_institution(code="BN-TH-09", legacy_province_code="27")
    r = api_as(accountant).post("/api/v1/aggregate-reports", body(code="BN-TH-09"))
    assert r.status_code == 403 and r.json()["code"] == "institution_forbidden"


def test_institution_users_cannot_approve(api_as, accountant):
    rid = api_as(accountant).post("/api/v1/aggregate-reports", body()).json()["id"]
    r = api_as(accountant).post(f"/api/v1/aggregate-reports/{rid}/approve")
    assert r.status_code == 403 and r.json()["code"] == "approver_only"


def test_another_province_cannot_see_or_approve(api_as, accountant, other_monitor):
    rid = api_as(accountant).post("/api/v1/aggregate-reports", body()).json()["id"]
    r = api_as(other_monitor).post(f"/api/v1/aggregate-reports/{rid}/approve")
    assert r.status_code == 404 and r.json()["code"] == "report_not_found"
    assert api_as(other_monitor).get("/api/v1/aggregate-reports").json() == []
    assert AggregateReport.objects.get().status == "submitted"


def test_listing_filters_by_status(api_as, accountant, monitor):
    rid = api_as(accountant).post("/api/v1/aggregate-reports", body()).json()["id"]
    assert [r["id"] for r in api_as(monitor).get("/api/v1/aggregate-reports?status=submitted").json()] == [rid]
    assert api_as(monitor).get("/api/v1/aggregate-reports?status=approved").json() == []
    assert api_as(monitor).get("/api/v1/aggregate-reports?status=nope").status_code == 422


def test_strings_and_floats_are_not_numbers(api_as, accountant):
    r = api_as(accountant).post("/api/v1/aggregate-reports", body(payments="1000"))
    assert r.status_code == 422 and r.json()["code"] == "validation_error"
    r = api_as(accountant).post("/api/v1/aggregate-reports", body(value=10.5))
    assert r.status_code == 422
