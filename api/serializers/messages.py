from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from rest_framework import serializers

from accounts.models import User
from messaging.compose import MAX_TEMPLATE_CHARS
from messaging.models import Message, MessageStatus
from recipients.models import InboundMessage
from relay.selectors import relay_message_hidden_fields


def _viewer(serializer: serializers.Serializer) -> User | AnonymousUser:
    """Who is reading; nobody (so everything masked) when the serializer has no request."""
    user = getattr(serializer.context.get("request"), "user", None)
    return user if isinstance(user, User) else AnonymousUser()


class MessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = [
            "id",
            "kind",
            "campaign",
            "recipient",
            "to",
            "sender",
            "provider",
            "body",
            "media_urls",
            "segments",
            "status",
            "provider_message_id",
            "error_code",
            "error_text",
            "attempts",
            "created_at",
            "sent_at",
            "finished_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Message) -> dict:
        data = super().to_representation(instance)
        if instance.kind == Message.Kind.RELAY:  # the relay pages' masking rule, not a second one
            data.update(relay_message_hidden_fields(field="to", number=instance.to, user=_viewer(self)))
        return data


class MessageFilterSerializer(serializers.Serializer):
    campaign = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    recipient = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    status = serializers.ChoiceField(choices=MessageStatus.choices, required=False)
    kind = serializers.ChoiceField(choices=Message.Kind.choices, required=False)


class SendSerializer(serializers.Serializer):
    to = serializers.CharField(max_length=32, help_text="The recipient's number, any common format")
    body = serializers.CharField(
        allow_blank=True, required=False, default="", max_length=MAX_TEMPLATE_CHARS, trim_whitespace=False
    )
    media_urls = serializers.ListField(child=serializers.CharField(), required=False, default=list, max_length=50)
    sender = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=32,
        help_text="Your authorized number to send from; optional when you have exactly one",
    )


class InboundMessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = InboundMessage
        fields = [
            "id",
            "provider",
            "provider_message_id",
            "sender",
            "to",
            "text",
            "media_urls",
            "kind",
            "recipient",
            "received_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance: InboundMessage) -> dict:
        data = super().to_representation(instance)
        if instance.kind == InboundMessage.Kind.RELAY:
            data.update(relay_message_hidden_fields(field="sender", number=instance.sender, user=_viewer(self)))
        return data
