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


_LABELS: dict[str, tuple[str, ...]] = {}


def _cell_labels() -> tuple[str, ...]:
    """The cells' labels in the active language, translated once per language (hundreds of rows a page)."""
    from django.utils.html import escape
    from django.utils.translation import get_language
    from django.utils.translation import gettext as _

    language = get_language() or ""
    labels = _LABELS.get(language)
    if labels is None:
        labels = _LABELS[language] = tuple(escape(x) for x in (
            _("Số giao dịch"), _("Không dùng tiền mặt"), _("Tỷ lệ (số lượng)"), _("Giá trị"),
            _("Không dùng tiền mặt"), _("Tỷ lệ (giá trị)")))
    return labels


def _formatters():
    """number, vnd and percent as the thuphi template filters write them, for the active language (asked
    once per row rather than once per cell)."""
    from django.utils.translation import get_language

    from thuphi.core import formatting

    if (get_language() or "vi").startswith("en"):
        return (lambda v: f"{int(v):,}", lambda v: f"{int(v):,} VND",
                lambda v: "—" if v is None else f"{v}%")
    return formatting.format_number, formatting.format_vnd, formatting.format_percent


def figure_cells(f, labels=None, fmt=None) -> str:
    """The six figure cells of a row (count, cashless count, share; value, cashless value, share), built in
    Python: a dashboard lists hundreds of rows and an {% include %} per row is most of the render time.
    The values are formatted numbers (digits, separators, "đ", "%"): nothing to escape."""
    labels = labels or _cell_labels()
    number, vnd, percent = fmt or _formatters()
    share_value = f.share_value
    values = (number(f.payments), number(f.payments_cashless), percent(f.share_count), vnd(f.value),
              vnd(f.value_cashless), percent(share_value))
    cells = "".join(f'<td class="num" data-label="{label}">{value}</td>' for label, value in zip(labels[:5], values))
    return f'{cells}<td class="num" data-label="{labels[5]}">{values[5]}{charts.share_bar(share_value)}</td>'


@register.filter
def figcells(f) -> str:
    from django.utils.safestring import mark_safe

    return mark_safe(figure_cells(f))


@register.simple_tag
def institution_rows(facts, query: str, report: str, none: str, commune: str, source: str) -> str:
    """The rows of the per-institution table (up to a few hundred on a national page), built in Python;
    the labels come translated from the template."""
    from urllib.parse import quote

    from django.utils.html import escape
    from django.utils.safestring import mark_safe

    labels = {"report": report, "none": none, "commune": commune, "source": source}

    cells, fmt = _cell_labels(), _formatters()
    rows = []
    for f in facts:
        if f.collects_through_thuphi:
            source = "thuphi"
        elif f.reports_approved:
            source = escape(labels["report"])
        else:
            source = f'<span class="muted">{escape(labels["none"])}</span>'
        rows.append(f'<tr><td class="label"><a href="?{escape(query)}&amp;institution={quote(f.code, safe="/")}">'
                    f'{escape(f.name)}</a> <span class="muted">{escape(f.code)}</span></td>'
                    f'<td data-label="{escape(labels["commune"])}">{escape(f.commune_name)}</td>'
                    f'<td data-label="{escape(labels["source"])}">{source}</td>{figure_cells(f.total, cells, fmt)}</tr>')
    return mark_safe("".join(rows))
