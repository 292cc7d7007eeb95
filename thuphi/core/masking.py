"""Personal numbers (phones, insurance cards, citizen IDs) never appear in full in lists or logs."""
from __future__ import annotations


def mask_number(value: str | None, *, keep: int = 3) -> str:
    """'0912345678' -> '•••••••678'. Short values are masked whole."""
    if not value:
        return ""
    value = str(value)
    if len(value) <= keep + 2:
        return "•" * len(value)
    return "•" * (len(value) - keep) + value[-keep:]


def mask_name(name: str | None) -> str:
    """'Nguyễn Văn An' -> 'Nguyễn V. A.': enough for a payer to recognise, not to identify."""
    if not name:
        return ""
    parts = name.split()
    if len(parts) == 1:
        return parts[0][0] + "."
    return parts[0] + " " + " ".join(p[0] + "." for p in parts[1:])
