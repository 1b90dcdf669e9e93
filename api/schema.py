"""OpenAPI generation: every operation documents the error shape and the codes it can answer."""

from __future__ import annotations

from django.core.exceptions import FieldDoesNotExist
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers
from rest_framework.fields import empty

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


def model_default(field: serializers.Field) -> object:
    """The model default a writable ModelSerializer field gets when a create leaves it out, or ``empty``."""
    parent = getattr(field, "parent", None)
    model = getattr(getattr(parent, "Meta", None), "model", None)
    if model is None or field.read_only or not field.source or "." in field.source:
        return empty
    try:
        model_field = model._meta.get_field(field.source)
    except FieldDoesNotExist:
        return empty
    if not getattr(model_field, "has_default", lambda: False)():
        return empty
    default = model_field.get_default()  # callables (e.g. the default provider) are called here
    return default if isinstance(default, str | int | float | bool | list | dict) else empty


class AutoSchema(SpectacularAutoSchema):
    def _get_serializer_field_meta(self, field, direction):
        # State every default a created object gets (max_mps 1.0, add_stop_footer true, ...) in the schema.
        meta = super()._get_serializer_field_meta(field, direction)
        if "default" not in meta and direction == "request":
            default = model_default(field)
            if default is not empty:
                meta["default"] = default
        return meta

    def map_parsers(self):
        # JSON is the documented request format. The default form parsers stay accepted, but listing
        # the same body three times (json, form, multipart) makes client generators send multipart;
        # views with their own parsers (the CSV import upload) keep theirs.
        media_types = super().map_parsers()
        if "application/json" in media_types and "multipart/form-data" in media_types:
            return ["application/json"]
        return media_types

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
