"""Input that no view can handle, refused once for every page, API endpoint and webhook."""

from __future__ import annotations

import re
from collections.abc import Callable
from io import BytesIO

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadhandler import MemoryFileUploadHandler
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse, QueryDict
from django.http.multipartparser import MultiPartParser, MultiPartParserError

NUL_MESSAGE = "The request contains a NUL character (\\x00), which no text field can hold."
#: Multipart bodies larger than this are not scanned here: they are file uploads.
_FORM_SCAN_LIMIT = 1_000_000
#: ``\u0000`` as a JSON escape: after an even number of backslashes (``\\u0000`` is a literal backslash).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000", re.IGNORECASE)


def _has_nul(params: QueryDict) -> bool:
    return any("\x00" in key or any("\x00" in v for v in values) for key, values in params.lists())


def _nul_in_request(request: HttpRequest) -> bool:
    if _has_nul(request.GET):
        return True
    content_type = request.content_type or ""
    if request.method == "POST" and content_type == "application/x-www-form-urlencoded":
        return _has_nul(request.POST)
    length = int(raw) if (raw := str(request.META.get("CONTENT_LENGTH") or "0")).isdigit() else _FORM_SCAN_LIMIT + 1
    if request.method == "POST" and content_type == "multipart/form-data" and length <= _FORM_SCAN_LIMIT:
        # Parsed from a copy: request.POST/FILES stay unread, so a view may still set its upload handlers.
        # Larger bodies are file uploads; their text fields are checked by the forms that read them.
        body = request.body
        try:
            fields, _ = MultiPartParser(
                request.META, BytesIO(body), [MemoryFileUploadHandler()], request.encoding
            ).parse()
        except MultiPartParserError:
            return False  # the view's own parsing reports it
        return _has_nul(fields)
    if content_type.endswith("json"):  # any size: the API reads it all anyway (Django's body limit applies)
        return b"\x00" in request.body or _JSON_NUL.search(request.body) is not None
    return False


class RejectNulMiddleware:
    """A NUL byte in a query parameter, a form field or a JSON string is a 400 with a message.

    PostgreSQL cannot store NUL in text, so without this any search box (``?q=``, ``?actor=``) or
    form field given one answered 500.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        speaks_json = request.path.startswith("/api/") or (request.content_type or "").endswith("json")
        try:
            has_nul = _nul_in_request(request)
        except RequestDataTooBig:
            if not speaks_json:
                raise  # Django's own 400 page
            # Reading the body here is the first read: without this the API answered Django's HTML 400 page.
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            message = f"The request body is larger than {limit} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)."
            return JsonResponse({"message": message, "errors": {}}, status=400)
        if has_nul:
            if speaks_json:
                return JsonResponse({"message": NUL_MESSAGE, "errors": {}}, status=400)  # the API's error shape
            return HttpResponseBadRequest(NUL_MESSAGE, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
