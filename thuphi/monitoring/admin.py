from django.contrib import admin

from thuphi.monitoring.models import AggregateReport, Plan, PlanTarget


class PlanTargetInline(admin.TabularInline):
    model = PlanTarget
    extra = 1


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "issuing_body", "province", "legacy_province", "deadline", "is_active")
    list_filter = ("is_active",)
    search_fields = ("code", "name", "issuing_body", "document")
    inlines = [PlanTargetInline]

    def save_model(self, request, obj, form, change):
        if not obj.created_by_id:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(AggregateReport)
class AggregateReportAdmin(admin.ModelAdmin):
    """Read-only here: reports move through submit → approve | return in the pages or the API."""

    list_display = ("institution", "period_start", "period_end", "payments", "payments_cashless", "value",
                    "value_cashless", "status", "submitted_at")
    list_filter = ("status", "source")
    search_fields = ("institution__code", "institution__name")

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
