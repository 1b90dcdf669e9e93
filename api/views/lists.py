from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view

from api.serializers.lists import RecipientListSerializer
from api.views.base import ModelViewSet
from recipients.models import RecipientList


@extend_schema_view(
    list=extend_schema(summary="Recipient lists"),
    create=extend_schema(summary="Create a list (admins and senders)"),
)
class RecipientListViewSet(ModelViewSet):
    """Lists are shared by the whole portal: everyone reads them, admins and senders change them."""

    queryset = RecipientList.objects.all()
    serializer_class = RecipientListSerializer

    def perform_create(self, serializer):
        serializer.save(created_by=self.request.user)
