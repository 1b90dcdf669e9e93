from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import AuthorizedSender, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ["username", "email", "role", "is_approved", "is_active", "last_login"]
    list_filter = ["role", "is_approved", "is_active"]
    fieldsets = (*BaseUserAdmin.fieldsets, ("Portal", {"fields": ("role", "is_approved")}))


@admin.register(AuthorizedSender)
class AuthorizedSenderAdmin(admin.ModelAdmin):
    list_display = ["number", "provider", "user", "label", "is_active", "max_mps"]
    list_filter = ["provider", "is_active"]
    search_fields = ["number", "label", "user__username", "user__email"]
