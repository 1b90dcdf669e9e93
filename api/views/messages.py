from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from api.idempotency import idempotent
from api.pagination import IdCursorPagination
from api.serializers.messages import (
    InboundMessageSerializer,
    MessageFilterSerializer,
    MessageSerializer,
    SendSerializer,
)
from api.views.base import ReadOnlyViewSet, api_user
from messaging.models import Message
from messaging.selectors import messages_visible_to
from recipients.models import InboundMessage
from recipients.selectors import inbound_visible_to
from recipients.sending import message_send_single
from relay.selectors import relay_can_see_numbers


class MessageViewSet(ReadOnlyViewSet):
    serializer_class = MessageSerializer
    filter_serializer_class = MessageFilterSerializer
    pagination_class = IdCursorPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Message.objects.none()
        qs = messages_visible_to(user=self.request.user)
        if self.action == "list":
            filters = self.get_filters()
            for name in ("campaign", "recipient"):
                if name in filters:
                    qs = qs.filter(**{f"{name}_id": filters[name]})
            if "recipient" in filters and not relay_can_see_numbers(user=api_user(self.request)):
                qs = qs.exclude(kind=Message.Kind.RELAY)  # else the filter would tell whom a masked number is
            for name in ("status", "kind"):
                if name in filters:
                    qs = qs.filter(**{name: filters[name]})
        return qs

    @extend_schema(parameters=[MessageFilterSerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        summary="Send one SMS or MMS now",
        description=(
            "Returns the new message at once (status `pending`); follow it with GET /api/v1/messages/{id}. "
            "Refuses opted-out numbers and numbers you are not authorized to send from."
        ),
        request=SendSerializer,
        responses={201: MessageSerializer},
    )
    @action(detail=False, methods=["post"])
    @idempotent
    def send(self, request):
        serializer = SendSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        message = message_send_single(
            user=request.user,
            to=data["to"],
            body=data.get("body", ""),
            media_urls=data.get("media_urls", []),
            sender_number=data.get("sender"),
        )
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)


class InboundMessageViewSet(ReadOnlyViewSet):
    """Messages people sent to our numbers. A sender sees those sent to the numbers they hold."""

    serializer_class = InboundMessageSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return InboundMessage.objects.none()
        return inbound_visible_to(user=self.request.user)
