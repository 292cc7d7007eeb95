from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _

from thuphi.core.models import ApiToken, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "get_full_name", "role", "institution", "province", "is_active")
    list_filter = ("role", "is_active", "province")
    search_fields = ("username", "first_name", "last_name", "email")
    autocomplete_fields = ("institution",)
    fieldsets = BaseUserAdmin.fieldsets + ((_("Phạm vi"), {"fields": ("role", "institution", "province")}),)
    add_fieldsets = BaseUserAdmin.add_fieldsets + ((_("Phạm vi"), {"fields": ("role", "institution", "province")}),)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    # The digest is useless to a reader and the plain token is never stored: show the prefix only.
    list_display = ("prefix", "user", "name", "created_at", "last_used_at", "revoked_at")
    fields = ("user", "name", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "created_at", "last_used_at")
    search_fields = ("prefix", "user__username", "name")

    def has_add_permission(self, request):
        return False
