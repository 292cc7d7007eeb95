from __future__ import annotations

from django import template
from django.utils.translation import get_language

from thuphi.core import formatting

register = template.Library()


@register.filter
def vnd(value) -> str:
    """37876956607 -> '37.876.956.607 đ' (in English: '37,876,956,607 VND')."""
    if value is None or value == "":
        return ""
    amount = int(value)
    if (get_language() or "vi").startswith("en"):
        return f"{amount:,} VND"
    return formatting.format_vnd(amount)


@register.filter
def number(value) -> str:
    if value is None or value == "":
        return ""
    if (get_language() or "vi").startswith("en"):
        return f"{int(value):,}"
    return formatting.format_number(int(value))


@register.filter
def percent(value) -> str:
    if (get_language() or "vi").startswith("en"):
        return "—" if value is None else f"{value}%"
    return formatting.format_percent(value)
