"""NAPAS/VietQR bank directory (pure Python, no Django).

Loaded from ``data/banks.json``, a copy of the public VietQR bank list. The BIN
is the key because it is what a VietQR payload carries (field 38, sub-field
01/00) and what identifies the receiving bank unambiguously; short codes and
names have been renamed over time (Oceanbank -> MBV, DongA Bank -> Vikki).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import TypedDict

BANKS_FILE = Path(__file__).resolve().parent / "data" / "banks.json"


class BankRow(TypedDict):
    bin: str
    code: str
    short_name: str
    name: str
    aliases: list[str]


@lru_cache(maxsize=1)
def _banks() -> tuple[BankRow, ...]:
    with BANKS_FILE.open(encoding="utf-8") as fh:
        return tuple(json.load(fh)["banks"])


@lru_cache(maxsize=1)
def _by_bin() -> dict[str, BankRow]:
    return {row["bin"]: row for row in _banks()}


def _copy(row: BankRow) -> BankRow:
    # Callers get their own dicts so the cached rows cannot be changed.
    return BankRow(
        bin=row["bin"],
        code=row["code"],
        short_name=row["short_name"],
        name=row["name"],
        aliases=list(row["aliases"]),
    )


def all_banks() -> list[BankRow]:
    """Every bank in the VietQR list, in the order of the data file."""
    return [_copy(row) for row in _banks()]


def bank_by_bin(bin: str | int) -> BankRow | None:  # noqa: A002 - "bin" is the domain term
    """The bank with this 6-digit NAPAS BIN, or None if it is not in the list."""
    if isinstance(bin, bool):
        return None
    key = str(bin).strip()
    row = _by_bin().get(key)
    return _copy(row) if row is not None else None
