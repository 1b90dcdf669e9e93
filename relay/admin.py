from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.permissions import signed_in_user
from relay.models import Conversation, ConversationLeg, RelayMessage, RelayNumber
from relay.services import conversation_close


@admin.register(RelayNumber)
class RelayNumberAdmin(admin.ModelAdmin):
    list_display = ["number", "provider", "label", "is_active", "created_at"]
    list_filter = ["provider", "is_active"]
    search_fields = ["number", "label"]


class LegInline(admin.TabularInline):
    model = ConversationLeg
    extra = 0
    can_delete = False
    readonly_fields = ["real_number", "virtual_number", "is_open"]

    def has_add_permission(self, request: HttpRequest, obj: Conversation | None = None) -> bool:
        return False


class TranscriptInline(admin.TabularInline):
    model = RelayMessage
    extra = 0
    can_delete = False
    fields = ("received_at", "direction", "outcome", "from_number", "to_virtual", "text", "media_urls", "message")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Conversation | None = None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    """Read-mostly: conversations are created through the service so numbers are assigned safely."""

    list_display = ["id", "participant_a", "participant_b", "virtual_for_a", "virtual_for_b", "status", "expires_at"]
    list_filter = ["status"]
    search_fields = ["participant_a", "participant_b"]
    readonly_fields = [f.name for f in Conversation._meta.fields]
    inlines = [LegInline, TranscriptInline]
    actions = ["close_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Close selected conversations")
    def close_selected(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        actor = signed_in_user(request)
        closed = sum(conversation_close(conversation=c, reason=f"closed by {actor}", actor=actor) for c in queryset)
        self.message_user(request, f"Closed {closed} conversation(s).", messages.SUCCESS)


@admin.register(RelayMessage)
class RelayMessageAdmin(admin.ModelAdmin):
    list_display = ["received_at", "conversation", "direction", "outcome", "from_number", "to_virtual"]
    list_filter = ["outcome", "direction"]
    readonly_fields = [f.name for f in RelayMessage._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RelayMessage | None = None) -> bool:
        return False


@admin.register(ConversationLeg)
class ConversationLegAdmin(admin.ModelAdmin):
    """Which real number talks through which virtual number; read-only (closing frees legs)."""

    list_display = ["conversation", "virtual_number", "is_open"]
    list_filter = ["is_open"]
    raw_id_fields = ["conversation"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ConversationLeg | None = None) -> bool:
        return False
