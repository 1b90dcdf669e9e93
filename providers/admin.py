from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from providers.models import ProviderEvent


@admin.register(ProviderEvent)
class ProviderEventAdmin(admin.ModelAdmin):
    """Read-only: callbacks exactly as the providers sent them."""

    list_display = [
        "id",
        "provider",
        "kind",
        "status",
        "message_ref",
        "provider_message_id",
        "received_at",
        "processed_at",
    ]
    list_filter = ["provider", "kind", "status"]
    search_fields = ["message_ref", "provider_message_id"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ProviderEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ProviderEvent | None = None) -> bool:
        return False  # the evidence of what a provider told us; retention purges it, not a person
