"""Fixtures of the monitoring tests: Bắc Giang's 24 health units (seed 004) and staff of every role."""
from __future__ import annotations

import pytest

from thuphi.core.models import Role

PERIOD = ("2024-03-16", "2024-04-15")
TOTALS = {"payments": 65_902, "payments_cashless": 65_161, "value": 37_876_956_607, "value_cashless": 34_311_921_957}
SENTENCE = (
    "Từ ngày 16/3/2024 đến ngày 15/4/2024, tổng số 24/24 đơn vị đã thực hiện triển khai. Số lượng giao dịch "
    "thanh toán viện phí, dịch vụ y tế và các giao dịch khác là 65.902 lượt. Trong đó, số lượng giao dịch thanh "
    "toán không dùng tiền mặt là 65.161 lượt, tương ứng 98,88%. Giá trị giao dịch thanh toán viện phí, dịch vụ y "
    "tế và các giao dịch khác là 37.876.956.607 đồng. Trong đó, số tiền thu được của bệnh nhân qua hình thức "
    "không dùng tiền mặt là 34.311.921.957 đồng, tương ứng 90,59%."
)


def split(total: int, parts: int) -> list[int]:
    """`total` in `parts` whole shares, unequal on purpose, that add up exactly."""
    weights = [10 + (i * 7) % 13 for i in range(parts)]
    shares = [total * w // sum(weights) for w in weights]
    shares[-1] += total - sum(shares)
    return shares


@pytest.fixture
def reference_data(db):
    """Administrative units and shipped plans: loaded by migrations, but flushed by transactional tests."""
    from thuphi.monitoring.models import Plan
    from thuphi.monitoring.plans import plans_sync
    from thuphi.registry.models import Commune
    from thuphi.registry.services import admin_units_sync

    if not Commune.objects.exists():
        admin_units_sync()
    if not Plan.objects.exists():
        plans_sync()


@pytest.fixture
def monitor(reference_data, make_user):
    return make_user("giamsat", Role.PROVINCIAL_MONITOR, province_id="24")


@pytest.fixture
def other_monitor(reference_data, make_user):
    return make_user("giamsat_hn", Role.PROVINCIAL_MONITOR, province_id="01")


@pytest.fixture
def bac_giang_units(reference_data, make_institution):
    """24 health units of old Bắc Giang (legacy 24), today in Bắc Ninh (24), over a few communes."""
    from thuphi.registry.models import Commune

    communes = list(Commune.objects.filter(province_id="24").order_by("code").values_list("code", flat=True)[:6])
    kinds = ["provincial_hospital"] * 4 + ["regional_medical_centre"] * 10 + ["commune_health_station"] * 10
    return [
        make_institution(code=f"BG-YT-{i + 1:02d}", name=f"Cơ sở y tế Bắc Giang {i + 1}", sector="health",
                         kind=kinds[i], commune_code=communes[i % len(communes)], legacy_province_code="24",
                         accepted_methods=["cash", "transfer", "card"])
        for i in range(24)
    ]


@pytest.fixture
def bac_giang_reports(bac_giang_units, system_admin, monitor, api_as):
    """Seed 004 as 24 approved aggregate reports, submitted and approved through the API."""
    cols = {k: split(v, 24) for k, v in TOTALS.items()}
    admin, prov = api_as(system_admin), api_as(monitor)
    ids = []
    for i, inst in enumerate(bac_giang_units):
        body = {"institution": inst.code, "period_start": PERIOD[0], "period_end": PERIOD[1],
                **{k: cols[k][i] for k in cols}, "cashless_methods": ["transfer", "card"],
                "digital_platforms": ["hospital_management"] if i % 2 == 0 else []}
        r = admin.post("/api/v1/aggregate-reports", body)
        assert r.status_code == 201, r.content
        ids.append(r.json()["id"])
    for report_id in ids:
        r = prov.post(f"/api/v1/aggregate-reports/{report_id}/approve")
        assert r.status_code == 200 and r.json()["status"] == "approved", r.content
    return ids
