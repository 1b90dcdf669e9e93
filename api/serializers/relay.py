"""Relay conversations and the relay number pool (the data is shaped by relay/selectors.py).

Serializer names are OpenAPI component names too, so they stay distinct and stable.
"""

from __future__ import annotations

from rest_framework import serializers

from providers import registry as sms_providers
from relay.models import Conversation, RelayNumber


class ConversationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Conversation.Status.choices)
    participant_a = serializers.CharField(help_text="Real number; masked unless you are an admin")
    participant_b = serializers.CharField(help_text="Real number; masked unless you are an admin")
    name_a = serializers.CharField()
    name_b = serializers.CharField()
    virtual_for_a = serializers.CharField(help_text="The number A texts; it stands for B")
    virtual_for_b = serializers.CharField(help_text="The number B texts; it stands for A")
    close_reason = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)
    created_by = serializers.CharField(allow_null=True, help_text="Username of the creator")
    created_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)


class ConversationCreateSerializer(serializers.Serializer):
    participant_a = serializers.CharField(max_length=40, help_text="Phone number; E.164 or national")
    participant_b = serializers.CharField(max_length=40, help_text="Phone number; E.164 or national")
    name_a = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")
    name_b = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")
    expires_in_hours = serializers.FloatField(
        required=False, allow_null=True, min_value=0.01, max_value=24 * 365, help_text="Default: never expires"
    )


class ConversationFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Conversation.Status.choices, required=False)


class TranscriptEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    direction = serializers.CharField()
    outcome = serializers.CharField()
    from_number = serializers.CharField(help_text="Real number; masked unless you are an admin")
    to_virtual = serializers.CharField()
    text = serializers.CharField()
    media_urls = serializers.ListField(child=serializers.CharField())
    message_id = serializers.IntegerField(allow_null=True, help_text="The relayed outbound message")
    delivery_status = serializers.CharField(allow_null=True)
    received_at = serializers.DateTimeField()


class RelayNumberSerializer(serializers.ModelSerializer):
    class Meta:
        model = RelayNumber
        fields = ["id", "number", "provider", "label", "is_active", "created_at"]
        read_only_fields = ["id", "number", "created_at"]


class RelayNumberCreateSerializer(serializers.Serializer):
    number = serializers.CharField(max_length=40, help_text="Phone number; E.164 or national")
    provider = serializers.ChoiceField(choices=sms_providers.choices(), default=sms_providers.default_name())
    label = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")  # type: ignore[assignment]  # a field named like a Field attribute; DRF's metaclass moves it
    is_active = serializers.BooleanField(default=True)
