"""Idempotency-Key for POSTs that create or send.

The same key with the same request replays the first response and does
nothing new; the same key with a different request is a 422. Only successful
(2xx) responses are kept: after an error the client may fix the request and
retry with the same key.

How concurrent retries are kept apart: the record is inserted first, inside
the transaction that also holds the view's writes. PostgreSQL makes a second
INSERT of the same (user, key) wait until the first transaction ends; if that
one committed, the second gets an IntegrityError and replays the stored
response, and if it rolled back (an error, a crash) nothing is left behind.
"""

from __future__ import annotations

import functools
import hashlib
import json

from django.core.files import File
from django.db import IntegrityError, transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from api.models import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    name=HEADER,
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Any unique string (e.g. a UUID), at most 255 characters. A retry with the same key and body "
        "returns the first response and does nothing new; the same key with another body is a 422."
    ),
)


class IdempotencyKeyReused(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was already used with a different request."
    default_code = "idempotency_key_reused"


def _value(value: object) -> str:
    """A form value as text; an uploaded file by its contents (a CSV import), read in pieces."""
    if isinstance(value, File):
        digest = hashlib.sha256()
        for piece in value.chunks():
            digest.update(piece)
        value.seek(0)
        return f"sha256:{digest.hexdigest()}"
    return str(value)


def request_fingerprint(request) -> str:
    """Method, path, query and the parsed body, so formatting differences in the JSON don't matter."""
    try:
        body = json.dumps(request.data, sort_keys=True, default=_value)  # a file by its contents
    except TypeError:  # e.g. keys that are not strings
        body = json.dumps(sorted((str(k), _value(v)) for k, v in request.data.items()))
    query = request.META.get("QUERY_STRING", "")
    raw = f"{request.method}\n{request.path}\n{query}\n{body}".encode()
    return hashlib.sha256(raw).hexdigest()


def _replay(record: IdempotencyRecord, fingerprint: str) -> Response:
    if record.request_hash != fingerprint:
        raise IdempotencyKeyReused()
    response = Response(record.response_body, status=record.response_status)
    response["Idempotent-Replayed"] = "true"
    return response


def idempotent(handler):
    """Decorate a view's POST handler (``create``, an ``@action``, or ``post``)."""

    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None or not request.user.is_authenticated:
            return handler(view, request, *args, **kwargs)
        key = key.strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            raise ValidationError({HEADER: [f"Give a non-empty key of at most {MAX_KEY_LENGTH} characters."]})
        fingerprint = request_fingerprint(request)  # parses the body: malformed JSON is a 400 here
        with transaction.atomic():
            try:
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(user=request.user, key=key, request_hash=fingerprint)
            except IntegrityError:
                # Another request with this key committed first (we may have waited for it).
                return _replay(IdempotencyRecord.objects.get(user=request.user, key=key), fingerprint)
            response = handler(view, request, *args, **kwargs)
            if not 200 <= response.status_code < 300:
                transaction.set_rollback(True)
                return response
            record.response_status = response.status_code
            record.response_body = json.loads(JSONRenderer().render(response.data) or b"null")
            record.save(update_fields=["response_status", "response_body"])
        return response

    wrapper.idempotent = True  # type: ignore[attr-defined]  # read by api.schema to document the header
    return wrapper
