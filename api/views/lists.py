from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view

from api.serializers.lists import RecipientListSerializer
from api.views.base import ModelViewSet
from api.views.imports import ListImportsMixin
from recipients.models import RecipientList
from recipients.services import recipient_list_create, recipient_list_delete, recipient_list_update


@extend_schema_view(
    list=extend_schema(summary="Recipient lists"),
    create=extend_schema(summary="Create a list (admins and senders)"),
)
class RecipientListViewSet(ListImportsMixin, ModelViewSet):
    """Lists are shared by the whole portal: everyone reads them, admins and senders change them."""

    queryset = RecipientList.objects.all()
    serializer_class = RecipientListSerializer

    def perform_create(self, serializer):
        serializer.instance = recipient_list_create(user=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = recipient_list_update(recipient_list=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        recipient_list_delete(recipient_list=instance, actor=self.request.user)
