from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.admin_visibility import staff_visible
from messaging.models import Message, SegmentRate
from messaging.selectors import messages_visible_to


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    def get_queryset(self, request: HttpRequest) -> QuerySet[Message]:
        """Staff see what the portal's visibility rule lets them see (the same selector as pages and API)."""
        return staff_visible(request, super().get_queryset(request), messages_visible_to)

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

    def has_delete_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        return False  # the send path owns the rows (exactly once, counters); they go with their campaign


@admin.register(SegmentRate)
class SegmentRateAdmin(admin.ModelAdmin):
    """The rate table behind cost estimates and budgets; actual costs come from the providers' reports."""

    list_display = ["provider", "country", "sms_segment_price", "mms_price", "currency", "updated_at"]
    list_editable = ["sms_segment_price", "mms_price"]
    list_filter = ["provider", "currency"]
    search_fields = ["country"]
