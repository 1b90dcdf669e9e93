"""Django admin for accounts. Changes to roles, approvals, senders and tokens are audited."""

from __future__ import annotations

from collections.abc import Iterable

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts import services
from accounts.forms import AdminLoginForm
from accounts.http import client_ip
from accounts.models import ApiToken, AuditEvent, AuthorizedSender, User
from accounts.permissions import signed_in_user


def _changes(form: forms.ModelForm, fields: Iterable[str]) -> str:
    return "; ".join(
        f"{f}: {form.initial.get(f)} -> {form.cleaned_data.get(f)}" for f in fields if f in form.changed_data
    )


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ["username", "email", "role", "is_approved", "is_active", "last_login"]
    list_filter = ["role", "is_approved", "is_active"]
    fieldsets = (*(BaseUserAdmin.fieldsets or ()), ("Portal", {"fields": ("role", "is_approved")}))
    # What only a superuser may grant: a staff admin changing these would be a way to promote themselves.
    SUPERUSER_ONLY = ("is_superuser", "is_staff", "groups", "user_permissions")

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        if not signed_in_user(request).is_superuser:
            fields += [f for f in self.SUPERUSER_ONLY if f not in fields]
        return fields

    def has_change_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        if obj is not None and not services.user_may_change(actor=signed_in_user(request), user=obj):
            return False  # the page opens read-only
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        if obj is not None and not services.user_may_change(actor=signed_in_user(request), user=obj):
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for obj in queryset:
            services.check_may_change_user(actor=signed_in_user(request), user=obj)
            services.audit_record(actor=request.user, action="user.delete", target=obj, ip=client_ip(request))
        super().delete_queryset(request, queryset)

    def save_model(self, request: HttpRequest, obj: User, form: forms.ModelForm, change: bool) -> None:
        if change:  # the stored row, not the form's: a form that made someone a superuser is checked too
            services.check_may_change_user(actor=signed_in_user(request), user=User.objects.get(pk=obj.pk))
        if obj.is_superuser and not signed_in_user(request).is_superuser:
            raise PermissionDenied("Only a superuser can make a superuser.")
        super().save_model(request, obj, form, change)
        ip = client_ip(request)
        if not change:
            services.audit_record(
                actor=request.user, action="user.create", target=obj, detail=f"role={obj.role} (admin)", ip=ip
            )
            return
        if "role" in form.changed_data:
            services.audit_record(
                actor=request.user, action="user.set_role", target=obj, detail=_changes(form, ["role"]), ip=ip
            )
        access = [f for f in ("is_approved", "is_active", "is_superuser", "is_staff") if f in form.changed_data]
        if access:
            services.audit_record(
                actor=request.user, action="user.set_access", target=obj, detail=_changes(form, access), ip=ip
            )

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        services.audit_record(actor=request.user, action="user.delete", target=obj, ip=client_ip(request))
        super().delete_model(request, obj)


@admin.register(AuthorizedSender)
class AuthorizedSenderAdmin(admin.ModelAdmin):
    list_display = ["number", "provider", "user", "label", "is_active", "max_mps"]
    list_filter = ["provider", "is_active"]
    search_fields = ["number", "label", "user__username", "user__email"]

    def save_model(self, request: HttpRequest, obj: AuthorizedSender, form: forms.ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        detail = _changes(form, form.changed_data) if change else f"user={obj.user}"
        action = "sender.update" if change else "sender.create"
        services.audit_record(actor=request.user, action=action, target=obj, detail=detail, ip=client_ip(request))

    def delete_model(self, request: HttpRequest, obj: AuthorizedSender) -> None:
        services.audit_record(actor=request.user, action="sender.delete", target=obj, ip=client_ip(request))
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[AuthorizedSender]) -> None:
        for obj in queryset:
            services.audit_record(actor=request.user, action="sender.delete", target=obj, ip=client_ip(request))
        super().delete_queryset(request, queryset)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created on /tokens/ (the secret is shown once there); here they can only be revoked."""

    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix", "user__username"]
    readonly_fields = ["user", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]
    exclude = ["hashed_secret"]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset.select_related("user"):
            services.api_token_revoke(actor=signed_in_user(request), token=token, ip=client_ip(request))


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the audit log is append-only."""

    list_display = ["created_at", "actor_description", "action", "target_type", "target_id", "target_repr", "ip"]
    list_filter = ["action", "target_type"]
    search_fields = ["actor_description", "action", "target_repr", "detail"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False


# The admin's sign-in counts failed passwords with the main sign-in page's rule.
admin.site.login_form = AdminLoginForm
