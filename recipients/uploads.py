"""The upload cap (``SMS_IMPORT_MAX_UPLOAD_MB``), enforced before a byte of the body is read.

Django would otherwise stream a whole multipart body to a temporary file before any form could
look at its size. The WSGI server hands Django exactly ``Content-Length`` bytes (a chunked body
without one is read as empty), so refusing on the declared length is refusing on the real size.
Bodies streamed by the API's import endpoint are also counted as they are copied
(``copy_capped``), whatever they declare.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string


class _Writable(Protocol):
    def write(self, data: bytes, /) -> object: ...


class UploadTooLarge(Exception):
    """A streamed upload went past the cap; the message is shown to the user."""


def upload_cap_bytes() -> int:
    return int(settings.SMS_IMPORT_MAX_UPLOAD_MB * 1024 * 1024)


def upload_cap_message() -> str:
    return (
        f"The file is larger than {settings.SMS_IMPORT_MAX_UPLOAD_MB} MB, the upload limit (SMS_IMPORT_MAX_UPLOAD_MB)."
    )


def copy_capped(pieces: Iterable[bytes], out: _Writable) -> int:
    """Write ``pieces`` to ``out``; raise UploadTooLarge as soon as they pass the cap."""
    cap, total = upload_cap_bytes(), 0
    for piece in pieces:
        total += len(piece)
        if total > cap:
            raise UploadTooLarge(upload_cap_message())
        out.write(piece)
    return total


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


class UploadCapMiddleware:
    """Answer 413 to any request whose body is declared larger than the upload cap."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _declared_length(request) <= upload_cap_bytes():
            return self.get_response(request)
        message = upload_cap_message()
        if request.path.startswith("/api/"):
            return JsonResponse({"message": message, "errors": {"file": [message]}}, status=413)
        back = urlsplit(request.headers.get("Referer", "")).path or "/"  # same site: only the path
        html = render_to_string("upload_too_large.html", {"message": message, "back": back}, request=request)
        response = HttpResponse(html, status=413)
        response["Connection"] = "close"  # don't leave the unread body in the connection
        return response
