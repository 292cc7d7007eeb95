"""GET /api/v1/kpi: areas, scoping by role, parameter errors."""
from __future__ import annotations

import pytest

from thuphi.core.models import Role

pytestmark = pytest.mark.django_db


def test_monitor_reads_only_their_province(api_as, monitor, bac_giang_units):
    api = api_as(monitor)
    assert api.get("/api/v1/kpi?area=24").status_code == 200
    for area in ("VN", "01", "legacy:01", "00004"):
        r = api.get(f"/api/v1/kpi?area={area}")
        assert r.status_code == 403, (area, r.content)
        assert r.json()["code"] == "area_forbidden"


def test_institution_user_sees_only_their_institution(api_as, make_user, bac_giang_units, bac_giang_reports):
    inst = bac_giang_units[0]
    user = make_user("ketoan1", Role.ACCOUNTANT, institution=inst)
    body = api_as(user).get("/api/v1/kpi?area=24&from=2024-03-16&to=2024-04-15").json()
    assert body["institutions"] == 1
    report = api_as(user).get("/api/v1/aggregate-reports").json()
    assert [r["institution"] for r in report] == [inst.code]
    assert body["payments"] == report[0]["payments"]
    assert api_as(user).get("/api/v1/kpi?area=01").status_code == 403


def test_system_admin_reads_the_nation(api_as, system_admin, bac_giang_reports):
    body = api_as(system_admin).get("/api/v1/kpi?area=VN&from=2024-03-16&to=2024-04-15").json()
    assert body["payments"] == 65_902 and body["area"]["name"] == "Toàn quốc"


def test_a_single_institution_by_code(api_as, monitor, bac_giang_units, bac_giang_reports):
    code = bac_giang_units[3].code
    body = api_as(monitor).get(f"/api/v1/kpi?area=24&institution={code}&from=2024-03-16&to=2024-04-15").json()
    assert body["institutions"] == 1 and body["institution"] == code


@pytest.mark.parametrize("query, status, code", [
    ("area=2", 422, "invalid_area"), ("area=99", 404, "area_not_found"), ("area=legacy:99", 404, "area_not_found"),
    ("area=24&sector=police", 422, "invalid_sector"), ("area=24&from=2024-13-01", 422, "invalid_date"),
    ("area=24&from=2024-05-01&to=2024-04-01", 422, "invalid_period"), ("area=24&kind=zoo", 422, "invalid_kind"),
])
def test_bad_parameters(api_as, monitor, query, status, code):
    r = api_as(monitor).get(f"/api/v1/kpi?{query}")
    assert r.status_code == status and r.json()["code"] == code, r.content


def test_no_token_is_401(client):
    assert client.get("/api/v1/kpi").status_code == 401


def test_plans_are_shipped_and_staff_can_add_one(api_as, system_admin, monitor, other_monitor):
    plans = {p["code"]: p for p in api_as(monitor).get("/api/v1/plans").json()}
    assert {"mic-2022", "thanh-hoa-2022", "qd-27-ubqgcds-2022", "moh-public-hospitals-2025"} <= set(plans)
    th = plans["thanh-hoa-2022"]
    assert th["area"] == "legacy:38"
    assert {(t["indicator"], t["value"], t["sector"]) for t in th["targets"]} >= {
        ("institutions_cashless", 100.0, "education"), ("institutions_cashless", 100.0, "health")}
    gt50 = [t for t in th["targets"] if t["comparison"] == "gt" and t["institution_kinds"] == ["provincial_hospital"]]
    assert gt50 and gt50[0]["value"] == 50.0
    new = {"code": "bac-ninh-2026", "name": "Kế hoạch 2026", "issuing_body": "UBND tỉnh Bắc Ninh", "area": "24",
           "deadline": "2026-12-31", "targets": [{"indicator": "share_value", "value": 70, "sector": "health"}]}
    assert api_as(other_monitor).post("/api/v1/plans", new).status_code == 403
    r = api_as(monitor).post("/api/v1/plans", new)
    assert r.status_code == 201, r.content
    kpi = api_as(monitor).get("/api/v1/kpi?area=24&sector=health").json()
    assert any(t["plan"] == "bac-ninh-2026" and t["target"] == 70.0 for t in kpi["targets"])
    assert api_as(monitor).post("/api/v1/plans", new).status_code == 409
