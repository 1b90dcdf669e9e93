from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.admin_visibility import staff_visible
from campaigns.models import Campaign, CampaignCounter, CampaignEvent, ShortLink
from campaigns.selectors import campaign_stats, campaigns_visible_to
from campaigns.services import TransitionError, campaign_launch
from messaging.models import Message


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    def get_queryset(self, request: HttpRequest) -> QuerySet[Campaign]:
        """Staff see what the portal's visibility rule lets them see (the same selector as pages and API)."""
        return staff_visible(request, super().get_queryset(request), campaigns_visible_to)

    list_display = [
        "name",
        "status",
        "recipient_total",
        "created_by",
        "launched_at",
        "completed_at",
    ]
    list_filter = ["status"]
    search_fields = ["name", "body"]
    filter_horizontal = ["senders", "lists"]
    readonly_fields = [
        "status",
        "recipient_total",
        "audience_total",
        "materialized_through",
        "materialized",
        "launched_at",
        "completed_at",
        "cancelled_at",
        "pause_reason",
        "stats",
    ]
    actions = ["launch"]

    def get_deleted_objects(self, objs, request):
        """A campaign's messages, counters and log go with it: their read-only admins must not block the delete."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        owned = {str(m._meta.verbose_name) for m in (Message, CampaignCounter, CampaignEvent)}
        return deleted, counts, perms_needed - owned, protected

    @admin.display(description="Progress")
    def stats(self, obj: Campaign) -> str:
        return str(campaign_stats(campaign=obj)) if obj.pk else "-"

    @admin.action(description="Launch selected draft campaigns")
    def launch(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        for campaign in queryset:
            try:
                campaign_launch(campaign=campaign, user=request.user)
                self.message_user(request, f"Launched {campaign}.")
            except (ValidationError, TransitionError) as exc:
                self.message_user(request, f"{campaign}: {exc}", level="error")


@admin.register(CampaignEvent)
class CampaignEventAdmin(admin.ModelAdmin):
    """Read-only: the campaign's own log, written by the system as it happens."""

    list_display = ["campaign", "kind", "detail", "created_at"]
    list_filter = ["kind"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: CampaignEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: CampaignEvent | None = None) -> bool:
        return False


@admin.register(CampaignCounter)
class CampaignCounterAdmin(admin.ModelAdmin):
    """Read-only: the progress counters the send path keeps; a hand edit would make progress lie."""

    list_display = ["campaign", "bucket", "count"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: CampaignCounter | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: CampaignCounter | None = None) -> bool:
        return False


@admin.register(ShortLink)
class ShortLinkAdmin(admin.ModelAdmin):
    """Read-only: made when messages are prepared, counted by the redirect. Only their campaign's
    viewers see them (the campaign visibility rule)."""

    list_display = ["code", "campaign", "target_url", "clicks", "first_clicked_at", "user_agent_category"]
    list_select_related = ["campaign"]
    search_fields = ["code", "target_url"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ShortLink]:
        visible = staff_visible(request, Campaign.objects.all(), campaigns_visible_to)
        return super().get_queryset(request).filter(campaign__in=visible)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ShortLink | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ShortLink | None = None) -> bool:
        return False
