"""One JSON error shape for the whole API: ``{"message": ..., "errors": {field: [...]}}``.

A 409 also says why in ``code``: ``conflict`` in general, ``consent_revoked`` when only the person
may undo their opt-out (``recipients.services.ConsentRevoked``)."""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

from campaigns.services import TransitionError
from recipients.services import RecipientConflict
from relay.services import PoolExhausted, RelayError


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The object is not in a state that allows this."
    default_code = "conflict"


def _django_validation_errors(exc: DjangoValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return {
            ("non_field_errors" if field == "__all__" else field): [str(m) for m in messages]
            for field, messages in exc.message_dict.items()
        }
    return {"non_field_errors": [str(m) for m in exc.messages]}


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, RecipientConflict) and isinstance(exc, DjangoValidationError):
        return Conflict(exc.messages[0], code=exc.code)  # e.g. ConfirmationRefused
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(_django_validation_errors(exc))
    if isinstance(exc, RecipientConflict):
        return Conflict(str(exc), code=exc.code)
    if isinstance(exc, TransitionError | PoolExhausted):
        return Conflict(str(exc))
    if isinstance(exc, RelayError):
        return exceptions.ValidationError({exc.field or "non_field_errors": [exc.message]})
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        return exceptions.NotFound()
    if isinstance(exc, IntegrityError):
        # A race with another writer (e.g. the same phone number created twice at once).
        return Conflict("This conflicts with an existing object; fetch it and try again.")
    if isinstance(exc, DataError):
        return exceptions.ValidationError({"non_field_errors": ["A value is out of range or not storable."]})
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(str(exc) or None)
    return exc


def _as_errors(data) -> dict:
    if isinstance(data, dict):
        return {key: value if isinstance(value, list | dict) else [value] for key, value in data.items()}
    if isinstance(data, list):
        return {"non_field_errors": data}
    return {"non_field_errors": [data]}


def exception_handler(exc, context):
    exc = _translate(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(exc, exceptions.ValidationError):
        errors = _as_errors(data)
        first = next(iter(errors.values()), None)
        if isinstance(first, list) and len(errors) == 1 and first and isinstance(first[0], str):
            message = first[0] if "non_field_errors" in errors else "Invalid input."
        else:
            message = "Invalid input."
        response.data = {"message": message, "errors": errors}
    elif isinstance(data, dict) and "detail" in data:
        response.data = {"message": str(data["detail"]), "errors": {}}
        if isinstance(exc, Conflict):
            response.data["code"] = exc.get_codes()  # e.g. consent_revoked: a client can tell why
    else:
        response.data = {"message": "Request failed.", "errors": _as_errors(data)}
    return response
