from django.contrib import admin

from recipients.models import ConsentEvent, InboundMessage, Membership, Recipient, RecipientList


class ConsentEventInline(admin.TabularInline):
    model = ConsentEvent
    extra = 0
    can_delete = False
    readonly_fields = [
        "created_at",
        "from_status",
        "to_status",
        "channel",
        "actor",
        "actor_description",
        "evidence",
    ]
    fields = readonly_fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Recipient)
class RecipientAdmin(admin.ModelAdmin):
    list_display = [
        "phone",
        "first_name",
        "last_name",
        "consent_status",
        "opted_in_at",
        "opted_out_at",
    ]
    list_filter = ["consent_status", "lists"]
    search_fields = ["phone", "first_name", "last_name"]
    readonly_fields = ["consent_status", "opted_in_at", "opted_out_at"]
    inlines = [ConsentEventInline]
    show_full_result_count = False


@admin.register(RecipientList)
class RecipientListAdmin(admin.ModelAdmin):
    list_display = ["name", "is_archived", "created_at"]
    list_filter = ["is_archived"]
    search_fields = ["name"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["recipient_list", "recipient", "added_at"]
    raw_id_fields = ["recipient", "recipient_list"]


@admin.register(ConsentEvent)
class ConsentEventAdmin(admin.ModelAdmin):
    list_display = ["recipient", "from_status", "to_status", "channel", "actor", "created_at"]
    list_filter = ["channel", "to_status"]
    raw_id_fields = ["recipient"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(InboundMessage)
class InboundMessageAdmin(admin.ModelAdmin):
    list_display = ["received_at", "sender", "to", "kind", "text"]
    list_filter = ["kind", "provider"]
    search_fields = ["sender", "text"]
