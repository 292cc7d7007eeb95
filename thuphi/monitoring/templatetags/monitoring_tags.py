from __future__ import annotations

from urllib.parse import urlencode

from django import template

from thuphi.monitoring import charts

register = template.Library()


@register.filter
def sharebar(value):
    return charts.share_bar(value)


@register.filter
def qs(params: dict | None) -> str:
    """A scope's query dict as a query string."""
    return urlencode(params or {})


@register.filter
def light_label(light: str) -> str:
    from django.utils.translation import gettext as _

    return {"green": _("Đạt"), "amber": _("Gần đạt"), "red": _("Chưa đạt")}.get(light, _("Không có chỉ tiêu"))


def _cell_labels() -> tuple[str, ...]:
    from django.utils.html import escape
    from django.utils.translation import gettext as _

    return tuple(escape(x) for x in (_("Số giao dịch"), _("Không dùng tiền mặt"), _("Tỷ lệ (số lượng)"),
                                     _("Giá trị"), _("Không dùng tiền mặt"), _("Tỷ lệ (giá trị)")))


@register.filter
def figcells(f) -> str:
    """The six figure cells of a row (count, cashless count, share; value, cashless value, share), built in
    Python: a dashboard lists hundreds of rows and an {% include %} per row is most of the render time.
    The values are formatted numbers (digits, separators, "đ", "%"): nothing to escape."""
    from django.utils.safestring import mark_safe

    from thuphi.core.templatetags.thuphi import number, percent, vnd

    labels = _cell_labels()
    values = (number(f.payments), number(f.payments_cashless), percent(f.share_count), vnd(f.value),
              vnd(f.value_cashless), percent(f.share_value))
    cells = "".join(f'<td class="num" data-label="{label}">{value}</td>' for label, value in zip(labels[:5], values))
    return mark_safe(f'{cells}<td class="num" data-label="{labels[5]}">{values[5]}{charts.share_bar(f.share_value)}</td>')
