"""The tracked-link redirect, answered before the portal's user-facing middleware."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

from campaigns import views

PREFIX = "/l/"


class ShortLinkMiddleware:
    """``/l/<code>`` goes straight to :func:`campaigns.views.short_link`.

    A recipient's click has no session and needs none of what follows in ``settings.MIDDLEWARE``
    (sessions, CSRF, auth, messages, allauth, htmx), and every visit pays for whatever runs. Listed
    after SecurityMiddleware (HTTPS redirect, HSTS, nosniff) and the request checks; the host is
    still checked against ``ALLOWED_HOSTS``, as CommonMiddleware would (a 400 otherwise). Anything
    after the prefix that is not a code is the view's 404, as it is through the URLconf.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not request.path_info.startswith(PREFIX):
            return self.get_response(request)
        request.get_host()  # DisallowedHost: a 400, from the handler
        return views.short_link(request, request.path_info[len(PREFIX) :])
