"""What every API view shares: roles, throttling, cursor pages, JSON 404 for bad ids, idempotent creates."""

from __future__ import annotations

import re
from typing import Any

from django.db.models import Model
from rest_framework import serializers, viewsets
from rest_framework.exceptions import NotAuthenticated, NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from api.idempotency import idempotent
from api.pagination import IdCursorPagination
from api.permissions import ReadOnlyUnlessSender, TokenHasScope
from api.throttling import TokenRateThrottle

_PK = re.compile(r"[0-9]{1,19}")
_MAX_PK = 2**63 - 1


def api_user(request: Request) -> User:
    """The signed-in user of an API request (every API view requires one)."""
    if not isinstance(request.user, User):
        raise NotAuthenticated()
    return request.user


class ApiMixin(GenericAPIView):  # each view names its model
    permission_classes = [ReadOnlyUnlessSender]
    throttle_classes = [TokenRateThrottle]
    pagination_class = IdCursorPagination
    filter_serializer_class: type[serializers.Serializer] | None = None
    lookup_value_regex = "[^/]+"  # any id reaches the view, so a malformed one is a JSON 404

    def check_permissions(self, request: Request) -> None:
        # The token's scopes first, on every API view, whatever permissions a view names.
        scope = TokenHasScope()
        if not scope.has_permission(request, self):
            self.permission_denied(request, message=scope.message, code="token_scope")
        super().check_permissions(request)

    def get_object(self) -> Any:  # the view's model
        raw = str(self.kwargs.get(self.lookup_url_kwarg or self.lookup_field, ""))
        if not _PK.fullmatch(raw) or int(raw) > _MAX_PK:
            raise NotFound()
        return super().get_object()

    def get_filters(self) -> dict[str, Any]:
        """Query-string filters, validated: a bad value is a 400, not silently ignored."""
        if self.filter_serializer_class is None:
            return {}
        serializer = self.filter_serializer_class(data=self.request.query_params)
        if not serializer.is_valid():
            raise ValidationError(serializer.errors)
        return dict(serializer.validated_data)


class ReadOnlyViewSet(ApiMixin, viewsets.ReadOnlyModelViewSet):
    pass


class ModelViewSet(ApiMixin, viewsets.ModelViewSet):
    """Writes go through the owning app's services: each view says how in ``perform_create`` /
    ``perform_update`` / ``perform_destroy`` (setting ``serializer.instance`` to what the service
    returns). DRF's defaults, ``serializer.save()`` and ``instance.delete()``, would skip the
    services' rules and audit events, so they are refused here."""

    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    @idempotent
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        raise NotImplementedError(f"{type(self).__name__}: create through the owning app's service")

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        raise NotImplementedError(f"{type(self).__name__}: update through the owning app's service")

    def perform_destroy(self, instance: Model) -> None:
        raise NotImplementedError(f"{type(self).__name__}: delete through the owning app's service")
