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
    """Writes go through the owning app's services: each view says how in ``perform_create`` /
    ``perform_update`` / ``perform_destroy`` (setting ``serializer.instance`` to what the service
    returns). DRF's defaults, ``serializer.save()`` and ``instance.delete()``, would skip the
    services' rules and audit events, so they are refused here."""

    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    @idempotent
    def create(self, request, *args, **kwargs):
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer):
        raise NotImplementedError(f"{type(self).__name__}: create through the owning app's service")

    def perform_update(self, serializer):
        raise NotImplementedError(f"{type(self).__name__}: update through the owning app's service")

    def perform_destroy(self, instance):
        raise NotImplementedError(f"{type(self).__name__}: delete through the owning app's service")
