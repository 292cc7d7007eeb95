from django.contrib import admin

from thuphi.receipts.models import Receipt, ReceiptCounter, ReceiptForm


@admin.register(ReceiptForm)
class ReceiptFormAdmin(admin.ModelAdmin):
    list_display = ("institution", "form_symbol", "serial_prefix", "name", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("institution__code", "institution__name", "form_symbol")
    raw_id_fields = ("institution",)


@admin.register(ReceiptCounter)
class ReceiptCounterAdmin(admin.ModelAdmin):
    list_display = ("institution", "form_symbol", "serial", "year", "last_number")
    list_filter = ("year",)
    # Editing a counter by hand would create gaps or duplicate numbers.
    readonly_fields = ("institution", "form_symbol", "serial", "year", "last_number")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Receipt)
class ReceiptAdmin(admin.ModelAdmin):
    list_display = ("__str__", "institution", "payer_name", "amount", "issue_date", "status")
    list_filter = ("status", "year")
    search_fields = ("verification_code", "payer_code", "payer_name", "bill_reference", "bank_reference")
    # Signed documents: read-only here; cancellation goes through the service (API), with a reason.
    readonly_fields = [f.name for f in Receipt._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
