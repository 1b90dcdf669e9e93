"""REST API for the relay: one class per operation; authentication is the project default."""

from __future__ import annotations

from datetime import timedelta

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsApproved, IsPortalAdmin, ReadOnlyForViewers
from accounts.services import audit_record
from providers import registry as sms_providers
from relay import selectors, services
from relay.models import Conversation, RelayNumber


class CanManageRelay(ReadOnlyForViewers):
    """Reads for every approved user; creating and closing for admins and senders."""

    message = "Only admins and senders may create or close relay conversations."


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The object is not in a state that allows this."
    default_code = "conflict"


def _relay_error(exc: services.RelayError) -> exceptions.APIException:
    """A refusal from the services, in the API's error shape: 409 for an empty pool, else 400."""
    if isinstance(exc, services.PoolExhausted):
        return Conflict(exc.message)
    return exceptions.ValidationError({exc.field or "non_field_errors": [exc.message]})


_MAX_PK = 2**63 - 1
ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)


def _pk(raw: str) -> int:
    """The URL matches any id segment, so a malformed one is the API's JSON 404, not Django's HTML page."""
    if not raw.isascii() or not raw.isdigit() or int(raw) > _MAX_PK:
        raise exceptions.NotFound()
    return int(raw)


class ConversationPagination(CursorPagination):
    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


# Serializers are module-level with distinct names: they are OpenAPI component names too.


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
    label = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    is_active = serializers.BooleanField(default=True)


class ConversationListCreateApi(APIView):
    permission_classes = [permissions.IsAuthenticated, CanManageRelay]
    pagination_class = ConversationPagination

    @extend_schema(
        operation_id="v1_relay_conversations_list",
        summary="List relay conversations, newest first",
        parameters=[ConversationFilterSerializer],
        responses=ConversationSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        filters = ConversationFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            selectors.conversation_list(status=filters.validated_data.get("status")), request, view=self
        )
        data = [selectors.conversation_view(conversation=c, user=request.user) for c in page]
        return paginator.get_paginated_response(ConversationSerializer(data, many=True).data)

    @extend_schema(
        operation_id="v1_relay_conversations_create",
        summary="Open a conversation between two numbers (both get an intro text)",
        description="409 when the relay number pool has no free pair for these participants.",
        request=ConversationCreateSerializer,
        responses={201: ConversationSerializer},
    )
    def post(self, request: Request) -> Response:
        payload = ConversationCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        hours = data.get("expires_in_hours")
        try:
            conversation = services.conversation_create(
                participant_a=data["participant_a"],
                participant_b=data["participant_b"],
                name_a=data["name_a"],
                name_b=data["name_b"],
                ttl=timedelta(hours=hours) if hours else None,
                created_by=request.user,
            )
        except services.RelayError as exc:
            raise _relay_error(exc) from None
        audit_record(actor=request.user, action="relay.create", target=conversation)
        view = selectors.conversation_view(conversation=conversation, user=request.user)
        return Response(ConversationSerializer(view).data, status=status.HTTP_201_CREATED)


class ConversationDetailApi(APIView):
    permission_classes = [permissions.IsAuthenticated, IsApproved]

    @extend_schema(operation_id="v1_relay_conversations_retrieve", parameters=[ID], responses=ConversationSerializer)
    def get(self, request: Request, pk: str) -> Response:
        conversation = get_object_or_404(selectors.conversation_list(), pk=_pk(pk))
        view = selectors.conversation_view(conversation=conversation, user=request.user)
        return Response(ConversationSerializer(view).data)


class ConversationCloseApi(APIView):
    permission_classes = [permissions.IsAuthenticated, CanManageRelay]

    @extend_schema(
        operation_id="v1_relay_conversations_close",
        parameters=[ID],
        summary="Close a conversation; its relay numbers are free again",
        description="409 when the conversation is already closed or expired.",
        request=None,
        responses=ConversationSerializer,
    )
    def post(self, request: Request, pk: str) -> Response:
        conversation = get_object_or_404(selectors.conversation_list(), pk=_pk(pk))
        if not services.conversation_close(conversation=conversation, reason=f"closed by {request.user.username}"):
            raise Conflict(f"The conversation is already {conversation.status}.")
        audit_record(actor=request.user, action="relay.close", target=conversation)
        conversation.refresh_from_db()
        view = selectors.conversation_view(conversation=conversation, user=request.user)
        return Response(ConversationSerializer(view).data)


class TranscriptApi(APIView):
    permission_classes = [permissions.IsAuthenticated, IsApproved]

    @extend_schema(
        operation_id="v1_relay_conversations_transcript",
        parameters=[ID],
        summary="Every message of a conversation, oldest first",
        responses=TranscriptEntrySerializer(many=True),
    )
    def get(self, request: Request, pk: str) -> Response:
        conversation = get_object_or_404(selectors.conversation_list(), pk=_pk(pk))
        rows = selectors.transcript_view(conversation=conversation, user=request.user)
        return Response(TranscriptEntrySerializer(rows, many=True).data)


class RelayNumberListCreateApi(APIView):
    """Everyone may list the pool; only admins add numbers."""

    def get_permissions(self):
        if self.request.method in permissions.SAFE_METHODS:
            return [permissions.IsAuthenticated(), IsApproved()]
        return [permissions.IsAuthenticated(), IsPortalAdmin()]

    @extend_schema(
        operation_id="v1_relay_numbers_list",
        summary="The relay number pool",
        responses=RelayNumberSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        return Response(RelayNumberSerializer(selectors.relay_number_list(), many=True).data)

    @extend_schema(
        operation_id="v1_relay_numbers_create",
        summary="Add a number to the relay pool (admins)",
        request=RelayNumberCreateSerializer,
        responses={201: RelayNumberSerializer},
    )
    def post(self, request: Request) -> Response:
        payload = RelayNumberCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            number = services.relay_number_create(**payload.validated_data)
        except services.RelayError as exc:
            raise _relay_error(exc) from None
        audit_record(actor=request.user, action="relay.number_add", target=number)
        return Response(RelayNumberSerializer(number).data, status=status.HTTP_201_CREATED)


class RelayNumberDetailApi(APIView):
    """Admins change a number's label, provider or active flag. Numbers are never deleted (transcripts)."""

    permission_classes = [permissions.IsAuthenticated, IsPortalAdmin]

    @extend_schema(operation_id="v1_relay_numbers_retrieve", parameters=[ID], responses=RelayNumberSerializer)
    def get(self, request: Request, pk: str) -> Response:
        return Response(RelayNumberSerializer(get_object_or_404(RelayNumber, pk=_pk(pk))).data)

    @extend_schema(
        operation_id="v1_relay_numbers_partial_update",
        parameters=[ID],
        summary="Change a pool number's label, provider or active flag (admins)",
        request=RelayNumberSerializer,
        responses=RelayNumberSerializer,
    )
    def patch(self, request: Request, pk: str) -> Response:
        number = get_object_or_404(RelayNumber, pk=_pk(pk))
        payload = RelayNumberSerializer(number, data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        payload.save()
        audit_record(actor=request.user, action="relay.number_update", target=number)
        return Response(payload.data)
