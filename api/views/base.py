"""What every API view shares: roles, throttling, cursor pages, JSON 404 for bad ids, idempotent creates."""

from __future__ import annotations

import re

from rest_framework import viewsets
from rest_framework.exceptions import NotFound, ValidationError

from api.idempotency import idempotent
from api.pagination import IdCursorPagination
from api.permissions import ReadOnlyUnlessSender
from api.throttling import TokenRateThrottle

_PK = re.compile(r"[0-9]{1,19}")
_MAX_PK = 2**63 - 1


class ApiMixin:
    permission_classes = [ReadOnlyUnlessSender]
    throttle_classes = [TokenRateThrottle]
    pagination_class = IdCursorPagination
    filter_serializer_class = None
    lookup_value_regex = "[^/]+"  # any id reaches the view, so a malformed one is a JSON 404

    def get_object(self):
        raw = str(self.kwargs.get(self.lookup_url_kwarg or self.lookup_field, ""))
        if not _PK.fullmatch(raw) or int(raw) > _MAX_PK:
            raise NotFound()
        return super().get_object()

    def get_filters(self) -> dict:
        """Query-string filters, validated: a bad value is a 400, not silently ignored."""
        if self.filter_serializer_class is None:
            return {}
        serializer = self.filter_serializer_class(data=self.request.query_params)
        if not serializer.is_valid():
            raise ValidationError(serializer.errors)
        return serializer.validated_data


class ReadOnlyViewSet(ApiMixin, viewsets.ReadOnlyModelViewSet):
    pass


class ModelViewSet(ApiMixin, viewsets.ModelViewSet):
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    @idempotent
    def create(self, request, *args, **kwargs):
        return super().create(request, *args, **kwargs)
