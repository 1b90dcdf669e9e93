"""The relay's REST endpoints, /api/v1/relay/...: masked conversations and the relay number pool.

Writes go through relay/services.py; its refusals become API errors in api/exceptions.py
(RelayError: 400 naming the field, PoolExhausted: 409). Ids, cursor pages, throttling and
Idempotency-Key are the rest of the API's (api/views/base.py).
"""

from __future__ import annotations

from datetime import timedelta

from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.permissions import IsApproved, IsPortalAdmin
from api.exceptions import Conflict
from api.idempotency import idempotent
from api.permissions import ReadOnlyUnlessSender
from api.serializers.relay import (
    ConversationCreateSerializer,
    ConversationFilterSerializer,
    ConversationSerializer,
    RelayNumberCreateSerializer,
    RelayNumberSerializer,
    TranscriptEntrySerializer,
)
from api.views.base import ApiMixin, api_user
from relay import selectors, services
from relay.models import Conversation, RelayNumber


class CanManageRelay(ReadOnlyUnlessSender):
    """Reads for every approved user; opening and closing for admins and senders."""

    message = "Only admins and senders may create or close relay conversations."


class RelayConversationViewSet(ApiMixin, viewsets.GenericViewSet):
    """Conversations between two real numbers through two relay numbers. Real numbers are masked unless you
    are an admin."""

    permission_classes = [CanManageRelay]
    serializer_class = ConversationSerializer
    filter_serializer_class = ConversationFilterSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Conversation.objects.none()
        status_filter = self.get_filters().get("status") if self.action == "list" else None
        return selectors.conversation_list(status=status_filter)

    def _shown(self, conversation: Conversation) -> dict:
        return ConversationSerializer(
            selectors.conversation_view(conversation=conversation, user=self.request.user)
        ).data

    @extend_schema(
        operation_id="v1_relay_conversations_list",
        summary="List relay conversations, newest first",
        parameters=[ConversationFilterSerializer],
        responses=ConversationSerializer(many=True),
    )
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset()) or []
        return self.get_paginated_response([self._shown(c) for c in page])

    @extend_schema(
        operation_id="v1_relay_conversations_create",
        summary="Open a conversation between two numbers (both get an intro text)",
        description="409 when the relay number pool has no free pair for these participants.",
        request=ConversationCreateSerializer,
        responses={201: ConversationSerializer},
    )
    @idempotent
    def create(self, request):
        payload = ConversationCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        hours = data.get("expires_in_hours")
        conversation = services.conversation_create(
            participant_a=data["participant_a"],
            participant_b=data["participant_b"],
            name_a=data["name_a"],
            name_b=data["name_b"],
            ttl=timedelta(hours=hours) if hours else None,
            created_by=api_user(request),
        )
        return Response(self._shown(conversation), status=status.HTTP_201_CREATED)

    @extend_schema(operation_id="v1_relay_conversations_retrieve", responses=ConversationSerializer)
    def retrieve(self, request, pk=None):
        return Response(self._shown(self.get_object()))

    @extend_schema(
        operation_id="v1_relay_conversations_close",
        summary="Close a conversation; its relay numbers are free again",
        description="409 when the conversation is already closed or expired.",
        request=None,
        responses=ConversationSerializer,
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def close(self, request, pk=None):
        conversation = self.get_object()
        user = api_user(request)
        if not services.conversation_close(conversation=conversation, reason=f"closed by {user.username}", actor=user):
            conversation.refresh_from_db()
            raise Conflict(f"The conversation is already {conversation.status}.")
        return Response(self._shown(conversation))

    @extend_schema(
        operation_id="v1_relay_conversations_transcript",
        summary="Every message of a conversation, oldest first",
        responses=TranscriptEntrySerializer(many=True),
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def transcript(self, request, pk=None):
        rows = selectors.transcript_view(conversation=self.get_object(), user=request.user)
        return Response(TranscriptEntrySerializer(rows, many=True).data)


class RelayNumberViewSet(ApiMixin, viewsets.GenericViewSet):
    """The relay number pool: everyone approved lists it; admins add and change numbers. Numbers are never
    deleted (transcripts refer to them)."""

    serializer_class = RelayNumberSerializer
    pagination_class = None  # type: ignore[assignment]  # a short list, never paged

    def get_queryset(self):
        return selectors.relay_number_list()

    def get_permissions(self):
        if self.action == "list":
            return [IsApproved()]
        return [IsPortalAdmin()]

    @extend_schema(
        operation_id="v1_relay_numbers_list",
        summary="The relay number pool",
        responses=RelayNumberSerializer(many=True),
    )
    def list(self, request):
        return Response(RelayNumberSerializer(self.get_queryset(), many=True).data)

    @extend_schema(
        operation_id="v1_relay_numbers_create",
        summary="Add a number to the relay pool (admins)",
        request=RelayNumberCreateSerializer,
        responses={201: RelayNumberSerializer},
    )
    @idempotent
    def create(self, request):
        payload = RelayNumberCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        number = services.relay_number_create(actor=api_user(request), **payload.validated_data)
        return Response(RelayNumberSerializer(number).data, status=status.HTTP_201_CREATED)

    @extend_schema(operation_id="v1_relay_numbers_retrieve", responses=RelayNumberSerializer)
    def retrieve(self, request, pk=None):
        return Response(RelayNumberSerializer(self.get_object()).data)

    @extend_schema(
        operation_id="v1_relay_numbers_partial_update",
        summary="Change a pool number's label, provider or active flag (admins)",
        request=RelayNumberSerializer,
        responses=RelayNumberSerializer,
    )
    def partial_update(self, request, pk=None):
        number: RelayNumber = self.get_object()
        payload = RelayNumberSerializer(number, data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        number = services.relay_number_update(relay_number=number, actor=api_user(request), **payload.validated_data)
        return Response(RelayNumberSerializer(number).data)
