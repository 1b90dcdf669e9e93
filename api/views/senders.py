from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from accounts.http import client_ip
from accounts.models import AuthorizedSender
from accounts.selectors import senders_visible_to
from accounts.services import sender_create, sender_deactivate, sender_update
from api.permissions import ReadOnlyUnlessAdmin
from api.serializers.senders import AuthorizedSenderSerializer
from api.views.base import ModelViewSet, api_user


class AuthorizedSenderViewSet(ModelViewSet):
    """Sender grants: everyone reads their own; admins read and change all of them."""

    serializer_class = AuthorizedSenderSerializer
    permission_classes = [ReadOnlyUnlessAdmin]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AuthorizedSender.objects.none()
        return senders_visible_to(user=self.request.user)

    def perform_create(self, serializer):
        serializer.instance = sender_create(
            actor=api_user(self.request), ip=client_ip(self.request), **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = sender_update(
            actor=api_user(self.request),
            sender=serializer.instance,
            ip=client_ip(self.request),
            **serializer.validated_data,
        )

    @extend_schema(summary="Deactivate a grant (kept for the audit trail)", responses={204: None})
    def destroy(self, request, *args, **kwargs):
        sender_deactivate(actor=api_user(request), sender=self.get_object(), ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
