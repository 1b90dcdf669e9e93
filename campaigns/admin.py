from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.admin_visibility import staff_visible
from campaigns.models import Campaign, CampaignCounter, CampaignEvent
from campaigns.selectors import campaign_stats, campaigns_visible_to
from campaigns.services import TransitionError, campaign_launch


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
        "materialized_through",
        "materialized",
        "launched_at",
        "completed_at",
        "cancelled_at",
        "pause_reason",
        "stats",
    ]
    actions = ["launch"]

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
    list_display = ["campaign", "kind", "detail", "created_at"]
    list_filter = ["kind"]


@admin.register(CampaignCounter)
class CampaignCounterAdmin(admin.ModelAdmin):
    list_display = ["campaign", "bucket", "count"]
