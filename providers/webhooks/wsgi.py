"""A lean WSGI path for provider webhooks: no session, auth, messages, allauth or htmx middleware.

Webhooks are CSRF-exempt, anonymous and authenticated by their signature (or
path secret), so the portal's user-facing middleware only costs time on them.
``SecurityMiddleware`` (SSL redirect, HSTS, nosniff) and ``CommonMiddleware``
(``ALLOWED_HOSTS`` through ``get_host()``) still run, as configured in
``settings.MIDDLEWARE``. Only views in the ``webhooks`` URL namespace are
reachable through this path; anything else under the prefix is a 404.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.http import Http404, HttpRequest
from django.urls import ResolverMatch, get_resolver
from django.utils.module_loading import import_string

PREFIX = "/webhooks/"
NAMESPACE = "webhooks"
# The only middleware a webhook needs; kept only if the project enables it.
KEPT_MIDDLEWARE = ("django.middleware.security.SecurityMiddleware", "django.middleware.common.CommonMiddleware")


def webhook_middleware() -> list[str]:
    """``settings.MIDDLEWARE`` minus everything webhooks do not need, in the project's order."""
    return [path for path in settings.MIDDLEWARE if path in KEPT_MIDDLEWARE]


class WebhookHandler(WSGIHandler):
    """Django's WSGI handler with :func:`webhook_middleware` and only the webhook URLs."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response)
        for path in reversed(webhook_middleware()):
            middleware = import_string(path)(handler)
            if hasattr(middleware, "process_view"):
                self._view_middleware.insert(0, middleware.process_view)
            if hasattr(middleware, "process_template_response"):
                self._template_response_middleware.append(middleware.process_template_response)
            if hasattr(middleware, "process_exception"):
                self._exception_middleware.append(middleware.process_exception)
            handler = convert_exception_to_response(middleware)
        self._middleware_chain = handler

    def resolve_request(self, request: HttpRequest) -> ResolverMatch:
        match = super().resolve_request(request)
        if match.namespaces[:1] != [NAMESPACE]:  # never serve a portal view without its middleware
            raise Http404("not a webhook")
        return match


class WebhookRouter:
    """WSGI app: ``/webhooks/…`` to :class:`WebhookHandler`, everything else to the full ``app``."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        # Also imports every URLconf now rather than in the first request.
        served = NAMESPACE in get_resolver().namespace_dict
        self.webhooks = WebhookHandler() if served else None  # a project without the webhook URLs

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.webhooks is not None and environ.get("PATH_INFO", "").startswith(PREFIX):
            return self.webhooks(environ, start_response)
        return self.app(environ, start_response)
