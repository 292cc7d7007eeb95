from django.contrib import admin

from thuphi.billing.models import Bill, BillBatch, BillLine, DiscountRule, FeeItem


@admin.register(FeeItem)
class FeeItemAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "kind", "default_amount", "institution", "is_active")
    list_filter = ("kind", "is_active")
    search_fields = ("code", "name")
    raw_id_fields = ("institution",)


@admin.register(DiscountRule)
class DiscountRuleAdmin(admin.ModelAdmin):
    list_display = ("institution", "category", "fee_kind", "discount_type", "value")
    raw_id_fields = ("institution", "category")


class BillLineInline(admin.TabularInline):
    model = BillLine
    extra = 0
    readonly_fields = ("name", "kind", "amount", "discount", "fee_item", "position")
    can_delete = False


@admin.register(Bill)
class BillAdmin(admin.ModelAdmin):
    list_display = ("reference", "institution", "payer", "status", "amount_due", "amount_paid", "due_date")
    list_filter = ("status",)
    search_fields = ("reference", "payer__code", "payer__name")
    raw_id_fields = ("institution", "payer", "bank_account", "batch", "created_by")
    # Money fields move only through services (payments, cancellations), never by hand here.
    readonly_fields = ("reference", "status", "amount_gross", "amount_discount", "amount_due", "amount_paid",
                       "qr_payload", "cancelled_at", "created_at", "updated_at")
    inlines = [BillLineInline]


@admin.register(BillBatch)
class BillBatchAdmin(admin.ModelAdmin):
    list_display = ("name", "institution", "bill_count", "amount_total", "created_at")
    raw_id_fields = ("institution", "created_by")
