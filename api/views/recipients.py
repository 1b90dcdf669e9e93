from __future__ import annotations

from django.db.models import Q
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.response import Response

from api.idempotency import idempotent
from api.serializers.recipients import (
    BulkResultSerializer,
    BulkUpsertSerializer,
    ConsentChangeSerializer,
    ConsentEventSerializer,
    RecipientFilterSerializer,
    RecipientSerializer,
    bulk_rows,
)
from api.views.base import ModelViewSet
from recipients.models import ConsentEvent, ConsentStatus
from recipients.selectors import recipient_lists_visible_to, recipients_visible_to
from recipients.services import (
    recipient_create,
    recipient_delete,
    recipient_set_consent,
    recipient_update,
    recipients_bulk_upsert,
)
from recipients.upsert import KEPT_OPTED_OUT
from smsportal.phone import InvalidNumber, normalize


class RecipientViewSet(ModelViewSet):
    """Recipients are shared by the portal. Consent changes only through opt-in / opt-out."""

    serializer_class = RecipientSerializer
    filter_serializer_class = RecipientFilterSerializer

    def get_queryset(self):
        qs = recipients_visible_to(user=self.request.user).prefetch_related("lists")
        if self.action != "list":
            return qs
        filters = self.get_filters()
        if "list" in filters:
            lists = recipient_lists_visible_to(user=self.request.user).filter(pk=filters["list"])
            qs = qs.filter(memberships__recipient_list__in=lists)
        if "consent_status" in filters:
            qs = qs.filter(consent_status=filters["consent_status"])
        if "phone" in filters:
            try:
                qs = qs.filter(phone=normalize(filters["phone"]))
            except InvalidNumber:
                qs = qs.filter(Q(pk__in=[]))
        return qs

    @extend_schema(parameters=[RecipientFilterSerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def perform_create(self, serializer):
        serializer.instance = recipient_create(actor=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = recipient_update(
            recipient=serializer.instance, actor=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        recipient_delete(recipient=instance, actor=self.request.user)

    @extend_schema(
        summary="Create or update up to 5000 recipients by number",
        request=BulkUpsertSerializer,
        responses={200: BulkResultSerializer},
    )
    @action(detail=False, methods=["post"], url_path="bulk")
    @idempotent
    def bulk(self, request):
        serializer = BulkUpsertSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        rows, errors = bulk_rows(serializer.validated_data["recipients"])
        result = recipients_bulk_upsert(
            rows=rows, recipient_list=serializer.validated_data.get("list"), actor=request.user
        )
        data = {
            "created": result.created,
            "updated": result.updated,
            "failed": len(errors),
            "errors": errors,
            "warnings": [
                {"row": row.row_number, "errors": {"consent": [KEPT_OPTED_OUT]}}
                for row in sorted(result.kept_opted_out, key=lambda r: r.row_number)
            ],
        }
        return Response(BulkResultSerializer(data).data)

    def _consent(self, request, status_to: str) -> Response:
        recipient = self.get_object()
        serializer = ConsentChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        recipient_set_consent(
            recipient=recipient,
            status=status_to,
            channel=ConsentEvent.Channel.API,
            actor=request.user,
            evidence=serializer.validated_data.get("evidence", ""),
        )
        recipient.refresh_from_db()
        return Response(RecipientSerializer(recipient, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Record that this person opted in",
        request=ConsentChangeSerializer,
        responses={200: RecipientSerializer},
    )
    @action(detail=True, methods=["post"], url_path="opt-in")
    @idempotent
    def opt_in(self, request, pk=None):
        return self._consent(request, ConsentStatus.OPTED_IN)

    @extend_schema(
        summary="Record that this person opted out",
        request=ConsentChangeSerializer,
        responses={200: RecipientSerializer},
    )
    @action(detail=True, methods=["post"], url_path="opt-out")
    @idempotent
    def opt_out(self, request, pk=None):
        return self._consent(request, ConsentStatus.OPTED_OUT)

    @extend_schema(summary="Consent history, newest first", responses={200: ConsentEventSerializer(many=True)})
    @action(detail=True, methods=["get"], url_path="consent-history", pagination_class=None)
    def consent_history(self, request, pk=None):
        recipient = self.get_object()
        events = ConsentEvent.objects.filter(recipient=recipient).select_related("actor")[:1000]
        return Response(ConsentEventSerializer(events, many=True).data)
