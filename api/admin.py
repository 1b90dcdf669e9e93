from django.contrib import admin

from api.models import IdempotencyRecord


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin):
    """Stored first responses of API requests with an Idempotency-Key; read-only."""

    list_display = ["key", "user", "response_status", "created_at"]
    search_fields = ["key"]
    raw_id_fields = ["user"]
    exclude = ["response_body"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
