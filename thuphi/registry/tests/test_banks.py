"""Tests of the VietQR bank directory."""

from __future__ import annotations

import json

import pytest

from thuphi.registry.banks import BANKS_FILE, all_banks, bank_by_bin

WELL_KNOWN = {
    "970436": ("VCB", "Vietcombank"),
    "970415": ("ICB", "VietinBank"),
    "970418": ("BIDV", "BIDV"),
    "970405": ("VBA", "Agribank"),
    "970407": ("TCB", "Techcombank"),
    "970422": ("MB", "MBBank"),
    "970416": ("ACB", "ACB"),
    "970432": ("VPB", "VPBank"),
    "970423": ("TPB", "TPBank"),
    "970403": ("STB", "Sacombank"),
    "546034": ("CAKE", "CAKE"),
    "546035": ("Ubank", "Ubank"),
    "963388": ("TIMO", "Timo"),
    "668888": ("KBank", "KBank"),
}


def test_bins_are_unique_six_digit_strings() -> None:
    banks = all_banks()
    assert 50 <= len(banks) <= 80
    bins = [b["bin"] for b in banks]
    assert len(set(bins)) == len(bins)
    assert all(isinstance(b, str) and len(b) == 6 and b.isdigit() for b in bins)
    codes = [b["code"] for b in banks]
    assert len(set(codes)) == len(codes)
    assert all(b["name"] and b["short_name"] for b in banks)


@pytest.mark.parametrize(("bin_", "expected"), sorted(WELL_KNOWN.items()))
def test_well_known_banks_present(bin_: str, expected: tuple[str, str]) -> None:
    bank = bank_by_bin(bin_)
    assert bank is not None
    assert (bank["code"], bank["short_name"]) == expected


def test_bank_by_bin_details() -> None:
    vcb = bank_by_bin("970436")
    assert vcb is not None
    assert vcb["name"] == "Ngân hàng TMCP Ngoại Thương Việt Nam"
    assert bank_by_bin(970436) == vcb
    assert bank_by_bin(" 970436 ") == vcb


@pytest.mark.parametrize("unknown", ["000000", "97043", "", "abcdef", True])
def test_unknown_bin_returns_none(unknown: object) -> None:
    assert bank_by_bin(unknown) is None  # type: ignore[arg-type]


def test_renamed_banks_keep_old_names_as_aliases() -> None:
    mbv = bank_by_bin("970414")
    assert mbv is not None and mbv["code"] == "MBV" and "Oceanbank" in mbv["aliases"]
    vikki = bank_by_bin("970406")
    assert vikki is not None and vikki["code"] == "Vikki"


def test_results_are_copies() -> None:
    bank = bank_by_bin("970436")
    assert bank is not None
    bank["name"] = "changed"
    bank["aliases"].append("x")
    again = bank_by_bin("970436")
    assert again is not None and again["name"] != "changed" and "x" not in again["aliases"]


def test_json_names_its_source() -> None:
    payload = json.loads(BANKS_FILE.read_text(encoding="utf-8"))
    assert "vietqr" in payload["_source"]["list"].lower()
