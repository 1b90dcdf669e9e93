from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from messaging.models import Message


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "campaign",
        "kind",
        "to",
        "sender",
        "status",
        "attempts",
        "error_code",
        "sent_at",
    ]
    list_filter = ["status", "kind", "provider"]
    search_fields = ["to", "provider_message_id"]
    raw_id_fields = ["campaign", "recipient", "created_by"]
    list_select_related = ["campaign"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        return False
