"""Vietnamese administrative units, before and after the 1 July 2025 reform.

Pure Python (no Django): the registry models, the seed commands and the reports
all need the same lists, and reports must roll data recorded under the 63 old
provinces up into the 34 new ones (Resolution 202/2025/QH15).

Current units come from the PyPI package ``vietnam-provinces`` (official codes);
the old provinces and their successors come from ``data/legacy_provinces.json``.
Codes are returned as zero-padded strings because that is how they are written
on official documents and how they sort ("01" < "10"), whereas the package
exposes them as int-valued enums.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, TypedDict

from vietnam_provinces import Province, Ward

_DATA_DIR = Path(__file__).resolve().parent / "data"
LEGACY_PROVINCES_FILE = _DATA_DIR / "legacy_provinces.json"

# Widths of the official codes: provinces have 2 digits, communes 5.
PROVINCE_CODE_WIDTH = 2
COMMUNE_CODE_WIDTH = 5


class ProvinceRow(TypedDict):
    code: str
    name: str


class CommuneRow(TypedDict):
    code: str
    name: str
    province_code: str


class LegacyProvinceRow(TypedDict):
    code: str
    name: str
    short_name: str
    division_type: str
    valid_to: str
    successor_code: str
    aliases: list[str]


def _enum_int(value: Any) -> int:
    # ProvinceCode/WardCode are int-valued Enums; .value keeps us independent of
    # whether a future release makes them IntEnum or plain Enum.
    return int(getattr(value, "value", value))


def province_code(value: int | str) -> str:
    """Normalise a province code (int, "1", "01") to the 2-digit string form."""
    return _pad(value, PROVINCE_CODE_WIDTH)


def commune_code(value: int | str) -> str:
    """Normalise a commune code to the 5-digit string form."""
    return _pad(value, COMMUNE_CODE_WIDTH)


def _pad(value: int | str, width: int) -> str:
    if isinstance(value, bool):  # bool is an int; a True code is always a bug
        raise TypeError("code must be int or str, not bool")
    text = str(value).strip()
    if not text.isdigit() or len(text) > width:
        raise ValueError(f"not a {width}-digit administrative code: {value!r}")
    return text.zfill(width)


@lru_cache(maxsize=1)
def _current_provinces() -> tuple[ProvinceRow, ...]:
    rows = [
        ProvinceRow(code=province_code(_enum_int(p.code)), name=p.name)
        for p in Province.iter_all()
    ]
    return tuple(sorted(rows, key=lambda r: r["code"]))


def current_provinces() -> list[ProvinceRow]:
    """The 34 provinces/cities in force since 1 July 2025, sorted by code."""
    # Fresh dicts each call so callers may mutate what they get without
    # poisoning the cache.
    return [ProvinceRow(**row) for row in _current_provinces()]


@lru_cache(maxsize=1)
def _current_communes() -> tuple[CommuneRow, ...]:
    rows = [
        CommuneRow(
            code=commune_code(_enum_int(w.code)),
            name=w.name,
            province_code=province_code(_enum_int(w.province_code)),
        )
        for w in Ward.iter_all()
    ]
    return tuple(sorted(rows, key=lambda r: r["code"]))


def current_communes() -> list[CommuneRow]:
    """The 3,321 communes, wards and special zones in force since 1 July 2025."""
    return [CommuneRow(**row) for row in _current_communes()]


@lru_cache(maxsize=1)
def _legacy_provinces() -> tuple[LegacyProvinceRow, ...]:
    with LEGACY_PROVINCES_FILE.open(encoding="utf-8") as fh:
        payload = json.load(fh)
    rows: list[LegacyProvinceRow] = payload["provinces"]
    return tuple(sorted(rows, key=lambda r: r["code"]))


def legacy_provinces() -> list[LegacyProvinceRow]:
    """The 63 provinces/cities in force until 30 June 2025, sorted by code."""
    return [
        LegacyProvinceRow(**{**row, "aliases": list(row["aliases"])})
        for row in _legacy_provinces()
    ]


@lru_cache(maxsize=1)
def _successor_map() -> dict[str, str]:
    return {row["code"]: row["successor_code"] for row in _legacy_provinces()}


def successor_of(old_code: int | str) -> str:
    """Code of the new province that absorbed the old province ``old_code``.

    Raises KeyError for a code that was not a province before 1 July 2025, so
    that a typo cannot silently roll data into the wrong province.
    """
    code = province_code(old_code)
    try:
        return _successor_map()[code]
    except KeyError:
        raise KeyError(f"unknown pre-2025 province code: {code}") from None


def predecessors_of(new_code: int | str) -> list[str]:
    """Codes of the old provinces merged into the new province ``new_code``."""
    code = province_code(new_code)
    return sorted(old for old, new in _successor_map().items() if new == code)
