from __future__ import annotations

from rest_framework import serializers

from events.models import DeliveryAttempt, EventType, OutboxEvent, WebhookEndpoint


class WebhookEndpointSerializer(serializers.ModelSerializer):
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.choices),
        required=False,
        max_length=len(EventType.values),
        help_text="The events it receives. Default empty: every event",
    )
    url = serializers.URLField(max_length=500, help_text="Where events are POSTed (https in production)")

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "is_active",
            "secret",
            "failure_count",
            "retry_at",
            "disabled_at",
            "disabled_reason",
            "created_at",
        ]
        read_only_fields = [
            "id",
            "secret",
            "failure_count",
            "retry_at",
            "disabled_at",
            "disabled_reason",
            "created_at",
        ]
        extra_kwargs = {
            "secret": {"help_text": "Standard Webhooks signing secret (whsec_…): verify webhook-signature with it"},
            "is_active": {"help_text": "Default true. Set true again to re-enable an endpoint disabled for failures"},
        }


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["id", "attempted_at", "status_code", "succeeded", "error", "duration_ms"]
        read_only_fields = fields


class OutboxEventSerializer(serializers.ModelSerializer):
    webhook_id = serializers.CharField(read_only=True, help_text="The webhook-id header")
    delivery_attempts = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = OutboxEvent
        fields = [
            "id",
            "webhook_id",
            "endpoint",
            "event_type",
            "payload",
            "status",
            "attempts",
            "created_at",
            "delivered_at",
            "last_error",
            "delivery_attempts",
        ]
        read_only_fields = fields


class OutboxEventFilterSerializer(serializers.Serializer):
    endpoint = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    status = serializers.ChoiceField(choices=OutboxEvent.Status.choices, required=False)
    event_type = serializers.ChoiceField(choices=EventType.choices, required=False)
