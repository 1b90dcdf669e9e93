from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from api.idempotency import idempotent
from api.serializers.campaigns import (
    CampaignSerializer,
    PauseSerializer,
    PreviewSerializer,
    RetryResultSerializer,
    StatsSerializer,
)
from api.views.base import ModelViewSet, api_user
from campaigns import services
from campaigns.audience import audience_count, audience_sample
from campaigns.drafts import campaign_create_draft, campaign_delete_draft, campaign_update_draft
from campaigns.models import Campaign
from campaigns.selectors import campaign_stats, campaigns_visible_to
from messaging.compose import preview


class CampaignViewSet(ModelViewSet):
    """Campaigns: edit while draft, then launch, pause, resume, cancel, retry failed."""

    serializer_class = CampaignSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Campaign.objects.none()
        return campaigns_visible_to(user=self.request.user).prefetch_related("senders", "lists")

    def get_object(self):
        campaign = super().get_object()
        if self.request.method not in ("GET", "HEAD", "OPTIONS"):
            user = api_user(self.request)
            if campaign.created_by_id != user.pk and not user.is_portal_admin:
                raise PermissionDenied("Only the campaign's creator or an admin may change it.")
        return campaign

    def perform_create(self, serializer):
        fields = dict(serializer.validated_data)
        serializer.instance = campaign_create_draft(
            user=self.request.user, senders=fields.pop("senders", ()), lists=fields.pop("lists", ()), **fields
        )

    def perform_update(self, serializer):
        """Only while draft (409 otherwise), checked on the locked row: see campaigns/drafts.py."""
        fields = dict(serializer.validated_data)
        serializer.instance = campaign_update_draft(
            campaign=serializer.instance,
            user=self.request.user,
            senders=fields.pop("senders", None),
            lists=fields.pop("lists", None),
            **fields,
        )

    def perform_destroy(self, instance):
        campaign_delete_draft(campaign=instance, user=self.request.user)

    def _campaign_response(self, campaign: Campaign) -> Response:
        campaign = self.get_queryset().get(pk=campaign.pk)
        return Response(CampaignSerializer(campaign, context=self.get_serializer_context()).data)

    @extend_schema(summary="Launch now, or at send_at", request=None, responses={200: CampaignSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def launch(self, request, pk=None):
        return self._campaign_response(services.campaign_launch(campaign=self.get_object(), user=request.user))

    @extend_schema(summary="Pause a sending campaign", request=PauseSerializer, responses={200: CampaignSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def pause(self, request, pk=None):
        campaign = self.get_object()
        serializer = PauseSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        reason = serializer.validated_data.get("reason", "")
        return self._campaign_response(services.campaign_pause(campaign=campaign, user=request.user, reason=reason))

    @extend_schema(summary="Resume a paused campaign", request=None, responses={200: CampaignSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def resume(self, request, pk=None):
        return self._campaign_response(services.campaign_resume(campaign=self.get_object(), user=request.user))

    @extend_schema(summary="Cancel: nothing more is sent", request=None, responses={200: CampaignSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def cancel(self, request, pk=None):
        return self._campaign_response(services.campaign_cancel(campaign=self.get_object(), user=request.user))

    @extend_schema(
        summary="Send again the messages that failed for a transient reason",
        request=None,
        responses={200: RetryResultSerializer},
    )
    @action(detail=True, methods=["post"], url_path="retry-failed")
    @idempotent
    def retry_failed(self, request, pk=None):
        retried = services.campaign_retry_failed(campaign=self.get_object(), user=request.user)
        return Response({"retried": retried}, status=status.HTTP_200_OK)

    @extend_schema(summary="Counts per status, from counters", responses={200: StatsSerializer})
    @action(detail=True, methods=["get"], pagination_class=None)
    def stats(self, request, pk=None):
        return Response(StatsSerializer(campaign_stats(campaign=self.get_object())).data)

    @extend_schema(summary="Recipient count and the message for a sample recipient", responses={200: PreviewSerializer})
    @action(detail=True, methods=["get"], pagination_class=None)
    def preview(self, request, pk=None):
        campaign = self.get_object()
        list_ids = list(campaign.lists.values_list("pk", flat=True))
        sample = audience_sample(list_ids=list_ids)
        result = preview(
            campaign.body,
            sample_context=sample.template_context() if sample else {},
            add_stop_footer=campaign.add_stop_footer,
            smart_encoding=campaign.smart_encoding,
        )
        data = {"recipient_count": audience_count(list_ids=list_ids), "sample": sample is None, **result}
        return Response(PreviewSerializer(data).data)
