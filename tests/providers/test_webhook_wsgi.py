"""The webhook WSGI app behind ``smsportal.wsgi.application``: same checks, less middleware, public API only."""

from __future__ import annotations

import ast
import io
import logging
import re
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.base import BaseHandler
from django.core.signals import got_request_exception, request_finished, request_started
from django.db import close_old_connections, connection
from django.http import HttpResponse
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.urls import Resolver404, URLResolver, resolve, reverse

import smsportal
from devtools.fake_provider import plivo_signature_headers
from providers.models import ProviderEvent
from providers.webhooks import plivo, urls, wsgi
from providers.webhooks.wsgi import PREFIX, URLCONF, WebhookApplication, WebhookRouter, webhook_middleware
from smsportal.logging import mask_log_text
from tests.providers.conftest import PLIVO_SECRET, PLIVO_TOKEN

pytestmark = pytest.mark.django_db
BASE = "https://sms.example.com"
PATH = f"/webhooks/plivo/{PLIVO_SECRET}/status/42/"
PARAMS = {
    "MessageUUID": "uuid-part",
    "ParentMessageUUID": "uuid-parent",
    "Status": "delivered",
    "ErrorCode": "000",
    "DeliveryReportTime": "2026-03-01 12:00:01.123456",
}


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.PLIVO_AUTH_TOKEN = PLIVO_TOKEN
    settings.PLIVO_WEBHOOK_SECRET = PLIVO_SECRET
    settings.PUBLIC_BASE_URL = BASE
    settings.ALLOWED_HOSTS = ["testserver"]


@pytest.fixture
def app():
    """The production WSGI app, called directly; like Django's test client, keep the test's transaction open."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        from smsportal.wsgi import application

        yield application
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def call(
    app,
    path: str,
    *,
    body: bytes = b"",
    headers: dict | None = None,
    host: str = "testserver",
    content_type: str = "application/x-www-form-urlencoded",
    close: bool = False,
):
    """One POST through ``app``; ``close`` calls the iterable's ``close()`` afterwards, as a WSGI server does."""
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": host,
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
    }
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    seen: dict = {}

    def start_response(status, response_headers, exc_info=None):
        seen["status"] = int(status.split()[0])
        seen["headers"] = dict(response_headers)

    result = app(environ, start_response)
    seen["body"] = b"".join(result)
    seen["result"] = result
    if close:
        result.close()
    return seen


def signed(params: dict, path: str = PATH, token: str = PLIVO_TOKEN) -> tuple[bytes, dict]:
    return urlencode(params).encode(), plivo_signature_headers("POST", BASE + path, params, token)


def test_production_app_routes_webhooks_to_the_webhook_app(app):
    assert isinstance(app, WebhookRouter)
    assert isinstance(app.webhooks, WebhookApplication)
    assert app.webhooks.urlconf == URLCONF == "smsportal.webhook_urls"
    assert webhook_middleware() == [
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
    ]


def test_signed_status_is_stored_before_the_200_without_session_or_csrf_cookies(app):
    body, headers = signed(PARAMS)
    response = call(app, PATH, body=body, headers=headers)
    assert response["status"] == 200, response
    assert "Set-Cookie" not in response["headers"]
    assert response["headers"]["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware still runs
    event = ProviderEvent.objects.get()
    assert (event.provider, event.kind, event.message_ref, event.status) == ("plivo", "status", "42", "delivered")
    assert event.provider_message_id == "uuid-parent"
    assert event.error_code == ""
    assert event.payload == PARAMS
    assert event.received_at is not None and event.processed_at is None
    assert event.occurred_at.isoformat() == "2026-03-01T12:00:01.123456+00:00"


@pytest.mark.parametrize("token", ["wrong-token", None])
def test_forged_or_unsigned_status_is_refused_and_not_stored(app, token):
    body, headers = signed(PARAMS, token=token or PLIVO_TOKEN)
    if token is None:
        headers = {}
    response = call(app, PATH, body=body, headers=headers)
    assert response["status"] == 403
    assert not ProviderEvent.objects.exists()


def test_tampered_body_is_refused(app):
    body, headers = signed(PARAMS)
    # V2 signs only the URL, so a body change can only be caught with V3 alone.
    headers = {k: v for k, v in headers.items() if "V2" not in k}
    response = call(app, PATH, body=body.replace(b"delivered", b"failed"), headers=headers)
    assert response["status"] == 403
    assert not ProviderEvent.objects.exists()


def test_host_outside_allowed_hosts_is_refused(app):
    body, headers = signed(PARAMS)
    response = call(app, PATH, body=body, headers=headers, host="evil.example.net")
    assert response["status"] == 400
    assert not ProviderEvent.objects.exists()


def test_only_webhook_urls_are_served_on_the_lean_path(app):
    with pytest.raises(Resolver404):
        resolve("/accounts/login/", urlconf=URLCONF)
    assert resolve(PATH, urlconf=URLCONF).namespaces == ["webhooks"]
    # portal pages handed to the webhook app itself; "/admin" is not redirected to the portal's "/admin/"
    for path in ("/accounts/login/", "/admin/", "/admin", "/api/v1/campaigns/"):
        assert call(app.webhooks, path)["status"] == 404, path


def test_the_webhook_urlconf_may_hold_nothing_but_the_webhooks():
    with pytest.raises(ImproperlyConfigured, match="only include the 'webhooks' namespace"):
        WebhookApplication(urlconf="smsportal.urls")


def _webhook_patterns(patterns, converters=()):
    """Every view pattern under the webhooks URLconf, with the path converters of the includes above it."""
    for pattern in patterns:
        found = (*converters, *pattern.pattern.converters)
        if isinstance(pattern, URLResolver):
            yield from _webhook_patterns(pattern.url_patterns, found)
        else:
            yield pattern, found


def test_portal_and_webhook_app_serve_every_webhook_at_the_same_path_with_the_same_view():
    patterns = list(_webhook_patterns(urls.urlpatterns))
    assert len(patterns) >= 4  # status and inbound for each provider
    for pattern, converters in patterns:
        path = reverse(f"webhooks:{pattern.name}", kwargs=dict.fromkeys(converters, "x"))
        assert path.startswith(PREFIX)
        assert resolve(path).func is resolve(path, urlconf=URLCONF).func is pattern.callback


def test_unknown_path_under_the_prefix_is_a_404_not_a_500(app):
    assert call(app, "/webhooks/nothing-here/")["status"] == 404


def test_portal_pages_still_get_the_full_middleware(app):
    response = call(app, "/accounts/login/")  # a POST without a CSRF token: the full stack refuses it
    assert response["status"] == 403


def test_a_urlconf_without_the_webhooks_passes_everything_through(settings):
    settings.ROOT_URLCONF = "bench.ceiling_urls"  # bare project: its own /webhooks/ view, no namespace
    seen = []
    router = WebhookRouter(lambda environ, start_response: seen.append(environ["PATH_INFO"]) or [b"ok"])
    assert router.webhooks is None
    assert list(router({"PATH_INFO": PATH}, None)) == [b"ok"]
    assert seen == [PATH]


def _private_names(source: str) -> set[str]:
    """Underscore names the module uses: attributes, names, imports, definitions and getattr-style strings."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(r"\w+", node.value):
            names.add(node.value)
    return {n for n in names if n.startswith("_") and not (n.startswith("__") and n.endswith("__"))}


@pytest.mark.parametrize("path", [Path(wsgi.__file__), Path(smsportal.__file__).with_name("wsgi.py")])
def test_the_wsgi_modules_touch_no_private_names(path):
    source = path.read_text()
    assert not re.search(r"\b_\w*middleware", source)  # _middleware_chain, _view_middleware, ...
    assert _private_names(source) == set()


def test_the_webhook_app_subclasses_nothing_of_django():
    for cls in (WebhookApplication, WebhookRouter, wsgi.ClosingResponse):
        assert [c for c in cls.__mro__ if c is not cls] == [object]
    assert not isinstance(WebhookApplication(), BaseHandler)


def test_an_exception_in_a_view_is_a_500_logged_once_with_its_traceback(app, monkeypatch, caplog):
    def boom(self, request, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(plivo.StatusWebhookView, "handle", boom)
    signalled = []

    def on_exception(sender, request, **kwargs):
        signalled.append(request.path)

    got_request_exception.connect(on_exception)
    try:
        body, headers = signed(PARAMS)
        with caplog.at_level(logging.INFO, logger="django.request"):
            response = call(app, PATH, body=body, headers=headers)
    finally:
        got_request_exception.disconnect(on_exception)
    assert response["status"] == 500
    assert response["headers"]["X-Content-Type-Options"] == "nosniff"  # the middleware saw the 500 too
    assert signalled == [PATH]
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert record.levelno == logging.ERROR
    # the path carries the webhook secret: the log filter masks it (whichever handler sees the record first)
    assert mask_log_text(record.getMessage()) == "Internal Server Error: /webhooks/plivo/****/status/42/"
    assert record.exc_info[0] is RuntimeError


def test_a_404_is_logged_once_as_a_warning(app, caplog):
    with caplog.at_level(logging.INFO, logger="django.request"):
        assert call(app, "/webhooks/nothing-here/")["status"] == 404
    assert [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "django.request"] == [
        (logging.WARNING, "Not Found: /webhooks/nothing-here/")
    ]


def test_uploaded_files_are_closed_with_the_response(app, monkeypatch):
    files = []

    def post(self, request, **kwargs):
        files.append(request.FILES["f"])
        return HttpResponse("ok")

    monkeypatch.setattr(plivo.StatusWebhookView, "post", post)
    body = encode_multipart(BOUNDARY, {"f": io.BytesIO(b"x" * 10)})
    response = call(app, PATH, body=body, content_type=MULTIPART_CONTENT)
    assert response["status"] == 200 and not files[0].closed
    response["result"].close()
    assert files[0].closed


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("max_age", "kept"), [(0, False), (60, True)])
def test_database_connection_is_closed_or_kept_per_request_as_django_does(monkeypatch, max_age, kept):
    """request_started at the call, request_finished at close(): Django's close_old_connections does the rest."""
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", max_age)
    connection.close()  # the next connection is opened under this CONN_MAX_AGE
    signals = []

    def started(sender, environ, **kwargs):
        signals.append(("started", environ["PATH_INFO"]))

    def finished(sender, **kwargs):
        signals.append(("finished",))

    request_started.connect(started)
    request_finished.connect(finished)
    try:
        body, headers = signed(PARAMS)
        response = call(WebhookApplication(), PATH, body=body, headers=headers)
        assert response["status"] == 200, response
        assert signals == [("started", PATH)]
        used = connection.connection
        assert used is not None
        response["result"].close()
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)
    assert signals == [("started", PATH), ("finished",)]
    assert (connection.connection is used) is kept
    assert (connection.connection is None) is not kept
    # Committed, not left in a transaction. (Only this request's row: a live-server test before this
    # one may still receive a fake provider's late callback.)
    assert ProviderEvent.objects.filter(message_ref="42").count() == 1


@pytest.mark.django_db(transaction=True)
def test_atomic_requests_wrap_the_view_in_a_transaction(monkeypatch):
    seen = []
    monkeypatch.setattr(
        plivo.StatusWebhookView, "handle", lambda self, request, **kw: seen.append(connection.in_atomic_block)
    )
    for atomic in (False, True):
        monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", atomic)
        body, headers = signed(PARAMS)
        assert call(WebhookApplication(), PATH, body=body, headers=headers, close=True)["status"] == 200
    assert seen == [False, True]


def test_a_nul_byte_in_a_webhook_body_is_a_400_not_a_500(app, settings):
    """The lean app has no NUL middleware: a NUL in a form field or a JSON string answered 500."""
    settings.FLOWROUTE_WEBHOOK_SECRET = "s3cret-flowroute-path"
    inbound = f"/webhooks/plivo/{PLIVO_SECRET}/inbound/"
    form, headers = signed({"From": "1415\x005552671", "To": "14155550100", "Text": "STOP"}, path=inbound)
    report, report_headers = signed({**PARAMS, "ErrorCode": "\x00"})
    flowroute = b'{"data": {"attributes": {"from": "14155552671", "to": "14155550100", "body": "STOP\\u0000"}}}'

    responses = [
        call(app, inbound, body=form, headers=headers),
        call(app, PATH, body=report, headers=report_headers),
        call(
            app, "/webhooks/flowroute/s3cret-flowroute-path/inbound/", body=flowroute, content_type="application/json"
        ),
    ]

    assert [r["status"] for r in responses] == [400, 400, 400], responses
    assert all(b"NUL" in r["body"] for r in responses)
    assert not ProviderEvent.objects.exists()
