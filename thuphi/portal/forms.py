from __future__ import annotations

from django import forms
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from thuphi.billing.models import MAX_AMOUNT, FeeKind


class LookupForm(forms.Form):
    institution = forms.CharField(label=_("Mã đơn vị (trường, bệnh viện)"), max_length=32)
    payer_code = forms.CharField(label=_("Mã học sinh / mã người bệnh"), max_length=32)
    phone_last4 = forms.RegexField(label=_("4 số cuối điện thoại đã đăng ký"), regex=r"^\d{4}$",
                                   error_messages={"invalid": _("Nhập đúng 4 chữ số.")})


class BillForm(forms.Form):
    institution = forms.ChoiceField(label=_("Đơn vị"))
    payer_code = forms.CharField(label=_("Mã học sinh / người bệnh"), max_length=32)
    payer_name = forms.CharField(label=_("Họ tên"), max_length=100)
    payer_phone = forms.CharField(label=_("Điện thoại (phụ huynh / người bệnh)"), max_length=15, required=False)
    class_name = forms.CharField(label=_("Lớp"), max_length=32, required=False)
    due_date = forms.DateField(label=_("Hạn nộp"), widget=forms.DateInput(attrs={"type": "date"},
                                                                          format="%Y-%m-%d"))

    LINES = 3

    def __init__(self, *args, institutions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["institution"].choices = [(i.code, f"{i.code} – {i.name}") for i in institutions]
        for n in range(self.LINES):
            required = n == 0
            self.fields[f"item_{n}_name"] = forms.CharField(label=_("Khoản thu"), max_length=200, required=required)
            self.fields[f"item_{n}_kind"] = forms.ChoiceField(label=_("Loại"), choices=FeeKind.choices,
                                                              initial=FeeKind.MEALS_BOARDING, required=False)
            self.fields[f"item_{n}_amount"] = forms.IntegerField(label=_("Số tiền (đồng)"), min_value=0,
                                                                 max_value=MAX_AMOUNT, required=required)
            # The line table has no <label> per cell: name each input for screen readers.
            for part in ("name", "kind", "amount"):
                field = self.fields[f"item_{n}_{part}"]
                field.widget.attrs["aria-label"] = format_lazy("{} {}", field.label, n + 1)

    def line_rows(self) -> list[dict]:
        return [{"name": self[f"item_{n}_name"], "kind": self[f"item_{n}_kind"], "amount": self[f"item_{n}_amount"]}
                for n in range(self.LINES)]

    def items(self) -> list[dict]:
        out = []
        for n in range(self.LINES):
            name = self.cleaned_data.get(f"item_{n}_name")
            amount = self.cleaned_data.get(f"item_{n}_amount")
            if name and amount is not None:
                out.append({"name": name, "amount": amount, "kind": self.cleaned_data.get(f"item_{n}_kind") or ""})
        return out

    def clean(self):
        data = super().clean()
        for n in range(1, self.LINES):
            if bool(data.get(f"item_{n}_name")) != (data.get(f"item_{n}_amount") is not None):
                self.add_error(f"item_{n}_amount", _("Nhập cả tên khoản thu và số tiền, hoặc bỏ trống cả hai."))
        return data


class CancelForm(forms.Form):
    reason = forms.CharField(label=_("Lý do hủy"), max_length=255)
