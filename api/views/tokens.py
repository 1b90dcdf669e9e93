from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from accounts.http import client_ip
from accounts.models import ApiToken
from accounts.permissions import IsApproved
from accounts.selectors import api_tokens_visible_to
from accounts.services import api_token_create, api_token_revoke
from api.serializers.tokens import ApiTokenCreatedSerializer, ApiTokenCreateSerializer, ApiTokenSerializer
from api.views.base import ApiMixin, api_user


class ApiTokenViewSet(ApiMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """API tokens: everyone manages their own, admins everyone's. The secret is shown once, at creation."""

    serializer_class = ApiTokenSerializer
    permission_classes = [IsApproved]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return api_tokens_visible_to(user=api_user(self.request))

    @extend_schema(
        summary="Create a token (shown once in the response)",
        request=ApiTokenCreateSerializer,
        responses={201: ApiTokenCreatedSerializer},
    )
    def create(self, request):  # not @idempotent: a stored replay would keep the secret in the database
        serializer = ApiTokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = api_user(request)
        expires_at = data.get("expires_at")
        if data.get("expires_in_days"):
            expires_at = timezone.now() + timedelta(days=data["expires_in_days"])
        token, raw = api_token_create(
            actor=user,
            user=data.get("user") or user,
            name=data["name"],
            scopes=data["scopes"],
            expires_at=expires_at,
            ip=client_ip(request),
            granted_by=request.auth.scopes if isinstance(request.auth, ApiToken) else None,
        )
        body = ApiTokenSerializer(token).data | {"token": raw}
        response = Response(body, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(summary="Revoke a token (kept, inactive, for the audit log)", request=None, responses={204: None})
    def destroy(self, request, pk=None):
        api_token_revoke(actor=api_user(request), token=self.get_object(), ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
