"""The webhook WSGI app: provider webhooks without the portal's session, auth, messages, allauth or htmx middleware.

Webhooks are CSRF-exempt, anonymous and authenticated by their signature (or
path secret), so the portal's user-facing middleware only costs time on them.
:class:`WebhookRouter` sends ``/webhooks/…`` to :class:`WebhookApplication`, a
second WSGI application with its own root URLconf (``smsportal.webhook_urls``,
webhook views only: anything else under the prefix is a 404) and its own
middleware list, :func:`webhook_middleware`: ``SecurityMiddleware`` (SSL
redirect, HSTS, nosniff) and ``CommonMiddleware`` (``ALLOWED_HOSTS`` through
``get_host()``), as configured in ``settings.MIDDLEWARE``.

It is built only from Django's public pieces, not from its handler classes:
the middleware protocol (``Middleware(get_response)``, called with the request),
``request.urlconf`` and ``resolve()``, ``convert_exception_to_response`` (the
404/500 responses and the ``django.request`` log of Django's own handler), and
the ``request_started`` / ``request_finished`` signals, so database connections
are closed or reused per request exactly as in the portal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

from asgiref.sync import async_to_sync, iscoroutinefunction
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIRequest, get_script_name
from django.core.signals import request_started
from django.db import connections, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import URLResolver, get_resolver, resolve, set_script_prefix
from django.utils.log import log_response
from django.utils.module_loading import import_string

PREFIX = "/webhooks/"
NAMESPACE = "webhooks"
URLCONF = "smsportal.webhook_urls"
# The only middleware a webhook needs; kept only if the project enables it.
KEPT_MIDDLEWARE = ("django.middleware.security.SecurityMiddleware", "django.middleware.common.CommonMiddleware")
# Middleware hooks that only Django's own handler runs; a kept middleware must not rely on them.
VIEW_HOOKS = ("process_view", "process_exception", "process_template_response")

GetResponse = Callable[[HttpRequest], HttpResponseBase]


def webhook_middleware() -> list[str]:
    """``settings.MIDDLEWARE`` minus everything webhooks do not need, in the project's order."""
    return [path for path in settings.MIDDLEWARE if path in KEPT_MIDDLEWARE]


def exceptions_to_responses(get_response: GetResponse) -> GetResponse:
    """``convert_exception_to_response``, which keeps a sync ``get_response`` sync (its stub allows an awaitable)."""
    return cast(GetResponse, convert_exception_to_response(get_response))


class ClosingResponse:
    """The WSGI response iterable; ``close()`` closes the request's uploaded files, then the response.

    ``HttpResponse.close()`` sends ``request_finished`` (``close_old_connections``, ``reset_urlconf``).
    """

    def __init__(self, response: HttpResponseBase, request: HttpRequest) -> None:
        self.response = response
        self.request = request

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.response)

    def close(self) -> None:
        try:
            self.request.close()
        finally:
            self.response.close()


class WebhookApplication:
    """WSGI app: the views of ``urlconf`` (one ``webhooks`` namespace) behind :func:`webhook_middleware`."""

    def __init__(self, urlconf: str = URLCONF) -> None:
        for entry in get_resolver(urlconf).url_patterns:  # imports the webhook views now, not in the first request
            if not (isinstance(entry, URLResolver) and entry.namespace == NAMESPACE):
                raise ImproperlyConfigured(f"{urlconf} may only include the {NAMESPACE!r} namespace, not {entry!r}")
        self.urlconf = urlconf
        self.atomic_aliases = [alias for alias in connections if connections[alias].settings_dict["ATOMIC_REQUESTS"]]
        handler = exceptions_to_responses(self.view_response)
        for path in reversed(webhook_middleware()):
            middleware = import_string(path)(handler)
            hooks = [name for name in VIEW_HOOKS if hasattr(middleware, name)]
            if hooks:
                raise ImproperlyConfigured(f"{path} needs {', '.join(hooks)}, which the webhook app does not run")
            handler = exceptions_to_responses(middleware)
        self.middleware_chain = handler

    def view_response(self, request: HttpRequest) -> HttpResponseBase:
        """The innermost ``get_response``: resolve in the webhook URLconf and call the view."""
        match = resolve(request.path_info, urlconf=self.urlconf)  # Resolver404 is a 404
        request.resolver_match = match
        view = match.func
        if iscoroutinefunction(view):
            view = async_to_sync(view)
        for alias in self.atomic_aliases:  # ATOMIC_REQUESTS, as Django's handler does
            view = transaction.atomic(using=alias)(view)
        response: HttpResponseBase | None = view(request, *match.args, **match.kwargs)
        if response is None:
            raise ValueError(f"The view {match.view_name} didn't return an HttpResponse object. It returned None.")
        render = getattr(response, "render", None)
        if callable(render):  # a TemplateResponse
            response = render()
        return response

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        set_script_prefix(get_script_name(environ))
        request_started.send(sender=type(self), environ=environ)
        request = WSGIRequest(environ)
        request.urlconf = self.urlconf  # CommonMiddleware's APPEND_SLASH and the DEBUG 404 page look here
        response = self.middleware_chain(request)
        if response.status_code >= 400:  # once: convert_exception_to_response may have logged it already
            # django-stubs narrows ``response`` to HttpResponse; Django's own handler passes any HttpResponseBase.
            logged = cast(HttpResponse, response)
            log_response("%s: %s", response.reason_phrase, request.path, response=logged, request=request)
        headers = [*response.items(), *(("Set-Cookie", c.output(header="")) for c in response.cookies.values())]
        start_response(f"{response.status_code} {response.reason_phrase}", headers)
        return ClosingResponse(response, request)


class WebhookRouter:
    """WSGI app: ``/webhooks/…`` to :class:`WebhookApplication`, everything else to the full ``app``."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        # Also imports every URLconf now rather than in the first request.
        served = NAMESPACE in get_resolver().namespace_dict
        self.webhooks = WebhookApplication() if served else None  # a project without the webhook URLs

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.webhooks is not None and environ.get("PATH_INFO", "").startswith(PREFIX):
            return self.webhooks(environ, start_response)
        return self.app(environ, start_response)
