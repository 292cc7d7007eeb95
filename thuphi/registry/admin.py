from django.contrib import admin

from thuphi.registry.models import (
    BankAccount,
    Commune,
    DigitalPlatform,
    Institution,
    LegacyProvince,
    Payer,
    PayerCategory,
    Province,
)


@admin.register(Province)
class ProvinceAdmin(admin.ModelAdmin):
    list_display = ("code", "name")
    search_fields = ("code", "name")


@admin.register(LegacyProvince)
class LegacyProvinceAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "valid_to", "successor")
    list_filter = ("successor",)


@admin.register(Commune)
class CommuneAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "province")
    list_filter = ("province",)
    search_fields = ("code", "name")


class BankAccountInline(admin.TabularInline):
    model = BankAccount
    extra = 0


class PlatformInline(admin.TabularInline):
    model = DigitalPlatform
    extra = 0


@admin.register(Institution)
class InstitutionAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "sector", "kind", "ownership", "commune", "is_active")
    list_filter = ("sector", "kind", "ownership", "commune__province")
    search_fields = ("code", "name", "tax_code")
    autocomplete_fields = ("commune",)
    inlines = [BankAccountInline, PlatformInline]


@admin.register(PayerCategory)
class PayerCategoryAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "institution")


@admin.register(Payer)
class PayerAdmin(admin.ModelAdmin):
    # Phones and insurance numbers are masked in the list; the change form is for people allowed to edit.
    list_display = ("code", "name", "kind", "institution", "class_name", "masked_phone", "masked_insurance")
    list_filter = ("kind",)
    search_fields = ("code", "name")
    raw_id_fields = ("institution", "category")
