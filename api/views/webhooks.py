"""Event webhook endpoints, their events and every delivery attempt: admins only."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.permissions import IsPortalAdmin
from api.serializers.webhooks import OutboxEventFilterSerializer, OutboxEventSerializer, WebhookEndpointSerializer
from api.views.base import ApiMixin, api_user
from events.models import OutboxEvent, WebhookEndpoint
from events.selectors import endpoints_list, events_list
from events.services import endpoint_create, endpoint_rotate_secret, endpoint_update, event_resend


class WebhookEndpointViewSet(
    ApiMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Where events go. DELETE is not offered: set is_active false (events and attempts stay visible)."""

    serializer_class = WebhookEndpointSerializer
    permission_classes = [IsPortalAdmin]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return WebhookEndpoint.objects.none()
        return endpoints_list()

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = endpoint_create(
            actor=api_user(self.request),
            url=data["url"],
            event_types=data.get("event_types", []),
            description=data.get("description", ""),
        )
        if data.get("is_active") is False:
            serializer.instance = endpoint_update(
                actor=api_user(self.request), endpoint=serializer.instance, is_active=False
            )

    def perform_update(self, serializer):
        serializer.instance = endpoint_update(
            actor=api_user(self.request), endpoint=serializer.instance, **serializer.validated_data
        )

    @extend_schema(summary="Replace the signing secret", request=None, responses={200: WebhookEndpointSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        endpoint = endpoint_rotate_secret(actor=api_user(request), endpoint=self.get_object())
        return Response(WebhookEndpointSerializer(endpoint).data)


class OutboxEventViewSet(ApiMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Every event sent (or waiting) per endpoint, with each delivery attempt; resend one."""

    serializer_class = OutboxEventSerializer
    permission_classes = [IsPortalAdmin]
    filter_serializer_class = OutboxEventFilterSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return OutboxEvent.objects.none()
        filters = self.get_filters() if self.action == "list" else {}
        return events_list(
            endpoint_id=filters.get("endpoint"),
            status=filters.get("status", ""),
            event_type=filters.get("event_type", ""),
        ).prefetch_related("delivery_attempts")

    @extend_schema(parameters=[OutboxEventFilterSerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        summary="Deliver this event again (same webhook-id)", request=None, responses={202: OutboxEventSerializer}
    )
    @action(detail=True, methods=["post"])
    def resend(self, request, pk=None):
        event = event_resend(actor=api_user(request), event=self.get_object())
        return Response(OutboxEventSerializer(event).data, status=status.HTTP_202_ACCEPTED)
