from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.exceptions import PermissionDenied

from api.serializers.lists import RecipientListSerializer
from api.views.base import ModelViewSet
from api.views.imports import ListImportsMixin
from recipients.models import RecipientList
from recipients.selectors import recipient_lists_manageable_by, recipient_lists_visible_to
from recipients.services import recipient_list_archive, recipient_list_create, recipient_list_update


@extend_schema_view(
    list=extend_schema(summary="Recipient lists"),
    create=extend_schema(summary="Create a list (admins and senders)"),
    destroy=extend_schema(summary="Archive a list (as the web page does): its members and history stay"),
)
class RecipientListViewSet(ListImportsMixin, ModelViewSet):
    """Admins and viewers see every list; a sender their own and the shared ones (recipients.selectors).
    Admins change every list, a sender only their own (a shared one is a 403)."""

    serializer_class = RecipientListSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return RecipientList.objects.none()
        return recipient_lists_visible_to(user=self.request.user)

    def perform_create(self, serializer):
        serializer.instance = recipient_list_create(user=self.request.user, **serializer.validated_data)

    def check_object_permissions(self, request, obj):
        super().check_object_permissions(request, obj)
        # Renaming and archiving (DELETE) manage the list; importing into a shared one only uses it.
        managing = self.action in ("update", "partial_update", "destroy")
        if managing and not recipient_lists_manageable_by(user=request.user).filter(pk=obj.pk).exists():
            raise PermissionDenied("Only its creator or an admin may rename or archive a shared list.")

    def perform_update(self, serializer):
        serializer.instance = recipient_list_update(recipient_list=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        """DELETE archives, never deletes: a list's members and consent history are evidence."""
        recipient_list_archive(recipient_list=instance, archived=True, actor=self.request.user)
