from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from thuphi.registry.models import PaymentMethod, PlatformKind

CASHLESS_CHOICES = [(k, v) for k, v in PaymentMethod.choices if k != PaymentMethod.CASH]


class ReportForm(forms.Form):
    institution = forms.ChoiceField(label=_("Đơn vị"))
    period_start = forms.DateField(label=_("Từ ngày"), widget=forms.DateInput(attrs={"type": "date"}))
    period_end = forms.DateField(label=_("Đến ngày"), widget=forms.DateInput(attrs={"type": "date"}))
    payments = forms.IntegerField(label=_("Tổng số giao dịch"), min_value=0,
                                  widget=forms.NumberInput(attrs={"inputmode": "numeric"}))
    payments_cashless = forms.IntegerField(label=_("Số giao dịch không dùng tiền mặt"), min_value=0,
                                           widget=forms.NumberInput(attrs={"inputmode": "numeric"}))
    value = forms.IntegerField(label=_("Tổng giá trị (đồng)"), min_value=0,
                               widget=forms.NumberInput(attrs={"inputmode": "numeric"}))
    value_cashless = forms.IntegerField(label=_("Giá trị không dùng tiền mặt (đồng)"), min_value=0,
                                        widget=forms.NumberInput(attrs={"inputmode": "numeric"}))
    cashless_methods = forms.MultipleChoiceField(label=_("Hình thức không dùng tiền mặt đang nhận"),
                                                 choices=CASHLESS_CHOICES, required=False,
                                                 widget=forms.CheckboxSelectMultiple)
    digital_platforms = forms.MultipleChoiceField(label=_("Nền tảng số đang sử dụng"), choices=PlatformKind.choices,
                                                  required=False, widget=forms.CheckboxSelectMultiple)
    note = forms.CharField(label=_("Ghi chú"), required=False, max_length=500,
                           widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, institutions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["institution"].choices = [(i.code, f"{i.code} – {i.name}") for i in institutions]


class ReturnForm(forms.Form):
    reason = forms.CharField(label=_("Lý do trả lại"), max_length=500)


class UploadForm(forms.Form):
    file = forms.FileField(label=_("Tệp XLSX hoặc CSV"))
