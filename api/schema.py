"""OpenAPI generation: every operation documents the error shape and the codes it can answer."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers

from api.idempotency import IDEMPOTENCY_PARAMETER


class ErrorSerializer(serializers.Serializer):
    message = serializers.CharField()
    errors = serializers.DictField(child=serializers.JSONField(), help_text="Field name -> list of messages")  # type: ignore[assignment]  # a field named like a Serializer attribute; DRF's metaclass moves it


_ERRORS = {
    "400": "Malformed JSON, wrong types or invalid values (see `errors`).",
    "401": "No or invalid credentials.",
    "403": "Your role may not do this.",
    "404": "No such object, or not yours.",
    "429": "Too many requests; see the Retry-After header.",
}
_POST_ERRORS = {
    "409": "The object's state does not allow this (e.g. launching a campaign twice).",
    "422": "This Idempotency-Key was used with a different request.",
}


class AutoSchema(SpectacularAutoSchema):
    def _handler(self):
        action = getattr(self.view, "action", None) or self.method.lower()
        return getattr(self.view, action, None)

    def get_override_parameters(self):
        params = super().get_override_parameters()
        if getattr(self._handler(), "idempotent", False):
            params = [*params, IDEMPOTENCY_PARAMETER]
        return params

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if not self.path.startswith("/api/"):
            return responses
        errors = dict(_ERRORS)
        if self.method != "GET":
            errors.update(_POST_ERRORS)
        for code, description in errors.items():
            if code not in responses:
                response = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                response["description"] = description
                if code == "429":
                    response["headers"] = {
                        "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}
                    }
                responses[code] = response
        return responses


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token from your profile page: `Authorization: Bearer smsp_...`",
        }
