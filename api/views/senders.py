from __future__ import annotations

from accounts.models import AuthorizedSender
from accounts.services import audit_record
from api.permissions import ReadOnlyUnlessAdmin
from api.serializers.senders import AuthorizedSenderSerializer
from api.views.base import ModelViewSet


class AuthorizedSenderViewSet(ModelViewSet):
    """Sender grants: everyone reads their own; admins read and change all of them."""

    serializer_class = AuthorizedSenderSerializer
    permission_classes = [ReadOnlyUnlessAdmin]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AuthorizedSender.objects.none()
        qs = AuthorizedSender.objects.select_related("user")
        user = self.request.user
        return qs if user.is_portal_admin else qs.filter(user=user)

    def perform_create(self, serializer):
        grant = serializer.save()
        audit_record(actor=self.request.user, action="sender.create", target=grant, detail=grant.number)

    def perform_update(self, serializer):
        grant = serializer.save()
        audit_record(actor=self.request.user, action="sender.update", target=grant, detail=grant.number)

    def perform_destroy(self, instance):
        audit_record(actor=self.request.user, action="sender.delete", target=instance, detail=instance.number)
        instance.delete()
