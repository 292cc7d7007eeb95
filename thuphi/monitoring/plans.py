"""The plans and targets thuphi ships as data (loaded by migration 0002; `plans_sync()` is idempotent).

Sources: seeds 000/001 (ministry proposal 2022), 002 (Thanh Hóa, 7/4/2022), 003 (Decision 27/QĐ-UBQGCĐS),
and the Ministry of Health's goal that every public hospital accepts cashless payment by 2025.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

EDU = "education"
HEALTH = "health"
HOSPITALS = ["regional_medical_centre", "provincial_hospital", "central_hospital", "private_hospital"]
PUBLIC_HOSPITALS = ["regional_medical_centre", "provincial_hospital", "central_hospital"]


def _t(indicator: str, value: int, *, sector: str = "", kinds: list[str] | None = None, ownership: str = "",
       fee_kinds: list[str] | None = None, comparison: str = "gte", label: str = "") -> dict:
    return {"indicator": indicator, "value": Decimal(value), "sector": sector, "institution_kinds": kinds or [],
            "ownership": ownership, "fee_kinds": fee_kinds or [], "comparison": comparison, "label": label}


PLANS: list[dict] = [
    {
        "code": "mic-2022",
        "name": "Kế hoạch hỗ trợ, thúc đẩy chuyển đổi số, thanh toán không dùng tiền mặt trong trường học, "
                "cơ sở giáo dục và bệnh viện, cơ sở y tế (đề xuất năm 2022)",
        "issuing_body": "Bộ Thông tin và Truyền thông (nay là Bộ Khoa học và Công nghệ)",
        "document": "Văn bản đề nghị các tỉnh, thành phố (2022)",
        "issued_on": None, "province": None, "legacy_province": None,
        "deadline": dt.date(2022, 12, 31),
        "note": "Chỉ tiêu mỗi tỉnh, thành phố cần đạt trong năm 2022.",
        "targets": [
            _t("institutions_digital", 50, sector=EDU, label="50% trường học, cơ sở giáo dục sử dụng nền tảng số"),
            _t("institutions_digital", 50, sector=HEALTH, label="50% bệnh viện, cơ sở y tế sử dụng nền tảng số"),
            _t("institutions_cashless", 50, sector=EDU,
               label="50% trường học, cơ sở giáo dục sử dụng phương thức thanh toán không dùng tiền mặt"),
            _t("institutions_cashless", 50, sector=HEALTH,
               label="50% bệnh viện, cơ sở y tế sử dụng phương thức thanh toán không dùng tiền mặt"),
            _t("share_count", 50, sector=EDU, label="Số lượng giao dịch không dùng tiền mặt tại trường học đạt 50%"),
            _t("share_count", 50, sector=HEALTH, label="Số lượng giao dịch không dùng tiền mặt tại cơ sở y tế đạt 50%"),
            _t("share_value", 50, sector=EDU, label="Giá trị giao dịch không dùng tiền mặt tại trường học đạt 50%"),
            _t("share_value", 50, sector=HEALTH, label="Giá trị giao dịch không dùng tiền mặt tại cơ sở y tế đạt 50%"),
        ],
    },
    {
        "code": "thanh-hoa-2022",
        "name": "Kế hoạch hỗ trợ, thúc đẩy chuyển đổi số, thanh toán không dùng tiền mặt trong các trường học, "
                "cơ sở giáo dục và bệnh viện, cơ sở y tế trên địa bàn tỉnh Thanh Hóa",
        "issuing_body": "UBND tỉnh Thanh Hóa",
        "document": "Kế hoạch của UBND tỉnh Thanh Hóa (04/2022)",
        "issued_on": None, "province": None, "legacy_province": "38",
        "deadline": dt.date(2022, 12, 31),
        "note": "Mục tiêu đến hết năm 2022.",
        "targets": [
            _t("institutions_digital", 50, sector=EDU, label="Khoảng 50% trường học sử dụng nền tảng số"),
            _t("institutions_digital", 50, sector=HEALTH, label="Khoảng 50% bệnh viện, cơ sở y tế sử dụng nền tảng số"),
            _t("institutions_cashless", 100, sector=EDU,
               label="100% trường học, cơ sở giáo dục chấp nhận thanh toán không dùng tiền mặt"),
            _t("institutions_cashless", 100, sector=HEALTH,
               label="100% bệnh viện, cơ sở y tế chấp nhận thanh toán không dùng tiền mặt"),
            _t("share_count", 50, sector=EDU, comparison="gt",
               label="Số lượng giao dịch không dùng tiền mặt trong trường học trên 50%"),
            _t("share_count", 50, sector=HEALTH, kinds=["provincial_hospital"], comparison="gt",
               label="Số lượng giao dịch không dùng tiền mặt tại bệnh viện tuyến tỉnh trên 50%"),
        ],
    },
    {
        "code": "qd-27-ubqgcds-2022",
        "name": "Kế hoạch hoạt động của Ủy ban Quốc gia về chuyển đổi số năm 2022",
        "issuing_body": "Ủy ban Quốc gia về chuyển đổi số",
        "document": "Quyết định 27/QĐ-UBQGCĐS",
        "issued_on": None, "province": None, "legacy_province": None,
        "deadline": dt.date(2022, 12, 31),
        "note": "Mục tiêu đến hết năm 2022.",
        "targets": [
            _t("share_value", 50, fee_kinds=["tuition", "hospital_fee"],
               label="Tỷ trọng thanh toán học phí, viện phí không dùng tiền mặt đạt tối thiểu 50%"),
            _t("citizens_ehr", 90, comparison="gt", label="Trên 90% người dân có hồ sơ sức khỏe điện tử"),
            _t("citizens_eid", 15, label="15–20% người dân sử dụng ứng dụng định danh điện tử"),
        ],
    },
    {
        "code": "moh-public-hospitals-2025",
        "name": "Mọi bệnh viện công lập chấp nhận thanh toán không dùng tiền mặt",
        "issuing_body": "Bộ Y tế",
        "document": "",
        "issued_on": None, "province": None, "legacy_province": None,
        "deadline": dt.date(2025, 12, 31),
        "note": "",
        "targets": [
            _t("institutions_cashless", 100, sector=HEALTH, kinds=PUBLIC_HOSPITALS, ownership="public",
               label="100% bệnh viện công lập chấp nhận thanh toán không dùng tiền mặt"),
        ],
    },
]


def plans_sync(apps=None) -> int:
    """Create or update the shipped plans (by code) and replace their targets. Returns how many plans."""
    if apps is None:
        from django.apps import apps as global_apps

        apps = global_apps
    Plan = apps.get_model("monitoring", "Plan")
    PlanTarget = apps.get_model("monitoring", "PlanTarget")
    LegacyProvince = apps.get_model("registry", "LegacyProvince")
    Province = apps.get_model("registry", "Province")
    n = 0
    for data in PLANS:
        data = dict(data)
        targets = data.pop("targets")
        code = data.pop("code")
        province, legacy = data.pop("province"), data.pop("legacy_province")
        if province and not Province.objects.filter(code=province).exists():
            continue  # administrative units not loaded (a flushed test database)
        if legacy and not LegacyProvince.objects.filter(code=legacy).exists():
            continue
        plan, _ = Plan.objects.update_or_create(
            code=code, defaults={**data, "province_id": province, "legacy_province_id": legacy})
        PlanTarget.objects.filter(plan=plan).delete()
        PlanTarget.objects.bulk_create([PlanTarget(plan=plan, **t) for t in targets])
        n += 1
    return n
