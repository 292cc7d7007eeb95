"""Tests of the administrative-unit lists and the 63 -> 34 province mapping."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from thuphi.registry import admin_units
from thuphi.registry.admin_units import (
    current_communes,
    current_provinces,
    legacy_provinces,
    predecessors_of,
    successor_of,
)

# Resolution 202/2025/QH15, read province by province: new code -> old codes.
# Written out independently of the JSON so that a slip in either shows up.
EXPECTED_MERGERS: dict[str, set[str]] = {
    "01": {"01"}, "04": {"04"}, "11": {"11"}, "12": {"12"}, "14": {"14"},
    "20": {"20"}, "22": {"22"}, "38": {"38"}, "40": {"40"}, "42": {"42"},
    "46": {"46"},
    "08": {"02", "08"},          # Hà Giang + Tuyên Quang -> Tuyên Quang
    "15": {"10", "15"},          # Lào Cai + Yên Bái -> Lào Cai (code of Yên Bái)
    "19": {"06", "19"},          # Bắc Kạn + Thái Nguyên -> Thái Nguyên
    "24": {"24", "27"},          # Bắc Giang + Bắc Ninh -> Bắc Ninh (code of Bắc Giang)
    "25": {"17", "25", "26"},    # Hòa Bình + Phú Thọ + Vĩnh Phúc -> Phú Thọ
    "31": {"30", "31"},          # Hải Dương + Hải Phòng -> Hải Phòng
    "33": {"33", "34"},          # Hưng Yên + Thái Bình -> Hưng Yên
    "37": {"35", "36", "37"},    # Hà Nam + Nam Định + Ninh Bình -> Ninh Bình
    "44": {"44", "45"},          # Quảng Bình + Quảng Trị -> Quảng Trị (code of Quảng Bình)
    "48": {"48", "49"},          # Đà Nẵng + Quảng Nam -> Đà Nẵng
    "51": {"51", "62"},          # Quảng Ngãi + Kon Tum -> Quảng Ngãi
    "52": {"52", "64"},          # Bình Định + Gia Lai -> Gia Lai (code of Bình Định)
    "56": {"56", "58"},          # Khánh Hòa + Ninh Thuận -> Khánh Hòa
    "66": {"54", "66"},          # Phú Yên + Đắk Lắk -> Đắk Lắk
    "68": {"60", "67", "68"},    # Bình Thuận + Đắk Nông + Lâm Đồng -> Lâm Đồng
    "75": {"70", "75"},          # Bình Phước + Đồng Nai -> Đồng Nai
    "79": {"74", "77", "79"},    # Bình Dương + Bà Rịa - Vũng Tàu + HCMC -> HCMC
    "80": {"72", "80"},          # Tây Ninh + Long An -> Tây Ninh (code of Long An)
    "82": {"82", "87"},          # Tiền Giang + Đồng Tháp -> Đồng Tháp (code of Tiền Giang)
    "86": {"83", "84", "86"},    # Bến Tre + Trà Vinh + Vĩnh Long -> Vĩnh Long
    "91": {"89", "91"},          # An Giang + Kiên Giang -> An Giang (code of Kiên Giang)
    "92": {"92", "93", "94"},    # Cần Thơ + Hậu Giang + Sóc Trăng -> Cần Thơ
    "96": {"95", "96"},          # Bạc Liêu + Cà Mau -> Cà Mau
}


def test_current_provinces_are_the_34_new_units() -> None:
    provinces = current_provinces()
    assert len(provinces) == 34
    codes = [p["code"] for p in provinces]
    assert codes == sorted(codes)
    assert len(set(codes)) == 34
    assert all(len(c) == 2 and c.isdigit() for c in codes)
    assert set(codes) == set(EXPECTED_MERGERS)
    by_code = {p["code"]: p["name"] for p in provinces}
    assert by_code["01"] == "Thành phố Hà Nội"
    assert by_code["24"] == "Bắc Ninh"
    assert by_code["38"] == "Thanh Hóa"


def test_current_communes_count_and_codes() -> None:
    communes = current_communes()
    assert len(communes) == 3321
    codes = [c["code"] for c in communes]
    assert len(set(codes)) == 3321
    assert all(len(c) == 5 and c.isdigit() for c in codes)
    province_codes = {p["code"] for p in current_provinces()}
    counts = Counter(c["province_code"] for c in communes)
    # Every commune belongs to a current province and every province has communes.
    assert set(counts) == province_codes
    hoan_kiem = next(c for c in communes if c["code"] == "00070")
    assert hoan_kiem == {"code": "00070", "name": "Phường Hoàn Kiếm", "province_code": "01"}


def test_legacy_provinces_are_63_with_unique_codes() -> None:
    legacy = legacy_provinces()
    assert len(legacy) == 63
    codes = [p["code"] for p in legacy]
    assert len(set(codes)) == 63
    assert all(len(c) == 2 and c.isdigit() for c in codes)
    for row in legacy:
        assert row["valid_to"] == "2025-06-30"
        assert row["name"].endswith(row["short_name"])
        assert row["name"] in {f"Tỉnh {row['short_name']}", f"Thành phố {row['short_name']}"}
    cities = {p["short_name"] for p in legacy if p["name"].startswith("Thành phố")}
    # Six centrally-run cities on 30/06/2025 (Huế since 01/01/2025).
    assert cities == {"Hà Nội", "Hải Phòng", "Huế", "Đà Nẵng", "Hồ Chí Minh", "Cần Thơ"}


def test_every_new_province_has_a_predecessor_and_mapping_matches_resolution() -> None:
    current = {p["code"] for p in current_provinces()}
    successors = {p["successor_code"] for p in legacy_provinces()}
    assert successors == current
    actual: dict[str, set[str]] = {}
    for row in legacy_provinces():
        actual.setdefault(row["successor_code"], set()).add(row["code"])
    assert actual == EXPECTED_MERGERS


def test_bac_giang_and_bac_ninh_become_bac_ninh() -> None:
    assert successor_of("24") == "24"  # old Bắc Giang
    assert successor_of("27") == "24"  # old Bắc Ninh
    assert predecessors_of("24") == ["24", "27"]
    new_name = {p["code"]: p["name"] for p in current_provinces()}[successor_of("24")]
    assert new_name == "Bắc Ninh"


def test_phu_tho_absorbs_vinh_phuc_and_hoa_binh() -> None:
    assert successor_of("26") == "25"
    assert successor_of("17") == "25"
    assert predecessors_of(25) == ["17", "25", "26"]


def test_thanh_hoa_maps_to_itself() -> None:
    assert successor_of("38") == "38"
    assert predecessors_of("38") == ["38"]


def test_successor_of_accepts_ints_and_unpadded_codes() -> None:
    assert successor_of(2) == "08"
    assert successor_of("2") == "08"


@pytest.mark.parametrize("bad", ["03", "99", "00"])
def test_successor_of_unknown_code_raises_key_error(bad: str) -> None:
    with pytest.raises(KeyError):
        successor_of(bad)


@pytest.mark.parametrize("bad", ["abc", "123", "", True])
def test_malformed_codes_are_rejected(bad: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        successor_of(bad)  # type: ignore[arg-type]


def test_returned_rows_are_copies() -> None:
    first = legacy_provinces()
    first[0]["successor_code"] = "99"
    first[0]["aliases"].append("x")
    assert legacy_provinces()[0]["successor_code"] == "01"
    assert "x" not in legacy_provinces()[0]["aliases"]
    provinces = current_provinces()
    provinces[0]["name"] = "changed"
    assert current_provinces()[0]["name"] == "Thành phố Hà Nội"


def test_json_names_its_source() -> None:
    payload = json.loads(admin_units.LEGACY_PROVINCES_FILE.read_text(encoding="utf-8"))
    assert "202/2025/QH15" in payload["_source"]["successors"]
