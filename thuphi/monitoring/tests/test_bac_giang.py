"""Done means: Bắc Giang's reported period (seed 004) replayed through the API gives back its figures."""
from __future__ import annotations

import pytest

from thuphi.monitoring.tests.conftest import PERIOD, SENTENCE, TOTALS

pytestmark = pytest.mark.django_db

QUERY = f"sector=health&from={PERIOD[0]}&to={PERIOD[1]}"


@pytest.mark.parametrize("area", ["24", "legacy:24"])
def test_replay_gives_back_the_reported_figures(api_as, monitor, bac_giang_reports, area):
    r = api_as(monitor).get(f"/api/v1/kpi?area={area}&{QUERY}")
    assert r.status_code == 200, r.content
    body = r.json()
    assert {k: body[k] for k in TOTALS} == TOTALS
    assert body["share_count"] == 98.88 and body["share_value"] == 90.59
    assert body["institutions"] == 24 and body["institutions_reporting"] == 24
    assert body["institutions_cashless"] == 24
    assert body["institutions_digital"] == 12
    assert body["completeness"] == {"expected": 24, "received": 24, "approved": 24, "percent": 100.0}
    assert body["from"] == "2024-03-16" and body["to"] == "2024-04-15"
    assert body["narrative"] == SENTENCE


def test_the_numbers_are_json_numbers_not_strings(api_as, monitor, bac_giang_reports):
    raw = api_as(monitor).get(f"/api/v1/kpi?area=24&{QUERY}").content.decode()
    assert '"share_count": 98.88' in raw or '"share_count":98.88' in raw


def test_reports_outside_the_range_do_not_count(api_as, monitor, bac_giang_reports):
    # the reports cover 16/3-15/4: a range that cuts the period leaves them out
    body = api_as(monitor).get("/api/v1/kpi?area=24&sector=health&from=2024-03-17&to=2024-04-15").json()
    assert body["payments"] == 0 and body["share_count"] is None
    body = api_as(monitor).get("/api/v1/kpi?area=24&sector=health&from=2024-01-01&to=2024-12-31").json()
    assert body["payments"] == TOTALS["payments"]


def test_education_sees_none_of_it(api_as, monitor, bac_giang_reports):
    body = api_as(monitor).get(f"/api/v1/kpi?area=24&sector=education&from={PERIOD[0]}&to={PERIOD[1]}").json()
    assert body["institutions"] == 0 and body["payments"] == 0


def test_old_province_stops_on_30_june_2025(api_as, monitor, bac_giang_reports):
    body = api_as(monitor).get("/api/v1/kpi?area=legacy:24&sector=health&from=2024-01-01&to=2026-12-31").json()
    assert body["to"] == "2025-06-30" and body["payments"] == TOTALS["payments"]


def test_commune_drill_down_adds_up_to_the_province(api_as, monitor, bac_giang_units, bac_giang_reports):
    communes = sorted({i.commune_id for i in bac_giang_units})
    total = 0
    for code in communes:
        body = api_as(monitor).get(f"/api/v1/kpi?area={code}&{QUERY}").json()
        total += body["payments"]
    assert total == TOTALS["payments"]


def test_targets_that_apply_are_listed_with_actual_and_light(api_as, monitor, bac_giang_reports):
    body = api_as(monitor).get(f"/api/v1/kpi?area=24&{QUERY}").json()
    by_plan = {}
    for t in body["targets"]:
        by_plan.setdefault(t["plan"], []).append(t)
    # nationwide plans apply; Thanh Hóa's does not apply in Bắc Ninh
    assert set(by_plan) == {"mic-2022", "qd-27-ubqgcds-2022", "moh-public-hospitals-2025"}
    # only the health targets of the ministry's proposal, the sector asked for
    mic = {t["indicator"]: t for t in by_plan["mic-2022"]}
    assert set(mic) == {"institutions_digital", "institutions_cashless", "share_count", "share_value"}
    assert mic["share_count"]["actual"] == 98.88 and mic["share_count"]["status"] == "met"
    assert mic["share_value"]["actual"] == 90.59 and mic["share_value"]["target"] == 50.0
    assert mic["institutions_digital"]["actual"] == 50.0 and mic["institutions_digital"]["status"] == "met"
    d27 = {t["indicator"]: t for t in by_plan["qd-27-ubqgcds-2022"]}
    assert d27["share_value"]["actual"] == 90.59  # reports count whole toward tuition/hospital-fee targets
    assert d27["citizens_ehr"]["status"] == "not_measured" and d27["citizens_ehr"]["actual"] is None
    moh = by_plan["moh-public-hospitals-2025"][0]
    # 14 public hospitals (provincial + regional centres), all accepting cashless
    assert moh["denominator"] == 14 and moh["actual"] == 100.0 and moh["status"] == "met"
